package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeDir creates files under dir; a name ending in "*" is made executable
// (the "*" is dropped). Files are created in the given order with the given
// mtime.
func writeDir(t *testing.T, dir string, mtime time.Time, files ...[2]string) {
	t.Helper()
	for _, f := range files {
		name, mode := f[0], os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f[1]), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func reg(name, data string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}, data: []byte(data)}
}

func tarBytes(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %q: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tgz(t testing.TB, entries ...entry) []byte { return gz(t, tarBytes(t, entries...)) }

// zerosBomb is a gzip'd tar holding one file of 200 MB of zeros: about
// 200 KB compressed. Built once.
var zerosBomb = sync.OnceValue(func() []byte {
	const size = 200 << 20
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: size})
	zero := make([]byte, 1<<20)
	for i := 0; i < size/len(zero); i++ {
		tw.Write(zero)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
})

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestPackReadUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeDir(t, src, time.Now(),
		[2]string{"README.md", "# hi\n"},
		[2]string{"run.sh*", "#!/bin/sh\necho ok\n"},
		[2]string{".hidden/config", "x=1\n"},
		[2]string{"src/deep/nested/main.go", "package main\n"},
		[2]string{"empty.txt", ""},
	)
	if err := os.MkdirAll(filepath.Join(src, "emptydir", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	tree, archive, err := Pack(src, Limits{})
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	var paths []string
	for _, f := range tree.Files {
		paths = append(paths, f.Path)
	}
	want := ".hidden/config README.md empty.txt run.sh src/deep/nested/main.go"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths = %q, want %q (empty dirs dropped, hidden kept, sorted)", got, want)
	}

	got, err := ReadArchive(bytes.NewReader(archive), Limits{})
	if err != nil {
		t.Fatalf("ReadArchive: %v", err)
	}
	if got.Hash != tree.Hash || got.Bytes != tree.Bytes || len(got.Files) != len(tree.Files) {
		t.Fatalf("ReadArchive tree = %s/%d/%d files, want %s/%d/%d", got.Hash, got.Bytes, len(got.Files), tree.Hash, tree.Bytes, len(tree.Files))
	}
	again, err := Canonical(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, archive) {
		t.Fatal("Canonical(ReadArchive(Pack)) differs from Pack's archive")
	}

	dst := filepath.Join(t.TempDir(), "out")
	if err := Unpack(got, dst); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	for _, f := range tree.Files {
		p := filepath.Join(dst, filepath.FromSlash(f.Path))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, f.Data) {
			t.Errorf("%s: content differs after unpack", f.Path)
		}
		st, _ := os.Stat(p)
		if uint32(st.Mode().Perm()) != f.Mode {
			t.Errorf("%s: mode %o after unpack, want %o", f.Path, st.Mode().Perm(), f.Mode)
		}
	}
	if m := tree.Files[3]; m.Path != "run.sh" || m.Mode != 0o755 {
		t.Errorf("run.sh = %+v, want mode 755", m)
	}
	if m := tree.Files[1]; m.Mode != 0o644 {
		t.Errorf("README.md mode = %o, want 644", m.Mode)
	}

	// Unpack refuses a non-empty directory, and a tree whose data does not
	// match its hashes.
	if err := Unpack(got, dst); err == nil {
		t.Error("Unpack into a non-empty directory succeeded")
	}
	bad := *got
	bad.Files = append([]File(nil), got.Files...)
	bad.Files[0].Data = []byte("tampered")
	bad.Files[0].Size = int64(len("tampered"))
	if err := Unpack(&bad, filepath.Join(t.TempDir(), "bad")); !IsInputError(err) {
		t.Errorf("Unpack of a tampered tree: %v, want an InputError", err)
	}
	esc := &Tree{Files: []File{newFile("../escape", 0o644, []byte("x"))}}
	if err := Unpack(esc, filepath.Join(t.TempDir(), "esc")); !IsInputError(err) {
		t.Errorf("Unpack of ../escape: %v, want an InputError", err)
	}
}

