package fault

import (
	"net/netip"

	"github.com/drillworks/drill/topology"
)

// KindPartition cuts the links between regions (or one region and everything else, the witness
// included) both ways, silently: packets vanish and live connections hang. Each side still serves
// its own users.
const KindPartition Kind = "partition"

func init() { register(partition{}) }

type partition struct{ Base }

func (partition) Kind() Kind { return KindPartition }

func (partition) Summary() string {
	return "cut the links between regions (or one region and everything else), both ways, silently"
}

func (partition) Targets() Targets {
	return Targets{Region: true, Regions: true,
		Help: "the region to cut off from everything else, or regions: [a, b] to cut the links between them"}
}

// TakesRegionOut: a region cut off from everything else is lost to the rest of the system, so
// GeoDNS is expected to send users elsewhere; a cut between named regions takes none out.
func (partition) TakesRegionOut(f Fault) bool { return f.Region != "" }

// Effects: both streams of every link between the sides cut; each side's nodes drop the other
// side's range, in gossip and (packet layer) in the kernel.
func (partition) Effects(f Fault, env Env) Effects {
	t := env.Plan.Topology
	e := Effects{Gossip: map[string]GossipRule{}, Packets: map[string]PacketRule{}}
	for _, pair := range SitePairs(t, f) {
		e.Toxics = append(e.Toxics, cutToxics(env.Plan, f.ID, pair, bothStreams)...)
		for _, n := range t.Nodes() {
			other, ok := OtherSite(pair, n.Site())
			if !ok {
				continue
			}
			p := []netip.Prefix{t.SitePrefix(other)}
			if env.PacketLayer {
				packetAdd(e.Packets, n.Name, PacketRule{Drop: p})
			}
			if IsGossipMember(n) {
				gossipAdd(e.Gossip, n.Name, GossipRule{Drop: p})
			}
		}
	}
	return e
}

func (partition) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-partition", Kind: KindPartition, Region: QuietRegion(t)}
}
