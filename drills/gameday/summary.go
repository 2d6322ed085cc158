package gameday

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/report/junit"
	"github.com/drillworks/drill/drills/verdict"
)

// writeRunFiles writes summary.json, junit.xml and index.html into the run's directory.
func writeRunFiles(dir string, s *Summary) error {
	var errs []error
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{FileSummary, func(w io.Writer) error { return writeJSON(w, s) }},
		{FileJUnit, func(w io.Writer) error { return WriteJUnit(w, s) }},
		{FileIndex, func(w io.Writer) error { return WriteRunHTML(w, s) }},
		{report.FileProm, func(w io.Writer) error { return writeProm(w, s) }},
	} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.write); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeProm writes the game day's outcome in the Prometheus text format (its drills' own results
// are in each drill's report directory): the verdict, when it ended, and how many drills failed.
func writeProm(w io.Writer, s *Summary) error {
	reg := prometheus.NewRegistry()
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_gameday_verdict",
		Help: "1 for the game day's verdict (pass, fail, error, aborted), 0 for the others."}, []string{"plan", "verdict"})
	end := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_gameday_end_timestamp_seconds",
		Help: "When the game day ended (Unix time)."}, []string{"plan"})
	failed := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "drill_gameday_failed_checks",
		Help: "Failed checks over every drill of the game day."}, []string{"plan"})
	reg.MustRegister(v, end, failed)
	for _, x := range []verdict.Verdict{verdict.Pass, verdict.Fail, verdict.Error, verdict.Aborted} {
		val := 0.0
		if s.Verdict == x {
			val = 1
		}
		v.WithLabelValues(s.Plan, string(x)).Set(val)
	}
	end.WithLabelValues(s.Plan).Set(float64(s.End.UnixNano()) / 1e9)
	failed.WithLabelValues(s.Plan).Set(float64(len(s.FailedChecks)))
	return report.WriteGathered(w, reg)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// LoadSummary reads a run's summary.json.
func LoadSummary(dir string) (*Summary, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileSummary))
	if err != nil {
		return nil, fmt.Errorf("load game day summary: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("load game day summary %s: %w", dir, err)
	}
	return &s, nil
}

