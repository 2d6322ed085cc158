package gameday

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/verdict"
)

// MetricVerdict marks a drill that passed in its previous run and fails (or errors) now.
const MetricVerdict = "verdict"

// metricInfo is a followed metric (check.TrendMetrics) for the chart and the tables.
type metricInfo struct {
	check.Metric
}

func (m metricInfo) value(k KeyNumbers) *float64 { return k[m.Name] }

// metrics are the metrics the history follows.
func metrics() []metricInfo {
	var out []metricInfo
	for _, m := range check.TrendMetrics() {
		out = append(out, metricInfo{m})
	}
	return out
}

// RegressionRule decides when a number is a regression: worse than the median of the same
// drill's last Window runs by more than Relative of that median and by more than MinIncrease.
type RegressionRule struct {
	// Window is how many earlier runs of the drill form the baseline (their median).
	Window int
	// Relative is the increase over the baseline, as a fraction of it, that counts (0.5 = 50%).
	Relative float64
	// MinIncrease is the smallest absolute increase that counts, per metric (noise floor).
	MinIncrease map[string]float64
}

// DefaultRegressionRule: worse than the median of the last 5 runs by 50% and by at least each
// metric's noise floor (check.Metric.NoiseFloor: 0.5 s of DNS failover, 1 s of RTO, a lost write
// after none).
func DefaultRegressionRule() RegressionRule {
	floors := map[string]float64{}
	for _, m := range check.TrendMetrics() {
		floors[m.Name] = m.NoiseFloor
	}
	return RegressionRule{Window: 5, Relative: 0.5, MinIncrease: floors}
}

func (r RegressionRule) isZero() bool {
	return r.Window == 0 && r.Relative == 0 && r.MinIncrease == nil
}

// Regression is one number (or verdict) that got worse.
type Regression struct {
	// RunID is the run where it got worse.
	RunID string `json:"run_id"`
	// Drill is the drill's name; Position its place among the run's drills (0-based; a plan may
	// run one drill twice); Metric the metric (or MetricVerdict).
	Drill    string `json:"drill"`
	Position int    `json:"position"`
	Metric   string `json:"metric"`
	// Value is the new value; Baseline the median it is compared with (metrics only).
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	// From and To are the verdicts (MetricVerdict only).
	From verdict.Verdict `json:"from,omitempty"`
	To   verdict.Verdict `json:"to,omitempty"`
}

// String describes the regression in a few words.
func (r Regression) String() string {
	if r.Metric == MetricVerdict {
		return fmt.Sprintf("%s: %s -> %s", r.Drill, r.From, r.To)
	}
	return fmt.Sprintf("%s %s: %g (baseline %g)", r.Drill, r.Metric, r.Value, r.Baseline)
}

// FindRegressions lists the regressions of every run in the history (entries sorted by start).
// Each plan's drill is its own series: the same drill in two plans is not compared.
func FindRegressions(entries []Entry, rule RegressionRule) []Regression {
	if rule.isZero() {
		rule = DefaultRegressionRule()
	}
	window := max(rule.Window, 1)
	past := map[string][]float64{} // drill/metric -> earlier values, oldest first
	lastVerdict := map[string]verdict.Verdict{}
	var out []Regression
	for _, e := range entries {
		if e.Status != StatusRan {
			continue
		}
		for pos, d := range e.Drills {
			series := seriesKey(e.Plan, d.Name)
			switch prev := lastVerdict[series]; {
			case prev == verdict.Pass && (d.Verdict == verdict.Fail || d.Verdict == verdict.Error):
				out = append(out, Regression{RunID: e.ID, Drill: d.Name, Position: pos, Metric: MetricVerdict, From: prev, To: d.Verdict})
			}
			if d.Verdict == verdict.Pass || d.Verdict == verdict.Fail || d.Verdict == verdict.Error {
				lastVerdict[series] = d.Verdict
			}
			for _, m := range metrics() {
				v := m.value(d.Key)
				if v == nil {
					continue
				}
				key := series + "\x00" + m.Name
				earlier := past[key]
				if len(earlier) > 0 {
					base := median(earlier[max(0, len(earlier)-window):])
					if *v > base+max(rule.Relative*base, rule.MinIncrease[m.Name]) {
						out = append(out, Regression{RunID: e.ID, Drill: d.Name, Position: pos, Metric: m.Name, Value: *v, Baseline: base})
					}
				}
				past[key] = append(earlier, *v)
			}
		}
	}
	return out
}

