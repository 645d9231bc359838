package verify

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/testbed"
)

func TestParseContract(t *testing.T) {
	c, err := ParseContract([]byte("[method]\nname = \"x\"\ncommand = \"sh run.sh\"\ntestbeds = [\"verify\"]\ntimeout = \"90s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Method.Command != "sh run.sh" || c.timeout.Seconds() != 90 || !c.RunsOn("verify") || c.RunsOn("metamath") {
		t.Errorf("parsed %+v", c)
	}
	if all, _ := ParseContract([]byte("[method]\ncommand = \"x\"\n")); !all.RunsOn("anything") {
		t.Error("no testbeds should mean every testbed")
	}
	for _, tc := range []struct{ in, want string }{
		{"[method]\nname = \"x\"\n", "method.command is missing"},
		{"[method]\ncommand = \"x\"\ncomand = \"y\"\n", "unknown key(s) method.comand"},
		{"[method]\ncommand = \"x\"\ntimeout = \"forever\"\n", "method.timeout"},
		{"[method\ncommand = \"x\"\n", "aar.toml"},
	} {
		_, err := ParseContract([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := ContractOf(&snapshot.Tree{Files: []snapshot.File{{Path: "run.sh", Data: []byte("x")}}}); err == nil || !strings.Contains(err.Error(), "no aar.toml") {
		t.Errorf("a tree without aar.toml: %v", err)
	}
}

func TestParsePredictions(t *testing.T) {
	ids := []string{"a", "b", "c"}
	for _, in := range []string{
		`{"id":"a","label":1}` + "\n" + `{"id":"b","label":0}` + "\n" + `{"id":"c","label":1}` + "\n",
		`[1,0,1]`,
		`[{"id":"c","label":1},{"id":"a","label":1},{"id":"b","label":0}]`,
	} {
		p, err := parsePredictions([]byte(in), ids, 2)
		if err != nil || p["a"] != 1 || p["b"] != 0 || p["c"] != 1 {
			t.Errorf("%s: %v %v", in, p, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{`[1,0]`, "2 predictions for 3 test rows"},
		{`{"id":"a","label":1}`, "covers 1 of the 3"},
		{`{"id":"a","label":2}`, "not a class index"},
		{`{"id":"z","label":1}`, "not a row"},
		{`{"id":"a","label":1}` + "\n" + `{"id":"a","label":0}`, "predicted twice"},
		{`{"id":"a","label":0.5}`, "not a class index"},
		{`[1,0,`, "$AAR_OUT"},
	} {
		if _, err := parsePredictions([]byte(tc.in), ids, 2); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestRankSumP(t *testing.T) {
	// The top 5 of 16: 1/C(16,5).
	vals := []float64{16, 15, 14, 13, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	if p := rankSumP(vals, 5); math.Abs(p-1.0/4368) > 1e-12 {
		t.Errorf("top 5 of 16: p = %g, want %g", p, 1.0/4368)
	}
	// The bottom 5: p = 1. All ties (a seed-free method): p = 1.
	if p := rankSumP([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 5); p != 1 {
		t.Errorf("bottom 5: p = %g", p)
	}
	if p := rankSumP(make([]float64, 16), 5); p != 1 {
		t.Errorf("ties: p = %g", p)
	}
	// Middling ranks are unremarkable.
	if p := rankSumP([]float64{9, 7, 8, 10, 6, 1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16}, 5); p < 0.2 || p > 0.8 {
		t.Errorf("middle ranks: p = %g", p)
	}
	// Sampled when the subsets are many: the top 10 of 60.
	big := make([]float64, 60)
	for i := range big {
		big[i] = float64(60 - i)
	}
	if p := rankSumP(big, 10); p > 1e-4 {
		t.Errorf("top 10 of 60: p = %g", p)
	}
}

func TestChangedLines(t *testing.T) {
	base, _, err := snapshot.FromFiles(BaselineFiles("logconf"), snapshot.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	own := []snapshot.File{
		{Path: ContractFile, Data: []byte("[method]\nname = \"logconf\"\ncommand = \"sh run.sh\"\n")},
		{Path: "run.sh", Data: []byte("#!/bin/sh\n# The built-in logconf baseline.\nset -e\naar w2s train --view \"$AAR_DATA\" --seed \"$AAR_SEED\" --method logconf --epochs 3 --out \"$AAR_OUT\"\n")},
		{Path: "runs/c1/42.jsonl", Data: []byte(strings.Repeat(`{"id":"x","label":1}`+"\n", 100))},
		{Path: "helper.py", Data: []byte("print(1)\nprint(2)\n")},
	}
	for i := range own {
		own[i].Mode = 0o644
	}
	tree, _, err := snapshot.FromFiles(own, snapshot.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, d := changedLines(base, tree)
	// run.sh: one line changed (+1 −1); helper.py: +2; predictions are not code.
	if a != 3 || d != 1 {
		t.Errorf("changed lines +%d −%d, want +3 −1", a, d)
	}
}

func TestGeneratorPurity(t *testing.T) {
	rows := []testbed.Row{}
	for i, g := range []string{"a", "a", "a", "b", "b", "b"} {
		rows = append(rows, testbed.Row{ID: string(rune('0' + i)), Fields: map[string]json.RawMessage{"generator": json.RawMessage(`"` + g + `"`)}})
	}
	byGen := score.Predictions{Labels: map[string]int{"0": 1, "1": 1, "2": 1, "3": 0, "4": 0, "5": 0}}
	if p, ok := generatorPurity(rows, []score.Predictions{byGen}); !ok || p != 1 {
		t.Errorf("predictions by generator: purity %g %v, want 1", p, ok)
	}
	mixed := score.Predictions{Labels: map[string]int{"0": 1, "1": 0, "2": 1, "3": 0, "4": 1, "5": 0}}
	if p, ok := generatorPurity(rows, []score.Predictions{mixed}); !ok || math.Abs(p-4.0/6) > 1e-12 {
		t.Errorf("mixed predictions: purity %g %v, want 0.667", p, ok)
	}
	constant := score.Predictions{Labels: map[string]int{"0": 1, "1": 1, "2": 1, "3": 1, "4": 1, "5": 1}}
	if _, ok := generatorPurity(rows, []score.Predictions{constant}); ok {
		t.Error("one class everywhere is not clustering")
	}
}
