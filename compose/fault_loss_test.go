package compose

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
)

func TestValidateLoss(t *testing.T) {
	inj := testInjector(t)
	for _, f := range []Fault{
		{ID: "x", Kind: KindLoss, Region: "us-east"},                                                           // no percent
		{ID: "x", Kind: KindLoss, Region: "us-east", LossPercent: 100},                                         // a partition
		{ID: "x", Kind: KindLoss, Region: "us-east", LossPercent: -5},                                          // negative
		{ID: "x", Kind: KindLoss, LossPercent: 30},                                                             // no target
		{ID: "x", Kind: KindLoss, Region: "us-east", Regions: []string{"eu-west", "us-east"}, LossPercent: 30}, // both
		{ID: "x", Kind: KindLoss, Regions: []string{"us-east", "mars"}, LossPercent: 30},                       // unknown site
	} {
		if err := inj.validate(f); err == nil {
			t.Errorf("validate accepted %+v", f)
		}
	}
	for _, f := range []Fault{
		{ID: "a", Kind: KindLoss, Region: "us-east", LossPercent: 1},
		{ID: "b", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, LossPercent: 99},
		{ID: "c", Kind: KindLoss, Regions: []string{"us-east", "witness"}, LossPercent: 30},
	} {
		if err := inj.validate(f); err != nil {
			t.Errorf("validate rejected %+v: %v", f, err)
		}
	}
}

