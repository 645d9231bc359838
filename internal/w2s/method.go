package w2s

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/aar-lab/aar/internal/features"
)

// Input is what a W2S method sees: the strong representation of the public
// pool and of the test rows, the weak model's soft labels on the pool, and
// the student's training settings. No gold label.
type Input struct {
	Pool   *features.Matrix
	Test   *features.Matrix
	Weak   [][]float64 // per pool row, K probabilities
	K      int
	Config Config
	Log    func(EpochLog)
}

// Method is a weak-to-strong method: it returns the student's class
// probabilities on the test rows.
type Method struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, in *Input, seed uint64) ([][]float64, error)
}

// Methods lists the built-in baselines in a stable order.
var Methods = []Method{
	{"vanilla_w2s", "student trained on the weak model's hard labels", vanillaHard},
	{"vanilla_w2s_soft", "student trained on the weak model's soft labels", vanillaSoft},
	{"logconf", "auxiliary-confidence loss (Burns et al. 2023), warm-up, prior-matched hardening", withLoss(func() Loss { return &LogConf{} })},
	{"product", "fit to the normalised product of weak labels and student predictions", withLoss(func() Loss { return &Product{} })},
	{"train_only_on_confident_labels", "the study's filter: drop rows with weak confidence in [0.25, 0.75]", filtered(ConfidentRows)},
	{"confident_balanced", "the confidence filter keeping the same share of each weak class", filtered(BalancedConfidentRows)},
	{"bootstrap", "train on weak labels, relabel the pool with the student, retrain", bootstrap},
	{"ue_cluster", "unsupervised: k-means clusters of the strong representation, named by the weak labels' majority", ueCluster},
}

// MethodByName returns a built-in method.
func MethodByName(name string) (Method, error) {
	for _, m := range Methods {
		if m.Name == name {
			return m, nil
		}
	}
	names := make([]string, len(Methods))
	for i, m := range Methods {
		names[i] = m.Name
	}
	return Method{}, fmt.Errorf("unknown method %q (known: %v)", name, names)
}

// Fit trains the student on (rows of) the pool with the given targets and
// weights and returns its test probabilities.
func Fit(ctx context.Context, in *Input, x *features.Matrix, targets [][]float64, weights []float64, loss Loss, seed uint64) ([][]float64, *Model, error) {
	m, err := Train(ctx, Data{X: x, Targets: targets, Weights: weights}, in.K, TrainOptions{Config: in.Config, Loss: loss, Seed: seed, Log: in.Log})
	if err != nil {
		return nil, nil, err
	}
	p, err := m.Predict(in.Test)
	return p, m, err
}

func vanillaHard(ctx context.Context, in *Input, seed uint64) ([][]float64, error) {
	p, _, err := Fit(ctx, in, in.Pool, OneHot(Argmax(in.Weak), in.K), nil, nil, seed)
	return p, err
}

func vanillaSoft(ctx context.Context, in *Input, seed uint64) ([][]float64, error) {
	p, _, err := Fit(ctx, in, in.Pool, in.Weak, nil, nil, seed)
	return p, err
}

func withLoss(mk func() Loss) func(context.Context, *Input, uint64) ([][]float64, error) {
	return func(ctx context.Context, in *Input, seed uint64) ([][]float64, error) {
		p, _, err := Fit(ctx, in, in.Pool, in.Weak, nil, mk(), seed)
		return p, err
	}
}

func filtered(rule func([][]float64) []int) func(context.Context, *Input, uint64) ([][]float64, error) {
	return func(ctx context.Context, in *Input, seed uint64) ([][]float64, error) {
		rows := rule(in.Weak)
		if len(rows) == 0 {
			return nil, fmt.Errorf("the filter kept no pool row")
		}
		hard := Argmax(in.Weak)
		labels := make([]int, len(rows))
		for i, r := range rows {
			labels[i] = hard[r]
		}
		p, _, err := Fit(ctx, in, in.Pool.Select(rows), OneHot(labels, in.K), nil, nil, seed)
		return p, err
	}
}

func bootstrap(ctx context.Context, in *Input, seed uint64) ([][]float64, error) {
	_, m, err := Fit(ctx, in, in.Pool, OneHot(Argmax(in.Weak), in.K), nil, nil, seed)
	if err != nil {
		return nil, err
	}
	relabel, err := m.Predict(in.Pool)
	if err != nil {
		return nil, err
	}
	p, _, err := Fit(ctx, in, in.Pool, OneHot(Argmax(relabel), in.K), nil, nil, seed+1)
	return p, err
}

