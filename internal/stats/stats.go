// Package stats owns the small statistics aar reports: means with standard
// errors across seeds and paired bootstrap confidence intervals. It knows
// nothing of testbeds or labels; callers pass plain numbers.
package stats

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Summary is a mean over N values with its standard error (the sample
// standard deviation over √N). With one value there is no spread to measure
// and SE is 0; read N before trusting SE.
type Summary struct {
	Mean float64 `json:"mean"`
	SE   float64 `json:"se"`
	N    int     `json:"n"`
}

// Summarize returns the mean and standard error of xs. It panics on an empty
// slice: a caller with no values has nothing to summarise.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		panic("stats: Summarize of no values")
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	n := float64(len(xs))
	mean := sum / n
	s := Summary{Mean: mean, N: len(xs)}
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			d := x - mean
			ss += d * d
		}
		s.SE = math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	}
	return s
}

// Interval is a two-sided confidence interval around an estimate.
type Interval struct {
	Estimate  float64 `json:"estimate"`
	Lo        float64 `json:"lo"`
	Hi        float64 `json:"hi"`
	Level     float64 `json:"level"`
	Resamples int     `json:"resamples"`
}

// PairedBootstrap estimates a confidence interval for mean(a) − mean(b) where
// a[i] and b[i] are paired measurements on the same item i (for accuracy: 1
// when a method got row i right, else 0). It resamples items with
// replacement, so it accounts for the pairing. level is e.g. 0.95; the
// percentile interval is returned. The seed makes it reproducible.
func PairedBootstrap(a, b []float64, resamples int, level float64, seed uint64) Interval {
	if len(a) != len(b) {
		panic("stats: PairedBootstrap of unpaired slices")
	}
	if len(a) == 0 || resamples <= 0 || level <= 0 || level >= 1 {
		panic("stats: PairedBootstrap needs items, resamples > 0 and 0 < level < 1")
	}
	n := len(a)
	d := make([]float64, n)
	var est float64
	for i := range a {
		d[i] = a[i] - b[i]
		est += d[i]
	}
	est /= float64(n)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	means := make([]float64, resamples)
	for r := range means {
		var s float64
		for range n {
			s += d[rng.IntN(n)]
		}
		means[r] = s / float64(n)
	}
	sort.Float64s(means)
	alpha := (1 - level) / 2
	return Interval{
		Estimate:  est,
		Lo:        quantile(means, alpha),
		Hi:        quantile(means, 1-alpha),
		Level:     level,
		Resamples: resamples,
	}
}

// Quantile returns the q-quantile of sorted xs by linear interpolation
// (NaN for none).
func Quantile(sorted []float64, q float64) float64 { return quantile(sorted, q) }

// quantile returns the q-quantile of sorted xs by linear interpolation.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[hi]*frac
}
