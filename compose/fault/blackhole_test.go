package fault

import (
	"net/netip"
	"slices"
	"testing"
)

func TestBlackhole(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	us, eu, wit := tp.SitePrefix("us-east"), tp.SitePrefix("eu-west"), tp.SitePrefix("witness")
	e := effectsOf(t, env, Fault{ID: "blackhole:us-east", Kind: KindBlackhole, Region: "us-east"})

	// Default plan: 6 links (us-east↔eu-west-db, us-east↔witness, eu-west↔witness, each way);
	// both streams of the 4 touching us-east are cut.
	n, links := toxicLinks(t, e)
	if n != 8 || len(links) != 4 || links["eu-west--witness"] {
		t.Fatalf("%d toxics on %v, want 8 on the 4 links touching us-east", n, links)
	}
	// Inside: every other site and every user subnet; never its own region.
	in := e.Gossip["us-east-web-1"]
	for _, p := range []netip.Prefix{eu, wit, netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")} {
		if !slices.Contains(in.Drop, p) {
			t.Errorf("inside the blackhole: drop %v lacks %s", in.Drop, p)
		}
	}
	if slices.Contains(in.Drop, us) {
		t.Errorf("inside the blackhole a node drops its own region: %v", in.Drop)
	}
	if out := e.Gossip["eu-west-db-1"]; !slices.Equal(out.Drop, prefixes(us)) || len(out.Delays) != 0 {
		t.Errorf("outside the blackhole: %+v, want drop of us-east only", out)
	}
	if _, ok := e.Gossip["witness"]; ok {
		t.Error("the witness is no gossip member but got rules")
	}
	// Packets: everything of each us-east node, nothing elsewhere.
	if len(e.Packets) != 4 {
		t.Fatalf("packet rules on %d nodes, want the 4 of us-east: %v", len(e.Packets), e.Packets)
	}
	for node, r := range e.Packets {
		if n, _ := tp.Node(node); n.Region != "us-east" || !slices.Equal(r.Drop, prefixes(netip.MustParsePrefix("0.0.0.0/0"))) {
			t.Errorf("%s drops %+v", node, r)
		}
	}
	if len(effectsOf(t, testEnv(t, false), Fault{ID: "b", Kind: KindBlackhole, Region: "us-east"}).Packets) != 0 {
		t.Error("packet rules without a packet layer")
	}
	if !TakesRegionOut(Fault{Kind: KindBlackhole, Region: "us-east"}) {
		t.Error("a blackhole does not take its region out")
	}
}
