package queueing

import (
	"fmt"
	"math"
)

// Interval is a two-sided confidence interval around a measured value.
type Interval struct {
	// Estimate is the point estimate: the observed proportion or mean.
	Estimate float64
	// Lo and Hi bound the interval; Lo ≤ Estimate ≤ Hi.
	Lo, Hi float64
	// Confidence is the nominal coverage, e.g. 0.99.
	Confidence float64
}

// String renders the interval for reports, e.g. "0.308 [0.2553, 0.3662] (95% CI)".
func (iv Interval) String() string {
	return fmt.Sprintf("%.4g [%.4g, %.4g] (%.4g%% CI)", iv.Estimate, iv.Lo, iv.Hi, 100*iv.Confidence)
}

// Wilson returns the Wilson score interval for a proportion observed as
// successes out of trials, at the given two-sided confidence in (0, 1).
//
// Wilson rather than the textbook p̂ ± z·√(p̂(1−p̂)/n): its coverage stays
// near nominal for proportions close to 0 or 1 (abandonment rates of a few
// percent, service levels of 99%), and it never leaves [0, 1].
func Wilson(successes, trials int, confidence float64) (Interval, error) {
	if trials < 1 {
		return Interval{}, fmt.Errorf("%w: trials = %d; must be at least 1", ErrInvalidParameter, trials)
	}
	if successes < 0 || successes > trials {
		return Interval{}, fmt.Errorf("%w: successes = %d; must be between 0 and trials = %d", ErrInvalidParameter, successes, trials)
	}
	if err := probability("confidence", confidence); err != nil {
		return Interval{}, err
	}
	z := -normalQuantile((1 - confidence) / 2)
	n := float64(trials)
	p := float64(successes) / n
	z2n := z * z / n
	centre := (p + z2n/2) / (1 + z2n)
	half := z / (1 + z2n) * math.Sqrt(p*(1-p)/n+z2n/(4*n))
	// The interval contains p̂ and lies in [0, 1]; the clamps only undo
	// rounding at p̂ = 0 or 1.
	return Interval{
		Estimate:   p,
		Lo:         max(0, min(p, centre-half)),
		Hi:         min(1, max(p, centre+half)),
		Confidence: confidence,
	}, nil
}

// BatchMeans returns a confidence interval for the steady-state mean of a
// per-contact series, values in arrival order (waits, or 0/1 indicators
// such as "abandoned").
//
// Consecutive contacts in a queue are strongly correlated, so the i.i.d.
// formula would understate the error many times over. Batch means splits
// the series into batches contiguous consecutive blocks of equal size, treats
// the block means as approximately independent and normal, and uses
// Student's t with batches − 1 degrees of freedom. The first len(values) mod
// batches values are dropped so the blocks are equal; they are the oldest,
// the ones most affected by warm-up. Estimate is the mean of the values
// used. Between 10 and 30 batches is the usual choice: fewer widens the t
// quantile, more makes the blocks too short to be independent.
func BatchMeans(values []float64, batches int, confidence float64) (Interval, error) {
	if batches < 2 {
		return Interval{}, fmt.Errorf("%w: batches = %d; must be at least 2", ErrInvalidParameter, batches)
	}
	if len(values) < batches {
		return Interval{}, fmt.Errorf("%w: len(values) = %d; must be at least batches = %d", ErrInvalidParameter, len(values), batches)
	}
	if err := probability("confidence", confidence); err != nil {
		return Interval{}, err
	}
	size := len(values) / batches
	skip := len(values) - size*batches
	means := make([]float64, batches)
	for i := range means {
		sum := 0.0
		for j, v := range values[skip+i*size : skip+(i+1)*size] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return Interval{}, fmt.Errorf("%w: values[%d] = %v; must be finite", ErrInvalidParameter, skip+i*size+j, v)
			}
			sum += v
		}
		means[i] = sum / float64(size)
	}
	k := float64(batches)
	mean := 0.0
	for _, m := range means {
		mean += m
	}
	mean /= k
	ss := 0.0
	for _, m := range means {
		ss += (m - mean) * (m - mean)
	}
	t, err := StudentTQuantile(1-(1-confidence)/2, k-1)
	if err != nil {
		return Interval{}, err
	}
	half := t * math.Sqrt(ss/(k-1)/k)
	return Interval{Estimate: mean, Lo: mean - half, Hi: mean + half, Confidence: confidence}, nil
}

// Band is the slack allowed between a prediction and a measured interval.
// A finite run is biased as well as noisy — it starts empty, and the last
// contacts see a draining system — and a confidence interval covers only
// the noise. The slack covers the bias: predicted passes if it lies within
// Rel·|predicted| + Abs of the interval.
//
// The relative part scales with the prediction rather than the measurement
// so that the verdict does not depend on the noise it is meant to absorb.
type Band struct {
	// Rel is the relative slack, a fraction of |predicted|.
	Rel float64
	// Abs is the absolute slack, in the unit of the measure.
	Abs float64
}

// Check returns nil if predicted lies within the measured interval widened
// by the band's slack. Otherwise it returns an error wrapping ErrOutsideBand
// whose message names what, both values and the miss, ready for a report,
// e.g.
//
//	queueing: prediction outside measured band: P(abandon): predicted 0.152
//	is above measured 0.1353 [0.1301, 0.1405] (99% CI) widened by ±0.0086
//	to [0.1215, 0.1491], by 0.0029
//
// Invalid input (NaN anywhere, negative slack, Lo > Hi) wraps
// ErrInvalidParameter instead.
func (b Band) Check(what string, predicted float64, measured Interval) error {
	if math.IsNaN(b.Rel) || math.IsInf(b.Rel, 0) || b.Rel < 0 {
		return fmt.Errorf("%w: Band.Rel = %v; must be a finite number ≥ 0", ErrInvalidParameter, b.Rel)
	}
	if math.IsNaN(b.Abs) || math.IsInf(b.Abs, 0) || b.Abs < 0 {
		return fmt.Errorf("%w: Band.Abs = %v; must be a finite number ≥ 0", ErrInvalidParameter, b.Abs)
	}
	if math.IsNaN(predicted) {
		return fmt.Errorf("%w: %s: predicted = NaN", ErrInvalidParameter, what)
	}
	if math.IsNaN(measured.Lo) || math.IsNaN(measured.Hi) || measured.Lo > measured.Hi {
		return fmt.Errorf("%w: %s: measured interval %v is not an interval", ErrInvalidParameter, what, measured)
	}
	slack := b.Rel*math.Abs(predicted) + b.Abs
	lo, hi := measured.Lo-slack, measured.Hi+slack
	var side string
	var miss float64
	switch {
	case predicted < lo:
		side, miss = "below", lo-predicted
	case predicted > hi:
		side, miss = "above", predicted-hi
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: predicted %.4g is %s measured %v widened by ±%.4g to [%.4g, %.4g], by %.4g",
		ErrOutsideBand, what, predicted, side, measured, slack, lo, hi, miss)
}
