package fault

import (
	"context"
	"net/netip"

	"github.com/drillworks/drill/topology"
)

// KindBlackhole makes a whole region silently unreachable while its processes keep running:
// every packet to or from its nodes vanishes, users' included, so connections hang rather than
// being refused.
const KindBlackhole Kind = "blackhole"

func init() { register(blackhole{}) }

type blackhole struct{ Base }

func (blackhole) Kind() Kind { return KindBlackhole }

func (blackhole) Summary() string {
	return "make a region silently unreachable (every packet to and from its nodes dropped, users' included)"
}

func (blackhole) Targets() Targets {
	return Targets{Region: true, Help: "the region whose traffic to drop"}
}

func (blackhole) TakesRegionOut(Fault) bool { return true }

func (blackhole) Resolve(_ context.Context, f Fault, env Env) ([]string, error) {
	return RegionNodes(env.Plan.Topology, f.Region), nil
}

// Effects: both WAN streams of every link touching the region cut; on a packet layer, all traffic
// of its nodes dropped; in gossip, the region's range dropped by everyone else, and every other
// site and every user subnet dropped by the region's own nodes (so its web and DNS nodes ignore
// users too).
func (blackhole) Effects(f Fault, env Env) Effects {
	t := env.Plan.Topology
	e := Effects{Gossip: map[string]GossipRule{}, Packets: map[string]PacketRule{}}
	for _, pair := range SitePairs(t, f) {
		e.Toxics = append(e.Toxics, cutToxics(env.Plan, f.ID, pair, bothStreams)...)
	}
	var inside []netip.Prefix
	for _, s := range t.Sites() {
		if s != f.Region {
			inside = append(inside, t.SitePrefix(s))
		}
	}
	for _, r := range t.Regions {
		for _, c := range r.ClientSubnets {
			if p, err := netip.ParsePrefix(c); err == nil {
				inside = append(inside, p.Masked())
			}
		}
	}
	for _, n := range t.Nodes() {
		switch {
		case n.Region == f.Region:
			if env.PacketLayer {
				e.Packets[n.Name] = PacketRule{Drop: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
			}
			if IsGossipMember(n) {
				gossipAdd(e.Gossip, n.Name, GossipRule{Drop: inside})
			}
		case IsGossipMember(n):
			gossipAdd(e.Gossip, n.Name, GossipRule{Drop: []netip.Prefix{t.SitePrefix(f.Region)}})
		}
	}
	return e
}

func (blackhole) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-blackhole", Kind: KindBlackhole, Region: QuietRegion(t)}
}
