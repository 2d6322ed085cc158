package gameday

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/drills/verdict"
	"github.com/drillworks/drill/topology"
)

// Files in a run's directory.
const (
	FileSummary = "summary.json"
	FileJUnit   = "junit.xml"
	FileIndex   = "index.html"
	FileWebhook = "webhook.json"
)

// DefaultWebhookWait is how long the end of a run waits for the webhook before leaving it to
// finish in the background.
const DefaultWebhookWait = 5 * time.Second

// DrillRequest is one drill for RunDrill to run: bring a cluster up, run the drill, tear down.
type DrillRequest struct {
	// Plan is the plan's name; Index the step's position in the plan (0-based).
	Plan  string
	Index int
	// Drill is the parsed drill with the plan's settings and budgets applied.
	Drill *spec.Drill
	// Topology is the topology to bring up, every setting applied.
	Topology *topology.Topology
	// Runtime runs the nodes (local, docker).
	Runtime string
	// ReportDir receives the drill's report (absolute path).
	ReportDir string
	// Seed is the workload's random seed.
	Seed int64
	// Progress receives the drill's progress lines.
	Progress io.Writer
}

// RunDrillFunc runs one drill and returns its report. The report may come with an error (e.g.
// it could not be written); a nil report with an error means the drill could not run at all.
// It must undo its faults and tear its cluster down whatever happens, ctx cancelled included.
type RunDrillFunc func(ctx context.Context, req DrillRequest) (*report.Report, error)

// Config is what Run needs.
type Config struct {
	// Plan is the resolved plan (Load).
	Plan *Plan
	// History is where runs go.
	History *History
	// RunDrill runs one drill (the CLI passes its own; tests pass fakes).
	RunDrill RunDrillFunc
	// Unattended skips human steps.
	Unattended bool
	// Operator acknowledges human steps (nil: no operator; a human step then errors unless
	// Unattended).
	Operator *Operator
	// Stdout receives progress, prompts and the final table (nil: discarded).
	Stdout io.Writer
	// Logger receives logs (nil: discarded).
	Logger *slog.Logger
	// Trigger is TriggerManual (default) or TriggerSchedule.
	Trigger string
	// Seed is the first drill's workload seed; drill i gets Seed+i (0: from the clock).
	Seed int64
	// HTTPClient posts the webhook (nil: a default client).
	HTTPClient *http.Client
	// WebhookWait is how long the end of the run waits for the webhook (default DefaultWebhookWait).
	WebhookWait time.Duration
	// WebhookBackoff is the first wait between webhook attempts (default DefaultWebhookBackoff).
	WebhookBackoff time.Duration
	// Regression decides what the history page marks as a regression (zero: DefaultRegressionRule).
	Regression RegressionRule
}

// Summary is the outcome of one run, as written to summary.json.
type Summary struct {
	// SchemaVersion and DrillVersion: what the fields mean, and the drill that wrote them
	// (report.SchemaVersion, report.DrillVersion).
	SchemaVersion int    `json:"schema_version"`
	DrillVersion  string `json:"drill_version"`
	// ID is the run's id (its directory name under runs/).
	ID string `json:"id"`
	// Plan is the plan's name; PlanFile the plan file.
	Plan     string `json:"plan"`
	PlanFile string `json:"plan_file"`
	// Mode is stop-on-first-failure or run-all; Trigger manual or schedule.
	Mode    Mode   `json:"mode"`
	Trigger string `json:"trigger"`
	// Runtime runs the nodes.
	Runtime string `json:"runtime"`
	// Start and End bound the run.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Verdict is the worst verdict of the steps that ran: pass, fail, error or aborted.
	Verdict verdict.Verdict `json:"verdict"`
	// Error says why the verdict is error or aborted, when the game day itself knows.
	Error string `json:"error,omitempty"`
	// Dir is the run's directory (absolute).
	Dir string `json:"dir"`
	// Steps are the plan's steps with their outcomes, in order.
	Steps []StepResult `json:"steps"`
	// FailedChecks are every failed check of every drill.
	FailedChecks []FailedCheck `json:"failed_checks"`
}

