package docker

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/drillworks/drill/topology"
)

// The Docker layout. Every container joins one WAN network, <docker_base>.128.0/17, and binds its
// node address there: region i's nodes in <docker_base>.(128+i).0/24 with the same last octets as
// on loopback, the WAN node at <docker_base>.128.1, the witness at <docker_base>.250.1. Each
// region also has a network of its own, <docker_base>.i.0/24, where its nodes reach their WAN
// links: the WAN node listens there (at .100) for every link from that region, one port each
// from PortLinkBase.
//
// Regions on several engines (a region's docker_host): each engine has a WAN network of its own,
// a /20 block of the /17 (engine k: <docker_base>.(128+16k).0/20, the engine named by the default
// environment being engine 0), and its regions' /24s are taken from its block, so that the hosts
// can route one block per engine to each other. The WAN node and the witness stay on engine 0
// (the witness at <docker_base>.143.1). A region on engine 0 reaches its links on its own network
// as above; a region on another engine cannot share a network with the WAN node, so its links
// listen on the WAN node's WAN address, each on a port of its own, and its packets cross the
// hosts' routes to it. Every cross-region connection still passes a WAN link.

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

// Regions on several engines: each engine's block of the WAN network.
const (
	// engineBlock is the third-octet span of one engine's WAN network (a /20).
	engineBlock = 16
	// MaxEngines is how many engines one topology may use: 8 blocks fill the /17.
	MaxEngines = 128 / engineBlock
	// witnessThird is the witness's third octet when the regions span engines: the last /24 of
	// engine 0's block, whose first holds the WAN node.
	witnessThird = wanOffset + engineBlock - 1
)

// maxRegionsOn is how many regions engine k can hold: its block's /24s, less the WAN node's and
// the witness's on engine 0.
func maxRegionsOn(k int) int {
	if k == 0 {
		return engineBlock - 2
	}
	return engineBlock
}

// NewPlan makes a plan in the Docker layout.
func NewPlan(t *topology.Topology, runDir string) (*topology.Plan, error) {
	if len(t.Regions) > MaxRegions {
		return nil, fmt.Errorf("the docker runtime supports at most %d regions, got %d", MaxRegions, len(t.Regions))
	}
	base := dockerBase(t)
	space := &topology.AddressSpace{Base: netip.AddrFrom4(base), RegionOffset: wanOffset}
	hosts := EngineHosts(t)
	if len(hosts) == 1 {
		return topology.NewPlan(t, topology.PlanOptions{Runtime: Name, RunDir: runDir, Space: space,
			LinkListen: func(site string, i int) netip.AddrPort {
				return netip.AddrPortFrom(linkAddr(t, site), uint16(PortLinkBase+i))
			}})
	}
	if len(hosts) > MaxEngines {
		return nil, fmt.Errorf("the docker runtime runs a topology on at most %d engines (the default and %d docker_host values), got %d", MaxEngines, MaxEngines-1, len(hosts))
	}
	used := make([]int, len(hosts))
	for _, r := range t.Regions {
		k := engineIndex(hosts, r.DockerHost)
		if used[k] == maxRegionsOn(k) {
			return nil, fmt.Errorf("region %s: at most %d regions run on one engine when the regions span engines (%s)", r.Name, maxRegionsOn(k), engineLabel(hosts[k]))
		}
		third := wanOffset + engineBlock*k + used[k]
		if k == 0 {
			third++ // after the WAN node's /24
		}
		space.RegionThirds = append(space.RegionThirds, third)
		used[k]++
	}
	space.WitnessThird = witnessThird
	// The WAN node's WAN address serves the witness's links and those of every region off
	// engine 0: one port each, counted across them.
	next := map[netip.Addr]int{}
	var perr error
	p, err := topology.NewPlan(t, topology.PlanOptions{Runtime: Name, RunDir: runDir, Space: space,
		LinkListen: func(site string, _ int) netip.AddrPort {
			a := linkAddr(t, site)
			port := PortLinkBase + next[a]
			next[a]++
			if port >= topology.PortWANAPI && perr == nil {
				perr = fmt.Errorf("too many WAN links on the WAN node's address %s: the ports from %d reach the toxiproxy API's %d", a, PortLinkBase, topology.PortWANAPI)
			}
			return netip.AddrPortFrom(a, uint16(port))
		}})
	if err != nil {
		return nil, err
	}
	return p, perr
}

