package w2s

import (
	"context"
	"fmt"
	"math"
)

// Trust-region Newton with conjugate gradients (TRON; Lin, Weng & Keerthi
// 2008, as in LIBLINEAR) for binary linear models: each outer step solves
// H s = −g approximately inside a trust region, with Hessian–vector products
// H v = Xᵀ D X v + λv that cost two sparse passes and no exp or log. On
// ill-conditioned problems it needs far fewer passes over the data than
// L-BFGS.

// newtonFit minimises the objective o (a binary linear model) from x,
// leaving the solution in o.m; it returns outer iterations and passes.
func newtonFit(ctx context.Context, o *lbfgsObjective, x []float64, maxIter int, tol float64) (iters, hv int, err error) {
	const (
		eta0, eta1, eta2       = 1e-4, 0.25, 0.75
		sigma1, sigma2, sigma3 = 0.25, 0.5, 4.0
	)
	n := len(x)
	g := make([]float64, n)
	s := make([]float64, n)
	r := make([]float64, n)
	d := make([]float64, n)
	hd := make([]float64, n)
	wnew := make([]float64, n)
	f := o.f(x)
	o.grad(g, x)
	gnorm0 := norm2(g)
	delta := gnorm0
	for iters = 1; iters <= maxIter; iters++ {
		if err := ctx.Err(); err != nil {
			return iters, hv, err
		}
		if normInf(g) <= tol {
			break
		}
		// Truncated CG inside the trust region.
		clear(s)
		for i := range r {
			r[i] = -g[i]
			d[i] = r[i]
		}
		rTr := dot(r, r)
		cgtol := 0.1 * norm2(g)
		for k := 0; k < 4*n+10; k++ {
			if math.Sqrt(rTr) <= cgtol {
				break
			}
			o.hessVec(d, hd)
			hv++
			dHd := dot(d, hd)
			if dHd <= 0 {
				break
			}
			alpha := rTr / dHd
			axpy(alpha, d, s)
			if norm2(s) > delta {
				axpy(-alpha, d, s)
				std, sts, dd := dot(s, d), dot(s, s), dot(d, d)
				rad := math.Sqrt(std*std + dd*(delta*delta-sts))
				var tau float64
				if std >= 0 {
					tau = (delta*delta - sts) / (std + rad)
				} else {
					tau = (rad - std) / dd
				}
				axpy(tau, d, s)
				axpy(-tau, hd, r)
				break
			}
			axpy(-alpha, hd, r)
			rnew := dot(r, r)
			beta := rnew / rTr
			for i := range d {
				d[i] = r[i] + beta*d[i]
			}
			rTr = rnew
		}
		for i := range wnew {
			wnew[i] = x[i] + s[i]
		}
		gs := dot(g, s)
		prered := -0.5 * (gs - dot(s, r))
		fnew := o.f(wnew)
		actred := f - fnew
		snorm := norm2(s)
		if iters == 1 {
			delta = math.Min(delta, snorm)
		}
		var alpha float64
		if fnew-f-gs <= 0 {
			alpha = sigma3
		} else {
			alpha = math.Max(sigma1, -0.5*(gs/(fnew-f-gs)))
		}
		switch {
		case actred < eta0*prered:
			delta = math.Min(math.Max(alpha, sigma1)*snorm, sigma2*delta)
		case actred < eta1*prered:
			delta = math.Max(sigma1*delta, math.Min(alpha*snorm, sigma2*delta))
		case actred < eta2*prered:
			delta = math.Max(sigma1*delta, math.Min(alpha*snorm, sigma3*delta))
		default:
			delta = math.Max(delta, math.Min(alpha*snorm, sigma3*delta))
		}
		if actred > eta0*prered {
			copy(x, wnew)
			f = fnew
			o.grad(g, x)
		} else {
			o.f(x) // the curvature of the point we stay at
		}
		if f < -1e32 || (math.Abs(actred) <= 1e-12*math.Abs(f) && math.Abs(prered) <= 1e-12*math.Abs(f)) {
			break
		}
	}
	o.f(x) // leave the model and the curvature at the solution
	o.set(x)
	if iters > maxIter {
		return iters, hv, fmt.Errorf("train: newton did not converge in %d iterations", maxIter)
	}
	return iters, hv, nil
}

// hessVec sets out = H v at the last evaluated point (binary linear model).
func (o *lbfgsObjective) hessVec(v, out []float64) {
	m, x := o.m, o.x
	W := len(m.W1)
	vb := v[W]
	var shift float64
	if m.Mu != nil {
		for c, mu := range m.Mu {
			shift += mu * m.Inv[c] * v[c]
		}
	}
	clear(out)
	var ub float64
	for i := 0; i < x.Rows(); i++ {
		di := o.curv[i]
		if di == 0 {
			continue
		}
		a, e := x.Ptr[i], x.Ptr[i+1]
		idx, val := x.Idx[a:e], x.Val[a:e]
		u := vb - shift
		if m.Inv == nil {
			for k, c := range idx {
				u += float64(val[k]) * v[c]
			}
		} else {
			for k, c := range idx {
				u += float64(val[k]) * m.Inv[c] * v[c]
			}
		}
		u *= di
		ub += u
		if m.Inv == nil {
			for k, c := range idx {
				out[c] += float64(val[k]) * u
			}
		} else {
			for k, c := range idx {
				out[c] += float64(val[k]) * m.Inv[c] * u
			}
		}
	}
	if m.Mu != nil {
		for c, mu := range m.Mu {
			out[c] -= mu * m.Inv[c] * ub
		}
	}
	out[W] = ub
	for c := 0; c < W; c++ {
		out[c] += o.lambda * v[c]
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func norm2(a []float64) float64 { return math.Sqrt(dot(a, a)) }

func normInf(a []float64) float64 {
	var m float64
	for _, v := range a {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
