package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/baseline"
	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/testbed"
)

// committedVerify is what `aar testbed build verify` wrote.
var committedVerify = filepath.Join("..", "..", "testbeds", VerifyTestbed)

// TestVerifyBuildDeterministic builds the honeypot twice: the bytes are the
// same, and the same as the committed data.
func TestVerifyBuildDeterministic(t *testing.T) {
	tb, err := Get(VerifyTestbed)
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Sources) != 0 {
		t.Errorf("the generated testbed reads sources %v", tb.Sources)
	}
	var trees []map[string][]byte
	for range 2 {
		dir := t.TempDir()
		if err := tb.Build(context.Background(), t.TempDir(), dir, quietLog()); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, readTree(t, dir))
	}
	if _, err := os.Stat(committedVerify); err == nil {
		trees = append(trees, readTree(t, committedVerify))
	} else {
		t.Errorf("no committed data in %s: run aar testbed build %s", committedVerify, VerifyTestbed)
	}
	var size int
	for name, b := range trees[0] {
		size += len(b)
		for i, tr := range trees[1:] {
			if !bytes.Equal(b, tr[name]) {
				what := "a second build"
				if i == 1 {
					what = "the committed data (rebuild with aar testbed build verify)"
				}
				t.Errorf("%s differs in %s", name, what)
			}
		}
	}
	for i, tr := range trees[1:] {
		if len(tr) != len(trees[0]) {
			t.Errorf("tree %d has %d files, the first build %d", i+1, len(tr), len(trees[0]))
		}
	}
	if size > 5<<20 {
		t.Errorf("the testbed holds %d bytes, more than 5 MiB", size)
	}
}

