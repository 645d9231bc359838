package sandbox

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// File is one regular file of /workspace.
type File struct {
	Path string // relative to /workspace, slash-separated
	Mode uint32 // permission bits
	Data []byte
}

// TreeReader is an optional extra of a Sandbox (found by type assertion):
// it reads every regular file of /workspace in one go, where a backend's
// per-call cost (a container's or a pod's exec) makes one ReadFile per file
// slow. Symbolic links, FIFOs and devices are left out, as a snapshot
// leaves them out.
type TreeReader interface {
	ReadTree(ctx context.Context) ([]File, error)
}

// TreeCommand is the command a backend runs inside the sandbox for
// ReadTree: a tar stream of /workspace on stdout. GNU tar stores links and
// special files as such, never following or opening them.
var TreeCommand = []string{"tar", "-C", "/workspace", "-cf", "-", "."}

// MaxTree bounds what ReadTree returns (a snapshot is far smaller).
const MaxTree = 512 << 20

// ReadTar reads the regular files of a tar stream of /workspace (what
// TreeCommand writes), refusing paths that leave it.
func ReadTar(r io.Reader) ([]File, error) {
	tr := tar.NewReader(r)
	var files []File
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("workspace archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if p == "." || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("workspace archive: path %q leaves the workspace", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("workspace archive: %s: %w", p, err)
		}
		files = append(files, File{Path: p, Mode: uint32(h.Mode) & 0o7777, Data: data})
	}
}
