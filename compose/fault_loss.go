package compose

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
)

// A loss fault drops LossPercent % of the packets exchanged between sites, at random, both ways,
// until undone: the sites of Regions pairwise, or Region against every other site (the witness
// included), like a partition that lets most packets through.
//
// Where it acts depends on the runtime:
//   - with a packet layer (PacketFaulter: Docker), nftables rules in the nodes drop the packets
//     the nodes exchange directly with the other side, UDP gossip and any TCP alike; the gossip
//     transport gets no loss rule then, or gossip packets would be drawn twice;
//   - without one (local processes), gossip loss rules drop the gossip UDP packets only.
//
// Either way the cross-site TCP that goes through the WAN links (toxiproxy: replication, remote
// writes, lease votes) is not lossy: toxiproxy works on streams and has no packet loss.
//
// Every packet crossing the fault must meet the draw once, not once per end, or 30 % would be
// 51 % one way and 76 % for a request and its reply. So the rules sit on one side of each pair
// of sites only, matching both directions there: on the named region's nodes for a Region
// fault, else on the nodes of the pair's first site in name order.

// Loss percentages a fault may have: 0 would be no fault, 100 a partition.
const (
	MinLossPercent = 1
	MaxLossPercent = 99
)

// validateLoss checks a loss fault's own fields (its sites are checked by validate).
func validateLoss(f Fault) error {
	if f.Region == "" && len(f.Regions) == 0 {
		return fmt.Errorf("fault %s: loss needs a region or regions", f.ID)
	}
	if f.Region != "" && len(f.Regions) > 0 {
		return fmt.Errorf("fault %s: loss takes a region or regions, not both", f.ID)
	}
	if f.LossPercent < MinLossPercent || f.LossPercent > MaxLossPercent {
		return fmt.Errorf("fault %s: loss_percent %d out of %d..%d", f.ID, f.LossPercent, MinLossPercent, MaxLossPercent)
	}
	return nil
}

// lossAnchor is the site a loss fault is aimed at against everything else ("" for a fault
// between several sites).
func lossAnchor(f Fault) string {
	if len(f.Regions) == 1 {
		return f.Regions[0]
	}
	return f.Region
}

// lossDrops are the prefixes each node loses packets to and from: node → other sites' ranges,
// on the holding side of every pair of sites only.
func (inj *Injector) lossDrops(f Fault) map[string][]netip.Prefix {
	t := inj.plan.Topology
	anchor := lossAnchor(f)
	out := map[string][]netip.Prefix{}
	for _, pair := range inj.sitePairs(f) {
		holder, other := pair[0], pair[1]
		if pair[1] == anchor {
			holder, other = pair[1], pair[0]
		}
		p := t.SitePrefix(other)
		for _, n := range t.Nodes() {
			if n.Site() == holder && !slices.Contains(out[n.Name], p) {
				out[n.Name] = append(out[n.Name], p)
			}
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
	}
	return out
}

// gossipLoss are the gossip loss rules of one node for one loss fault: none on a runtime whose
// packet layer carries the loss.
func (inj *Injector) gossipLoss(node topology.Node, f Fault) []gossip.Loss {
	if inj.packetFaulter() != nil {
		return nil
	}
	var out []gossip.Loss
	for _, p := range inj.lossDrops(f)[node.Name] {
		out = append(out, gossip.Loss{Prefix: p, Percent: f.LossPercent})
	}
	return out
}
