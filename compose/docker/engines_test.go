package docker

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drillworks/drill/topology"
)

// spread is the default topology plus ap-south, with eu-west and ap-south on engine b.
func spread(t *testing.T) *topology.Topology {
	t.Helper()
	top := topology.Default()
	ap := top.Regions[1]
	ap.Name = "ap-south"
	top.Regions = append(top.Regions, ap)
	top.Regions[1].DockerHost = "tcp://b:2376"
	top.Regions[2].DockerHost = "tcp://b:2376"
	return top
}

// On several engines each engine's nodes are in its own /20 of the WAN range, the blocks do not
// overlap, each gateway is its engine's host and no node's, and the links of regions away from
// the WAN node's engine listen on its WAN address, each on a port of its own.
func TestPlanOnSeveralEngines(t *testing.T) {
	p, err := NewPlan(spread(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dt := p.Topology
	if got := EngineHosts(dt); !slices.Equal(got, []string{"", "tcp://b:2376"}) {
		t.Fatalf("engines %q", got)
	}
	if !isDockerPlan(p) {
		t.Fatal("a plan on several engines is not taken for a Docker plan")
	}
	want := map[string]string{
		"wan": "10.77.128.1", "witness": "10.77.143.1", "us-east-db-1": "10.77.129.20",
		"eu-west-db-1": "10.77.144.20", "ap-south-web-1": "10.77.145.10",
	}
	for name, ip := range want {
		if n, ok := dt.Node(name); !ok || n.IP.String() != ip {
			t.Errorf("node %s at %v, want %s", name, n.IP, ip)
		}
	}
	blocks := []netip.Prefix{wanNetworkPrefix(dt, 0), wanNetworkPrefix(dt, 1)}
	if blocks[0].String() != "10.77.128.0/20" || blocks[1].String() != "10.77.144.0/20" || blocks[0].Overlaps(blocks[1]) {
		t.Fatalf("engine blocks %v", blocks)
	}
	for k, b := range blocks {
		if gw := wanGateway(dt, k); !b.Contains(gw) || gw.As4()[3] != 254 {
			t.Errorf("engine %d's gateway %s is not its block's host address", k, gw)
		}
	}
	for _, n := range dt.Nodes() {
		k := siteEngine(dt, n.Site())
		if !blocks[k].Contains(n.IP) {
			t.Errorf("node %s at %s is outside engine %d's block %s", n.Name, n.IP, k, blocks[k])
		}
		for g := range blocks {
			if n.IP == wanGateway(dt, g) {
				t.Errorf("node %s has a gateway's address", n.Name)
			}
		}
		if n.Site() != "wan" && !dt.SitePrefix(n.Site()).Contains(n.IP) {
			t.Errorf("node %s at %s is outside its site prefix %s", n.Name, n.IP, dt.SitePrefix(n.Site()))
		}
	}
	listens := map[string]string{}
	for _, l := range p.Links {
		if other, dup := listens[l.Listen]; dup {
			t.Errorf("links %s and %s both listen on %s", other, l.Name, l.Listen)
		}
		listens[l.Listen] = l.Name
		ap := netip.MustParseAddrPort(l.Listen)
		onWANAddr := ap.Addr() == netip.MustParseAddr("10.77.128.1")
		if (l.FromSite == "us-east") == onWANAddr {
			t.Errorf("link %s listens on %s: want the us-east network for us-east, the WAN node's WAN address for the others", l.Name, l.Listen)
		}
		if int(ap.Port()) >= topology.PortWANAPI {
			t.Errorf("link %s's port %d reaches the toxiproxy API's", l.Name, ap.Port())
		}
	}
	if got, _ := p.DialAddr("eu-west", "us-east-db-1"); !strings.HasPrefix(got, "10.77.128.1:") {
		t.Errorf("eu-west reaches us-east-db-1 at %s, want a link on the WAN node's WAN address", got)
	}
	// One engine keeps the one-network layout.
	one, err := NewPlan(topology.Default(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sp := one.Topology.Network.Space; sp.RegionThirds != nil || sp.WitnessThird != 0 || wanNetworkPrefix(one.Topology, 0).Bits() != 17 {
		t.Errorf("one engine's plan has the several-engine layout: %+v", sp)
	}
}

// Too many engines, or too many regions on one, are refused when the plan is made.
func TestPlanOnSeveralEnginesLimits(t *testing.T) {
	top := topology.Default()
	base := top.Regions[1]
	top.Regions = top.Regions[:1]
	for i := range MaxEngines {
		r := base
		r.Name = fmt.Sprintf("r%d", i)
		r.DockerHost = fmt.Sprintf("tcp://h%d:2376", i)
		top.Regions = append(top.Regions, r)
	}
	if _, err := NewPlan(top, t.TempDir()); err == nil || !strings.Contains(err.Error(), "at most 8 engines") {
		t.Errorf("%d engines: %v", MaxEngines+1, err)
	}
	top = topology.Default()
	top.Regions[1].DockerHost = "tcp://b:2376"
	for i := range maxRegionsOn(0) {
		r := base
		r.Name = fmt.Sprintf("d%d", i)
		top.Regions = append(top.Regions, r)
	}
	if _, err := NewPlan(top, t.TempDir()); err == nil || !strings.Contains(err.Error(), "at most 14 regions run on one engine") {
		t.Errorf("15 regions on the default engine: %v", err)
	}
}

// fleetEngine is one engine of a fake fleet: its containers, the calls it got, and its identity.
type fleetEngine struct {
	filteringEngine
	id    string
	calls []string
}

func (e *fleetEngine) ID(context.Context) (string, error) { return e.id, nil }

func (e *fleetEngine) record(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func (e *fleetEngine) ContainerKill(_ context.Context, id, _ string) error {
	e.record("kill " + id)
	return nil
}

func (e *fleetEngine) ContainerWait(context.Context, string) (int64, error) { return 137, nil }

func (e *fleetEngine) ContainerPause(_ context.Context, id string) error {
	e.record("pause " + id)
	return nil
}

func (e *fleetEngine) Close() error { return nil }

// The runtime sends each node's operations to its region's engine, reports the nodes of every
// engine, and Down removes every engine's objects; addresses of one engine are refused.
func TestRuntimeUsesEachNodesEngine(t *testing.T) {
	runDir := t.TempDir()
	plan, err := NewPlan(spread(t), runDir)
	if err != nil {
		t.Fatal(err)
	}
	dt := plan.Topology
	engines := map[string]*fleetEngine{"": {id: "A /var/lib/docker"}, "tcp://b:2376": {id: "B /var/lib/docker"}}
	for _, n := range dt.Nodes() {
		e := engines[nodeHost(dt, n)]
		e.containers = append(e.containers, Container{ID: "id-" + n.Name, Name: containerName(dt.Name, n.Name), State: "running",
			Labels: objectLabels(dt.Name, plan.RunID, string(n.Role), n.Name)})
	}
	var dialled []string
	var mu sync.Mutex
	r, err := New(Config{RunDir: runDir, Binary: "/bin/sh", Engine: engines[""], DialEngine: func(host string) (Engine, error) {
		mu.Lock()
		defer mu.Unlock()
		dialled = append(dialled, host)
		e, ok := engines[host]
		if !ok {
			return nil, fmt.Errorf("no engine %s", host)
		}
		return e, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.plan.Save(plan); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.checkEngines(ctx, dt); err != nil {
		t.Fatalf("two engines taken for one: %v", err)
	}
	states, err := r.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if !s.Running || s.ID != "id-"+s.Name {
			t.Errorf("node %s: %+v, want running in its container", s.Name, s)
		}
	}
	if err := r.Kill(ctx, "ap-south-db-1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Freeze(ctx, "us-east-db-1"); err != nil {
		t.Fatal(err)
	}
	if got := engines["tcp://b:2376"].calls; !slices.Equal(got, []string{"kill id-ap-south-db-1"}) {
		t.Errorf("engine b got %v", got)
	}
	if got := engines[""].calls; !slices.Equal(got, []string{"pause id-us-east-db-1"}) {
		t.Errorf("the default engine got %v", got)
	}
	if err := r.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for h, e := range engines {
		if len(e.containers) != 0 {
			t.Errorf("%s: %d containers left after Down", engineLabel(h), len(e.containers))
		}
	}
	if !slices.Equal(dialled, []string{"tcp://b:2376"}) {
		t.Errorf("dialled %v, want engine b once", dialled)
	}

	// The same engine under a second address is refused before anything is made.
	engines["tcp://b:2376"].id = engines[""].id
	r2, err := New(Config{RunDir: t.TempDir(), Binary: "/bin/sh", Engine: engines[""], DialEngine: func(string) (Engine, error) { return engines["tcp://b:2376"], nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.checkEngines(ctx, dt); err == nil || !strings.Contains(err.Error(), "engine tcp://b:2376 is the default engine") {
		t.Errorf("one engine under two addresses: %v", err)
	}
}

// Black holes spare drill's management traffic from every engine's gateway, and from whatever
// address this host sends from towards each engine (its own interface's for an engine elsewhere).
func TestManagersCoverEveryEngine(t *testing.T) {
	p, err := NewPlan(spread(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := managers(p.Topology)
	for k := range EngineHosts(p.Topology) {
		if !slices.Contains(got, netip.PrefixFrom(wanGateway(p.Topology, k), 32)) {
			t.Errorf("engine %d's gateway is not among the managers %v", k, got)
		}
	}
	for _, m := range got {
		if m.Bits() != 32 {
			t.Errorf("manager %s is a range, not a host", m)
		}
	}
}
