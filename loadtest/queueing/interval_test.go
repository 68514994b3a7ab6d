package queueing

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// Wilson score intervals. 81 of 263 at 95% → [0.2553, 0.3662] is the
// example from the brief; it and the others were recomputed independently
// with mpmath at 30 digits from the closed form
// (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		successes, trials int
		confidence        float64
		lo, hi            float64
	}{
		{81, 263, 0.95, 0.255288519878274226, 0.366209576982800070},
		{0, 10, 0.95, 0, 0.277532799862889253},
		{10, 10, 0.95, 0.722467200137110747, 1},
		{950, 1000, 0.99, 0.929093027309466293, 0.964974924277467559},
	} {
		iv, err := Wilson(tc.successes, tc.trials, tc.confidence)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(iv.Lo-tc.lo) > 1e-14 || math.Abs(iv.Hi-tc.hi) > 1e-14 {
			t.Errorf("Wilson(%d, %d, %v) = %v, want [%.15g, %.15g]", tc.successes, tc.trials, tc.confidence, iv, tc.lo, tc.hi)
		}
		if want := float64(tc.successes) / float64(tc.trials); iv.Estimate != want || iv.Lo > want || iv.Hi < want {
			t.Errorf("Wilson(%d, %d): estimate %v not the observed %v inside the interval", tc.successes, tc.trials, iv.Estimate, want)
		}
	}
	iv, _ := Wilson(81, 263, 0.95)
	if got := iv.String(); got != "0.308 [0.2553, 0.3662] (95% CI)" {
		t.Errorf("String() = %q", got)
	}
}