// StepResult is one step's outcome.
type StepResult struct {
	// Index is the step's position in the plan (0-based).
	Index int `json:"index"`
	// Kind is drill or human.
	Kind string `json:"kind"`
	// Name is the drill's name, or the human step's prompt.
	Name string `json:"name"`
	// Ref is the drill as the plan names it.
	Ref string `json:"ref,omitempty"`
	// Verdict is the drill's verdict (pass, fail, error, aborted) or skipped; for a human step
	// acknowledged, skipped, error or aborted.
	Verdict verdict.Verdict `json:"verdict"`
	// Start and End bound the step (zero when skipped).
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// ReportDir is the drill's report directory, relative to the run's directory.
	ReportDir string `json:"report_dir,omitempty"`
	// Seed is the drill's workload seed.
	Seed int64 `json:"seed,omitempty"`
	// Error says why the step errored, was aborted or skipped.
	Error string `json:"error,omitempty"`
	// Key are the drill's headline numbers.
	Key KeyNumbers `json:"key"`
	// Checks are the drill's checks.
	Checks []report.Check `json:"checks,omitempty"`
	// WaitedS is how long a human step waited for its acknowledgement, in seconds.
	WaitedS *float64 `json:"waited_s,omitempty"`
}

// FailedCheck is one failed check of a drill.
type FailedCheck struct {
	// Drill is the drill's name; Check the check's.
	Drill string `json:"drill"`
	Check string `json:"check"`
	// Measured and Budget are the check's value and limit (null when unknown), in Unit.
	Measured *float64 `json:"measured"`
	Budget   *float64 `json:"budget"`
	Unit     string   `json:"unit"`
	// Detail says what was seen.
	Detail string `json:"detail"`
}

// Step kinds in StepResult.Kind.
const (
	KindDrill = "drill"
	KindHuman = "human"
)

// verdictRank orders verdicts from best to worst; the game day's verdict is the worst.
func verdictRank(v verdict.Verdict) int {
	switch v {
	case verdict.Pass:
		return 0
	case verdict.Fail:
		return 1
	case verdict.Error:
		return 2
	case verdict.Aborted:
		return 3
	}
	return -1
}

// Run runs the plan once. It takes the history's run lock first: if another run holds it, the
// run is recorded as skipped and Run returns a *BusyError. The returned summary's verdict is the
// worst verdict of its steps. The webhook, if any, is posted in the background; Run waits for it
// at most WebhookWait.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg = withDefaults(cfg)
	lock, err := cfg.History.TryLock(fmt.Sprintf("plan %s, pid %d, since %s", cfg.Plan.Name, os.Getpid(), time.Now().Format(time.RFC3339)))
	if err != nil {
		var busy *BusyError
		if errors.As(err, &busy) {
			recordSkipped(cfg, time.Now(), busy)
		}
		return nil, err
	}
	s, waitWebhook, err := runLocked(ctx, cfg)
	lock.Release()
	waitWebhook()
	return s, err
}

// recordSkipped appends a skipped entry and refreshes the history page.
func recordSkipped(cfg Config, due time.Time, busy *BusyError) {
	e := Entry{Plan: cfg.Plan.Name, PlanFile: cfg.Plan.Source, Status: StatusSkipped, Trigger: cfg.Trigger, Start: due,
		Reason: "overlap: " + busy.Error()}
	if err := cfg.History.Append(e); err != nil {
		cfg.Logger.Error("record skipped run", "err", err)
	}
	if err := cfg.History.WriteIndex(cfg.Regression); err != nil {
		cfg.Logger.Error("history page", "err", err)
	}
	fmt.Fprintf(cfg.Stdout, "gameday %s: run due at %s skipped: %s\n", cfg.Plan.Name, due.Format(time.TimeOnly), busy.Error())
}

func withDefaults(cfg Config) Config {
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Trigger == "" {
		cfg.Trigger = TriggerManual
	}
	if cfg.WebhookWait <= 0 {
		cfg.WebhookWait = DefaultWebhookWait
	}
	if cfg.Regression.isZero() {
		cfg.Regression = DefaultRegressionRule()
	}
	return cfg
}

