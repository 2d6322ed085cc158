package fault

import (
	"net/netip"
	"slices"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/topology"
)

// Effects are what one fault does, layer by layer. The injector applies each layer: toxics on the
// WAN links, rule sets in the nodes' kernels (runtimes with a packet layer), additions to the
// nodes' gossip fault rules (merged over every active fault), operations on processes, shifts of
// the nodes' clocks (added over every active fault), and faults of their disks.
type Effects struct {
	// Toxics go on the WAN links, which carry all cross-site TCP (replication, remote writes,
	// lease votes).
	Toxics []LinkToxic
	// Packets are one rule set per node, dropping packets in its kernel (Env.PacketLayer only).
	Packets map[string]PacketRule
	// Gossip are additions to each node's gossip fault rules, by node name.
	Gossip map[string]GossipRule
	// Process is what happens to the fault's resolved nodes.
	Process Process
	// Clock shifts db nodes' clocks, by node name (added over every active fault and pushed to
	// the control endpoints; a node without one is back on real time).
	Clock map[string]clock.Shift
	// Disk sets db nodes' disk faults, by node name (combined over every active fault and pushed
	// to the control endpoints; a node without one has a healthy disk).
	Disk map[string]disk.State
	// Corrupt names the db nodes whose log gets a damaged record on disk, before Process acts.
	Corrupt []string
}

// LinkToxic is one toxiproxy toxic on one WAN link.
type LinkToxic struct {
	// Link is the link (toxiproxy proxy) name.
	Link string
	// Name, Type, Stream and Attributes are toxiproxy's toxic fields.
	Name       string
	Type       string
	Stream     string
	Attributes map[string]any
}

// Toxic streams: a link's upstream carries what the dialling site sends, downstream the answers.
const (
	StreamUp   = "upstream"
	StreamDown = "downstream"
)

// PacketRule is one node's kernel packet rules for one fault: every packet to or from Drop, what
// arrives from DropIn and what leaves for DropOut is dropped (all of them, or LossPercent % of
// them at random). The node's own site and drill's own management traffic are never dropped.
type PacketRule struct {
	Drop        []netip.Prefix
	DropIn      []netip.Prefix
	DropOut     []netip.Prefix
	LossPercent int
}

// GossipRule is what one fault adds to one node's gossip fault rules.
type GossipRule struct {
	// Drop black-holes gossip with these prefixes both ways (and, for web and DNS nodes, their
	// clients from them).
	Drop []netip.Prefix
	// DropIn drops what arrives from these prefixes; DropOut what is sent to them.
	DropIn, DropOut []netip.Prefix
	// Delays add one-way latency to what the node sends to a prefix, on top of the base WAN.
	Delays []Delay
	// Loss drops a share of the packets exchanged with a prefix.
	Loss []Loss
}

// Delay is added one-way latency to a prefix.
type Delay struct {
	Prefix          netip.Prefix
	Latency, Jitter time.Duration
}

// Loss drops Percent % of the packets exchanged with Prefix.
type Loss struct {
	Prefix  netip.Prefix
	Percent int
}

// Action is what a fault does to its nodes' processes.
type Action string

// Process actions. Undoing a kill starts the nodes again (unless another kill still holds
// them); undoing a freeze thaws them (likewise); a restart has nothing to undo; healing a
// restart-on-heal restarts the nodes (those running and not held by another fault).
const (
	ActionNone    Action = ""
	ActionKill    Action = "kill"
	ActionFreeze  Action = "freeze"
	ActionRestart Action = "restart"
	// ActionRestartOnHeal does nothing when the fault lands and restarts the nodes when it is
	// healed, as an operator restarts a database after freeing its disk.
	ActionRestartOnHeal Action = "restart-on-heal"
)

// Process is a fault's process operation on its resolved nodes.
type Process struct {
	Action Action
	Nodes  []string
}