func TestBatchMeans_KnownBatches(t *testing.T) {
	// Ten batches of three with means 1..10, behind two warm-up outliers
	// that the remainder rule must drop (32 = 10·3 + 2).
	values := []float64{1000, -1000}
	for i := 1; i <= 10; i++ {
		values = append(values, float64(i)-1, float64(i), float64(i)+1)
	}
	iv, err := BatchMeans(values, 10, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	// Mean 5.5; sample variance of 1..10 is 55/6; t(0.975, 9) = 2.262157.
	half := 2.2621571627982053 * math.Sqrt(55.0/6/10)
	if !relClose(iv.Estimate, 5.5, 1e-15) || !relClose(iv.Lo, 5.5-half, 1e-12) || !relClose(iv.Hi, 5.5+half, 1e-12) {
		t.Errorf("BatchMeans = %v, want 5.5 ± %v", iv, half)
	}
}

// Coverage: for independent normal data the 90% interval must contain the
// true mean about 90% of the time (2,000 seeded replications; the binomial
// standard error is 0.7%).
func TestBatchMeans_Coverage(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	const reps = 2000
	hits := 0
	values := make([]float64, 200)
	for range reps {
		for i := range values {
			values[i] = 3 + 2*r.NormFloat64()
		}
		iv, err := BatchMeans(values, 10, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		if iv.Lo <= 3 && 3 <= iv.Hi {
			hits++
		}
	}
	if cov := float64(hits) / reps; math.Abs(cov-0.9) > 0.025 {
		t.Errorf("coverage %.3f, want 0.90 ± 0.025", cov)
	}
}

func TestBatchMeans_InvalidInput(t *testing.T) {
	for _, tc := range []struct {
		values     []float64
		batches    int
		confidence float64
		name       string
	}{
		{[]float64{1, 2, 3}, 1, 0.9, "batches = 1"},
		{[]float64{1, 2, 3}, 4, 0.9, "len(values) = 3"},
		{[]float64{1, 2, 3, 4}, 2, 1, "confidence = 1"},
		{[]float64{1, 2, math.NaN(), 4}, 2, 0.9, "values[2] = NaN"},
	} {
		_, err := BatchMeans(tc.values, tc.batches, tc.confidence)
		if !errors.Is(err, ErrInvalidParameter) || !contains(err.Error(), tc.name) {
			t.Errorf("BatchMeans(%v, %d, %v): err = %v, want one naming %q", tc.values, tc.batches, tc.confidence, err, tc.name)
		}
	}
	for _, tc := range []struct {
		successes, trials int
		confidence        float64
		name              string
	}{
		{1, 0, 0.95, "trials = 0"}, {-1, 10, 0.95, "successes = -1"}, {11, 10, 0.95, "successes = 11"},
		{5, 10, math.NaN(), "confidence = NaN"},
	} {
		_, err := Wilson(tc.successes, tc.trials, tc.confidence)
		if !errors.Is(err, ErrInvalidParameter) || !contains(err.Error(), tc.name) {
			t.Errorf("Wilson(%d, %d, %v): err = %v, want one naming %q", tc.successes, tc.trials, tc.confidence, err, tc.name)
		}
	}
}

func TestBand_Check(t *testing.T) {
	measured := Interval{Estimate: 0.1353, Lo: 0.1301, Hi: 0.1405, Confidence: 0.99}
	band := Band{Rel: 0.05, Abs: 0.001}
	for _, tc := range []struct {
		predicted float64
		side      string // "" for inside
	}{
		{0.1353, ""},
		// The edges solve p = Hi + Rel·p + Abs and p = Lo − Rel·p − Abs.
		{(0.1405+0.001)/(1-0.05) - 1e-9, ""},
		{(0.1405+0.001)/(1-0.05) + 1e-9, "above"},
		{(0.1301-0.001)/(1+0.05) + 1e-9, ""},
		{(0.1301-0.001)/(1+0.05) - 1e-9, "below"},
	} {
		err := band.Check("P(abandon)", tc.predicted, measured)
		if tc.side == "" {
			if err != nil {
				t.Errorf("predicted %v: unexpected %v", tc.predicted, err)
			}
			continue
		}
		if !errors.Is(err, ErrOutsideBand) {
			t.Errorf("predicted %v: err = %v, want ErrOutsideBand", tc.predicted, err)
			continue
		}
		if !contains(err.Error(), "P(abandon): predicted ") || !contains(err.Error(), " is "+tc.side+" measured 0.1353 [0.1301, 0.1405] (99% CI)") {
			t.Errorf("predicted %v: unreadable reason %q", tc.predicted, err)
		}
	}
	err := band.Check("P(abandon)", 0.1520, measured)
	const want = "queueing: prediction outside measured band: P(abandon): predicted 0.152 is above measured 0.1353 [0.1301, 0.1405] (99% CI) widened by ±0.0086 to [0.1215, 0.1491], by 0.0029"
	if err == nil || err.Error() != want {
		t.Errorf("reason:\n got %v\nwant %s", err, want)
	}

	for _, tc := range []struct {
		band      Band
		predicted float64
		measured  Interval
		name      string
	}{
		{Band{Rel: -0.1}, 1, measured, "Band.Rel = -0.1"},
		{Band{Abs: math.NaN()}, 1, measured, "Band.Abs = NaN"},
		{band, math.NaN(), measured, "predicted = NaN"},
		{band, 1, Interval{Lo: 2, Hi: 1}, "is not an interval"},
	} {
		err := tc.band.Check("x", tc.predicted, tc.measured)
		if !errors.Is(err, ErrInvalidParameter) || !contains(err.Error(), tc.name) {
			t.Errorf("Check(%+v, %v, %v): err = %v, want one naming %q", tc.band, tc.predicted, tc.measured, err, tc.name)
		}
	}
}

// Every model rejects bad parameters with an error that names the field and
// the value.
func TestModels_InvalidParameters(t *testing.T) {
	good := ErlangA{ArrivalRate: 1, HandleTime: 1, Patience: 1, Agents: 2}
	for _, tc := range []struct {
		mutate func(*ErlangA)
		name   string
	}{
		{func(q *ErlangA) { q.Agents = 0 }, "Agents = 0"},
		{func(q *ErlangA) { q.Agents = -3 }, "Agents = -3"},
		{func(q *ErlangA) { q.Agents = 1 << 30 }, "Agents = 1073741824"},
		{func(q *ErlangA) { q.ArrivalRate = -1 }, "ArrivalRate = -1"},
		{func(q *ErlangA) { q.ArrivalRate = 0 }, "ArrivalRate = 0"},
		{func(q *ErlangA) { q.ArrivalRate = math.NaN() }, "ArrivalRate = NaN"},
		{func(q *ErlangA) { q.HandleTime = math.NaN() }, "HandleTime = NaN"},
		{func(q *ErlangA) { q.HandleTime = math.Inf(1) }, "HandleTime = +Inf"},
		{func(q *ErlangA) { q.Patience = -2.5 }, "Patience = -2.5"},
		{func(q *ErlangA) { q.Patience = math.NaN() }, "Patience = NaN"},
	} {
		q := good
		tc.mutate(&q)
		_, err := q.Predict()
		if !errors.Is(err, ErrInvalidParameter) || !contains(err.Error(), tc.name) {
			t.Errorf("ErlangA %+v: err = %v, want ErrInvalidParameter naming %q", q, err, tc.name)
		}
		if tc.name[0] == 'P' {
			continue // Erlang C has no patience
		}
		c := ErlangC{ArrivalRate: q.ArrivalRate, HandleTime: q.HandleTime, Agents: q.Agents}
		_, err = c.Predict()
		if !errors.Is(err, ErrInvalidParameter) || !contains(err.Error(), tc.name) {
			t.Errorf("ErlangC %+v: err = %v, want ErrInvalidParameter naming %q", c, err, tc.name)
		}
	}
}