// WriteSummaryText writes the terminal table of a run: one row per step.
func WriteSummaryText(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "game day %s: %s  (%s, %s, %s)\n", s.Plan, strings.ToUpper(string(s.Verdict)), s.Mode, s.Trigger,
		s.End.Sub(s.Start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	head := "#\tSTEP\tVERDICT\tTOOK\t"
	for _, m := range metrics() {
		head += strings.ToUpper(m.Short) + "\t"
	}
	fmt.Fprintln(tw, head+"FAILED CHECKS / NOTE")
	for _, st := range s.Steps {
		took := "-"
		if !st.Start.IsZero() {
			took = st.End.Sub(st.Start).Round(100 * time.Millisecond).String()
		}
		note := strings.Join(failedNames(st.Checks), ", ")
		if note == "" {
			note = st.Error
		}
		name := st.Name
		if st.Kind == KindHuman {
			name = "human: " + truncate(st.Name, 40)
		}
		row := fmt.Sprintf("%d\t%s\t%s\t%s\t", st.Index+1, name, st.Verdict, took)
		for _, m := range metrics() {
			row += fmtNum(st.Key[m.Name], unitSuffix(m.Unit)) + "\t"
		}
		fmt.Fprintln(tw, row+truncate(note, 80))
	}
	tw.Flush()
	fmt.Fprintf(&b, "verdict: %s", strings.ToUpper(string(s.Verdict)))
	if s.Error != "" {
		fmt.Fprintf(&b, ": %s", s.Error)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func failedNames(checks []report.Check) []string {
	var out []string
	for _, c := range checks {
		if c.Verdict == verdict.Fail {
			out = append(out, c.Name)
		}
	}
	return out
}

// fmtNum formats an optional number with a unit; "-" when not measured.
func fmtNum(v *float64, unit string) string {
	if v == nil {
		return "-"
	}
	s := strconv.FormatFloat(*v, 'f', -1, 64)
	if *v != float64(int64(*v)) {
		s = strconv.FormatFloat(*v, 'f', 2, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// WriteJUnit writes the run as JUnit XML: a testsuites document named gameday.<plan> with one
// testsuite per drill (gameday.<plan>.<NN>-<drill>) holding a testcase per check (<failure> for
// fail, <skipped> for not judged), plus a testcase "drill" with <error> when the drill errored or
// was aborted, or <skipped> when it did not run; and a suite for the human steps.
func WriteJUnit(w io.Writer, s *Summary) error {
	root := junit.Suites{Name: "gameday." + s.Plan, Time: junit.Seconds(s.End.Sub(s.Start))}
	var human *junit.Suite
	for _, st := range s.Steps {
		if st.Kind == KindHuman {
			if human == nil {
				human = &junit.Suite{Name: "gameday." + s.Plan + ".human"}
			}
			tc := junit.Case{Name: fmt.Sprintf("%02d %s", st.Index+1, st.Name), ClassName: human.Name, Time: junit.Seconds(st.End.Sub(st.Start))}
			switch st.Verdict {
			case verdict.Acknowledged:
			case verdict.Skipped:
				tc.Skipped = &junit.Skipped{Message: st.Error}
				human.Skipped++
			default:
				tc.Error = &junit.Problem{Message: st.Error, Type: string(st.Verdict), Text: st.Error}
				human.Errors++
			}
			human.Cases = append(human.Cases, tc)
			continue
		}
		suite := junit.Suite{Name: fmt.Sprintf("gameday.%s.%02d-%s", s.Plan, st.Index+1, st.Name), Time: junit.Seconds(st.End.Sub(st.Start)),
			Properties: []junit.Property{{Name: "verdict", Value: string(st.Verdict)}, {Name: "drill", Value: st.Ref},
				{Name: "report_dir", Value: st.ReportDir}, {Name: "seed", Value: strconv.FormatInt(st.Seed, 10)}}}
		if !st.Start.IsZero() {
			suite.Timestamp = st.Start.UTC().Format(time.RFC3339)
		}
		report.AddJUnitChecks(&suite, st.Checks, fmtNum)
		switch st.Verdict {
		case verdict.Error, verdict.Aborted:
			suite.Cases = append(suite.Cases, junit.Case{Name: "drill", ClassName: suite.Name, Time: suite.Time,
				Error: &junit.Problem{Message: st.Error, Type: string(st.Verdict), Text: st.Error}})
			suite.Errors++
		case verdict.Skipped:
			suite.Cases = append(suite.Cases, junit.Case{Name: "drill", ClassName: suite.Name, Time: "0",
				Skipped: &junit.Skipped{Message: "not run: " + st.Error}})
			suite.Skipped++
		}
		suite.Tests = len(suite.Cases)
		root.Suites = append(root.Suites, suite)
	}
	if human != nil {
		human.Tests = len(human.Cases)
		root.Suites = append(root.Suites, *human)
	}
	for _, su := range root.Suites {
		root.Tests += su.Tests
		root.Failures += su.Failures
		root.Errors += su.Errors
		root.Skipped += su.Skipped
	}
	return junit.Write(w, root)
}

// runRow is one row of the game day's index.html.
type runRow struct {
	N               int
	Kind, Name, Ref string
	Verdict         verdict.Verdict
	Took            string
	Nums            []string
	Failed          []string
	Note, Report    string
}

// WriteRunHTML writes the game day's index.html: the verdict, then one row per step with its
// verdict, duration, key numbers, failed checks and a link to the drill's report.
func WriteRunHTML(w io.Writer, s *Summary) error {
	tmpl, err := template.New("run").Parse(runPageTemplate)
	if err != nil {
		return fmt.Errorf("html template: %w", err)
	}
	var rows []runRow
	for _, st := range s.Steps {
		r := runRow{N: st.Index + 1, Kind: st.Kind, Name: st.Name, Ref: st.Ref, Verdict: st.Verdict, Took: "-",
			Failed: failedNames(st.Checks), Note: st.Error}
		for _, m := range metrics() {
			r.Nums = append(r.Nums, fmtNum(st.Key[m.Name], unitSuffix(m.Unit)))
		}
		if !st.Start.IsZero() {
			r.Took = st.End.Sub(st.Start).Round(100 * time.Millisecond).String()
		}
		if st.Kind == KindHuman && st.WaitedS != nil {
			r.Note = strings.TrimSpace(fmt.Sprintf("acknowledged after %.1fs %s", *st.WaitedS, st.Error))
			if st.Verdict != verdict.Acknowledged {
				r.Note = st.Error
			}
		}
		if st.ReportDir != "" {
			r.Report = st.ReportDir + "/" + report.FileHTML
		}
		rows = append(rows, r)
	}
	var columns []string
	for _, m := range metrics() {
		columns = append(columns, m.Title)
	}
	view := struct {
		S       *Summary
		Took    string
		Columns []string
		Rows    []runRow
	}{S: s, Took: s.End.Sub(s.Start).Round(time.Second).String(), Columns: columns, Rows: rows}
	if err := tmpl.Execute(w, view); err != nil {
		return fmt.Errorf("write game day html: %w", err)
	}
	return nil
}

// runPageTemplate is a game day's page: no script, nothing loaded from elsewhere.
const runPageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>game day {{.S.Plan}}: {{.S.Verdict}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: #555; margin: 0 0 12px; }
.verdict { padding: 2px 10px; border-radius: 4px; color: #fff; text-transform: uppercase; font-size: 13px; }
.v-pass, .v-acknowledged { background: #2ca02c; } .v-fail { background: #d62728; }
.v-error, .v-aborted { background: #e08a00; } .v-skipped { background: #999; }
.error { background: #fff3e0; border-left: 4px solid #e08a00; padding: 6px 10px; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.human td { background: #f7f7ff; }
</style>
</head>
<body>
<h1>game day {{.S.Plan}} <span class="verdict v-{{.S.Verdict}}">{{.S.Verdict}}</span></h1>
<p class="meta">run {{.S.ID}} · {{.S.Trigger}} · {{.S.Mode}} · runtime {{.S.Runtime}} · started {{.S.Start.Format "2006-01-02 15:04:05 MST"}} · took {{.Took}}</p>
{{with .S.Error}}<p class="error">{{.}}</p>{{end}}
<table id="steps">
<thead><tr><th>#</th><th>step</th><th>verdict</th><th>took</th>{{range .Columns}}<th>{{.}}</th>{{end}}<th>failed checks / note</th><th>report</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="{{.Kind}}">
<td class="num">{{.N}}</td>
<td>{{if eq .Kind "human"}}human: {{.Name}}{{else}}{{.Name}}{{if and .Ref (ne .Ref .Name)}} <small>({{.Ref}})</small>{{end}}{{end}}</td>
<td><span class="verdict v-{{.Verdict}}">{{.Verdict}}</span></td>
<td class="num">{{.Took}}</td>
{{range .Nums}}<td class="num">{{.}}</td>{{end}}
<td>{{range $i, $c := .Failed}}{{if $i}}, {{end}}<b>{{$c}}</b>{{end}}{{if and .Failed .Note}}<br>{{end}}{{.Note}}</td>
<td>{{if .Report}}<a href="{{.Report}}">report</a>{{else}}-{{end}}</td>
</tr>
{{end}}</tbody>
</table>
<p class="meta">summary.json and junit.xml are next to this page.</p>
</body>
</html>
`