func TestLossFaultJSON(t *testing.T) {
	f := Fault{ID: "loss:eu-west|us-east", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, LossPercent: 30}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"loss_percent":30`) {
		t.Fatalf("loss percent not in the ledger form: %s", b)
	}
	var back Fault
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.LossPercent != 30 || back.Kind != KindLoss || !slices.Equal(back.Regions, f.Regions) {
		t.Fatalf("round trip: %+v -> %s -> %+v", f, b, back)
	}
}

// TestLossDropsOneSidePerPair: a loss fault's rules sit on one side of each pair of sites, so
// every packet between two nodes across the fault meets exactly one draw; nothing within a site
// or outside the fault is touched, and it puts no toxic on the WAN links.
func TestLossDropsOneSidePerPair(t *testing.T) {
	inj := testInjector(t)
	topo := inj.plan.Topology
	us, eu, wit := topo.SitePrefix("us-east"), topo.SitePrefix("eu-west"), topo.SitePrefix("witness")

	between := inj.lossDrops(Fault{ID: "l", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, LossPercent: 30})
	if len(between) != 4 {
		t.Fatalf("loss between two regions on %d nodes, want eu-west's 4: %v", len(between), between)
	}
	for node, ps := range between {
		if n, _ := topo.Node(node); n.Region != "eu-west" || !slices.Equal(ps, []netip.Prefix{us}) {
			t.Errorf("loss between regions: %s loses %v", node, ps)
		}
	}
	// One region against everything: all on its own nodes, the witness included.
	one := inj.lossDrops(Fault{ID: "l1", Kind: KindLoss, Region: "us-east", LossPercent: 30})
	if len(one) != 4 {
		t.Fatalf("loss of us-east on %d nodes, want its 4: %v", len(one), one)
	}
	for node, ps := range one {
		if n, _ := topo.Node(node); n.Region != "us-east" || !slices.Equal(ps, []netip.Prefix{eu, wit}) {
			t.Errorf("loss of us-east: %s loses %v", node, ps)
		}
	}
	if !maps.EqualFunc(inj.packetDrops(Fault{ID: "l1", Kind: KindLoss, Region: "us-east", LossPercent: 30}), one, slices.Equal) {
		t.Error("the packet layer does not install the loss drops")
	}

	// Exactly one draw per crossing packet, for every fault shape.
	for _, f := range []Fault{
		{ID: "a", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, LossPercent: 10},
		{ID: "b", Kind: KindLoss, Region: "eu-west", LossPercent: 10},
		{ID: "c", Kind: KindLoss, Regions: []string{"witness"}, LossPercent: 10},
		{ID: "d", Kind: KindLoss, Regions: []string{"eu-west", "us-east", "witness"}, LossPercent: 10},
	} {
		drops := inj.lossDrops(f)
		cut := map[[2]string]bool{}
		for _, p := range inj.sitePairs(f) {
			cut[p] = true
		}
		for _, a := range topo.Nodes() {
			for _, b := range topo.Nodes() {
				if a.Site() >= b.Site() || a.Role == topology.RoleWAN || b.Role == topology.RoleWAN {
					continue
				}
				draws := 0
				if slices.Contains(drops[a.Name], topo.SitePrefix(b.Site())) {
					draws++
				}
				if slices.Contains(drops[b.Name], topo.SitePrefix(a.Site())) {
					draws++
				}
				want := 0
				if cut[[2]string{a.Site(), b.Site()}] {
					want = 1
				}
				if draws != want {
					t.Errorf("fault %s: %s↔%s meets %d draws, want %d", f.ID, a.Name, b.Name, draws, want)
				}
			}
		}
		if n := len(inj.toxics(f)); n != 0 {
			t.Errorf("fault %s puts %d toxics on the WAN links", f.ID, n)
		}
	}
}

func TestLossGossipRules(t *testing.T) {
	inj := testInjector(t)
	tp := inj.plan.Topology
	node := func(name string) topology.Node {
		n, _ := tp.Node(name)
		return n
	}
	us := tp.SitePrefix("us-east")
	loss := Fault{ID: "l", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, LossPercent: 30}
	r := inj.rulesFor(node("eu-west-db-1"), []Fault{loss})
	if len(r.Drop) != 0 || len(r.Delays) != 0 || !slices.Equal(r.Loss, []gossip.Loss{{Prefix: us, Percent: 30}}) {
		t.Fatalf("eu-west (holding side) rules %+v", r)
	}
	if r := inj.rulesFor(node("us-east-web-1"), []Fault{loss}); len(r.Loss) != 0 {
		t.Fatalf("us-east (other side) has loss rules: %+v", r)
	}
	// Two loss faults on one prefix are two draws; a partition on top still drops all.
	more := Fault{ID: "m", Kind: KindLoss, Region: "eu-west", LossPercent: 5}
	part := Fault{ID: "p", Kind: KindPartition, Regions: []string{"eu-west", "us-east"}}
	r = inj.rulesFor(node("eu-west-web-2"), []Fault{loss, more, part})
	wantLoss := []gossip.Loss{{Prefix: us, Percent: 30}, {Prefix: us, Percent: 5}, {Prefix: tp.SitePrefix("witness"), Percent: 5}}
	if !slices.Equal(r.Drop, []netip.Prefix{us}) || !slices.Equal(r.Loss, wantLoss) {
		t.Fatalf("loss + loss + partition rules %+v, want drop %s and loss %v", r, us, wantLoss)
	}

	// On a runtime with a packet layer the packets carry the loss: no gossip rule, or gossip
	// packets would be drawn twice.
	inj.rt = withPackets{&fakeRuntime{plan: inj.plan}}
	if r := inj.rulesFor(node("eu-west-db-1"), []Fault{loss}); len(r.Loss) != 0 {
		t.Fatalf("gossip loss rules on a runtime with packet faults: %+v", r)
	}
}

// fakeRuntime runs nothing: every node "runs", each gossip node's control endpoint is a test
// server that keeps the rules pushed to it and the WAN API answers an empty proxy list. Wrapped
// in withPackets, it keeps packet rule sets as a PacketFaulter would.
type fakeRuntime struct {
	plan *topology.Plan

	mu      sync.Mutex
	addrs   map[string]string          // node → control endpoint address ("wan" → WAN API)
	gossip  map[string]gossip.Rules    // node → rules last pushed
	tables  map[string]map[string]bool // node → rule set ids
	percent map[string]int             // rule set id → loss percent (0: drop all)
	flushed bool
}

func newFakeRuntime(t *testing.T, p *topology.Plan) *fakeRuntime {
	f := &fakeRuntime{plan: p, addrs: map[string]string{}, gossip: map[string]gossip.Rules{},
		tables: map[string]map[string]bool{}, percent: map[string]int{}}
	wan := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/proxies" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(wan.Close)
	f.addrs["wan"] = strings.TrimPrefix(wan.URL, "http://")
	for _, n := range p.Topology.Nodes() {
		if !gossipMember(n) {
			continue
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			switch r.Method {
			case http.MethodPut:
				var rules gossip.Rules
				if err := json.NewDecoder(r.Body).Decode(&rules); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				f.gossip[n.Name] = rules
			case http.MethodDelete:
				delete(f.gossip, n.Name)
			}
			_ = json.NewEncoder(w).Encode(f.gossip[n.Name])
		}))
		t.Cleanup(srv.Close)
		f.addrs[n.Name] = strings.TrimPrefix(srv.URL, "http://")
	}
	return f
}

func (f *fakeRuntime) Name() string                             { return "fake" }
func (f *fakeRuntime) Up(context.Context, *topology.Plan) error { return nil }
func (f *fakeRuntime) Down(context.Context) error               { return nil }
func (f *fakeRuntime) Kill(context.Context, string) error       { return errors.New("fake") }
func (f *fakeRuntime) Freeze(context.Context, string) error     { return errors.New("fake") }
func (f *fakeRuntime) Thaw(context.Context, string) error       { return errors.New("fake") }
func (f *fakeRuntime) Start(context.Context, string) error      { return errors.New("fake") }
func (f *fakeRuntime) Nodes(context.Context) ([]NodeState, error) {
	var out []NodeState
	for _, n := range f.plan.Topology.Nodes() {
		out = append(out, NodeState{Name: n.Name, Running: true})
	}
	return out, nil
}
func (f *fakeRuntime) Endpoint(node string, port int) (string, error) {
	if a, ok := f.addrs[node]; ok {
		return a, nil
	}
	return "", errors.New("fake: no endpoint for " + node)
}

// withPackets is the fake as a PacketFaulter (the injector looks for the interface).
type withPackets struct{ *fakeRuntime }

func (f withPackets) DropPackets(ctx context.Context, id string, drops map[string][]netip.Prefix) error {
	return f.LossPackets(ctx, id, drops, 0)
}

func (f withPackets) LossPackets(_ context.Context, id string, drops map[string][]netip.Prefix, percent int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range drops {
		if f.tables[n] == nil {
			f.tables[n] = map[string]bool{}
		}
		f.tables[n][id] = true
	}
	f.percent[id] = percent
	return nil
}

func (f withPackets) UndropPackets(_ context.Context, id string, nodes []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range nodes {
		delete(f.tables[n], id)
	}
	return nil
}

func (f withPackets) PacketRules(context.Context) (map[string][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for n, ids := range f.tables {
		for id := range ids {
			out[n] = append(out[n], id)
		}
	}
	return out, nil
}

func (f withPackets) FlushPacketRules(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables = map[string]map[string]bool{}
	f.flushed = true
	return nil
}

func residueDetail(items []ResidueItem, what string) (clean bool, detail string) {
	for _, it := range items {
		if it.What == what {
			return it.Clean, it.Detail
		}
	}
	return false, "no residue item " + what
}

// TestInjectorLoss applies, undoes and recovers a loss fault through the injector on a fake
// runtime, with a packet layer (rule sets with the percentage) and without (gossip loss rules):
// ledger first, residue dirty while active, clean after undo and after recover.
func TestInjectorLoss(t *testing.T) {
	for _, packets := range []bool{true, false} {
		name := map[bool]string{true: "packet layer", false: "gossip only"}[packets]
		t.Run(name, func(t *testing.T) {
			topo := topology.Default()
			topo.Network.LoopbackBase = "127.84.0.0/16"
			p, err := topology.NewPlan(topo, "fake", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			fake := newFakeRuntime(t, p)
			var rt Runtime = fake
			if packets {
				rt = withPackets{fake}
			}
			inj, err := NewInjector(p, rt, LedgerPath(p.RunDir), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			f := Fault{ID: "loss:eu-west|us-east", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, LossPercent: 30}
			if err := inj.Apply(ctx, Fault{ID: "bad", Kind: KindLoss, Region: "us-east", LossPercent: 100}); err == nil {
				t.Fatal("a loss of 100 % was applied")
			}
			if err := inj.Apply(ctx, f); err != nil {
				t.Fatal(err)
			}
			holders := []string{"eu-west-db-1", "eu-west-dns-1", "eu-west-web-1", "eu-west-web-2"}
			gossipWhat, packetWhat := "gossip fault rules on running nodes", "packet drop and loss rules in nodes"
			items := inj.Residue(ctx)
			if ResidueClean(items) {
				t.Fatalf("residue clean while a loss fault is active: %+v", items)
			}
			if clean, detail := residueDetail(items, "outstanding faults in the ledger"); clean || detail != f.ID {
				t.Fatalf("ledger residue %v %q", clean, detail)
			}
			rules, _ := withPackets{fake}.PacketRules(ctx)
			fake.mu.Lock()
			if packets {
				if got := slices.Sorted(maps.Keys(rules)); !slices.Equal(got, holders) || fake.percent[f.ID] != 30 {
					t.Errorf("rule sets on %v at %d %%, want on %v at 30 %%", got, fake.percent[f.ID], holders)
				}
				if len(fake.gossip) != 0 {
					t.Errorf("gossip rules pushed with a packet layer: %v", fake.gossip)
				}
			} else {
				if got := slices.Sorted(maps.Keys(fake.gossip)); !slices.Equal(got, holders) {
					t.Errorf("gossip loss rules on %v, want on %v", got, holders)
				}
				if r := fake.gossip["eu-west-web-1"]; len(r.Loss) != 1 || r.Loss[0].Percent != 30 || r.Loss[0].Prefix != p.Topology.SitePrefix("us-east") {
					t.Errorf("gossip rules of eu-west-web-1: %+v", r)
				}
			}
			fake.mu.Unlock()
			if packets {
				if clean, detail := residueDetail(items, packetWhat); clean || !strings.Contains(detail, "eu-west-db-1/"+f.ID) {
					t.Errorf("packet residue %v %q", clean, detail)
				}
			} else if clean, detail := residueDetail(items, gossipWhat); clean || !strings.Contains(detail, "eu-west-db-1 (0 drop, 0 delay, 1 loss)") {
				t.Errorf("gossip residue %v %q", clean, detail)
			}

			if err := inj.Undo(ctx, f.ID); err != nil {
				t.Fatal(err)
			}
			if items := inj.Residue(ctx); !ResidueClean(items) {
				t.Fatalf("residue after undo: %+v", items)
			}

			// Applied again, then recovered from the ledger alone by a new injector.
			if err := inj.Apply(ctx, f); err != nil {
				t.Fatal(err)
			}
			again, err := NewInjector(p, rt, LedgerPath(p.RunDir), nil)
			if err != nil {
				t.Fatal(err)
			}
			if a := again.Active(); len(a) != 1 || a[0].LossPercent != 30 || a[0].Kind != KindLoss {
				t.Fatalf("the ledger holds %+v", a)
			}
			undone, err := again.Recover(ctx)
			if err != nil || len(undone) != 1 {
				t.Fatalf("recover: %v %v", undone, err)
			}
			if items := again.Residue(ctx); !ResidueClean(items) {
				t.Fatalf("residue after recover: %+v", items)
			}
			if packets && !fake.flushed {
				t.Error("recover did not flush the packet rules")
			}
		})
	}
}
