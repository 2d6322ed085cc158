// Package report turns a finished drill into its artefacts: report.json (the machine-readable
// verdict, read back by Load for `drill report DIR`), junit.xml (one test case per check, for CI),
// report.html (self-contained: an inline-SVG timeline of faults, DNS answers, writes, epoch
// changes and replication lag, then the checks) and a terminal summary.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
	"github.com/google/renameio/v2"
)

// Files in a drill's report directory.
const (
	FileJSON    = "report.json"
	FileJUnit   = "junit.xml"
	FileHTML    = "report.html"
	FileHistory = "history.jsonl"
)

// Report is the outcome of one drill run, as written to report.json.
type Report struct {
	// SchemaVersion is SchemaVersion: what this JSON's fields mean.
	SchemaVersion int `json:"schema_version"`
	// DrillVersion is the drill binary that ran (DrillVersion).
	DrillVersion string `json:"drill_version"`
	// Drill is the drill's name.
	Drill string `json:"drill"`
	// Verdict is pass, fail, error or aborted.
	Verdict verdict.Verdict `json:"verdict"`
	// Runtime is the runtime that ran the nodes (local, docker).
	Runtime string `json:"runtime"`
	// Seed is the random seed of the run, for replay.
	Seed int64 `json:"seed"`
	// Start and End bound the run.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Error says why the verdict is error or aborted; empty otherwise.
	Error string `json:"error,omitempty"`
	// Checks are the check results, in check.Run order.
	Checks []Check `json:"checks"`
	// Metrics are the headline measurements.
	Metrics Metrics `json:"metrics"`
	// Faults are the faults injected, in start order.
	Faults []Fault `json:"faults"`
	// Residue is what the post-run residue check found (toxics, processes, ...).
	Residue []Residue `json:"residue"`
	// Settings are the drill's design overrides.
	Settings map[string]string `json:"settings"`
	// Topology is the topology's name.
	Topology string `json:"topology"`
	// Beyond names the design assumptions the drill's faults break: a failure under them is a
	// documented limit of the design, not a bug.
	Beyond []string `json:"beyond,omitempty"`
}

// Check is one check's result.
type Check struct {
	Name    string          `json:"name"`
	Verdict verdict.Verdict `json:"verdict"`
	// Measured is null when nothing could be measured.
	Measured *float64 `json:"measured"`
	// Budget is null when the drill set none.
	Budget *float64 `json:"budget"`
	Unit   string   `json:"unit"`
	Detail string   `json:"detail"`
}

// Metrics are the headline numbers by name: every metric of the checkers' catalogue
// (check.Metrics), measured or not.
type Metrics map[string]MetricValue

// MetricValue is one metric's value: one number (null when not measured) or, for a per-region
// metric, an object of region → number (empty when not measured).
type MetricValue struct {
	// Value is the number of a metric measured once; nil when not measured.
	Value *float64
	// ByRegion holds a per-region metric's values; nil for other metrics.
	ByRegion map[string]float64
}

// MarshalJSON writes a number, null, or an object of region → number.
func (v MetricValue) MarshalJSON() ([]byte, error) {
	if v.ByRegion != nil {
		return json.Marshal(v.ByRegion)
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *MetricValue) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, &v.ByRegion)
	}
	return json.Unmarshal(b, &v.Value)
}

// Largest is the value, or the largest regional value; nil when not measured.
func (v MetricValue) Largest() *float64 {
	if v.ByRegion == nil {
		return v.Value
	}
	var out *float64
	for _, x := range v.ByRegion {
		if out == nil || x > *out {
			out = ptr(x)
		}
	}
	return out
}

// Fault is one injected fault.
type Fault struct {
	ID   string     `json:"id"`
	Kind fault.Kind `json:"kind"`
	// Params are the fault's settings in words (latency, loss share), if it has any.
	Params string    `json:"params,omitempty"`
	Target string    `json:"target"`
	Start  time.Time `json:"start"`
	// End is when the fault was healed; null if the history holds no stop.
	End *time.Time `json:"end"`
	// Undone is true when the fault is known to be removed: its stop is in the history, or the
	// harness's ledger confirmed the teardown.
	Undone bool `json:"undone"`
}

