// Package baseline owns running weak-to-strong methods on a testbed: it
// featurizes a testbed's rows with its frozen representation, makes the
// weak model's artifacts and the ceilings a built-in testbed is installed
// with, and runs the built-in methods across seeds, scoring each cell.
//
// It reads labels (train_label for the weak model, the pool's gold labels for
// ceilings, the test labels through package score), so it runs only in the
// lab process and admin commands, never in a sandbox.
package baseline

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/w2s"
)

// ArtifactSeeds are the seeds of the weak artifacts and ceilings a built-in
// testbed is installed with (as the study: 16 seeds, 42–57).
func ArtifactSeeds(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(42 + i)
	}
	return out
}

// DefaultSeeds are the seeds a baseline runs (as the study: 42–46).
var DefaultSeeds = ArtifactSeeds(5)

// WeakShare is the share of train_label each weak seed trains on (a seeded
// random subset), so weak seeds differ as the study's do.
const WeakShare = 0.8

// Setup is a testbed's representation and training settings, opened.
type Setup struct {
	Manifest *testbed.Manifest
	Repr     *features.Opened
	Training *w2s.Training
}

// Open reads the representation and training of a manifest whose features
// live in featuresDir.
func Open(m *testbed.Manifest, featuresDir string) (*Setup, error) {
	r, err := features.ParseRepresentation(m.Representation)
	if err != nil {
		return nil, fmt.Errorf("testbed %s: %w", m.Name, err)
	}
	op, err := features.OpenRepresentation(r, featuresDir)
	if err != nil {
		return nil, fmt.Errorf("testbed %s: %w", m.Name, err)
	}
	t, err := w2s.ParseTraining(m.Training)
	if err != nil {
		return nil, fmt.Errorf("testbed %s: %w", m.Name, err)
	}
	return &Setup{Manifest: m, Repr: op, Training: t}, nil
}

func labelsOf(rows []testbed.Row) ([]int, error) {
	out := make([]int, len(rows))
	for i, r := range rows {
		if r.Label == testbed.NoLabel {
			return nil, fmt.Errorf("row %s has no label", r.ID)
		}
		out[i] = r.Label
	}
	return out, nil
}

// Artifacts are what a built-in testbed is installed with.
type Artifacts struct {
	Soft     []testbed.SoftLabels
	WeakPred []testbed.SeedPredictions
	CeilPred []testbed.SeedPredictions
	// PoolX and TestX are the strong features of every pool and test row,
	// in file order, for the feature cache.
	PoolX, TestX *features.Matrix
}

