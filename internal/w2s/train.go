package w2s

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/optimize"

	"github.com/aar-lab/aar/internal/features"
)

// Data is a training set: features, a target distribution per row (one-hot
// for hard labels) and optional per-row weights (nil: all 1).
type Data struct {
	X       *features.Matrix
	Targets [][]float64
	Weights []float64
}

// EpochLog reports one epoch (Adam) or one L-BFGS fit.
type EpochLog struct {
	Epoch int
	Loss  float64 // weighted mean cross-entropy against the epoch's targets
	// Evaluations and Iterations count an L-BFGS fit's objective
	// evaluations and iterations (0 for Adam).
	Evaluations, Iterations int
}

// TrainOptions are what Train needs besides the data.
type TrainOptions struct {
	Config Config
	Loss   Loss // nil: XEnt
	Seed   uint64
	// Log, when set, is called after every epoch.
	Log func(EpochLog)
}

// lbfgsRounds is how many refits an L-BFGS student makes when its loss
// re-targets rows from its own predictions.
const lbfgsRounds = 5

// Train fits a model with k classes to d.
func Train(ctx context.Context, d Data, k int, opt TrainOptions) (*Model, error) {
	cfg := opt.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	n := d.X.Rows()
	if n == 0 {
		return nil, fmt.Errorf("train: no rows")
	}
	if len(d.Targets) != n || (d.Weights != nil && len(d.Weights) != n) {
		return nil, fmt.Errorf("train: %d rows, %d targets, %d weights", n, len(d.Targets), len(d.Weights))
	}
	for i, t := range d.Targets {
		if len(t) != k {
			return nil, fmt.Errorf("train: target of row %d has %d classes, want %d", i, len(t), k)
		}
	}
	loss := opt.Loss
	if loss == nil {
		loss = XEnt{}
	}
	if p, ok := loss.(preparer); ok {
		p.prepare(d.Targets)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x7732732d747261)) // "w2s-tra"
	h := 0
	if cfg.Model == "mlp" {
		h = cfg.Hidden
	}
	m := newModel(d.X.Cols, h, k, rng)
	if cfg.Standardize {
		m.standardizeFrom(d.X)
	}
	if cfg.Solver == "lbfgs" || cfg.Solver == "newton" {
		return m, trainLBFGS(ctx, m, d, loss, cfg, opt.Log)
	}
	return m, trainAdam(ctx, m, d, loss, cfg, rng, opt.Log)
}

func weightOf(w []float64, i int) float64 {
	if w == nil {
		return 1
	}
	return w[i]
}

func newGrads(m *Model) [][]float64 {
	ps := m.params()
	g := make([][]float64, len(ps))
	for i, p := range ps {
		g[i] = make([]float64, len(p))
	}
	return g
}

// lrAt is the learning rate at step t of total.
func lrAt(cfg Config, t, total int) float64 {
	warm := int(cfg.Warmup * float64(total))
	if t < warm {
		return cfg.LR * float64(t+1) / float64(warm)
	}
	frac := 0.0
	if total > warm {
		frac = float64(t-warm) / float64(total-warm)
	}
	switch cfg.Schedule {
	case "linear":
		return cfg.LR * (1 - frac)
	case "cosine":
		return cfg.LR * 0.5 * (1 + math.Cos(math.Pi*frac))
	}
	return cfg.LR
}

func trainAdam(ctx context.Context, m *Model, d Data, loss Loss, cfg Config, rng *rand.Rand, log func(EpochLog)) error {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	n := d.X.Rows()
	params := m.params()
	grads := newGrads(m)
	mom, vel := newGrads(m), newGrads(m)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	bs := min(cfg.BatchSize, n)
	stepsPerEpoch := (n + bs - 1) / bs
	total := stepsPerEpoch * cfg.Epochs
	hid := make([]float64, m.H)
	dh := make([]float64, m.H)
	probs := make([][]float64, bs)
	given := make([][]float64, bs)
	tgt := make([][]float64, bs)
	hids := make([][]float64, bs)
	for i := range probs {
		probs[i] = make([]float64, m.K)
		tgt[i] = make([]float64, m.K)
		hids[i] = make([]float64, m.H)
	}
	dl := make([]float64, m.logits())
	gz := make([]float64, m.out1())
	step := 0
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		var epochLoss, epochW float64
		for s := 0; s < n; s += bs {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch := order[s:min(s+bs, n)]
			nb := len(batch)
			for j, r := range batch {
				idx, val := d.X.Row(r)
				m.forward(idx, val, hids[j], probs[j])
				given[j] = d.Targets[r]
			}
			loss.Targets(tgt[:nb], given[:nb], probs[:nb], float64(step)/float64(total))
			for _, g := range grads {
				clear(g)
			}
			clear(gz)
			var wsum float64
			for _, r := range batch {
				wsum += weightOf(d.Weights, r)
			}
			if wsum <= 0 {
				step++
				continue
			}
			for j, r := range batch {
				w := weightOf(d.Weights, r) / wsum
				if w == 0 {
					continue
				}
				m.dlogits(probs[j], tgt[j], w, dl)
				epochLoss += weightOf(d.Weights, r) * crossEntropy(probs[j], tgt[j])
				epochW += weightOf(d.Weights, r)
				copy(hid, hids[j])
				idx, val := d.X.Row(r)
				m.backward(idx, val, hid, dl, grads, dh, gz)
			}
			m.finishGrad(grads, gz)
			lr := lrAt(cfg, step, total)
			step++
			bc1 := 1 - math.Pow(b1, float64(step))
			bc2 := 1 - math.Pow(b2, float64(step))
			for pi, p := range params {
				g, mo, ve := grads[pi], mom[pi], vel[pi]
				decay := 0.0
				if m.isWeight(pi) {
					decay = cfg.WeightDecay
				}
				for i := range p {
					gi := g[i] + decay*p[i]
					mo[i] = b1*mo[i] + (1-b1)*gi
					ve[i] = b2*ve[i] + (1-b2)*gi*gi
					p[i] -= lr * (mo[i] / bc1) / (math.Sqrt(ve[i]/bc2) + eps)
				}
			}
			m.refresh()
		}
		if log != nil && epochW > 0 {
			log(EpochLog{Epoch: epoch, Loss: epochLoss / epochW})
		}
	}
	return nil
}

