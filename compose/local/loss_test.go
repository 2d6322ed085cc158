package local_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/compose/fault"
)

// TestLossIsGossipOnly: the local runtime has no packet layer, so a loss fault becomes gossip
// loss rules on one side of the cut (the packet statistics are tested in agents/gossip); TCP
// across the WAN keeps working, the residue check shows the rules while active and nothing after
// undo.
func TestLossIsGossipOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t)
	ctx := context.Background()
	inj := c.inj
	topo := c.plan.Topology
	f := fault.Fault{ID: "loss:eu-west|us-east", Kind: fault.KindLoss, Regions: []string{"eu-west", "us-east"}, Params: fault.Params{fault.ParamPercent: "40"}}
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.Nodes() {
		if n.Region == "" {
			continue
		}
		r := c.gossipRules(n.Name)
		want := []gossip.Loss(nil)
		if n.Region == "eu-west" {
			want = []gossip.Loss{{Prefix: topo.SitePrefix("us-east"), Percent: 40}}
		}
		if !slices.Equal(r.Loss, want) || len(r.Drop) != 0 || len(r.Delays) != 0 {
			t.Errorf("gossip rules of %s: %+v, want loss %v only", n.Name, r, want)
		}
	}
	// TCP across the WAN (eu-west's web to the primary in us-east) is not lossy.
	if r := c.put("eu-west", "during-loss", "v"); r.Code != http.StatusOK {
		t.Fatalf("cross-region write during gossip loss: %d %s", r.Code, r.Error)
	}
	dirty := false
	for _, it := range inj.Residue(ctx) {
		if strings.HasPrefix(it.What, "gossip") {
			dirty = !it.Clean && strings.Contains(it.Detail, "eu-west-db-1 (0 drop, 0 delay, 1 loss)")
		}
	}
	if !dirty {
		t.Fatalf("residue does not show the gossip loss rules: %+v", inj.Residue(ctx))
	}
	if err := inj.Undo(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if r := c.gossipRules("eu-west-web-1"); len(r.Loss) != 0 {
		t.Fatalf("loss rules after undo: %+v", r)
	}
	requireClean(t, inj.Residue(ctx))
}