// runLocked runs the plan with the run lock held. The webhook, if any, is on its way when it
// returns; waitWebhook waits for it (at most WebhookWait) and should be called after the lock is
// released, so a slow receiver never delays the next run.
func runLocked(ctx context.Context, cfg Config) (s *Summary, waitWebhook func(), err error) {
	p := cfg.Plan
	start := time.Now()
	id, err := cfg.History.newRunDir(start, p.Name)
	if err != nil {
		return nil, func() {}, err
	}
	dir := filepath.Join(cfg.History.Dir(), RunsDir, id)
	s = &Summary{SchemaVersion: report.SchemaVersion, DrillVersion: report.DrillVersion(), ID: id, Plan: p.Name, PlanFile: p.Source, Mode: p.Mode, Trigger: cfg.Trigger, Runtime: p.Runtime,
		Start: start, Dir: dir, FailedChecks: []FailedCheck{}}
	out := cfg.Stdout
	fmt.Fprintf(out, "gameday %s: run %s (%d steps, %s, %s)\n", p.Name, id, len(p.Steps), p.Mode, cfg.Trigger)
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	stopped := ""
	for i, st := range p.Steps {
		res := StepResult{Index: i, Kind: KindDrill, Key: KeyNumbers{}}
		if st.Drill != nil {
			res.Name, res.Ref = st.Label(), st.Drill.Ref
		} else {
			res.Kind, res.Name = KindHuman, st.Human
		}
		switch {
		case stopped != "":
			res.Verdict, res.Error = verdict.Skipped, stopped
		case ctx.Err() != nil:
			res.Verdict, res.Error = verdict.Skipped, "game day aborted"
			stopped = "game day aborted"
		case st.Drill != nil:
			fmt.Fprintf(out, "gameday [%d/%d] drill %s\n", i+1, len(p.Steps), res.Name)
			runDrillStep(ctx, cfg, st, i, seed+int64(i), dir, &res)
			fmt.Fprintf(out, "gameday [%d/%d] %s: %s in %s\n", i+1, len(p.Steps), res.Name, strings.ToUpper(string(res.Verdict)),
				res.End.Sub(res.Start).Round(time.Millisecond))
		default:
			runHumanStep(ctx, cfg, st, i, &res)
		}
		if stopped == "" {
			switch res.Verdict {
			case verdict.Aborted:
				stopped = "game day aborted"
			case verdict.Fail, verdict.Error:
				if p.Mode == ModeStopOnFirstFailure {
					stopped = fmt.Sprintf("stop-on-first-failure: step %d (%s) %s", i+1, res.Name, res.Verdict)
				}
			}
		}
		s.Steps = append(s.Steps, res)
	}
	s.End = time.Now()
	s.Verdict, s.Error = overallVerdict(s.Steps, ctx.Err() != nil)
	for _, st := range s.Steps {
		for _, c := range st.Checks {
			if c.Verdict == verdict.Fail {
				s.FailedChecks = append(s.FailedChecks, FailedCheck{Drill: st.Name, Check: c.Name, Measured: c.Measured,
					Budget: c.Budget, Unit: c.Unit, Detail: c.Detail})
			}
		}
	}

	var errs []error
	if err := writeRunFiles(dir, s); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.History.Append(historyEntry(s, cfg.History.Dir())); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.History.WriteIndex(cfg.Regression); err != nil {
		errs = append(errs, err)
	}
	fmt.Fprintln(out)
	_ = WriteSummaryText(out, s)
	fmt.Fprintf(out, "game day report: %s\nhistory: %s\n", filepath.Join(dir, FileIndex), filepath.Join(cfg.History.Dir(), FileHistoryIndex))
	return s, notify(ctx, cfg, s), errors.Join(errs...)
}

// overallVerdict is the worst verdict of the steps that ran.
func overallVerdict(steps []StepResult, aborted bool) (verdict.Verdict, string) {
	var worst verdict.Verdict
	why := ""
	for _, st := range steps {
		if verdictRank(st.Verdict) > verdictRank(worst) {
			worst, why = st.Verdict, st.Error
		}
	}
	switch {
	case aborted && verdictRank(worst) < verdictRank(verdict.Aborted):
		return verdict.Aborted, "game day aborted"
	case worst == "":
		return verdict.Error, "no step ran"
	case worst == verdict.Pass:
		return worst, ""
	}
	return worst, why
}

