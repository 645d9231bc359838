package snapshot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// epoch is the modification time of every entry of a canonical archive. The
// zero time.Time does not fit a ustar header, so the Unix epoch stands in.
var epoch = time.Unix(0, 0)

// Canonical returns the canonical archive bytes of a tree (Data loaded): a
// gzip'd tar with one entry per file in Path order, regular files only
// (directories implied), zero mtime/uid/gid, no owner names, mode 0644 or
// 0755, and a gzip header with no name and zero ModTime. The same tree always
// gives the same bytes from the same build; the tree's Hash, not the archive
// bytes, is its identity across builds.
func Canonical(t *Tree) ([]byte, error) {
	if err := checkFiles(t.Files, true); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range t.Files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.Path,
			Mode:     int64(f.Mode),
			Size:     f.Size,
			ModTime:  epoch,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("snapshot: write tar header for %q: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("snapshot: write tar data for %q: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("snapshot: close tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("snapshot: close gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// Pack reads the directory dir (regular files and directories only: a
// symlink, device, socket or a file over the limits is an error naming its
// path and the fix; empty directories are dropped; hidden files are kept) and
// returns its tree, with Data loaded, and its canonical archive (see
// Canonical), so the same tree always gives the same bytes.
//
// Pack reads through an os.Root, so nothing outside dir is read even if the
// directory changes while it is packed.
func Pack(dir string, lim Limits) (*Tree, []byte, error) {
	lim = lim.withDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: pack %s: %w", dir, err)
	}
	defer root.Close()
	var (
		files []File
		total int64
	)
	walkErr := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("snapshot: pack %s: %w", dir, err)
		}
		if p == "." {
			return nil
		}
		if err := checkPath(p); err != nil {
			return err
		}
		switch typ := d.Type(); {
		case typ.IsDir():
			return nil
		case typ&fs.ModeSymlink != 0:
			return inputErrorf(p, "replace the link with the file it points to, or remove it", "is a symbolic link")
		case !typ.IsRegular():
			return inputErrorf(p, "remove it from the workspace", "is not a regular file or directory (%s)", typeName(typ))
		}
		if len(files) >= lim.MaxFiles {
			return inputErrorf(p, "remove files from the workspace or keep data outside it",
				"workspace holds more than %d files", lim.MaxFiles)
		}
		f, err := packFile(root, p, lim.MaxFileBytes)
		if err != nil {
			return err
		}
		total += f.Size
		if total > lim.MaxTreeBytes {
			return inputErrorf(p, "remove large files from the workspace or keep data outside it",
				"workspace holds more than %s", humanBytes(lim.MaxTreeBytes))
		}
		files = append(files, f)
		return nil
	})
	if walkErr != nil {
		return nil, nil, walkErr
	}
	t, err := newTree(files)
	if err != nil {
		return nil, nil, err
	}
	b, err := Canonical(t)
	if err != nil {
		return nil, nil, err
	}
	return t, b, nil
}

// packFile reads one regular file, refusing it if it has become something
// else since the directory was listed or holds more than maxBytes.
func packFile(root *os.Root, p string, maxBytes int64) (File, error) {
	fh, err := root.OpenFile(p, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return File{}, fmt.Errorf("snapshot: pack %s: %w", p, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return File{}, fmt.Errorf("snapshot: pack %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return File{}, inputErrorf(p, "remove it from the workspace", "is not a regular file (%s)", typeName(st.Mode().Type()))
	}
	tooBig := inputErrorf(p, "remove the file or keep large data outside the workspace",
		"file is larger than the %s limit", humanBytes(maxBytes))
	if st.Size() > maxBytes {
		return File{}, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxBytes+1))
	if err != nil {
		return File{}, fmt.Errorf("snapshot: pack %s: %w", p, err)
	}
	if int64(len(data)) > maxBytes {
		return File{}, tooBig
	}
	return newFile(p, uint32(st.Mode().Perm()), data), nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return "type " + m.String()
}

// Per-entry allowance for tar headers (including PAX and GNU long-name
// records) in the decompressed stream, and the zero padding allowed after
// the end-of-archive marker (tar pads to 10 KiB records).
const (
	headerAllowance   = 8 << 10
	trailingAllowance = 64 << 10
)

var (
	errArchiveTooLarge = errors.New("compressed archive too large")
	errStreamTooLarge  = errors.New("decompressed stream too large")
)

// limitReader reads from r and fails with err once more than n bytes have
// come through, so a caller never reads more than n+1 bytes from r.
type limitReader struct {
	r   io.Reader
	n   int64 // bytes still allowed
	err error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, l.err
	}
	if int64(len(p))-1 > l.n {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, l.err
	}
	return n, err
}

