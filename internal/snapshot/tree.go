package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits bound an archive. Zero fields take DefaultLimits' values.
type Limits struct {
	MaxArchiveBytes int64 // compressed upload (default 100 MiB)
	MaxTreeBytes    int64 // sum of file sizes once unpacked (default 512 MiB)
	MaxFiles        int   // regular files (default 20,000)
	MaxFileBytes    int64 // one file (default 64 MiB)
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveBytes: 100 << 20,
		MaxTreeBytes:    512 << 20,
		MaxFiles:        20_000,
		MaxFileBytes:    64 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxArchiveBytes <= 0 {
		l.MaxArchiveBytes = d.MaxArchiveBytes
	}
	if l.MaxTreeBytes <= 0 {
		l.MaxTreeBytes = d.MaxTreeBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	return l
}

// noLimits is used to read archives the Store wrote itself: they passed the
// caller's limits when they were put.
var noLimits = Limits{
	MaxArchiveBytes: math.MaxInt64,
	MaxTreeBytes:    math.MaxInt64,
	MaxFiles:        math.MaxInt,
	MaxFileBytes:    math.MaxInt64,
}

// Path limits. They keep every path usable on common file systems and in
// tar headers.
const (
	maxPathBytes    = 1024
	maxElementBytes = 255
)

// File is one regular file of a tree.
type File struct {
	Path   string // slash-separated, relative, clean, no ".." element
	Mode   uint32 // 0o644 or 0o755 (executable bit only is kept)
	Size   int64
	SHA256 string // hex of the content
	Data   []byte // content (may be nil when not loaded)
}

// Tree is a canonical file tree.
type Tree struct {
	Hash  string // hex SHA-256 over the sorted lines "MODE PATH SHA256\n" (mode as %o), like git's tree
	Files []File // sorted by Path
	Bytes int64  // sum of sizes
}

// canonicalMode keeps only the executable bit of perm.
func canonicalMode(perm uint32) uint32 {
	if perm&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func newFile(path string, perm uint32, data []byte) File {
	sum := sha256.Sum256(data)
	return File{Path: path, Mode: canonicalMode(perm), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: data}
}

// treeHash is the hex SHA-256 over the lines "MODE PATH SHA256\n" of files,
// which must already be sorted by path.
func treeHash(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%o %s %s\n", f.Mode, f.Path, f.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newTree sorts files, checks them with checkFiles, and returns their tree.
func newTree(files []File) (*Tree, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if err := checkFiles(files, false); err != nil {
		return nil, err
	}
	t := &Tree{Files: files, Hash: treeHash(files)}
	for _, f := range files {
		t.Bytes += f.Size
	}
	return t, nil
}

// checkFiles checks that files are sorted by valid, unique paths, that no
// file's path is another file's directory, that modes are canonical and
// hashes well formed. With needData it also checks that each file's Data is
// loaded and matches its Size and SHA256.
func checkFiles(files []File, needData bool) error {
	for i, f := range files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
		if i > 0 {
			prev := files[i-1].Path
			switch {
			case prev == f.Path:
				return inputErrorf(f.Path, "keep one entry per path", "path appears twice")
			case prev > f.Path:
				return inputErrorf(f.Path, "sort the files by path", "files are not sorted by path")
			}
		}
		if f.Mode != 0o644 && f.Mode != 0o755 {
			return inputErrorf(f.Path, "use mode 0644 or 0755", "mode %o is not canonical", f.Mode)
		}
		if f.Size < 0 {
			return inputErrorf(f.Path, "give the file's real size", "negative size")
		}
		if !isHexHash(f.SHA256) {
			return inputErrorf(f.Path, "give the hex SHA-256 of the content", "SHA256 is not 64 lower-case hex characters")
		}
		if needData {
			if int64(len(f.Data)) != f.Size {
				return inputErrorf(f.Path, "load the file's content", "content holds %d bytes, size says %d", len(f.Data), f.Size)
			}
			if sum := sha256.Sum256(f.Data); hex.EncodeToString(sum[:]) != f.SHA256 {
				return inputErrorf(f.Path, "recompute the file's SHA256", "content does not match its SHA256")
			}
		}
	}
	// A path that is a file cannot also be a directory of another file. In
	// sorted order "a" comes before "a/b", though other paths ("a-b", "a.b")
	// may fall between, so look each file's parents up in a set.
	if len(files) > 1 {
		isFile := make(map[string]bool, len(files))
		for _, f := range files {
			isFile[f.Path] = true
		}
		for _, f := range files {
			for dir := f.Path; ; {
				i := strings.LastIndexByte(dir, '/')
				if i < 0 {
					break
				}
				dir = dir[:i]
				if isFile[dir] {
					return inputErrorf(f.Path, "rename the file or the directory", "%q is both a file and a directory", dir)
				}
			}
		}
	}
	return nil
}

// checkPath accepts a slash-separated, relative, clean path of UTF-8
// without control characters or backslashes.
func checkPath(p string) error {
	switch {
	case p == "" || p == ".":
		return inputErrorf(p, "give each file a name", "empty path")
	case len(p) > maxPathBytes:
		return inputErrorf(p[:64]+"…", "shorten the path", "path is longer than %d bytes", maxPathBytes)
	case !utf8.ValidString(p):
		return inputErrorf(p, "rename the file with UTF-8 characters", "path is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return inputErrorf(p, "pack paths relative to the workspace root", "absolute path")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return inputErrorf(p, "rename the file without control characters or backslashes", "path holds the character %q", r)
		}
	}
	for _, el := range strings.Split(p, "/") {
		switch {
		case el == "..":
			return inputErrorf(p, "pack paths that stay inside the workspace root", "path has a \"..\" element")
		case el == "" || el == ".":
			return inputErrorf(p, "write the path without empty or \".\" elements", "path is not clean")
		case len(el) > maxElementBytes:
			return inputErrorf(p, "shorten the name", "a name in the path is longer than %d bytes", maxElementBytes)
		}
	}
	return nil
}

func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ID is a snapshot's id: "snap_" + the first 24 hex chars of SHA-256 over
// "aar-snapshot/1\ntree TREE\nparent PARENT\nauthor AUTHOR\ntime RFC3339NANO-UTC\n",
// so identical trees from different lineages, authors or times get distinct ids.
func ID(tree, parent, author string, at time.Time) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "aar-snapshot/1\ntree %s\nparent %s\nauthor %s\ntime %s\n",
		tree, parent, author, at.UTC().Format(time.RFC3339Nano))
	sum := sha256.Sum256(b.Bytes())
	return "snap_" + hex.EncodeToString(sum[:])[:24]
}
