package baseline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/w2s"
)

// Prepared is an installed testbed with its strong features computed: the
// public pool (what a researcher's student trains on) and every test row.
type Prepared struct {
	TB    *testbed.Testbed
	Setup *Setup
	Pool  []testbed.Row
	PoolX *features.Matrix
	TestX *features.Matrix
	// FeaturizeTime is how long featurization took.
	FeaturizeTime time.Duration
}

// Cache files of strong features, in the testbed's private directory (never
// in features/, which the public view copies).
const (
	cacheDir      = "cache"
	cachePoolFile = "strong_pool.csr"
	cacheTestFile = "strong_test.csr"
)

// SaveFeatureCache stores the strong features of every pool and test row
// (file order) beside an installed testbed.
func SaveFeatureCache(tb *testbed.Testbed, pool, test *features.Matrix) error {
	dir := filepath.Join(tb.Dir(), cacheDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := pool.Save(filepath.Join(dir, cachePoolFile)); err != nil {
		return err
	}
	return test.Save(filepath.Join(dir, cacheTestFile))
}

// loadFeatureCache returns the cached strong features if they match the
// testbed's row counts.
func loadFeatureCache(tb *testbed.Testbed) (pool, test *features.Matrix, ok bool) {
	dir := filepath.Join(tb.Dir(), cacheDir)
	pool, err := features.LoadMatrix(filepath.Join(dir, cachePoolFile))
	if err != nil || pool.Rows() != len(tb.Pool) {
		return nil, nil, false
	}
	test, err = features.LoadMatrix(filepath.Join(dir, cacheTestFile))
	if err != nil || test.Rows() != len(tb.Test) {
		return nil, nil, false
	}
	return pool, test, true
}

// Prepare loads (or computes and caches) an installed testbed's strong
// features.
func Prepare(tb *testbed.Testbed) (*Prepared, error) {
	start := time.Now()
	su, err := Open(&tb.Manifest, filepath.Join(tb.Dir(), "features"))
	if err != nil {
		return nil, err
	}
	p := &Prepared{TB: tb, Setup: su, Pool: tb.PublicPool()}
	poolAll, testAll, ok := loadFeatureCache(tb)
	if !ok {
		if poolAll, err = su.Repr.BuildStrong(w2s.PublicText(tb.Pool)); err != nil {
			return nil, fmt.Errorf("testbed %s: strong features of the pool: %w", tb.Manifest.Name, err)
		}
		if testAll, err = su.Repr.BuildStrong(w2s.PublicText(tb.Test)); err != nil {
			return nil, fmt.Errorf("testbed %s: strong features of the test rows: %w", tb.Manifest.Name, err)
		}
		if err := SaveFeatureCache(tb, poolAll, testAll); err != nil {
			return nil, fmt.Errorf("testbed %s: feature cache: %w", tb.Manifest.Name, err)
		}
	}
	pos := make(map[string]int, len(tb.Pool))
	for i, r := range tb.Pool {
		pos[r.ID] = i
	}
	rows := make([]int, len(p.Pool))
	for i, r := range p.Pool {
		rows[i] = pos[r.ID]
	}
	p.PoolX, p.TestX = poolAll.Select(rows), testAll
	p.FeaturizeTime = time.Since(start)
	return p, nil
}

// Options choose what Run runs.
type Options struct {
	Method  string
	Seeds   []string // weak artifact seeds; default DefaultSeeds
	Splits  []string // default feedback and holdout
	Threads int      // seeds run in parallel (default 1)
	Log     *slog.Logger
}

// Result is one method's scores on one testbed.
type Result struct {
	Testbed string        `json:"testbed"`
	Method  string        `json:"method"`
	Seeds   []string      `json:"seeds"`
	Report  *score.Report `json:"report"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// VsVanilla is the paired-bootstrap difference to vanilla_w2s on the
	// split's overall cell (set by CompareToVanilla).
	VsVanilla *score.Comparison `json:"vs_vanilla,omitempty"`

	tb    *testbed.Testbed
	preds []score.Predictions
}

// Run trains the method's student for every seed (from that seed's weak soft
// labels on the public pool), predicts every test row and scores the
// requested splits.
func (p *Prepared) Run(ctx context.Context, opt Options) (*Result, error) {
	start := time.Now()
	method, err := w2s.MethodByName(opt.Method)
	if err != nil {
		return nil, err
	}
	seeds := opt.Seeds
	if len(seeds) == 0 {
		seeds = DefaultSeeds
	}
	splits := opt.Splits
	if len(splits) == 0 {
		splits = []string{testbed.SplitFeedback, testbed.SplitHoldout}
	}
	soft := map[string]testbed.SoftLabels{}
	for _, s := range p.TB.Soft {
		soft[s.Seed] = s
	}
	k := len(p.TB.Manifest.Classes)
	preds := make([]score.Predictions, len(seeds))
	err = forEach(ctx, len(seeds), opt.Threads, func(i int) error {
		seed := seeds[i]
		sl, ok := soft[seed]
		if !ok {
			return fmt.Errorf("testbed %s has no weak soft labels for seed %s (it has %v)", p.TB.Manifest.Name, seed, p.TB.Manifest.WeakSeeds)
		}
		weak := make([][]float64, len(p.Pool))
		for j, r := range p.Pool {
			weak[j] = sl.Probs[r.ID]
		}
		in := &w2s.Input{Pool: p.PoolX, Test: p.TestX, Weak: weak, K: k, Config: p.Setup.Training.Strong}
		probs, err := method.Run(ctx, in, w2s.SeedNumber(seed))
		if err != nil {
			return fmt.Errorf("%s seed %s: %w", method.Name, seed, err)
		}
		preds[i] = score.Predictions{Seed: seed, Labels: argmaxByID(p.TB.Test, probs)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep, err := score.Score(p.TB, preds, splits)
	if err != nil {
		return nil, err
	}
	res := &Result{Testbed: p.TB.Manifest.Name, Method: method.Name, Seeds: seeds, Report: rep, Elapsed: time.Since(start), tb: p.TB, preds: preds}
	if opt.Log != nil {
		opt.Log.Info("baseline done", "testbed", res.Testbed, "method", res.Method, "elapsed", res.Elapsed.Round(time.Millisecond))
	}
	return res, nil
}

// CompareToVanilla sets VsVanilla on every result that has a vanilla_w2s
// result for the same testbed: a paired bootstrap (rows resampled, each
// row's correctness averaged over seeds) of the accuracy and PGR difference
// on the split's overall cell.
func CompareToVanilla(results []*Result, split string, resamples int) error {
	vanilla := map[string]*Result{}
	for _, r := range results {
		if r.Method == "vanilla_w2s" {
			vanilla[r.Testbed] = r
		}
	}
	for _, r := range results {
		v := vanilla[r.Testbed]
		if v == nil || r == v || r.tb == nil {
			continue
		}
		cmp, err := score.Compare(r.tb, r.preds, v.preds, split, testbed.GroupOverall, resamples, 1)
		if err != nil {
			return fmt.Errorf("%s vs vanilla_w2s on %s: %w", r.Method, r.Testbed, err)
		}
		r.VsVanilla = cmp
	}
	return nil
}

// Predictions are the result's per-seed test predictions.
func (r *Result) Predictions() []score.Predictions { return r.preds }
