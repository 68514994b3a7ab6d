package queueing

import (
	"errors"
	"math"
	"testing"
)

// Student's t quantiles. The four-place values are the ones printed in
// standard tables (e.g. NIST/SEMATECH e-Handbook of Statistical Methods,
// §1.3.6.7.2, which gives three places); the full values were computed
// independently with mpmath at 30 digits by root-finding on the regularised
// incomplete beta function.
func TestStudentTQuantile_Table(t *testing.T) {
	for _, tc := range []struct {
		p, dof float64
		table  float64 // as printed, four decimals
		exact  float64 // mpmath
	}{
		{0.995, 9, 3.2498, 3.24983554159212572},
		{0.975, 29, 2.0452, 2.04522964213270387},
		{0.975, 1, 12.7062, 12.7062047361746933},
		{0.995, 1, 63.6567, 63.6567411628715244},
		{0.9, 1, 3.0777, 3.07768353717525413},
		{0.975, 2, 4.3027, 4.30265272974946179},
		{0.99, 3, 4.5407, 4.54070285856813206},
		{0.95, 4, 2.1318, 2.13184678632664953},
		{0.9995, 5, 6.8688, 6.86882662588127513},
		{0.999, 10, 4.1437, 4.14370049404658911},
		{0.975, 100, 1.9840, 1.98397151852355189},
		{0.975, 4.5, 2.6589, 2.65891234720440298}, // non-integer dof (Welch)
		{0.975, 1000, 1.9623, 1.96233908082640849},
		{0.975, 1e6, 1.9600, 1.95996635681410704},
		{0.995, 1e6, 2.5758, 2.57583422010533415},
		{0.975, math.Inf(1), 1.9600, 1.95996398454005424},
	} {
		got, err := StudentTQuantile(tc.p, tc.dof)
		if err != nil {
			t.Fatalf("t(%v, %v): %v", tc.p, tc.dof, err)
		}
		if math.Abs(got-tc.table) > 0.00005 || !relClose(got, tc.exact, 1e-12) {
			t.Errorf("t(%v, %v) = %.15g, want %.15g (table %.4f)", tc.p, tc.dof, got, tc.exact, tc.table)
		}
		if neg, _ := StudentTQuantile(1-tc.p, tc.dof); !relClose(-neg, got, 1e-9) {
			t.Errorf("t(%v, %v) = %v is not −t(%v, %v) = %v", 1-tc.p, tc.dof, neg, tc.p, tc.dof, got)
		}
	}
	if q, _ := StudentTQuantile(0.5, 7); q != 0 {
		t.Errorf("median = %v, want 0", q)
	}
}

// The quantile must invert the distribution function everywhere batch
// means might take it, including far tails. (Beyond 10⁴ dof it no longer
// uses the distribution function; the table test covers that range.)
func TestStudentTQuantile_InvertsCDF(t *testing.T) {
	for _, dof := range []float64{1, 1.5, 2, 3, 5, 9, 19, 29, 99, 1000, 9999} {
		for _, tail := range []float64{0.4, 0.1, 0.025, 0.005, 1e-4, 1e-8} {
			p := 1 - tail
			q, err := StudentTQuantile(p, dof)
			if err != nil {
				t.Fatal(err)
			}
			if got := tUpperTail(q, dof); !relClose(got, 1-p, 1e-12) {
				t.Errorf("dof %v: P(T > %v) = %v, want %v", dof, q, got, tail)
			}
		}
	}
}

// Normal quantiles: mpmath at 30 digits (√2·erfinv(2p − 1)).
func TestNormalQuantile(t *testing.T) {
	for _, tc := range []struct{ p, want float64 }{
		{0.975, 1.95996398454005424},
		{0.995, 2.57582930354890076},
		{1e-10, -6.36134090240405620},
		{0.5, 0},
	} {
		got, err := NormalQuantile(tc.p)
		if err != nil || math.Abs(got-tc.want) > 1e-14*math.Max(1, math.Abs(tc.want)) {
			t.Errorf("NormalQuantile(%v) = %.17g, %v; want %.17g", tc.p, got, err, tc.want)
		}
	}
}

func TestQuantile_InvalidInput(t *testing.T) {
	for _, tc := range []struct {
		p, dof float64
		name   string
	}{
		{0, 5, "p = 0"}, {1, 5, "p = 1"}, {math.NaN(), 5, "p = NaN"},
		{0.9, 0.5, "dof = 0.5"}, {0.9, math.NaN(), "dof = NaN"}, {0.9, -3, "dof = -3"},
	} {
		_, err := StudentTQuantile(tc.p, tc.dof)
		if !errors.Is(err, ErrInvalidParameter) || !contains(err.Error(), tc.name) {
			t.Errorf("StudentTQuantile(%v, %v): err = %v, want ErrInvalidParameter naming %q", tc.p, tc.dof, err, tc.name)
		}
	}
	if _, err := NormalQuantile(1.5); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("NormalQuantile(1.5): err = %v", err)
	}
}
