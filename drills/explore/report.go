package explore

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
)

// Report is an exploration's result: report.json in the exploration's directory.
type Report struct {
	// Seed is the first schedule's seed.
	Seed int64 `json:"seed"`
	// Settings are the design settings explored; Budgets the promises judged.
	Settings map[string]string `json:"settings"`
	Budgets  check.Budgets     `json:"budgets"`
	Started  time.Time         `json:"started"`
	Ended    time.Time         `json:"ended"`
	// Schedules is how many schedules ran (shrinking and replays not counted): Passed + failed
	// ones (len(Failures)) + documented limits (len(Limits)) + Invalid.
	Schedules int `json:"schedules"`
	Passed    int `json:"passed"`
	Invalid   int `json:"invalid"`
	// Rebuilds is how often the cluster was rebuilt after an invalid run.
	Rebuilds int `json:"rebuilds"`
	// SchedulesPerHour is the throughput, shrinking and replays included in the time.
	SchedulesPerHour float64 `json:"schedules_per_hour"`
	// ShrinkRuns is how many runs shrinking took in all.
	ShrinkRuns int `json:"shrink_runs"`
	// Failures are the failing schedules with their minimal drills.
	Failures []Failure `json:"failures"`
	// Limits are failing schedules whose minimal drill needs a fault beyond a stated assumption
	// of the design (Failure.Beyond names it): documented limits, not bugs.
	Limits []Failure `json:"limits,omitempty"`
	// Coverage counts the faults run by kind, target class and whether another fault was active.
	Coverage []CoverageCell `json:"coverage"`
	// KindsExercised of KindsTotal fault kinds were drawn at least once.
	KindsExercised int `json:"kinds_exercised"`
	KindsTotal     int `json:"kinds_total"`
}

// CoverageCell is how many faults of one kind, target class, overlap and flapping ran.
type CoverageCell struct {
	Kind     fault.Kind  `json:"kind"`
	Target   TargetClass `json:"target"`
	Overlap  bool        `json:"overlap"`
	Flapping bool        `json:"flapping"`
	Count    int         `json:"count"`
}

type coverageKey struct {
	kind     fault.Kind
	target   TargetClass
	overlap  bool
	flapping bool
}

type coverage struct {
	kinds  []fault.Kind
	counts map[coverageKey]int
}

func newCoverage(kinds []fault.Kind) *coverage {
	if len(kinds) == 0 {
		kinds = DefaultKinds()
	}
	return &coverage{kinds: kinds, counts: map[coverageKey]int{}}
}

func (c *coverage) add(s Schedule) {
	for i, e := range s.Episodes {
		c.counts[coverageKey{e.Fault.Kind, e.Target, s.Overlapping(i), e.times() > 1}]++
	}
}

func (c *coverage) cells() []CoverageCell {
	out := []CoverageCell{}
	for k, n := range c.counts {
		out = append(out, CoverageCell{Kind: k.kind, Target: k.target, Overlap: k.overlap, Flapping: k.flapping, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Overlap != b.Overlap {
			return !a.Overlap
		}
		return !a.Flapping && b.Flapping
	})
	return out
}

func (c *coverage) kindCounts() (exercised, total int) {
	seen := map[fault.Kind]bool{}
	for k := range c.counts {
		seen[k.kind] = true
	}
	return len(seen), len(c.kinds)
}

// WriteSummary prints the report for a terminal.
func WriteSummary(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "explore: %d schedules from seed %d in %s (%.0f schedules/hour): %d passed, %d failed, %d documented limits, %d invalid",
		r.Schedules, r.Seed, r.Ended.Sub(r.Started).Round(time.Second), r.SchedulesPerHour, r.Passed, len(r.Failures), len(r.Limits), r.Invalid)
	if r.Rebuilds > 0 {
		fmt.Fprintf(w, ", %d rebuilds", r.Rebuilds)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "design: %s\n", settingsText(r.Settings))
	fmt.Fprintf(w, "promises judged: %s\n", budgetsText(r.Budgets))
	for _, f := range r.Failures {
		fmt.Fprintf(w, "\nFAILED schedule %d: %s\n", f.Seed, strings.Join(f.Failed, ", "))
		for _, d := range f.Details {
			fmt.Fprintf(w, "  %s\n", d)
		}
		fmt.Fprintf(w, "  schedule: %s\n", episodesText(f.Schedule))
		fmt.Fprintf(w, "  minimal:  %s (%d shrink runs)\n", episodesText(f.Minimal), f.ShrinkRuns)
		fmt.Fprintf(w, "  failed again in %d of %d replays; replay: drill run %s --seed %d\n", f.Reproduced, f.Replays, f.DrillFile, f.Seed)
	}
	for _, f := range r.Limits {
		fmt.Fprintf(w, "\nDOCUMENTED LIMIT, schedule %d: %s\n", f.Seed, strings.Join(f.Failed, ", "))
		fmt.Fprintf(w, "  minimal:  %s; beyond the assumption: %s\n", episodesText(f.Minimal), strings.Join(f.Beyond, "; "))
		fmt.Fprintf(w, "  failed again in %d of %d replays; replay: drill run %s --seed %d\n", f.Reproduced, f.Replays, f.DrillFile, f.Seed)
	}
	fmt.Fprintf(w, "\ncoverage: %d of %d fault kinds\n", r.KindsExercised, r.KindsTotal)
	for _, c := range r.Coverage {
		ov := ""
		if c.Overlap {
			ov = " overlapping"
		}
		if c.Flapping {
			ov += " flapping"
		}
		fmt.Fprintf(w, "  %-18s %-8s%-21s %d\n", c.Kind, c.Target, ov, c.Count)
	}
	return nil
}

