package features

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"unicode"
)

func init() {
	RegisterTokenizer("words", Words)
	RegisterTokenizer("space", strings.Fields)
	RegisterKind("bag", openBag)
	RegisterKind("embed", openEmbed)
	RegisterKind("tfidf", openTFIDF)
	RegisterKind("concat", openConcat)
}

// Words lower-cases text and splits it into runs of letters, digits and
// apostrophes (apostrophes at the edges dropped).
func Words(text string) []string {
	var out []string
	start := -1
	lower := strings.ToLower(text)
	flush := func(end int) {
		if start >= 0 {
			if w := strings.Trim(lower[start:end], "'"); w != "" {
				out = append(out, w)
			}
			start = -1
		}
	}
	for i, r := range lower {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(lower))
	return out
}

// bag: 1 for each vocabulary token present.
type bag struct {
	tok   Tokenizer
	index map[string]int
}

func openBag(spec Spec, dir string) (Featurizer, error) {
	tok, err := TokenizerByName(spec.Tokenizer)
	if err != nil {
		return nil, err
	}
	vocab, err := ReadVocab(dir, spec.Vocab)
	if err != nil {
		return nil, err
	}
	return &bag{tok: tok, index: indexOf(vocab)}, nil
}

func indexOf(vocab []string) map[string]int {
	m := make(map[string]int, len(vocab))
	for i, w := range vocab {
		if _, dup := m[w]; !dup {
			m[w] = i
		}
	}
	return m
}

func (b *bag) Dim() int { return len(b.index) }

func (b *bag) Append(v *Vec, off int, text string) error {
	var cols []int
	seen := map[int]bool{}
	for _, t := range b.tok(text) {
		if c, ok := b.index[t]; ok && !seen[c] {
			seen[c] = true
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	for _, c := range cols {
		v.Add(off+c, 1)
	}
	return nil
}

// embed: pooled token vectors (mean and/or max over in-vocabulary tokens;
// zeros when none is known).
type embed struct {
	tok   Tokenizer
	index map[string]int
	vecs  []float32
	dim   int
	pool  []string
}

func openEmbed(spec Spec, dir string) (Featurizer, error) {
	tok, err := TokenizerByName(spec.Tokenizer)
	if err != nil {
		return nil, err
	}
	if spec.Dim <= 0 {
		return nil, fmt.Errorf("dim must be positive")
	}
	vocab, err := ReadVocab(dir, spec.Vocab)
	if err != nil {
		return nil, err
	}
	vecs, err := ReadF32(dir, spec.Vectors, len(vocab)*spec.Dim)
	if err != nil {
		return nil, err
	}
	pool := spec.Pool
	if len(pool) == 0 {
		pool = []string{"mean"}
	}
	for _, p := range pool {
		if p != "mean" && p != "max" {
			return nil, fmt.Errorf("pool %q: use mean or max", p)
		}
	}
	return &embed{tok: tok, index: indexOf(vocab), vecs: vecs, dim: spec.Dim, pool: pool}, nil
}

func (e *embed) Dim() int { return e.dim * len(e.pool) }

func (e *embed) Append(v *Vec, off int, text string) error {
	mean := make([]float64, e.dim)
	max := make([]float64, e.dim)
	for i := range max {
		max[i] = math.Inf(-1)
	}
	n := 0
	for _, t := range e.tok(text) {
		r, ok := e.index[t]
		if !ok {
			continue
		}
		n++
		row := e.vecs[r*e.dim : (r+1)*e.dim]
		for i, x := range row {
			mean[i] += float64(x)
			if float64(x) > max[i] {
				max[i] = float64(x)
			}
		}
	}
	for k, p := range e.pool {
		for i := 0; i < e.dim; i++ {
			var x float64
			if n > 0 {
				if p == "mean" {
					x = mean[i] / float64(n)
				} else {
					x = max[i]
				}
			}
			v.Add(off+k*e.dim+i, float32(x))
		}
	}
	return nil
}

// tfidf: word 1..n-grams hashed into buckets, weighted by idf, L2-normalized.
type tfidf struct {
	tok     Tokenizer
	ngrams  int
	buckets int
	idf     []float32
}

func openTFIDF(spec Spec, dir string) (Featurizer, error) {
	tok, err := TokenizerByName(spec.Tokenizer)
	if err != nil {
		return nil, err
	}
	if spec.NGrams <= 0 || spec.Buckets <= 0 {
		return nil, fmt.Errorf("ngrams and buckets must be positive")
	}
	idf, err := ReadF32(dir, spec.IDF, spec.Buckets)
	if err != nil {
		return nil, err
	}
	return &tfidf{tok: tok, ngrams: spec.NGrams, buckets: spec.Buckets, idf: idf}, nil
}

// HashedNGrams returns the bucket of every word n-gram (n = 1..ngrams) of
// tokens: FNV-1a 32 of the n-gram's tokens joined by a space, mod buckets.
// Builders use it to compute idf tables that match the featurizer.
func HashedNGrams(tokens []string, ngrams, buckets int) []int {
	var out []int
	for n := 1; n <= ngrams; n++ {
		for i := 0; i+n <= len(tokens); i++ {
			h := fnv.New32a()
			for j := i; j < i+n; j++ {
				if j > i {
					h.Write([]byte{' '})
				}
				h.Write([]byte(tokens[j]))
			}
			out = append(out, int(h.Sum32()%uint32(buckets)))
		}
	}
	return out
}

func (t *tfidf) Dim() int { return t.buckets }

func (t *tfidf) Append(v *Vec, off int, text string) error {
	counts := map[int]float64{}
	for _, b := range HashedNGrams(t.tok(text), t.ngrams, t.buckets) {
		counts[b]++
	}
	cols := make([]int, 0, len(counts))
	var norm float64
	for b, c := range counts {
		w := c * float64(t.idf[b])
		counts[b] = w
		norm += w * w
		cols = append(cols, b)
	}
	slices.Sort(cols)
	if norm == 0 {
		return nil
	}
	norm = math.Sqrt(norm)
	for _, b := range cols {
		v.Add(off+b, float32(counts[b]/norm))
	}
	return nil
}

// concat: parts side by side.
type concat struct {
	parts []Featurizer
	dim   int
}

func openConcat(spec Spec, dir string) (Featurizer, error) {
	if len(spec.Parts) == 0 {
		return nil, fmt.Errorf("concat needs parts")
	}
	c := &concat{}
	for _, p := range spec.Parts {
		f, err := Open(p, dir)
		if err != nil {
			return nil, err
		}
		c.parts = append(c.parts, f)
		c.dim += f.Dim()
	}
	return c, nil
}

func (c *concat) Dim() int { return c.dim }

func (c *concat) Append(v *Vec, off int, text string) error {
	for _, p := range c.parts {
		if err := p.Append(v, off, text); err != nil {
			return err
		}
		off += p.Dim()
	}
	return nil
}
