//go:build ignore

// makefixture writes the small study-format fixture under study/: a chat
// (comparison) testbed in the public W2S study's labeled_data layout, with an
// ID subset and an OOD subset, and two cache_results trees (with and without
// per-row test predictions). Every model's correctness is constant within a
// (subset, label) stratum, and every stratum has 10 test rows, so each split
// holds the same share of each stratum whatever the split seed (2 sealed, 4
// holdout, 4 feedback) and every cell's accuracy can be computed by hand:
//
//	stratum        weak s42 s43   ceiling s42 s43
//	ID  label A        1   1            1   1
//	ID  label B        0   0            1   1
//	OOD label A        1   0            1   1
//	OOD label B        0   0            0   1
//
// weak:    ID 0.5, OOD 0.25, overall 0.375   ceiling: ID 1.0, OOD 0.75, overall 0.875
//
// Run: go run makefixture.go (from this directory).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

type stratum struct {
	subset string
	label  string
	weak   [2]bool
	ceil   [2]bool
}

var strata = []stratum{
	{"helpsteer2_validation", "A", [2]bool{true, true}, [2]bool{true, true}},
	{"helpsteer2_validation", "B", [2]bool{false, false}, [2]bool{true, true}},
	{"rm_bench_chat", "A", [2]bool{true, false}, [2]bool{true, true}},
	{"rm_bench_chat", "B", [2]bool{false, false}, [2]bool{false, true}},
}

func main() {
	root := "study"
	data := filepath.Join(root, "labeled_data", "chat")
	must(os.MkdirAll(data, 0o755))

	var labeled, pool, test []map[string]any
	for i := 0; i < 6; i++ {
		labeled = append(labeled, row(fmt.Sprintf("labelled question %d", i), i, []string{"A", "B"}[i%2], "helpsteer2_validation"))
	}
	for i := 0; i < 20; i++ {
		pool = append(pool, row(fmt.Sprintf("pool question %d", i), i, []string{"A", "B"}[i%2], "helpsteer2_validation"))
	}
	var testLabels []int
	var correct [][2][2]bool // per row: [weak|ceil][seed]
	for si, s := range strata {
		for i := 0; i < 10; i++ {
			r := row(fmt.Sprintf("test question %d", 10*si+i), i, s.label, s.subset)
			if i%3 == 0 {
				r["difficulty"] = "hard"
			}
			r["source_model"] = "model-" + s.label // an extra field a public view must drop
			test = append(test, r)
			testLabels = append(testLabels, map[string]int{"A": 0, "B": 1}[s.label])
			correct = append(correct, [2][2]bool{s.weak, s.ceil})
		}
	}
	writeJSONL(filepath.Join(data, "train_label.jsonl"), labeled)
	writeJSONL(filepath.Join(data, "train_unlabel.jsonl"), pool)
	writeJSONL(filepath.Join(data, "test.jsonl"), test)

	for _, withPreds := range []bool{true, false} {
		cache := filepath.Join(root, "cache_results")
		if !withPreds {
			cache = filepath.Join(root, "cache_results_nopred")
		}
		weakDir := filepath.Join(cache, "chat_weak_artifacts", "Qwen_Qwen1_5_0_5B_Chat_e5_lr0.0001_bs32_schlinear")
		ceilDir := filepath.Join(cache, "chat_train_ceiling", "Qwen_Qwen3_4B_Base_e5_lr0.0001_bs32_schlinear")
		must(os.MkdirAll(weakDir, 0o755))
		must(os.MkdirAll(ceilDir, 0o755))
		for si, seed := range []int{42, 43} {
			for model := 0; model < 2; model++ {
				preds := make([]int, len(testLabels))
				per := map[string]map[string]int{}
				right := 0
				for i, l := range testLabels {
					ok := correct[i][model][si]
					preds[i] = l
					if !ok {
						preds[i] = 1 - l
					} else {
						right++
					}
					sub := test[i]["subset"].(string)
					if per[sub] == nil {
						per[sub] = map[string]int{}
					}
					per[sub]["total"]++
					if ok {
						per[sub]["correct"]++
					}
				}
				acc := float64(right) / float64(len(testLabels))
				out := map[string]any{"seed": seed, "dataset_name": "chat-fixture"}
				if withPreds {
					out["predictions"] = preds
				}
				if model == 0 {
					soft := make([][2]float64, len(pool))
					for i := range pool {
						p := 0.2 + 0.03*float64(i) + 0.05*float64(si)
						soft[i] = [2]float64{1 - p, p}
					}
					out["weak_model"] = "Qwen/Qwen1.5-0.5B-Chat"
					out["weak_acc"] = acc
					out["soft_labels"] = soft
					writeJSON(filepath.Join(weakDir, fmt.Sprintf("seed_%d.json", seed)), out)
				} else {
					out["strong_model"] = "Qwen/Qwen3-4B-Base"
					out["strong_acc"] = acc
					ps := map[string]any{}
					for sub, c := range per {
						ps[sub] = map[string]any{"accuracy": float64(c["correct"]) / float64(c["total"]), "correct": c["correct"], "total": c["total"]}
					}
					out["detailed_eval"] = map[string]any{"ceiling": map[string]any{"final_eval": map[string]any{"accuracy": acc, "per_subset": ps}}}
					writeJSON(filepath.Join(ceilDir, fmt.Sprintf("seed_%d.json", seed)), out)
				}
			}
		}
	}
}

func row(prompt string, i int, label, subset string) map[string]any {
	return map[string]any{
		"prompt": prompt,
		"first":  fmt.Sprintf("first answer to %q (%d)", prompt, i),
		"second": fmt.Sprintf("second answer to %q (%d)", prompt, i),
		"label":  label,
		"subset": subset,
	}
}

func writeJSONL(path string, rows []map[string]any) {
	f, err := os.Create(path)
	must(err)
	enc := json.NewEncoder(f)
	for _, r := range rows {
		must(enc.Encode(r))
	}
	must(f.Close())
}

func writeJSON(path string, v any) {
	b, err := json.Marshal(v)
	must(err)
	must(os.WriteFile(path, append(b, '\n'), 0o644))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