func TestPackIsCanonical(t *testing.T) {
	files := [][2]string{
		{"b.txt", "bee\n"},
		{"a/x.py*", "print(1)\n"},
		{"a/y.txt", "why\n"},
		{"c", ""},
	}
	d1, d2 := t.TempDir(), t.TempDir()
	writeDir(t, d1, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), files...)
	rev := append([][2]string(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	writeDir(t, d2, time.Date(2024, 6, 6, 12, 0, 0, 0, time.UTC), rev...)
	// Other permission bits do not matter, only the executable bit.
	if err := os.Chmod(filepath.Join(d2, "b.txt"), 0o600); err != nil {
		t.Fatal(err)
	}

	t1, b1, err := Pack(d1, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t2, b2, err := Pack(d2, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if t1.Hash != t2.Hash {
		t.Errorf("tree hashes differ: %s vs %s", t1.Hash, t2.Hash)
	}
	if !bytes.Equal(b1, b2) {
		t.Error("archives differ for the same content")
	}

	// A non-canonical upload of the same content (other order, owners,
	// times) reads to the same tree and canonical bytes.
	up := tgz(t,
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./"}},
		entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./c", Mode: 0o640, Uid: 1000, Uname: "me", ModTime: time.Now()}},
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./a/", Mode: 0o755}},
		entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./a/y.txt", Mode: 0o600, Size: 4}, data: []byte("why\n")},
		entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/x.py", Mode: 0o700, Size: 9}, data: []byte("print(1)\n")},
		reg("b.txt", "bee\n"),
	)
	t3, err := ReadArchive(bytes.NewReader(up), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if t3.Hash != t1.Hash {
		t.Errorf("uploaded tree hash %s, want %s", t3.Hash, t1.Hash)
	}
	b3, err := Canonical(t3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b3, b1) {
		t.Error("canonical form of the upload differs from Pack's archive")
	}

	// The hash is the documented one.
	var lines strings.Builder
	for _, f := range t1.Files {
		lines.WriteString(strings.Join([]string{map[uint32]string{0o644: "644", 0o755: "755"}[f.Mode], f.Path, f.SHA256}, " ") + "\n")
	}
	if h := sha256Hex([]byte(lines.String())); h != t1.Hash {
		t.Errorf("Hash = %s, want SHA-256 of %q = %s", t1.Hash, lines.String(), h)
	}

	// The gzip header holds no name and no time.
	zr, err := gzip.NewReader(bytes.NewReader(b1))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header name %q time %v, want none", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != 0 {
			t.Errorf("entry %q not canonical: %+v", h.Name, h)
		}
	}
}

func sha256Hex(b []byte) string { return newFile("x", 0o644, b).SHA256 }

func TestPackRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		lim   Limits
		want  string
	}{
		{"symlink", func(t *testing.T, dir string) {
			writeDir(t, dir, time.Now(), [2]string{"target", "x"})
			if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
				t.Skip("no symlinks:", err)
			}
		}, Limits{}, `"link": is a symbolic link`},
		{"file too large", func(t *testing.T, dir string) {
			writeDir(t, dir, time.Now(), [2]string{"big", strings.Repeat("x", 2000)})
		}, Limits{MaxFileBytes: 1000}, `"big": file is larger than`},
		{"too many files", func(t *testing.T, dir string) {
			writeDir(t, dir, time.Now(), [2]string{"a", ""}, [2]string{"b", ""}, [2]string{"c", ""})
		}, Limits{MaxFiles: 2}, `"c": workspace holds more than 2 files`},
		{"tree too large", func(t *testing.T, dir string) {
			writeDir(t, dir, time.Now(), [2]string{"a", "12345"}, [2]string{"b", "12345"})
		}, Limits{MaxTreeBytes: 8}, `"b": workspace holds more than 8 B`},
		{"backslash name", func(t *testing.T, dir string) {
			writeDir(t, dir, time.Now(), [2]string{`a\b`, ""})
		}, Limits{}, `backslash`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, _, err := Pack(dir, tc.lim)
			if !IsInputError(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "(fix: ") {
				t.Fatalf("Pack: %v, want an InputError with %q and a fix", err, tc.want)
			}
		})
	}
	if _, _, err := Pack(filepath.Join(t.TempDir(), "missing"), Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Pack of a missing dir: %v, want ErrNotExist", err)
	}
}

