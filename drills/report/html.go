package report

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/history"
)

// Timeline geometry, in SVG user units (pixels).
const (
	svgWidth       = 1100
	plotLeft       = 130
	plotRight      = svgWidth - 20
	faultLabelRow  = 14
	maxLabelRows   = 8
	laneHeight     = 60
	lagPanelHeight = 100
	axisHeight     = 30
)

// regionPalette colours regions in sorted order; red, green and grey are kept for write outcomes.
func regionPalette() []string {
	return []string{"#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22"}
}

const (
	colorOK      = "#2ca02c"
	colorFail    = "#d62728"
	colorInfo    = "#7f7f7f"
	colorNoAnswr = "#cccccc"
)

// timeline is the view model of the SVG timeline: every coordinate is computed here, so the
// template only places elements.
type timeline struct {
	Width, Height         int
	PlotLeft, PlotRight   int
	PlotWidth             int
	LanesTop, LanesBottom float64
	Faults                []tlFault
	Lanes                 []tlLane
	Epochs                []tlEpoch
	Lag                   tlLag
	Queue                 *tlLag // nil without queue samples
	Axis                  []tlTick
	AxisY, TickBottom     float64
	Legend                []tlLegend
	LegendY               float64
}

type tlFault struct {
	X, W, LabelX, LabelY, Top, H float64
	// Anchor is the label's text-anchor: start, or end for a fault starting near the right edge.
	Anchor    string
	ID, Title string
}

type tlLane struct {
	Label                         string
	Top, LabelY, DNSY, OKY, BadY  float64
	DNS                           []tlRect
	OKPath, FailPath, InfoPath    string
	OKCount, FailCount, InfoCount int
	DNSCount                      int
}

type tlRect struct {
	X, Y, W      float64
	Color, Title string
}

type tlEpoch struct {
	X, LabelY float64
	Label     string
}

// tlLag is a panel of one line per node over time (replication lag, queue backlog).
type tlLag struct {
	PlotLeft, PlotRight int
	Top, H, Base        float64
	Title               string
	MaxLabel            string
	Lines               []tlLine
	Empty               bool
}

type tlLine struct {
	Points, Color, Node, Title string
}

// seriesPanel draws the samples of type typ (value by value) as one line per node in the
// region's colour, scaled to the largest value, in a panel whose top is top.
func seriesPanel(ops []history.Op, typ string, top float64, title, lineTitle string, colors map[string]string, sc scale,
	value func(history.Op) float64, label func(float64) string) tlLag {
	p := tlLag{PlotLeft: plotLeft, PlotRight: plotRight, Top: top, H: lagPanelHeight - 20, Title: title}
	p.Base = p.Top + p.H
	byNode := map[string][]history.Op{}
	var peak float64
	for _, op := range ops {
		if op.Type == typ {
			byNode[op.Node] = append(byNode[op.Node], op)
			peak = max(peak, value(op))
		}
	}
	p.Empty = len(byNode) == 0
	p.MaxLabel = label(peak)
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		var pts strings.Builder
		region := ""
		for i, op := range byNode[node] {
			region = op.Region
			if i > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", sc.x(op.Time), p.Base-value(op)/max(peak, 1)*p.H)
		}
		color := colors[region]
		if color == "" {
			color = colorInfo
		}
		p.Lines = append(p.Lines, tlLine{Points: pts.String(), Color: color, Node: node, Title: lineTitle + " " + node})
	}
	return p
}

type tlTick struct {
	X     float64
	Label string
}

type tlLegend struct {
	X            float64
	Color, Label string
}

// scale maps times to x coordinates.
type scale struct {
	t0, t1 time.Time
}

func (s scale) x(t time.Time) float64 {
	span := s.t1.Sub(s.t0).Seconds()
	f := t.Sub(s.t0).Seconds() / span
	f = max(0, min(1, f))
	return plotLeft + f*float64(plotRight-plotLeft)
}

