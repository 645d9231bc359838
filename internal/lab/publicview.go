package lab

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/aar-lab/aar/internal/snapshot"
)

// publicViews caches each testbed's public view as a canonical tar.gz (what
// `aar testbed public` writes: no label, subset, sealed row or holdout
// figure), built once per testbed the lab has loaded.
type publicViews struct {
	mu    sync.Mutex
	cache map[string][]byte
}

// PublicViewLimits bound a public view archive; they are larger than a
// workspace snapshot's because the view carries the pool, the test inputs
// and the frozen representation.
var PublicViewLimits = snapshot.Limits{MaxArchiveBytes: 1 << 30, MaxTreeBytes: 4 << 30, MaxFileBytes: 2 << 30, MaxFiles: 20_000}

// PublicView returns the public view of the caller's campaign testbed (an
// admin names the campaign) as a canonical tar.gz, and the testbed's name.
func (l *Lab) PublicView(id *Identity, campaign string) ([]byte, string, error) {
	if id.Role == RoleAdmin {
		if campaign == "" {
			return nil, "", publicErr(400, "invalid_request", "admins name the campaign: ?campaign=ID")
		}
	} else {
		campaign = id.Campaign
	}
	l.mu.Lock()
	c := l.campaigns[campaign]
	l.mu.Unlock()
	if c == nil {
		return nil, "", publicErr(404, "unknown_campaign", "no such campaign")
	}
	tb, err := l.testbedFor(c.Testbed)
	if err != nil {
		return nil, "", err
	}
	l.views.mu.Lock()
	defer l.views.mu.Unlock()
	if b, ok := l.views.cache[c.Testbed]; ok {
		return b, c.Testbed, nil
	}
	tmp, err := os.MkdirTemp(l.cfg.DataDir, "public-view-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, c.Testbed)
	if err := tb.WritePublic(dir, false); err != nil {
		return nil, "", err
	}
	_, b, err := snapshot.Pack(dir, PublicViewLimits)
	if err != nil {
		return nil, "", err
	}
	if l.views.cache == nil {
		l.views.cache = map[string][]byte{}
	}
	l.views.cache[c.Testbed] = b
	return b, c.Testbed, nil
}

func (l *Lab) handlePublicView(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	b, name, err := l.PublicView(id, r.URL.Query().Get("campaign"))
	if err != nil {
		return nil, err
	}
	w.Header().Set("X-Aar-Testbed", name)
	return raw{contentType: "application/gzip", body: bytes.NewReader(b)}, nil
}
