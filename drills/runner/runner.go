// Package runner runs one drill against a running system: it executes the drill file's steps
// (steady-state gates, workload, fault injections, expectations, waits, heals, final read),
// records everything on one history timeline, always undoes its faults, checks the history and
// writes the report. It reaches the system only through the System interface.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/drills/workload"
	"github.com/drillworks/drill/topology"
)

// System is everything a drill needs from a running cluster: one small interface, implemented
// by compose.Cluster for every runtime.
type System interface {
	// Plan is the running plan.
	Plan() *topology.Plan
	// RuntimeName names the runtime.
	RuntimeName() string
	// Capabilities are the runtime's.
	Capabilities() runtime.Capabilities
	// Status is the cluster's state now.
	Status(ctx context.Context) (*observe.Status, error)
	// Apply injects a fault (recorded in the fault ledger first).
	Apply(ctx context.Context, f fault.Fault) error
	// Undo removes one fault; UndoAll every outstanding fault.
	Undo(ctx context.Context, id string) error
	UndoAll(ctx context.Context) error
	// Residue checks nothing drill injected is left behind.
	Residue(ctx context.Context) []inject.ResidueItem
	// Endpoint is where a node's port is reached from here.
	Endpoint(node string, port int) (string, error)
	// Active lists the faults in force.
	Active() []fault.Fault
}

// Options configure one run.
type Options struct {
	// Drill is the parsed drill (already resolved against the topology).
	Drill *spec.Drill
	// System is the running cluster.
	System System
	// ReportDir receives report.json, junit.xml, report.html and history.jsonl.
	ReportDir string
	// Seed makes the workload repeatable.
	Seed int64
	// KeyPrefix starts every key the workload writes (see workload.Config.KeyPrefix).
	KeyPrefix string
	// Progress receives live progress lines (nil: none).
	Progress io.Writer
	// Live says Progress is a terminal: a status line under the progress lines is redrawn in
	// place (step, elapsed time, workload counters, faults in force).
	Live bool
	// Color colours the status line (a terminal without NO_COLOR).
	Color bool
	// Logger receives logs.
	Logger *slog.Logger
}

// ErrSteady is returned when a steady-state gate does not hold: the drill could not start.
var ErrSteady = errors.New("steady state not reached")

type run struct {
	o        Options
	sys      System
	topo     *topology.Topology
	rec      *history.Recorder
	prober   *workload.Prober
	start    time.Time
	expects  []check.Result
	wl       *workload.Workload
	wlEnd    time.Time
	injected map[string]fault.Fault
	undone   map[string]bool
	progMu   sync.Mutex
	// liveStep and liveFaults are the step and the faults in force the live status line shows
	// (progMu).
	liveStep   string
	liveFaults []string
}

