package features

import (
	"encoding/base64"
	"fmt"
	"math"
	"sync"
)

// Image featurizers. The row field holds Width × Height grey pixels, one
// byte each, row-major, encoded as standard base64 (with padding).
//
//   - "image-pool": the image average-pooled into Grid × Grid cells, each
//     the mean of its pixels / 255; cell (gy, gx) is column gy·Grid + gx.
//     Cell gy covers rows [gy·Height/Grid, (gy+1)·Height/Grid), likewise
//     for columns.
//
//   - "conv-kmeans": single-layer convolutional k-means features (Coates,
//     Lee & Ng 2011). Every Patch × Patch patch at stride 1 is
//     brightness/contrast normalized (NormalizePatch), whitened with the
//     frozen ZCA transform, z = W(x − m), and encoded against K frozen
//     centroids c_k by the triangle activation f_k = max(0, μ − d_k), where
//     d_k = ‖z − c_k‖ and μ is the mean of d over the K centroids. The
//     activations are sum-pooled over a Grid × Grid split of the patch
//     positions (Grid defaults to 2: the image quadrants), giving Grid²·K
//     features; pooling cell q, centroid k is column q·K + k.
//
//     Files: Centroids holds K × D float32 (D = Patch², row-major, one
//     centroid a row, in whitened space); Whiten holds D + D×D float32: the
//     mean m of the normalized patches, then the D × D whitening matrix W
//     row-major (z_j = Σ_i W[j·D+i]·(x_i − m_i)).
//
// Both are safe for concurrent use (scratch buffers come from a sync.Pool).
// conv-kmeans costs about 1 ms per 28×28 image on one core (patches of
// constant pixels share one precomputed encoding).
func init() {
	RegisterKind("image-pool", openImagePool)
	RegisterKind("conv-kmeans", openConvKMeans)
}

// PatchNormEps is added to a patch's pixel variance (pixels in [0, 1])
// before dividing by its square root: 10 grey levels² on the 0–255 scale,
// as Coates & Ng.
const PatchNormEps = 10.0 / (255 * 255)

// DecodeImage decodes a base64 image of exactly w·h bytes into dst's
// storage (grown as needed) and returns it.
func DecodeImage(dst []byte, value string, w, h int) ([]byte, error) {
	n := w * h
	if want := base64.StdEncoding.EncodedLen(n); len(value) != want {
		return nil, fmt.Errorf("image: %d base64 characters, want %d (%d×%d grey bytes)", len(value), want, w, h)
	}
	if cap(dst) < base64.StdEncoding.DecodedLen(len(value)) {
		dst = make([]byte, base64.StdEncoding.DecodedLen(len(value)))
	}
	dst = dst[:cap(dst)]
	got, err := base64.StdEncoding.Decode(dst, []byte(value))
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if got != n {
		return nil, fmt.Errorf("image: %d bytes, want %d (%d×%d)", got, n, w, h)
	}
	return dst[:n], nil
}

// EncodeImage encodes grey pixels as a row field for the image kinds.
func EncodeImage(pix []byte) string { return base64.StdEncoding.EncodeToString(pix) }

// NormalizePatch writes the normalized p × p patch of img (width w) whose
// top-left pixel is (r, c) into x (len p²): x_i = (v_i − mean) /
// sqrt(var + PatchNormEps), with v the pixels / 255 and mean and var taken
// over the patch. It reports whether the patch is constant (then x is all
// zeros). The builder of the whitening and the featurizer share it.
func NormalizePatch(x []float64, img []byte, w, r, c, p int) (constant bool) {
	d := p * p
	var sum, sq int
	for i := 0; i < p; i++ {
		row := img[(r+i)*w+c : (r+i)*w+c+p]
		for _, v := range row {
			sum += int(v)
			sq += int(v) * int(v)
		}
	}
	// d²·var·255² = d·Σv² − (Σv)², exact in integers.
	num := d*sq - sum*sum
	if num == 0 {
		clear(x[:d])
		return true
	}
	mean := float64(sum) / float64(d) / 255
	variance := float64(num) / float64(d*d) / (255 * 255)
	inv := 1 / math.Sqrt(variance+PatchNormEps)
	k := 0
	for i := 0; i < p; i++ {
		row := img[(r+i)*w+c : (r+i)*w+c+p]
		for _, v := range row {
			x[k] = (float64(v)/255 - mean) * inv
			k++
		}
	}
	return false
}

