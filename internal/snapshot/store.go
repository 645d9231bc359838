package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Store keeps canonical archives on local disk by tree hash:
// DIR/AB/ABCDEF....tar.gz, where AB are the hash's first two hex characters.
// A blob is written once, to a temporary file renamed into place, and never
// changed; Store is safe for concurrent use.
type Store struct {
	dir string

	// writeFile durably writes data to path; tests replace it to inject
	// failures.
	writeFile func(path string, data []byte) error
}

// OpenStore opens (creating it if needed) the store rooted at dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: open store %s: %w", dir, err)
	}
	return &Store{dir: dir, writeFile: writeFileAtomic}, nil
}

func (s *Store) blobPath(tree string) string {
	return filepath.Join(s.dir, tree[:2], tree+".tar.gz")
}

// Put validates an uploaded archive (ReadArchive), stores its canonical form
// (written to a temp file and renamed; an existing blob is kept), and returns
// the tree (Data loaded).
func (s *Store) Put(r io.Reader, lim Limits) (*Tree, error) {
	t, err := ReadArchive(r, lim)
	if err != nil {
		return nil, err
	}
	p := s.blobPath(t.Hash)
	if _, err := os.Stat(p); err == nil {
		return t, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: put tree %s: %w", t.Hash, err)
	}
	b, err := Canonical(t)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: put tree %s: %w", t.Hash, err)
	}
	if err := s.writeFile(p, b); err != nil {
		return nil, fmt.Errorf("snapshot: put tree %s: %w", t.Hash, err)
	}
	return t, nil
}

// Get returns a stored tree with Data loaded, or an error wrapping
// fs.ErrNotExist for an unknown hash. A hash that is not 64 lower-case hex
// characters is an *InputError. A blob whose content no longer hashes to its
// name is reported as corrupt.
func (s *Store) Get(tree string) (*Tree, error) {
	f, err := s.Archive(tree)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := readArchive(f, noLimits)
	if err != nil {
		return nil, fmt.Errorf("snapshot: stored tree %s is corrupt: %w", tree, err)
	}
	if t.Hash != tree {
		return nil, fmt.Errorf("snapshot: stored tree %s is corrupt: its content hashes to %s", tree, t.Hash)
	}
	return t, nil
}

// Archive opens a stored canonical archive for streaming to a client. Errors
// are as for Get.
func (s *Store) Archive(tree string) (io.ReadCloser, error) {
	if !isHexHash(tree) {
		return nil, inputErrorf("", "give a tree hash of 64 lower-case hex characters", "invalid tree hash")
	}
	f, err := os.Open(s.blobPath(tree))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: tree %s: %w", tree, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: open tree %s: %w", tree, err)
	}
	return f, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place, so a reader sees the whole blob or none.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}