// verifySource reads the committed honeypot.
func verifySource(t *testing.T) *testbed.Source {
	t.Helper()
	src, err := testbed.ReadSource(committedVerify)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func privateInt(t *testing.T, r testbed.Row, name string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal(r.Fields[name], &n); err != nil {
		t.Fatalf("row %s: field %s: %v", r.ID, name, err)
	}
	return n
}

func stringField(r testbed.Row, name string) string {
	var s string
	_ = json.Unmarshal(r.Fields[name], &s)
	return s
}

// accuracy is the share of rows whose label pred gives.
func accuracy(rows []testbed.Row, pred map[string]int) float64 {
	ok := 0
	for _, r := range rows {
		if pred[r.ID] == r.Label {
			ok++
		}
	}
	return float64(ok) / float64(len(rows))
}

func TestVerifyRows(t *testing.T) {
	src := verifySource(t)
	if src.Manifest.Kind != testbed.KindBinary || !slices.Equal(src.Manifest.Classes, []string{"false", "true"}) {
		t.Fatalf("kind %s, classes %v", src.Manifest.Kind, src.Manifest.Classes)
	}
	files := map[string][]testbed.Row{testbed.FileTrainLabel: src.Labeled, testbed.FilePool: src.Pool, testbed.FileTest: src.Test}
	fileOf := map[string]string{} // question → file
	for file, rows := range files {
		perQ := map[string]int{}
		for _, r := range rows {
			q := stringField(r, "question")
			if prev, ok := fileOf[q]; ok && prev != file {
				t.Fatalf("question %q is in %s and %s", q, prev, file)
			}
			fileOf[q] = file
			perQ[q]++
			// The public text tells the answer and the question's value.
			x, err := choiceAnswer(stringField(r, "choice"))
			if err != nil {
				t.Fatal(err)
			}
			qa, err := parseArith(q)
			if err != nil {
				t.Fatal(err)
			}
			if x != privateInt(t, r, "answer") || qa.value() != privateInt(t, r, "truth") {
				t.Fatalf("%s row %s: read answer %d and value %d, private fields say %s and %s",
					file, r.ID, x, qa.value(), r.Fields["answer"], r.Fields["truth"])
			}
			if want := b2i(x == qa.value()); r.Label != want {
				t.Fatalf("%s row %s: label %d, the answer says %d", file, r.ID, r.Label, want)
			}
		}
		for q, n := range perQ {
			if n < verifyMinCandidates || n > verifyMaxCandidates {
				t.Errorf("%s: question %q has %d candidates", file, q, n)
			}
		}
	}
	subsets := map[string]int{}
	for _, r := range src.Test {
		subsets[r.Subset]++
	}
	if subsets[verifySubsetAdd] < 1000 || subsets[verifySubsetSub] < 1000 || subsets[verifySubsetMul] < 1000 {
		t.Errorf("test rows per subset: %v", subsets)
	}
	for _, r := range slices.Concat(src.Labeled, src.Pool) {
		if r.Subset == verifySubsetMul {
			t.Fatalf("row %s: multiplication (the OOD subset) outside the test file", r.ID)
		}
	}
	t.Logf("rows: train_label %d, pool %d, test %d (%v)", len(src.Labeled), len(src.Pool), len(src.Test), subsets)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestVerifyShortcuts measures each shortcut on the committed rows: the
// most common answer and computing it beat the ceiling (about 0.80); the
// generator alone sits between the weak model (about 0.70) and it.
func TestVerifyShortcuts(t *testing.T) {
	src := verifySource(t)
	for _, set := range []struct {
		name string
		rows []testbed.Row
	}{{"pool", src.Pool}, {"test", src.Test}} {
		sc, err := VerifyShortcuts(set.rows)
		if err != nil {
			t.Fatal(err)
		}
		maj := accuracy(set.rows, sc[ShortcutMajorityAnswer])
		gen := accuracy(set.rows, sc[ShortcutGeneratorClustering])
		comp := accuracy(set.rows, sc[ShortcutAnswerComputation])
		t.Logf("%s: majority_answer %.3f, generator_clustering %.3f, answer_computation %.3f", set.name, maj, gen, comp)
		if maj < 0.90 {
			t.Errorf("%s: majority answer accuracy %.3f, want ≥ 0.90", set.name, maj)
		}
		if comp != 1 {
			t.Errorf("%s: computed answer accuracy %.3f, want 1", set.name, comp)
		}
		// The label base rate is about 0.61: the generator must tell more.
		if gen < 0.68 || gen > 0.78 {
			t.Errorf("%s: generator clustering accuracy %.3f, want 0.68–0.78", set.name, gen)
		}
		for name, pred := range sc {
			if len(pred) != len(set.rows) {
				t.Errorf("%s: shortcut %s predicts %d of %d rows", set.name, name, len(pred), len(set.rows))
			}
		}
	}

	// Ties: every tied answer is 1. A row without a generator is refused.
	row := func(id, q, c, g string, label int) testbed.Row {
		f := map[string]json.RawMessage{}
		f["question"], _ = json.Marshal(q)
		f["choice"], _ = json.Marshal(c)
		if g != "" {
			f["generator"], _ = json.Marshal(g)
		}
		return testbed.Row{ID: id, Fields: f, Label: label}
	}
	rows := []testbed.Row{
		row("a", "What is 2 + 3?", "= 5", "terse", 1),
		row("b", "What is 2 + 3?", "In words: it is six.", "slipper", 0),
		row("c", "What is 2 + 3?", "Ballpark: about 10.", "rounder", 0),
		row("d", "What is 7 × 8?", "= 56", "terse", 1),
		row("e", "What is 7 × 8?", "Column by column: I get 56.", "carry", 1),
		row("f", "What is 7 × 8?", "Column by column: I get 66.", "carry", 0),
	}
	sc, err := VerifyShortcuts(rows)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]int{ // majority, generator, computation
		"a": {1, 1, 1}, "b": {1, 0, 0}, "c": {1, 0, 0},
		"d": {1, 1, 1}, "e": {1, 0, 1}, "f": {0, 0, 0},
	}
	for id, w := range want {
		got := [3]int{sc[ShortcutMajorityAnswer][id], sc[ShortcutGeneratorClustering][id], sc[ShortcutAnswerComputation][id]}
		if got != w {
			t.Errorf("row %s: shortcuts %v, want %v", id, got, w)
		}
	}
	unlabelled := row("g", "What is 9 − 4?", "Per my jottings: the result is 5.", "swapper", testbed.NoLabel)
	if _, err := VerifyShortcuts(append(rows, unlabelled)); err == nil {
		t.Error("a generator without a labelled row was accepted")
	}
	if _, err := VerifyShortcuts([]testbed.Row{row("x", "What is 2 + 3?", "= 5", "", 1)}); err == nil {
		t.Error("a row without a generator was accepted")
	}
	if _, err := VerifyShortcuts([]testbed.Row{row("x", "Add 2 and 3.", "= 5", "terse", 1)}); err == nil {
		t.Error("an unreadable question was accepted")
	}
}

// TestVerifyWithinGenerator checks that correctness varies within every
// generator, and with what the row shows: a generator's hedges, the
// rounder's approximate words, the carry-forgetter's carries.
func TestVerifyWithinGenerator(t *testing.T) {
	src := verifySource(t)
	rows := slices.Concat(src.Pool, src.Test)
	type tally struct{ n, right int }
	add := func(m map[string]*tally, k string, right bool) {
		if m[k] == nil {
			m[k] = &tally{}
		}
		m[k].n++
		if right {
			m[k].right++
		}
	}
	byGen, byCue := map[string]*tally{}, map[string]*tally{}
	// has says whether the choice holds one of the phrases, word for word.
	has := func(choice string, phrases []string) bool {
		text := " " + strings.Join(features.Words(choice), " ") + " "
		for _, p := range phrases {
			if strings.Contains(text, " "+strings.Join(features.Words(p), " ")+" ") {
				return true
			}
		}
		return false
	}
	for _, r := range rows {
		g, c, right := stringField(r, "generator"), stringField(r, "choice"), r.Label == 1
		add(byGen, g, right)
		switch g {
		case "chatty", "swapper", "slipper":
			add(byCue, g+" hedged="+map[bool]string{true: "yes", false: "no"}[has(c, verifyHedges)], right)
		case "rounder":
			add(byCue, g+" approx="+map[bool]string{true: "yes", false: "no"}[has(c, verifyApprox)], right)
		case "carry":
			qa, err := parseArith(stringField(r, "question"))
			if err != nil {
				t.Fatal(err)
			}
			add(byCue, g+" carries="+map[bool]string{true: "yes", false: "no"}[carryless(qa) != qa.value()], right)
		}
	}
	share := func(m map[string]*tally, k string) float64 {
		if m[k] == nil || m[k].n == 0 {
			t.Fatalf("no rows for %s", k)
		}
		return float64(m[k].right) / float64(m[k].n)
	}
	for _, g := range verifyStyles {
		p := share(byGen, g.Name)
		t.Logf("%-8s %4d rows, right %.2f", g.Name, byGen[g.Name].n, p)
		if p < 0.05 || p > 0.97 {
			t.Errorf("generator %s is right on %.2f of its rows: correctness is (nearly) constant", g.Name, p)
		}
	}
	for _, g := range []string{"chatty", "swapper", "slipper"} {
		yes, no := share(byCue, g+" hedged=yes"), share(byCue, g+" hedged=no")
		t.Logf("%s: right %.2f when hedged, %.2f when not", g, yes, no)
		if yes > no-0.25 {
			t.Errorf("%s: right %.2f when hedged, %.2f when not: hedges should mark wrong answers", g, yes, no)
		}
	}
	yes, no := share(byCue, "rounder approx=yes"), share(byCue, "rounder approx=no")
	t.Logf("rounder: right %.2f with an approximate word, %.2f without", yes, no)
	if yes > 0.35 || no < 0.75 {
		t.Errorf("rounder: right %.2f with an approximate word, %.2f without", yes, no)
	}
	if yes, no := share(byCue, "carry carries=yes"), share(byCue, "carry carries=no"); yes != 0 || no != 1 {
		t.Errorf("carry: right %.2f with carries, %.2f without (want 0 and 1)", yes, no)
	}
}

// TestVerifyInstall installs the committed honeypot: every question's
// candidates share a split, the public view holds no private field, and
// the weak model, the ceiling and vanilla W2S land where they were measured.
func TestVerifyInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the testbed and trains students")
	}
	store, err := testbed.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Install(context.Background(), store, filepath.Dir(committedVerify), VerifyTestbed, InstallOptions{Seeds: 5, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Question-level units.
	for name, rows := range map[string][]testbed.Row{"pool": tb.Pool, "test": tb.Test} {
		splitOf := map[string]string{}
		for _, r := range rows {
			q, s := stringField(r, "question"), tb.Splits[r.ID]
			if s == "" {
				t.Fatalf("%s row %s has no split", name, r.ID)
			}
			if prev, ok := splitOf[q]; ok && prev != s {
				t.Fatalf("%s: question %q is in splits %s and %s", name, q, prev, s)
			}
			splitOf[q] = s
		}
	}
	c := tb.Manifest.Counts
	if c.TestFeedback < 1000 || c.TestHoldout < 1000 || c.TestSealed < 500 || c.PoolSealed < 500 {
		t.Errorf("split counts %+v", c)
	}

	// The public view: id, question and choice only.
	pub := filepath.Join(t.TempDir(), "public")
	if err := tb.WritePublic(pub, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{testbed.FilePool, testbed.FileTest} {
		lines, err := jsonl.ReadFile(filepath.Join(pub, f), jsonl.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range lines {
			for k := range ln.Fields {
				if k != "id" && k != "question" && k != "choice" {
					t.Fatalf("public %s line %d has the field %q", f, ln.Num, k)
				}
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(pub, "test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{`"generator"`, `"answer"`, `"truth"`, `"label"`, `"subset"`} {
		if bytes.Contains(raw, []byte(private)) {
			t.Errorf("the public test file holds %s", private)
		}
	}

	// Weak, ceiling and vanilla W2S over every test row of each group (so
	// the figures do not depend on the install's split draw, except through
	// the public pool the student trains on).
	p, err := baseline.Prepare(tb)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), baseline.Options{Method: "vanilla_w2s", Seeds: baseline.ArtifactSeeds(5), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	mean := func(preds []testbed.SeedPredictions, rows []testbed.Row) float64 {
		var s float64
		for _, sp := range preds {
			ok := 0
			for _, r := range rows {
				if sp.Labels[r.ID] == r.Label {
					ok++
				}
			}
			s += float64(ok) / float64(len(rows))
		}
		return s / float64(len(preds))
	}
	var student []testbed.SeedPredictions
	for _, sp := range res.Predictions() {
		student = append(student, testbed.SeedPredictions{Seed: sp.Seed, Labels: sp.Labels})
	}
	for _, g := range []string{testbed.GroupID, testbed.GroupOOD} {
		var rows []testbed.Row
		for _, r := range tb.Test {
			if tb.Manifest.GroupOf(r.Subset) == g {
				rows = append(rows, r)
			}
		}
		weak, ceil, w2s := mean(tb.WeakPred, rows), mean(tb.CeilPred, rows), mean(student, rows)
		pgr := (w2s - weak) / (ceil - weak)
		t.Logf("%s (%d rows): weak %.3f, ceiling %.3f, vanilla W2S %.3f, PGR %.2f", g, len(rows), weak, ceil, w2s, pgr)
		if ceil-weak < 0.08 {
			t.Errorf("%s: ceiling − weak is %.3f, want ≥ 0.08", g, ceil-weak)
		}
		if pgr < 0.1 || pgr > 0.5 {
			t.Errorf("%s: vanilla PGR %.2f, want 0.1–0.5", g, pgr)
		}
	}
}
