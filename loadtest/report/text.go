package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText writes the summary table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("scenario\t%s (run %s, started %s)", r.Scenario, r.RunID, r.Started)
	p("time scale\t%g (1 real second = %g scenario seconds)", r.TimeScale, r.TimeScale)
	p("agents\t%d", r.Agents)
	p("real time\tarrivals %.1fs, drain until %.1fs, end %.1fs", r.ArrivalsEnd, r.DrainEnd, r.End)
	p("scenario time\tarrivals %.0fs, drain until %.0fs, end %.0fs", float64(r.ArrivalsEnd)*r.TimeScale, float64(r.DrainEnd)*r.TimeScale, float64(r.End)*r.TimeScale)
	c := r.Counts
	p("")
	p("contacts\tplanned %d, sent %d (late %d), queued %d, refused %d, failed %d", c.Planned, c.Sent, c.Late, c.Queued, c.Refused, c.Failed)
	p("\thandled %d, abandoned %d, unended %d", c.Handled, c.Abandoned, c.Unended)
	p("offers\t%d (rejected %d, missed %d); %d events observed", c.Offers, c.Rejected, c.Missed, c.Events)
	p("rate\toffered %.1f/s, achieved %.1f/s real (%.3g/s, %.3g/s scenario)", r.Rates.OfferedReal, r.Rates.AchievedReal, r.Rates.OfferedScenario, r.Rates.AchievedScenario)
	p("")
	p("latency (real ms)\tcount\tmean\tp50\tp90\tp99\tp99.9\tmax")
	row := func(name string, s Summary) {
		p("%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f", name, s.Count, s.Mean, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	row("arrival (intended send → reply)", r.Latency["arrival"])
	row("routing (free+queued → offer)", r.Latency["routing"])
	row("queue wait", r.Latency["queue_wait"])
	s := r.QueueWaitScenario
	p("queue wait (scenario s)\t%d\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g\t%.3g", s.Count, s.Mean/1000, s.P50/1000, s.P90/1000, s.P99/1000, s.P999/1000, s.Max/1000)
	p("routing latencies clamped to 0\t%d", r.RoutingClamped)
	if len(r.Errors) > 0 {
		p("")
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p("request errors\t%s: %d", k, r.Errors[k])
		}
	}
	if e := r.Erlang; e != nil {
		p("")
		p("%s\tc=%d λ=%.4g/s AHT=%.4gs patience=%.4gs ρ=%.3f, %d contacts measured", e.Model, e.Agents, e.ArrivalRate, e.HandleTime, e.Patience, e.Occupancy, e.Contacts)
		p("measure\tpredicted\tmeasured [CI]\t± slack\tverdict")
		for _, m := range e.Measures {
			verdict := "ok"
			if !m.Pass {
				verdict = "OUTSIDE BAND"
			}
			p("%s\t%.4g\t%s\t%.3g\t%s", m.Name, m.Predicted, m.Measured, m.Slack, verdict)
		}
	}
	p("")
	p("check\tchecked\tviolations")
	for _, ch := range r.Checks {
		verdict := "ok"
		if !ch.OK() {
			verdict = "FAIL"
		}
		p("%s\t%d\t%d %s", ch.Name, ch.Checked, ch.Count, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, ch := range r.Checks {
		if ch.OK() {
			continue
		}
		fmt.Fprintf(w, "\n%s FAILED (%s): %d violations\n", ch.Name, ch.What, ch.Count)
		for _, d := range ch.Details {
			fmt.Fprintf(w, "  - %s\n", d)
		}
	}
	if e := r.Erlang; e != nil {
		for _, m := range e.Measures {
			if !m.Pass {
				fmt.Fprintf(w, "\n%s\n", m.Verdict)
			}
		}
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "\n%s\n", verdict)
	return err
}

// Failures lists, one line each, why the run failed.
func (r *Report) Failures() []string {
	var out []string
	for _, ch := range r.Checks {
		if !ch.OK() {
			out = append(out, fmt.Sprintf("check %s: %d violations", ch.Name, ch.Count))
		}
	}
	if r.Erlang != nil {
		for _, m := range r.Erlang.Measures {
			if !m.Pass {
				out = append(out, "erlang: "+strings.TrimPrefix(m.Verdict, "queueing: "))
			}
		}
	}
	return out
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