// imagePool: Grid × Grid average pooling.
type imagePool struct {
	w, h, grid int
	cell       []int32   // pixel → cell
	scale      []float64 // per cell: 1 / (pixels · 255)
	bufs       sync.Pool
}

func openImagePool(spec Spec, dir string) (Featurizer, error) {
	if spec.Width <= 0 || spec.Height <= 0 {
		return nil, fmt.Errorf("width and height must be positive")
	}
	if spec.Grid <= 0 || spec.Grid > spec.Width || spec.Grid > spec.Height {
		return nil, fmt.Errorf("grid %d: give 1 to min(width, height)", spec.Grid)
	}
	f := &imagePool{w: spec.Width, h: spec.Height, grid: spec.Grid}
	f.cell = make([]int32, f.w*f.h)
	count := make([]int, f.grid*f.grid)
	for y := 0; y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			c := (y*f.grid/f.h)*f.grid + x*f.grid/f.w
			f.cell[y*f.w+x] = int32(c)
			count[c]++
		}
	}
	f.scale = make([]float64, len(count))
	for c, n := range count {
		f.scale[c] = 1 / (float64(n) * 255)
	}
	return f, nil
}

func (f *imagePool) Dim() int { return f.grid * f.grid }

type poolScratch struct {
	pix  []byte
	sums []int
}

func (f *imagePool) Append(v *Vec, off int, value string) error {
	s, _ := f.bufs.Get().(*poolScratch)
	if s == nil {
		s = &poolScratch{sums: make([]int, f.grid*f.grid)}
	}
	defer f.bufs.Put(s)
	pix, err := DecodeImage(s.pix, value, f.w, f.h)
	if err != nil {
		return err
	}
	s.pix = pix
	clear(s.sums)
	for i, p := range pix {
		s.sums[f.cell[i]] += int(p)
	}
	for c, sum := range s.sums {
		v.Add(off+c, float32(float64(sum)*f.scale[c]))
	}
	return nil
}

// convKMeans: normalized, whitened patches → triangle activations against
// frozen centroids → sum-pooled over a grid of patch positions.
type convKMeans struct {
	w, h, p, d, k, grid int
	posY, posX          int       // patch positions per axis
	cellY, cellX        []int     // position → pooling row / column
	whiten              []float32 // D × D, row-major
	wm                  []float32 // W·m
	cent                []float32 // K × D
	cnorm               []float32 // ‖c_k‖²
	constAct            []float32 // activations of a constant patch (x = 0)
	bufs                sync.Pool
}

type convScratch struct {
	pix  []byte
	x    []float64
	z    []float32
	dist []float32
	act  []float32
	sums []float64 // grid² × K
}

func openConvKMeans(spec Spec, dir string) (Featurizer, error) {
	if spec.Width <= 0 || spec.Height <= 0 {
		return nil, fmt.Errorf("width and height must be positive")
	}
	if spec.Patch <= 0 || spec.Patch > spec.Width || spec.Patch > spec.Height {
		return nil, fmt.Errorf("patch %d: give 1 to min(width, height)", spec.Patch)
	}
	if spec.K <= 0 {
		return nil, fmt.Errorf("k %d: give the number of centroids", spec.K)
	}
	grid := spec.Grid
	if grid == 0 {
		grid = 2
	}
	f := &convKMeans{w: spec.Width, h: spec.Height, p: spec.Patch, d: spec.Patch * spec.Patch, k: spec.K, grid: grid}
	f.posY, f.posX = f.h-f.p+1, f.w-f.p+1
	if grid < 0 || grid > f.posY || grid > f.posX {
		return nil, fmt.Errorf("grid %d: give 1 to %d (the patch positions per axis)", grid, min(f.posY, f.posX))
	}
	cent, err := ReadF32(dir, spec.Centroids, f.k*f.d)
	if err != nil {
		return nil, fmt.Errorf("centroids: %w", err)
	}
	wh, err := ReadF32(dir, spec.Whiten, f.d+f.d*f.d)
	if err != nil {
		return nil, fmt.Errorf("whiten: %w", err)
	}
	return newConvKMeans(f, cent, wh[:f.d], wh[f.d:]), nil
}

