package builtin

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// SkipGramOptions configure TrainSkipGram. Zero fields take the defaults of
// DefaultSkipGramOptions.
type SkipGramOptions struct {
	Dim       int // vector size
	Window    int // largest distance to a context token (each center draws 1..Window)
	Negatives int // negative samples per (center, context) pair
	MinCount  int // tokens seen fewer times are dropped
	// MaxVocab keeps only the MaxVocab most frequent tokens (0: no limit).
	MaxVocab int
	Epochs   int
	// Subsample is word2vec's threshold t: a token of corpus frequency f is
	// kept with probability (√(f/t)+1)·t/f. Negative turns it off.
	Subsample float64
	// LR is the starting learning rate; it decays linearly to LR·1e-4.
	LR   float64
	Seed uint64
	// Log, when set, receives one progress line per epoch.
	Log *slog.Logger
}

// DefaultSkipGramOptions are word2vec's skip-gram defaults with 100-d vectors.
func DefaultSkipGramOptions() SkipGramOptions {
	return SkipGramOptions{Dim: 100, Window: 5, Negatives: 5, MinCount: 5, Epochs: 5,
		Subsample: 1e-3, LR: 0.025, Seed: 1}
}

func (o SkipGramOptions) overlay() SkipGramOptions {
	d := DefaultSkipGramOptions()
	if o.Dim == 0 {
		o.Dim = d.Dim
	}
	if o.Window == 0 {
		o.Window = d.Window
	}
	if o.Negatives == 0 {
		o.Negatives = d.Negatives
	}
	if o.MinCount == 0 {
		o.MinCount = d.MinCount
	}
	if o.Epochs == 0 {
		o.Epochs = d.Epochs
	}
	if o.Subsample == 0 {
		o.Subsample = d.Subsample
	}
	if o.LR == 0 {
		o.LR = d.LR
	}
	return o
}

// SkipGram holds trained token vectors: Vectors[i·Dim:(i+1)·Dim] is the
// vector of Vocab[i]. Vocab is sorted by decreasing corpus count, ties by
// token.
type SkipGram struct {
	Vocab   []string
	Counts  []int
	Dim     int
	Vectors []float32
}

// Vector returns a token's vector, or nil when it is not in the vocabulary.
func (s *SkipGram) Vector(tok string) []float32 {
	for i, t := range s.Vocab {
		if t == tok {
			return s.Vectors[i*s.Dim : (i+1)*s.Dim]
		}
	}
	return nil
}

const (
	sgMaxExp    = 6
	sgTableSize = 1000
	sgScale     = float32(sgTableSize) / (2 * sgMaxExp)
)

