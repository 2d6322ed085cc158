package fault

import (
	"slices"
	"testing"
)

func TestPartition(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	us, eu, wit := tp.SitePrefix("us-east"), tp.SitePrefix("eu-west"), tp.SitePrefix("witness")

	e := effectsOf(t, env, Fault{ID: "p", Kind: KindPartition, Regions: []string{"us-east", "eu-west"}})
	n, links := toxicLinks(t, e)
	if n != 4 || !links["us-east--eu-west-db-1"] || !links["eu-west--us-east-db-1"] {
		t.Fatalf("between two regions: %d toxics on %v", n, links)
	}
	if r := e.Gossip["eu-west-web-2"]; !slices.Equal(r.Drop, prefixes(us)) {
		t.Errorf("eu-west side: %+v", r)
	}
	if r := e.Gossip["us-east-dns-1"]; !slices.Equal(r.Drop, prefixes(eu)) {
		t.Errorf("us-east side: %+v", r)
	}
	if len(e.Packets) != 8 || !slices.Equal(e.Packets["us-east-db-1"].Drop, prefixes(eu)) {
		t.Errorf("packet rules %v", e.Packets)
	}
	if _, ok := e.Packets["witness"]; ok {
		t.Error("a partition between two regions must leave the witness alone")
	}
	if TakesRegionOut(Fault{Kind: KindPartition, Regions: []string{"us-east", "eu-west"}}) {
		t.Error("a cut between two regions takes a region out")
	}

	// One region against everything: its nodes drop every other site, the witness included,
	// and every other site's nodes drop it.
	one := effectsOf(t, env, Fault{ID: "p1", Kind: KindPartition, Region: "eu-west"})
	if n, _ := toxicLinks(t, one); n != 8 {
		t.Errorf("eu-west from everything: %d toxics, want 8", n)
	}
	if got := one.Packets["eu-west-dns-1"].Drop; !slices.Equal(got, prefixes(us, wit)) {
		t.Errorf("eu-west-dns-1 drops %v", got)
	}
	if got := one.Packets["witness"].Drop; !slices.Equal(got, prefixes(eu)) {
		t.Errorf("witness drops %v", got)
	}
	if !TakesRegionOut(Fault{Kind: KindPartition, Region: "eu-west"}) {
		t.Error("a region cut from everything is not taken out")
	}
}