// buildTimeline lays out the timeline of a history.
func buildTimeline(r *Report, ops []history.Op) timeline {
	ops = history.Sorted(ops)
	sc := scale{}
	sc.t0, sc.t1 = history.Span(ops)
	if !r.Start.IsZero() && (sc.t0.IsZero() || r.Start.Before(sc.t0)) {
		sc.t0 = r.Start
	}
	if !r.End.IsZero() && r.End.After(sc.t1) {
		sc.t1 = r.End
	}
	if !sc.t1.After(sc.t0) {
		sc.t1 = sc.t0.Add(time.Second)
	}

	windows := history.FaultWindows(ops)
	rows := min(max(len(windows), 1), maxLabelRows)
	tl := timeline{Width: svgWidth, PlotLeft: plotLeft, PlotRight: plotRight, PlotWidth: plotRight - plotLeft}
	tl.LanesTop = float64(8 + faultLabelRow*rows + 6)

	// Colours per region: every region mentioned anywhere, sorted.
	regionSet := map[string]bool{}
	for _, op := range ops {
		for _, name := range []string{op.ClientRegion, op.DNSRegion, op.Region} {
			if name != "" {
				regionSet[name] = true
			}
		}
	}
	colors := map[string]string{}
	palette := regionPalette()
	for i, name := range slices.Sorted(maps.Keys(regionSet)) {
		colors[name] = palette[i%len(palette)]
	}

	// One lane per client region.
	pairs, _ := history.Pairs(ops) // a malformed history still draws what pairs up
	y := tl.LanesTop
	for _, region := range history.ClientRegions(ops) {
		lane := tlLane{Label: region, Top: y, DNSY: y + 2, OKY: y + 20, BadY: y + 38}
		var dnsOps []history.Op
		for _, op := range ops {
			if op.Type == history.TypeDNS && op.ClientRegion == region {
				dnsOps = append(dnsOps, op)
			}
		}
		lane.DNSCount = len(dnsOps)
		// One strip per run of answers pointing at the same region, up to the next different one.
		for i := 0; i < len(dnsOps); {
			j := i + 1
			for j < len(dnsOps) && dnsOps[j].DNSRegion == dnsOps[i].DNSRegion {
				j++
			}
			end := sc.t1
			if j < len(dnsOps) {
				end = dnsOps[j].Time
			}
			first := dnsOps[i]
			x0, x1 := sc.x(first.Time), sc.x(end)
			color := colors[first.DNSRegion]
			title := fmt.Sprintf("sent to %s: %d answers from %s (first %s)", first.DNSRegion, j-i, rel(sc.t0, first.Time), strings.Join(first.DNSAnswer, " "))
			if first.DNSRegion == "" {
				color = colorNoAnswr
				title = fmt.Sprintf("no DNS answer: %d failed lookups from %s (first: %s)", j-i, rel(sc.t0, first.Time), first.Error)
			}
			lane.DNS = append(lane.DNS, tlRect{X: x0, Y: lane.DNSY, W: max(x1-x0, 1), Color: color, Title: title})
			i = j
		}
		var okPath, failPath, infoPath strings.Builder
		for _, p := range pairs {
			if p.Invoke.F != history.FWrite || p.Invoke.ClientRegion != region {
				continue
			}
			at := p.End()
			if !p.Completed {
				at = p.Invoke.Time
			}
			x := sc.x(at)
			switch p.Outcome() {
			case history.TypeOK:
				fmt.Fprintf(&okPath, "M%.1f %.1fv14", x, lane.OKY)
				lane.OKCount++
			case history.TypeFail:
				fmt.Fprintf(&failPath, "M%.1f %.1fv14", x, lane.BadY)
				lane.FailCount++
			default:
				fmt.Fprintf(&infoPath, "M%.1f %.1fv14", x, lane.BadY)
				lane.InfoCount++
			}
		}
		lane.OKPath, lane.FailPath, lane.InfoPath = okPath.String(), failPath.String(), infoPath.String()
		tl.Lanes = append(tl.Lanes, lane)
		y += laneHeight
	}
	tl.LanesBottom = y

	// Replication lag panel, then the queues' backlog panel when the history has queue samples.
	tl.Lag = seriesPanel(ops, history.TypeLag, y+10, "replication lag", "lag of", colors, sc,
		func(op history.Op) float64 { return float64(op.LagMS) }, func(v float64) string { return fmt.Sprintf("%.0f ms", v) })
	bottom := tl.Lag.Top + lagPanelHeight
	if q := seriesPanel(ops, history.TypeQueue, bottom+10, "queue backlog", "jobs queued in", colors, sc,
		func(op history.Op) float64 { return float64(op.Backlog) }, func(v float64) string { return fmt.Sprintf("%.0f jobs", v) }); !q.Empty {
		tl.Queue = &q
		bottom = q.Top + lagPanelHeight
	}

	// Fault windows span lanes and the lag panel; labels stack above.
	for i, w := range windows {
		end := sc.t1
		what := string(w.Kind)
		if w.Target() != "" {
			what += " " + w.Target()
		}
		title := fmt.Sprintf("%s: %s from %s, never healed", w.ID, what, rel(sc.t0, w.Start))
		if w.Stopped {
			end = w.End
			title = fmt.Sprintf("%s: %s from %s for %.1fs", w.ID, what, rel(sc.t0, w.Start), w.End.Sub(w.Start).Seconds())
		}
		x0, x1 := sc.x(w.Start), sc.x(end)
		f := tlFault{
			X: x0, W: max(x1-x0, 1), LabelX: x0, LabelY: float64(8 + faultLabelRow*(i%rows) + 10), Anchor: "start",
			Top: tl.LanesTop, H: bottom - tl.LanesTop, ID: w.ID, Title: title,
		}
		if x0 > plotLeft+0.75*float64(plotRight-plotLeft) {
			f.LabelX, f.Anchor = plotRight, "end"
		}
		tl.Faults = append(tl.Faults, f)
	}

	// Epoch changes: vertical markers over every lane.
	for _, op := range ops {
		if op.Type == history.TypeEpoch {
			tl.Epochs = append(tl.Epochs, tlEpoch{X: sc.x(op.Time), LabelY: tl.LanesBottom + 8,
				Label: strings.TrimSpace(fmt.Sprintf("epoch %d %s", op.Epoch, op.Node))})
		}
	}

	// Time axis in seconds from the start.
	tl.AxisY = bottom + 4
	tl.TickBottom = tl.AxisY + 4
	span := sc.t1.Sub(sc.t0).Seconds()
	step := tickStep(span)
	for s := 0.0; s <= span+1e-9; s += step {
		tl.Axis = append(tl.Axis, tlTick{X: sc.x(sc.t0.Add(time.Duration(s * float64(time.Second)))), Label: fmt.Sprintf("%gs", s)})
	}

	// Legend: regions, then write outcomes.
	tl.LegendY = tl.AxisY + axisHeight
	x := float64(plotLeft)
	for _, name := range slices.Sorted(maps.Keys(colors)) {
		tl.Legend = append(tl.Legend, tlLegend{X: x, Color: colors[name], Label: name})
		x += 110
	}
	for _, l := range []tlLegend{{Color: colorOK, Label: "write ok"}, {Color: colorFail, Label: "write failed"},
		{Color: colorInfo, Label: "write indeterminate"}, {Color: colorNoAnswr, Label: "no DNS answer"}} {
		l.X = x
		tl.Legend = append(tl.Legend, l)
		x += 140
	}
	tl.Height = int(tl.LegendY + 16)
	return tl
}