func settingsText(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

func budgetsText(b check.Budgets) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(b)) {
		parts = append(parts, fmt.Sprintf("%s<=%g", k, b[k]))
	}
	return strings.Join(parts, " ")
}

// write saves report.json and report.html in dir.
func (r *Report) write(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("explore report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("explore report: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return fmt.Errorf("explore report: %w", err)
	}
	defer f.Close()
	if err := htmlPage.Execute(f, r); err != nil {
		return fmt.Errorf("explore report: %w", err)
	}
	return f.Close()
}

// Load reads an exploration's report.json.
func Load(dir string) (*Report, error) {
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		return nil, fmt.Errorf("explore report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("explore report %s: %w", dir, err)
	}
	return &r, nil
}

var htmlPage = template.Must(template.New("explore").Funcs(template.FuncMap{
	"episodes": episodesText,
	"settings": settingsText,
	"budgets":  budgetsText,
	"base":     filepath.Base,
	"minutes":  func(a, b time.Time) string { return b.Sub(a).Round(time.Second).String() },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>drill explore from seed {{.Seed}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.fail{color:#b00}</style>
</head><body>
<h1>drill explore from seed {{.Seed}}</h1>
<p>{{.Schedules}} schedules in {{minutes .Started .Ended}} ({{printf "%.0f" .SchedulesPerHour}} per hour):
{{.Passed}} passed, <span class="fail">{{len .Failures}} failed</span>, {{len .Limits}} documented limits, {{.Invalid}} invalid, {{.Rebuilds}} rebuilds.</p>
<p>Design: {{settings .Settings}}<br>Promises judged: {{budgets .Budgets}}</p>
<h2>Failures</h2>
{{if not .Failures}}<p>None.</p>{{end}}
{{range .Failures}}<h3 class="fail">Schedule {{.Seed}}: {{range .Failed}}{{.}} {{end}}</h3>
<ul>{{range .Details}}<li>{{.}}</li>{{end}}</ul>
<p>Schedule: {{episodes .Schedule}}<br>Minimal ({{.ShrinkRuns}} shrink runs): {{episodes .Minimal}}<br>
Failed again in {{.Reproduced}} of {{.Replays}} replays. Replay: <code>drill run {{base .DrillFile}} --seed {{.Seed}}</code></p>
{{end}}
{{if .Limits}}<h2>Documented limits</h2>
<p>Failures whose minimal drill needs a fault beyond a stated assumption of the design: the design does not claim to survive them.</p>
{{range .Limits}}<h3>Schedule {{.Seed}}: {{range .Failed}}{{.}} {{end}}</h3>
<p>Minimal: {{episodes .Minimal}}<br>Beyond the assumption: {{range .Beyond}}{{.}} {{end}}<br>
Failed again in {{.Reproduced}} of {{.Replays}} replays. Replay: <code>drill run {{base .DrillFile}} --seed {{.Seed}}</code></p>
{{end}}{{end}}
<h2>Coverage: {{.KindsExercised}} of {{.KindsTotal}} fault kinds</h2>
<table><tr><th>kind</th><th>target</th><th>overlapping another fault</th><th>flapping</th><th>faults run</th></tr>
{{range .Coverage}}<tr><td>{{.Kind}}</td><td>{{.Target}}</td><td>{{if .Overlap}}yes{{else}}no{{end}}</td><td>{{if .Flapping}}yes{{else}}no{{end}}</td><td>{{.Count}}</td></tr>
{{end}}</table>
</body></html>
`))
