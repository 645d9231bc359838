package w2s

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/aar-lab/aar/internal/features"
)

// Model is a softmax classifier over sparse features: linear (H = 0) or one
// hidden ReLU layer of H units. Weights are stored input-major so a sparse
// row touches only its columns: W1[d*out+j]. With two classes the model has
// one logit (p1 = σ(z)), as binary logistic regression (and scikit-learn)
// does, which halves the work and makes C mean what it means there.
type Model struct {
	D, H, K int
	W1, B1  []float64 // D×out1, out1 (out1 = H, or the logit count for a linear model)
	W2, B2  []float64 // H×logits, logits (MLP only)
	// Mu and Inv standardize the inputs, x' = (x − Mu)·Inv, when set
	// (Config.Standardize). The shift is folded into the first layer so
	// sparse rows stay sparse: z = B1 − shift + Σ_nnz x·Inv·W1.
	Mu, Inv []float64
	shift   []float64 // Σ_d Mu_d·Inv_d·W1[d,·]; see refresh
}

// standardizeFrom sets Mu and Inv to the column means and inverse standard
// deviations of x (a constant column gets Inv 1).
func (m *Model) standardizeFrom(x *features.Matrix) {
	n := float64(x.Rows())
	sum := make([]float64, x.Cols)
	sq := make([]float64, x.Cols)
	for i, c := range x.Idx {
		v := float64(x.Val[i])
		sum[c] += v
		sq[c] += v * v
	}
	m.Mu, m.Inv = make([]float64, x.Cols), make([]float64, x.Cols)
	for d := range sum {
		mu := sum[d] / n
		sd := math.Sqrt(math.Max(sq[d]/n-mu*mu, 0))
		m.Mu[d] = mu
		m.Inv[d] = 1
		if sd > 1e-8 {
			m.Inv[d] = 1 / sd
		}
	}
	m.refresh()
}

// refresh recomputes the folded shift after W1 changed.
func (m *Model) refresh() {
	if m.Mu == nil {
		return
	}
	o1 := m.out1()
	if m.shift == nil {
		m.shift = make([]float64, o1)
	}
	clear(m.shift)
	for d, mu := range m.Mu {
		if mu == 0 {
			continue
		}
		a := mu * m.Inv[d]
		w := m.W1[d*o1 : d*o1+o1]
		for j := range m.shift {
			m.shift[j] += a * w[j]
		}
	}
}

// finishGrad adds the standardization's dense term to a batch's W1
// gradient: −Mu_d·Inv_d·Σ_rows dz_j, where gz holds Σ_rows dz.
func (m *Model) finishGrad(grads [][]float64, gz []float64) {
	if m.Mu == nil {
		return
	}
	o1 := m.out1()
	g := grads[0]
	for d, mu := range m.Mu {
		if mu == 0 {
			continue
		}
		a := mu * m.Inv[d]
		row := g[d*o1 : d*o1+o1]
		for j, z := range gz {
			row[j] -= a * z
		}
	}
}

func newModel(d, h, k int, rng *rand.Rand) *Model {
	m := &Model{D: d, H: h, K: k}
	o := m.logits()
	if h == 0 {
		m.W1, m.B1 = make([]float64, d*o), make([]float64, o)
		return m
	}
	m.W1, m.B1 = make([]float64, d*h), make([]float64, h)
	m.W2, m.B2 = make([]float64, h*o), make([]float64, o)
	// He initialisation scaled for sparse inputs.
	s1 := math.Sqrt(2.0 / float64(d))
	for i := range m.W1 {
		m.W1[i] = rng.NormFloat64() * s1
	}
	s2 := math.Sqrt(1.0 / float64(h))
	for i := range m.W2 {
		m.W2[i] = rng.NormFloat64() * s2
	}
	return m
}

// logits is the number of output logits: 1 for two classes, else K.
func (m *Model) logits() int {
	if m.K == 2 {
		return 1
	}
	return m.K
}

func (m *Model) out1() int {
	if m.H == 0 {
		return m.logits()
	}
	return m.H
}

// probs turns logits z (length logits()) into class probabilities p
// (length K); z may alias p.
func (m *Model) probs(z, p []float64) {
	if m.K == 2 {
		s := 1 / (1 + math.Exp(-z[0]))
		p[0], p[1] = 1-s, s
		return
	}
	copy(p, z)
	softmaxInPlace(p)
}

// dlogits writes w·∂CE/∂logits for probabilities p and target t into dl.
func (m *Model) dlogits(p, t []float64, w float64, dl []float64) {
	if m.K == 2 {
		dl[0] = w * (p[1] - t[1])
		return
	}
	for k := range dl {
		dl[k] = w * (p[k] - t[k])
	}
}

// params lists the parameter slices in a fixed order (weights first).
func (m *Model) params() [][]float64 {
	if m.H == 0 {
		return [][]float64{m.W1, m.B1}
	}
	return [][]float64{m.W1, m.B1, m.W2, m.B2}
}

// isWeight reports whether params()[i] is a weight matrix (decayed).
func (m *Model) isWeight(i int) bool { return i%2 == 0 }

