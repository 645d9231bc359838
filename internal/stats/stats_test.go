package stats

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestSummarize(t *testing.T) {
	cases := []struct {
		name     string
		xs       []float64
		mean, se float64
	}{
		{"one value", []float64{0.7}, 0.7, 0},
		{"two values", []float64{1, 0}, 0.5, 0.5},      // sd 0.7071, /√2
		{"constant", []float64{0.3, 0.3, 0.3}, 0.3, 0}, // no spread
		{"four", []float64{2, 4, 4, 6}, 4, math.Sqrt(8.0/3) / 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize(tc.xs)
			if !near(s.Mean, tc.mean) || !near(s.SE, tc.se) || s.N != len(tc.xs) {
				t.Errorf("Summarize(%v) = %+v, want mean %v se %v", tc.xs, s, tc.mean, tc.se)
			}
		})
	}
}

func TestPairedBootstrap(t *testing.T) {
	ones := []float64{1, 1, 1, 1, 1, 1, 1, 1}
	zeros := make([]float64, 8)
	if iv := PairedBootstrap(ones, zeros, 500, 0.95, 1); !near(iv.Estimate, 1) || !near(iv.Lo, 1) || !near(iv.Hi, 1) {
		t.Errorf("all-right vs all-wrong: %+v, want exactly 1", iv)
	}
	if iv := PairedBootstrap(ones, ones, 500, 0.95, 1); iv.Estimate != 0 || iv.Lo != 0 || iv.Hi != 0 {
		t.Errorf("same method: %+v, want exactly 0", iv)
	}
	// a right on 60 of 100 rows, b right on 50, disagreeing on 30 rows.
	a, b := make([]float64, 100), make([]float64, 100)
	for i := range a {
		switch {
		case i < 40: // both right
			a[i], b[i] = 1, 1
		case i < 60: // a only
			a[i] = 1
		case i < 70: // b only
			b[i] = 1
		}
	}
	iv := PairedBootstrap(a, b, 4000, 0.95, 7)
	if !near(iv.Estimate, 0.10) {
		t.Errorf("estimate = %v, want 0.10", iv.Estimate)
	}
	// Paired SE of the mean difference: sd of d (values 1×20, −1×10, 0×70)
	// is about 0.5477, /√100 ≈ 0.055: a 95% interval about ±0.107.
	if iv.Lo > 0.0 || iv.Lo < -0.03 || iv.Hi < 0.19 || iv.Hi > 0.22 {
		t.Errorf("interval [%v, %v] is not about 0.10 ± 0.107", iv.Lo, iv.Hi)
	}
	if again := PairedBootstrap(a, b, 4000, 0.95, 7); again != iv {
		t.Errorf("same seed gave %+v then %+v", iv, again)
	}
}