// What is the fault's kind with its settings, e.g. "latency +150ms ±20ms".
func (f Fault) What() string {
	if f.Params == "" {
		return string(f.Kind)
	}
	return string(f.Kind) + " " + f.Params
}

// Residue is one item of the post-run residue check.
type Residue struct {
	// What was checked, e.g. "toxiproxy toxics", "node processes".
	What string `json:"what"`
	// Clean is true when nothing was left behind.
	Clean bool `json:"clean"`
	// Detail says what was left, or how it was checked.
	Detail string `json:"detail"`
}

// Input is what Build assembles a report from.
type Input struct {
	// Drill, Runtime and Topology name the drill, the runtime and the topology.
	Drill, Runtime, Topology string
	// Seed is the run's random seed.
	Seed int64
	// Start and End bound the run.
	Start, End time.Time
	// Settings are the drill's design overrides.
	Settings map[string]string
	// Results are the check results (check.Run).
	Results []check.Result
	// History is the recorded history; its fault ops give Report.Faults.
	History []history.Op
	// Undone holds the ids of faults the harness confirmed removed, beyond those with a stop op.
	Undone map[string]bool
	// Residue is the residue check's findings.
	Residue []Residue
	// Err is why the drill could not finish (verdict error), if it could not.
	Err error
	// Aborted is true when the drill was stopped on purpose (verdict aborted); Err says why.
	Aborted bool
	// Beyond names the design assumptions the drill's faults break.
	Beyond []string
}

// Build assembles a report. The verdict is aborted if in.Aborted, error if in.Err is set;
// otherwise fail if any check failed, pass if at least one passed, error if none could be judged.
// A pass with residue left behind becomes error: the run did not clean up after itself.
func Build(in Input) *Report {
	r := &Report{
		SchemaVersion: SchemaVersion, DrillVersion: DrillVersion(),
		Drill: in.Drill, Runtime: in.Runtime, Seed: in.Seed, Start: in.Start, End: in.End,
		Topology: in.Topology, Settings: map[string]string{}, Residue: append([]Residue{}, in.Residue...),
		Checks: ChecksFrom(in.Results), Metrics: MetricsFrom(in.Results), Faults: FaultsFrom(in.History, in.Undone),
		Beyond: slices.Clone(in.Beyond),
	}
	for k, v := range in.Settings {
		r.Settings[k] = v
	}
	switch {
	case in.Aborted:
		r.Verdict = verdict.Aborted
		r.Error = "aborted"
		if in.Err != nil {
			r.Error = in.Err.Error()
		}
	case in.Err != nil:
		r.Verdict, r.Error = verdict.Error, in.Err.Error()
	default:
		r.Verdict = VerdictFromChecks(r.Checks)
		if r.Verdict == verdict.Error {
			r.Error = "no check could be judged"
		}
	}
	if r.Verdict == verdict.Pass {
		var dirty []string
		for _, res := range r.Residue {
			if !res.Clean {
				dirty = append(dirty, res.What)
			}
		}
		if len(dirty) > 0 {
			r.Verdict, r.Error = verdict.Error, "cleanup left residue: "+strings.Join(dirty, ", ")
		}
	}
	return r
}

// VerdictFromChecks is fail if any check failed, pass if at least one passed, error otherwise.
func VerdictFromChecks(checks []Check) verdict.Verdict {
	passed := false
	for _, c := range checks {
		switch c.Verdict {
		case verdict.Fail:
			return verdict.Fail
		case verdict.Pass:
			passed = true
		}
	}
	if passed {
		return verdict.Pass
	}
	return verdict.Error
}

