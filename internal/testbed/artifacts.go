package testbed

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/jsonl"
)

// SoftLabels are one weak-model seed's class probabilities on the pool
// (train_unlabel) rows, by row id.
type SoftLabels struct {
	Seed  string
	Probs map[string][]float64
}

// SeedPredictions are one baseline seed's predicted class per test row id.
type SeedPredictions struct {
	Seed   string
	Labels map[string]int
}

// Artifact directories inside a testbed directory.
const (
	dirWeak        = "weak"
	dirBaseWeak    = "baselines/weak"
	dirBaseCeiling = "baselines/ceiling"
	dirFeatures    = "features"
)

// seedFiles lists dir/*.jsonl sorted by seed (numerically when the seeds are
// numbers). A missing directory is no files.
func seedFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var seeds []string
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		seed := strings.TrimSuffix(e.Name(), ".jsonl")
		if err := validSeed(seed); err != nil {
			return nil, jsonl.Errorf(filepath.Join(dir, e.Name()), 0, "", "name seed files <seed>.jsonl, e.g. 42.jsonl", "%v", err)
		}
		seeds = append(seeds, seed)
	}
	sortSeeds(seeds)
	return seeds, nil
}

func validSeed(s string) error {
	if s == "" || len(s) > 64 || strings.ContainsAny(s, "/\\ \t\n\x00") || s[0] == '.' {
		return fmt.Errorf("seed name %q is not usable as a file name", s)
	}
	return nil
}

// sortSeeds orders seeds numerically when both are integers, else as text.
func sortSeeds(seeds []string) {
	sort.Slice(seeds, func(i, j int) bool {
		x, ex := strconv.Atoi(seeds[i])
		y, ey := strconv.Atoi(seeds[j])
		if ex == nil && ey == nil {
			return x < y
		}
		return seeds[i] < seeds[j]
	})
}

// rowRef resolves the row a line of an artifact file belongs to: by its "id"
// field when it has one, else by position (line i ↔ row i).
func rowRef(name string, ln jsonl.Line, pos int, rows []Row, byID map[string]bool) (string, error) {
	if raw, ok := ln.Fields["id"]; ok {
		id, err := parseID(raw)
		if err != nil {
			return "", jsonl.Errorf(name, ln.Num, "id", "use the ids of the rows it refers to", "%v", err)
		}
		if !byID[id] {
			return "", jsonl.Errorf(name, ln.Num, "id", "use the ids of the rows it refers to", "no row has this id")
		}
		return id, nil
	}
	if pos >= len(rows) {
		return "", jsonl.Errorf(name, ln.Num, "", "give one line per row, in row order, or add ids", "more lines than the %d rows", len(rows))
	}
	return rows[pos].ID, nil
}

func idSet(rows []Row) map[string]bool {
	s := make(map[string]bool, len(rows))
	for _, r := range rows {
		s[r.ID] = true
	}
	return s
}

// readSoftLabels reads weak/<seed>.jsonl: lines {"id"?, "probs": [p0, p1, ...]}.
func readSoftLabels(dir string, m *Manifest, pool []Row) ([]SoftLabels, error) {
	seeds, err := seedFiles(dir)
	if err != nil {
		return nil, err
	}
	byID := idSet(pool)
	var out []SoftLabels
	for _, seed := range seeds {
		name := filepath.Join(dir, seed+".jsonl")
		lines, err := jsonl.ReadFile(name, jsonl.Limits{})
		if err != nil {
			return nil, err
		}
		sl := SoftLabels{Seed: seed, Probs: make(map[string][]float64, len(lines))}
		for i, ln := range lines {
			id, err := rowRef(name, ln, i, pool, byID)
			if err != nil {
				return nil, err
			}
			if _, dup := sl.Probs[id]; dup {
				return nil, jsonl.Errorf(name, ln.Num, "id", "give each pool row one line", "row appears twice")
			}
			var p []float64
			if err := json.Unmarshal(ln.Fields["probs"], &p); err != nil || ln.Fields["probs"] == nil {
				return nil, jsonl.Errorf(name, ln.Num, "probs", fmt.Sprintf("give a list of %d probabilities, one per class", len(m.Classes)), "missing or not a list of numbers")
			}
			if err := checkProbs(p, len(m.Classes)); err != nil {
				return nil, jsonl.Errorf(name, ln.Num, "probs", fmt.Sprintf("give %d probabilities in [0,1] that sum to 1", len(m.Classes)), "%v", err)
			}
			sl.Probs[id] = p
		}
		if len(sl.Probs) != len(pool) {
			return nil, jsonl.Errorf(name, 0, "", "give one line per pool row", "has %d rows, the pool has %d", len(sl.Probs), len(pool))
		}
		out = append(out, sl)
	}
	return out, nil
}

func checkProbs(p []float64, k int) error {
	if len(p) != k {
		return fmt.Errorf("%d probabilities for %d classes", len(p), k)
	}
	var sum float64
	for _, x := range p {
		if math.IsNaN(x) || x < 0 || x > 1 {
			return fmt.Errorf("probability outside [0,1]")
		}
		sum += x
	}
	if math.Abs(sum-1) > 1e-3 {
		return fmt.Errorf("probabilities sum to %.4f, not 1", sum)
	}
	return nil
}

// readPredictionDir reads baselines/<model>/<seed>.jsonl: lines {"id"?, "label": class index}.
func readPredictionDir(dir string, m *Manifest, test []Row) ([]SeedPredictions, error) {
	seeds, err := seedFiles(dir)
	if err != nil {
		return nil, err
	}
	byID := idSet(test)
	var out []SeedPredictions
	for _, seed := range seeds {
		name := filepath.Join(dir, seed+".jsonl")
		lines, err := jsonl.ReadFile(name, jsonl.Limits{})
		if err != nil {
			return nil, err
		}
		sp := SeedPredictions{Seed: seed, Labels: make(map[string]int, len(lines))}
		for i, ln := range lines {
			id, err := rowRef(name, ln, i, test, byID)
			if err != nil {
				return nil, err
			}
			if _, dup := sp.Labels[id]; dup {
				return nil, jsonl.Errorf(name, ln.Num, "id", "give each test row one line", "row appears twice")
			}
			c, err := ClassOf(m, ln.Fields["label"])
			if err != nil {
				return nil, jsonl.Errorf(name, ln.Num, "label", fmt.Sprintf("use a class index 0..%d", len(m.Classes)-1), "%v", err)
			}
			sp.Labels[id] = c
		}
		if len(sp.Labels) != len(test) {
			return nil, jsonl.Errorf(name, 0, "", "give one prediction per test row", "has %d predictions, the test set has %d rows", len(sp.Labels), len(test))
		}
		out = append(out, sp)
	}
	return out, nil
}

// ClassOf decodes a prediction: a JSON integer class index into m.Classes.
// This is the one prediction encoding (see the package doc).
func ClassOf(m *Manifest, raw json.RawMessage) (int, error) {
	if raw == nil {
		return 0, fmt.Errorf("missing")
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("not a number: predictions are class indexes 0..%d", len(m.Classes)-1)
	}
	if f != math.Trunc(f) || f < 0 || f >= float64(len(m.Classes)) {
		return 0, fmt.Errorf("not a class index 0..%d", len(m.Classes)-1)
	}
	return int(f), nil
}
