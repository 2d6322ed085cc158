package inject

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// These tests cover what needs no cluster: the ledger replay, the gossip rules merged over an
// active set and time-boxed calls. process_test.go drives the whole injector over the in-memory
// runtime; the end-to-end behaviour is tested on real clusters in compose/local and compose/docker.

func testInjector(t *testing.T) *Injector {
	t.Helper()
	topo := topology.Default()
	topo.Network.LoopbackBase = "127.84.0.0/16"
	p, err := topology.NewPlan(topo, topology.PlanOptions{Runtime: "test", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return &Injector{plan: p, log: slog.New(slog.DiscardHandler), rt: stubRuntime{}}
}

func TestLedgerReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "faults.jsonl")
	l := &ledger{path: path, runID: "run-1"}
	other := &ledger{path: path, runID: "run-0"}
	log := slog.New(slog.DiscardHandler)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := fault.Fault{ID: "a", Kind: fault.KindKill, Node: "n"}
	b := fault.Fault{ID: "b", Kind: fault.KindLatency, Params: fault.Params{fault.ParamLatency: "1s"}}
	must(other.append(ledgerRecord{Op: opApply, ID: "old", Fault: &fault.Fault{ID: "old", Kind: fault.KindKillPrimary}}))
	must(l.append(ledgerRecord{Op: opApply, ID: "a", Fault: &a}))
	must(l.append(ledgerRecord{Op: opApply, ID: "b", Fault: &b}))
	must(l.append(ledgerRecord{Op: opUndo, ID: "a"}))
	ids := func() []string {
		t.Helper()
		fs, _, err := l.outstanding(log)
		must(err)
		var out []string
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("outstanding %v, want [b] (other runs ignored, undo applied)", got)
	}
	// A crash mid-write leaves a torn record; it is skipped and the next record gets its own line.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString(`{"op":"apply","run_id":"run-1","id":"c","fau`)
	must(err)
	must(f.Close())
	if got := ids(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("outstanding with a torn record %v, want [b]", got)
	}
	d := fault.Fault{ID: "d", Kind: fault.KindFreeze, Region: "us-east"}
	must(l.append(ledgerRecord{Op: opApply, ID: "d", Fault: &d}))
	if got := ids(); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("outstanding after the torn record %v, want [b d]", got)
	}
	fs, _, _ := l.outstanding(log)
	if got := fs[0].Params.Duration(fault.ParamLatency); got != time.Second {
		t.Fatalf("latency read back as %s", got)
	}
	must(l.append(ledgerRecord{Op: opRecovered}))
	if got := ids(); len(got) != 0 {
		t.Fatalf("outstanding after recovered: %v", got)
	}
	st, err := os.Stat(path)
	must(err)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("ledger mode %v, want 0600", st.Mode().Perm())
	}
}