// ChecksFrom converts check results, keeping their order.
func ChecksFrom(results []check.Result) []Check {
	out := make([]Check, 0, len(results))
	for _, res := range results {
		c := Check{Name: res.Name, Verdict: res.Verdict, Unit: res.Unit, Detail: res.Detail}
		if !res.NoData {
			c.Measured = ptr(res.Measured)
		}
		if res.HasBudget {
			c.Budget = ptr(res.Budget)
		}
		out = append(out, c)
	}
	return out
}

// MetricsFrom collects the catalogue's metrics from check results.
func MetricsFrom(results []check.Result) Metrics {
	m := Metrics{}
	for _, def := range check.Metrics() {
		if def.PerRegion {
			m[def.Name] = MetricValue{ByRegion: map[string]float64{}}
		} else {
			m[def.Name] = MetricValue{}
		}
	}
	for _, res := range results {
		for _, mv := range res.Metrics {
			cur, known := m[mv.Name]
			switch {
			case !known:
			case cur.ByRegion != nil:
				cur.ByRegion[mv.Region] = mv.Value
			default:
				cur.Value = ptr(mv.Value)
				m[mv.Name] = cur
			}
		}
	}
	return m
}

// FaultsFrom lists the faults of a history, in start order. undone names faults the harness
// confirmed removed although the history holds no stop for them.
func FaultsFrom(ops []history.Op, undone map[string]bool) []Fault {
	out := []Fault{}
	for _, w := range history.FaultWindows(ops) {
		f := Fault{ID: w.ID, Kind: w.Kind, Params: w.Params, Target: w.Target(), Start: w.Start, Undone: w.Stopped || undone[w.ID]}
		if f.Target == "" {
			if _, rest, ok := strings.Cut(w.ID, ":"); ok {
				f.Target = rest
			}
		}
		if w.Stopped {
			f.End = ptr(w.End)
		}
		out = append(out, f)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report json: %w", err)
	}
	return nil
}

// Load reads report.json from a report directory.
func Load(dir string) (*Report, error) {
	path := filepath.Join(dir, FileJSON)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("load report %s: %w", path, err)
	}
	if r.Drill == "" || r.Verdict == "" {
		return nil, fmt.Errorf("load report %s: not a drill report (no drill or verdict)", path)
	}
	return &r, nil
}

// LoadHistory reads history.jsonl from a report directory.
func LoadHistory(dir string) ([]history.Op, error) {
	path := filepath.Join(dir, FileHistory)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	defer f.Close()
	ops, err := history.Read(f)
	if err != nil {
		return nil, fmt.Errorf("load history %s: %w", path, err)
	}
	return ops, nil
}

// WriteAll writes report.json, junit.xml and report.html into dir (which must exist). Each file
// is written to a temporary name and renamed, so a reader never sees half a report.
func WriteAll(dir string, r *Report, ops []history.Op) error {
	writers := []struct {
		name  string
		write func(io.Writer) error
	}{
		{FileJSON, func(w io.Writer) error { return WriteJSON(w, r) }},
		{FileJUnit, func(w io.Writer) error { return WriteJUnit(w, r) }},
		{FileHTML, func(w io.Writer) error { return WriteHTML(w, r, ops) }},
		{FileProm, func(w io.Writer) error { return WriteProm(w, r) }},
	}
	var errs []error
	for _, wr := range writers {
		if err := WriteFileAtomic(filepath.Join(dir, wr.name), 0o644, wr.write); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WriteFileAtomic writes path through a temporary file in its directory, fsync'd before it is
// renamed over path (and the directory fsync'd after), so a reader sees the old or the whole new
// file, also after a crash.
func WriteFileAtomic(path string, perm os.FileMode, write func(io.Writer) error) error {
	t, err := renameio.NewPendingFile(path, renameio.WithPermissions(perm))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer t.Cleanup() // no-op after CloseAtomicallyReplace
	if err := write(t); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := t.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fmtValue formats a measured value or budget with its unit; "-" for null.
func fmtValue(v *float64, unit string) string {
	if v == nil {
		return "-"
	}
	s := fmt.Sprintf("%g", *v)
	switch unit {
	case "s", "ms":
		return s + " " + unit
	case "":
		return s
	}
	return s + " " + unit
}