// MakeArtifacts trains, for every seed, the weak model (on a seeded WeakShare
// of train_label, weak features) and the ceiling (the strong student on the
// whole pool's gold labels), and returns the weak soft labels on the pool and
// both models' test predictions. Seeds run on up to threads goroutines.
func MakeArtifacts(ctx context.Context, src *testbed.Source, seeds []string, threads int, log *slog.Logger) (*Artifacts, error) {
	su, err := Open(&src.Manifest, filepath.Join(src.Dir, "features"))
	if err != nil {
		return nil, err
	}
	k := len(src.Manifest.Classes)
	labX, err := su.Repr.BuildWeak(w2s.PublicText(src.Labeled))
	if err != nil {
		return nil, fmt.Errorf("weak features: %w", err)
	}
	poolW, err := su.Repr.BuildWeak(w2s.PublicText(src.Pool))
	if err != nil {
		return nil, fmt.Errorf("weak features: %w", err)
	}
	testW, err := su.Repr.BuildWeak(w2s.PublicText(src.Test))
	if err != nil {
		return nil, fmt.Errorf("weak features: %w", err)
	}
	poolS, err := su.Repr.BuildStrong(w2s.PublicText(src.Pool))
	if err != nil {
		return nil, fmt.Errorf("strong features: %w", err)
	}
	testS, err := su.Repr.BuildStrong(w2s.PublicText(src.Test))
	if err != nil {
		return nil, fmt.Errorf("strong features: %w", err)
	}
	labY, err := labelsOf(src.Labeled)
	if err != nil {
		return nil, fmt.Errorf("train_label: %w", err)
	}
	poolY, err := labelsOf(src.Pool)
	if err != nil {
		return nil, fmt.Errorf("ceilings need the pool's gold labels: %w", err)
	}
	bias := su.Repr.Repr.WeakLogitBias
	if len(bias) != 0 && len(bias) != k {
		return nil, fmt.Errorf("weak_logit_bias has %d values for %d classes", len(bias), k)
	}

	out := &Artifacts{
		PoolX:    poolS,
		TestX:    testS,
		Soft:     make([]testbed.SoftLabels, len(seeds)),
		WeakPred: make([]testbed.SeedPredictions, len(seeds)),
		CeilPred: make([]testbed.SeedPredictions, len(seeds)),
	}
	fitCeiling := func(seed uint64) ([][]float64, error) {
		cm, err := w2s.Train(ctx, w2s.Data{X: poolS, Targets: w2s.OneHot(poolY, k)}, k, w2s.TrainOptions{Config: su.Training.Strong, Seed: seed})
		if err != nil {
			return nil, err
		}
		return cm.Predict(testS)
	}
	ceiling := fitCeiling
	if su.Training.Strong.Solver == "lbfgs" {
		var (
			once sync.Once
			cp   [][]float64
			cerr error
		)
		ceiling = func(uint64) ([][]float64, error) {
			once.Do(func() { cp, cerr = fitCeiling(0) })
			return cp, cerr
		}
	}
	err = forEach(ctx, len(seeds), threads, func(i int) error {
		seed := seeds[i]
		n := w2s.SeedNumber(seed)
		// Weak: a seeded subset of train_label.
		rng := rand.New(rand.NewPCG(n, 0x7765616b)) // "weak"
		perm := rng.Perm(labX.Rows())
		keep := perm[:max(1, int(WeakShare*float64(len(perm))))]
		slices.Sort(keep)
		ys := make([]int, len(keep))
		for j, r := range keep {
			ys[j] = labY[r]
		}
		wm, err := w2s.Train(ctx, w2s.Data{X: labX.Select(keep), Targets: w2s.OneHot(ys, k)}, k, w2s.TrainOptions{Config: su.Training.Weak, Seed: n})
		if err != nil {
			return fmt.Errorf("weak seed %s: %w", seed, err)
		}
		soft, err := wm.PredictBiased(poolW, bias)
		if err != nil {
			return err
		}
		tp, err := wm.PredictBiased(testW, bias)
		if err != nil {
			return err
		}
		out.Soft[i] = testbed.SoftLabels{Seed: seed, Probs: byID(src.Pool, soft)}
		out.WeakPred[i] = testbed.SeedPredictions{Seed: seed, Labels: argmaxByID(src.Test, tp)}
		// Ceiling: the strong student on the pool's gold labels. L-BFGS
		// ignores the seed (full batch from zero), so it is fitted once.
		cp, err := ceiling(n)
		if err != nil {
			return fmt.Errorf("ceiling seed %s: %w", seed, err)
		}
		out.CeilPred[i] = testbed.SeedPredictions{Seed: seed, Labels: argmaxByID(src.Test, cp)}
		if log != nil {
			log.Debug("artifacts", "testbed", src.Manifest.Name, "seed", seed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func byID(rows []testbed.Row, p [][]float64) map[string][]float64 {
	out := make(map[string][]float64, len(rows))
	for i, r := range rows {
		out[r.ID] = p[i]
	}
	return out
}

func argmaxByID(rows []testbed.Row, p [][]float64) map[string]int {
	out := make(map[string]int, len(rows))
	for i, c := range w2s.Argmax(p) {
		out[rows[i].ID] = c
	}
	return out
}

// forEach runs fn(0..n-1) on up to threads goroutines and returns the first
// error; it stops starting new work once one fails or ctx ends.
func forEach(ctx context.Context, n, threads int, fn func(i int) error) error {
	threads = max(1, min(threads, n))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= n || ctx.Err() != nil {
					if first == nil && ctx.Err() != nil {
						first = ctx.Err()
					}
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
