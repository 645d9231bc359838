package score

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/testbed"
)

const fixture = "../testbed/testdata/study"

func loadFixture(t testing.TB, cache string) *testbed.Testbed {
	t.Helper()
	store, err := testbed.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(11)
	opts := testbed.ImportOptions{Name: "chat", SplitSeed: &seed}
	if cache != "" {
		opts.Cache = filepath.Join(fixture, cache)
	}
	tb, err := store.Import(filepath.Join(fixture, "labeled_data", "chat"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// predict builds predictions for rows: right on the rows where right says so.
func predict(seed string, rows []testbed.Row, right func(testbed.Row) bool) Predictions {
	p := Predictions{Seed: seed, Labels: map[string]int{}}
	for _, r := range rows {
		if right(r) {
			p.Labels[r.ID] = r.Label
		} else {
			p.Labels[r.ID] = 1 - r.Label
		}
	}
	return p
}

func stratum(r testbed.Row) string {
	return map[string]string{"helpsteer2_validation": "ID", "rm_bench_chat": "OOD"}[r.Subset] + "-" + []string{"A", "B"}[r.Label]
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// Two transfer seeds, each right on whole strata, scored on every row
// (public and sealed). By hand, with weak 0.375/0.5/0.25 and ceiling
// 0.875/1/0.75 (overall/ID/OOD, see testbed/testdata/makefixture.go):
//
//	seed s1 right on ID-A, ID-B, OOD-A: overall 0.75, ID 1, OOD 0.5
//	seed s2 right on ID-A, OOD-A, OOD-B: overall 0.75, ID 0.5, OOD 1
//	PGR overall (0.75−0.375)/0.5 = 0.75 both seeds → 0.75 ± 0
//	PGR ID      (1−0.5)/0.5 = 1, (0.5−0.5)/0.5 = 0 → 0.5 ± 0.5
//	PGR OOD     (0.5−0.25)/0.5 = 0.5, (1−0.25)/0.5 = 1.5 → 1.0 ± 0.5 (not clipped)
func TestScoreHandComputed(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	s1 := predict("s1", tb.Test, func(r testbed.Row) bool { return stratum(r) != "OOD-B" })
	s2 := predict("s2", tb.Test, func(r testbed.Row) bool { return stratum(r) != "ID-B" })
	rep, err := Score(tb, []Predictions{s1, s2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != 9 {
		t.Fatalf("%d cells, want 9", len(rep.Cells))
	}
	want := map[string]struct{ acc, accSE, pgr, pgrSE float64 }{
		testbed.GroupOverall: {0.75, 0, 0.75, 0},
		testbed.GroupID:      {0.75, 0.25, 0.5, 0.5},
		testbed.GroupOOD:     {0.75, 0.25, 1.0, 0.5},
	}
	for _, c := range rep.Cells {
		w := want[c.Group]
		if c.Accuracy == nil || c.PGR == nil {
			t.Fatalf("%s/%s: %+v", c.Split, c.Group, c)
		}
		if !near(c.Accuracy.Mean, w.acc) || !near(c.Accuracy.SE, w.accSE) || !near(c.PGR.Mean, w.pgr) || !near(c.PGR.SE, w.pgrSE) || c.PGR.N != 2 {
			t.Errorf("%s/%s: accuracy %+v PGR %+v, want %+v", c.Split, c.Group, *c.Accuracy, *c.PGR, w)
		}
	}
	if ood := rep.Cell(testbed.SplitHoldout, testbed.GroupOOD); !near(ood.PGRSeeds[1], 1.5) {
		t.Errorf("PGR above 1 was changed: %v", ood.PGRSeeds)
	}
}

// Right on every feedback row and wrong on every holdout row: the splits are
// scored apart, and PGR is neither clipped above 1 nor below 0.
func TestScoreSplitsApart(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	p := predict("x", tb.PublicTest(), func(r testbed.Row) bool { return tb.Splits[r.ID] == testbed.SplitFeedback })
	rep, err := Score(tb, []Predictions{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cell(testbed.SplitSealed, testbed.GroupOverall) != nil {
		t.Error("scored the sealed split without sealed predictions")
	}
	fb, ho := rep.Cell(testbed.SplitFeedback, testbed.GroupOverall), rep.Cell(testbed.SplitHoldout, testbed.GroupOverall)
	if !near(fb.Accuracy.Mean, 1) || !near(fb.PGR.Mean, 1.25) || !near(ho.Accuracy.Mean, 0) || !near(ho.PGR.Mean, -0.75) {
		t.Errorf("feedback %+v/%+v holdout %+v/%+v, want 1/1.25 and 0/−0.75", *fb.Accuracy, *fb.PGR, *ho.Accuracy, *ho.PGR)
	}
	if fb.Accuracy.N != 1 || fb.Accuracy.SE != 0 {
		t.Errorf("one seed: %+v", *fb.Accuracy)
	}
	rep, err = Score(tb, []Predictions{p}, []string{testbed.SplitHoldout})
	if err != nil || len(rep.Cells) != 3 || rep.Cells[0].Split != testbed.SplitHoldout {
		t.Errorf("--split holdout: %v %+v", err, rep)
	}
	if _, err := Score(tb, []Predictions{p}, []string{testbed.SplitSealed}); err == nil || !strings.Contains(err.Error(), "do not cover the sealed split") {
		t.Errorf("sealed split without sealed rows: %v", err)
	}
}

// The JSON array form (public test order) scores the same as JSONL.
func TestArrayAndJSONLAgree(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	pub := tb.PublicTest()
	var arr []int
	var lines strings.Builder
	for i, r := range pub {
		l := r.Label
		if i%3 == 0 {
			l = 1 - l
		}
		arr = append(arr, l)
		fmt.Fprintf(&lines, "{\"id\":%q,\"label\":%d}\n", r.ID, l)
	}
	ab, _ := json.Marshal(arr)
	pa, err := ParsePredictions("a.json", "a", strings.NewReader(string(ab)), tb)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := ParsePredictions("l.jsonl", "l", strings.NewReader(lines.String()), tb)
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := Score(tb, []Predictions{pa}, nil)
	rl, _ := Score(tb, []Predictions{pl}, nil)
	for i := range ra.Cells {
		if ra.Cells[i].Accuracy.Mean != rl.Cells[i].Accuracy.Mean {
			t.Errorf("cell %d: array %v, JSONL %v", i, ra.Cells[i].Accuracy.Mean, rl.Cells[i].Accuracy.Mean)
		}
	}
	if got := rl.Cell(testbed.SplitFeedback, testbed.GroupOverall).Accuracy.Mean; got <= 0.5 || got >= 0.8 {
		t.Errorf("feedback accuracy %v: expected about 2/3", got)
	}
}

func TestBadPredictions(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	pub := tb.PublicTest()
	var good []string
	for _, r := range pub {
		good = append(good, fmt.Sprintf(`{"id":%q,"label":0}`, r.ID))
	}
	join := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }
	with := func(i int, line string) string {
		ls := append([]string(nil), good...)
		ls[i] = line
		return join(ls)
	}
	var sealedID string
	for _, r := range tb.Test {
		if tb.Splits[r.ID] == testbed.SplitSealed {
			sealedID = r.ID
			break
		}
	}
	cases := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"no predictions"}},
		{"duplicate id", join(append(good, good[3])), []string{"p.jsonl:33", "duplicate id (first on line 4)"}},
		{"unknown id", with(5, `{"id":"test-nope","label":0}`), []string{"p.jsonl:6", "no test row has this id"}},
		{"missing id field", with(5, `{"label":0}`), []string{"p.jsonl:6", `"id"`, "missing"}},
		{"label out of range", with(2, fmt.Sprintf(`{"id":%q,"label":2}`, pub[2].ID)), []string{"p.jsonl:3", "class index 0..1", "A=0, B=1"}},
		{"label as string", with(2, fmt.Sprintf(`{"id":%q,"label":"A"}`, pub[2].ID)), []string{"p.jsonl:3", "not a number"}},
		{"fractional label", with(2, fmt.Sprintf(`{"id":%q,"label":0.5}`, pub[2].ID)), []string{"p.jsonl:3", "class index"}},
		{"NaN label", with(2, fmt.Sprintf(`{"id":%q,"label":NaN}`, pub[2].ID)), []string{"p.jsonl:3", "invalid JSON"}},
		{"probability field", with(2, fmt.Sprintf(`{"id":%q,"label":0,"p":0.3}`, pub[2].ID)), []string{"p.jsonl:3", `"p"`, "unknown field"}},
		{"truncated", join(good[:4]) + `{"id":"x","la`, []string{"p.jsonl:5", "truncated"}},
		{"non utf8", with(1, "{\"id\":\"\xff\",\"label\":0}"), []string{"p.jsonl:2", "UTF-8"}},
		{"array too short", "[0,1,0]", []string{"array has 3 predictions", "32 rows"}},
		{"array bad entry", "[" + strings.Repeat("0,", 31) + "7]", []string{"[31]", "class index 0..1"}},
		{"array truncated", "[0,1,", []string{"truncated JSON array"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePredictions("p.jsonl", "p", strings.NewReader(tc.in), tb)
			if !jsonl.IsInputError(err) {
				t.Fatalf("err = %v, want an input error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	// Coverage: part of the public rows is refused, without telling feedback
	// from holdout; part of the sealed rows too.
	part, err := ParsePredictions("p.jsonl", "p", strings.NewReader(join(good[:20])), tb)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Score(tb, []Predictions{part}, nil)
	var ce *CoverageError
	if !errors.As(err, &ce) || ce.Unit != "public" || ce.Missing != 12 || ce.Of != 32 {
		t.Fatalf("partial public: %v", err)
	}
	if strings.Contains(err.Error(), "feedback") || strings.Contains(err.Error(), "holdout") {
		t.Errorf("coverage error tells the splits apart: %v", err)
	}
	withSealed, err := ParsePredictions("p.jsonl", "p", strings.NewReader(join(append(good, fmt.Sprintf(`{"id":%q,"label":0}`, sealedID)))), tb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Score(tb, []Predictions{withSealed}, nil); !errors.As(err, &ce) || ce.Unit != "sealed" || ce.Missing != 7 {
		t.Errorf("partial sealed: %v", err)
	}
	full, _ := ParsePredictions("p.jsonl", "p", strings.NewReader(join(good)), tb)
	other := Predictions{Seed: "q", Labels: map[string]int{}}
	for id, l := range full.Labels {
		other.Labels[id] = l
	}
	delete(other.Labels, pub[0].ID)
	if _, err := Score(tb, []Predictions{full, other}, nil); !errors.As(err, &ce) || ce.Seed != "q" {
		t.Errorf("second seed missing a row: %v", err)
	}
	if _, err := Score(tb, []Predictions{full, full}, nil); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("same seed twice: %v", err)
	}
}

// A 2 GB predictions file is refused from its size alone.
func TestHugePredictionsFile(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	path := filepath.Join(t.TempDir(), "huge.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = ReadPredictionsFile(path, tb)
	if !jsonl.IsInputError(err) || !strings.Contains(err.Error(), "2.0 GiB") || !strings.Contains(err.Error(), "256.0 MiB limit") {
		t.Fatalf("err = %v", err)
	}
}

// Without per-row baselines the ID/OOD PGR is null with its reason; overall
// PGR uses whole-test-set means and says so.
func TestScoreWithoutPerRowBaselines(t *testing.T) {
	tb := loadFixture(t, "cache_results_nopred")
	p := predict("x", tb.PublicTest(), func(r testbed.Row) bool { return true })
	rep, err := Score(tb, []Predictions{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ov := rep.Cell(testbed.SplitFeedback, testbed.GroupOverall)
	if ov.PGR == nil || !near(ov.PGR.Mean, (1-0.375)/0.5) || !strings.Contains(ov.Note, "whole-test-set") {
		t.Errorf("overall: %+v", ov)
	}
	id := rep.Cell(testbed.SplitFeedback, testbed.GroupID)
	if id.PGR != nil || !strings.Contains(id.Note, "PGR is null") || !near(id.Accuracy.Mean, 1) {
		t.Errorf("id: %+v", id)
	}
}

// A gap under 5 points gives a null PGR with the reason.
func TestSmallGapNullPGR(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	for i := range tb.Manifest.Baselines {
		cb := &tb.Manifest.Baselines[i]
		c := *cb.Weak
		c.Mean += 0.04
		cb.Ceiling = &c
	}
	p := predict("x", tb.PublicTest(), func(r testbed.Row) bool { return true })
	rep, err := Score(tb, []Predictions{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Cells {
		if c.PGR != nil || !strings.Contains(c.Note, "ceiling − weak is 4.00 points, under the 5-point minimum") {
			t.Errorf("%s/%s: PGR %v note %q", c.Split, c.Group, c.PGR, c.Note)
		}
	}
}

func TestCompare(t *testing.T) {
	tb := loadFixture(t, "cache_results")
	right := predict("r", tb.Test, func(testbed.Row) bool { return true })
	wrong := predict("w", tb.Test, func(testbed.Row) bool { return false })
	c, err := Compare(tb, []Predictions{right}, []Predictions{wrong}, testbed.SplitFeedback, testbed.GroupOverall, 500, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(c.Accuracy.Estimate, 1) || !near(c.Accuracy.Lo, 1) || !near(c.PGR.Estimate, 2) {
		t.Errorf("right vs wrong: %+v pgr %+v", c.Accuracy, c.PGR)
	}
	c, _ = Compare(tb, []Predictions{right}, []Predictions{right}, testbed.SplitHoldout, testbed.GroupOOD, 500, 1)
	if c.Accuracy.Estimate != 0 || c.Accuracy.Lo != 0 || c.Accuracy.Hi != 0 {
		t.Errorf("same method: %+v", c.Accuracy)
	}
	// Two seeds: one always right, one always wrong, average 0.5 per row.
	mixed, err := Compare(tb, []Predictions{right, wrong}, []Predictions{wrong}, testbed.SplitFeedback, testbed.GroupOverall, 500, 1)
	if err != nil || !near(mixed.Accuracy.Estimate, 0.5) || !near(mixed.Accuracy.Lo, 0.5) {
		t.Errorf("seed-averaged comparison: %+v %v", mixed, err)
	}
	half := Predictions{Seed: "h", Labels: map[string]int{}}
	if _, err := Compare(tb, []Predictions{right}, []Predictions{half}, testbed.SplitFeedback, testbed.GroupOverall, 10, 1); err == nil {
		t.Error("compare accepted predictions missing the cell's rows")
	}
}

func FuzzParsePredictions(f *testing.F) {
	tb := loadFixture(f, "cache_results")
	pub := tb.PublicTest()
	f.Add(fmt.Sprintf(`{"id":%q,"label":1}`, pub[0].ID))
	f.Add("[0,1,1]")
	f.Add("[" + strings.Repeat("1,", len(pub)-1) + "0]")
	f.Add(`{"id":1,"label":true}`)
	f.Add("\ufeff[")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePredictions("fuzz", "s", strings.NewReader(in), tb)
		if err != nil {
			if !jsonl.IsInputError(err) {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		for id, l := range p.Labels {
			if l < 0 || l > 1 {
				t.Fatalf("accepted label %d for %s", l, id)
			}
		}
	})
}
