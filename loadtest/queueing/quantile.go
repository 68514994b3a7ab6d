package queueing

import (
	"fmt"
	"math"
)

// NormalQuantile returns z with Φ(z) = p for the standard normal
// distribution, p in (0, 1).
func NormalQuantile(p float64) (float64, error) {
	if err := probability("p", p); err != nil {
		return 0, err
	}
	return normalQuantile(p), nil
}

func normalQuantile(p float64) float64 {
	if p > 0.5 {
		return -normalQuantile(1 - p)
	}
	// math.Erfcinv is Wichura's AS241 (about 1e-16) but evaluates 1 − 2p
	// internally, which costs relative accuracy deep in the tail; two Newton
	// steps against Erfc, which is accurate there, win it back.
	z := -math.Sqrt2 * math.Erfcinv(2*p)
	for range 2 {
		cdf := 0.5 * math.Erfc(-z/math.Sqrt2)
		pdf := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
		if pdf == 0 {
			break
		}
		z -= (cdf - p) / pdf
	}
	return z
}

// StudentTQuantile returns t with F(t) = p for Student's t distribution
// with dof degrees of freedom: p in (0, 1), dof ≥ 1 and not necessarily an
// integer; dof = +Inf gives the normal quantile.
//
// One and two degrees of freedom have closed forms. Otherwise the
// Cornish–Fisher expansion (Abramowitz & Stegun 26.7.5) supplies a start
// that Newton's method, safeguarded by bisection, polishes against the
// exact distribution function (a regularised incomplete beta function) to
// about 1e-13 relative; from 10⁴ degrees of freedom the expansion alone is
// more accurate than that. Tables give four or five digits; this is never
// the limiting factor of a confidence interval.
func StudentTQuantile(p, dof float64) (float64, error) {
	if err := probability("p", p); err != nil {
		return 0, err
	}
	if math.IsNaN(dof) || dof < 1 {
		return 0, fmt.Errorf("%w: dof = %v; must be ≥ 1 (or +Inf)", ErrInvalidParameter, dof)
	}
	if p == 0.5 {
		return 0, nil
	}
	// Work with the upper tail probability, which keeps precision for the
	// p close to 1 that confidence intervals use.
	sign, tail := 1.0, 1-p
	if p < 0.5 {
		sign, tail = -1, p
	}
	return sign * tUpperQuantile(tail, dof), nil
}

// tUpperQuantile returns t ≥ 0 with P(T > t) = tail, tail in (0, 0.5).
func tUpperQuantile(tail, nu float64) float64 {
	switch {
	case math.IsInf(nu, 1):
		return -normalQuantile(tail)
	case nu == 1: // Cauchy
		return 1 / math.Tan(math.Pi*tail)
	case nu == 2:
		return (1 - 2*tail) / math.Sqrt(2*tail*(1-tail))
	}
	z := -normalQuantile(tail)
	z2 := z * z
	g1 := (z2 + 1) * z / 4
	g2 := ((5*z2+16)*z2 + 3) * z / 96
	g3 := (((3*z2+19)*z2+17)*z2 - 15) * z / 384
	g4 := ((((79*z2+776)*z2+1482)*z2-1920)*z2 - 945) * z / 92160
	t := z + (g1+(g2+(g3+g4/nu)/nu)/nu)/nu
	if nu >= 1e4 {
		// The expansion's error is O(ν⁻⁵), below 1e-16 here for tails down
		// to 1e-8, while the log-gamma terms of the exact distribution
		// function lose digits as ν grows.
		return t
	}

	// Bracket: the upper tail is 1/2 at 0 and decreasing.
	lo, hi := 0.0, max(t, 1.0)
	for tUpperTail(hi, nu) > tail && !math.IsInf(hi, 1) {
		lo, hi = hi, 2*hi
	}
	if !(t > lo && t < hi) {
		t = (lo + hi) / 2
	}
	for range 100 {
		g := tUpperTail(t, nu) - tail
		if g > 0 {
			lo = t
		} else {
			hi = t
		}
		next := t + g/tDensity(t, nu)
		if !(next > lo && next < hi) {
			next = (lo + hi) / 2
		}
		if math.Abs(next-t) <= 1e-14*t {
			return next
		}
		t = next
	}
	return t
}

// tUpperTail is P(T > t) for t ≥ 0: ½·I_x(ν/2, ½) with x = ν/(ν + t²).
func tUpperTail(t, nu float64) float64 {
	d := nu + t*t
	return 0.5 * regIncBeta(nu/2, 0.5, nu/d, t*t/d)
}

func tDensity(t, nu float64) float64 {
	lg1, _ := math.Lgamma((nu + 1) / 2)
	lg2, _ := math.Lgamma(nu / 2)
	return math.Exp(lg1 - lg2 - 0.5*math.Log(nu*math.Pi) - (nu+1)/2*math.Log1p(t*t/nu))
}

// regIncBeta is the regularised incomplete beta function I_x(a, b), with
// y = 1 − x passed separately so that callers can supply it without
// cancellation. It uses the continued fraction (modified Lentz) on the side
// of the mean where it converges fast, and the symmetry
// I_x(a, b) = 1 − I_y(b, a) on the other.
func regIncBeta(a, b, x, y float64) float64 {
	if x <= 0 {
		return 0
	}
	if y <= 0 {
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log(y))
	if x < (a+1)/(a+b+2) {
		return front * betaContinuedFraction(a, b, x) / a
	}
	return 1 - front*betaContinuedFraction(b, a, y)/b
}

func betaContinuedFraction(a, b, x float64) float64 {
	const tiny = 1e-300
	guard := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c := 1.0
	d := 1 / guard(1-(a+b)*x/(a+1))
	h := d
	for m := 1.0; m <= 10000; m++ {
		// Even step.
		num := m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		d = 1 / guard(1+num*d)
		c = guard(1 + num/c)
		h *= d * c
		// Odd step.
		num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		d = 1 / guard(1+num*d)
		c = guard(1 + num/c)
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return h
}
