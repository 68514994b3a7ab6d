// Package report summarises a load-test run: latency histograms
// (HdrHistogram), offered and achieved rates, per-second series, the
// checks' verdicts and the queueing-theory comparison. It renders the
// summary as a text table, a JSON document and an HTML page with inline
// SVG charts.
package report

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/tsunagu/tsunagu/loadtest/check"
	"github.com/tsunagu/tsunagu/loadtest/scenario"
	"github.com/tsunagu/tsunagu/loadtest/sim"
)

// Report is one run, summarised. Durations in Latency and Series are real
// time; Waits have both clocks.
type Report struct {
	Scenario    string  `json:"scenario"`
	Description string  `json:"description,omitempty"`
	RunID       string  `json:"run_id"`
	Started     string  `json:"started"`
	TimeScale   float64 `json:"time_scale"`
	Agents      int     `json:"agents"`
	// Phases, real time since the start: arrivals, drain, end.
	ArrivalsEnd Seconds `json:"arrivals_end_s"`
	DrainEnd    Seconds `json:"drain_end_s"`
	End         Seconds `json:"end_s"`

	Counts Counts `json:"counts"`
	Rates  Rates  `json:"rates"`
	// Latency: arrival (intended send → arrival reply), routing (see
	// sim.Result.RoutingLatency), queue wait (real time).
	Latency map[string]Summary `json:"latency"`
	// RoutingClamped counts routing latencies clamped to zero (the offer
	// overtook a reply or release notice).
	RoutingClamped int `json:"routing_clamped"`
	// QueueWaitScenario is the queue wait in scenario time.
	QueueWaitScenario Summary        `json:"queue_wait_scenario"`
	Series            []Second       `json:"series"`
	Checks            []check.Result `json:"checks"`
	Erlang            *Erlang        `json:"erlang,omitempty"`
	Errors            map[string]int `json:"errors,omitempty"`
	// Pass: every check passed and, in Erlang mode, every measure was
	// within its band.
	Pass bool `json:"pass"`
}

// Seconds is a duration reported in seconds.
type Seconds float64

func secs(d time.Duration) Seconds { return Seconds(d.Seconds()) }

// Counts of what happened.
type Counts struct {
	Planned   int `json:"planned"`
	Sent      int `json:"sent"`
	Late      int `json:"late"`
	Queued    int `json:"queued"`
	Refused   int `json:"refused"`
	Failed    int `json:"failed"`
	Handled   int `json:"handled"`
	Abandoned int `json:"abandoned"`
	Unended   int `json:"unended"`
	Offers    int `json:"offers"`
	Rejected  int `json:"rejected"`
	Missed    int `json:"missed"`
	Events    int `json:"events"`
}

// Rates, in contacts per second.
type Rates struct {
	// Offered is the schedule's mean rate over the arrival period; Achieved
	// the rate at which arrivals actually left, over the time they took.
	OfferedReal      float64 `json:"offered_per_real_s"`
	AchievedReal     float64 `json:"achieved_per_real_s"`
	OfferedScenario  float64 `json:"offered_per_scenario_s"`
	AchievedScenario float64 `json:"achieved_per_scenario_s"`
}

// Summary is a latency distribution, in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Second is one real second of the run.
type Second struct {
	T         int     `json:"t"`
	Intended  int     `json:"intended"`
	Sent      int     `json:"sent"`
	Late      int     `json:"late"`
	Offers    int     `json:"offers"`
	Handled   int     `json:"handled"`
	Abandoned int     `json:"abandoned"`
	RouteP50  float64 `json:"routing_p50_ms"`
	RouteP99  float64 `json:"routing_p99_ms"`
	ArriveP99 float64 `json:"arrival_p99_ms"`
}

// histogram covers 1µs to one hour at three significant digits.
func histogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
}

// coarse is the per-second histogram: two significant digits, a tenth of
// the memory, plenty for a timeline.
func coarse() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 2)
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(min(max(1, int64(d/time.Microsecond)), h.HighestTrackableValue()))
}

func ms(us int64) float64 { return float64(us) / 1000 }

