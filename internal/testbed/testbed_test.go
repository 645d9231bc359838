package testbed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/jsonl"
)

const (
	fixtureData  = "testdata/study/labeled_data/chat"
	fixtureCache = "testdata/study/cache_results"
	fixtureNoPre = "testdata/study/cache_results_nopred"
)

func seedPtr(s uint64) *uint64 { return &s }

// importFixture imports the study-format fixture into a fresh store.
func importFixture(t *testing.T, cache string, seed uint64) (*Store, *Testbed) {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tb, err := store.Import(fixtureData, ImportOptions{Name: "chat", Cache: cache, SplitSeed: seedPtr(seed)})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return store, tb
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestImportStudyFixture(t *testing.T) {
	store, tb := importFixture(t, fixtureCache, 1)
	m := tb.Manifest
	if m.Kind != KindComparison || !slices.Equal(m.Classes, []string{"A", "B"}) {
		t.Fatalf("kind %s classes %v", m.Kind, m.Classes)
	}
	if !slices.Equal(m.IDSubsets, []string{"helpsteer2_validation"}) || !slices.Equal(m.OODSubsets, []string{"rm_bench_chat"}) {
		t.Errorf("subsets ID %v OOD %v: want the study's chat preset", m.IDSubsets, m.OODSubsets)
	}
	want := Counts{TrainLabel: 6, Pool: 20, PoolSealed: 4, Test: 40, TestFeedback: 16, TestHoldout: 16, TestSealed: 8}
	if *m.Counts != want {
		t.Errorf("counts %+v, want %+v", *m.Counts, want)
	}
	if !slices.Equal(m.WeakSeeds, []string{"42", "43"}) {
		t.Errorf("weak seeds %v", m.WeakSeeds)
	}
	// Every stratum (subset × label) of 10 test rows splits 4 feedback, 4
	// holdout, 2 sealed, whatever the seed.
	per := map[string]map[string]int{}
	for _, r := range tb.Test {
		k := r.Subset + "/" + m.Classes[r.Label]
		if per[k] == nil {
			per[k] = map[string]int{}
		}
		per[k][tb.Splits[r.ID]]++
	}
	for k, c := range per {
		if c[SplitFeedback] != 4 || c[SplitHoldout] != 4 || c[SplitSealed] != 2 {
			t.Errorf("stratum %s split %v, want 4/4/2", k, c)
		}
	}
	// Hand-computed baselines (see testdata/makefixture.go): identical in
	// every split because correctness is constant within a stratum.
	type fig struct{ weak, weakSE, ceil, ceilSE float64 }
	wantFig := map[string]fig{
		GroupOverall: {0.375, 0.125, 0.875, 0.125},
		GroupID:      {0.5, 0, 1, 0},
		GroupOOD:     {0.25, 0.25, 0.75, 0.25},
	}
	wantRows := map[string]int{SplitFeedback: 16, SplitHoldout: 16, SplitSealed: 8}
	if len(m.Baselines) != 9 {
		t.Fatalf("%d baseline cells, want 9", len(m.Baselines))
	}
	for _, cb := range m.Baselines {
		w := wantFig[cb.Group]
		rows := wantRows[cb.Split]
		if cb.Group != GroupOverall {
			rows /= 2
		}
		if cb.Rows != rows || cb.Weak == nil || cb.Ceiling == nil {
			t.Fatalf("%s/%s: %+v", cb.Split, cb.Group, cb)
		}
		if !near(cb.Weak.Mean, w.weak) || !near(cb.Weak.SE, w.weakSE) || !near(cb.Ceiling.Mean, w.ceil) || !near(cb.Ceiling.SE, w.ceilSE) ||
			cb.Weak.Seeds != 2 || cb.Weak.Basis != BasisPerRow || cb.Ceiling.Basis != BasisPerRow || cb.Note != "" {
			t.Errorf("%s/%s: weak %+v ceiling %+v note %q, want %+v per-row", cb.Split, cb.Group, *cb.Weak, *cb.Ceiling, cb.Note, w)
		}
	}

	// What was stored loads back the same.
	got, err := store.Load("chat")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Test) != 40 || len(got.Pool) != 20 || len(got.Labeled) != 6 || len(got.Soft) != 2 || len(got.WeakPred) != 2 || len(got.CeilPred) != 2 {
		t.Fatalf("loaded %d/%d/%d rows, %d soft, %d/%d preds", len(got.Test), len(got.Pool), len(got.Labeled), len(got.Soft), len(got.WeakPred), len(got.CeilPred))
	}
	for i, r := range got.Test {
		if r.ID != tb.Test[i].ID || r.Label != tb.Test[i].Label || r.Subset != tb.Test[i].Subset || got.Splits[r.ID] != tb.Splits[r.ID] {
			t.Fatalf("row %d differs after load", i)
		}
	}
	if p := got.Soft[1].Probs[got.Pool[3].ID]; len(p) != 2 || !near(p[1], 0.2+0.09+0.05) {
		t.Errorf("soft label of pool row 3, seed 43 = %v", p)
	}
	if names, _ := store.Names(); !slices.Equal(names, []string{"chat"}) {
		t.Errorf("names %v", names)
	}
}

