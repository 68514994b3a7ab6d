package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"os"
	"strings"
)

// series is one line of a chart.
type series struct {
	name   string
	colour string
	x, y   []float64
}

// chart renders an SVG line chart with axes, ticks and a legend.
func chart(title, xLabel, yLabel string, lines []series) template.HTML {
	const w, h, left, right, top, bottom = 860.0, 300.0, 70.0, 20.0, 30.0, 45.0
	xmax, ymax := 0.0, 0.0
	for _, s := range lines {
		for i := range s.x {
			xmax, ymax = math.Max(xmax, s.x[i]), math.Max(ymax, s.y[i])
		}
	}
	if xmax == 0 {
		xmax = 1
	}
	if ymax == 0 {
		ymax = 1
	}
	ymax = niceCeil(ymax)
	px := func(x float64) float64 { return left + x/xmax*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - y/ymax*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="11">`, w, h)
	fmt.Fprintf(&b, `<text x="%g" y="18" font-size="13" font-weight="bold">%s</text>`, left, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#444"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#444"/>`, left, top, left, h-bottom)
	for k := 0; k <= 5; k++ {
		yv, xv := ymax*float64(k)/5, xmax*float64(k)/5
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end">%.3g</text>`, left, py(yv), w-right, py(yv), left-4, py(yv)+4, yv)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%.3g</text>`, px(xv), h-bottom+15, xv)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`, (left+w-right)/2, h-8, template.HTMLEscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="14" y="%g" text-anchor="middle" transform="rotate(-90 14 %g)">%s</text>`, (top+h-bottom)/2, (top+h-bottom)/2, template.HTMLEscapeString(yLabel))
	for i, s := range lines {
		var pts []string
		for k := range s.x {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.x[k]), py(s.y[k])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.colour, strings.Join(pts, " "))
		lx := w - right - 200
		ly := top + 14*float64(i)
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/><text x="%g" y="%g">%s</text>`, lx, ly, lx+18, ly, s.colour, lx+24, ly+4, template.HTMLEscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>tsunagu load test: {{.R.Scenario}}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.fail{color:#b00;font-weight:bold}.ok{color:#080}pre{background:#f8f8f8;padding:1em;overflow-x:auto}</style>
</head><body>
<h1>{{.R.Scenario}} <span class="{{if .R.Pass}}ok{{else}}fail{{end}}">{{if .R.Pass}}PASS{{else}}FAIL{{end}}</span></h1>
<p>{{.R.Description}}</p>
<p>Run {{.R.RunID}}, started {{.R.Started}}; {{.R.Agents}} agents; time scale {{.R.TimeScale}} (one real second is {{.R.TimeScale}} scenario seconds). Charts are in real time.</p>
<pre>{{.Text}}</pre>
{{.Rates}}
{{.Routing}}
{{if .CCDF}}{{.CCDF}}
<p>Wait-time distribution P(W &gt; t) of measured contacts (after the warm-up), scenario seconds, against {{.R.Erlang.Model}}.</p>{{end}}
</body></html>
`))

// WriteHTML writes the report as an HTML page with inline SVG charts:
// rates and routing latency over time, and in Erlang mode the wait
// distribution against theory.
func (r *Report) WriteHTML(path string) error {
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		return err
	}
	n := len(r.Series)
	t := make([]float64, n)
	col := func(f func(Second) float64) []float64 {
		out := make([]float64, n)
		for i, s := range r.Series {
			out[i] = f(s)
		}
		return out
	}
	for i := range t {
		t[i] = float64(i)
	}
	data := struct {
		R                    *Report
		Text                 string
		Rates, Routing, CCDF template.HTML
	}{R: r, Text: text.String()}
	data.Rates = chart("Contacts per second", "real time (s)", "per second", []series{
		{"arrivals intended", "#999", t, col(func(s Second) float64 { return float64(s.Intended) })},
		{"arrivals sent", "#1f77b4", t, col(func(s Second) float64 { return float64(s.Sent) })},
		{"offers", "#2ca02c", t, col(func(s Second) float64 { return float64(s.Offers) })},
		{"handled", "#9467bd", t, col(func(s Second) float64 { return float64(s.Handled) })},
		{"abandoned", "#d62728", t, col(func(s Second) float64 { return float64(s.Abandoned) })},
	})
	data.Routing = chart("Latency per second", "real time (s)", "ms", []series{
		{"routing p50", "#2ca02c", t, col(func(s Second) float64 { return s.RouteP50 })},
		{"routing p99", "#d62728", t, col(func(s Second) float64 { return s.RouteP99 })},
		{"arrival p99", "#1f77b4", t, col(func(s Second) float64 { return s.ArriveP99 })},
	})
	if e := r.Erlang; e != nil && len(e.WaitCCDF) > 0 {
		var x, meas, pred []float64
		for _, p := range e.WaitCCDF {
			x, meas, pred = append(x, p.T), append(meas, p.Measured), append(pred, p.Predicted)
		}
		data.CCDF = chart("Wait distribution: measured vs "+e.Model, "wait t (scenario s)", "P(W > t)", []series{
			{"measured", "#1f77b4", x, meas},
			{"predicted", "#d62728", x, pred},
		})
	}
	var out bytes.Buffer
	if err := page.Execute(&out, data); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}
