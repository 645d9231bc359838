package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// Unpack writes a tree's files (Data loaded) under dir, creating it; dir
// must not exist or be empty. Files get modes 0644/0755 and directories
// 0755. The tree is checked first (clean relative paths, sorted, unique, Data
// matching Size and SHA256), and every write goes through an os.Root, so
// nothing outside dir is followed or created even if dir changes meanwhile.
func Unpack(t *Tree, dir string) error {
	if err := checkFiles(t.Files, true); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("snapshot: unpack into %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("snapshot: unpack into %s: %w", dir, err)
	}
	defer root.Close()
	if err := checkEmpty(root); err != nil {
		return fmt.Errorf("snapshot: unpack into %s: %w", dir, err)
	}
	made := map[string]bool{}
	for _, f := range t.Files {
		if d := path.Dir(f.Path); d != "." && !made[d] {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("snapshot: unpack %s into %s: %w", f.Path, dir, err)
			}
			made[d] = true
		}
		if err := writeNew(root, f); err != nil {
			return fmt.Errorf("snapshot: unpack %s into %s: %w", f.Path, dir, err)
		}
	}
	return nil
}

var errNotEmpty = errors.New("directory is not empty")

func checkEmpty(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if len(names) > 0 {
		return errNotEmpty
	}
	return nil
}

// writeNew creates f (it must not exist) and sets its mode regardless of
// the umask.
func writeNew(root *os.Root, f File) (err error) {
	fh, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(f.Mode))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := fh.Write(f.Data); err != nil {
		return err
	}
	return fh.Chmod(os.FileMode(f.Mode))
}
