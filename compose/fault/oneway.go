package fault

import (
	"fmt"
	"net/netip"

	"github.com/drillworks/drill/topology"
)

// KindOneWayPartition drops the packets a region sends to another site (or to every other site),
// while the packets coming back are delivered: an asymmetric link failure. On the WAN links the
// streams from the region are held (what it sends never arrives) and so are the answers it gives
// to connections from the other side (a request reaches it, its reply does not); in gossip and in
// the kernel its packets to the other side are dropped on the way out, and the other side drops
// them on the way in. A TCP connection needs both directions, so new connections between the two
// fail either way; UDP gossip from the other side still arrives.
const KindOneWayPartition Kind = "one-way-partition"

// ParamTo names the site a one-way partition drops the region's packets to.
const ParamTo = "to"

func init() { register(oneWay{}) }

type oneWay struct{ Base }

func (oneWay) Kind() Kind { return KindOneWayPartition }

func (oneWay) Summary() string {
	return "drop what a region sends to another site (or to every other site); what comes back is delivered"
}

func (oneWay) Targets() Targets {
	return Targets{Region: true, Help: "the region whose outgoing packets are dropped"}
}

func (oneWay) Params() []Param {
	return []Param{{Name: ParamTo, Type: TypeSite,
		Help: "the site its packets are dropped to, a region or witness (default: every other site), e.g. to: eu-west"}}
}

func (oneWay) Check(f Fault, _ *topology.Topology) error {
	if f.Params[ParamTo] == f.Region {
		return fmt.Errorf("fault %s: to is the region itself (%s)", f.ID, f.Region)
	}
	return nil
}

func (oneWay) Describe(f Fault) string {
	if to := f.Params[ParamTo]; to != "" {
		return "from " + f.Region + " to " + to
	}
	return "from " + f.Region + " to every other site"
}

func (oneWay) Effects(f Fault, env Env) Effects {
	t := env.Plan.Topology
	from := f.Region
	e := Effects{Gossip: map[string]GossipRule{}, Packets: map[string]PacketRule{}}
	for _, pair := range SitePairs(t, Fault{Region: from}) {
		to, _ := OtherSite(pair, from)
		if want := f.Params[ParamTo]; want != "" && to != want {
			continue
		}
		// On links the sender dials, its requests are held; on links the other side dials, its
		// answers are.
		e.Toxics = append(e.Toxics, cutToxics(env.Plan, f.ID, pair, func(dialler string) []string {
			if dialler == from {
				return []string{StreamUp}
			}
			return []string{StreamDown}
		})...)
		fromP, toP := []netip.Prefix{t.SitePrefix(from)}, []netip.Prefix{t.SitePrefix(to)}
		for _, n := range t.Nodes() {
			switch n.Site() {
			case from:
				if env.PacketLayer {
					packetAdd(e.Packets, n.Name, PacketRule{DropOut: toP})
				}
				if IsGossipMember(n) {
					gossipAdd(e.Gossip, n.Name, GossipRule{DropOut: toP})
				}
			case to:
				if IsGossipMember(n) {
					gossipAdd(e.Gossip, n.Name, GossipRule{DropIn: fromP})
				}
			}
		}
	}
	return e
}

func (oneWay) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-one-way-partition", Kind: KindOneWayPartition, Region: QuietRegion(t)}
}
