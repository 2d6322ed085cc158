package fault

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/topology"
)

// testEnv is the default topology's loopback plan, without (or with) a packet layer.
func testEnv(t *testing.T, packets bool) Env {
	t.Helper()
	topo := topology.Default()
	topo.Network.LoopbackBase = "127.84.0.0/16"
	p, err := topology.NewPlan(topo, topology.PlanOptions{Runtime: "test", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return Env{Plan: p, PacketLayer: packets}
}

// effectsOf validates f against env's topology and returns its effects (with Resolved filled in
// as the injector would).
func effectsOf(t *testing.T, env Env, f Fault) Effects {
	t.Helper()
	if err := Validate(&f, env.Plan.Topology); err != nil {
		t.Fatalf("validate %+v: %v", f, err)
	}
	d, _ := Lookup(f.Kind)
	res, err := d.Resolve(t.Context(), f, env)
	if err != nil {
		t.Fatalf("resolve %+v: %v", f, err)
	}
	f.Resolved = res
	return d.Effects(f, env)
}

// toxicLinks counts a fault's toxics and the links they are on, checking names are unique and
// carry the drill prefix.
func toxicLinks(t *testing.T, e Effects) (int, map[string]bool) {
	t.Helper()
	links, names := map[string]bool{}, map[string]bool{}
	for _, tx := range e.Toxics {
		links[tx.Link] = true
		key := tx.Link + "/" + tx.Name
		if names[key] {
			t.Fatalf("toxic %s twice", key)
		}
		names[key] = true
		if !strings.HasPrefix(tx.Name, ToxicPrefix) {
			t.Fatalf("toxic %s lacks the drill prefix", tx.Name)
		}
	}
	return len(e.Toxics), links
}

func TestRegistry(t *testing.T) {
	want := []string{"blackhole", "freeze", "kill", "kill-primary", "latency", "loss", "partition", "restart"}
	for _, k := range want {
		if _, ok := Lookup(Kind(k)); !ok {
			t.Errorf("kind %s is not registered", k)
		}
	}
	for _, k := range Kinds() {
		d, _ := Lookup(k)
		if d.Kind() != k || d.Summary() == "" {
			t.Errorf("kind %s: descriptor says %q, summary %q", k, d.Kind(), d.Summary())
		}
		if tg := d.Targets(); tg.any() && tg.Help == "" {
			t.Errorf("kind %s takes a target but has no help for it", k)
		}
		for _, p := range d.Params() {
			if p.Help == "" || p.Name == "" {
				t.Errorf("kind %s: parameter %+v lacks a name or help", k, p)
			}
		}
	}
}

func TestFaultJSONRoundTrip(t *testing.T) {
	f := Fault{ID: "latency:wan", Kind: KindLatency, Regions: []string{"eu-west", "us-east"},
		Params: Params{ParamLatency: "300ms", ParamJitter: "20ms", ParamBandwidth: "64"}, Resolved: []string{"x"}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"latency":"300ms"`) {
		t.Fatalf("parameters not written as text: %s", b)
	}
	var back Fault
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Params.Duration(ParamLatency) != 300*time.Millisecond || back.Params.Int(ParamBandwidth) != 64 ||
		!slices.Equal(back.Regions, f.Regions) || back.ID != f.ID {
		t.Fatalf("round trip: %+v -> %s -> %+v", f, b, back)
	}
	// A ledger line written before parameters were named still reads (drill recover after an
	// upgrade).
	old := `{"id":"loss:x","kind":"loss","region":"us-east","loss_percent":30,"latency":"1s"}`
	if err := json.Unmarshal([]byte(old), &back); err != nil {
		t.Fatal(err)
	}
	if back.Params.Int(ParamPercent) != 30 || back.Params.Duration(ParamLatency) != time.Second {
		t.Fatalf("old ledger line read as %+v", back)
	}
}

func TestValidate(t *testing.T) {
	topo := testEnv(t, false).Plan.Topology
	bad := []Fault{
		{Kind: KindBlackhole, Region: "us-east"},       // no id
		{ID: "x", Kind: "meteor"},                      // unknown kind
		{ID: "x", Kind: KindBlackhole},                 // no region
		{ID: "x", Kind: KindBlackhole, Region: "mars"}, // unknown region
		{ID: "x", Kind: KindBlackhole, Node: "us-east-db-1"},
		{ID: "x", Kind: KindPartition, Regions: []string{"us-east", "moon"}},
		{ID: "x", Kind: KindPartition, Regions: []string{"us-east"}}, // one site
		{ID: "x", Kind: KindLatency},                                 // nothing to add
		{ID: "x", Kind: KindLatency, Params: Params{ParamLatency: "-1s"}},
		{ID: "x", Kind: KindLatency, Params: Params{ParamLatency: "soon"}},
		{ID: "x", Kind: KindLatency, Params: Params{ParamLatency: "1s", ParamPercent: "3"}}, // not its parameter
		{ID: "x", Kind: KindKill},                                                           // no target
		{ID: "x", Kind: KindKill, Node: "us-east-db-1", Region: "us-east"},                  // both
		{ID: "x", Kind: KindFreeze, Node: "nope"},
		{ID: "x", Kind: KindKill, Node: "wan"},
		{ID: "x", Kind: KindKillPrimary, Region: "us-east"},
	}
	for _, f := range bad {
		if err := Validate(&f, topo); err == nil {
			t.Errorf("validate accepted %+v", f)
		}
	}
	good := []Fault{
		{ID: "a", Kind: KindBlackhole, Region: "eu-west"},
		{ID: "b", Kind: KindPartition, Region: "us-east"},
		{ID: "c", Kind: KindPartition, Regions: []string{"us-east", "witness"}},
		{ID: "d", Kind: KindLatency, Params: Params{ParamLatency: "1ms"}},
		{ID: "e", Kind: KindRestart, Region: "us-east"},
		{ID: "f", Kind: KindKillPrimary},
		{ID: "g", Kind: KindFreeze, Node: "witness"},
	}
	for _, f := range good {
		if err := Validate(&f, topo); err != nil {
			t.Errorf("validate rejected %+v: %v", f, err)
		}
	}
	f := Fault{ID: "l", Kind: KindLatency, Params: Params{ParamLatency: "1000ms"}}
	if err := Validate(&f, topo); err != nil || f.Params[ParamLatency] != "1s" {
		t.Fatalf("parameters are not made canonical: %v %+v", err, f.Params)
	}
}

func TestDerivedID(t *testing.T) {
	for f, want := range map[*Fault]string{
		{Kind: KindBlackhole, Region: "us-east"}:                       "blackhole:us-east",
		{Kind: KindPartition, Regions: []string{"eu-west", "us-east"}}: "partition:eu-west|us-east",
		{Kind: KindLatency}:                    "latency:wan",
		{Kind: KindKill, Node: "us-east-db-1"}: "kill:us-east-db-1",
		{Kind: KindKillPrimary}:                "kill-primary",
	} {
		if got := f.DerivedID(); got != want {
			t.Errorf("%+v: id %q, want %q", *f, got, want)
		}
	}
}

func TestSitePairs(t *testing.T) {
	topo := testEnv(t, false).Plan.Topology
	if got := SitePairs(topo, Fault{Region: "us-east"}); len(got) != 2 {
		t.Errorf("one region against the rest: %v", got)
	}
	if got := SitePairs(topo, Fault{}); len(got) != 3 {
		t.Errorf("whole WAN: %v", got)
	}
	if got := SitePairs(topo, Fault{Node: "us-east-db-1"}); len(got) != 0 {
		t.Errorf("a node fault has site pairs: %v", got)
	}
	if _, ok := OtherSite([2]string{"a", "b"}, "c"); ok {
		t.Error("OtherSite of a site outside the pair")
	}
}

// prefixes is a helper for expected prefix lists.
func prefixes(ps ...netip.Prefix) []netip.Prefix { return ps }