// gossipAdd merges a rule into a node's entry of m.
func gossipAdd(m map[string]GossipRule, node string, r GossipRule) {
	cur := m[node]
	cur.Drop = appendNew(cur.Drop, r.Drop...)
	cur.DropIn = appendNew(cur.DropIn, r.DropIn...)
	cur.DropOut = appendNew(cur.DropOut, r.DropOut...)
	cur.Delays = append(cur.Delays, r.Delays...)
	cur.Loss = append(cur.Loss, r.Loss...)
	m[node] = cur
}

// packetAdd merges prefixes into a node's packet rule of m.
func packetAdd(m map[string]PacketRule, node string, r PacketRule) {
	cur := m[node]
	cur.Drop = appendNew(cur.Drop, r.Drop...)
	cur.DropIn = appendNew(cur.DropIn, r.DropIn...)
	cur.DropOut = appendNew(cur.DropOut, r.DropOut...)
	if r.LossPercent != 0 {
		cur.LossPercent = r.LossPercent
	}
	m[node] = cur
}

// appendNew appends the prefixes not yet in ps, keeping ps sorted.
func appendNew(ps []netip.Prefix, add ...netip.Prefix) []netip.Prefix {
	for _, p := range add {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	sortPrefixes(ps)
	return ps
}

// SitePairs are the unordered pairs of sites a fault acts between: its regions pairwise, or its
// one region against every other site (the witness included); with no target, every pair.
func SitePairs(t *topology.Topology, f Fault) [][2]string {
	sites := t.Sites()
	var out [][2]string
	seen := map[[2]string]bool{}
	add := func(a, b string) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if !seen[[2]string{a, b}] {
			seen[[2]string{a, b}] = true
			out = append(out, [2]string{a, b})
		}
	}
	among := func(ss []string) {
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				add(ss[i], ss[j])
			}
		}
	}
	switch {
	case len(f.Regions) >= 2:
		among(f.Regions)
	case f.Region != "":
		for _, s := range sites {
			add(f.Region, s)
		}
	case len(f.Regions) == 0 && f.Node == "":
		among(sites)
	}
	return out
}

// OtherSite is the far end of pair seen from site.
func OtherSite(pair [2]string, site string) (string, bool) {
	switch site {
	case pair[0]:
		return pair[1], true
	case pair[1]:
		return pair[0], true
	}
	return "", false
}

// RegionNodes lists the nodes of a region, in plan order.
func RegionNodes(t *topology.Topology, region string) []string {
	var out []string
	for _, n := range t.Nodes() {
		if n.Region == region {
			out = append(out, n.Name)
		}
	}
	return out
}

// SiteNodes lists the nodes of a site (a region or "witness"), in plan order.
func SiteNodes(t *topology.Topology, site string) []topology.Node {
	var out []topology.Node
	for _, n := range t.Nodes() {
		if n.Site() == site {
			out = append(out, n)
		}
	}
	return out
}

// IsGossipMember reports whether a node runs gossip (and so takes gossip fault rules).
func IsGossipMember(n topology.Node) bool {
	return n.Role != topology.RoleWAN && n.Role != topology.RoleWitness
}

// cutToxics are the toxics that hold every byte of the given streams of a pair's links forever
// (toxiproxy's timeout toxic with timeout 0): a black hole at the TCP level. The streams are
// chosen per link by dir, given the link's dialling site.
func cutToxics(p *topology.Plan, id string, pair [2]string, streams func(fromSite string) []string) []LinkToxic {
	var out []LinkToxic
	for _, l := range p.LinksBetween(pair[0], pair[1]) {
		for _, st := range streams(l.FromSite) {
			out = append(out, LinkToxic{Link: l.Name, Name: ToxicName(id, "cut_"+shortStream(st)), Type: "timeout",
				Stream: st, Attributes: map[string]any{"timeout": 0}})
		}
	}
	return out
}

func shortStream(s string) string {
	if s == StreamUp {
		return "up"
	}
	return "down"
}

// bothStreams is every stream of a link.
func bothStreams(string) []string { return []string{StreamUp, StreamDown} }
