package w2s

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/testbed"
)

// PublicText returns the public text fields of rows, as featurizers read
// them.
func PublicText(rows []testbed.Row) []features.Row {
	out := make([]features.Row, len(rows))
	for i, r := range rows {
		fr := features.Row{}
		for _, f := range []string{"text", "prompt", "first", "second", "question", "choice"} {
			if raw, ok := r.Fields[f]; ok {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					fr[f] = s
				}
			}
		}
		out[i] = fr
	}
	return out
}

// View is a researcher's public view with its representation and training
// settings opened: everything `aar w2s` needs, and no label.
type View struct {
	*testbed.PublicView
	Repr     *features.Opened
	Training *Training
}

// OpenView reads a public view directory.
func OpenView(dir string) (*View, error) {
	pv, err := testbed.ReadPublicView(dir)
	if err != nil {
		return nil, err
	}
	r, err := features.ParseRepresentation(pv.Manifest.Representation)
	if err != nil {
		return nil, err
	}
	op, err := features.OpenRepresentation(r, filepath.Join(dir, "features"))
	if err != nil {
		return nil, err
	}
	t, err := ParseTraining(pv.Manifest.Training)
	if err != nil {
		return nil, err
	}
	return &View{PublicView: pv, Repr: op, Training: t}, nil
}

// Rows returns the view's rows of a split: "pool" or "test".
func (v *View) Rows(split string) ([]testbed.Row, error) {
	switch split {
	case "pool", "train_unlabel":
		return v.Pool, nil
	case "test":
		return v.Test, nil
	}
	return nil, fmt.Errorf("split %q: use pool or test", split)
}

// SoftLabels returns a weak seed's soft labels by pool id.
func (v *View) SoftLabels(seed string) (map[string][]float64, error) {
	for _, s := range v.Soft {
		if s.Seed == seed {
			return s.Probs, nil
		}
	}
	return nil, fmt.Errorf("no weak soft labels for seed %q (the view has %v)", seed, v.Manifest.WeakSeeds)
}

// StudentRun is a researcher's student training on a public view.
type StudentRun struct {
	// Seed names the weak soft labels used when Targets is nil, and seeds
	// training.
	Seed string
	// Method, when set, runs a built-in method on the seed's weak labels
	// instead of plain training (Targets, Weights and Loss must be unset).
	Method string
	// Targets (by pool id) replace the weak labels; pool rows without one are
	// not trained on. Weights (by pool id) weight rows (default 1).
	Targets map[string][]float64
	Weights map[string]float64
	Loss    string
	Config  Config
	// Smoke trains on at most 32 pool rows and predicts 32 test rows.
	Smoke bool
	Log   func(EpochLog)
}

// SmokeRows is the subset size of a smoke run.
const SmokeRows = 32

// StudentResult is a student's test predictions.
type StudentResult struct {
	Test  []testbed.Row // the rows predicted, in view order
	Probs [][]float64
	Rows  int // pool rows trained on
}

// Train trains a student on the view's pool and predicts its test rows.
func (v *View) Train(ctx context.Context, run StudentRun) (*StudentResult, error) {
	k := len(v.Manifest.Classes)
	if err := run.Config.Validate(); err != nil {
		return nil, err
	}
	pool, test := v.Pool, v.Test
	if run.Smoke {
		pool, test = pool[:min(SmokeRows, len(pool))], test[:min(SmokeRows, len(test))]
	}
	var (
		rows    []testbed.Row
		targets [][]float64
		weights []float64
	)
	if run.Targets == nil {
		soft, err := v.SoftLabels(run.Seed)
		if err != nil {
			return nil, err
		}
		rows = pool
		for _, r := range pool {
			targets = append(targets, soft[r.ID])
		}
	} else {
		known := make(map[string]bool, len(v.Pool))
		for _, r := range v.Pool {
			known[r.ID] = true
		}
		for id := range run.Targets {
			if !known[id] {
				return nil, fmt.Errorf("a target names id %q, which is not a row of the view's train_unlabel.jsonl", id)
			}
		}
		for _, r := range pool {
			if t, ok := run.Targets[r.ID]; ok {
				rows = append(rows, r)
				targets = append(targets, t)
			}
		}
		if len(rows) == 0 {
			return nil, fmt.Errorf("no pool row has a target: give targets keyed by the ids of train_unlabel.jsonl")
		}
	}
	if run.Weights != nil {
		for _, r := range rows {
			w, ok := run.Weights[r.ID]
			if !ok {
				w = 1
			}
			weights = append(weights, w)
		}
	}
	poolX, err := v.Repr.BuildStrong(PublicText(rows))
	if err != nil {
		return nil, err
	}
	testX, err := v.Repr.BuildStrong(PublicText(test))
	if err != nil {
		return nil, err
	}
	seed := SeedNumber(run.Seed)
	in := &Input{Pool: poolX, Test: testX, Weak: targets, K: k, Config: run.Config, Log: run.Log}
	var probs [][]float64
	if run.Method != "" {
		if run.Targets != nil || run.Weights != nil || run.Loss != "" {
			return nil, fmt.Errorf("a built-in method uses the weak labels as they are: do not combine it with targets, weights or a loss")
		}
		m, err := MethodByName(run.Method)
		if err != nil {
			return nil, err
		}
		if probs, err = m.Run(ctx, in, seed); err != nil {
			return nil, err
		}
	} else {
		loss, err := LossByName(run.Loss)
		if err != nil {
			return nil, err
		}
		if probs, _, err = Fit(ctx, in, poolX, targets, weights, loss, seed); err != nil {
			return nil, err
		}
	}
	return &StudentResult{Test: test, Probs: probs, Rows: len(rows)}, nil
}

