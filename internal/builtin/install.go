package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aar-lab/aar/internal/baseline"
	"github.com/aar-lab/aar/internal/testbed"
)

// ArtifactSeedCount is how many weak and ceiling seeds an install makes.
const ArtifactSeedCount = 16

// FindDir locates the directory of committed built-in testbeds: dir when
// given, else $AAR_TESTBEDS, else testbeds/ beside the directory holding the
// aar executable (bin/aar → testbeds/), else ./testbeds.
func FindDir(dir string) (string, error) {
	var tried []string
	candidates := []string{dir}
	if dir == "" {
		candidates = []string{os.Getenv("AAR_TESTBEDS")}
		if exe, err := os.Executable(); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(filepath.Dir(exe)), "testbeds"))
		}
		candidates = append(candidates, "testbeds")
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		tried = append(tried, c)
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("no built-in testbeds directory (tried %v): run from the aar repository, or pass --from DIR / set AAR_TESTBEDS", tried)
}

// InstallOptions control Install.
type InstallOptions struct {
	Seeds   int // weak/ceiling seeds (default ArtifactSeedCount)
	Threads int
	Log     *slog.Logger
	// SplitSeed fixes the private split draw (reproducible installs, for
	// tests); nil draws a fresh one.
	SplitSeed *uint64
}

// Install reads the built-in testbed from/name, makes its weak artifacts
// and ceilings and imports it into the store under its name, with splits
// drawn from a fresh private seed. It refuses a name already installed.
func Install(ctx context.Context, store *testbed.Store, from, name string, opt InstallOptions) (*testbed.Testbed, error) {
	if opt.Seeds <= 0 {
		opt.Seeds = ArtifactSeedCount
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := store.Manifest(name); err == nil {
		return nil, fmt.Errorf("testbed %q is already installed (remove it first: aar testbed remove %s)", name, name)
	} else if !errors.As(err, new(*testbed.NotFoundError)) {
		return nil, err
	}
	dir := filepath.Join(from, name)
	src, err := testbed.ReadSource(dir)
	if err != nil {
		return nil, fmt.Errorf("install %s: %w", name, err)
	}
	start := time.Now()
	art, err := baseline.MakeArtifacts(ctx, src, baseline.ArtifactSeeds(opt.Seeds), opt.Threads, opt.Log)
	if err != nil {
		return nil, fmt.Errorf("install %s: %w", name, err)
	}
	opt.Log.Info("made weak artifacts and ceilings", "testbed", name, "seeds", opt.Seeds, "elapsed", time.Since(start).Round(time.Millisecond))
	tb, err := store.ImportSource(src, testbed.ImportOptions{Name: name, Soft: art.Soft, WeakPred: art.WeakPred, CeilPred: art.CeilPred, SplitSeed: opt.SplitSeed})
	if err != nil {
		return nil, err
	}
	if err := baseline.SaveFeatureCache(tb, art.PoolX, art.TestX); err != nil {
		return nil, fmt.Errorf("install %s: %w", name, err)
	}
	return tb, nil
}
