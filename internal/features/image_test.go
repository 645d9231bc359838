package features

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
)

func TestDecodeImage(t *testing.T) {
	pix := []byte{0, 1, 2, 3, 4, 255}
	got, err := DecodeImage(nil, EncodeImage(pix), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(pix) {
		t.Fatalf("decoded %v, want %v", got, pix)
	}
	for name, value := range map[string]string{
		"too short":  EncodeImage(pix[:5]),
		"too long":   EncodeImage(append(pix, 7)),
		"not base64": "AAAA!AAA",
		"empty":      "",
	} {
		if _, err := DecodeImage(nil, value, 3, 2); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestImagePool(t *testing.T) {
	// 4×4 image, 2×2 grid: each cell is a 2×2 block.
	pix := []byte{
		0, 255, 10, 20,
		255, 0, 30, 40,
		51, 51, 255, 255,
		51, 51, 255, 255,
	}
	f, err := Open(Spec{Kind: "image-pool", Width: 4, Height: 4, Grid: 2}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if f.Dim() != 4 {
		t.Fatalf("dim %d, want 4", f.Dim())
	}
	var v Vec
	if err := f.Append(&v, 3, EncodeImage(pix)); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, 25.0 / 255, 0.2, 1}
	if len(v.Idx) != 4 {
		t.Fatalf("got %d features, want 4", len(v.Idx))
	}
	for i := range want {
		if int(v.Idx[i]) != 3+i || math.Abs(float64(v.Val[i]-want[i])) > 1e-6 {
			t.Errorf("feature %d: column %d = %v, want column %d = %v", i, v.Idx[i], v.Val[i], 3+i, want[i])
		}
	}
	if err := f.Append(&v, 0, EncodeImage(pix[:15])); err == nil {
		t.Error("a 15-byte image was accepted")
	}

	// A grid that does not divide the side: on 3 pixels, cell 0 covers
	// [0, 3/2) = {0, 1} and cell 1 covers {2}.
	f, err = Open(Spec{Kind: "image-pool", Width: 3, Height: 3, Grid: 2}, "")
	if err != nil {
		t.Fatal(err)
	}
	v.Reset()
	if err := f.Append(&v, 0, EncodeImage([]byte{0, 10, 20, 30, 40, 50, 60, 70, 80})); err != nil {
		t.Fatal(err)
	}
	want = []float32{20.0 / 255, 35.0 / 255, 65.0 / 255, 80.0 / 255}
	for i := range want {
		if math.Abs(float64(v.Val[i]-want[i])) > 1e-6 {
			t.Errorf("3×3, grid 2: cell %d = %v, want %v", i, v.Val[i], want[i])
		}
	}
	if _, err := Open(Spec{Kind: "image-pool", Width: 4, Height: 4, Grid: 5}, ""); err == nil {
		t.Error("grid 5 on a 4×4 image was accepted")
	}
}

// writeConv writes centroids and whitening files for conv-kmeans tests.
func writeConv(t *testing.T, cent, mean, whiten []float32) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteF32(filepath.Join(dir, "c.f32"), cent); err != nil {
		t.Fatal(err)
	}
	if err := WriteF32(filepath.Join(dir, "w.f32"), append(append([]float32{}, mean...), whiten...)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func identity(d int) []float32 {
	w := make([]float32, d*d)
	for i := 0; i < d; i++ {
		w[i*d+i] = 1
	}
	return w
}

func featurize(t *testing.T, f Featurizer, pix []byte) []float32 {
	t.Helper()
	var v Vec
	if err := f.Append(&v, 0, EncodeImage(pix)); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, f.Dim())
	for i, c := range v.Idx {
		out[c] = v.Val[i]
	}
	return out
}

func TestConvKMeansByHand(t *testing.T) {
	// 2×2 patches, identity whitening, zero mean, two centroids.
	d := 4
	spec := Spec{Kind: "conv-kmeans", Width: 5, Height: 5, Patch: 2, K: 2, Grid: 2, Centroids: "c.f32", Whiten: "w.f32"}

	// A constant image: every patch normalizes to x = 0, so z = 0 and the
	// distances are the centroid norms 1 and 3; μ = 2, activations (1, 0).
	// 4×4 patch positions, 4 in each quadrant: features (4, 0) per quadrant.
	dir := writeConv(t, []float32{1, 0, 0, 0, 0, 0, 0, 3}, make([]float32, d), identity(d))
	f, err := Open(spec, dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Dim() != 8 {
		t.Fatalf("dim %d, want 8", f.Dim())
	}
	flat := make([]byte, 25)
	for i := range flat {
		flat[i] = 77
	}
	got := featurize(t, f, flat)
	want := []float32{4, 0, 4, 0, 4, 0, 4, 0}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("constant image: features %v, want %v", got, want)
		}
	}

	// One patch [0 255; 0 255]: v = (0, 1, 0, 1), mean ½, variance ¼, so
	// x = (−a, a, −a, a) with a = ½/√(¼+ε). Centroids x and −x: distances
	// 0 and 4a, μ = 2a, activations (2a, 0).
	a := 0.5 / math.Sqrt(0.25+PatchNormEps)
	fa := float32(a)
	dir = writeConv(t, []float32{-fa, fa, -fa, fa, fa, -fa, fa, -fa}, make([]float32, d), identity(d))
	f, err = Open(Spec{Kind: "conv-kmeans", Width: 2, Height: 2, Patch: 2, K: 2, Grid: 1, Centroids: "c.f32", Whiten: "w.f32"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	got = featurize(t, f, []byte{0, 255, 0, 255})
	if math.Abs(float64(got[0])-2*a) > 1e-4 || got[1] != 0 {
		t.Fatalf("one patch: features %v, want [%v 0]", got, 2*a)
	}
}

// refConvKMeans is a direct, unoptimized reading of the conv-kmeans
// definition (no cached constant patches, distances summed directly).
func refConvKMeans(pix []byte, w, h, p, k, grid int, cent, mean, whiten []float32) []float64 {
	d := p * p
	py, px := h-p+1, w-p+1
	out := make([]float64, grid*grid*k)
	for r := 0; r < py; r++ {
		for c := 0; c < px; c++ {
			var v []float64
			for i := 0; i < p; i++ {
				for j := 0; j < p; j++ {
					v = append(v, float64(pix[(r+i)*w+c+j])/255)
				}
			}
			var mu, va float64
			for _, x := range v {
				mu += x
			}
			mu /= float64(d)
			for _, x := range v {
				va += (x - mu) * (x - mu)
			}
			va /= float64(d)
			x := make([]float64, d)
			for i := range v {
				if va > 0 {
					x[i] = (v[i] - mu) / math.Sqrt(va+PatchNormEps)
				}
			}
			z := make([]float64, d)
			for j := 0; j < d; j++ {
				for i := 0; i < d; i++ {
					z[j] += float64(whiten[j*d+i]) * (x[i] - float64(mean[i]))
				}
			}
			dist := make([]float64, k)
			var avg float64
			for q := 0; q < k; q++ {
				var s float64
				for i := 0; i < d; i++ {
					t := z[i] - float64(cent[q*d+i])
					s += t * t
				}
				dist[q] = math.Sqrt(s)
				avg += dist[q] / float64(k)
			}
			cell := (r*grid/py)*grid + c*grid/px
			for q := 0; q < k; q++ {
				out[cell*k+q] += math.Max(0, avg-dist[q])
			}
		}
	}
	return out
}

func randomConv(rng *rand.Rand, d, k int) (cent, mean, whiten []float32) {
	cent = make([]float32, k*d)
	for i := range cent {
		cent[i] = float32(rng.NormFloat64())
	}
	mean = make([]float32, d)
	for i := range mean {
		mean[i] = float32(rng.NormFloat64() * 0.1)
	}
	whiten = make([]float32, d*d)
	for i := range whiten {
		whiten[i] = float32(rng.NormFloat64() * 0.3)
	}
	return cent, mean, whiten
}

func randomImage(rng *rand.Rand, w, h int) []byte {
	pix := make([]byte, w*h)
	for i := range pix {
		if rng.IntN(3) > 0 { // some black background, as in the data
			pix[i] = byte(rng.IntN(256))
		}
	}
	return pix
}

func TestConvKMeansMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const w, h, p, k = 9, 8, 3, 7
	cent, mean, whiten := randomConv(rng, p*p, k)
	dir := writeConv(t, cent, mean, whiten)
	for _, grid := range []int{1, 2, 3} {
		f, err := Open(Spec{Kind: "conv-kmeans", Width: w, Height: h, Patch: p, K: k, Grid: grid, Centroids: "c.f32", Whiten: "w.f32"}, dir)
		if err != nil {
			t.Fatal(err)
		}
		if f.Dim() != grid*grid*k {
			t.Fatalf("grid %d: dim %d, want %d", grid, f.Dim(), grid*grid*k)
		}
		for n := 0; n < 5; n++ {
			pix := randomImage(rng, w, h)
			if n == 0 {
				clear(pix[:2*w]) // constant patches too
			}
			got := featurize(t, f, pix)
			want := refConvKMeans(pix, w, h, p, k, grid, cent, mean, whiten)
			for i := range want {
				if math.Abs(float64(got[i])-want[i]) > 1e-3*(1+math.Abs(want[i])) {
					t.Fatalf("grid %d image %d feature %d: %v, want %v", grid, n, i, got[i], want[i])
				}
			}
			again := featurize(t, f, pix)
			for i := range got {
				if got[i] != again[i] {
					t.Fatalf("grid %d image %d: featurizing twice gave different features", grid, n)
				}
			}
		}
	}
}

func TestConvKMeansConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	cent, mean, whiten := randomConv(rng, 9, 5)
	dir := writeConv(t, cent, mean, whiten)
	f, err := Open(Spec{Kind: "conv-kmeans", Width: 8, Height: 8, Patch: 3, K: 5, Centroids: "c.f32", Whiten: "w.f32"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	imgs := make([][]byte, 20)
	want := make([][]float32, len(imgs))
	for i := range imgs {
		imgs[i] = randomImage(rng, 8, 8)
		want[i] = featurize(t, f, imgs[i])
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			var v Vec
			for i, img := range imgs {
				v.Reset()
				if err := f.Append(&v, 0, EncodeImage(img)); err != nil {
					t.Error(err)
					return
				}
				for j, c := range v.Idx {
					if v.Val[j] != want[i][c] {
						t.Errorf("image %d column %d: %v concurrently, %v alone", i, c, v.Val[j], want[i][c])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestConvKMeansRefusals(t *testing.T) {
	dir := writeConv(t, make([]float32, 2*4), make([]float32, 4), identity(4))
	ok := Spec{Kind: "conv-kmeans", Width: 5, Height: 5, Patch: 2, K: 2, Centroids: "c.f32", Whiten: "w.f32"}
	if f, err := Open(ok, dir); err != nil {
		t.Fatal(err)
	} else if f.Dim() != 8 {
		t.Fatalf("default grid: dim %d, want 8 (2×2 pooling)", f.Dim())
	}
	for name, mod := range map[string]func(*Spec){
		"no width":          func(s *Spec) { s.Width = 0 },
		"patch too big":     func(s *Spec) { s.Patch = 6 },
		"no k":              func(s *Spec) { s.K = 0 },
		"k not in file":     func(s *Spec) { s.K = 3 },
		"wrong patch":       func(s *Spec) { s.Patch = 3 },
		"grid too fine":     func(s *Spec) { s.Grid = 5 },
		"missing centroids": func(s *Spec) { s.Centroids = "none.f32" },
		"escaping path":     func(s *Spec) { s.Whiten = "../w.f32" },
	} {
		s := ok
		mod(&s)
		if _, err := Open(s, dir); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func BenchmarkConvKMeans(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	cent, mean, whiten := randomConv(rng, 25, 128)
	dir := b.TempDir()
	WriteF32(filepath.Join(dir, "c.f32"), cent)
	WriteF32(filepath.Join(dir, "w.f32"), append(mean, whiten...))
	f, err := Open(Spec{Kind: "conv-kmeans", Width: 28, Height: 28, Patch: 5, K: 128, Grid: 2, Centroids: "c.f32", Whiten: "w.f32"}, dir)
	if err != nil {
		b.Fatal(err)
	}
	img := EncodeImage(randomImage(rng, 28, 28))
	var v Vec
	b.ResetTimer()
	for b.Loop() {
		v.Reset()
		if err := f.Append(&v, 0, img); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzImageFeaturizers(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 5))
	cent, mean, whiten := randomConv(rng, 4, 3)
	dir := f.TempDir()
	WriteF32(filepath.Join(dir, "c.f32"), cent)
	WriteF32(filepath.Join(dir, "w.f32"), append(mean, whiten...))
	conv, err := Open(Spec{Kind: "conv-kmeans", Width: 4, Height: 3, Patch: 2, K: 3, Centroids: "c.f32", Whiten: "w.f32"}, dir)
	if err != nil {
		f.Fatal(err)
	}
	pool, err := Open(Spec{Kind: "image-pool", Width: 4, Height: 3, Grid: 2}, dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(EncodeImage(randomImage(rng, 4, 3)))
	f.Add(EncodeImage(make([]byte, 12)))
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, value string) {
		for _, fz := range []Featurizer{conv, pool} {
			var v Vec
			if err := fz.Append(&v, 0, value); err != nil {
				continue
			}
			for i, c := range v.Idx {
				if int(c) >= fz.Dim() || (i > 0 && c <= v.Idx[i-1]) {
					t.Fatalf("columns %v out of order or range (dim %d)", v.Idx, fz.Dim())
				}
				if math.IsNaN(float64(v.Val[i])) || math.IsInf(float64(v.Val[i]), 0) {
					t.Fatalf("feature %d is %v", c, v.Val[i])
				}
			}
		}
	})
}