// newConvKMeans finishes f from its centroids, patch mean and whitening
// matrix.
func newConvKMeans(f *convKMeans, cent, mean, whiten []float32) *convKMeans {
	f.cent, f.whiten = cent, whiten
	f.cellY = make([]int, f.posY)
	for i := range f.cellY {
		f.cellY[i] = i * f.grid / f.posY
	}
	f.cellX = make([]int, f.posX)
	for i := range f.cellX {
		f.cellX[i] = i * f.grid / f.posX
	}
	f.wm = make([]float32, f.d)
	for j := 0; j < f.d; j++ {
		var s float64
		for i := 0; i < f.d; i++ {
			s += float64(whiten[j*f.d+i]) * float64(mean[i])
		}
		f.wm[j] = float32(s)
	}
	f.cnorm = make([]float32, f.k)
	for k := 0; k < f.k; k++ {
		var s float64
		for _, c := range cent[k*f.d : (k+1)*f.d] {
			s += float64(c) * float64(c)
		}
		f.cnorm[k] = float32(s)
	}
	s := f.scratch()
	f.constAct = make([]float32, f.k)
	f.encode(s, make([]float64, f.d), f.constAct)
	return f
}

func (f *convKMeans) scratch() *convScratch {
	return &convScratch{
		x:    make([]float64, f.d),
		z:    make([]float32, f.d),
		dist: make([]float32, f.k),
		act:  make([]float32, f.k),
		sums: make([]float64, f.grid*f.grid*f.k),
	}
}

func (f *convKMeans) Dim() int { return f.grid * f.grid * f.k }

// encode writes the triangle activations of the normalized patch x into
// act (len K).
func (f *convKMeans) encode(s *convScratch, x []float64, act []float32) {
	d := f.d
	z := s.z[:d]
	for j := 0; j < d; j++ {
		row := f.whiten[j*d : (j+1)*d]
		xs := x[:len(row)]
		var a float64
		for i, xi := range xs {
			a += float64(row[i]) * xi
		}
		z[j] = float32(a) - f.wm[j]
	}
	var zn float32
	for _, zj := range z {
		zn += zj * zj
	}
	// d_k² = ‖z‖² − 2 z·c_k + ‖c_k‖², four centroids at a time (four
	// independent sums; eight spill registers and run slower).
	dist := s.dist[:f.k]
	cent := f.cent
	k := 0
	for ; k+4 <= f.k; k += 4 {
		c0 := cent[k*d:][:len(z)]
		c1 := cent[(k+1)*d:][:len(z)]
		c2 := cent[(k+2)*d:][:len(z)]
		c3 := cent[(k+3)*d:][:len(z)]
		var a0, a1, a2, a3 float32
		for i, zi := range z {
			a0 += zi * c0[i]
			a1 += zi * c1[i]
			a2 += zi * c2[i]
			a3 += zi * c3[i]
		}
		n := f.cnorm[k : k+4]
		dist[k] = zn - 2*a0 + n[0]
		dist[k+1] = zn - 2*a1 + n[1]
		dist[k+2] = zn - 2*a2 + n[2]
		dist[k+3] = zn - 2*a3 + n[3]
	}
	for ; k < f.k; k++ {
		c0 := cent[k*d : k*d+d][:len(z)]
		var a0 float32
		for i, zi := range z {
			a0 += zi * c0[i]
		}
		dist[k] = zn - 2*a0 + f.cnorm[k]
	}
	var mu float64
	for k, dk := range dist {
		if dk < 0 {
			dk = 0
		}
		dist[k] = float32(math.Sqrt(float64(dk)))
		mu += float64(dist[k])
	}
	m := float32(mu / float64(f.k))
	for k, dk := range dist {
		act[k] = max(0, m-dk)
	}
}

func (f *convKMeans) Append(v *Vec, off int, value string) error {
	s, _ := f.bufs.Get().(*convScratch)
	if s == nil {
		s = f.scratch()
	}
	defer f.bufs.Put(s)
	pix, err := DecodeImage(s.pix, value, f.w, f.h)
	if err != nil {
		return err
	}
	s.pix = pix
	clear(s.sums)
	act := s.act
	for r := 0; r < f.posY; r++ {
		for c := 0; c < f.posX; c++ {
			a := f.constAct
			if !NormalizePatch(s.x, pix, f.w, r, c, f.p) {
				f.encode(s, s.x, act)
				a = act
			}
			sums := s.sums[(f.cellY[r]*f.grid+f.cellX[c])*f.k:][:f.k]
			for k, ak := range a {
				sums[k] += float64(ak)
			}
		}
	}
	for i, x := range s.sums {
		v.Add(off+i, float32(x))
	}
	return nil
}
