package docker

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ImageOptions say what the sandbox image holds: a minimal root (an
// /etc with only root and the researcher, uid 1000), the toolchain copied
// from this host's Paths, and the aar binary.
type ImageOptions struct {
	// Profile names the toolchain (the tag's prefix); default "cpu".
	Profile string
	// Paths are host files or directories (globs allowed) copied into the
	// image at the same place; default DefaultImagePaths(). Never the
	// host's /, /etc, /home, /root or /var.
	Paths []string
	// Exclude are paths under Paths left out.
	Exclude []string
	// AarBinary is copied to /usr/local/bin/aar (a sandbox also gets the
	// worker's own binary bound over it).
	AarBinary string
	// Progress gets a line now and then while the base layer is written.
	Progress io.Writer
}

// DefaultImagePaths is the cpu toolchain: the shell and coreutils, Debian's
// python3 with numpy, scipy and scikit-learn, and the shared libraries
// they load — the part of the local sandbox's cpu profile a W2S method
// uses, without the host's compilers, browsers and SDKs.
func DefaultImagePaths() []string {
	return []string{"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
		"/usr/lib/python3", "/usr/lib/python3.*", "/usr/share/zoneinfo", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ssl"}
}

// defaultExclude are big trees under DefaultImagePaths no method needs.
var defaultExclude = []string{"/usr/lib/x86_64-linux-gnu/dri", "/usr/lib/x86_64-linux-gnu/libLLVM*", "/usr/lib/x86_64-linux-gnu/perl*", "/usr/lib/x86_64-linux-gnu/libgtk*", "/usr/lib/x86_64-linux-gnu/libwebkit*"}

var forbiddenImagePaths = []string{"/", "/etc", "/home", "/root", "/var", "/proc", "/sys", "/dev", "/run", "/tmp", "/usr", "/usr/local", "/usr/lib"}

// EnsureImage returns the sandbox image for opts, building it when the
// engine does not have it: the base layer (toolchain) is tagged by a hash
// of the paths and the host's package list, so it is built once per host
// and toolchain; the aar layer on top by the binary's hash.
func EnsureImage(ctx context.Context, c *client.Client, opts ImageOptions) (string, error) {
	if opts.Profile == "" {
		opts.Profile = "cpu"
	}
	if len(opts.Paths) == 0 {
		opts.Paths = DefaultImagePaths()
		opts.Exclude = append(opts.Exclude, defaultExclude...)
	}
	paths, err := expandPaths(opts.Paths)
	if err != nil {
		return "", err
	}
	if opts.AarBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		opts.AarBinary = exe
	}
	h := sha256.New()
	fmt.Fprintf(h, "aar sandbox base v1\n%q\n%q\n", paths, opts.Exclude)
	if b, err := os.ReadFile("/var/lib/dpkg/status"); err == nil {
		h.Write(b)
	}
	base := "aar-sandbox-base:" + opts.Profile + "-" + hex.EncodeToString(h.Sum(nil))[:12]
	if !imageExists(ctx, c, base) {
		if err := importBase(ctx, c, base, paths, opts); err != nil {
			return "", err
		}
	}
	aarSum, err := fileHash(opts.AarBinary)
	if err != nil {
		return "", fmt.Errorf("aar binary %s: %w", opts.AarBinary, err)
	}
	ref := "aar-sandbox:" + opts.Profile + "-" + hashOf(base, aarSum)[:12]
	if imageExists(ctx, c, ref) {
		return ref, nil
	}
	if err := addAar(ctx, c, base, ref, opts.AarBinary); err != nil {
		return "", err
	}
	return ref, nil
}

func imageExists(ctx context.Context, c *client.Client, ref string) bool {
	_, err := c.ImageInspect(ctx, ref)
	return err == nil
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%q\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// expandPaths resolves globs, drops what does not exist and refuses the
// host's state directories.
func expandPaths(in []string) ([]string, error) {
	var out []string
	for _, p := range in {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("image path %q must be absolute", p)
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("image path %q: %w", p, err)
		}
		for _, m := range matches {
			m = filepath.Clean(m)
			if slices.Contains(forbiddenImagePaths, m) {
				return nil, fmt.Errorf("image path %s would copy the host's %s into every sandbox; list narrower directories (e.g. /usr/bin, /usr/lib/x86_64-linux-gnu)", m, m)
			}
			for _, pre := range []string{"/home/", "/root/", "/var/", "/tmp/", "/run/", "/proc/", "/sys/", "/dev/"} {
				if strings.HasPrefix(m, pre) {
					return nil, fmt.Errorf("image path %s is under %s, which holds host or lab state", m, pre)
				}
			}
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no image path exists on this host")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

const (
	passwd   = "root:x:0:0:root:/root:/usr/sbin/nologin\nresearcher:x:1000:1000:aar researcher:/workspace:/bin/sh\n"
	group    = "root:x:0:\nresearcher:x:1000:\n"
	nsswitch = "passwd: files\ngroup: files\nhosts: files\n"
)

// importBase streams a root filesystem to the engine's image import.
func importBase(ctx context.Context, c *client.Client, ref string, paths []string, opts ImageOptions) error {
	pr, pw := io.Pipe()
	written := &countWriter{w: pw}
	go func() {
		tw := tar.NewWriter(written)
		err := writeRoot(tw, paths, opts.Exclude)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	done := make(chan struct{})
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "building sandbox image %s from %s …\n", ref, strings.Join(paths, " "))
		go func() {
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					fmt.Fprintf(opts.Progress, "  %d MB written\n", written.load()>>20)
				}
			}
		}()
	}
	defer close(done)
	start := time.Now()
	res, err := c.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
		Message: "aar sandbox base (" + opts.Profile + ")",
		Changes: []string{`ENV PATH=/usr/local/bin:/usr/bin:/bin`, `ENV LANG=C.UTF-8`, `USER 1000:1000`, `WORKDIR /workspace`,
			`LABEL ` + LabelManaged + `=aar`, `CMD ["sleep","infinity"]`},
	})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("import sandbox image %s: %w", ref, err)
	}
	// The engine reports the import as a JSON stream; an error comes in it.
	msg, rerr := io.ReadAll(res)
	res.Close()
	if rerr != nil {
		return fmt.Errorf("import sandbox image %s: %w", ref, rerr)
	}
	if strings.Contains(string(msg), `"error"`) {
		return fmt.Errorf("import sandbox image %s: %s", ref, strings.TrimSpace(string(msg)))
	}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "  %s: %d MB in %.0fs\n", ref, written.load()>>20, time.Since(start).Seconds())
	}
	return nil
}