// Run runs the drill and writes its report. The returned report's verdict is pass, fail, error
// or aborted (ctx cancelled). Faults are undone whatever happens, panics included.
func Run(ctx context.Context, o Options) (rep *report.Report, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if err := os.MkdirAll(o.ReportDir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	hf, err := os.Create(filepath.Join(o.ReportDir, "history.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("history file: %w", err)
	}
	defer hf.Close()
	r := &run{o: o, sys: o.System, topo: o.System.Plan().Topology, rec: history.NewRecorder(hf),
		start: time.Now(), injected: map[string]fault.Fault{}, undone: map[string]bool{}}
	// Users of a runtime whose nodes a loopback source cannot reach (docker) say where they are
	// with EDNS Client Subnet instead.
	r.prober = workload.NewProber(r.topo, r.sys.Endpoint, r.sys.Capabilities().ClientsNeedECS)

	sampleCtx, stopSampling := context.WithCancel(context.WithoutCancel(ctx))
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); r.sample(sampleCtx) }()
	probesDone := make(chan struct{})
	go func() { defer close(probesDone); r.probeDNS(sampleCtx) }()

	var runErr error
	stopLive, liveDone := make(chan struct{}), make(chan struct{})
	if o.Live {
		go func() { defer close(liveDone); r.live(stopLive) }()
	} else {
		close(liveDone)
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				runErr = fmt.Errorf("panic in drill runner: %v", p)
			}
		}()
		runErr = r.steps(ctx)
	}()
	close(stopLive)
	<-liveDone
	// Teardown never runs on the cancelled context: undo must happen after Ctrl-C too.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if r.wl != nil && r.wlEnd.IsZero() {
		// The window ends when the stop is asked for: the clients' last requests, ended by the
		// stop, say nothing about the system (on a loaded machine Stop itself can take seconds).
		r.wlEnd = time.Now()
	}
	if r.wl != nil {
		r.wl.Stop()
	}
	if err := r.sys.UndoAll(cleanup); err != nil {
		r.progress("undo: %v", err)
		if runErr == nil {
			runErr = fmt.Errorf("undo faults: %w", err)
		}
	}
	for id := range r.injected {
		if !r.undone[id] {
			r.rec.Append(faultOp(r.injected[id], history.FStop))
			r.undone[id] = true
		}
	}
	stopSampling()
	<-samplerDone
	<-probesDone
	residue := r.sys.Residue(cleanup)

	ops := r.rec.Ops()
	results := append(check.Run(ops, check.Config{Budgets: o.Drill.Budgets, WorkloadEnd: r.wlEnd}), r.expects...)
	in := report.Input{
		Drill: o.Drill.Name, Runtime: r.sys.RuntimeName(), Topology: r.topo.Name, Seed: o.Seed,
		Start: r.start, End: time.Now(), Settings: o.Drill.Settings, Results: results, History: ops,
		Undone: r.undone, Err: runErr, Aborted: ctx.Err() != nil,
	}
	for _, it := range residue {
		in.Residue = append(in.Residue, report.Residue{What: it.What, Clean: it.Clean, Detail: it.Detail})
	}
	for _, f := range r.injected {
		if a := fault.Beyond(f, r.topo); a != "" && !slices.Contains(in.Beyond, a) {
			in.Beyond = append(in.Beyond, a)
		}
	}
	slices.Sort(in.Beyond)
	if errors.Is(runErr, ErrSteady) {
		in.Err = runErr
	}
	rep = report.Build(in)
	if err := report.WriteAll(o.ReportDir, rep, ops); err != nil {
		return rep, fmt.Errorf("write report: %w", err)
	}
	for _, res := range results {
		if a, ok := res.Evidence.(check.Attachment); ok {
			if name, content := a.Attachment(); name != "" {
				if err := report.WriteFileAtomic(filepath.Join(o.ReportDir, name), 0o644, func(w io.Writer) error {
					_, err := w.Write(content)
					return err
				}); err != nil {
					return rep, fmt.Errorf("write report: %w", err)
				}
			}
		}
	}
	return rep, nil
}

func (r *run) progress(format string, args ...any) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	line := fmt.Sprintf("[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
	if r.o.Live && r.liveStep != "" {
		// Above the status line: clear it, print, draw it again.
		fmt.Fprint(r.o.Progress, clearLine+line+r.statusLine())
		return
	}
	fmt.Fprint(r.o.Progress, line)
}

func (r *run) steps(ctx context.Context) error {
	d := r.o.Drill
	for i, st := range d.Steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("aborted before step %d (%s): %w", i+1, st, err)
		}
		r.setStep(i, st)
		r.progress("step %d/%d: %s", i+1, len(d.Steps), st)
		if err := r.step(ctx, st); err != nil {
			return fmt.Errorf("step %d (%s, %s:%s): %w", i+1, st, d.Source, st.Pos, err)
		}
	}
	return nil
}