func TestSplitsFollowSeed(t *testing.T) {
	_, a := importFixture(t, "", 1)
	_, b := importFixture(t, "", 1)
	_, c := importFixture(t, "", 2)
	if !mapsEqual(a.Splits, b.Splits) {
		t.Error("the same split seed drew different splits")
	}
	if mapsEqual(a.Splits, c.Splits) {
		t.Error("different split seeds drew the same splits")
	}
	// Derived ids depend on content only: the same across imports.
	for i := range a.Test {
		if a.Test[i].ID != c.Test[i].ID || !strings.HasPrefix(a.Test[i].ID, "test-") {
			t.Fatalf("derived id %q vs %q", a.Test[i].ID, c.Test[i].ID)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The id of a row is derived from its public fields only, so it cannot be
// used to test a guessed label; identical public content gets a suffix.
func TestDerivedIDIgnoresPrivateFields(t *testing.T) {
	m := &Manifest{Kind: KindComparison, Classes: []string{"A", "B"}}
	lines, err := jsonl.Read("t", strings.NewReader(
		`{"prompt":"p","first":"a","second":"b","label":"A","subset":"x"}`+"\n"+
			`{"prompt":"p","first":"a","second":"b","label":"B","subset":"y","difficulty":"hard"}`+"\n"), jsonl.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseRows(m, FileTest, "t", lines, true)
	if err != nil {
		t.Fatal(err)
	}
	if rows[1].ID != rows[0].ID+"-2" {
		t.Errorf("ids %q, %q: want the second to be the first plus -2", rows[0].ID, rows[1].ID)
	}
}

// The public view holds no label, subset, difficulty or other private field,
// no train_label.jsonl, no sealed row and no holdout or sealed figure:
// checked by scanning every byte of every file it writes.
func TestPublicViewHoldsNothingPrivate(t *testing.T) {
	_, tb := importFixture(t, fixtureCache, 3)
	out := filepath.Join(t.TempDir(), "public")
	if err := tb.WritePublic(out, false); err != nil {
		t.Fatal(err)
	}
	forbidden := []string{`"label"`, `"subset"`, `"difficulty"`, "source_model", "model-A", "model-B",
		"helpsteer2_validation", "rm_bench_chat", `"hard"`, SplitHoldout, SplitSealed, `"split"`, "seed\":"}
	sealedIDs := 0
	for _, r := range slices.Concat(tb.Test, tb.Pool) {
		if tb.Splits[r.ID] == SplitSealed {
			var prompt string
			_ = json.Unmarshal(r.Fields["prompt"], &prompt)
			forbidden = append(forbidden, `"`+r.ID+`"`, `"`+prompt+`"`)
			sealedIDs++
		}
	}
	if sealedIDs != 12 {
		t.Fatalf("%d sealed rows, want 12", sealedIDs)
	}
	var files []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		files = append(files, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forbidden {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s holds %s", rel, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if want := []string{"test.jsonl", "testbed.json", "train_unlabel.jsonl", "weak/42.jsonl", "weak/43.jsonl"}; !slices.Equal(files, want) {
		t.Errorf("public files %v, want %v", files, want)
	}
	// Every public row has exactly the public fields.
	for file, n := range map[string]int{FileTest: 32, FilePool: 16} {
		lines, err := jsonl.ReadFile(filepath.Join(out, file), jsonl.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != n {
			t.Errorf("%s: %d rows, want %d", file, len(lines), n)
		}
		for _, ln := range lines {
			var keys []string
			for k := range ln.Fields {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"first", "id", "prompt", "second"}) {
				t.Fatalf("%s:%d has fields %v", file, ln.Num, keys)
			}
		}
	}
	// The public order is not the file order, which groups rows by subset.
	pub := tb.PublicTest()
	idFirst := 0
	for _, r := range pub[:len(pub)/2] {
		if r.Subset == "helpsteer2_validation" {
			idFirst++
		}
	}
	if idFirst == len(pub)/2 {
		t.Error("public test order keeps the file's subset grouping")
	}
	// Refuses to write over a non-empty directory without force.
	if err := tb.WritePublic(out, false); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second write without force: %v", err)
	}
	if err := tb.WritePublic(out, true); err != nil {
		t.Errorf("write with force: %v", err)
	}
}

func TestCacheWithoutPredictions(t *testing.T) {
	_, tb := importFixture(t, fixtureNoPre, 1)
	for _, cb := range tb.Manifest.Baselines {
		switch cb.Group {
		case GroupOverall:
			if cb.Weak == nil || !near(cb.Weak.Mean, 0.375) || cb.Weak.Basis != BasisWholeSet || !near(cb.Ceiling.Mean, 0.875) {
				t.Errorf("%s/overall: %+v", cb.Split, cb)
			}
		case GroupID, GroupOOD:
			// The study's weak artifacts have no per-subset figures: the
			// weak ID/OOD baseline cannot be derived, and the note says so.
			if cb.Weak != nil || !strings.Contains(cb.Note, "weak: not derivable") {
				t.Errorf("%s/%s: weak %+v note %q", cb.Split, cb.Group, cb.Weak, cb.Note)
			}
			want := map[string]float64{GroupID: 1, GroupOOD: 0.75}[cb.Group]
			if cb.Ceiling == nil || !near(cb.Ceiling.Mean, want) || cb.Ceiling.Basis != BasisWholeSet {
				t.Errorf("%s/%s ceiling %+v, want %v from per_subset", cb.Split, cb.Group, cb.Ceiling, want)
			}
		}
	}
	notes := strings.Join(tb.Manifest.ImportNotes, "\n")
	if !strings.Contains(notes, "whole-test-set means") || !strings.Contains(notes, "baselines of feedback/id, feedback/ood, holdout/id, holdout/ood, sealed/id, sealed/ood: weak: not derivable") {
		t.Errorf("import notes do not say what could not be derived:\n%s", notes)
	}
}

func TestNoSealedRows(t *testing.T) {
	store, _ := OpenStore(t.TempDir())
	zero := 0.0
	tb, err := store.Import(fixtureData, ImportOptions{Name: "x", SealedFraction: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if c := tb.Manifest.Counts; c.TestSealed != 0 || c.PoolSealed != 0 || c.TestFeedback != 20 {
		t.Errorf("sealed fraction 0: %+v", *c)
	}
}

func TestSubsetFlags(t *testing.T) {
	store, _ := OpenStore(t.TempDir())
	tb, err := store.Import(fixtureData, ImportOptions{Name: "x", OODSubsets: []string{"helpsteer2_validation"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tb.Manifest.IDSubsets, []string{"rm_bench_chat"}) || !slices.Equal(tb.Manifest.OODSubsets, []string{"helpsteer2_validation"}) {
		t.Errorf("flags did not override the preset: ID %v OOD %v", tb.Manifest.IDSubsets, tb.Manifest.OODSubsets)
	}
}

// writeTestbed writes a native-format testbed directory from file contents.
func writeTestbed(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nativeFiles is a three-class testbed in aar's native layout: ids in the
// files, a manifest, weak soft labels, per-row baseline predictions and a
// features directory. The weak model is right on even-numbered test rows,
// the ceiling on all rows but every fifth.
func nativeFiles() map[string]string {
	var lab, pool, test, weak, bw, bc strings.Builder
	classes := []string{"cat", "dog", "eel"}
	for i := range 6 {
		fmt.Fprintf(&lab, `{"id":"l%d","text":"labelled %d","label":%q}`+"\n", i, i, classes[i%3])
	}
	for i := range 10 {
		fmt.Fprintf(&pool, `{"id":"u%d","text":"pool %d"}`+"\n", i, i)
		fmt.Fprintf(&weak, `{"id":"u%d","probs":[0.5,0.25,0.25]}`+"\n", i)
	}
	for i := range 40 {
		sub := "home"
		if i >= 20 {
			sub = "away"
		}
		fmt.Fprintf(&test, `{"id":"t%d","text":"test %d","label":%d,"subset":%q}`+"\n", i, i, i%3, sub)
		wl, cl := i%3, i%3
		if i%2 == 1 {
			wl = (i + 1) % 3
		}
		if i%5 == 0 {
			cl = (i + 1) % 3
		}
		fmt.Fprintf(&bw, `{"id":"t%d","label":%d}`+"\n", i, wl)
		fmt.Fprintf(&bc, `{"id":"t%d","label":%d}`+"\n", i, cl)
	}
	return map[string]string{
		"testbed.json": `{"name":"animals","kind":"classification","classes":["cat","dog","eel"],` +
			`"id_subsets":["home"],"ood_subsets":["away"],"license":"CC0","source":"made up for tests","notes":"three classes"}`,
		FileTrainLabel:              lab.String(),
		FilePool:                    pool.String(),
		FileTest:                    test.String(),
		"weak/1.jsonl":              weak.String(),
		"baselines/weak/1.jsonl":    bw.String(),
		"baselines/ceiling/1.jsonl": bc.String(),
		"features/vectors.txt":      "cat 0.1 0.2\n",
	}
}

func TestImportNativeClassification(t *testing.T) {
	dir := writeTestbed(t, nativeFiles())
	store, _ := OpenStore(t.TempDir())
	tb, err := store.Import(dir, ImportOptions{Name: "animals", SplitSeed: seedPtr(5)})
	if err != nil {
		t.Fatal(err)
	}
	m := tb.Manifest
	if m.License != "CC0" || m.Source != "made up for tests" || m.Kind != KindClassification || len(m.WeakSeeds) != 1 {
		t.Fatalf("manifest %+v", m)
	}
	if tb.Labeled[1].Label != 1 || tb.Test[5].Label != 2 {
		t.Errorf("labels by name and by index: %d, %d", tb.Labeled[1].Label, tb.Test[5].Label)
	}
	for _, cb := range m.Baselines {
		rows := tb.CellRows(cb.Split, cb.Group)
		var w, c int
		for _, r := range rows {
			var n int
			fmt.Sscanf(r.ID, "t%d", &n)
			if n%2 == 0 {
				w++
			}
			if n%5 != 0 {
				c++
			}
		}
		if cb.Weak == nil || !near(cb.Weak.Mean, float64(w)/float64(len(rows))) || !near(cb.Ceiling.Mean, float64(c)/float64(len(rows))) || cb.Weak.Seeds != 1 {
			t.Errorf("%s/%s: %+v, want weak %d/%d ceiling %d/%d", cb.Split, cb.Group, cb, w, len(rows), c, len(rows))
		}
	}
	out := filepath.Join(t.TempDir(), "pub")
	if err := tb.WritePublic(out, false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "features", "vectors.txt")); err != nil || string(b) != "cat 0.1 0.2\n" {
		t.Errorf("features not in the public view: %q %v", b, err)
	}
	var pm PublicManifest
	b, _ := os.ReadFile(filepath.Join(out, "testbed.json"))
	if err := json.Unmarshal(b, &pm); err != nil || !pm.Features || pm.Prediction != "a prediction is the class index: cat=0, dog=1, eel=2" || len(pm.Baselines) != 3 {
		t.Errorf("public manifest %+v (%v)", pm, err)
	}
}

// Bad input: every case gets an error naming the file (and line where there
// is one) and the fix, and leaves the store exactly as it was.
func TestImportBadInput(t *testing.T) {
	type edit func(files map[string]string)
	set := func(name, body string) edit { return func(f map[string]string) { f[name] = body } }
	appendTo := func(name, body string) edit { return func(f map[string]string) { f[name] += body } }
	replace := func(name, old, new string) edit {
		return func(f map[string]string) { f[name] = strings.Replace(f[name], old, new, 1) }
	}
	cases := []struct {
		name string
		edit edit
		want []string // substrings of the error
	}{
		{"missing test file", func(f map[string]string) { delete(f, FileTest) }, []string{"test.jsonl", "does not exist"}},
		{"empty test file", set(FileTest, ""), []string{"test.jsonl", "no rows"}},
		{"duplicate id", appendTo(FileTest, `{"id":"t1","text":"again","label":0,"subset":"home"}`+"\n"), []string{"test.jsonl:41", "already used by test.jsonl:2"}},
		{"id across files", appendTo(FilePool, `{"id":"t3","text":"clash"}`+"\n"), []string{"test.jsonl:4", "already used by train_unlabel.jsonl:11"}},
		{"unknown class", replace(FileTrainLabel, `"label":"dog"`, `"label":"wolf"`), []string{"train_label.jsonl:2", "label", "class name"}},
		{"index out of range", replace(FileTest, `"label":2`, `"label":3`), []string{"test.jsonl:3", "class index 0..2"}},
		{"fractional label", replace(FileTest, `"label":2`, `"label":1.5`), []string{"test.jsonl:3", "label"}},
		{"missing label", replace(FileTest, `,"label":2`, ``), []string{"test.jsonl:3", "missing"}},
		{"missing text", replace(FileTest, `"text":"test 2",`, ``), []string{"test.jsonl:3", `"text"`, "missing"}},
		{"text not string", replace(FileTest, `"text":"test 2"`, `"text":7`), []string{"test.jsonl:3", "not a string"}},
		{"non utf8", replace(FileTest, "test 2", "test \xff"), []string{"test.jsonl:3", "UTF-8"}},
		{"truncated json", appendTo(FileTest, `{"id":"t99","text":"x","lab`), []string{"test.jsonl:41", "truncated"}},
		{"NaN token", replace(FileTest, `"label":2`, `"label":NaN`), []string{"test.jsonl:3", "invalid JSON"}},
		{"soft labels short", set("weak/1.jsonl", `{"id":"u0","probs":[0.5,0.25,0.25]}`+"\n"), []string{"weak/1.jsonl", "the pool has 10"}},
		{"soft labels not summing", replace("weak/1.jsonl", "0.5,0.25,0.25", "0.5,0.5,0.5"), []string{"weak/1.jsonl:1", "sum to"}},
		{"baseline unknown id", replace("baselines/weak/1.jsonl", `"id":"t0"`, `"id":"zz"`), []string{"baselines/weak/1.jsonl:1", "no row has this id"}},
		{"baseline missing rows", set("baselines/ceiling/1.jsonl", `{"id":"t0","label":0}`+"\n"), []string{"baselines/ceiling/1.jsonl", "40 rows"}},
		{"manifest typo", replace("testbed.json", `"notes"`, `"noets"`), []string{"testbed.json", "noets"}},
		{"manifest bad kind", replace("testbed.json", `"classification"`, `"ranking"`), []string{"testbed.json", "kind", "ranking"}},
		{"subset unlisted", replace("testbed.json", `"ood_subsets":["away"],`, `"ood_subsets":["elsewhere"],`), []string{"elsewhere", "no test rows"}},
		{"feature symlink", func(f map[string]string) { f["features/vectors.txt"] = "SYMLINK" }, []string{"not a regular file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := nativeFiles()
			tc.edit(files)
			link := files["features/vectors.txt"] == "SYMLINK"
			if link {
				delete(files, "features/vectors.txt")
			}
			dir := writeTestbed(t, files)
			if link {
				_ = os.MkdirAll(filepath.Join(dir, "features"), 0o755)
				if err := os.Symlink("/etc/passwd", filepath.Join(dir, "features", "vectors.txt")); err != nil {
					t.Fatal(err)
				}
			}
			data := t.TempDir()
			store, _ := OpenStore(data)
			_, err := store.Import(dir, ImportOptions{Name: "animals"})
			if err == nil {
				t.Fatal("import succeeded")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !jsonl.IsInputError(err) {
				t.Errorf("error %q is not an input error", err)
			}
			if !strings.Contains(err.Error(), "fix:") && !link {
				t.Errorf("error %q gives no fix", err)
			}
			assertEmptyStore(t, data)
		})
	}
}

func assertEmptyStore(t *testing.T, data string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(data, "testbeds"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("the store changed: %d entries left", len(ents))
	}
}

func TestImportRefusals(t *testing.T) {
	bad := 1.5
	data := t.TempDir()
	store, _ := OpenStore(data)
	if _, err := store.Import(fixtureData, ImportOptions{Name: "Bad Name"}); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := store.Import(fixtureData, ImportOptions{Name: "c", IDSubsets: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown subset flag: %v", err)
	}
	if _, err := store.Import(fixtureData, ImportOptions{Name: "c", SealedFraction: &bad}); err == nil || !strings.Contains(err.Error(), "sealed fraction") {
		t.Errorf("bad fraction: %v", err)
	}
	if _, err := store.Import(fixtureData, ImportOptions{Name: "c", Cache: "testdata/nowhere"}); err == nil || !strings.Contains(err.Error(), "--cache") {
		t.Errorf("missing cache: %v", err)
	}
	assertEmptyStore(t, data)
	if _, err := store.Import(fixtureData, ImportOptions{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(fixtureData, ImportOptions{Name: "c"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second import under the same name: %v", err)
	}
	var nf *NotFoundError
	if _, err := store.Load("nope"); !errors.As(err, &nf) {
		t.Errorf("load of a missing testbed: %v", err)
	}
}

// A cache whose soft labels do not match the pool is refused.
func TestCacheMismatch(t *testing.T) {
	cache := t.TempDir()
	if err := copyTree(fixtureCache, cache); err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(cache, "chat_weak_artifacts", "Qwen_Qwen1_5_0_5B_Chat_e5_lr0.0001_bs32_schlinear", "seed_43.json")
	var v map[string]any
	b, _ := os.ReadFile(seedFile)
	_ = json.Unmarshal(b, &v)
	v["soft_labels"] = v["soft_labels"].([]any)[:5]
	b, _ = json.Marshal(v)
	_ = os.WriteFile(seedFile, b, 0o644)
	data := t.TempDir()
	store, _ := OpenStore(data)
	_, err := store.Import(fixtureData, ImportOptions{Name: "chat", Cache: cache})
	if err == nil || !strings.Contains(err.Error(), "seed_43.json") || !strings.Contains(err.Error(), "5 soft labels for 20") {
		t.Fatalf("err = %v", err)
	}
	assertEmptyStore(t, data)
}

func FuzzParseRows(f *testing.F) {
	f.Add(`{"prompt":"p","first":"a","second":"b","label":"A","subset":"s"}`, 0)
	f.Add(`{"question":"q","choice":"c","label":true}`, 1)
	f.Add(`{"id":3,"text":"t","label":"dog"}`, 2)
	f.Add(`{"id":"","text":"t","label":1}`, 2)
	f.Add(`{"prompt":"p","first":1}`, 0)
	f.Fuzz(func(t *testing.T, line string, k int) {
		kind := Kinds[((k%3)+3)%3]
		m := &Manifest{Kind: kind, Classes: []string{"cat", "dog"}}
		if fc, ok := fixedClasses[kind]; ok {
			m.Classes = fc
		}
		lines, err := jsonl.Read("f", strings.NewReader(line), jsonl.Limits{})
		if err != nil {
			return
		}
		rows, err := parseRows(m, FileTest, "f", lines, true)
		if err != nil {
			if !jsonl.IsInputError(err) {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		for _, r := range rows {
			if r.ID == "" || r.Label < 0 || r.Label >= len(m.Classes) {
				t.Fatalf("accepted row with id %q label %d", r.ID, r.Label)
			}
		}
	})
}

// A comparison pair shown in both orders is one unit: its two rows always
// share a split, so no split holds the mirror of another split's row.
func TestPairOrdersShareASplit(t *testing.T) {
	var lab, pool, test strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lab, `{"prompt":"q","first":"good %d","second":"bad %d","label":"A"}`+"\n", i, i)
	}
	for i := range 60 {
		fmt.Fprintf(&pool, `{"prompt":"q","first":"pool good %d","second":"pool bad %d"}`+"\n", i, i)
		fmt.Fprintf(&pool, `{"prompt":"q","first":"pool bad %d","second":"pool good %d"}`+"\n", i, i)
	}
	for i := range 100 {
		fmt.Fprintf(&test, `{"prompt":"q","first":"good %d","second":"bad %d","label":"A","subset":"s"}`+"\n", i+100, i+100)
		fmt.Fprintf(&test, `{"prompt":"q","first":"bad %d","second":"good %d","label":"B","subset":"s"}`+"\n", i+100, i+100)
	}
	dir := writeTestbed(t, map[string]string{FileTrainLabel: lab.String(), FilePool: pool.String(), FileTest: test.String()})
	store, _ := OpenStore(t.TempDir())
	tb, err := store.Import(dir, ImportOptions{Name: "pairs", SplitSeed: seedPtr(9)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range [][]Row{tb.Test, tb.Pool} {
		for i := 0; i < len(rows); i += 2 {
			if a, b := tb.Splits[rows[i].ID], tb.Splits[rows[i+1].ID]; a != b {
				t.Fatalf("the two orders of a pair are in %s and %s", a, b)
			}
		}
	}
	c := tb.Manifest.Counts
	if c.TestSealed != 40 || c.TestHoldout != 80 || c.TestFeedback != 80 || c.PoolSealed != 24 {
		t.Errorf("counts %+v: want 20 sealed, 40 holdout, 40 feedback pairs and 12 sealed pool pairs", *c)
	}
}
