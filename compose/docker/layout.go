package docker

import (
	"fmt"
	"net/netip"

	"github.com/drillworks/drill/topology"
)

// The Docker layout. Every container joins one WAN network, <docker_base>.128.0/17, and binds its
// node address there: region i's nodes in <docker_base>.(128+i).0/24 with the same last octets as
// on loopback, the WAN node at <docker_base>.128.1, the witness at <docker_base>.250.1. Each
// region also has a network of its own, <docker_base>.i.0/24, where its nodes reach their WAN
// links: the WAN node listens there (at .100) for every link from that region, one port each
// from PortLinkBase.

// wanOffset is added to a site's third octet to place it in the WAN network.
const wanOffset = 128

// MaxRegions bounds the regions of a topology run on Docker: region i's WAN range is
// <docker_base>.(128+i).0/24 and must stay below the witness's .250.0/24.
const MaxRegions = 100

// PortLinkBase is the first port of the WAN links: the WAN node listens for every link from one
// site on a single address (its address on that site's network), one port each.
const PortLinkBase = 7100

// linkOctet is the last octet of the WAN node's address on each region's network.
const linkOctet = 100

// NewPlan makes a plan in the Docker layout.
func NewPlan(t *topology.Topology, runDir string) (*topology.Plan, error) {
	if len(t.Regions) > MaxRegions {
		return nil, fmt.Errorf("the docker runtime supports at most %d regions, got %d", MaxRegions, len(t.Regions))
	}
	base := dockerBase(t)
	space := &topology.AddressSpace{Base: netip.AddrFrom4(base), RegionOffset: wanOffset}
	return topology.NewPlan(t, topology.PlanOptions{Runtime: Name, RunDir: runDir, Space: space,
		LinkListen: func(site string, i int) netip.AddrPort {
			return netip.AddrPortFrom(linkAddr(t, site), uint16(PortLinkBase+i))
		}})
}

// isDockerPlan reports whether a plan's addresses are in the Docker layout.
func isDockerPlan(p *topology.Plan) bool {
	sp := p.Topology.Network.Space
	return sp != nil && sp.RegionOffset == wanOffset && sp.Base.Is4() && sp.Base.As4() == dockerBase(p.Topology)
}

// dockerBase is the first two octets of network.docker_base.
func dockerBase(t *topology.Topology) [4]byte {
	p, err := netip.ParsePrefix(t.Network.DockerBase)
	if err != nil || !p.Addr().Is4() {
		return [4]byte{10, 77, 0, 0}
	}
	b := p.Addr().As4()
	return [4]byte{b[0], b[1], 0, 0}
}

// regionNetwork is a region's own network, <docker_base>.i.0/24 (its gateway is .1).
func regionNetwork(t *topology.Topology, region string) netip.Prefix {
	b := dockerBase(t)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], byte(t.RegionIndex(region)), 0}), 24)
}

// regionAddr is a node's address on a region's own network: the same last octet as its node
// address; the WAN node's is linkOctet on every region's network.
func regionAddr(t *topology.Topology, region string, n topology.Node) netip.Addr {
	b := regionNetwork(t, region).Addr().As4()
	b[3] = n.IP.As4()[3]
	if n.Role == topology.RoleWAN {
		b[3] = linkOctet
	}
	return netip.AddrFrom4(b)
}

// wanNetworkPrefix is the network every container joins, <docker_base>.128.0/17 (its gateway is
// <docker_base>.255.254).
func wanNetworkPrefix(t *topology.Topology) netip.Prefix {
	b := dockerBase(t)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], wanOffset, 0}), 17)
}

// wanGateway is the WAN network's gateway: the host's address on it.
func wanGateway(t *topology.Topology) netip.Addr {
	b := dockerBase(t)
	return netip.AddrFrom4([4]byte{b[0], b[1], 255, 254})
}

// linkAddr is where the WAN node listens for a site's links: its address on the region's
// network, or its WAN-network address for the witness.
func linkAddr(t *topology.Topology, site string) netip.Addr {
	if _, ok := t.Region(site); ok {
		return netip.AddrFrom4([4]byte{dockerBase(t)[0], dockerBase(t)[1], byte(t.RegionIndex(site)), linkOctet})
	}
	b := dockerBase(t)
	return netip.AddrFrom4([4]byte{b[0], b[1], wanOffset, 1})
}
