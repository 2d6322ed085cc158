package fault

import (
	"slices"
	"testing"
)

func TestOneWayPartition(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	us, eu, wit := tp.SitePrefix("us-east"), tp.SitePrefix("eu-west"), tp.SitePrefix("witness")
	f := Fault{ID: "one-way-partition:us-east", Kind: KindOneWayPartition, Region: "us-east", Params: Params{ParamTo: "eu-west"}}
	e := effectsOf(t, env, f)

	// WAN: what us-east sends on its own links to eu-west is held (upstream), and so are its
	// answers on eu-west's links to it (downstream); nothing else.
	streams := map[string][]string{}
	for _, tx := range e.Toxics {
		streams[tx.Link] = append(streams[tx.Link], tx.Stream)
	}
	want := map[string][]string{"us-east--eu-west-db-1": {StreamUp}, "eu-west--us-east-db-1": {StreamDown}}
	if len(streams) != len(want) {
		t.Fatalf("toxics on %v, want %v", streams, want)
	}
	for link, st := range want {
		if !slices.Equal(streams[link], st) {
			t.Errorf("link %s: streams %v, want %v", link, streams[link], st)
		}
	}
	// Gossip: us-east drops on the way out, eu-west on the way in; no full drops anywhere.
	if r := e.Gossip["us-east-db-1"]; !slices.Equal(r.DropOut, prefixes(eu)) || len(r.Drop)+len(r.DropIn) != 0 {
		t.Errorf("us-east-db-1: %+v", r)
	}
	if r := e.Gossip["eu-west-web-2"]; !slices.Equal(r.DropIn, prefixes(us)) || len(r.Drop)+len(r.DropOut) != 0 {
		t.Errorf("eu-west-web-2: %+v", r)
	}
	if _, ok := e.Gossip["witness"]; ok {
		t.Error("the witness is no gossip member but got rules")
	}
	// Kernel: the sender's nodes drop their packets to eu-west on the way out.
	if len(e.Packets) != 4 || !slices.Equal(e.Packets["us-east-web-1"].DropOut, prefixes(eu)) || len(e.Packets["us-east-web-1"].Drop) != 0 {
		t.Errorf("packet rules %+v", e.Packets)
	}
	if got := Describe(f); got != "from us-east to eu-west" {
		t.Errorf("described as %q", got)
	}
	if TakesRegionOut(f) {
		t.Error("a one-way partition takes a region out")
	}

	// Without to: every other site, the witness included.
	all := effectsOf(t, testEnv(t, false), Fault{ID: "o", Kind: KindOneWayPartition, Region: "us-east"})
	if r := all.Gossip["us-east-dns-1"]; !slices.Equal(r.DropOut, prefixes(eu, wit)) {
		t.Errorf("towards every site: %+v", r)
	}
	if len(all.Packets) != 0 {
		t.Error("packet rules without a packet layer")
	}
	if n, _ := toxicLinks(t, all); n != 4 {
		t.Errorf("towards every site: %d toxics, want one stream of each of the 4 links touching us-east", n)
	}

	topo := env.Plan.Topology
	for _, bad := range []Fault{
		{ID: "x", Kind: KindOneWayPartition},
		{ID: "x", Kind: KindOneWayPartition, Region: "us-east", Params: Params{ParamTo: "us-east"}},
		{ID: "x", Kind: KindOneWayPartition, Region: "us-east", Params: Params{ParamTo: "mars"}},
		{ID: "x", Kind: KindOneWayPartition, Regions: []string{"us-east", "eu-west"}},
	} {
		if err := Validate(&bad, topo); err == nil {
			t.Errorf("validate accepted %+v", bad)
		}
	}
	ok := Fault{ID: "x", Kind: KindOneWayPartition, Region: "eu-west", Params: Params{ParamTo: "witness"}}
	if err := Validate(&ok, topo); err != nil {
		t.Errorf("validate rejected %+v: %v", ok, err)
	}
}
