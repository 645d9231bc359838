package w2s

import (
	"math"
	"sort"
)

// Confidence is a row's weak-label confidence: the gap between its two most
// probable classes (for two classes, |p1 − p0| = 2·max − 1).
func Confidence(p []float64) float64 {
	a, b := math.Inf(-1), math.Inf(-1)
	for _, v := range p {
		switch {
		case v > a:
			a, b = v, a
		case v > b:
			b = v
		}
	}
	if len(p) < 2 {
		return 1
	}
	return a - b
}

// MinConfidence is the study's rule: drop rows whose binary weak probability
// lies in [0.25, 0.75], i.e. keep a margin of at least 0.5; the same margin
// rule serves multi-class labels.
const MinConfidence = 0.5

// ConfidentRows returns the rows whose weak label's margin is at least
// MinConfidence (the study's train_only_on_confident_labels filter).
func ConfidentRows(weak [][]float64) []int {
	var out []int
	for i, p := range weak {
		if Confidence(p) >= MinConfidence {
			out = append(out, i)
		}
	}
	return out
}

// BalancedConfidentRows keeps as many rows as ConfidentRows, but the same
// share of each weak-predicted class (its most confident rows), so the
// filter cannot drop the hard classes and shift the label prior.
func BalancedConfidentRows(weak [][]float64) []int {
	if len(weak) == 0 {
		return nil
	}
	share := float64(len(ConfidentRows(weak))) / float64(len(weak))
	byClass := map[int][]int{}
	for i, c := range Argmax(weak) {
		byClass[c] = append(byClass[c], i)
	}
	var out []int
	for c := 0; c < len(weak[0]); c++ {
		rows := byClass[c]
		sort.SliceStable(rows, func(a, b int) bool { return Confidence(weak[rows[a]]) > Confidence(weak[rows[b]]) })
		out = append(out, rows[:int(math.Round(share*float64(len(rows))))]...)
	}
	sort.Ints(out)
	return out
}