func runDrillStep(ctx context.Context, cfg Config, st Step, i int, seed int64, dir string, res *StepResult) {
	ds := st.Drill
	rel := fmt.Sprintf("%02d-%s", i+1, ds.Drill.Name)
	res.ReportDir, res.Seed, res.Start = rel, seed, time.Now()
	// Every run gets its own copy: RunDrill (and the runner) may annotate the drill.
	drill := *ds.Drill
	drill.Settings = copyMap(ds.Drill.Settings)
	drill.Budgets = check.Budgets(copyMap(map[string]float64(ds.Drill.Budgets)))
	topo := *ds.Resolved
	req := DrillRequest{Plan: cfg.Plan.Name, Index: i, Drill: &drill, Topology: &topo, Runtime: cfg.Plan.Runtime,
		ReportDir: filepath.Join(dir, rel), Seed: seed, Progress: cfg.Stdout}
	rep, err := safeRunDrill(ctx, cfg.RunDrill, req)
	res.End = time.Now()
	switch {
	case rep == nil && err == nil:
		res.Verdict, res.Error = verdict.Error, "the drill runner returned no report"
	case rep == nil && ctx.Err() != nil:
		res.Verdict, res.Error = verdict.Aborted, err.Error()
	case rep == nil:
		res.Verdict, res.Error = verdict.Error, err.Error()
	default:
		res.Verdict, res.Error, res.Checks = rep.Verdict, rep.Error, rep.Checks
		res.Key = keyNumbers(rep.Metrics)
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
		if verdictRank(res.Verdict) < 0 {
			res.Verdict = verdict.Error
		}
	}
	if rep == nil {
		res.ReportDir = "" // nothing was written there
		if _, statErr := os.Stat(filepath.Join(req.ReportDir, report.FileJSON)); statErr == nil {
			res.ReportDir = rel
		}
	}
	cfg.Logger.Debug("drill finished", "plan", cfg.Plan.Name, "drill", res.Name, "verdict", res.Verdict)
}

// safeRunDrill turns a panic of RunDrill into an error, so one broken drill cannot take the
// scheduler down.
func safeRunDrill(ctx context.Context, run RunDrillFunc, req DrillRequest) (rep *report.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			rep, err = nil, fmt.Errorf("panic running drill %s: %v", req.Drill.Name, p)
		}
	}()
	return run(ctx, req)
}

// keyNumbers picks the history's key numbers from a report: each trend metric, the largest of a
// per-region one.
func keyNumbers(m report.Metrics) KeyNumbers {
	k := KeyNumbers{}
	for _, def := range check.TrendMetrics() {
		k[def.Name] = m[def.Name].Largest()
	}
	return k
}

func runHumanStep(ctx context.Context, cfg Config, st Step, i int, res *StepResult) {
	n := len(cfg.Plan.Steps)
	if cfg.Unattended {
		res.Verdict, res.Error = verdict.Skipped, "unattended"
		fmt.Fprintf(cfg.Stdout, "gameday [%d/%d] human step skipped (unattended): %s\n", i+1, n, st.Human)
		return
	}
	res.Start = time.Now()
	fmt.Fprintf(cfg.Stdout, "gameday [%d/%d] HUMAN STEP: %s\n    press Enter when done ", i+1, n, st.Human)
	waited, err := cfg.Operator.Ack(ctx)
	res.End = time.Now()
	res.WaitedS = ptr(waited.Seconds())
	switch {
	case err == nil:
		res.Verdict = verdict.Acknowledged
		fmt.Fprintf(cfg.Stdout, "\ngameday [%d/%d] acknowledged after %s\n", i+1, n, waited.Round(100*time.Millisecond))
	case ctx.Err() != nil:
		res.Verdict, res.Error = verdict.Aborted, "aborted while waiting for the operator"
		fmt.Fprintln(cfg.Stdout)
	default:
		res.Verdict, res.Error = verdict.Error, err.Error()
		fmt.Fprintf(cfg.Stdout, "\ngameday [%d/%d] %v\n", i+1, n, err)
	}
}

// Operator reads acknowledgements (lines) from a terminal. One Operator serves every run of a
// process, so a read left pending by an aborted prompt is never raced by a second reader.
type Operator struct {
	in    io.Reader
	once  sync.Once
	lines chan struct{}
}

// NewOperator reads acknowledgements from in (usually stdin).
func NewOperator(in io.Reader) *Operator {
	return &Operator{in: in, lines: make(chan struct{}, 1)}
}

func (o *Operator) start() {
	go func() {
		r := bufio.NewReader(o.in)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				close(o.lines)
				return
			}
			o.lines <- struct{}{}
		}
	}()
}