// trainLBFGS minimises the weighted mean cross-entropy plus the L2 penalty
// with full-batch L-BFGS (linear models). A loss that re-targets from the
// student's predictions is applied over lbfgsRounds warm-started refits.
func trainLBFGS(ctx context.Context, m *Model, d Data, loss Loss, cfg Config, log func(EpochLog)) error {
	n := d.X.Rows()
	var wsum float64
	for i := 0; i < n; i++ {
		wsum += weightOf(d.Weights, i)
	}
	if wsum <= 0 {
		return fmt.Errorf("train: every row has weight 0")
	}
	lambda := cfg.WeightDecay
	if cfg.C > 0 {
		lambda = 1 / (cfg.C * wsum)
	}
	targets := d.Targets
	rounds := 1
	if _, plain := loss.(XEnt); !plain {
		rounds = lbfgsRounds
		targets = make([][]float64, n)
		for i := range targets {
			targets[i] = make([]float64, m.K)
		}
	}
	x := make([]float64, len(m.W1)+len(m.B1))
	for round := 0; round < rounds; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rounds > 1 {
			p, err := m.Predict(d.X)
			if err != nil {
				return err
			}
			loss.Targets(targets, d.Targets, p, float64(round)/float64(rounds))
		}
		obj := &lbfgsObjective{m: m, x: d.X, t: targets, w: d.Weights, wsum: wsum, lambda: lambda, threads: max(1, cfg.Threads)}
		copy(x, m.W1)
		copy(x[len(m.W1):], m.B1)
		if cfg.Solver == "newton" {
			if m.K != 2 {
				return fmt.Errorf("train: solver newton fits two-class models; use lbfgs for %d classes", m.K)
			}
			obj.curv = make([]float64, n)
			iters, hv, err := newtonFit(ctx, obj, x, cfg.MaxIter, cfg.Tol)
			if err != nil {
				return err
			}
			if log != nil {
				log(EpochLog{Epoch: round + 1, Loss: obj.ce, Evaluations: obj.evals + hv, Iterations: iters})
			}
			continue
		}
		prob := optimize.Problem{Func: obj.f, Grad: obj.grad}
		settings := &optimize.Settings{
			GradientThreshold: cfg.Tol,
			MajorIterations:   cfg.MaxIter,
			// As scipy's L-BFGS-B (factr 1e7): stop when an iteration lowers
			// the objective by less than ~1e-9 of its value.
			Converger: &optimize.FunctionConverge{Relative: 1e-9, Iterations: 1},
		}
		res, err := optimize.Minimize(prob, x, settings, &optimize.LBFGS{Store: 20, Linesearcher: &optimize.MoreThuente{}})
		if err != nil && res == nil {
			return fmt.Errorf("train: lbfgs: %w", err)
		}
		obj.set(res.X)
		if log != nil {
			log(EpochLog{Epoch: round + 1, Loss: obj.ce, Evaluations: obj.evals, Iterations: res.Stats.MajorIterations})
		}
	}
	return nil
}

// lbfgsObjective is the linear model's loss as a function of its flattened
// parameters [W1 | B1].
type lbfgsObjective struct {
	m       *Model
	x       *features.Matrix
	t       [][]float64
	w       []float64
	wsum    float64
	lambda  float64
	threads int

	evals   int
	scratch [][]float64 // per-thread gradient buffers
	curv    []float64   // newton: each row's weighted p(1−p) at the last point
	lastX   []float64
	lastF   float64
	lastG   []float64
	ce      float64
}

func (o *lbfgsObjective) set(x []float64) {
	copy(o.m.W1, x[:len(o.m.W1)])
	copy(o.m.B1, x[len(o.m.W1):])
	o.m.refresh()
}

func (o *lbfgsObjective) f(x []float64) float64 {
	o.eval(x)
	return o.lastF
}

func (o *lbfgsObjective) grad(g, x []float64) {
	o.eval(x)
	copy(g, o.lastG)
}