func (r *run) step(ctx context.Context, st spec.Step) error {
	switch st.Kind {
	case spec.StepSteady:
		return r.steady(ctx, st.Steady)
	case spec.StepWorkload:
		if st.Workload == spec.WorkloadStart {
			return r.startWorkload(ctx)
		}
		r.stopWorkload()
		return nil
	case spec.StepInject:
		return r.inject(ctx, st.Inject)
	case spec.StepExpect:
		r.expect(ctx, st.Expect)
		return ctx.Err()
	case spec.StepWait:
		return sleep(ctx, st.Wait)
	case spec.StepHeal:
		return r.heal(ctx, st.Heal)
	case spec.StepVerify:
		r.stopWorkload()
		if st.Verify.FinalRead {
			return r.finalRead(ctx)
		}
		return nil
	}
	return fmt.Errorf("unknown step kind %q", st.Kind)
}

// sleep is a scripted wait (the drill file asks for it), not a stand-in for readiness.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *run) startWorkload(ctx context.Context) error {
	if r.wl != nil {
		return nil
	}
	w := r.o.Drill.Workload
	wl, err := workload.Start(context.WithoutCancel(ctx), workload.Config{
		Topology: r.topo, Endpoint: r.sys.Endpoint, ClientsPerRegion: w.ClientsPerRegion, WriteRate: w.WriteRate,
		ReadAfterWrite: w.ReadAfterWrite, ReadOthers: w.ReadOthers, HotKeys: w.HotKeys, ReadsPerWrite: w.ReadsPerWrite,
		JobRate: w.JobRate, JobWorkMS: w.JobWorkMS, Seed: uint64(r.o.Seed), KeyPrefix: r.o.KeyPrefix, Recorder: r.rec, Logger: r.o.Logger,
		UseECS: r.sys.Capabilities().ClientsNeedECS,
	})
	if err != nil {
		return err
	}
	r.wl = wl
	if w.Duration > 0 {
		time.AfterFunc(w.Duration, r.stopWorkload)
	}
	return nil
}

func (r *run) stopWorkload() {
	r.progMu.Lock()
	wl := r.wl
	r.progMu.Unlock()
	if wl == nil || !r.wlEnd.IsZero() {
		return
	}
	r.progMu.Lock()
	if r.wlEnd.IsZero() {
		r.wlEnd = time.Now() // when the stop is asked for (see run's teardown)
	}
	r.progMu.Unlock()
	wl.Stop()
}

// faultOp is the history entry of a fault starting (with its settings in words) or stopping.
func faultOp(f fault.Fault, fn string) history.Op {
	op := history.Op{Type: history.TypeFault, F: fn, Fault: f.ID, FaultKind: f.Kind, Region: f.Region, Node: f.Node}
	if fn == history.FStart {
		op.FaultParams = fault.Describe(f)
	}
	return op
}

func (r *run) inject(ctx context.Context, in *spec.Inject) error {
	f := in.Fault.Clone()
	r.injected[f.ID] = f
	r.rec.Append(faultOp(f, history.FStart))
	// A fault is applied whole even if the drill is interrupted meanwhile (bounded by the
	// injector's own timeouts): a half-applied fault raced by its undo could leave a toxic behind.
	if err := r.sys.Apply(context.WithoutCancel(ctx), f); err != nil {
		return fmt.Errorf("inject %s: %w", f.ID, err)
	}
	if in.Instant() {
		r.rec.Append(faultOp(f, history.FStop))
		r.undone[f.ID] = true
	}
	return nil
}

func (r *run) heal(ctx context.Context, id string) error {
	ids := []string{id}
	if id == spec.HealAll {
		ids = nil
		for fid := range r.injected {
			if !r.undone[fid] {
				ids = append(ids, fid)
			}
		}
		sort.Strings(ids)
	}
	for _, fid := range ids {
		f := r.injected[fid]
		if err := r.sys.Undo(context.WithoutCancel(ctx), fid); err != nil {
			return fmt.Errorf("heal %s: %w", fid, err)
		}
		// A fault between several regions leaves Region empty: its id names them.
		r.rec.Append(faultOp(f, history.FStop))
		r.undone[fid] = true
	}
	return nil
}