// seriesKey names a drill's series: the same drill in two plans runs under different settings.
func seriesKey(plan, drill string) string { return plan + "\x00" + drill }

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// regressionIndex finds regressions by run, the drill's position in the run, and metric.
type regressionIndex map[string]Regression

func regressionKey(run string, pos int, metric string) string {
	return fmt.Sprintf("%s\x00%d\x00%s", run, pos, metric)
}

func indexRegressions(regs []Regression) regressionIndex {
	idx := regressionIndex{}
	for _, r := range regs {
		idx[regressionKey(r.RunID, r.Position, r.Metric)] = r
	}
	return idx
}

func (idx regressionIndex) get(run string, pos int, metric string) (Regression, bool) {
	r, ok := idx[regressionKey(run, pos, metric)]
	return r, ok
}

// WriteHistoryText writes the terminal list of the history, oldest first: time, plan, trigger,
// verdict, duration and per drill its verdict and key numbers, regressions marked.
func WriteHistoryText(w io.Writer, entries []Entry, rule RegressionRule) error {
	idx := indexRegressions(FindRegressions(entries, rule))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var titles []string
	for _, m := range metrics() {
		titles = append(titles, m.Title)
	}
	fmt.Fprintf(tw, "TIME\tPLAN\tTRIGGER\tVERDICT\tTOOK\tDRILLS (verdict, %s)\n", strings.Join(titles, ", "))
	for _, e := range entries {
		took, verdict := "-", e.Verdict
		if !e.End.IsZero() {
			took = e.End.Sub(e.Start).Round(time.Second).String()
		}
		var detail []string
		if e.Status == StatusSkipped {
			verdict = StatusSkipped
			detail = append(detail, e.Reason)
		}
		for pos, d := range e.Drills {
			part := fmt.Sprintf("%s %s", d.Name, d.Verdict)
			var marks []string
			if _, ok := idx.get(e.ID, pos, MetricVerdict); ok {
				marks = append(marks, MetricVerdict)
			}
			for _, m := range metrics() {
				part += fmt.Sprintf(" %s=%s", m.Short, fmtNum(d.Key[m.Name], unitSuffix(m.Unit)))
				if _, ok := idx.get(e.ID, pos, m.Name); ok {
					marks = append(marks, m.Name)
				}
			}
			if len(marks) > 0 {
				part += " REGRESSION(" + strings.Join(marks, ",") + ")"
			}
			detail = append(detail, part)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Start.Local().Format("2006-01-02 15:04:05"), e.Plan, e.Trigger, verdict, took,
			strings.Join(detail, "; "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// Chart geometry, in SVG user units.
const (
	chartWidth   = 960
	chartLeft    = 70
	chartRight   = chartWidth - 170 // the legend sits on the right
	panelHeight  = 150
	panelGap     = 46
	panelTop     = 28
	axisLabelsH  = 40
	maxXLabels   = 12
	pointRadius  = 3.5
	regressRingR = 8
)

// chart is the view model of the trend chart: every coordinate is computed here.
type chart struct {
	Width, Height int
	Left, Right   int
	// PlotWidth is Right-Left; TickLabelX where y labels end; Legend* place the legend.
	PlotWidth                            int
	TickLabelX, LegendRectX, LegendTextX int
	LegendRingX                          int
	LegendRegY                           float64
	Panels                               []chartPanel
	Legend                               []chartLegend
	XLabels                              []chartLabel
	XLabelY                              float64
	Empty                                bool
}

type chartPanel struct {
	Title, Metric    string
	Top, Bottom, H   float64
	TitleY           float64
	Ticks            []chartTick
	Series           []chartSeries
	Regressions      []chartPoint
	NoData           bool
	NoDataX, NoDataY float64
}

type chartTick struct {
	Y     float64
	Label string
}

type chartSeries struct {
	Drill, Color, Points string
	Dots                 []chartPoint
}

type chartPoint struct {
	X, Y  float64
	Color string
	Title string
}

type chartLegend struct {
	Y            float64
	Color, Label string
}

type chartLabel struct {
	X           float64
	Top, Bottom string
	Title       string
}

func palette() []string {
	return []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22"}
}

// buildChart lays out the trend of the key numbers across the runs that ran (oldest left).
func buildChart(entries []Entry, idx regressionIndex) chart {
	var runs []Entry
	for _, e := range entries {
		if e.Status == StatusRan {
			runs = append(runs, e)
		}
	}
	c := chart{Width: chartWidth, Left: chartLeft, Right: chartRight, Empty: len(runs) == 0, PlotWidth: chartRight - chartLeft,
		TickLabelX: chartLeft - 6, LegendRectX: chartRight + 16, LegendTextX: chartRight + 34, LegendRingX: chartRight + 22}
	// One series per plan and drill; the legend names the plan only when there are several.
	drillSet, plans := map[string]bool{}, map[string]bool{}
	for _, e := range runs {
		plans[e.Plan] = true
		for _, d := range e.Drills {
			drillSet[seriesKey(e.Plan, d.Name)] = true
		}
	}
	drills := slices.Sorted(maps.Keys(drillSet))
	label := func(series string) string {
		plan, drill, _ := strings.Cut(series, "\x00")
		if len(plans) > 1 {
			return plan + ": " + drill
		}
		return drill
	}
	colors := map[string]string{}
	for i, d := range drills {
		colors[d] = palette()[i%len(palette())]
	}
	n := len(runs)
	x := func(i int) float64 {
		return chartLeft + (float64(i)+0.5)*float64(chartRight-chartLeft)/float64(max(n, 1))
	}
	top := float64(panelTop)
	for _, m := range metrics() {
		p := chartPanel{Title: m.Title + " (" + m.Unit + ")", Metric: m.Name, Top: top, Bottom: top + panelHeight, H: panelHeight, TitleY: top - 8}
		maxV := 0.0
		for _, e := range runs {
			for _, d := range e.Drills {
				if v := m.value(d.Key); v != nil {
					maxV = max(maxV, *v)
				}
			}
		}
		scaleMax := niceCeil(maxV * 1.1)
		y := func(v float64) float64 { return p.Bottom - v/scaleMax*panelHeight }
		for _, f := range []float64{0, 0.5, 1} {
			p.Ticks = append(p.Ticks, chartTick{Y: y(f * scaleMax), Label: trimFloat(f * scaleMax)})
		}
		for _, dn := range drills {
			s := chartSeries{Drill: label(dn), Color: colors[dn]}
			var pts []string
			for i, e := range runs {
				for pos, d := range e.Drills {
					v := m.value(d.Key)
					if seriesKey(e.Plan, d.Name) != dn || v == nil {
						continue
					}
					pt := chartPoint{X: x(i), Y: y(*v), Color: colors[dn],
						Title: fmt.Sprintf("run %s: %s %s = %s %s (%s)", e.ID, d.Name, m.Name, trimFloat(*v), m.Unit, d.Verdict)}
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", pt.X, pt.Y))
					s.Dots = append(s.Dots, pt)
					if r, ok := idx.get(e.ID, pos, m.Name); ok {
						p.Regressions = append(p.Regressions, chartPoint{X: pt.X, Y: pt.Y,
							Title: fmt.Sprintf("REGRESSION in run %s: %s %s = %s %s, baseline (median of earlier runs) %s", e.ID, d.Name, m.Name,
								trimFloat(r.Value), m.Unit, trimFloat(r.Baseline))})
					}
				}
			}
			s.Points = strings.Join(pts, " ")
			if len(s.Dots) > 0 {
				p.Series = append(p.Series, s)
			}
		}
		if len(p.Series) == 0 {
			p.NoData, p.NoDataX, p.NoDataY = true, chartLeft+10, p.Bottom-panelHeight/2
		}
		c.Panels = append(c.Panels, p)
		top += panelHeight + panelGap
	}
	c.XLabelY = top - panelGap + 16
	step := max(1, (n+maxXLabels-1)/maxXLabels)
	for i, e := range runs {
		if i%step != 0 && i != n-1 {
			continue
		}
		c.XLabels = append(c.XLabels, chartLabel{X: x(i), Top: fmt.Sprintf("#%d", i+1), Bottom: e.Start.Local().Format("01-02 15:04"),
			Title: e.ID + " " + string(e.Verdict)})
	}
	for i, d := range drills {
		c.Legend = append(c.Legend, chartLegend{Y: float64(panelTop + 12 + 18*i), Color: colors[d], Label: label(d)})
	}
	c.LegendRegY = float64(panelTop + 12 + 18*len(drills))
	c.Height = int(c.XLabelY + axisLabelsH)
	return c
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// historyRow is one row of the history page's table.
type historyRow struct {
	N                      int
	ID, Plan, Trigger, Dir string
	Verdict                verdict.Verdict
	Start, Took, Reason    string
	Skipped                bool
	Drills                 []historyDrill
}

type historyDrill struct {
	Name, Report           string
	Verdict                verdict.Verdict
	Nums                   []historyNum
	Failed                 string
	VerdictRegressed       bool
	VerdictFrom, VerdictTo verdict.Verdict
}

type historyNum struct {
	Text       string
	Regression bool
	Title      string
}

// WriteHistoryHTML writes the history page: the trend of the key numbers (DNS failover time,
// RTO, lost writes) of every drill across runs as an inline SVG chart with regressions ringed
// in red, then every run (newest first) with its drills, key numbers and links to the reports.
// Self-contained: no script, nothing loaded from elsewhere.
func WriteHistoryHTML(w io.Writer, entries []Entry, rule RegressionRule) error {
	tmpl, err := template.New("history").Funcs(template.FuncMap{"add": func(a, b int) int { return a + b }}).Parse(historyPageTemplate)
	if err != nil {
		return fmt.Errorf("html template: %w", err)
	}
	regs := FindRegressions(entries, rule)
	idx := indexRegressions(regs)
	var rows []historyRow
	ranN := 0
	for _, e := range entries {
		r := historyRow{ID: e.ID, Plan: e.Plan, Trigger: e.Trigger, Verdict: e.Verdict, Start: e.Start.Local().Format("2006-01-02 15:04:05"),
			Took: "-", Reason: e.Reason, Skipped: e.Status == StatusSkipped}
		if r.Skipped {
			r.Verdict = StatusSkipped
		} else {
			ranN++
			r.N = ranN
			if e.Dir != "" {
				r.Dir = e.Dir + "/" + FileIndex
			}
		}
		if !e.End.IsZero() {
			r.Took = e.End.Sub(e.Start).Round(time.Second).String()
		}
		for pos, d := range e.Drills {
			hd := historyDrill{Name: d.Name, Verdict: d.Verdict, Failed: strings.Join(d.FailedChecks, ", ")}
			if d.Report != "" {
				hd.Report = d.Report + "/" + report.FileHTML
			}
			num := func(metric string, v *float64, unit string) historyNum {
				n := historyNum{Text: fmtNum(v, unit)}
				if reg, ok := idx.get(e.ID, pos, metric); ok {
					n.Regression = true
					n.Title = fmt.Sprintf("regression: baseline (median of earlier runs) %s", trimFloat(reg.Baseline))
				}
				return n
			}
			for _, m := range metrics() {
				hd.Nums = append(hd.Nums, num(m.Name, d.Key[m.Name], unitSuffix(m.Unit)))
			}
			if reg, ok := idx.get(e.ID, pos, MetricVerdict); ok {
				hd.VerdictRegressed, hd.VerdictFrom, hd.VerdictTo = true, reg.From, reg.To
			}
			r.Drills = append(r.Drills, hd)
		}
		rows = append(rows, r)
	}
	// Newest first in the table; the chart reads left to right, oldest first.
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	skipped := 0
	for _, e := range entries {
		if e.Status == StatusSkipped {
			skipped++
		}
	}
	var columns []string
	for _, m := range metrics() {
		columns = append(columns, m.Title)
	}
	view := struct {
		Columns     []string
		Chart       chart
		Rows        []historyRow
		Regressions []Regression
		Runs        int
		Skipped     int
		Generated   string
	}{Columns: columns, Chart: buildChart(entries, idx), Rows: rows, Regressions: regs, Runs: ranN, Skipped: skipped,
		Generated: time.Now().Format("2006-01-02 15:04:05 MST")}
	if err := tmpl.Execute(w, view); err != nil {
		return fmt.Errorf("write history html: %w", err)
	}
	return nil
}

const historyPageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>drill game-day history</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
.meta { color: #555; margin: 0 0 12px; }
.verdict { padding: 1px 8px; border-radius: 4px; color: #fff; text-transform: uppercase; font-size: 12px; }
.v-pass { background: #2ca02c; } .v-fail { background: #d62728; }
.v-error, .v-aborted { background: #e08a00; } .v-skipped { background: #999; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.skipped td { color: #777; background: #fafafa; }
.regression { color: #b00000; font-weight: 700; }
ul.regressions li { color: #b00000; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .panel { fill: #fcfcfc; stroke: #ddd; }
svg .grid { stroke: #eee; }
svg .title { font-weight: 600; font-size: 12px; }
svg .regression-ring { fill: none; stroke: #d62728; stroke-width: 2.5; }
svg .regression-label { fill: #b00000; font-weight: 700; }
</style>
</head>
<body>
<h1>drill game-day history</h1>
<p class="meta">{{.Runs}} runs, {{.Skipped}} skipped · generated {{.Generated}}</p>

<h2>Trend of the key numbers</h2>
{{with .Chart}}{{if .Empty}}<p id="no-runs">No run yet.</p>{{else}}<svg id="trend" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="trend of the key numbers across runs">
{{range .Panels}}<g class="metric" data-metric="{{.Metric}}">
<text class="title" x="{{$.Chart.Left}}" y="{{printf "%.1f" .TitleY}}">{{.Title}}</text>
<rect class="panel" x="{{$.Chart.Left}}" y="{{printf "%.1f" .Top}}" width="{{$.Chart.PlotWidth}}" height="{{printf "%.1f" .H}}"></rect>
{{range .Ticks}}<line class="grid" x1="{{$.Chart.Left}}" x2="{{$.Chart.Right}}" y1="{{printf "%.1f" .Y}}" y2="{{printf "%.1f" .Y}}"></line><text x="{{$.Chart.TickLabelX}}" y="{{printf "%.1f" .Y}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{if .NoData}}<text x="{{printf "%.1f" .NoDataX}}" y="{{printf "%.1f" .NoDataY}}">not measured in any run</text>{{end}}
{{range .Series}}<polyline class="series" points="{{.Points}}" fill="none" stroke="{{.Color}}" stroke-width="2"><title>{{.Drill}}</title></polyline>
{{range .Dots}}<circle class="point" cx="{{printf "%.1f" .X}}" cy="{{printf "%.1f" .Y}}" r="3.5" fill="{{.Color}}"><title>{{.Title}}</title></circle>{{end}}
{{end}}{{range .Regressions}}<circle class="regression-ring" cx="{{printf "%.1f" .X}}" cy="{{printf "%.1f" .Y}}" r="8"><title>{{.Title}}</title></circle><text class="regression-label" x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" dy="-11" text-anchor="middle">regression</text>
{{end}}</g>
{{end}}<g class="x-axis">{{range .XLabels}}<text x="{{printf "%.1f" .X}}" y="{{printf "%.1f" $.Chart.XLabelY}}" text-anchor="middle">{{.Top}}<title>{{.Title}}</title></text><text x="{{printf "%.1f" .X}}" y="{{printf "%.1f" $.Chart.XLabelY}}" dy="14" text-anchor="middle">{{.Bottom}}</text>{{end}}</g>
<g class="legend">{{range .Legend}}<rect x="{{$.Chart.LegendRectX}}" y="{{printf "%.1f" .Y}}" width="12" height="12" fill="{{.Color}}"></rect><text x="{{$.Chart.LegendTextX}}" y="{{printf "%.1f" .Y}}" dy="10">{{.Label}}</text>{{end}}
<circle class="regression-ring" cx="{{.LegendRingX}}" cy="{{printf "%.1f" .LegendRegY}}" r="6" transform="translate(0 6)"></circle><text x="{{.LegendTextX}}" y="{{printf "%.1f" .LegendRegY}}" dy="10">regression</text></g>
</svg>{{end}}{{end}}
{{if .Regressions}}<h2>Regressions</h2>
<ul class="regressions">{{range .Regressions}}<li>run {{.RunID}}: {{.String}}</li>{{end}}</ul>{{end}}

<h2>Runs</h2>
<table id="runs">
<thead><tr><th>#</th><th>started</th><th>plan</th><th>trigger</th><th>verdict</th><th>took</th><th>drills</th>{{range .Columns}}<th>{{.}}</th>{{end}}<th>game day</th></tr></thead>
<tbody>
{{range .Rows}}{{if .Skipped}}<tr class="skipped"><td></td><td>{{.Start}}</td><td>{{.Plan}}</td><td>{{.Trigger}}</td><td><span class="verdict v-skipped">skipped</span></td><td>-</td><td colspan="{{len $.Columns | add 2}}">{{.Reason}}</td></tr>
{{else}}{{$row := .}}{{range $i, $d := .Drills}}<tr class="run" data-run="{{$row.ID}}">
{{if eq $i 0}}<td class="num" rowspan="{{len $row.Drills}}">{{$row.N}}</td><td rowspan="{{len $row.Drills}}">{{$row.Start}}</td><td rowspan="{{len $row.Drills}}">{{$row.Plan}}</td><td rowspan="{{len $row.Drills}}">{{$row.Trigger}}</td><td rowspan="{{len $row.Drills}}"><span class="verdict v-{{$row.Verdict}}">{{$row.Verdict}}</span></td><td rowspan="{{len $row.Drills}}">{{$row.Took}}</td>{{end}}
<td>{{if $d.Report}}<a href="{{$d.Report}}">{{$d.Name}}</a>{{else}}{{$d.Name}}{{end}} <span class="verdict v-{{$d.Verdict}}">{{$d.Verdict}}</span>{{if $d.VerdictRegressed}} <span class="regression" title="was {{$d.VerdictFrom}} in its previous run">regression</span>{{end}}{{with $d.Failed}}<br><small>failed: {{.}}</small>{{end}}</td>
{{range $d.Nums}}<td class="num{{if .Regression}} regression{{end}}"{{if .Title}} title="{{.Title}}"{{end}}>{{.Text}}{{if .Regression}} ▲{{end}}</td>{{end}}
{{if eq $i 0}}<td rowspan="{{len $row.Drills}}">{{if $row.Dir}}<a href="{{$row.Dir}}">{{$row.ID}}</a>{{end}}{{with $row.Reason}}<br><small>{{.}}</small>{{end}}</td>{{end}}
</tr>
{{else}}<tr class="run" data-run="{{.ID}}"><td class="num">{{.N}}</td><td>{{.Start}}</td><td>{{.Plan}}</td><td>{{.Trigger}}</td><td><span class="verdict v-{{.Verdict}}">{{.Verdict}}</span></td><td>{{.Took}}</td><td colspan="{{len $.Columns | add 1}}">{{.Reason}}</td><td>{{if .Dir}}<a href="{{.Dir}}">{{.ID}}</a>{{end}}</td></tr>
{{end}}{{end}}{{end}}</tbody>
</table>
</body>
</html>
`

// unitSuffix is what follows a number of the unit in the tables: seconds get "s", counts nothing.
func unitSuffix(unit string) string {
	switch unit {
	case "s", "ms":
		return unit
	}
	return ""
}