// TestLedgerLockedAndTolerant: a second opener of a ledger in use is refused with the holder's
// pid (two drills never interleave records); once the first closes, the second gets it. Lines it
// cannot use (unreadable, unknown op, apply without a fault) are skipped and reported, and the
// faults the other lines name are still outstanding.
func TestLedgerLockedAndTolerant(t *testing.T) {
	p := testInjector(t).plan
	path := LedgerPath(p.RunDir)
	first, err := New(p, stubRuntime{}, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := fault.Fault{ID: "a", Kind: fault.KindKill, Node: "us-east-web-1"}
	if err := first.ledger.append(ledgerRecord{Op: opApply, ID: a.ID, Fault: &a}); err != nil {
		t.Fatal(err)
	}
	_, err = New(p, stubRuntime{}, path, nil)
	if !errors.Is(err, ErrLedgerInUse) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("second open while the first holds it: %v, want ErrLedgerInUse naming pid %d", err, os.Getpid())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Apply(context.Background(), fault.Fault{ID: "b", Kind: fault.KindKill, Node: "us-east-web-2"}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("a closed injector's apply: %v, want refused as closed", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"garbage that is not JSON",
		`{"op":"rewind","run_id":"` + p.RunID + `","id":"a"}`,
		`{"op":"apply","run_id":"` + p.RunID + `","id":"c"}`,
	} {
		if _, err := f.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := New(p, stubRuntime{}, path, nil)
	if err != nil {
		t.Fatalf("open after the first closed, with bad lines: %v", err)
	}
	defer second.Close()
	if got := second.Active(); len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("outstanding %+v, want fault a", got)
	}
	var lines []int
	for _, s := range second.LedgerSkipped() {
		lines = append(lines, s.Line)
	}
	if !slices.Equal(lines, []int{2, 3, 4}) {
		t.Fatalf("skipped %v, want lines 2, 3, 4", second.LedgerSkipped())
	}
	if st, err := os.Stat(path + ".lock"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", st, err)
	}
}

func TestGossipRulesFromActiveSet(t *testing.T) {
	inj := testInjector(t)
	tp := inj.plan.Topology
	node := func(name string) topology.Node {
		n, ok := tp.Node(name)
		if !ok {
			t.Fatalf("no node %s", name)
		}
		return n
	}
	us, eu, wit := tp.SitePrefix("us-east"), tp.SitePrefix("eu-west"), tp.SitePrefix("witness")
	bh := fault.Fault{ID: "bh", Kind: fault.KindBlackhole, Region: "us-east"}

	in := inj.rulesFor(node("us-east-web-1"), []fault.Fault{bh})
	want := []netip.Prefix{netip.MustParsePrefix("127.10.1.0/24"), netip.MustParsePrefix("127.10.2.0/24"), eu, wit,
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
	for _, p := range want {
		if !slices.Contains(in.Drop, p) {
			t.Fatalf("inside the blackhole: drop %v lacks %s", in.Drop, p)
		}
	}
	if slices.Contains(in.Drop, us) {
		t.Fatalf("inside the blackhole a node drops its own region: %v", in.Drop)
	}
	out := inj.rulesFor(node("eu-west-db-1"), []fault.Fault{bh})
	if !slices.Equal(out.Drop, []netip.Prefix{us}) || len(out.Delays) != 0 {
		t.Fatalf("outside the blackhole: %+v, want drop of us-east only", out)
	}

	part := fault.Fault{ID: "p", Kind: fault.KindPartition, Regions: []string{"us-east", "eu-west"}}
	if r := inj.rulesFor(node("eu-west-web-2"), []fault.Fault{part}); !slices.Equal(r.Drop, []netip.Prefix{us}) {
		t.Fatalf("partition, eu-west side: %+v", r)
	}
	if r := inj.rulesFor(node("us-east-dns-1"), []fault.Fault{part}); !slices.Equal(r.Drop, []netip.Prefix{eu}) {
		t.Fatalf("partition, us-east side: %+v", r)
	}
	// A black hole and a partition on top drop each prefix once.
	if r := inj.rulesFor(node("eu-west-db-1"), []fault.Fault{bh, part}); !slices.Equal(r.Drop, []netip.Prefix{us}) {
		t.Fatalf("blackhole + partition: %+v", r)
	}

	// Two latency faults on the same pair add up, on top of the base WAN latency.
	lat1 := fault.Fault{ID: "l1", Kind: fault.KindLatency, Params: fault.Params{fault.ParamLatency: "300ms", fault.ParamJitter: "10ms"}}
	lat2 := fault.Fault{ID: "l2", Kind: fault.KindLatency, Regions: []string{"eu-west", "us-east"}, Params: fault.Params{fault.ParamLatency: "100ms"}}
	r := inj.rulesFor(node("eu-west-web-1"), []fault.Fault{lat1, lat2})
	base, baseJit := tp.SiteLatency("eu-west", "us-east")
	var toUS, toWit bool
	for _, d := range r.Delays {
		switch d.Prefix {
		case us:
			toUS = d.Latency == base+400*time.Millisecond && d.Jitter == baseJit+10*time.Millisecond
		case wit:
			toWit = d.Latency == base+300*time.Millisecond
		}
	}
	if !toUS || !toWit || len(r.Drop) != 0 {
		t.Fatalf("latency rules on eu-west-web-1: %+v (base %s)", r, base)
	}
	if r := inj.rulesFor(node("eu-west-web-1"), nil); len(r.Drop) != 0 || len(r.Delays) != 0 {
		t.Fatalf("no faults, rules %+v", r)
	}
	// Process faults leave gossip alone.
	if r := inj.rulesFor(node("us-east-db-1"), []fault.Fault{{ID: "k", Kind: fault.KindKill, Node: "us-east-db-1"}}); !r.Empty() {
		t.Fatalf("kill produced gossip rules %+v", r)
	}
	// Loss: two faults on one prefix are two draws; a partition on top still drops all.
	loss := fault.Fault{ID: "l", Kind: fault.KindLoss, Regions: []string{"eu-west", "us-east"}, Params: fault.Params{fault.ParamPercent: "30"}}
	more := fault.Fault{ID: "m", Kind: fault.KindLoss, Region: "eu-west", Params: fault.Params{fault.ParamPercent: "5"}}
	r = inj.rulesFor(node("eu-west-web-2"), []fault.Fault{loss, more, part})
	wantLoss := []gossip.Loss{{Prefix: us, Percent: 30}, {Prefix: us, Percent: 5}, {Prefix: wit, Percent: 5}}
	if !slices.Equal(r.Drop, []netip.Prefix{us}) || !slices.Equal(r.Loss, wantLoss) {
		t.Fatalf("loss + loss + partition rules %+v, want drop %s and loss %v", r, us, wantLoss)
	}
}

// stubRuntime is a Runtime with no running node whose WAN API is at wanAddr (enough for network
// faults; process faults are tested on a real cluster in compose/local).
type stubRuntime struct{ wanAddr string }

func (s stubRuntime) Name() string                                       { return "stub" }
func (s stubRuntime) Capabilities() runtime.Capabilities                 { return runtime.Capabilities{} }
func (s stubRuntime) Up(context.Context, *topology.Plan) error           { return nil }
func (s stubRuntime) Down(context.Context) error                         { return nil }
func (s stubRuntime) Nodes(context.Context) ([]runtime.NodeState, error) { return nil, nil }
func (s stubRuntime) Kill(context.Context, string) error                 { return errors.New("stub") }
func (s stubRuntime) Freeze(context.Context, string) error               { return errors.New("stub") }
func (s stubRuntime) Thaw(context.Context, string) error                 { return errors.New("stub") }
func (s stubRuntime) Start(context.Context, string) error                { return errors.New("stub") }
func (s stubRuntime) Endpoint(node string, port int) (string, error)     { return s.wanAddr, nil }

// TestHungControlPlaneIsTimeBoxed: a WAN API that never answers (toxiproxy#558) makes Apply and
// Undo fail within the per-call bound instead of hanging, and the fault stays outstanding in the
// ledger for a later Undo or Recover.
func TestHungControlPlaneIsTimeBoxed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(release)
		_ = srv.Close()
	})
	topo := topology.Default()
	topo.Network.LoopbackBase = "127.84.0.0/16"
	p, err := topology.NewPlan(topo, topology.PlanOptions{Runtime: "stub", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ledgerPath := LedgerPath(p.RunDir)
	inj, err := New(p, stubRuntime{wanAddr: ln.Addr().String()}, ledgerPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	inj.callTimeout = 300 * time.Millisecond
	inj.toxi.HTTP.Timeout = inj.callTimeout

	f := fault.Fault{ID: "blackhole:us-east", Kind: fault.KindBlackhole, Region: "us-east"}
	start := time.Now()
	if err := inj.Apply(context.Background(), f); err == nil {
		t.Fatal("apply succeeded against a hung WAN API")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("apply against a hung WAN API took %s (calls are bounded to %s)", d, inj.callTimeout)
	}
	start = time.Now()
	if err := inj.Undo(context.Background(), f.ID); err == nil {
		t.Fatal("undo succeeded against a hung WAN API")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("undo against a hung WAN API took %s", d)
	}
	if err := inj.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := New(p, stubRuntime{wanAddr: ln.Addr().String()}, ledgerPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := reopened.Active(); len(a) != 1 || a[0].ID != f.ID {
		t.Fatalf("after failed undos the ledger holds %+v, want the blackhole outstanding", a)
	}
	reopened.callTimeout = inj.callTimeout
	reopened.toxi.HTTP.Timeout = inj.callTimeout
	items := reopened.Residue(context.Background())
	if ResidueClean(items) || items[0].Clean {
		t.Fatalf("residue with an unreachable WAN API reported clean: %+v", items)
	}
}
