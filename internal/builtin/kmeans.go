package builtin

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/aar-lab/aar/internal/features"
)

// Unsupervised convolutional k-means (Coates, Lee & Ng 2011): the frozen
// representation of the image testbeds. Everything here is deterministic
// for a given seed: sampling uses math/rand/v2 PCG, parallel work writes
// per-item results and every sum runs in a fixed order.

// samplePatches draws n patches (p × p, at uniform positions of uniformly
// drawn images of w × h) and normalizes each with features.NormalizePatch.
// It returns them row-major, n × p².
func samplePatches(images [][]byte, w, h, p, n int, rng *rand.Rand) []float64 {
	d := p * p
	out := make([]float64, n*d)
	for i := 0; i < n; i++ {
		img := images[rng.IntN(len(images))]
		r, c := rng.IntN(h-p+1), rng.IntN(w-p+1)
		features.NormalizePatch(out[i*d:(i+1)*d], img, w, r, c, p)
	}
	return out
}

// zcaWhitening returns the mean of the n × d rows of x and the ZCA
// whitening matrix W = V·diag(1/√(λ+eps))·Vᵀ of their covariance
// (d × d, row-major). It does not change x.
func zcaWhitening(x []float64, n, d int, eps float64) (mean, w []float64, err error) {
	if n < 2 {
		return nil, nil, fmt.Errorf("zca whitening: %d patches, need at least 2", n)
	}
	mean = make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	cov := make([]float64, d*d)
	c := make([]float64, d)
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		for j := range c {
			c[j] = row[j] - mean[j]
		}
		for a := 0; a < d; a++ {
			ca := c[a]
			for b := a; b < d; b++ {
				cov[a*d+b] += ca * c[b]
			}
		}
	}
	sym := mat.NewSymDense(d, nil)
	for a := 0; a < d; a++ {
		for b := a; b < d; b++ {
			sym.SetSym(a, b, cov[a*d+b]/float64(n))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(sym, true) {
		return nil, nil, fmt.Errorf("zca whitening: the eigendecomposition of the %d×%d patch covariance did not converge", d, d)
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	w = make([]float64, d*d)
	for a := 0; a < d; a++ {
		for b := 0; b < d; b++ {
			var s float64
			for k, l := range vals {
				s += vecs.At(a, k) * vecs.At(b, k) / math.Sqrt(max(l, 0)+eps)
			}
			w[a*d+b] = s
		}
	}
	return mean, w, nil
}

// applyWhitening overwrites each of the n rows of x (d values) with
// W·(x − mean).
func applyWhitening(x []float64, n, d int, mean, w []float64) {
	c := make([]float64, d)
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		for j := range c {
			c[j] = row[j] - mean[j]
		}
		for j := 0; j < d; j++ {
			var s float64
			for k, v := range c {
				s += w[j*d+k] * v
			}
			row[j] = s
		}
	}
}

// kMeans clusters the n rows of x (d values each) into k centroids:
// k-means++ seeding from a PCG stream seeded with seed, then Lloyd
// iterations until no assignment changes or iters have run. A cluster that
// empties takes the point farthest from its centroid. It returns the
// centroids (k × d, row-major) and the number of iterations run.
func kMeans(ctx context.Context, x []float64, n, d, k, iters int, seed uint64) ([]float64, int, error) {
	if k <= 0 || n < k {
		return nil, 0, fmt.Errorf("k-means: %d points for %d centroids", n, k)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cent := make([]float64, k*d)
	row := func(i int) []float64 { return x[i*d : (i+1)*d] }

	// k-means++: each next centroid drawn with probability ∝ squared
	// distance to the nearest one chosen so far.
	near := make([]float64, n)
	copy(cent[:d], row(rng.IntN(n)))
	for i := range near {
		near[i] = sqDist(row(i), cent[:d])
	}
	for c := 1; c < k; c++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		var total float64
		for _, v := range near {
			total += v
		}
		pick := n - 1
		if total > 0 {
			u := rng.Float64() * total
			for i, v := range near {
				u -= v
				if u < 0 {
					pick = i
					break
				}
			}
		} else {
			pick = rng.IntN(n)
		}
		ci := cent[c*d : (c+1)*d]
		copy(ci, row(pick))
		for i := range near {
			near[i] = min(near[i], sqDist(row(i), ci))
		}
	}

	assign := make([]int, n)
	for i := range assign {
		assign[i] = -1
	}
	dist := make([]float64, n)
	sums := make([]float64, k*d)
	counts := make([]int, k)
	workers := max(1, runtime.GOMAXPROCS(0))
	it := 0
	for it < iters {
		if err := ctx.Err(); err != nil {
			return nil, it, err
		}
		it++
		// Assignment: each worker owns a contiguous range of points.
		changed := make([]int, workers)
		var wg sync.WaitGroup
		for wkr := 0; wkr < workers; wkr++ {
			lo, hi := wkr*n/workers, (wkr+1)*n/workers
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					best, bd := 0, math.Inf(1)
					p := row(i)
					for c := 0; c < k; c++ {
						if dd := sqDist(p, cent[c*d:(c+1)*d]); dd < bd {
							best, bd = c, dd
						}
					}
					if assign[i] != best {
						assign[i] = best
						changed[wkr]++
					}
					dist[i] = bd
				}
			})
		}
		wg.Wait()
		nChanged := 0
		for _, c := range changed {
			nChanged += c
		}
		if nChanged == 0 {
			break
		}
		// Update, summing points in index order.
		clear(sums)
		clear(counts)
		for i, c := range assign {
			counts[c]++
			s := sums[c*d : (c+1)*d]
			for j, v := range row(i) {
				s[j] += v
			}
		}
		for c := 0; c < k; c++ {
			ci := cent[c*d : (c+1)*d]
			if counts[c] == 0 {
				far := 0
				for i, v := range dist {
					if v > dist[far] {
						far = i
					}
				}
				copy(ci, row(far))
				dist[far] = 0
				continue
			}
			for j := range ci {
				ci[j] = sums[c*d+j] / float64(counts[c])
			}
		}
	}
	return cent, it, nil
}

func sqDist(a, b []float64) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		t := v - b[i]
		s += t * t
	}
	return s
}

// toF32 converts values for features.WriteF32.
func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