// ReadArchive validates an uploaded tar.gz (from a researcher: hostile) and
// returns its tree with Data loaded. It refuses, with an *InputError naming
// the entry and the fix: absolute paths, ".." elements, paths that clean to
// something else, duplicate paths, a path that is both a file and a
// directory, symlinks, hard links, devices, FIFOs, anything but regular files
// and directories (a PAX global header, as git archive writes, included),
// PAX/GNU sparse files, any entry once the running total passes MaxTreeBytes
// / MaxFiles / MaxFileBytes, a compressed stream longer than MaxArchiveBytes,
// trailing garbage, a truncated stream, a non-gzip input. Reading stops as
// soon as a limit is passed: an archive bomb costs at most the limits in
// memory and time (the decompressed stream is also capped at MaxTreeBytes
// plus 8 KiB of headers per allowed entry). Directory entries are allowed
// but not kept. A leading "./" (as "tar -C dir ." writes) is dropped.
func ReadArchive(r io.Reader, lim Limits) (*Tree, error) {
	return readArchive(r, lim.withDefaults())
}

func readArchive(r io.Reader, lim Limits) (*Tree, error) {
	tooLarge := inputErrorf("", "upload a smaller archive: remove large files from the workspace",
		"compressed archive is larger than the %s limit", humanBytes(lim.MaxArchiveBytes))
	br := bufio.NewReader(&limitReader{r: r, n: lim.MaxArchiveBytes, err: errArchiveTooLarge})
	zr, err := gzip.NewReader(br)
	if err != nil {
		switch {
		case errors.Is(err, errArchiveTooLarge):
			return nil, tooLarge
		case errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, inputErrorf("", "upload a tar.gz archive (tar -czf)", "input is not a gzip stream")
		}
		return nil, fmt.Errorf("snapshot: read archive: %w", err)
	}
	zr.Multistream(false)
	// Cap the decompressed stream so that headers which carry no file data
	// (directories, PAX records) cannot make a bomb either.
	maxEntries := satAdd(satMul(int64(lim.MaxFiles), 2), 1)
	streamMax := satAdd(lim.MaxTreeBytes, satAdd(satMul(headerAllowance, maxEntries+1), trailingAllowance))
	lr := &limitReader{r: zr, n: streamMax, err: errStreamTooLarge}
	tr := tar.NewReader(lr)

	// streamErr turns a read error into what the researcher should see.
	streamErr := func(entry string, err error) error {
		switch {
		case errors.Is(err, errArchiveTooLarge):
			return tooLarge
		case errors.Is(err, errStreamTooLarge):
			return inputErrorf(entry, "remove files from the workspace",
				"archive unpacks to more than %s of headers and contents", humanBytes(streamMax))
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return inputErrorf(entry, "upload the whole archive again", "archive is truncated")
		case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader):
			return inputErrorf(entry, "upload the archive again; it was damaged", "gzip stream is corrupt (%v)", err)
		case errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong):
			return inputErrorf(entry, "create the archive with tar -czf", "tar stream is corrupt (%v)", err)
		}
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			return inputErrorf(entry, "upload the archive again; it was damaged", "gzip stream is corrupt (%v)", err)
		}
		return fmt.Errorf("snapshot: read archive entry %q: %w", entry, err)
	}

	var (
		files   []File
		seen    = map[string]bool{}
		total   int64
		entries int64
		last    string
	)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			err = nil // with GODEBUG=tarinsecurepath=0; checkPath says more
		}
		if err != nil {
			return nil, streamErr(last, err)
		}
		entries++
		name, isDir := strings.CutSuffix(hdr.Name, "/")
		name = strings.TrimPrefix(name, "./")
		last = name
		if name == "." && (isDir || hdr.Typeflag == tar.TypeDir) {
			continue // "tar -C dir ." writes the root as "./"
		}
		if entries > maxEntries {
			return nil, inputErrorf(name, "remove files or empty directories from the workspace",
				"archive holds more than %d entries", maxEntries)
		}
		if err := checkPath(name); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparseRecord(hdr.PAXRecords) {
			return nil, inputErrorf(name, "pack without sparse files (tar without --sparse)", "sparse file")
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if hdr.Size != 0 {
				return nil, inputErrorf(name, "create the archive with tar -czf", "directory entry carries %d bytes of data", hdr.Size)
			}
			continue
		case tar.TypeReg: // the reader turns the legacy TypeRegA into TypeReg or TypeDir
			if isDir {
				return nil, inputErrorf(name, "create the archive with tar -czf", "regular file entry's name ends in \"/\"")
			}
		case tar.TypeSymlink:
			return nil, inputErrorf(name, "replace the link with the file it points to (tar -h), or remove it", "symbolic link")
		case tar.TypeLink:
			return nil, inputErrorf(name, "pack the linked file as a plain copy (tar --hard-dereference)", "hard link")
		case tar.TypeChar, tar.TypeBlock:
			return nil, inputErrorf(name, "remove the device from the workspace", "device file")
		case tar.TypeFifo:
			return nil, inputErrorf(name, "remove the named pipe from the workspace", "named pipe (FIFO)")
		case tar.TypeXGlobalHeader:
			return nil, inputErrorf(name, "create the archive with tar -czf rather than git archive", "PAX global header")
		default:
			return nil, inputErrorf(name, "keep only regular files and directories in the archive",
				"entry of tar type %q", hdr.Typeflag)
		}
		if seen[name] {
			return nil, inputErrorf(name, "keep one entry per path", "path appears twice in the archive")
		}
		seen[name] = true
		if len(files) >= lim.MaxFiles {
			return nil, inputErrorf(name, "remove files from the workspace or keep data outside it",
				"archive holds more than %d files", lim.MaxFiles)
		}
		if hdr.Size > lim.MaxFileBytes {
			return nil, inputErrorf(name, "remove the file or keep large data outside the workspace",
				"file is %s, over the %s limit", humanBytes(hdr.Size), humanBytes(lim.MaxFileBytes))
		}
		if hdr.Size > lim.MaxTreeBytes-total {
			return nil, inputErrorf(name, "remove large files from the workspace or keep data outside it",
				"files add up to more than the %s limit", humanBytes(lim.MaxTreeBytes))
		}
		total += hdr.Size
		data, err := readData(tr, hdr.Size)
		if err != nil {
			return nil, streamErr(name, err)
		}
		files = append(files, newFile(name, uint32(hdr.Mode), data))
	}
	// After the end-of-archive marker: tar's zero padding only, then the end
	// of the gzip member (which checks its CRC), then nothing at all.
	if err := checkZeroTail(lr); err != nil {
		if errors.Is(err, errTrailing) {
			return nil, inputErrorf("", "upload the archive alone, exactly as tar -czf wrote it", "data after the end of the tar archive")
		}
		return nil, streamErr("", err)
	}
	if _, err := br.ReadByte(); err == nil {
		return nil, inputErrorf("", "upload the archive alone, exactly as tar -czf wrote it", "data after the end of the gzip stream")
	} else if !errors.Is(err, io.EOF) {
		return nil, streamErr("", err)
	}
	if err := zr.Close(); err != nil {
		return nil, streamErr("", err)
	}
	return newTree(files)
}

