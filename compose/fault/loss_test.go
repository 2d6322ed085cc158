package fault

import (
	"slices"
	"testing"

	"github.com/drillworks/drill/topology"
)

func TestLossValidate(t *testing.T) {
	topo := testEnv(t, false).Plan.Topology
	for _, f := range []Fault{
		{ID: "x", Kind: KindLoss, Region: "us-east"},                                      // no percent
		{ID: "x", Kind: KindLoss, Region: "us-east", Params: Params{ParamPercent: "100"}}, // a partition
		{ID: "x", Kind: KindLoss, Region: "us-east", Params: Params{ParamPercent: "-5"}},
		{ID: "x", Kind: KindLoss, Params: Params{ParamPercent: "30"}}, // no target
		{ID: "x", Kind: KindLoss, Region: "us-east", Regions: []string{"eu-west", "us-east"}, Params: Params{ParamPercent: "30"}},
		{ID: "x", Kind: KindLoss, Regions: []string{"us-east", "mars"}, Params: Params{ParamPercent: "30"}},
	} {
		if err := Validate(&f, topo); err == nil {
			t.Errorf("validate accepted %+v", f)
		}
	}
	for _, f := range []Fault{
		{ID: "a", Kind: KindLoss, Region: "us-east", Params: Params{ParamPercent: "1"}},
		{ID: "b", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, Params: Params{ParamPercent: "99"}},
		{ID: "c", Kind: KindLoss, Regions: []string{"us-east", "witness"}, Params: Params{ParamPercent: "30"}},
	} {
		if err := Validate(&f, topo); err != nil {
			t.Errorf("validate rejected %+v: %v", f, err)
		}
	}
}

// TestLossOneSidePerPair: a loss fault's rules sit on one side of each pair of sites, so every
// packet between two nodes across the fault meets exactly one draw; nothing within a site or
// outside the fault is touched, and it puts no toxic on the WAN links.
func TestLossOneSidePerPair(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	us, eu, wit := tp.SitePrefix("us-east"), tp.SitePrefix("eu-west"), tp.SitePrefix("witness")

	between := effectsOf(t, env, Fault{ID: "l", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, Params: Params{ParamPercent: "30"}})
	if len(between.Packets) != 4 {
		t.Fatalf("loss between two regions on %d nodes, want eu-west's 4: %v", len(between.Packets), between.Packets)
	}
	for node, r := range between.Packets {
		if n, _ := tp.Node(node); n.Region != "eu-west" || !slices.Equal(r.Drop, prefixes(us)) || r.LossPercent != 30 {
			t.Errorf("loss between regions: %s has %+v", node, r)
		}
	}
	one := effectsOf(t, env, Fault{ID: "l1", Kind: KindLoss, Region: "us-east", Params: Params{ParamPercent: "30"}})
	for node, r := range one.Packets {
		if n, _ := tp.Node(node); n.Region != "us-east" || !slices.Equal(r.Drop, prefixes(eu, wit)) {
			t.Errorf("loss of us-east: %s has %+v", node, r)
		}
	}
	for _, f := range []Fault{
		{ID: "a", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, Params: Params{ParamPercent: "10"}},
		{ID: "b", Kind: KindLoss, Region: "eu-west", Params: Params{ParamPercent: "10"}},
		{ID: "d", Kind: KindLoss, Regions: []string{"eu-west", "us-east", "witness"}, Params: Params{ParamPercent: "10"}},
	} {
		e := effectsOf(t, env, f)
		cut := map[[2]string]bool{}
		for _, p := range SitePairs(tp, f) {
			cut[p] = true
		}
		for _, a := range tp.Nodes() {
			for _, b := range tp.Nodes() {
				if a.Site() >= b.Site() || a.Role == topology.RoleWAN || b.Role == topology.RoleWAN {
					continue
				}
				draws := 0
				if slices.Contains(e.Packets[a.Name].Drop, tp.SitePrefix(b.Site())) {
					draws++
				}
				if slices.Contains(e.Packets[b.Name].Drop, tp.SitePrefix(a.Site())) {
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
		if len(e.Toxics) != 0 {
			t.Errorf("fault %s puts %d toxics on the WAN links", f.ID, len(e.Toxics))
		}
		if len(e.Gossip) != 0 {
			t.Errorf("fault %s has gossip loss rules on a runtime with a packet layer: %v", f.ID, e.Gossip)
		}
	}
}

// TestLossGossipOnly: without a packet layer the gossip transport carries the loss, on the
// holding side.
func TestLossGossipOnly(t *testing.T) {
	env := testEnv(t, false)
	tp := env.Plan.Topology
	us := tp.SitePrefix("us-east")
	e := effectsOf(t, env, Fault{ID: "l", Kind: KindLoss, Regions: []string{"eu-west", "us-east"}, Params: Params{ParamPercent: "30"}})
	if r := e.Gossip["eu-west-db-1"]; len(r.Drop) != 0 || !slices.Equal(r.Loss, []Loss{{Prefix: us, Percent: 30}}) {
		t.Fatalf("eu-west (holding side) rules %+v", r)
	}
	if r, ok := e.Gossip["us-east-web-1"]; ok {
		t.Fatalf("us-east (other side) has loss rules: %+v", r)
	}
	if len(e.Packets) != 0 {
		t.Fatal("packet rules without a packet layer")
	}
	if got := Describe(Fault{Kind: KindLoss, Params: Params{ParamPercent: "30"}}); got != "30% loss" {
		t.Errorf("described as %q", got)
	}
}