// patchTypeflag sets the type flag of the tar header block at off and fixes
// its checksum, for types tar.Writer will not write.
func patchTypeflag(b []byte, off int, typ byte) []byte {
	b = append([]byte(nil), b...)
	blk := b[off : off+512]
	blk[156] = typ
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], octal6(sum)+"\x00 ")
	return b
}

// paxRecord formats one PAX record, "LEN key=value\n", LEN counting itself.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

func octal6(n int) string {
	s := ""
	for i := 0; i < 6; i++ {
		s = string(rune('0'+n%8)) + s
		n /= 8
	}
	return s
}

func TestReadArchiveRefuses(t *testing.T) {
	valid := tgz(t, reg("a.txt", "hello\n"), reg("b.txt", "world\n"))
	random := make([]byte, 4096)
	rand.Read(random)
	small := Limits{MaxFiles: 3, MaxFileBytes: 1 << 20, MaxTreeBytes: 2 << 20, MaxArchiveBytes: 1 << 20}

	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		lim     Limits
		want    string
	}{
		{"absolute path", func(t *testing.T) []byte { return tgz(t, reg("/etc/passwd", "x")) }, Limits{}, "absolute path"},
		{"dotdot", func(t *testing.T) []byte { return tgz(t, reg("../x", "x")) }, Limits{}, `".." element`},
		{"dotdot inside", func(t *testing.T) []byte { return tgz(t, reg("a/../../x", "x")) }, Limits{}, `".." element`},
		{"double slash", func(t *testing.T) []byte { return tgz(t, reg("a//b", "x")) }, Limits{}, "not clean"},
		{"dot element", func(t *testing.T) []byte { return tgz(t, reg("a/./b", "x")) }, Limits{}, "not clean"},
		{"file named with slash", func(t *testing.T) []byte {
			return gz(t, patchTypeflag(tarBytes(t, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "a/"}}), 0, tar.TypeReg))
		}, Limits{}, `ends in "/"`},
		{"control character", func(t *testing.T) []byte { return tgz(t, reg("a\nb", "x")) }, Limits{}, "character"},
		{"not utf8", func(t *testing.T) []byte { return tgz(t, reg("a\xffb", "x")) }, Limits{}, "UTF-8"},
		{"symlink", func(t *testing.T) []byte {
			return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "/etc/passwd"}})
		}, Limits{}, "symbolic link"},
		{"hard link", func(t *testing.T) []byte {
			return tgz(t, reg("a", "x"), entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "l", Linkname: "a"}})
		}, Limits{}, "hard link"},
		{"char device", func(t *testing.T) []byte {
			return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}})
		}, Limits{}, "device"},
		{"block device", func(t *testing.T) []byte {
			return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "sda"}})
		}, Limits{}, "device"},
		{"fifo", func(t *testing.T) []byte { return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p"}}) }, Limits{}, "FIFO"},
		{"contiguous file", func(t *testing.T) []byte {
			return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeCont, Name: "c"}})
		}, Limits{}, "tar type"},
		{"pax global header", func(t *testing.T) []byte {
			return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}}}, reg("a", "x"))
		}, Limits{}, "PAX global header"},
		{"gnu sparse", func(t *testing.T) []byte {
			e := reg("s", "")
			e.hdr.Format = tar.FormatGNU
			return gz(t, patchTypeflag(tarBytes(t, e), 0, tar.TypeGNUSparse))
		}, Limits{}, "sparse"},
		{"pax sparse", func(t *testing.T) []byte {
			// PAX 1.0 sparse: 5 bytes of data stand for a file of 1 TB.
			recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
				paxRecord("GNU.sparse.name", "s") + paxRecord("GNU.sparse.realsize", "1000000000000")
			sparseMap := "1\n0\n5\n" + strings.Repeat("\x00", 512-6)
			b := tarBytes(t, reg("PaxHeaders/s", recs), reg("GNUSparseFile/s", sparseMap+"hello"))
			return gz(t, patchTypeflag(b, 0, tar.TypeXHeader))
		}, Limits{}, "sparse"},
		{"duplicate path", func(t *testing.T) []byte { return tgz(t, reg("a", "1"), reg("b", "2"), reg("a", "3")) }, Limits{}, "appears twice"},
		{"duplicate via dot slash", func(t *testing.T) []byte { return tgz(t, reg("a", "1"), reg("./a", "2")) }, Limits{}, "appears twice"},
		{"file is also a directory", func(t *testing.T) []byte { return tgz(t, reg("a", "1"), reg("a/b", "2")) }, Limits{}, "both a file and a directory"},
		{"directory with data", func(t *testing.T) []byte {
			b := tarBytes(t, reg("d", "12345"))
			return gz(t, patchTypeflag(b, 0, tar.TypeDir))
		}, Limits{}, "directory entry carries"},
		{"too many files", func(t *testing.T) []byte {
			return tgz(t, reg("a", ""), reg("b", ""), reg("c", ""), reg("d", ""))
		}, small, "more than 3 files"},
		{"too many entries", func(t *testing.T) []byte {
			var es []entry
			for _, d := range []string{"d1/", "d2/", "d3/", "d4/", "d5/", "d6/", "d7/", "d8/"} {
				es = append(es, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}})
			}
			return tgz(t, es...)
		}, small, "more than 7 entries"},
		{"file too large (gzip bomb)", func(t *testing.T) []byte { return zerosBomb() }, small, "over the 1.0 MiB limit"},
		{"tree too large (gzip bomb)", func(t *testing.T) []byte { return zerosBomb() },
			Limits{MaxFileBytes: 1 << 30, MaxTreeBytes: 1 << 20}, "more than the 1.0 MiB limit"},
		{"header bomb (PAX records)", func(t *testing.T) []byte {
			big := map[string]string{"comment": strings.Repeat("z", 200<<10)}
			return tgz(t, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/", PAXRecords: big}}, reg("a", "x"))
		}, Limits{MaxFiles: 1, MaxTreeBytes: 1024}, "unpacks to more than"},
		{"tree too large (running total)", func(t *testing.T) []byte {
			mb := strings.Repeat("\x00", 1<<20)
			return tgz(t, reg("a", mb), reg("b", mb), reg("c", mb))
		}, small, `"c": files add up to more than the 2.0 MiB limit`},
		{"archive too large", func(t *testing.T) []byte { return tgz(t, reg("r", string(random))) },
			Limits{MaxArchiveBytes: 1024}, "compressed archive is larger than"},
		{"not gzip", func(t *testing.T) []byte { return []byte("this is not a tar.gz") }, Limits{}, "not a gzip stream"},
		{"empty input", func(t *testing.T) []byte { return nil }, Limits{}, "not a gzip stream"},
		{"random bytes", func(t *testing.T) []byte { return random }, Limits{}, "not a gzip stream"},
		{"plain tar", func(t *testing.T) []byte { return tarBytes(t, reg("a", "x")) }, Limits{}, "not a gzip stream"},
		{"truncated gzip", func(t *testing.T) []byte { return valid[:len(valid)/2] }, Limits{}, "truncated"},
		{"truncated gzip trailer", func(t *testing.T) []byte { return valid[:len(valid)-4] }, Limits{}, "truncated"},
		{"truncated tar in gzip", func(t *testing.T) []byte { return gz(t, tarBytes(t, reg("a", strings.Repeat("x", 2000)))[:1024]) }, Limits{}, "truncated"},
		{"corrupt crc", func(t *testing.T) []byte {
			b := append([]byte(nil), valid...)
			b[len(b)-8] ^= 0xff
			return b
		}, Limits{}, "corrupt"},
		{"garbage after gzip", func(t *testing.T) []byte { return append(append([]byte(nil), valid...), "junk"...) }, Limits{}, "after the end of the gzip stream"},
		{"second gzip member", func(t *testing.T) []byte { return append(append([]byte(nil), valid...), valid...) }, Limits{}, "after the end of the gzip stream"},
		{"garbage after tar", func(t *testing.T) []byte {
			return gz(t, append(tarBytes(t, reg("a", "x")), "junk"...))
		}, Limits{}, "after the end of the tar archive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.archive(t)
			cr := &countingReader{r: bytes.NewReader(b)}
			start := time.Now()
			tree, err := ReadArchive(cr, tc.lim)
			if err == nil {
				t.Fatalf("ReadArchive accepted it: %d files", len(tree.Files))
			}
			if !IsInputError(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "(fix: ") {
				t.Fatalf("ReadArchive: %v\nwant an InputError with %q and a fix", err, tc.want)
			}
			if strings.Contains(tc.name, "bomb") {
				// Refused at the header: almost none of the 200 MB was
				// decompressed.
				if cr.n > 64<<10 || time.Since(start) > time.Second {
					t.Errorf("bomb refused after reading %d of %d compressed bytes in %v", cr.n, len(b), time.Since(start))
				}
			}
		})
	}
}

