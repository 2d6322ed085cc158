package compose

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/topology"
)

// These tests cover what needs no cluster: the fault's wire form, the ledger replay, and the
// toxics and gossip rules computed for each fault kind. The end-to-end behaviour is tested on a
// real cluster in compose/local.

func testInjector(t *testing.T) *Injector {
	t.Helper()
	topo := topology.Default()
	topo.Network.LoopbackBase = "127.84.0.0/16"
	p, err := topology.NewPlan(topo, "local", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Injector{plan: p, log: slog.New(slog.DiscardHandler)}
}

func TestFaultJSONRoundTrip(t *testing.T) {
	f := Fault{ID: "latency:wan", Kind: KindLatency, Regions: []string{"eu-west", "us-east"}, Latency: 300 * time.Millisecond,
		Jitter: 20 * time.Millisecond, BandwidthKBps: 64, Resolved: []string{"x"}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"latency":"300ms"`) || !strings.Contains(string(b), `"jitter":"20ms"`) {
		t.Fatalf("durations not written as strings: %s", b)
	}
	var back Fault
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latency != f.Latency || back.Jitter != f.Jitter || back.BandwidthKBps != 64 || !slices.Equal(back.Regions, f.Regions) || back.ID != f.ID {
		t.Fatalf("round trip: %+v -> %s -> %+v", f, b, back)
	}
	if err := json.Unmarshal([]byte(`{"id":"x","kind":"latency","latency":"soon"}`), &back); err == nil {
		t.Fatal("bad duration accepted")
	}
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
	a := Fault{ID: "a", Kind: KindKill, Node: "n"}
	b := Fault{ID: "b", Kind: KindLatency, Latency: time.Second}
	must(other.append(ledgerRecord{Op: opApply, ID: "old", Fault: &Fault{ID: "old", Kind: KindKillPrimary}}))
	must(l.append(ledgerRecord{Op: opApply, ID: "a", Fault: &a}))
	must(l.append(ledgerRecord{Op: opApply, ID: "b", Fault: &b}))
	must(l.append(ledgerRecord{Op: opUndo, ID: "a"}))
	ids := func() []string {
		t.Helper()
		fs, err := l.outstanding(log)
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
	d := Fault{ID: "d", Kind: KindFreeze, Region: "us-east"}
	must(l.append(ledgerRecord{Op: opApply, ID: "d", Fault: &d}))
	if got := ids(); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("outstanding after the torn record %v, want [b d]", got)
	}
	fs, _ := l.outstanding(log)
	if fs[0].Latency != time.Second {
		t.Fatalf("latency read back as %s", fs[0].Latency)
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

func TestToxicsPerFault(t *testing.T) {
	inj := testInjector(t)
	count := func(f Fault) (int, map[string]bool) {
		links := map[string]bool{}
		names := map[string]bool{}
		txs := inj.toxics(f)
		for _, tx := range txs {
			links[tx.link] = true
			key := tx.link + "/" + tx.toxic.Name
			if names[key] {
				t.Fatalf("%s: toxic %s twice", f.ID, key)
			}
			names[key] = true
			if !strings.HasPrefix(tx.toxic.Name, FaultToxicPrefix) {
				t.Fatalf("%s: toxic %s lacks the drill prefix", f.ID, tx.toxic.Name)
			}
		}
		return len(txs), links
	}
	// Default plan: 6 links (us-east↔eu-west-db, us-east↔witness, eu-west↔witness, each way).
	n, links := count(Fault{ID: "blackhole:us-east", Kind: KindBlackhole, Region: "us-east"})
	if n != 8 || len(links) != 4 || links["eu-west--witness"] {
		t.Fatalf("blackhole us-east: %d toxics on %v, want 8 on the 4 links touching us-east", n, links)
	}
	n, links = count(Fault{ID: "p", Kind: KindPartition, Regions: []string{"us-east", "eu-west"}})
	if n != 4 || !links["us-east--eu-west-db-1"] || !links["eu-west--us-east-db-1"] {
		t.Fatalf("partition us-east|eu-west: %d toxics on %v", n, links)
	}
	n, _ = count(Fault{ID: "p1", Kind: KindPartition, Region: "eu-west"})
	if n != 8 {
		t.Fatalf("partition of eu-west from everything: %d toxics, want 8", n)
	}
	n, links = count(Fault{ID: "latency:wan", Kind: KindLatency, Latency: time.Second, BandwidthKBps: 10})
	if n != 24 || len(links) != 6 {
		t.Fatalf("latency on every link with bandwidth: %d toxics on %d links, want 24 on 6", n, len(links))
	}
	if toxicName("a:b", "x") == toxicName("a_b", "x") {
		t.Fatal("ids that read alike share toxic names")
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
	bh := Fault{ID: "bh", Kind: KindBlackhole, Region: "us-east"}

	in := inj.rulesFor(node("us-east-web-1"), []Fault{bh})
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
	out := inj.rulesFor(node("eu-west-db-1"), []Fault{bh})
	if !slices.Equal(out.Drop, []netip.Prefix{us}) || len(out.Delays) != 0 {
		t.Fatalf("outside the blackhole: %+v, want drop of us-east only", out)
	}

	part := Fault{ID: "p", Kind: KindPartition, Regions: []string{"us-east", "eu-west"}}
	if r := inj.rulesFor(node("eu-west-web-2"), []Fault{part}); !slices.Equal(r.Drop, []netip.Prefix{us}) {
		t.Fatalf("partition, eu-west side: %+v", r)
	}
	if r := inj.rulesFor(node("us-east-dns-1"), []Fault{part}); !slices.Equal(r.Drop, []netip.Prefix{eu}) {
		t.Fatalf("partition, us-east side: %+v", r)
	}

	// Two latency faults on the same pair add up, on top of the base WAN latency.
	lat1 := Fault{ID: "l1", Kind: KindLatency, Latency: 300 * time.Millisecond, Jitter: 10 * time.Millisecond}
	lat2 := Fault{ID: "l2", Kind: KindLatency, Regions: []string{"eu-west", "us-east"}, Latency: 100 * time.Millisecond}
	r := inj.rulesFor(node("eu-west-web-1"), []Fault{lat1, lat2})
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
	if r := inj.rulesFor(node("us-east-db-1"), []Fault{{ID: "k", Kind: KindKill, Node: "us-east-db-1"}}); len(r.Drop)+len(r.Delays) != 0 {
		t.Fatalf("kill produced gossip rules %+v", r)
	}
}

func TestValidate(t *testing.T) {
	inj := testInjector(t)
	bad := []Fault{
		{Kind: KindBlackhole, Region: "us-east"},       // no id
		{ID: "x", Kind: "meteor"},                      // unknown kind
		{ID: "x", Kind: KindBlackhole},                 // no region
		{ID: "x", Kind: KindBlackhole, Region: "mars"}, // unknown region
		{ID: "x", Kind: KindPartition, Regions: []string{"us-east", "moon"}},
		{ID: "x", Kind: KindLatency},                                       // nothing to add
		{ID: "x", Kind: KindLatency, Latency: -time.Second},                // negative
		{ID: "x", Kind: KindKill},                                          // no target
		{ID: "x", Kind: KindKill, Node: "us-east-db-1", Region: "us-east"}, // both
		{ID: "x", Kind: KindFreeze, Node: "nope"},
		{ID: "x", Kind: KindKill, Node: "wan"},
	}
	for _, f := range bad {
		if err := inj.validate(f); err == nil {
			t.Errorf("validate accepted %+v", f)
		}
	}
	good := []Fault{
		{ID: "a", Kind: KindBlackhole, Region: "eu-west"},
		{ID: "b", Kind: KindPartition, Region: "us-east"},
		{ID: "c", Kind: KindPartition, Regions: []string{"us-east", "witness"}},
		{ID: "d", Kind: KindLatency, Latency: time.Millisecond},
		{ID: "e", Kind: KindRestart, Region: "us-east"},
		{ID: "f", Kind: KindKillPrimary},
		{ID: "g", Kind: KindFreeze, Node: "witness"},
	}
	for _, f := range good {
		if err := inj.validate(f); err != nil {
			t.Errorf("validate rejected %+v: %v", f, err)
		}
	}
	if got := inj.targetNodes(Fault{Kind: KindKill, Region: "eu-west"}); !slices.Equal(got, []string{"eu-west-web-1", "eu-west-web-2", "eu-west-db-1", "eu-west-dns-1"}) {
		t.Fatalf("region kill targets %v", got)
	}
}

// stubRuntime is a Runtime with no running node whose WAN API is at wanAddr (enough for network
// faults; process faults are tested on a real cluster in compose/local).
type stubRuntime struct{ wanAddr string }

func (s stubRuntime) Name() string                                   { return "stub" }
func (s stubRuntime) Up(context.Context, *topology.Plan) error       { return nil }
func (s stubRuntime) Down(context.Context) error                     { return nil }
func (s stubRuntime) Nodes(context.Context) ([]NodeState, error)     { return nil, nil }
func (s stubRuntime) Kill(context.Context, string) error             { return errors.New("stub") }
func (s stubRuntime) Freeze(context.Context, string) error           { return errors.New("stub") }
func (s stubRuntime) Thaw(context.Context, string) error             { return errors.New("stub") }
func (s stubRuntime) Start(context.Context, string) error            { return errors.New("stub") }
func (s stubRuntime) Endpoint(node string, port int) (string, error) { return s.wanAddr, nil }

// TestHungControlPlaneIsTimeBoxed: a WAN API that never answers (toxiproxy#558) makes Apply and
// Undo fail within the per-call bound instead of hanging, and the fault stays outstanding in the
// ledger for a later Undo or Recover.
func TestHungControlPlaneIsTimeBoxed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.84.9.20:0")
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
	p, err := topology.NewPlan(topo, "stub", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ledgerPath := LedgerPath(p.RunDir)
	inj, err := NewInjector(p, stubRuntime{wanAddr: ln.Addr().String()}, ledgerPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	inj.callTimeout = 300 * time.Millisecond
	inj.toxi.HTTP.Timeout = inj.callTimeout

	f := Fault{ID: "blackhole:us-east", Kind: KindBlackhole, Region: "us-east"}
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
	reopened, err := NewInjector(p, stubRuntime{wanAddr: ln.Addr().String()}, ledgerPath, nil)
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
