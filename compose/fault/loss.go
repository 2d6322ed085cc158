package fault

import (
	"fmt"
	"net/netip"

	"github.com/drillworks/drill/topology"
)

// KindLoss drops a random share of the packets exchanged between sites, both ways, until undone:
// the sites of regions pairwise, or one region against every other site (the witness included),
// like a partition that lets most packets through.
//
// Where it acts depends on the runtime: with a packet layer (Docker) nftables rules in the nodes
// drop the packets the nodes exchange directly with the other side, UDP gossip and any TCP alike;
// without one (local processes) gossip loss rules drop the gossip UDP packets only. Either way
// the cross-site TCP that goes through the WAN links (toxiproxy) is not lossy: toxiproxy works on
// streams and has no packet loss.
//
// Every packet crossing the fault must meet the draw once, not once per end, or 30 % would be
// 51 % one way and 76 % for a request and its reply. So the rules sit on one side of each pair of
// sites only, matching both directions there: on the named region's nodes for a region fault,
// else on the nodes of the pair's first site in name order.
const KindLoss Kind = "loss"

// Loss percentages a fault may have: 0 would be no fault, 100 a partition.
const (
	MinLossPercent = 1
	MaxLossPercent = 99
)

func init() { register(loss{}) }

type loss struct{ Base }

func (loss) Kind() Kind { return KindLoss }

func (loss) Summary() string {
	return "drop a random share of the packets between sites (each packet drawn once; WAN TCP links are not lossy)"
}

func (loss) Targets() Targets {
	return Targets{Region: true, Regions: true,
		Help: "the region whose packets to and from everything else to drop, or regions: [a, b] for the packets between them"}
}

func (loss) Params() []Param {
	return []Param{{Name: ParamPercent, Type: TypeInt, Required: true, Min: MinLossPercent, Max: MaxLossPercent,
		Help:    fmt.Sprintf("the share of packets to drop, %d to %d, e.g. percent: 30", MinLossPercent, MaxLossPercent),
		Typical: [2]int64{5, 60}}} // near 99% it is a black hole, which has a kind of its own
}

func (loss) Describe(f Fault) string { return itoa(f.Params.Int(ParamPercent)) + "% loss" }

// Effects: on the holding side of every pair of sites, a loss rule against the other side's range:
// kernel rules with a packet layer, gossip loss rules without.
func (loss) Effects(f Fault, env Env) Effects {
	t := env.Plan.Topology
	pct := f.Params.Int(ParamPercent)
	e := Effects{Gossip: map[string]GossipRule{}, Packets: map[string]PacketRule{}}
	for _, pair := range SitePairs(t, f) {
		holder, other := pair[0], pair[1]
		if pair[1] == f.Region {
			holder, other = pair[1], pair[0]
		}
		p := []netip.Prefix{t.SitePrefix(other)}
		for _, n := range SiteNodes(t, holder) {
			switch {
			case env.PacketLayer:
				packetAdd(e.Packets, n.Name, PacketRule{Drop: p, LossPercent: pct})
			case IsGossipMember(n):
				gossipAdd(e.Gossip, n.Name, GossipRule{Loss: []Loss{{Prefix: p[0], Percent: pct}}})
			}
		}
	}
	return e
}

func (loss) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-loss", Kind: KindLoss, Region: QuietRegion(t), Params: Params{ParamPercent: "30"}}
}