// eval computes loss and gradient at x, caching the last point (gonum asks
// for the value and the gradient at the same point separately).
func (o *lbfgsObjective) eval(x []float64) {
	if o.lastX != nil && equal(o.lastX, x) {
		return
	}
	o.set(x)
	o.evals++
	m := o.m
	n := o.x.Rows()
	nt := min(o.threads, n)
	type part struct {
		g  []float64
		ce float64
	}
	parts := make([]part, nt)
	binary := m.H == 0 && m.K == 2
	if o.scratch == nil {
		o.scratch = make([][]float64, nt)
		for t := range o.scratch {
			o.scratch[t] = make([]float64, len(x))
		}
	}
	var wg sync.WaitGroup
	for t := 0; t < nt; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			g := o.scratch[t]
			clear(g)
			if binary {
				parts[t] = part{g: g, ce: o.binaryPart(t*n/nt, (t+1)*n/nt, g)}
				return
			}
			grads := [][]float64{g[:len(m.W1)], g[len(m.W1):]}
			p := make([]float64, m.K)
			dl := make([]float64, m.logits())
			gz := make([]float64, m.logits())
			var ce float64
			for i := t * n / nt; i < (t+1)*n/nt; i++ {
				idx, val := o.x.Row(i)
				m.forward(idx, val, nil, p)
				w := weightOf(o.w, i) / o.wsum
				if w == 0 {
					continue
				}
				m.dlogits(p, o.t[i], w, dl)
				ce += w * crossEntropy(p, o.t[i])
				m.backward(idx, val, nil, dl, grads, nil, gz)
			}
			m.finishGrad(grads, gz)
			parts[t] = part{g: g, ce: ce}
		}(t)
	}
	wg.Wait()
	if o.lastG == nil {
		o.lastG = make([]float64, len(x))
	}
	clear(o.lastG)
	var ce float64
	for _, p := range parts {
		ce += p.ce
		for i, v := range p.g {
			o.lastG[i] += v
		}
	}
	var reg float64
	for i := 0; i < len(m.W1); i++ {
		reg += x[i] * x[i]
		o.lastG[i] += o.lambda * x[i]
	}
	o.ce = ce
	o.lastF = ce + 0.5*o.lambda*reg
	o.lastX = append(o.lastX[:0], x...)
}

// crossEntropy is −Σ t·log p.
func crossEntropy(p, t []float64) float64 {
	var ce float64
	for k, tk := range t {
		if tk > 0 {
			ce -= tk * math.Log(math.Max(p[k], 1e-300))
		}
	}
	return ce
}

// binaryPart accumulates into g ([W | b]) the gradient of rows lo..hi of a
// binary linear model and returns their weighted cross-entropy: the same
// quantities as forward/dlogits/backward, in one tight loop per row.
func (o *lbfgsObjective) binaryPart(lo, hi int, g []float64) float64 {
	m := o.m
	W, inv := m.W1, m.Inv
	d := len(W)
	bias := m.B1[0]
	if m.shift != nil {
		bias -= m.shift[0]
	}
	x := o.x
	var ce, gb float64
	for i := lo; i < hi; i++ {
		a, e := x.Ptr[i], x.Ptr[i+1]
		idx, val := x.Idx[a:e], x.Val[a:e]
		z := bias
		if inv == nil {
			for k, c := range idx {
				z += float64(val[k]) * W[c]
			}
		} else {
			for k, c := range idx {
				z += float64(val[k]) * inv[c] * W[c]
			}
		}
		w := weightOf(o.w, i) / o.wsum
		if w == 0 {
			continue
		}
		t1 := o.t[i][1]
		var p1, logp1, logp0 float64
		if z >= 0 {
			ez := math.Exp(-z)
			l := math.Log1p(ez)
			p1, logp1, logp0 = 1/(1+ez), -l, -z-l
		} else {
			ez := math.Exp(z)
			l := math.Log1p(ez)
			p1, logp1, logp0 = ez/(1+ez), z-l, -l
		}
		ce -= w * (t1*logp1 + (1-t1)*logp0)
		if o.curv != nil {
			o.curv[i] = w * p1 * (1 - p1)
		}
		dl := w * (p1 - t1)
		gb += dl
		if inv == nil {
			for k, c := range idx {
				g[c] += float64(val[k]) * dl
			}
		} else {
			for k, c := range idx {
				g[c] += float64(val[k]) * inv[c] * dl
			}
		}
	}
	g[d] += gb
	if m.Mu != nil {
		for c, mu := range m.Mu {
			g[c] -= mu * inv[c] * gb
		}
	}
	return ce
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// OneHot returns one-hot targets for class indexes.
func OneHot(labels []int, k int) [][]float64 {
	out := make([][]float64, len(labels))
	for i, l := range labels {
		out[i] = make([]float64, k)
		out[i][l] = 1
	}
	return out
}

// Argmax returns the most probable class of each row.
func Argmax(p [][]float64) []int {
	out := make([]int, len(p))
	for i, row := range p {
		best := 0
		for k, v := range row {
			if v > row[best] {
				best = k
			}
		}
		out[i] = best
	}
	return out
}