// writeRoot writes the image's root: the skeleton, a minimal /etc, then
// every path (directories recursively; regular files, directories and
// symbolic links only).
func writeRoot(tw *tar.Writer, paths, exclude []string) error {
	now := time.Unix(0, 0)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: now})
	}
	link := func(name, target string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: now})
	}
	file := func(name, body string) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: now}); err != nil {
			return err
		}
		_, err := io.WriteString(tw, body)
		return err
	}
	for _, d := range []string{"usr", "usr/local", "usr/local/bin", "usr/lib", "usr/share", "etc", "workspace", "data", "shared", "run", "run/aar", "proc", "sys", "dev"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"tmp"} {
		if err := dir(d, 0o1777); err != nil {
			return err
		}
	}
	if err := dir("root", 0o700); err != nil {
		return err
	}
	for name, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"} {
		if err := link(name, target); err != nil {
			return err
		}
	}
	for name, body := range map[string]string{"etc/passwd": passwd, "etc/group": group, "etc/nsswitch.conf": nsswitch, "etc/hostname": "aar\n"} {
		if err := file(name, body); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, root := range paths {
		// Parents first (e.g. /usr/share before /usr/share/zoneinfo).
		for p := filepath.Dir(root); p != "/" && p != "."; p = filepath.Dir(p) {
			rel := strings.TrimPrefix(p, "/")
			if !seen[rel] && !slices.Contains([]string{"usr", "usr/lib", "usr/share", "etc", "usr/local"}, rel) {
				seen[rel] = true
				if err := dir(rel, 0o755); err != nil {
					return err
				}
			}
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable: left out
			}
			if excluded(p, exclude) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			rel := strings.TrimPrefix(p, "/")
			if seen[rel] {
				return nil
			}
			seen[rel] = true
			fi, err := os.Lstat(p)
			if err != nil {
				return nil
			}
			var target string
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				if target, err = os.Readlink(p); err != nil {
					return nil
				}
			case fi.IsDir(), fi.Mode().IsRegular():
			default:
				return nil // sockets, devices, FIFOs
			}
			hdr, err := tar.FileInfoHeader(fi, target)
			if err != nil {
				return nil
			}
			hdr.Name = rel
			if fi.IsDir() {
				hdr.Name += "/"
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
			hdr.Format = tar.FormatPAX
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.CopyN(tw, f, hdr.Size)
				f.Close()
				if err != nil {
					return fmt.Errorf("copy %s into the image: %w", p, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// addAar commits base plus /usr/local/bin/aar as ref.
func addAar(ctx context.Context, c *client.Client, base, ref, aar string) error {
	f, err := os.Open(aar)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	cr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: base, Cmd: []string{"true"}, Labels: map[string]string{LabelManaged: "aar"}}})
	if err != nil {
		return fmt.Errorf("add aar to %s: %w", base, err)
	}
	defer c.ContainerRemove(context.WithoutCancel(ctx), cr.ID, client.ContainerRemoveOptions{Force: true})
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/bin/aar", Mode: 0o755, Size: st.Size(), ModTime: st.ModTime()})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if _, err := c.CopyToContainer(ctx, cr.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: pr}); err != nil {
		return fmt.Errorf("copy aar into %s: %w", base, err)
	}
	if _, err := c.ContainerCommit(ctx, cr.ID, client.ContainerCommitOptions{Reference: ref, Comment: "aar " + filepath.Base(aar),
		Config: &container.Config{User: "1000:1000", WorkingDir: "/workspace", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}, Cmd: []string{"sleep", "infinity"}, Labels: map[string]string{LabelManaged: "aar"}}}); err != nil {
		return fmt.Errorf("commit %s: %w", ref, err)
	}
	return nil
}

// excluded reports whether p is, or is under, a path matching one of the
// exclude globs.
func excluded(p string, exclude []string) bool {
	for _, ex := range exclude {
		if ok, _ := filepath.Match(ex, p); ok || strings.HasPrefix(p, ex+"/") {
			return true
		}
	}
	return false
}

// countWriter counts what passes through it (read by the progress loop).
type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countWriter) load() int64 { return c.n.Load() }