func TestReadArchiveAccepts(t *testing.T) {
	// "tar -C dir ." style: a "./" root, "./" prefixes, directory entries,
	// GNU long names, and tar's record padding after the end marker.
	long := strings.Repeat("d/", 60) + "f.txt"
	b := tarBytes(t,
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}},
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./sub/", Mode: 0o755}},
		reg("./sub/a", "a\n"),
		entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: long, Mode: 0o644, Size: 1, Format: tar.FormatGNU}, data: []byte("x")},
	)
	b = append(b, make([]byte, 10240-len(b)%10240)...)
	tree, err := ReadArchive(bytes.NewReader(gz(t, b)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Files) != 2 || tree.Files[0].Path != long || tree.Files[1].Path != "sub/a" || tree.Bytes != 3 {
		t.Fatalf("tree = %+v", tree.Files)
	}
	// An empty archive is an empty tree.
	tree, err = ReadArchive(bytes.NewReader(tgz(t)), Limits{})
	if err != nil || len(tree.Files) != 0 || tree.Hash != sha256Hex(nil) {
		t.Fatalf("empty archive: %v %+v", err, tree)
	}
}

func TestID(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC)
	tree := strings.Repeat("ab", 32)
	base := ID(tree, "", "alice", at)
	if !strings.HasPrefix(base, "snap_") || len(base) != 5+24 {
		t.Fatalf("ID = %q", base)
	}
	if ID(tree, "", "alice", at.In(time.FixedZone("X", 3600))) != base {
		t.Error("ID depends on the time zone")
	}
	if want := "snap_" + sha256Hex([]byte("aar-snapshot/1\ntree " + tree + "\nparent \nauthor alice\ntime 2025-03-01T12:00:00.000000005Z\n"))[:24]; base != want {
		t.Errorf("ID = %s, want %s", base, want)
	}
	for name, id := range map[string]string{
		"parent": ID(tree, "snap_0123", "alice", at),
		"author": ID(tree, "", "bob", at),
		"time":   ID(tree, "", "alice", at.Add(time.Nanosecond)),
		"tree":   ID(strings.Repeat("cd", 32), "", "alice", at),
	} {
		if id == base {
			t.Errorf("ID unchanged by a different %s", name)
		}
	}
}

