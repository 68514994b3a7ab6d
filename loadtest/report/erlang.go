package report

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/tsunagu/tsunagu/loadtest/check"
	"github.com/tsunagu/tsunagu/loadtest/queueing"
	"github.com/tsunagu/tsunagu/loadtest/scenario"
	"github.com/tsunagu/tsunagu/loadtest/sim"
)

// WaitEpsilon is the real-time wait under which a contact counts as served
// at once: it covers the harness's and the node's decision time, so that
// "waited" means "found every agent busy". In scenario time it is
// WaitEpsilon × time scale, and the prediction is taken at that threshold,
// so the comparison stays exact.
const WaitEpsilon = 50 * time.Millisecond

// Erlang is the queueing-theory comparison of an Erlang-mode run.
type Erlang struct {
	Model       string  `json:"model"`
	Agents      int     `json:"agents"`
	ArrivalRate float64 `json:"arrival_rate_per_scenario_s"`
	HandleTime  float64 `json:"handle_time_s"`
	// Patience is the mean patience, scenario seconds; 0 for Erlang C.
	Patience  float64 `json:"patience_s,omitempty"`
	Occupancy float64 `json:"occupancy"`
	// Contacts measured (arrived after the warm-up, outcome known).
	Contacts int       `json:"contacts"`
	Measures []Measure `json:"measures"`
	// WaitCCDF is P(W > t), measured and predicted, t in scenario seconds.
	WaitCCDF []CCDFPoint `json:"wait_ccdf"`
	Pass     bool        `json:"pass"`
}

// Measure is one measured quantity against its prediction.
type Measure struct {
	Name      string            `json:"name"`
	Predicted float64           `json:"predicted"`
	Measured  queueing.Interval `json:"measured"`
	Slack     float64           `json:"slack"`
	Pass      bool              `json:"pass"`
	Verdict   string            `json:"verdict,omitempty"`
}

// CCDFPoint is one point of the wait distribution chart.
type CCDFPoint struct {
	T         float64 `json:"t_s"`
	Measured  float64 `json:"measured"`
	Predicted float64 `json:"predicted"`
}

// Sample is one measured contact of an Erlang run, in arrival order:
// its wait W in scenario seconds (to the answer, or to the hang-up if
// abandoned) and whether it abandoned.
type Sample struct {
	Wait      float64
	Abandoned bool
}

// Samples extracts the measured contacts of an Erlang-mode run: arrived
// after the warm-up, accepted, with a known end, in arrival order.
func Samples(sc *scenario.Scenario, res *sim.Result) []Sample {
	warm := sc.Real(sc.Erlang.Warmup.D())
	idx := make([]int, 0, len(res.Contacts))
	for i := range res.Contacts {
		if res.Contacts[i].Intended >= warm {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return res.Contacts[idx[a]].Intended < res.Contacts[idx[b]].Intended })
	out := make([]Sample, 0, len(idx))
	for _, i := range idx {
		c := &res.Contacts[i]
		w, ok := c.QueueWait()
		if !ok {
			continue
		}
		out = append(out, Sample{Wait: w.Seconds() * sc.TimeScale, Abandoned: c.Outcome == check.Abandoned})
	}
	return out
}

// Model returns the queueing model of an Erlang-mode scenario: Erlang C
// without patience, Erlang A with it.
func Model(sc *scenario.Scenario) (*queueing.Prediction, *Erlang, error) {
	a, ar := sc.Agents[0], sc.Arrivals[0]
	e := &Erlang{
		Agents:      a.Count,
		ArrivalRate: sc.RateAt(ar, ar.Start.D()),
		HandleTime:  a.Handle.Mean.D().Seconds(),
	}
	e.Occupancy = e.ArrivalRate * e.HandleTime / float64(e.Agents)
	var p *queueing.Prediction
	var err error
	if ar.Patience.Never() {
		e.Model = "Erlang C (M/M/c)"
		p, err = queueing.ErlangC{ArrivalRate: e.ArrivalRate, HandleTime: e.HandleTime, Agents: e.Agents}.Predict()
	} else {
		e.Model = "Erlang A (M/M/c+M)"
		e.Patience = ar.Patience.Mean.D().Seconds()
		p, err = queueing.ErlangA{ArrivalRate: e.ArrivalRate, HandleTime: e.HandleTime, Patience: e.Patience, Agents: e.Agents}.Predict()
	}
	return p, e, err
}