func summarise(h *hdrhistogram.Histogram) Summary {
	if h.TotalCount() == 0 {
		return Summary{}
	}
	return Summary{
		Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// Build summarises res; checks are the checks' verdicts and erl the
// queueing comparison (nil outside Erlang mode).
func Build(sc *scenario.Scenario, res *sim.Result, checks []check.Result, erl *Erlang) *Report {
	r := &Report{
		Scenario: sc.Name, Description: sc.Description, RunID: res.RunID, Started: res.Start.UTC().Format(time.RFC3339),
		TimeScale: sc.TimeScale, Agents: sc.TotalAgents(),
		ArrivalsEnd: secs(res.ArrivalsEnd), DrainEnd: secs(res.DrainEnd), End: secs(res.End),
		Latency: map[string]Summary{}, Checks: checks, Erlang: erl, Errors: res.Errors,
	}
	arrival, routingH, wait, waitScen := histogram(), histogram(), histogram(), histogram()
	seconds := int(res.End/time.Second) + 1
	perSec := make([]Second, seconds)
	routeSec := make([]*hdrhistogram.Histogram, seconds)
	arriveSec := make([]*hdrhistogram.Histogram, seconds)
	for i := range perSec {
		perSec[i].T = i
		routeSec[i], arriveSec[i] = coarse(), coarse()
	}
	at := func(d time.Duration) int { return min(max(0, int(d/time.Second)), seconds-1) }

	c := &r.Counts
	c.Planned = len(res.Contacts)
	c.Events = len(res.Trace.Events)
	var firstSent, lastSent time.Duration = sim.Unset, sim.Unset
	for i := range res.Contacts {
		k := &res.Contacts[i]
		perSec[at(k.Intended)].Intended++
		if k.Sent == sim.Unset {
			continue
		}
		c.Sent++
		perSec[at(k.Sent)].Sent++
		if firstSent == sim.Unset {
			firstSent = k.Sent
		}
		firstSent, lastSent = min(firstSent, k.Sent), max(lastSent, k.Sent)
		if k.Sent-k.Intended > res.LateThreshold {
			c.Late++
			perSec[at(k.Sent)].Late++
		}
		switch k.Status {
		case sim.Queued:
			c.Queued++
			record(arrival, k.Replied-k.Intended)
			record(arriveSec[at(k.Intended)], k.Replied-k.Intended)
		case sim.Refused:
			c.Refused++
		default:
			c.Failed++
		}
		switch k.Outcome {
		case check.Handled:
			c.Handled++
			perSec[at(k.Ended)].Handled++
		case check.Abandoned:
			c.Abandoned++
			perSec[at(k.Ended)].Abandoned++
		default:
			if k.Status == sim.Queued {
				c.Unended++
			}
		}
		if w, ok := k.QueueWait(); ok {
			record(wait, w)
			record(waitScen, time.Duration(float64(w)*sc.TimeScale))
		}
	}
	for _, o := range res.Offers {
		c.Offers++
		switch o.Decision {
		case sim.Reject:
			c.Rejected++
		case sim.Miss:
			c.Missed++
		}
		perSec[at(o.Received)].Offers++
		l, clamped := res.RoutingLatency(o)
		if clamped {
			r.RoutingClamped++
		}
		record(routingH, l)
		record(routeSec[at(o.Received)], l)
	}
	for i := range perSec {
		if h := routeSec[i]; h.TotalCount() > 0 {
			perSec[i].RouteP50, perSec[i].RouteP99 = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(99))
		}
		if h := arriveSec[i]; h.TotalCount() > 0 {
			perSec[i].ArriveP99 = ms(h.ValueAtQuantile(99))
		}
	}
	r.Series = perSec
	r.Latency["arrival"] = summarise(arrival)
	r.Latency["routing"] = summarise(routingH)
	r.Latency["queue_wait"] = summarise(wait)
	r.QueueWaitScenario = summarise(waitScen)

	period := sc.Real(sc.Duration.D())
	r.Rates.OfferedReal = float64(c.Planned) / period.Seconds()
	if c.Sent > 1 && lastSent > firstSent {
		// Sends span from the first to the last; scale to the whole
		// period so a run that kept up reads the same as the schedule.
		r.Rates.AchievedReal = float64(c.Sent) / max(period, lastSent-firstSent).Seconds()
	}
	r.Rates.OfferedScenario = r.Rates.OfferedReal / sc.TimeScale
	r.Rates.AchievedScenario = r.Rates.AchievedReal / sc.TimeScale

	r.Pass = true
	for _, ch := range checks {
		r.Pass = r.Pass && ch.OK()
	}
	if erl != nil {
		r.Pass = r.Pass && erl.Pass
	}
	return r
}