// SeedNumber turns a seed name into the number that seeds training: the
// integer itself, or a hash of a non-numeric name.
func SeedNumber(s string) uint64 {
	var n uint64
	if _, err := fmt.Sscan(s, &n); err == nil {
		return n
	}
	var h uint64 = 14695981039346656037
	for _, c := range []byte(s) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// ReadTargets reads a researcher's targets file: JSONL lines {"id", "probs":
// [K probabilities]} or {"id", "label": class index}.
func ReadTargets(path string, k int) (map[string][]float64, error) {
	lines, err := jsonl.ReadFile(path, jsonl.Limits{})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float64, len(lines))
	for _, ln := range lines {
		id, err := lineID(path, ln)
		if err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			return nil, jsonl.Errorf(path, ln.Num, "id", "give each pool row one target", "duplicate id")
		}
		var t []float64
		switch {
		case ln.Fields["probs"] != nil:
			if err := json.Unmarshal(ln.Fields["probs"], &t); err != nil || len(t) != k {
				return nil, jsonl.Errorf(path, ln.Num, "probs", fmt.Sprintf("give %d probabilities", k), "not a list of %d numbers", k)
			}
			var s float64
			for _, p := range t {
				if p < 0 || p > 1 || math.IsNaN(p) {
					return nil, jsonl.Errorf(path, ln.Num, "probs", "use probabilities in [0, 1]", "value out of range")
				}
				s += p
			}
			if math.Abs(s-1) > 1e-3 {
				return nil, jsonl.Errorf(path, ln.Num, "probs", "make the probabilities sum to 1", "they sum to %.4f", s)
			}
		case ln.Fields["label"] != nil:
			var c float64
			if err := json.Unmarshal(ln.Fields["label"], &c); err != nil || c != math.Trunc(c) || c < 0 || int(c) >= k {
				return nil, jsonl.Errorf(path, ln.Num, "label", fmt.Sprintf("use a class index 0..%d", k-1), "not a class index")
			}
			t = make([]float64, k)
			t[int(c)] = 1
		default:
			return nil, jsonl.Errorf(path, ln.Num, "", `give "probs" or "label"`, "the line has no target")
		}
		out[id] = t
	}
	return out, nil
}

// ReadWeights reads a weights file: JSONL lines {"id", "weight": w ≥ 0}.
func ReadWeights(path string) (map[string]float64, error) {
	lines, err := jsonl.ReadFile(path, jsonl.Limits{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(lines))
	for _, ln := range lines {
		id, err := lineID(path, ln)
		if err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			return nil, jsonl.Errorf(path, ln.Num, "id", "give each pool row one weight", "duplicate id")
		}
		var w float64
		if err := json.Unmarshal(ln.Fields["weight"], &w); err != nil || w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, jsonl.Errorf(path, ln.Num, "weight", "give a finite number ≥ 0", "missing or invalid")
		}
		out[id] = w
	}
	return out, nil
}

func lineID(path string, ln jsonl.Line) (string, error) {
	var id string
	if err := json.Unmarshal(ln.Fields["id"], &id); err != nil || id == "" {
		return "", jsonl.Errorf(path, ln.Num, "id", "give the id of a train_unlabel.jsonl row", "missing or not a string")
	}
	return id, nil
}
