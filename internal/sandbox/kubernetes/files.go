package kubernetes

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// stamp is what tells a file changed since it was sent.
type stamp struct {
	size int64
	mod  time.Time
}

// scanTree lists the regular files under root (slash-separated, relative)
// with their stamps; symbolic links and special files are left out.
func scanTree(root string) (map[string]stamp, error) {
	out := map[string]stamp{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = stamp{size: info.Size(), mod: info.ModTime()}
		return nil
	})
	return out, err
}

// changed lists the files of now that are not in sent or differ, sorted.
func changed(now, sent map[string]stamp) []string {
	var out []string
	for rel, st := range now {
		if old, ok := sent[rel]; !ok || old.size != st.size || !old.mod.Equal(st.mod) {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

// writeTar writes files (relative to root) as a tar stream: each parent
// directory once (0755), each file 0644 (0755 when executable). A file
// removed meanwhile is left out.
func writeTar(w io.Writer, root string, files []string) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{".": true}
	var addDir func(d string) error
	addDir = func(d string) error {
		if dirs[d] {
			return nil
		}
		if err := addDir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Now()})
	}
	for _, rel := range files {
		if err := addDir(path.Dir(rel)); err != nil {
			return err
		}
		if err := tarFile(tw, root, rel); err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarFile(tw *tar.Writer, root, rel string) error {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	mode := int64(0o644)
	if st.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: mode, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, st.Size()); err != nil {
		return fmt.Errorf("%s changed while it was sent: %w", rel, err)
	}
	return nil
}

// upload sends files under root into dst (/data or /shared) through the
// "files" container: tar -x reading the stream on stdin.
func (s *box) upload(ctx context.Context, dst, root string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeTar(pw, root, files)
		pw.CloseWithError(err)
		done <- err
	}()
	out := &sandbox.Capped{Max: 4096}
	err := s.b.stream(ctx, s.name, ContainerFiles, []string{"tar", "-x", "-f", "-", "-C", dst}, pr, out, out)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer should tar stop early
	werr := <-done
	switch {
	case werr != nil && (err == nil || !errors.Is(werr, io.ErrClosedPipe)):
		return fmt.Errorf("sandbox %s: copy %s to %s: %w", s.spec.ID, root, dst, werr)
	case err != nil:
		return fmt.Errorf("sandbox %s: copy %s to %s: %w: %s", s.spec.ID, root, dst, err, strings.TrimSpace(out.Buf.String()))
	}
	return nil
}

// uploadData sends the testbed's public view into /data (Create, once).
func (s *box) uploadData(ctx context.Context) error {
	files, err := scanTree(s.spec.Data)
	if err != nil {
		return fmt.Errorf("sandbox %s data %s: %w", s.spec.ID, s.spec.Data, err)
	}
	return s.upload(ctx, dataDir, s.spec.Data, changed(files, nil))
}

// syncShared sends the forum files that are new (or changed) since the
// last call into /shared; the forum sync only adds files, so nothing is
// ever removed there.
func (s *box) syncShared(ctx context.Context) error {
	if s.spec.Shared == "" {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	now, err := scanTree(s.spec.Shared)
	if err != nil {
		return fmt.Errorf("sandbox %s shared %s: %w", s.spec.ID, s.spec.Shared, err)
	}
	files := changed(now, s.sent)
	if len(files) == 0 {
		return nil
	}
	if err := s.upload(ctx, sharedDir, s.spec.Shared, files); err != nil {
		return err
	}
	for _, f := range files {
		s.sent[f] = now[f]
	}
	return nil
}

// treeSize is the bytes of the regular files under root.
func treeSize(root string) (int64, error) {
	files, err := scanTree(root)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, st := range files {
		n += st.size
	}
	return n, nil
}
