package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/jsonl"
)

// The public study's cache_results layout:
//
//	<cache>/<ds>_weak_artifacts/<config key>/seed_<N>.json  weak_acc, soft_labels (pool order)[, predictions]
//	<cache>/<ds>_train_ceiling/<config key>/seed_<N>.json   strong_acc, detailed_eval.ceiling.final_eval.per_subset[, predictions]
//
// soft_labels are [p0, p1] per train_unlabel row in file order; predictions,
// when present, are class indexes per test row in file order. The fixed
// baselines the study scored against are the means of weak_acc and
// strong_acc over every seed file.

// aggregate holds whole-test-set figures per seed, for when per-row
// predictions are missing.
type aggregate struct {
	weakOverall, ceilOverall []float64
	// per seed: subset → {correct, total}; nil when a seed lacks them
	weakSubsets, ceilSubsets []map[string][2]int
}

type cacheResult struct {
	soft                 []SoftLabels
	weakPreds, ceilPreds []SeedPredictions
	agg                  aggregate
	notes                []string
}

type studyWeakSeed struct {
	WeakAcc     *float64          `json:"weak_acc"`
	SoftLabels  [][]float64       `json:"soft_labels"`
	Predictions []json.RawMessage `json:"predictions"`
	Detailed    *studyDetailed    `json:"detailed_eval"`
}

type studyCeilingSeed struct {
	StrongAcc   *float64          `json:"strong_acc"`
	Predictions []json.RawMessage `json:"predictions"`
	Detailed    *studyDetailed    `json:"detailed_eval"`
}

type studyDetailed struct {
	Weak    *studyEvalBlock `json:"weak"`
	Ceiling *studyEvalBlock `json:"ceiling"`
}

type studyEvalBlock struct {
	FinalEval struct {
		Accuracy  *float64 `json:"accuracy"`
		PerSubset map[string]struct {
			Correct int `json:"correct"`
			Total   int `json:"total"`
		} `json:"per_subset"`
	} `json:"final_eval"`
}

func (b *studyEvalBlock) subsets() map[string][2]int {
	if b == nil || len(b.FinalEval.PerSubset) == 0 {
		return nil
	}
	out := make(map[string][2]int, len(b.FinalEval.PerSubset))
	for k, v := range b.FinalEval.PerSubset {
		out[k] = [2]int{v.Correct, v.Total}
	}
	return out
}

// findSeedDir finds <cache>/<ds>_<kind>/<key>/ holding seed_*.json. With
// several config keys it takes the one with the most seed files, and refuses
// a tie.
func findSeedDir(cache, ds, kind string) (string, []string, error) {
	root := filepath.Join(cache, ds+"_"+kind)
	ents, err := os.ReadDir(root)
	if err != nil {
		return "", nil, jsonl.Errorf(root, 0, "", fmt.Sprintf("point --cache at the study's cache_results directory, and --cache-dataset at the dataset name (%q here)", ds), "no %s directory for dataset %q", kind, ds)
	}
	best, bestFiles, tie := "", []string(nil), false
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, e.Name(), "seed_*.json"))
		switch {
		case len(files) > len(bestFiles):
			best, bestFiles, tie = filepath.Join(root, e.Name()), files, false
		case len(files) == len(bestFiles) && len(files) > 0:
			tie = true
		}
	}
	if len(bestFiles) == 0 {
		return "", nil, jsonl.Errorf(root, 0, "", "check the cache directory", "no seed_*.json files under any config directory")
	}
	if tie {
		return "", nil, jsonl.Errorf(root, 0, "", "keep one config directory per model in the cache you import", "several config directories hold the same number of seed files")
	}
	seeds := make([]string, len(bestFiles))
	for i, f := range bestFiles {
		seeds[i] = seedOf(f)
	}
	sortSeeds(seeds)
	files := make([]string, len(seeds))
	for i, s := range seeds {
		files[i] = filepath.Join(best, "seed_"+s+".json")
	}
	return best, files, nil
}

func seedOf(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "seed_"), ".json")
}

func readJSONFile(path string, v any) error {
	st, err := os.Stat(path)
	if err != nil {
		return jsonl.Errorf(path, 0, "", "check the path", "cannot read: %v", err)
	}
	if st.Size() > jsonl.MaxFileBytes {
		return jsonl.Errorf(path, 0, "", "check the file", "file is %s, over the %s limit", jsonl.HumanBytes(st.Size()), jsonl.HumanBytes(jsonl.MaxFileBytes))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !utf8.Valid(b) {
		return jsonl.Errorf(path, 0, "", "re-encode the file as UTF-8", "file is not valid UTF-8")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return jsonl.Errorf(path, lineOf(b, se.Offset), "", "repair or re-create the file", "invalid JSON: %v", err)
		}
		return jsonl.Errorf(path, 0, "", "repair or re-create the file", "%v", err)
	}
	return nil
}

