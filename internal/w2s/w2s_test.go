package w2s

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/features"
)

// blobs makes n rows in d dense dimensions: class c rows centre on +2 in
// dimension c, with unit noise.
func blobs(n, d, k int, seed uint64) (*features.Matrix, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := features.NewMatrix(d)
	labels := make([]int, n)
	var v features.Vec
	for i := range labels {
		c := i % k
		labels[i] = c
		v.Reset()
		for j := 0; j < d; j++ {
			val := rng.NormFloat64()
			if j == c {
				val += 2
			}
			v.Add(j, float32(val))
		}
		x.AppendRow(&v)
	}
	return x, labels
}

func accuracy(p [][]float64, labels []int) float64 {
	right := 0
	for i, c := range Argmax(p) {
		if c == labels[i] {
			right++
		}
	}
	return float64(right) / float64(len(labels))
}

func cfg(model, solver string) Config {
	c := DefaultConfig()
	c.Model, c.Solver, c.Epochs, c.C, c.Hidden = model, solver, 10, 1, 16
	return c
}

func TestLearnersFitBlobs(t *testing.T) {
	x, y := blobs(600, 5, 3, 1)
	xt, yt := blobs(600, 5, 3, 2)
	std := cfg("linear", "adam")
	std.Standardize = true
	for _, c := range []Config{cfg("linear", "adam"), cfg("linear", "lbfgs"), cfg("mlp", "adam"), std} {
		t.Run(fmt.Sprintf("%s-%s-std%v", c.Model, c.Solver, c.Standardize), func(t *testing.T) {
			var logs []EpochLog
			m, err := Train(context.Background(), Data{X: x, Targets: OneHot(y, 3)}, 3, TrainOptions{Config: c, Seed: 7, Log: func(l EpochLog) { logs = append(logs, l) }})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := m.Predict(xt)
			// Bayes accuracy for these blobs is about 0.83.
			if acc := accuracy(p, yt); acc < 0.75 {
				t.Errorf("test accuracy %.3f, want > 0.75", acc)
			}
			if len(logs) == 0 || math.IsNaN(logs[len(logs)-1].Loss) || logs[len(logs)-1].Loss > logs[0].Loss+1e-9 {
				t.Errorf("epoch losses %+v do not fall", logs)
			}
		})
	}
}

