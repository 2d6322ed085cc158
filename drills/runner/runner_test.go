package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime/fake"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/drills/verdict"
	"github.com/drillworks/drill/topology"
)

// These tests run the runner over the in-memory runtime (compose/runtime/fake): real HTTP
// endpoints answering from a model in which the primary fails over when it dies. The drills
// here have no workload (there are no web or DNS servers in the model); the checks that judge
// a workload's history say unknown, and the verdict comes from the expectations.

// fakeSystem is a compose.Cluster over the in-memory runtime.
func fakeSystem(t *testing.T) (*compose.Cluster, *fake.Runtime) {
	t.Helper()
	p, err := topology.NewPlan(topology.Default(), topology.PlanOptions{Runtime: "fake", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := fake.New(p, fake.WithAutoFailover())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	c, err := compose.NewCluster(p, rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, rt
}

// parseDrill parses and resolves a drill file against the default topology.
func parseDrill(t *testing.T, src string) *spec.Drill {
	t.Helper()
	d, err := spec.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resolve(topology.Default()); err != nil {
		t.Fatal(err)
	}
	return d
}

const failoverDrill = `name: fake-failover
steps:
  - steady: {within: 5s, expect: [region_healthy us-east, region_healthy eu-west]}
  - inject: {fault: kill-primary}
  - expect: {condition: primary_in eu-west, within: 5s}
  - heal: all
  - expect: {condition: region_healthy us-east, within: 10s}
`

func TestRunPassesAndUndoes(t *testing.T) {
	sys, rt := fakeSystem(t)
	dir := filepath.Join(t.TempDir(), "report")
	rep, err := Run(context.Background(), Options{Drill: parseDrill(t, failoverDrill), System: sys, ReportDir: dir, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != verdict.Pass {
		t.Fatalf("verdict %s (%s), checks %+v", rep.Verdict, rep.Error, rep.Checks)
	}
	if p, epoch := rt.Primary(); p != "eu-west-db-1" || epoch != 2 {
		t.Fatalf("primary %s epoch %d after the drill", p, epoch)
	}
	if len(rep.Faults) != 1 || rep.Faults[0].ID != "kill-primary" || !rep.Faults[0].Undone {
		t.Fatalf("faults %+v", rep.Faults)
	}
	for _, r := range rep.Residue {
		if !r.Clean {
			t.Fatalf("residue %+v", rep.Residue)
		}
	}
	for _, f := range []string{report.FileJSON, report.FileJUnit, report.FileHTML, report.FileHistory} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("report file %s: %v", f, err)
		}
	}
	ops, err := report.LoadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ws := history.FaultWindows(ops); len(ws) != 1 || ws[0].Kind != fault.KindKillPrimary || !ws[0].Stopped {
		t.Errorf("fault windows in the history: %+v", ws)
	}
	if ops := rt.Ops(); len(ops) < 2 || ops[0] != "kill us-east-db-1" || ops[1] != "start us-east-db-1" {
		t.Errorf("runtime operations %v", ops)
	}
}

func TestRunFailsAnUnmetExpectation(t *testing.T) {
	sys, _ := fakeSystem(t)
	d := parseDrill(t, `name: fake-unmet
steps:
  - inject: {fault: kill-primary}
  - expect: {condition: primary_in us-east, within: 1s}
  - heal: all
`)
	rep, err := Run(context.Background(), Options{Drill: d, System: sys, ReportDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != verdict.Fail {
		t.Fatalf("verdict %s, want fail", rep.Verdict)
	}
	if items := sys.Residue(context.Background()); !inject.ResidueClean(items) {
		t.Fatalf("residue %+v", items)
	}
}

func TestRunAbortedUndoesFaults(t *testing.T) {
	sys, _ := fakeSystem(t)
	d := parseDrill(t, `name: fake-abort
steps:
  - inject: {fault: partition, region: eu-west}
  - wait: 30s
  - heal: all
`)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(sys.Active()) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	rep, err := Run(ctx, Options{Drill: d, System: sys, ReportDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != verdict.Aborted {
		t.Fatalf("verdict %s, want aborted", rep.Verdict)
	}
	if len(sys.Active()) != 0 || !rep.Faults[0].Undone {
		t.Fatalf("faults left outstanding: %+v", sys.Active())
	}
	if items := sys.Residue(context.Background()); !inject.ResidueClean(items) {
		t.Fatalf("residue %+v", items)
	}
}

// panicky panics in Status once a fault is active: the runner recovers, undoes and reports.
type panicky struct {
	*compose.Cluster
	armed atomic.Bool
}

func (p *panicky) Status(ctx context.Context) (*observe.Status, error) {
	if p.armed.Load() && len(p.Active()) > 0 {
		panic("status exploded")
	}
	return p.Cluster.Status(ctx)
}

func (p *panicky) Apply(ctx context.Context, f fault.Fault) error {
	err := p.Cluster.Apply(ctx, f)
	p.armed.Store(true)
	return err
}

func TestRunPanicUndoesFaults(t *testing.T) {
	sys, _ := fakeSystem(t)
	p := &panicky{Cluster: sys}
	d := parseDrill(t, `name: fake-panic
steps:
  - inject: {fault: blackhole, region: eu-west}
  - expect: {condition: primary_in us-east, within: 2s}
  - heal: all
`)
	rep, err := Run(context.Background(), Options{Drill: d, System: p, ReportDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != verdict.Error || !strings.Contains(rep.Error, "panic") {
		t.Fatalf("verdict %s (%s), want error from the panic", rep.Verdict, rep.Error)
	}
	p.armed.Store(false)
	if len(sys.Active()) != 0 {
		t.Fatalf("faults left outstanding: %+v", sys.Active())
	}
	if items := sys.Residue(context.Background()); !inject.ResidueClean(items) {
		t.Fatalf("residue %+v", items)
	}
}

func TestRunSteadyGateFails(t *testing.T) {
	sys, rt := fakeSystem(t)
	if err := rt.Kill(context.Background(), "eu-west-web-1"); err != nil {
		t.Fatal(err)
	}
	d := parseDrill(t, `name: fake-steady
steps:
  - steady: {within: 500ms, expect: [region_healthy eu-west]}
  - inject: {fault: kill-primary}
`)
	rep, err := Run(context.Background(), Options{Drill: d, System: sys, ReportDir: t.TempDir()})
	if !errors.Is(err, nil) || rep == nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Verdict == verdict.Pass || !strings.Contains(rep.Error, ErrSteady.Error()) {
		t.Fatalf("verdict %s (%s), want the steady gate to stop the drill", rep.Verdict, rep.Error)
	}
	if ops := rt.Ops(); len(ops) != 1 {
		t.Fatalf("the drill went past its gate: %v", ops)
	}
}

// target: primary is resolved when the fault is applied: the node frozen is the primary of that
// moment, and the history records what it acted on.
func TestRunFaultOnThePrimary(t *testing.T) {
	sys, rt := fakeSystem(t)
	d := parseDrill(t, `name: fake-pause
steps:
  - inject: {fault: freeze, id: pause, target: primary}
  - heal: pause
`)
	rep, err := Run(context.Background(), Options{Drill: d, System: sys, ReportDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if ops := rt.Ops(); len(ops) < 1 || ops[0] != "freeze us-east-db-1" {
		t.Fatalf("runtime operations %v, want the primary us-east-db-1 frozen", ops)
	}
	if len(rep.Faults) != 1 || !rep.Faults[0].Undone {
		t.Fatalf("faults %+v", rep.Faults)
	}
}