// Ack waits for the operator to press Enter and returns how long that took. Lines typed before
// the prompt do not count. It fails when there is no operator (nil, or input closed).
func (o *Operator) Ack(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if o == nil || o.in == nil {
		return 0, errors.New("no operator to acknowledge a human step (no terminal input; run with --unattended to skip human steps)")
	}
	o.once.Do(o.start)
	for drained := false; !drained; {
		select {
		case _, ok := <-o.lines:
			if !ok {
				drained = true
			}
		default:
			drained = true
		}
	}
	select {
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	case _, ok := <-o.lines:
		if !ok {
			return time.Since(start), errors.New("no operator: input closed before the acknowledgement (run with --unattended to skip human steps)")
		}
		return time.Since(start), nil
	}
}

// notify posts the webhook in the background; the function it returns waits for the delivery
// at most WebhookWait and reports it.
func notify(ctx context.Context, cfg Config, s *Summary) func() {
	wh := cfg.Plan.Webhook
	if wh == nil || wh.URL == "" {
		return func() {}
	}
	n := &Notifier{URL: wh.URL, Timeout: wh.Timeout, Retries: wh.Retries, Backoff: cfg.WebhookBackoff, Client: cfg.HTTPClient, Logger: cfg.Logger,
		Headers: wh.Headers, Secret: wh.Secret}
	payload := PayloadFor(s)
	done := make(chan Delivery, 1)
	// Not cancelled with ctx: an aborted game day is news worth delivering. Bound limits it.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.Bound())
	go func() {
		defer cancel()
		d := n.Send(bctx, payload)
		_ = writeFileAtomic(filepath.Join(s.Dir, FileWebhook), func(w io.Writer) error { return writeJSON(w, d) })
		done <- d
	}()
	return func() {
		t := time.NewTimer(cfg.WebhookWait)
		defer t.Stop()
		select {
		case d := <-done:
			if d.Delivered {
				fmt.Fprintf(cfg.Stdout, "webhook: delivered (%d attempts, HTTP %d)\n", d.Attempts, d.Status)
			} else {
				fmt.Fprintf(cfg.Stdout, "webhook: NOT delivered after %d attempts: %s\n", d.Attempts, d.Error)
			}
		case <-t.C:
			fmt.Fprintf(cfg.Stdout, "webhook: still trying after %s; not waiting for it (outcome in %s)\n", cfg.WebhookWait, FileWebhook)
		}
	}
}

// PayloadFor is the webhook payload of a run.
func PayloadFor(s *Summary) Payload {
	p := Payload{SchemaVersion: report.SchemaVersion, DrillVersion: report.DrillVersion(), Event: EventFinished, Plan: s.Plan, RunID: s.ID, Verdict: s.Verdict, Trigger: s.Trigger, Start: s.Start, End: s.End,
		ReportPath: filepath.Join(s.Dir, FileIndex), SummaryPath: filepath.Join(s.Dir, FileSummary),
		FailedChecks: append([]FailedCheck{}, s.FailedChecks...), Drills: []PayloadDrill{}, Error: s.Error}
	for _, st := range s.Steps {
		if st.Kind != KindDrill {
			continue
		}
		d := PayloadDrill{Name: st.Name, Verdict: st.Verdict}
		if st.ReportDir != "" {
			d.ReportDir = filepath.Join(s.Dir, st.ReportDir)
		}
		p.Drills = append(p.Drills, d)
	}
	return p
}

// historyEntry is the history's line for a run.
func historyEntry(s *Summary, historyDir string) Entry {
	rel := func(path string) string {
		if r, err := filepath.Rel(historyDir, path); err == nil {
			return filepath.ToSlash(r)
		}
		return path
	}
	e := Entry{ID: s.ID, Plan: s.Plan, PlanFile: s.PlanFile, Status: StatusRan, Trigger: s.Trigger, Start: s.Start, End: s.End,
		Verdict: s.Verdict, Dir: rel(s.Dir), Reason: s.Error}
	for _, st := range s.Steps {
		if st.Kind != KindDrill {
			continue
		}
		d := DrillEntry{Name: st.Name, Verdict: st.Verdict, Key: st.Key}
		if st.ReportDir != "" {
			d.Report = rel(filepath.Join(s.Dir, st.ReportDir))
		}
		for _, c := range st.Checks {
			if c.Verdict == verdict.Fail {
				d.FailedChecks = append(d.FailedChecks, c.Name)
			}
		}
		e.Drills = append(e.Drills, d)
	}
	return e
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ptr[T any](v T) *T { return &v }
