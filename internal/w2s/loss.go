package w2s

import (
	"fmt"
	"math"
	"slices"
)

// Loss turns the targets a caller gives (weak labels, hard or soft) into the
// targets the student is fitted to at a point of training. Cross-entropy
// against those targets is what is minimised; a Loss that depends on the
// student's own predictions is applied with the predictions held fixed.
type Loss interface {
	Name() string
	// Targets writes into dst the training target of each row of a batch,
	// given the caller's targets and the student's current probabilities;
	// progress runs from 0 (start) to 1 (end of training).
	Targets(dst, given, p [][]float64, progress float64)
}

// preparer is an optional Loss extra: it sees every row's given target
// once, before training.
type preparer interface{ prepare(given [][]float64) }

// XEnt is plain cross-entropy against the given targets (hard one-hot or
// soft).
type XEnt struct{}

func (XEnt) Name() string { return "xent" }

func (XEnt) Targets(dst, given, _ [][]float64, _ float64) {
	for i := range dst {
		copy(dst[i], given[i])
	}
}

// LogConf is the auxiliary-confidence loss of Burns et al. (2023):
// target = (1−α)·weak + α·harden(student), with α rising linearly from 0 to
// Alpha over the first Warmup share of training (as EleutherAI's w2s fixed
// it: no confidence term at the start, when the student knows nothing).
// Hardening uses per-class thresholds at the batch quantiles that match the
// weak labels' class prior, so the hardened labels keep that prior; argmax
// hardening collapses onto one class on multi-class tasks.
type LogConf struct {
	Alpha  float64 // final weight of the confidence term (default 0.5)
	Warmup float64 // share of training to reach Alpha (default 0.2)
	prior  []float64
}

func (l *LogConf) Name() string { return "logconf" }

func (l *LogConf) prepare(given [][]float64) { l.prior = classPrior(given) }

func (l *LogConf) Targets(dst, given, p [][]float64, progress float64) {
	alpha := ramp(l.Alpha, 0.5, l.Warmup, progress)
	hard := harden(p, l.prior)
	for i := range dst {
		for k := range dst[i] {
			h := 0.0
			if k == hard[i] {
				h = 1
			}
			dst[i][k] = (1-alpha)*given[i][k] + alpha*h
		}
	}
}

// Product fits the student to the normalised product of the weak labels and
// its own predictions raised to a power that rises from 0 to 1 over the
// first Warmup share of training: rows where teacher and student agree
// sharpen, rows where they disagree soften.
type Product struct {
	Warmup float64 // default 0.2
}

func (l *Product) Name() string { return "product" }

func (l *Product) Targets(dst, given, p [][]float64, progress float64) {
	a := ramp(1, 1, l.Warmup, progress)
	for i := range dst {
		var s float64
		for k := range dst[i] {
			dst[i][k] = given[i][k] * math.Pow(math.Max(p[i][k], 1e-12), a)
			s += dst[i][k]
		}
		if s == 0 {
			copy(dst[i], given[i])
			continue
		}
		for k := range dst[i] {
			dst[i][k] /= s
		}
	}
}

// ramp returns max·min(1, progress/warmup) (max defaulting to def, warmup
// to 0.2).
func ramp(max, def, warmup, progress float64) float64 {
	if max == 0 {
		max = def
	}
	if warmup <= 0 {
		warmup = 0.2
	}
	return max * math.Min(1, progress/warmup)
}

// classPrior is the mean target per class.
func classPrior(t [][]float64) []float64 {
	if len(t) == 0 {
		return nil
	}
	prior := make([]float64, len(t[0]))
	for _, row := range t {
		for k, v := range row {
			prior[k] += v
		}
	}
	for k := range prior {
		prior[k] /= float64(len(t))
	}
	return prior
}

// harden assigns each row the class k maximising p[k] − τ_k, where τ_k is
// the (1 − prior_k) quantile of p[·][k] over the rows: in a large batch
// about prior_k of the rows then get class k.
func harden(p [][]float64, prior []float64) []int {
	n := len(p)
	out := make([]int, n)
	if n == 0 {
		return out
	}
	k := len(p[0])
	tau := make([]float64, k)
	col := make([]float64, n)
	for c := 0; c < k; c++ {
		for i := range p {
			col[i] = p[i][c]
		}
		slices.Sort(col)
		q := 1 - prior[c]
		pos := q * float64(n-1)
		lo := int(math.Floor(pos))
		hi := int(math.Ceil(pos))
		tau[c] = col[lo] + (pos-float64(lo))*(col[hi]-col[lo])
	}
	for i := range p {
		best, bv := 0, math.Inf(-1)
		for c := 0; c < k; c++ {
			if v := p[i][c] - tau[c]; v > bv {
				best, bv = c, v
			}
		}
		out[i] = best
	}
	return out
}

// LossByName returns a fresh loss: xent, logconf or product.
func LossByName(name string) (Loss, error) {
	switch name {
	case "", "xent":
		return XEnt{}, nil
	case "logconf":
		return &LogConf{}, nil
	case "product":
		return &Product{}, nil
	}
	return nil, fmt.Errorf("unknown loss %q: use xent, logconf or product", name)
}
