package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"time"

	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/store"
)

// evSnapshot is the ledger event of a pushed snapshot.
const evSnapshot = "snapshot.pushed"

// SnapshotMeta describes a stored snapshot.
type SnapshotMeta struct {
	ID       string    `json:"id"`
	Tree     string    `json:"tree"`
	Parent   string    `json:"parent,omitempty"`
	Author   string    `json:"author"`
	Campaign string    `json:"campaign"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	At       time.Time `json:"at"`
}

func (l *Lab) snapshotStore() (*snapshot.Store, error) {
	l.snapOnce.Do(func() {
		l.snaps, l.snapErr = snapshot.OpenStore(filepath.Join(l.cfg.DataDir, "snapshots"))
	})
	return l.snaps, l.snapErr
}

// PushSnapshot stores an uploaded workspace archive as a snapshot of the
// researcher's campaign, child of parent (which must be a snapshot of the
// same campaign, or empty). A push of the tree and parent of one of the
// researcher's snapshots in the campaign returns that snapshot and records
// nothing.
func (l *Lab) PushSnapshot(ctx context.Context, id *Identity, r io.Reader, parent string) (*SnapshotMeta, error) {
	m, _, err := l.pushSnapshot(ctx, id, r, parent)
	return m, err
}

// snapTreeKey indexes a snapshot by what makes a push a repeat of it.
func snapTreeKey(m *SnapshotMeta) string {
	return m.Campaign + "\x00" + m.Author + "\x00" + m.Parent + "\x00" + m.Tree
}

// pushSnapshot is PushSnapshot that also says whether the snapshot existed.
func (l *Lab) pushSnapshot(ctx context.Context, id *Identity, r io.Reader, parent string) (*SnapshotMeta, bool, error) {
	if id.Role != RoleResearcher {
		return nil, false, publicErr(403, "forbidden", "snapshots are pushed with researcher tokens")
	}
	if parent != "" {
		if _, err := l.snapshotFor(id, parent); err != nil {
			return nil, false, err
		}
	}
	st, err := l.snapshotStore()
	if err != nil {
		return nil, false, err
	}
	tr := &tripReader{r: r}
	tree, err := st.Put(tr, snapshot.DefaultLimits())
	if err != nil {
		if tr.tripped != nil {
			err = tr.tripped
		}
		return nil, false, l.rejectSnapshot(ctx, id, err)
	}
	now := l.cfg.Now().UTC()
	m := &SnapshotMeta{ID: snapshot.ID(tree.Hash, parent, id.Researcher, now), Tree: tree.Hash, Parent: parent,
		Author: id.Researcher, Campaign: id.Campaign, Files: len(tree.Files), Bytes: tree.Bytes, At: now}
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev := l.snapshots[l.snapTrees[snapTreeKey(m)]]; prev != nil {
		out := *prev
		return &out, true, nil
	}
	evs, err := l.append(ctx, store.Input{Kind: evSnapshot, Actor: id.Researcher, Campaign: id.Campaign, Body: m})
	if err != nil {
		return nil, false, err
	}
	l.applyLocked(evs[0])
	return m, false, nil
}

// rejectSnapshot records a refused upload and returns the public error: an
// archive's own problem is shown; anything else (a disk error naming server
// paths) is logged and answered as an internal error.
func (l *Lab) rejectSnapshot(ctx context.Context, id *Identity, err error) error {
	var mbe *http.MaxBytesError
	var pe *PublicError
	switch {
	case errors.As(err, &mbe):
		pe = publicErr(413, "body_too_large", fmt.Sprintf("the archive is over the %d-byte limit", mbe.Limit))
	case snapshot.IsInputError(err):
		pe = publicErr(400, "invalid_archive", err.Error())
	default:
		return err
	}
	_, _ = l.append(ctx, store.Input{Kind: "snapshot.rejected", Actor: id.Researcher, Campaign: id.Campaign,
		Body: map[string]any{"code": pe.Code, "reason": pe.Message}})
	return pe
}

// snapshotFor returns a snapshot a caller may read: admins any, researchers
// their campaign's.
func (l *Lab) snapshotFor(id *Identity, snapID string) (*SnapshotMeta, error) {
	l.mu.Lock()
	m := l.snapshots[snapID]
	l.mu.Unlock()
	if m == nil || (id.Role != RoleAdmin && m.Campaign != id.Campaign) {
		return nil, publicErr(404, "unknown_snapshot", fmt.Sprintf("no snapshot %q in your campaign", snapID))
	}
	return m, nil
}

// SnapshotLog returns a snapshot and its ancestors, newest first.
func (l *Lab) SnapshotLog(id *Identity, snapID string) ([]SnapshotMeta, error) {
	var out []SnapshotMeta
	for cur := snapID; cur != "" && len(out) < 10000; {
		m, err := l.snapshotFor(id, cur)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
		cur = m.Parent
	}
	return out, nil
}

// SnapshotArchive opens a snapshot's canonical archive.
func (l *Lab) SnapshotArchive(id *Identity, snapID string) (io.ReadCloser, error) {
	m, err := l.snapshotFor(id, snapID)
	if err != nil {
		return nil, err
	}
	st, err := l.snapshotStore()
	if err != nil {
		return nil, err
	}
	rc, err := st.Archive(m.Tree)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, publicErr(410, "snapshot_missing", "the snapshot's archive is missing from the lab's store")
	}
	return rc, err
}

// SnapshotDiff is a unified diff of two snapshots' text files.
func (l *Lab) SnapshotDiff(id *Identity, a, b string) (string, error) {
	ma, err := l.snapshotFor(id, a)
	if err != nil {
		return "", err
	}
	mb, err := l.snapshotFor(id, b)
	if err != nil {
		return "", err
	}
	st, err := l.snapshotStore()
	if err != nil {
		return "", err
	}
	ta, err := st.Get(ma.Tree)
	if err != nil {
		return "", err
	}
	tb, err := st.Get(mb.Tree)
	if err != nil {
		return "", err
	}
	return snapshot.Diff(ta, tb), nil
}

// tripReader remembers when the request body's size limit was hit, so an
// oversized upload is answered 413 whatever the archive reader made of the
// cut-off stream.
type tripReader struct {
	r       io.Reader
	tripped *http.MaxBytesError
}

func (t *tripReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		t.tripped = mbe
	}
	return n, err
}
