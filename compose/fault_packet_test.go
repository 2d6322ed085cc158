package compose

import (
	"net/netip"
	"slices"
	"testing"
)

func TestPacketDropsPerFault(t *testing.T) {
	inj := testInjector(t)
	topo := inj.plan.Topology
	all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}

	bh := inj.packetDrops(Fault{ID: "bh", Kind: KindBlackhole, Region: "us-east"})
	if len(bh) != 4 {
		t.Fatalf("blackhole drops on %d nodes, want the 4 of us-east: %v", len(bh), bh)
	}
	for node, ps := range bh {
		if n, _ := topo.Node(node); n.Region != "us-east" || !slices.Equal(ps, all) {
			t.Errorf("blackhole: %s drops %v", node, ps)
		}
	}

	part := inj.packetDrops(Fault{ID: "p", Kind: KindPartition, Regions: []string{"us-east", "eu-west"}})
	if len(part) != 8 {
		t.Fatalf("partition drops on %d nodes, want the 8 of both regions: %v", len(part), part)
	}
	if got := part["us-east-db-1"]; !slices.Equal(got, []netip.Prefix{topo.SitePrefix("eu-west")}) {
		t.Errorf("us-east-db-1 drops %v", got)
	}
	if got := part["eu-west-web-2"]; !slices.Equal(got, []netip.Prefix{topo.SitePrefix("us-east")}) {
		t.Errorf("eu-west-web-2 drops %v", got)
	}
	if _, ok := part["witness"]; ok {
		t.Error("a partition between two regions must leave the witness alone")
	}

	// One region against everything: its nodes drop every other site, the witness included,
	// and every other site's nodes drop it.
	one := inj.packetDrops(Fault{ID: "p1", Kind: KindPartition, Region: "eu-west"})
	if got := one["eu-west-dns-1"]; !slices.Equal(got, []netip.Prefix{topo.SitePrefix("us-east"), topo.SitePrefix("witness")}) {
		t.Errorf("eu-west-dns-1 drops %v", got)
	}
	if got := one["witness"]; !slices.Equal(got, []netip.Prefix{topo.SitePrefix("eu-west")}) {
		t.Errorf("witness drops %v", got)
	}

	for _, f := range []Fault{{Kind: KindLatency, Latency: 1}, {Kind: KindKill, Node: "us-east-db-1"}, {Kind: KindFreeze, Region: "us-east"}} {
		if d := inj.packetDrops(f); len(d) != 0 {
			t.Errorf("%s has packet drops: %v", f.Kind, d)
		}
	}
}