// EngineHosts lists the engines a topology runs on: "" (the engine the environment names,
// DOCKER_HOST or the local socket, which also holds the WAN node and the witness) first, then
// each region's docker_host in file order, once each.
func EngineHosts(t *topology.Topology) []string {
	hosts := []string{""}
	for _, r := range t.Regions {
		if engineIndex(hosts, r.DockerHost) < 0 {
			hosts = append(hosts, r.DockerHost)
		}
	}
	return hosts
}

// engineIndex is host's index in hosts, -1 if absent.
func engineIndex(hosts []string, host string) int {
	for i, h := range hosts {
		if h == host {
			return i
		}
	}
	return -1
}

// engineLabel names an engine in messages.
func engineLabel(host string) string {
	if host == "" {
		return "the default engine"
	}
	return "engine " + host
}

// siteEngine is the index in EngineHosts of the engine a site's nodes run on: the WAN node's
// and the witness's are engine 0.
func siteEngine(t *topology.Topology, site string) int {
	if r, ok := t.Region(site); ok {
		return engineIndex(EngineHosts(t), r.DockerHost)
	}
	return 0
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

// wanNetworkPrefix is the WAN network on engine k: on one engine the network every container
// joins, <docker_base>.128.0/17 (its gateway is <docker_base>.255.254); with several, engine k's
// block.
func wanNetworkPrefix(t *topology.Topology, k int) netip.Prefix {
	b := dockerBase(t)
	if len(EngineHosts(t)) == 1 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], wanOffset, 0}), 17)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], byte(wanOffset + engineBlock*k), 0}), 20)
}

// wanGateway is the WAN network's gateway on engine k: that engine's host's address on it, the
// last but one address of its range.
func wanGateway(t *topology.Topology, k int) netip.Addr {
	p := wanNetworkPrefix(t, k)
	b := p.Addr().As4()
	b[2] += byte(1<<(32-p.Bits()-8) - 1)
	b[3] = 254
	return netip.AddrFrom4(b)
}

// managers are the addresses drill's own traffic to the nodes comes from, which black holes
// spare on the management ports: every engine's WAN gateway (the engine's host, which reaches its
// nodes on-link), and the address this host sends from towards each engine's block (its own
// interface's when the engine is on another host, routed there).
func managers(t *topology.Topology) []netip.Prefix {
	var out []netip.Prefix
	add := func(a netip.Addr) {
		if p := netip.PrefixFrom(a, 32); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for k := range EngineHosts(t) {
		gw := wanGateway(t, k)
		add(gw)
		// A UDP "connection" sends nothing: it only asks the kernel which source it would use.
		if c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, 9))); err == nil {
			if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
				if a, ok := netip.AddrFromSlice(la.IP.To4()); ok {
					add(a)
				}
			}
			_ = c.Close()
		}
	}
	return out
}

// linkAddr is where the WAN node listens for a site's links: its address on the region's
// network, or its WAN-network address for the witness and for regions on another engine.
func linkAddr(t *topology.Topology, site string) netip.Addr {
	if _, ok := t.Region(site); ok && siteEngine(t, site) == 0 {
		return netip.AddrFrom4([4]byte{dockerBase(t)[0], dockerBase(t)[1], byte(t.RegionIndex(site)), linkOctet})
	}
	b := dockerBase(t)
	return netip.AddrFrom4([4]byte{b[0], b[1], wanOffset, 1})
}