func TestStore(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	upload := tgz(t, reg("b", "bee\n"), reg("a", "ay\n"))
	tree, err := s.Put(bytes.NewReader(upload), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(s.dir, tree.Hash[:2], tree.Hash+".tar.gz")
	st1, err := os.Stat(blob)
	if err != nil {
		t.Fatalf("blob not at %s: %v", blob, err)
	}

	// Putting the same tree again keeps the existing blob.
	s.writeFile = func(string, []byte) error { t.Error("existing blob rewritten"); return nil }
	if again, err := s.Put(bytes.NewReader(upload), Limits{}); err != nil || again.Hash != tree.Hash {
		t.Fatalf("second Put: %v", err)
	}
	if st2, _ := os.Stat(blob); !os.SameFile(st1, st2) || !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("existing blob replaced")
	}

	got, err := s.Get(tree.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != tree.Hash || len(got.Files) != 2 || string(got.Files[0].Data) != "ay\n" {
		t.Fatalf("Get = %+v", got)
	}
	rc, err := s.Archive(tree.Hash)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	canon, _ := Canonical(tree)
	if !bytes.Equal(stored, canon) {
		t.Error("stored archive is not the canonical form")
	}

	unknown := strings.Repeat("0", 64)
	for _, op := range []func(string) error{
		func(h string) error { _, err := s.Get(h); return err },
		func(h string) error { _, err := s.Archive(h); return err },
	} {
		if err := op(unknown); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("unknown hash: %v, want ErrNotExist", err)
		}
		for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("0", 63), strings.Repeat("0", 65)} {
			if err := op(bad); !IsInputError(err) || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("hash %q: %v, want an InputError", bad, err)
			}
		}
	}

	// A damaged blob is reported, not returned.
	if err := os.WriteFile(blob, canon[:len(canon)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(tree.Hash); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Get of a damaged blob: %v", err)
	}

	// A failed write leaves no blob behind; a refused upload writes nothing.
	s.writeFile = func(string, []byte) error { return errors.New("disk full") }
	if _, err := s.Put(bytes.NewReader(tgz(t, reg("new", "x"))), Limits{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Put with a failing disk: %v", err)
	}
	if _, err := s.Put(bytes.NewReader(tgz(t, reg("../x", "x"))), Limits{}); !IsInputError(err) {
		t.Errorf("Put of a bad archive: %v", err)
	}
	s.writeFile = writeFileAtomic
	var names []string
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && !d.IsDir() {
			names = append(names, filepath.Base(p))
		}
		return nil
	})
	if len(names) != 1 {
		t.Errorf("store holds %v, want only the first blob", names)
	}
}