// TrainSkipGram trains skip-gram vectors with negative sampling (word2vec's
// algorithm: dynamic window, frequent-token subsampling, unigram^0.75
// negatives, linearly decaying learning rate) on a corpus of token
// sequences. It runs on one goroutine from one seeded PCG stream, and every
// float32 product is rounded before it is added (no fused multiply-add), so
// the same corpus and options give the same bytes.
func TrainSkipGram(ctx context.Context, corpus [][]string, opt SkipGramOptions) (*SkipGram, error) {
	opt = opt.overlay()
	if opt.Dim < 0 || opt.Window < 0 || opt.Negatives < 0 || opt.MinCount < 0 || opt.Epochs < 0 || opt.LR < 0 || opt.MaxVocab < 0 {
		return nil, fmt.Errorf("skip-gram options must not be negative: %+v", opt)
	}

	// Vocabulary: count, drop rare tokens, sort by count then token.
	counts := map[string]int{}
	for _, s := range corpus {
		for _, t := range s {
			counts[t]++
		}
	}
	type entry struct {
		tok string
		n   int
	}
	var vocab []entry
	for t, n := range counts {
		if n >= opt.MinCount {
			vocab = append(vocab, entry{t, n})
		}
	}
	slices.SortFunc(vocab, func(a, b entry) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.tok, b.tok)
	})
	if opt.MaxVocab > 0 && len(vocab) > opt.MaxVocab {
		vocab = vocab[:opt.MaxVocab]
	}
	if len(vocab) == 0 {
		return nil, fmt.Errorf("skip-gram: no token occurs %d times or more", opt.MinCount)
	}
	index := make(map[string]int32, len(vocab))
	out := &SkipGram{Dim: opt.Dim, Vocab: make([]string, len(vocab)), Counts: make([]int, len(vocab))}
	var total int
	for i, e := range vocab {
		index[e.tok] = int32(i)
		out.Vocab[i], out.Counts[i] = e.tok, e.n
		total += e.n
	}
	// The corpus as vocabulary indexes (unknown tokens dropped).
	ids := make([][]int32, 0, len(corpus))
	for _, s := range corpus {
		var row []int32
		for _, t := range s {
			if i, ok := index[t]; ok {
				row = append(row, i)
			}
		}
		if len(row) > 1 {
			ids = append(ids, row)
		}
	}

	// Keep probabilities for subsampling.
	keep := make([]float64, len(vocab))
	for i, e := range vocab {
		keep[i] = 1
		if opt.Subsample > 0 {
			f := float64(e.n) / float64(total)
			if p := (math.Sqrt(f/opt.Subsample) + 1) * opt.Subsample / f; p < 1 {
				keep[i] = p
			}
		}
	}
	// Negative sampling: cumulative unigram^0.75 weights.
	cum := make([]float64, len(vocab))
	var acc float64
	for i, e := range vocab {
		acc += math.Pow(float64(e.n), 0.75)
		cum[i] = acc
	}
	// Sigmoid table over [-sgMaxExp, sgMaxExp].
	var sig [sgTableSize]float32
	for i := range sig {
		x := float64(i)/float64(sgScale) - sgMaxExp
		sig[i] = float32(1 / (1 + math.Exp(-x)))
	}

	rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed5eed5eed5eed))
	dim := opt.Dim
	syn0 := make([]float32, len(vocab)*dim)
	for i := range syn0 {
		syn0[i] = float32((rng.Float64() - 0.5) / float64(dim))
	}
	syn1 := make([]float32, len(vocab)*dim)
	grad := make([]float32, dim)

	var trainTokens int
	for _, r := range ids {
		trainTokens += len(r)
	}
	totalSteps := float64(opt.Epochs*trainTokens + 1)
	lr0 := float32(opt.LR)
	done := 0
	sent := make([]int32, 0, 256)
	for epoch := 0; epoch < opt.Epochs; epoch++ {
		start := time.Now()
		for si, r := range ids {
			if si%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			lr := float32(float64(lr0) * (1 - float64(done)/totalSteps))
			if lr < lr0*1e-4 {
				lr = lr0 * 1e-4
			}
			done += len(r)
			sent = sent[:0]
			for _, w := range r {
				if keep[w] < 1 && rng.Float64() >= keep[w] {
					continue
				}
				sent = append(sent, w)
			}
			for pos, center := range sent {
				b := 1
				if opt.Window > 1 {
					b += rng.IntN(opt.Window)
				}
				for cpos := pos - b; cpos <= pos+b; cpos++ {
					if cpos == pos || cpos < 0 || cpos >= len(sent) {
						continue
					}
					ctxw := sent[cpos]
					in := syn0[int(ctxw)*dim : int(ctxw+1)*dim]
					clear(grad)
					for d := 0; d <= opt.Negatives; d++ {
						target, label := center, float32(1)
						if d > 0 {
							target = int32(sort.SearchFloat64s(cum, rng.Float64()*acc))
							if target >= int32(len(cum)) {
								target = int32(len(cum) - 1)
							}
							if target == center {
								continue
							}
							label = 0
						}
						o := syn1[int(target)*dim : int(target+1)*dim]
						o = o[:len(in)]
						var f float32
						for i, x := range in {
							f += float32(x * o[i])
						}
						var g float32
						switch {
						case f >= sgMaxExp:
							g = (label - 1) * lr
						case f <= -sgMaxExp:
							g = label * lr
						default:
							g = (label - sig[min(int((f+sgMaxExp)*sgScale), sgTableSize-1)]) * lr
						}
						gr := grad[:len(in)]
						for i, x := range in {
							gr[i] += float32(g * o[i])
							o[i] += float32(g * x)
						}
					}
					gr := grad[:len(in)]
					for i, x := range gr {
						in[i] += x
					}
				}
			}
		}
		if opt.Log != nil {
			opt.Log.Info("skip-gram epoch", "epoch", epoch+1, "of", opt.Epochs, "tokens", trainTokens,
				"vocab", len(vocab), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	out.Vectors = syn0
	return out, nil
}
