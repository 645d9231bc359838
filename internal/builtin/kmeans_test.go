package builtin

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// twoClusters returns n points in 2-d around (−5, 0) and n around (5, 0),
// interleaved.
func twoClusters(n int) []float64 {
	rng := rand.New(rand.NewPCG(7, 8))
	x := make([]float64, 0, 4*n)
	for i := 0; i < n; i++ {
		x = append(x, -5+rng.NormFloat64()*0.5, rng.NormFloat64()*0.5)
		x = append(x, 5+rng.NormFloat64()*0.5, rng.NormFloat64()*0.5)
	}
	return x
}

func TestKMeansSeparatesClusters(t *testing.T) {
	x := twoClusters(200)
	cent, _, err := kMeans(context.Background(), x, 400, 2, 2, 50, 1)
	if err != nil {
		t.Fatal(err)
	}
	xs := []float64{cent[0], cent[2]}
	slices.Sort(xs)
	if math.Abs(xs[0]+5) > 0.2 || math.Abs(xs[1]-5) > 0.2 || math.Abs(cent[1]) > 0.2 || math.Abs(cent[3]) > 0.2 {
		t.Fatalf("centroids %v, want about (−5, 0) and (5, 0)", cent)
	}
}

func TestKMeansDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, 3000*5)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	a, itA, err := kMeans(context.Background(), x, 3000, 5, 16, 20, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, itB, err := kMeans(context.Background(), x, 3000, 5, 16, 20, 42)
	if err != nil {
		t.Fatal(err)
	}
	if itA != itB || !slices.Equal(a, b) {
		t.Fatal("the same seed gave different centroids")
	}
	c, _, err := kMeans(context.Background(), x, 3000, 5, 16, 20, 43)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a, c) {
		t.Error("another seed gave the same centroids")
	}
	if _, _, err := kMeans(context.Background(), x[:10], 2, 5, 3, 20, 1); err == nil {
		t.Error("3 centroids from 2 points: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := kMeans(ctx, x, 3000, 5, 16, 20, 42); err == nil {
		t.Error("a cancelled context: no error")
	}
}

func TestKMeansDuplicatePoints(t *testing.T) {
	// More centroids than distinct points: the seeding falls back to
	// uniform draws and empty clusters are refilled, without failing.
	x := []float64{0, 0, 0, 0, 1, 1, 1, 1}
	cent, _, err := kMeans(context.Background(), x, 4, 2, 3, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cent {
		if math.IsNaN(v) {
			t.Fatalf("centroids %v hold NaN", cent)
		}
	}
}

func TestZCAWhitening(t *testing.T) {
	// Correlated 3-d data: after whitening with a tiny eps the covariance
	// is the identity.
	rng := rand.New(rand.NewPCG(5, 6))
	const n, d = 20000, 3
	x := make([]float64, 0, n*d)
	for i := 0; i < n; i++ {
		a, b, c := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		x = append(x, 2+3*a, a+b, 0.5*b-c)
	}
	mean, w, err := zcaWhitening(x, n, d, 1e-9)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mean[0]-2) > 0.1 {
		t.Errorf("mean %v, want about (2, 0, 0)", mean)
	}
	// W is symmetric (ZCA, not PCA whitening).
	for a := 0; a < d; a++ {
		for b := 0; b < d; b++ {
			if math.Abs(w[a*d+b]-w[b*d+a]) > 1e-9 {
				t.Fatalf("W is not symmetric: %v", w)
			}
		}
	}
	applyWhitening(x, n, d, mean, w)
	for a := 0; a < d; a++ {
		for b := 0; b < d; b++ {
			var s float64
			for i := 0; i < n; i++ {
				s += x[i*d+a] * x[i*d+b]
			}
			s /= n
			want := 0.0
			if a == b {
				want = 1
			}
			if math.Abs(s-want) > 1e-6 {
				t.Errorf("whitened covariance [%d][%d] = %v, want %v", a, b, s, want)
			}
		}
	}
	if _, _, err := zcaWhitening(x[:d], 1, d, 0.1); err == nil {
		t.Error("one patch: no error")
	}
}

func TestSamplePatches(t *testing.T) {
	// A 3×3 image with one bright pixel in the middle: every 2×2 patch
	// holds it, so none is constant and each normalizes to zero mean.
	img := []byte{0, 0, 0, 0, 255, 0, 0, 0, 0}
	p := samplePatches([][]byte{img}, 3, 3, 2, 10, rand.New(rand.NewPCG(1, 2)))
	if len(p) != 40 {
		t.Fatalf("%d values, want 10 patches × 4", len(p))
	}
	for i := 0; i < 10; i++ {
		var s float64
		nonzero := 0
		for _, v := range p[i*4 : (i+1)*4] {
			s += v
			if v != 0 {
				nonzero++
			}
		}
		if math.Abs(s) > 1e-9 || nonzero != 4 {
			t.Fatalf("patch %d = %v: want four non-zero values summing to 0", i, p[i*4:(i+1)*4])
		}
	}
}