// tickStep picks a round step giving at most about 12 ticks.
func tickStep(span float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600} {
		if span/s <= 12 {
			return s
		}
	}
	return 7200
}

// htmlView is what the page template renders.
type htmlView struct {
	R         *Report
	Timeline  timeline
	RunLength string
	Metrics   []metricRow
	Faults    []faultRow
	Settings  []settingRow
}

type metricRow struct{ Name, Value string }

type faultRow struct{ ID, Kind, Target, Start, End, Undone string }

type settingRow struct{ Key, Value string }

// WriteHTML writes a self-contained HTML report (no scripts, no external resources): the verdict,
// a timeline in inline SVG (fault windows labelled with their ids, one lane per client region
// with its DNS answers coloured by region and its write successes and failures as ticks, epoch
// changes as vertical markers, a replication-lag line per node), then the checks, metrics,
// faults, residue and settings. ops is the drill's history (nil draws an empty timeline).
func WriteHTML(w io.Writer, r *Report, ops []history.Op) error {
	tmpl, err := template.New("report").Funcs(template.FuncMap{"value": fmtValue}).Parse(pageTemplate + seriesTemplate)
	if err != nil {
		return fmt.Errorf("html template: %w", err)
	}
	v := htmlView{R: r, Timeline: buildTimeline(r, ops), RunLength: runLength(r)}
	for _, def := range check.Metrics() {
		mv := r.Metrics[def.Name]
		if !def.PerRegion {
			v.Metrics = append(v.Metrics, metricRow{def.Name, optFloat(mv.Value)})
			continue
		}
		for _, region := range slices.Sorted(maps.Keys(mv.ByRegion)) {
			v.Metrics = append(v.Metrics, metricRow{def.Name + " " + region, fmt.Sprintf("%g", mv.ByRegion[region])})
		}
	}
	sort.SliceStable(v.Metrics, func(i, j int) bool { return v.Metrics[i].Name < v.Metrics[j].Name })
	for _, f := range r.Faults {
		row := faultRow{ID: f.ID, Kind: f.What(), Target: orDash(f.Target), Start: rel(r.Start, f.Start), End: "never healed", Undone: "no"}
		if f.End != nil {
			row.End = rel(r.Start, *f.End)
		}
		if f.Undone {
			row.Undone = "yes"
		}
		v.Faults = append(v.Faults, row)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Settings)) {
		v.Settings = append(v.Settings, settingRow{k, r.Settings[k]})
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

func optFloat(v *float64) string {
	if v == nil {
		return "not measured"
	}
	return fmt.Sprintf("%g", *v)
}

// pageTemplate is the report page. Styles are inline; there is no script and nothing is loaded
// from elsewhere, so the file can be archived and opened offline.
const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>drill {{.R.Drill}}: {{.R.Verdict}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #555; margin: 0 0 8px; }
.verdict { padding: 2px 10px; border-radius: 4px; color: #fff; text-transform: uppercase; font-size: 15px; }
.v-pass { background: #2ca02c; } .v-fail { background: #d62728; } .v-unknown { background: #7f7f7f; }
.v-error, .v-aborted { background: #e08a00; }
.error { background: #fff3e0; border-left: 4px solid #e08a00; padding: 6px 10px; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.pass td.verdict-cell { background: #e3f4e3; } tr.fail td.verdict-cell { background: #fbe0e0; }
tr.unknown td.verdict-cell { background: #eee; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .fault { fill: #d62728; fill-opacity: 0.10; stroke: #d62728; stroke-opacity: 0.5; }
svg .fault-label { fill: #a01818; font-weight: 600; }
svg .epoch { stroke: #333; stroke-dasharray: 4 3; }
svg .axis { stroke: #999; }
svg .lane { fill: #fafafa; stroke: #eee; }
</style>
</head>
<body>
<h1>drill {{.R.Drill}} <span class="verdict v-{{.R.Verdict}}">{{.R.Verdict}}</span></h1>
<p class="meta">runtime {{.R.Runtime}} · topology {{.R.Topology}} · seed {{.R.Seed}} · started {{.R.Start.UTC.Format "2006-01-02 15:04:05.000 MST"}} · ran {{.RunLength}}</p>
{{with .R.Error}}<p class="error">{{.}}</p>{{end}}

<h2>Timeline</h2>
{{with .Timeline}}<svg id="timeline" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="drill timeline">
<g class="lane-backgrounds">{{range .Lanes}}
<rect class="lane" x="{{$.Timeline.PlotLeft}}" y="{{printf "%.1f" .Top}}" width="{{$.Timeline.PlotWidth}}" height="56"></rect>{{end}}
</g>
<g class="faults">{{range .Faults}}
<rect class="fault" x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Top}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}"><title>{{.Title}}</title></rect>
<text class="fault-label" x="{{printf "%.1f" .LabelX}}" y="{{printf "%.1f" .LabelY}}" text-anchor="{{.Anchor}}">{{.ID}}</text>{{end}}
</g>
<g class="lanes">{{range .Lanes}}
<text x="8" y="{{printf "%.1f" .DNSY}}" dy="11">{{.Label}}</text>
<text x="8" y="{{printf "%.1f" .DNSY}}" dy="25">{{.DNSCount}} DNS answers</text>
<text x="8" y="{{printf "%.1f" .DNSY}}" dy="39">{{.OKCount}} writes ok</text>
<text x="8" y="{{printf "%.1f" .DNSY}}" dy="53">{{.FailCount}} failed, {{.InfoCount}} unknown</text>
<g class="dns">{{range .DNS}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="14" fill="{{.Color}}"><title>{{.Title}}</title></rect>{{end}}</g>
{{if .OKPath}}<path class="ok" d="{{.OKPath}}" stroke="#2ca02c" stroke-width="1"></path>{{end}}
{{if .FailPath}}<path class="failed" d="{{.FailPath}}" stroke="#d62728" stroke-width="1"></path>{{end}}
{{if .InfoPath}}<path class="indeterminate" d="{{.InfoPath}}" stroke="#7f7f7f" stroke-width="1"></path>{{end}}{{end}}
</g>
{{template "series" .Lag}}{{with .Queue}}{{template "series" .}}{{end}}
<g class="epochs">{{range .Epochs}}
<line class="epoch" x1="{{printf "%.1f" .X}}" x2="{{printf "%.1f" .X}}" y1="{{printf "%.1f" $.Timeline.LanesTop}}" y2="{{printf "%.1f" $.Timeline.LanesBottom}}"></line>
<text x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .LabelY}}" dx="3">{{.Label}}</text>{{end}}
</g>
<g class="axis">
<line class="axis" x1="{{.PlotLeft}}" x2="{{.PlotRight}}" y1="{{printf "%.1f" .AxisY}}" y2="{{printf "%.1f" .AxisY}}"></line>{{range .Axis}}
<line class="axis" x1="{{printf "%.1f" .X}}" x2="{{printf "%.1f" .X}}" y1="{{printf "%.1f" $.Timeline.AxisY}}" y2="{{printf "%.1f" $.Timeline.TickBottom}}"></line>
<text x="{{printf "%.1f" .X}}" y="{{printf "%.1f" $.Timeline.AxisY}}" dy="14" text-anchor="middle">{{.Label}}</text>{{end}}
</g>
<g class="legend">{{range .Legend}}
<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" $.Timeline.LegendY}}" width="12" height="12" fill="{{.Color}}"></rect>
<text x="{{printf "%.1f" .X}}" y="{{printf "%.1f" $.Timeline.LegendY}}" dx="16" dy="10">{{.Label}}</text>{{end}}
</g>
</svg>{{end}}

<h2>Checks</h2>
<table id="checks">
<tr><th>check</th><th>verdict</th><th>measured</th><th>budget</th><th>detail</th></tr>
{{range .R.Checks}}<tr class="{{.Verdict}}"><td>{{.Name}}</td><td class="verdict-cell">{{.Verdict}}</td><td class="num">{{value .Measured .Unit}}</td><td class="num">{{value .Budget .Unit}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>

<h2>Metrics</h2>
<table id="metrics">
{{range .Metrics}}<tr><td>{{.Name}}</td><td class="num">{{.Value}}</td></tr>
{{end}}</table>

<h2>Faults</h2>
{{if .Faults}}<table id="faults">
<tr><th>id</th><th>kind</th><th>target</th><th>start</th><th>end</th><th>undone</th></tr>
{{range .Faults}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{.Target}}</td><td>{{.Start}}</td><td>{{.End}}</td><td>{{.Undone}}</td></tr>
{{end}}</table>{{else}}<p>No fault was injected.</p>{{end}}

<h2>Residue</h2>
{{if .R.Residue}}<table id="residue">
<tr><th>what</th><th>clean</th><th>detail</th></tr>
{{range .R.Residue}}<tr class="{{if .Clean}}pass{{else}}fail{{end}}"><td>{{.What}}</td><td class="verdict-cell">{{if .Clean}}clean{{else}}NOT clean{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p>Residue was not checked.</p>{{end}}

<h2>Settings</h2>
{{if .Settings}}<table id="settings">
{{range .Settings}}<tr><td>{{.Key}}</td><td>{{.Value}}</td></tr>
{{end}}</table>{{else}}<p>The topology's own settings.</p>{{end}}
</body>
</html>
`

// seriesTemplate draws one tlLag panel.
const seriesTemplate = `{{define "series"}}<g class="lag">
<text x="8" y="{{printf "%.1f" .Top}}" dy="12">{{.Title}}</text>
<text x="8" y="{{printf "%.1f" .Top}}" dy="26">max {{.MaxLabel}}</text>
<line class="axis" x1="{{.PlotLeft}}" x2="{{.PlotRight}}" y1="{{printf "%.1f" .Base}}" y2="{{printf "%.1f" .Base}}"></line>
{{if .Empty}}<text x="{{.PlotLeft}}" y="{{printf "%.1f" .Base}}" dy="-6">no {{.Title}} samples</text>{{end}}
{{range .Lines}}<polyline points="{{.Points}}" fill="none" stroke="{{.Color}}" stroke-width="1.5"><title>{{.Title}}</title></polyline>{{end}}
</g>{{end}}`