// ueCluster clusters the pool's strong representation into K groups with
// k-means (cosine geometry), names each cluster by the class the weak labels
// favour most in it, and trains the student on those cluster labels.
func ueCluster(ctx context.Context, in *Input, seed uint64) ([][]float64, error) {
	assign := KMeans(in.Pool, in.K, 30, seed)
	votes := make([][]float64, in.K)
	for c := range votes {
		votes[c] = make([]float64, in.K)
	}
	for i, c := range assign {
		for k, p := range in.Weak[i] {
			votes[c][k] += p
		}
	}
	prior := classPrior(in.Weak)
	name := make([]int, in.K)
	for c := range votes {
		best, bv := 0, math.Inf(-1)
		for k, v := range votes[c] {
			// Lift over the prior, so a big class does not name every cluster.
			if s := v / math.Max(prior[k], 1e-9); s > bv {
				best, bv = k, s
			}
		}
		name[c] = best
	}
	labels := make([]int, len(assign))
	for i, c := range assign {
		labels[i] = name[c]
	}
	p, _, err := Fit(ctx, in, in.Pool, OneHot(labels, in.K), nil, nil, seed)
	return p, err
}

// KMeans clusters the rows of x (L2-normalised) into k clusters with
// k-means++ seeding and Lloyd iterations, deterministically for a seed.
func KMeans(x *features.Matrix, k, iters int, seed uint64) []int {
	n, d := x.Rows(), x.Cols
	rng := rand.New(rand.NewPCG(seed, 0x6b6d65616e73)) // "kmeans"
	norms := make([]float64, n)
	for i := 0; i < n; i++ {
		_, val := x.Row(i)
		var s float64
		for _, v := range val {
			s += float64(v) * float64(v)
		}
		norms[i] = math.Max(math.Sqrt(s), 1e-12)
	}
	dense := func(i int, dst []float64) {
		clear(dst)
		idx, val := x.Row(i)
		for j, c := range idx {
			dst[c] = float64(val[j]) / norms[i]
		}
	}
	cent := make([][]float64, k)
	cn := make([]float64, k) // squared norms of centroids
	dot := func(i int, c []float64) float64 {
		idx, val := x.Row(i)
		var s float64
		for j, col := range idx {
			s += float64(val[j]) * c[col]
		}
		return s / norms[i]
	}
	dist := func(i, c int) float64 { return 1 + cn[c] - 2*dot(i, cent[c]) }
	// k-means++ seeding.
	cent[0] = make([]float64, d)
	dense(rng.IntN(n), cent[0])
	cn[0] = sqnorm(cent[0])
	minD := make([]float64, n)
	for i := range minD {
		minD[i] = dist(i, 0)
	}
	for c := 1; c < k; c++ {
		var total float64
		for _, v := range minD {
			total += math.Max(v, 0)
		}
		r := rng.Float64() * total
		pick := n - 1
		for i, v := range minD {
			r -= math.Max(v, 0)
			if r <= 0 {
				pick = i
				break
			}
		}
		cent[c] = make([]float64, d)
		dense(pick, cent[c])
		cn[c] = sqnorm(cent[c])
		for i := range minD {
			minD[i] = math.Min(minD[i], dist(i, c))
		}
	}
	assign := make([]int, n)
	for it := 0; it < iters; it++ {
		changed := false
		for i := 0; i < n; i++ {
			best, bv := 0, math.Inf(1)
			for c := 0; c < k; c++ {
				if v := dist(i, c); v < bv {
					best, bv = c, v
				}
			}
			if best != assign[i] {
				assign[i], changed = best, true
			}
		}
		if !changed && it > 0 {
			break
		}
		counts := make([]int, k)
		for c := range cent {
			clear(cent[c])
		}
		for i, c := range assign {
			counts[c]++
			idx, val := x.Row(i)
			for j, col := range idx {
				cent[c][col] += float64(val[j]) / norms[i]
			}
		}
		for c := range cent {
			if counts[c] > 0 {
				for j := range cent[c] {
					cent[c][j] /= float64(counts[c])
				}
			}
			cn[c] = sqnorm(cent[c])
		}
	}
	return assign
}

func sqnorm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return s
}