func lineOf(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return strings.Count(string(b[:off]), "\n") + 1
}

// readStudyCache reads the weak artifacts and ceilings of dataset ds.
func readStudyCache(cache, ds string, m *Manifest, pool, test []Row) (*cacheResult, error) {
	res := &cacheResult{}
	weakDir, weakFiles, err := findSeedDir(cache, ds, "weak_artifacts")
	if err != nil {
		return nil, err
	}
	ceilDir, ceilFiles, err := findSeedDir(cache, ds, "train_ceiling")
	if err != nil {
		return nil, err
	}
	res.notes = append(res.notes, fmt.Sprintf("study cache: %d weak seeds from %s, %d ceiling seeds from %s",
		len(weakFiles), filepath.Base(weakDir), len(ceilFiles), filepath.Base(ceilDir)))

	allWeakPreds := true
	var weakPreds []SeedPredictions
	for _, f := range weakFiles {
		var s studyWeakSeed
		if err := readJSONFile(f, &s); err != nil {
			return nil, err
		}
		seed := seedOf(f)
		if s.WeakAcc == nil {
			return nil, jsonl.Errorf(f, 0, "weak_acc", "use an unmodified weak_artifacts file", "missing")
		}
		if len(s.SoftLabels) != len(pool) {
			return nil, jsonl.Errorf(f, 0, "soft_labels", "import the train_unlabel.jsonl these weak artifacts were made for", "%d soft labels for %d train_unlabel rows", len(s.SoftLabels), len(pool))
		}
		sl := SoftLabels{Seed: seed, Probs: make(map[string][]float64, len(pool))}
		for i, p := range s.SoftLabels {
			if err := checkProbs(p, len(m.Classes)); err != nil {
				return nil, jsonl.Errorf(f, 0, "soft_labels", "use an unmodified weak_artifacts file", "entry %d: %v", i, err)
			}
			sl.Probs[pool[i].ID] = p
		}
		res.soft = append(res.soft, sl)
		res.agg.weakOverall = append(res.agg.weakOverall, *s.WeakAcc)
		var ws map[string][2]int
		if s.Detailed != nil {
			ws = s.Detailed.Weak.subsets()
		}
		res.agg.weakSubsets = append(res.agg.weakSubsets, ws)
		if len(s.Predictions) == 0 {
			allWeakPreds = false
			continue
		}
		sp, err := positionalPredictions(f, seed, s.Predictions, m, test)
		if err != nil {
			return nil, err
		}
		weakPreds = append(weakPreds, sp)
	}
	if allWeakPreds {
		res.weakPreds = weakPreds
	}

	allCeilPreds := true
	var ceilPreds []SeedPredictions
	for _, f := range ceilFiles {
		var s studyCeilingSeed
		if err := readJSONFile(f, &s); err != nil {
			return nil, err
		}
		if s.StrongAcc == nil {
			return nil, jsonl.Errorf(f, 0, "strong_acc", "use an unmodified train_ceiling file", "missing")
		}
		res.agg.ceilOverall = append(res.agg.ceilOverall, *s.StrongAcc)
		var cs map[string][2]int
		if s.Detailed != nil {
			cs = s.Detailed.Ceiling.subsets()
		}
		res.agg.ceilSubsets = append(res.agg.ceilSubsets, cs)
		if len(s.Predictions) == 0 {
			allCeilPreds = false
			continue
		}
		sp, err := positionalPredictions(f, seedOf(f), s.Predictions, m, test)
		if err != nil {
			return nil, err
		}
		ceilPreds = append(ceilPreds, sp)
	}
	if allCeilPreds {
		res.ceilPreds = ceilPreds
	}
	if !allWeakPreds || !allCeilPreds {
		res.notes = append(res.notes, "study cache has no per-row test predictions for every seed: baselines of the feedback, holdout and sealed cells use whole-test-set means, not the cell's own rows")
	}
	return res, nil
}

func positionalPredictions(file, seed string, raw []json.RawMessage, m *Manifest, test []Row) (SeedPredictions, error) {
	if len(raw) != len(test) {
		return SeedPredictions{}, jsonl.Errorf(file, 0, "predictions", "import the test.jsonl these predictions were made for", "%d predictions for %d test rows", len(raw), len(test))
	}
	sp := SeedPredictions{Seed: seed, Labels: make(map[string]int, len(test))}
	for i, r := range raw {
		c, err := ClassOf(m, r)
		if err != nil {
			return SeedPredictions{}, jsonl.Errorf(file, 0, "predictions", "use class indexes", "entry %d: %v", i, err)
		}
		sp.Labels[test[i].ID] = c
	}
	return sp, nil
}