// The L-BFGS solution is a stationary point of mean CE + λ/2‖W‖², checked
// with finite differences of the objective.
func TestLBFGSConverges(t *testing.T) {
	x, y := blobs(300, 4, 2, 3)
	c := cfg("linear", "lbfgs")
	c.C, c.Tol = 0.5, 1e-9
	m, err := Train(context.Background(), Data{X: x, Targets: OneHot(y, 2)}, 2, TrainOptions{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	obj := &lbfgsObjective{m: m, x: x, t: OneHot(y, 2), wsum: 300, lambda: 1 / (0.5 * 300), threads: 2}
	p := append(slices.Clone(m.W1), m.B1...)
	g := make([]float64, len(p))
	obj.grad(g, p)
	for i, gi := range g {
		if math.Abs(gi) > 1e-6 {
			t.Errorf("gradient[%d] = %g at the solution", i, gi)
		}
	}
	f0 := obj.f(p)
	for i := range p {
		q := slices.Clone(p)
		q[i] += 1e-3
		if obj.f(q) < f0 {
			t.Errorf("moving parameter %d lowers the objective", i)
		}
	}
}

// Backward matches finite differences for both model kinds.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	x, y := blobs(5, 4, 3, 4)
	targets := OneHot(y, 3)
	for _, c := range []struct {
		h   int
		std bool
	}{{0, false}, {6, false}, {0, true}, {6, true}} {
		h := c.h
		m := newModel(4, h, 3, rand.New(rand.NewPCG(1, 2)))
		if c.std {
			m.standardizeFrom(x)
		}
		if h == 0 {
			for i := range m.W1 {
				m.W1[i] = 0.1 * float64(i%5-2)
			}
			m.refresh()
		}
		lossOf := func() float64 {
			var l float64
			p := make([]float64, 3)
			hid := make([]float64, h)
			for i := 0; i < x.Rows(); i++ {
				idx, val := x.Row(i)
				m.forward(idx, val, hid, p)
				for k := range p {
					l -= targets[i][k] * math.Log(p[k])
				}
			}
			return l
		}
		grads := newGrads(m)
		p := make([]float64, 3)
		hid := make([]float64, h)
		dh := make([]float64, h)
		dl := make([]float64, m.logits())
		gz := make([]float64, m.out1())
		for i := 0; i < x.Rows(); i++ {
			idx, val := x.Row(i)
			m.forward(idx, val, hid, p)
			m.dlogits(p, targets[i], 1, dl)
			m.backward(idx, val, hid, dl, grads, dh, gz)
		}
		m.finishGrad(grads, gz)
		for pi, par := range m.params() {
			for j := range par {
				old := par[j]
				par[j] = old + 1e-6
				m.refresh()
				up := lossOf()
				par[j] = old - 1e-6
				m.refresh()
				down := lossOf()
				par[j] = old
				m.refresh()
				num := (up - down) / 2e-6
				if math.Abs(num-grads[pi][j]) > 1e-5*math.Max(1, math.Abs(num)) {
					t.Fatalf("hidden %d param %d[%d]: backward %g, numeric %g", h, pi, j, grads[pi][j], num)
				}
			}
		}
	}
}

func TestSeedDeterminism(t *testing.T) {
	x, y := blobs(200, 5, 2, 5)
	for _, c := range []Config{cfg("linear", "adam"), cfg("mlp", "adam"), cfg("linear", "lbfgs")} {
		train := func(seed uint64) *Model {
			m, err := Train(context.Background(), Data{X: x, Targets: OneHot(y, 2)}, 2, TrainOptions{Config: c, Seed: seed, Loss: &LogConf{}})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		a, b, other := train(1), train(1), train(2)
		if !slices.Equal(a.W1, b.W1) || !slices.Equal(a.B1, b.B1) {
			t.Errorf("%s/%s: same seed, different weights", c.Model, c.Solver)
		}
		if c.Solver == "adam" && slices.Equal(a.W1, other.W1) {
			t.Errorf("%s/%s: different seeds, same weights", c.Model, c.Solver)
		}
	}
}

// A row with weight 0 changes nothing; doubling a row's weight equals
// duplicating it.
func TestWeights(t *testing.T) {
	x, y := blobs(100, 3, 2, 6)
	c := cfg("linear", "lbfgs")
	c.Tol = 1e-10
	fit := func(x *features.Matrix, y []int, w []float64) *Model {
		m, err := Train(context.Background(), Data{X: x, Targets: OneHot(y, 2), Weights: w}, 2, TrainOptions{Config: c})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	base := fit(x, y, nil)
	// Add a mislabelled row with weight 0.
	rows := make([]int, 101)
	for i := range 100 {
		rows[i] = i
	}
	rows[100] = 0
	x2 := x.Select(rows)
	y2 := append(slices.Clone(y), 1-y[0])
	w := make([]float64, 101)
	for i := range 100 {
		w[i] = 1
	}
	zeroed := fit(x2, y2, w)
	for i := range base.W1 {
		if math.Abs(base.W1[i]-zeroed.W1[i]) > 1e-4 {
			t.Fatalf("weight-0 row moved W1[%d]: %g vs %g", i, base.W1[i], zeroed.W1[i])
		}
	}
	w2 := make([]float64, 100)
	for i := range w2 {
		w2[i] = 1
	}
	w2[5] = 2
	rows3 := append(rows[:100:100], 5)
	doubled, duplicated := fit(x, y, w2), fit(x.Select(rows3), append(slices.Clone(y), y[5]), nil)
	for i := range doubled.W1 {
		if math.Abs(doubled.W1[i]-duplicated.W1[i]) > 1e-4 {
			t.Fatalf("weight 2 ≠ duplicate at W1[%d]: %g vs %g", i, doubled.W1[i], duplicated.W1[i])
		}
	}
}

func TestLosses(t *testing.T) {
	given := [][]float64{{0.9, 0.1}, {0.4, 0.6}, {0.2, 0.8}, {0.7, 0.3}}
	p := [][]float64{{0.6, 0.4}, {0.3, 0.7}, {0.45, 0.55}, {0.8, 0.2}}
	dst := make([][]float64, 4)
	for i := range dst {
		dst[i] = make([]float64, 2)
	}
	XEnt{}.Targets(dst, given, p, 0.5)
	if !slices.Equal(dst[1], given[1]) {
		t.Errorf("xent target %v, want the given %v", dst[1], given[1])
	}

	lc := &LogConf{Alpha: 0.5, Warmup: 0.2}
	lc.prepare(given) // prior [0.55, 0.45]
	lc.Targets(dst, given, p, 0)
	if !slices.Equal(dst[0], given[0]) {
		t.Errorf("logconf at the start %v, want the weak labels", dst[0])
	}
	lc.Targets(dst, given, p, 1)
	// Thresholds: class 1 at the 0.55 quantile of {0.4,0.7,0.55,0.2} = 0.4825;
	// class 0 at the 0.45 quantile of {0.6,0.3,0.45,0.8} = 0.5175. Row 2:
	// p−τ = (−0.0675, +0.0675) → class 1; row 0: (0.0825, −0.0825) → class 0.
	if math.Abs(dst[2][1]-(0.5*0.8+0.5)) > 1e-12 || math.Abs(dst[0][0]-(0.5*0.9+0.5)) > 1e-12 {
		t.Errorf("logconf targets %v", dst)
	}

	// Hardening keeps the prior on a multi-class batch where argmax would
	// collapse onto one class.
	pp := [][]float64{{0.5, 0.3, 0.2}, {0.5, 0.25, 0.25}, {0.45, 0.35, 0.2}, {0.4, 0.2, 0.4}, {0.5, 0.2, 0.3}, {0.6, 0.3, 0.1}}
	hard := harden(pp, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3})
	counts := map[int]int{}
	for _, c := range hard {
		counts[c]++
	}
	if len(counts) != 3 {
		t.Errorf("hardening %v collapsed (argmax would give all class 0)", hard)
	}

	(&Product{Warmup: 0.5}).Targets(dst, given, p, 1)
	want := 0.9 * 0.6 / (0.9*0.6 + 0.1*0.4)
	if math.Abs(dst[0][0]-want) > 1e-12 {
		t.Errorf("product target %v, want %v", dst[0][0], want)
	}
	(&Product{Warmup: 0.5}).Targets(dst, given, p, 0)
	if math.Abs(dst[0][0]-0.9) > 1e-12 {
		t.Errorf("product at the start %v, want the weak label", dst[0])
	}
}

func TestFilters(t *testing.T) {
	weak := [][]float64{{0.9, 0.1}, {0.6, 0.4}, {0.74, 0.26}, {0.76, 0.24}, {0.2, 0.8}, {0.3, 0.7}, {0.05, 0.95}, {0.5, 0.5}}
	if got := ConfidentRows(weak); !slices.Equal(got, []int{0, 3, 4, 6}) {
		t.Errorf("ConfidentRows = %v, want [0 3 4 6]", got)
	}
	// Four rows kept of eight: half of each weak class (class 0: rows 0,1,2,3,7;
	// class 1: 4,5,6), the most confident: round(2.5)=3 of class 0, round(1.5)=2 of class 1.
	if got := BalancedConfidentRows(weak); !slices.Equal(got, []int{0, 3, 4, 6, 7}) && !slices.Equal(got, []int{0, 2, 3, 4, 6}) {
		t.Errorf("BalancedConfidentRows = %v", got)
	}
	multi := [][]float64{{0.8, 0.1, 0.1}, {0.5, 0.4, 0.1}, {0.1, 0.1, 0.8}}
	if got := ConfidentRows(multi); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("multi-class margin rule = %v, want [0 2]", got)
	}
}

// Every method runs and beats chance on blobs labelled by a noisy teacher.
func TestMethodsRun(t *testing.T) {
	x, y := blobs(400, 4, 2, 8)
	xt, yt := blobs(400, 4, 2, 9)
	rng := rand.New(rand.NewPCG(3, 3))
	weak := make([][]float64, len(y))
	for i, c := range y {
		p := 0.55 + 0.4*rng.Float64()
		if rng.Float64() < 0.25 {
			p = 1 - p
		}
		weak[i] = []float64{1 - p, p}
		if c == 0 {
			weak[i] = []float64{p, 1 - p}
		}
	}
	c := cfg("linear", "adam")
	c.Epochs = 3
	for _, m := range Methods {
		t.Run(m.Name, func(t *testing.T) {
			p, err := m.Run(context.Background(), &Input{Pool: x, Test: xt, Weak: weak, K: 2, Config: c}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if acc := accuracy(p, yt); acc < 0.6 {
				t.Errorf("test accuracy %.3f", acc)
			}
		})
	}
}

func TestKMeansSeparates(t *testing.T) {
	x, y := blobs(200, 2, 2, 10)
	assign := KMeans(x, 2, 50, 1)
	agree := 0
	for i := range y {
		if assign[i] == y[i] {
			agree++
		}
	}
	if agree < 150 && agree > 50 {
		t.Errorf("k-means agrees with the blobs on %d of 200 rows (either labelling)", agree)
	}
	if !slices.Equal(assign, KMeans(x, 2, 50, 1)) {
		t.Error("k-means is not deterministic")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Model: "tree"}, {Model: "mlp", Hidden: -1}, {Solver: "sgd"}, {Model: "mlp", Solver: "lbfgs"},
		{LR: -1}, {Schedule: "step"}, {Warmup: 1}, {BatchSize: -4},
	}
	for _, b := range bad {
		c := DefaultConfig().Overlay(b)
		if b.Hidden < 0 {
			c.Hidden = b.Hidden
		}
		if b.LR < 0 {
			c.LR = b.LR
		}
		if b.BatchSize < 0 {
			c.BatchSize = b.BatchSize
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", b)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// The binary L-BFGS objective's tight loop agrees with finite differences,
// with and without standardization and with row weights.
func TestBinaryObjectiveGradient(t *testing.T) {
	x, y := blobs(40, 5, 2, 11)
	w := make([]float64, 40)
	for i := range w {
		w[i] = 0.5 + float64(i%3)
	}
	for _, std := range []bool{false, true} {
		m := newModel(5, 0, 2, rand.New(rand.NewPCG(1, 2)))
		if std {
			m.standardizeFrom(x)
		}
		obj := &lbfgsObjective{m: m, x: x, t: OneHot(y, 2), w: w, wsum: 0, lambda: 0.01, threads: 1}
		for _, v := range w {
			obj.wsum += v
		}
		p := make([]float64, len(m.W1)+len(m.B1))
		for i := range p {
			p[i] = 0.1 * float64(i%4-1)
		}
		g := make([]float64, len(p))
		obj.grad(g, p)
		for i := range p {
			q := slices.Clone(p)
			q[i] += 1e-6
			up := obj.f(q)
			q[i] -= 2e-6
			down := obj.f(q)
			if num := (up - down) / 2e-6; math.Abs(num-g[i]) > 1e-6*math.Max(1, math.Abs(num)) {
				t.Fatalf("standardize %v, parameter %d: gradient %g, numeric %g", std, i, g[i], num)
			}
		}
	}
}

// Trust-region Newton reaches the L-BFGS optimum of the same objective
// (binary, with weights, with and without standardization) and refuses
// more than two classes.
func TestNewtonMatchesLBFGS(t *testing.T) {
	x, y := blobs(400, 6, 2, 12)
	w := make([]float64, 400)
	for i := range w {
		w[i] = 0.5 + float64(i%4)/2
	}
	for _, std := range []bool{false, true} {
		fit := func(solver string) (*Model, float64) {
			c := cfg("linear", solver)
			c.C, c.Tol, c.Standardize = 3, 1e-9, std
			var loss float64
			m, err := Train(context.Background(), Data{X: x, Targets: OneHot(y, 2), Weights: w}, 2, TrainOptions{Config: c, Log: func(l EpochLog) { loss = l.Loss }})
			if err != nil {
				t.Fatal(err)
			}
			return m, loss
		}
		ml, ll := fit("lbfgs")
		mn, ln := fit("newton")
		if math.Abs(ll-ln) > 1e-7 {
			t.Errorf("standardize %v: cross-entropy lbfgs %.9f, newton %.9f", std, ll, ln)
		}
		for i := range ml.W1 {
			if math.Abs(ml.W1[i]-mn.W1[i]) > 1e-3 {
				t.Errorf("standardize %v: weight %d lbfgs %g, newton %g", std, i, ml.W1[i], mn.W1[i])
			}
		}
	}
	x3, y3 := blobs(90, 3, 3, 13)
	c := cfg("linear", "newton")
	if _, err := Train(context.Background(), Data{X: x3, Targets: OneHot(y3, 3)}, 3, TrainOptions{Config: c}); err == nil || !strings.Contains(err.Error(), "two-class") {
		t.Errorf("newton on 3 classes: %v", err)
	}
	if err := (Config{Model: "mlp", Solver: "newton", Hidden: 4, Epochs: 1, BatchSize: 1, LR: 1, Schedule: "constant"}).Validate(); err == nil {
		t.Error("newton accepted an mlp")
	}
}