// PWaitLonger is the predicted P(W > t) for t in scenario seconds: the
// offered wait V beyond t and, with abandonment, patience beyond t too (V
// and patience are independent, and W = min(V, patience)).
func PWaitLonger(p *queueing.Prediction, patience, t float64) float64 {
	v := p.PWaitExceeds(t)
	if patience > 0 {
		v *= math.Exp(-t / patience)
	}
	return v
}

// Compare checks the samples against the model of sc. Every measure is a
// batch-means confidence interval over per-contact values in arrival order
// (consecutive contacts are correlated, so intervals that assume
// independence would be too narrow), and passes when the prediction lies
// within it widened by the scenario's band.
func Compare(sc *scenario.Scenario, samples []Sample) (*Erlang, error) {
	p, e, err := Model(sc)
	if err != nil {
		return nil, err
	}
	cfg := sc.Erlang
	e.Contacts = len(samples)
	if len(samples) < cfg.Batches {
		return nil, fmt.Errorf("report: erlang: %d contacts measured; need at least %d (one per batch)", len(samples), cfg.Batches)
	}
	eps := WaitEpsilon.Seconds() * sc.TimeScale
	threshold := cfg.Threshold.D().Seconds()
	waitSlack := queueing.Band{Rel: cfg.Rel, Abs: cfg.AbsWait.D().Seconds()}
	probSlack := queueing.Band{Rel: cfg.Rel, Abs: cfg.Abs}

	series := func(f func(Sample) float64) []float64 {
		out := make([]float64, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		return out
	}
	ind := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	type spec struct {
		name      string
		predicted float64
		values    []float64
		band      queueing.Band
	}
	specs := []spec{
		{fmt.Sprintf("P(wait > %.3gs)", eps), PWaitLonger(p, e.Patience, eps), series(func(s Sample) float64 { return ind(s.Wait > eps) }), probSlack},
		{fmt.Sprintf("service level (answered within %gs)", threshold), p.ServiceLevel(threshold), series(func(s Sample) float64 { return ind(!s.Abandoned && s.Wait <= threshold) }), probSlack},
		{"mean wait E[W] (s)", p.MeanWait, series(func(s Sample) float64 { return s.Wait }), waitSlack},
	}
	if e.Patience > 0 {
		specs = append(specs, spec{"P(abandon)", p.PAbandon, series(func(s Sample) float64 { return ind(s.Abandoned) }), probSlack})
	}
	var answered []float64
	for _, s := range samples {
		if !s.Abandoned {
			answered = append(answered, s.Wait)
		}
	}
	if len(answered) >= cfg.Batches {
		specs = append(specs, spec{"mean wait answered E[W | answered] (s)", p.MeanWaitServed, answered, waitSlack})
	}
	e.Pass = true
	for _, sp := range specs {
		iv, err := queueing.BatchMeans(sp.values, cfg.Batches, cfg.Confidence)
		if err != nil {
			return nil, fmt.Errorf("report: erlang: %s: %w", sp.name, err)
		}
		m := Measure{Name: sp.name, Predicted: sp.predicted, Measured: iv, Slack: sp.band.Rel*math.Abs(sp.predicted) + sp.band.Abs, Pass: true}
		if err := sp.band.Check(sp.name, sp.predicted, iv); err != nil {
			if !errors.Is(err, queueing.ErrOutsideBand) {
				return nil, err
			}
			m.Pass, m.Verdict = false, err.Error()
			e.Pass = false
		}
		e.Measures = append(e.Measures, m)
	}
	e.WaitCCDF = ccdf(p, e.Patience, samples)
	return e, nil
}

// ccdf tabulates P(W > t), measured and predicted, on 60 points up to the
// measured 99.5th percentile of W.
func ccdf(p *queueing.Prediction, patience float64, samples []Sample) []CCDFPoint {
	waits := make([]float64, len(samples))
	for i, s := range samples {
		waits[i] = s.Wait
	}
	sort.Float64s(waits)
	top := waits[min(len(waits)-1, int(0.995*float64(len(waits))))]
	if top <= 0 {
		top = 1
	}
	const points = 60
	out := make([]CCDFPoint, 0, points+1)
	for k := 0; k <= points; k++ {
		t := top * float64(k) / points
		above := len(waits) - sort.SearchFloat64s(waits, math.Nextafter(t, math.Inf(1)))
		out = append(out, CCDFPoint{T: t, Measured: float64(above) / float64(len(waits)), Predicted: PWaitLonger(p, patience, t)})
	}
	return out
}