// readData reads an entry's size bytes, which the caller has checked
// against the limits.
func readData(r io.Reader, size int64) ([]byte, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}

var errTrailing = errors.New("trailing data")

// checkZeroTail reads r to its end and fails unless at most
// trailingAllowance bytes, all zero, were left.
func checkZeroTail(r io.Reader) error {
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if n > trailingAllowance {
			return errTrailing
		}
		for _, c := range buf[:k] {
			if c != 0 {
				return errTrailing
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func hasSparseRecord(recs map[string]string) bool {
	for k := range recs {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func satAdd(a, b int64) int64 {
	if a > 0 && b > 0 && a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a != 0 && b > (1<<63-1)/a {
		return 1<<63 - 1
	}
	return a * b
}

// FromFiles builds a tree and its canonical archive from files held in
// memory (Path, Mode's permission bits and Data are read; Size and SHA256
// are computed), checked against the same limits as Pack. It is how a
// workspace is snapshotted when it is reachable only through a sandbox.
func FromFiles(in []File, lim Limits) (*Tree, []byte, error) {
	lim = lim.withDefaults()
	if len(in) > lim.MaxFiles {
		return nil, nil, inputErrorf(in[lim.MaxFiles].Path, "remove files from the workspace or keep data outside it",
			"workspace holds more than %d files", lim.MaxFiles)
	}
	files := make([]File, 0, len(in))
	var total int64
	for _, f := range in {
		if err := checkPath(f.Path); err != nil {
			return nil, nil, err
		}
		if int64(len(f.Data)) > lim.MaxFileBytes {
			return nil, nil, inputErrorf(f.Path, "keep large files outside the workspace", "is larger than %s", humanBytes(lim.MaxFileBytes))
		}
		if total += int64(len(f.Data)); total > lim.MaxTreeBytes {
			return nil, nil, inputErrorf(f.Path, "remove large files from the workspace or keep data outside it",
				"workspace holds more than %s", humanBytes(lim.MaxTreeBytes))
		}
		files = append(files, newFile(f.Path, f.Mode, f.Data))
	}
	t, err := newTree(files)
	if err != nil {
		return nil, nil, err
	}
	b, err := Canonical(t)
	if err != nil {
		return nil, nil, err
	}
	return t, b, nil
}