// forward computes the hidden activations (MLP) and the class probabilities
// of one row. hid must have length H (ignored for linear), p length K.
func (m *Model) forward(idx []int32, val []float32, hid, p []float64) {
	o1 := m.out1()
	if o1 == 1 {
		// Binary linear model: one dot product.
		z := m.B1[0]
		if m.shift != nil {
			z -= m.shift[0]
		}
		if m.Inv == nil {
			for n, c := range idx {
				z += float64(val[n]) * m.W1[c]
			}
		} else {
			for n, c := range idx {
				z += float64(val[n]) * m.Inv[c] * m.W1[c]
			}
		}
		p[0] = z
		m.probs(p[:1], p)
		return
	}
	var z []float64
	if m.H > 0 {
		z = hid
	} else {
		z = p[:o1]
	}
	copy(z, m.B1)
	for j := range m.shift {
		z[j] -= m.shift[j]
	}
	for n, c := range idx {
		x := float64(val[n])
		if m.Inv != nil {
			x *= m.Inv[c]
		}
		w := m.W1[int(c)*o1 : int(c)*o1+o1]
		for j := range z {
			z[j] += x * w[j]
		}
	}
	if m.H > 0 {
		for j := range hid {
			if hid[j] < 0 {
				hid[j] = 0
			}
		}
		o := m.logits()
		z = p[:o]
		copy(z, m.B2)
		for h, a := range hid {
			if a == 0 {
				continue
			}
			w := m.W2[h*o : h*o+o]
			for k := range z {
				z[k] += a * w[k]
			}
		}
	}
	m.probs(z, p)
}

// addLogitBias adds bias to log p and renormalises (p ∝ p·e^bias).
func addLogitBias(p, bias []float64) {
	if len(bias) == 0 {
		return
	}
	var s float64
	for k := range p {
		p[k] *= math.Exp(bias[k])
		s += p[k]
	}
	for k := range p {
		p[k] /= s
	}
}

func softmaxInPlace(z []float64) {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, v)
	}
	var s float64
	for i, v := range z {
		z[i] = math.Exp(v - mx)
		s += z[i]
	}
	for i := range z {
		z[i] /= s
	}
}

// backward accumulates into grads (same layout as params) the gradient of
// one row's loss, given dl = ∂loss/∂logits and the forward activations.
//
// gz accumulates the first layer's Σ dz for finishGrad.
func (m *Model) backward(idx []int32, val []float32, hid, dl []float64, grads [][]float64, dh, gz []float64) {
	if m.H == 0 {
		gW, gB := grads[0], grads[1]
		for k, d := range dl {
			gB[k] += d
		}
		if m.Mu != nil {
			for k, d := range dl {
				gz[k] += d
			}
		}
		o := len(dl)
		if o == 1 {
			d := dl[0]
			if m.Inv == nil {
				for n, c := range idx {
					gW[c] += float64(val[n]) * d
				}
			} else {
				for n, c := range idx {
					gW[c] += float64(val[n]) * m.Inv[c] * d
				}
			}
			return
		}
		for n, c := range idx {
			x := float64(val[n])
			if m.Inv != nil {
				x *= m.Inv[c]
			}
			g := gW[int(c)*o : int(c)*o+o]
			for k, d := range dl {
				g[k] += x * d
			}
		}
		return
	}
	gW1, gB1, gW2, gB2 := grads[0], grads[1], grads[2], grads[3]
	for k, d := range dl {
		gB2[k] += d
	}
	o := len(dl)
	for h, a := range hid {
		dh[h] = 0
		if a <= 0 {
			continue
		}
		w := m.W2[h*o : h*o+o]
		g := gW2[h*o : h*o+o]
		var s float64
		for k, d := range dl {
			g[k] += a * d
			s += w[k] * d
		}
		dh[h] = s
	}
	for h, d := range dh {
		gB1[h] += d
	}
	if m.Mu != nil {
		for h, d := range dh {
			gz[h] += d
		}
	}
	for n, c := range idx {
		x := float64(val[n])
		if m.Inv != nil {
			x *= m.Inv[c]
		}
		g := gW1[int(c)*m.H : int(c)*m.H+m.H]
		for h, d := range dh {
			if d != 0 {
				g[h] += x * d
			}
		}
	}
}

// Predict returns the class probabilities of every row of x.
func (m *Model) Predict(x *features.Matrix) ([][]float64, error) {
	if x.Cols != m.D {
		return nil, fmt.Errorf("predict: %d feature columns, the model has %d", x.Cols, m.D)
	}
	out := make([][]float64, x.Rows())
	hid := make([]float64, m.H)
	for i := range out {
		idx, val := x.Row(i)
		out[i] = make([]float64, m.K)
		m.forward(idx, val, hid, out[i])
	}
	return out, nil
}

// PredictBiased returns class probabilities with bias added to the logits
// (a weak judge's position bias, say); a nil bias is plain Predict.
func (m *Model) PredictBiased(x *features.Matrix, bias []float64) ([][]float64, error) {
	p, err := m.Predict(x)
	if err != nil {
		return nil, err
	}
	for _, row := range p {
		addLogitBias(row, bias)
	}
	return p, nil
}