func TestWriteFileAtomicCleansUp(t *testing.T) {
	dir := t.TempDir()
	if err := writeFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x")); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	p := filepath.Join(dir, "blob")
	if err := writeFileAtomic(p, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "data" {
		t.Fatalf("blob = %q", b)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("dir holds %d entries, want 1 (no temp files)", len(es))
	}
}

func mkTree(t *testing.T, files ...File) *Tree {
	t.Helper()
	tr, err := newTree(files)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestDiff(t *testing.T) {
	a := mkTree(t,
		newFile("changed.txt", 0o644, []byte("one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n")),
		newFile("removed.txt", 0o644, []byte("gone\n")),
		newFile("same.txt", 0o644, []byte("same\n")),
		newFile("bin.dat", 0o644, []byte("a\x00b")),
		newFile("run.sh", 0o644, []byte("#!/bin/sh\n")),
		newFile("noeol.txt", 0o644, []byte("x")),
		newFile("empty-gone", 0o644, nil),
	)
	b := mkTree(t,
		newFile("changed.txt", 0o644, []byte("one\ntwo\nthree\nFOUR\nfive\nsix\nseven\neight\n")),
		newFile("added.txt", 0o644, []byte("new\nfile\n")),
		newFile("same.txt", 0o644, []byte("same\n")),
		newFile("bin.dat", 0o644, []byte("a\x00c")),
		newFile("run.sh", 0o755, []byte("#!/bin/sh\n")),
		newFile("noeol.txt", 0o644, []byte("x\n")),
		newFile("latin1.txt", 0o644, []byte("caf\xe9\n")),
		newFile("empty-new", 0o644, nil),
	)
	want := `--- a/added.txt
+++ b/added.txt
@@ -0,0 +1,2 @@
+new
+file
Binary files a/bin.dat and b/bin.dat differ
--- a/changed.txt
+++ b/changed.txt
@@ -1,7 +1,7 @@
 one
 two
 three
-four
+FOUR
 five
 six
 seven
Empty file a/empty-gone removed
Empty file b/empty-new added
Binary files a/latin1.txt and b/latin1.txt differ
--- a/noeol.txt
+++ b/noeol.txt
@@ -1 +1 @@
-x
\ No newline at end of file
+x
--- a/removed.txt
+++ b/removed.txt
@@ -1 +0,0 @@
-gone
Mode of run.sh changed from 644 to 755
`
	if got := Diff(a, b); got != want {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
	if got := Diff(a, a); got != "" {
		t.Errorf("Diff of a tree with itself = %q", got)
	}
	big := newFile("big", 0o644, bytes.Repeat([]byte("x\n"), maxDiffBytes))
	if got := Diff(mkTree(t), mkTree(t, big)); got != "Files a/big and b/big differ (too large to diff)\n" {
		t.Errorf("Diff of a large file = %q", got)
	}
}

func FuzzReadArchive(f *testing.F) {
	valid := tgz(f, reg("a.txt", "hello\n"), reg("dir/b.sh", "#!/bin/sh\n"),
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "dir/", Mode: 0o755}})
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(tgz(f))
	f.Add(tgz(f, reg("../x", "x")))
	random := make([]byte, 512)
	rand.Read(random)
	f.Add(random)
	lim := Limits{MaxArchiveBytes: 1 << 20, MaxTreeBytes: 1 << 20, MaxFiles: 50, MaxFileBytes: 256 << 10}
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := ReadArchive(bytes.NewReader(b), lim)
		if err != nil {
			return
		}
		if len(tree.Files) > lim.MaxFiles || tree.Bytes > lim.MaxTreeBytes {
			t.Fatalf("tree over the limits: %d files, %d bytes", len(tree.Files), tree.Bytes)
		}
		var sum int64
		for i, fl := range tree.Files {
			if err := checkPath(fl.Path); err != nil {
				t.Fatalf("accepted bad path: %v", err)
			}
			if i > 0 && tree.Files[i-1].Path >= fl.Path {
				t.Fatalf("paths not sorted and unique: %q, %q", tree.Files[i-1].Path, fl.Path)
			}
			if fl.Size > lim.MaxFileBytes || int64(len(fl.Data)) != fl.Size || sha256Hex(fl.Data) != fl.SHA256 {
				t.Fatalf("file %q: size %d, data %d, hash mismatch or over limit", fl.Path, fl.Size, len(fl.Data))
			}
			if fl.Mode != 0o644 && fl.Mode != 0o755 {
				t.Fatalf("file %q: mode %o", fl.Path, fl.Mode)
			}
			sum += fl.Size
		}
		if sum != tree.Bytes || treeHash(tree.Files) != tree.Hash {
			t.Fatal("Bytes or Hash does not recompute")
		}
		// The canonical form reads back to the same tree.
		canon, err := Canonical(tree)
		if err != nil {
			t.Fatalf("Canonical: %v", err)
		}
		again, err := ReadArchive(bytes.NewReader(canon), Limits{})
		if err != nil || again.Hash != tree.Hash {
			t.Fatalf("canonical form does not read back: %v", err)
		}
	})
}
