package topology

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/drillworks/drill/topology/yamlpos"
	"github.com/google/renameio/v2"
)

// Plan is one running instance of a topology: the topology plus what a runtime decided when it
// brought it up (secrets, WAN links, how each region reaches each remote node). The runtime writes
// it to the run directory; every agent reads it, so all nodes agree on one plan.
type Plan struct {
	// Topology is what runs.
	Topology *Topology `json:"topology"`
	// RunID identifies this bring-up; it labels every object the runtime creates.
	RunID string `json:"run_id"`
	// Runtime is the name of the runtime that brought it up ("local", "docker").
	Runtime string `json:"runtime"`
	// RunDir holds the plan, node data and logs.
	RunDir string `json:"run_dir"`
	// GossipKey is the AES-256 key that encrypts gossip (generated per bring-up).
	GossipKey []byte `json:"gossip_key"`
	// Secret is the bearer token every control endpoint requires.
	Secret string `json:"secret"`
	// Links are the WAN proxies: every cross-site TCP connection goes through one of them.
	Links []Link `json:"links"`
	// Started is when the runtime wrote the plan.
	Started time.Time `json:"started"`
}

// Link is one toxiproxy proxy carrying one direction of cross-site traffic: nodes of FromSite dial
// Listen to reach node ToNode's service (a db node's or the witness's db port, a cache node's
// redis port).
type Link struct {
	// Name is the toxiproxy proxy name, "<from>--<to>".
	Name string `json:"name"`
	// FromSite is the region (or "witness") whose nodes use this link.
	FromSite string `json:"from_site"`
	// ToNode is the node reached.
	ToNode string `json:"to_node"`
	// ToSite is the region (or "witness") of ToNode.
	ToSite string `json:"to_site"`
	// Listen is the proxy's address, inside FromSite's address range.
	Listen string `json:"listen"`
	// Upstream is ToNode's real address.
	Upstream string `json:"upstream"`
}

// Site is the name of the place a node lives: its region, or "witness" for the witness, "wan" for
// the WAN node.
func (n Node) Site() string {
	switch n.Role {
	case RoleWitness:
		return "witness"
	case RoleWAN:
		return "wan"
	}
	return n.Region
}

// SitePrefix is the range of a site's node addresses (in the topology's address space).
func (t *Topology) SitePrefix(site string) netip.Prefix {
	switch site {
	case "witness":
		return netip.PrefixFrom(t.addr(250, 0), 24)
	case "wan":
		return netip.PrefixFrom(t.addr(0, 0), 24)
	}
	return t.RegionPrefix(site)
}

// WitnessSite is the site of the witness, a third place outside every region.
const WitnessSite = "witness"

// Sites lists the regions then WitnessSite.
func (t *Topology) Sites() []string { return append(t.RegionNames(), WitnessSite) }

// SiteLatency is the one-way latency and jitter between two sites. The witness is a third site at
// the default WAN latency from every region.
func (t *Topology) SiteLatency(a, b string) (time.Duration, time.Duration) {
	if a == b {
		return 0, 0
	}
	if a == "witness" || b == "witness" {
		return t.WAN.Latency.D(), t.WAN.Jitter.D()
	}
	return t.LinkLatency(a, b)
}

// PlanOptions say how a runtime lays out a plan.
type PlanOptions struct {
	// Runtime names the runtime ("local", "docker").
	Runtime string
	// RunDir holds the plan, node data and logs.
	RunDir string
	// Space is the nodes' address space; nil keeps the loopback layout.
	Space *AddressSpace
	// LinkListen is where the WAN link number i (from 0, counted per dialling site) that site's
	// nodes dial listens; nil puts link i at <site prefix>.(100+i) on the db port.
	LinkListen func(site string, i int) netip.AddrPort
}

// NewPlan makes a plan: fresh secrets and one WAN link per (site, remote db, witness or cache node),
// laid out as the runtime's options say. The plan's topology is a copy of t carrying the address
// space; t itself is not changed.
func NewPlan(t *Topology, o PlanOptions) (*Plan, error) {
	if o.Space != nil {
		dt := *t
		sp := *o.Space
		dt.Network.Space = &sp
		t = &dt
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate gossip key: %w", err)
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate control secret: %w", err)
	}
	runID := make([]byte, 4)
	if _, err := rand.Read(runID); err != nil {
		return nil, fmt.Errorf("generate run id: %w", err)
	}
	p := &Plan{
		Topology:  t,
		RunID:     t.Name + "-" + hex.EncodeToString(runID),
		Runtime:   o.Runtime,
		RunDir:    o.RunDir,
		GossipKey: key,
		Secret:    hex.EncodeToString(secret),
		Started:   time.Now().UTC(),
	}
	listen := o.LinkListen
	if listen == nil {
		listen = func(site string, i int) netip.AddrPort {
			prefix := t.SitePrefix(site).Addr().As4()
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{prefix[0], prefix[1], prefix[2], byte(100 + i)}), PortDB)
		}
	}
	// Everything dialled across sites: db nodes and the witness (replication, votes, writes), and
	// caches (a web node invalidating another region's cache). The witness never dials a cache.
	// Queues too when mirrored: a region's queue links to every other region's leafnode port.
	targets := append(t.Voters(), t.NodesOf(RoleCache, "")...)
	if t.Design.QueueReplication == QueueReplicationMirror {
		targets = append(targets, t.NodesOf(RoleQueue, "")...)
	}
	for _, site := range t.Sites() {
		next := 0
		for _, to := range targets {
			if to.Site() == site || (site == WitnessSite && to.Role != RoleDB && to.Role != RoleWitness) {
				continue
			}
			l := listen(site, next)
			next++
			p.Links = append(p.Links, Link{
				Name:     site + "--" + to.Name,
				FromSite: site,
				ToNode:   to.Name,
				ToSite:   to.Site(),
				Listen:   l.String(),
				Upstream: to.Addr(ServicePort(to.Role)),
			})
		}
	}
	return p, nil
}

// ServicePort is the port other nodes dial on a node of the role: redis's on a cache node, the
// leafnode port on a queue node (only other regions' queues dial one; a region's own web and
// worker nodes use PortQueue), the db port otherwise.
func ServicePort(r Role) int {
	switch r {
	case RoleCache:
		return PortCache
	case RoleQueue:
		return PortLeaf
	}
	return PortDB
}

// DialAddr is the address a node in site `from` dials to reach node `to`'s service (ServicePort):
// direct within a site, through the WAN link across sites.
func (p *Plan) DialAddr(from string, to string) (string, error) {
	n, ok := p.Topology.Node(to)
	if !ok {
		return "", fmt.Errorf("unknown node %q", to)
	}
	if n.Site() == from {
		return n.Addr(ServicePort(n.Role)), nil
	}
	for _, l := range p.Links {
		if l.FromSite == from && l.ToNode == to {
			return l.Listen, nil
		}
	}
	return "", fmt.Errorf("no WAN link from %s to %s", from, to)
}

// LinksBetween lists the links carrying traffic between two sites (both directions).
func (p *Plan) LinksBetween(a, b string) []Link {
	var out []Link
	for _, l := range p.Links {
		if (l.FromSite == a && l.ToSite == b) || (l.FromSite == b && l.ToSite == a) {
			out = append(out, l)
		}
	}
	return out
}

// WANAPI is the address of the toxiproxy API on the WAN node.
func (p *Plan) WANAPI() string {
	n, _ := p.Topology.Node("wan")
	return n.Addr(PortWANAPI)
}

// Save writes the plan atomically and durably (fsync before the rename), mode 0600 in a 0700
// directory when it makes one: it holds the run's secret.
func (p *Plan) Save(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create plan dir: %w", err)
	}
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// maxPlanBytes bounds a plan file: a plan holds a few hundred bytes per node, so this is far
// above any topology drill runs.
const maxPlanBytes = 8 << 20

// LoadPlan reads a plan written by Save.
func LoadPlan(path string) (*Plan, error) {
	b, rerr := yamlpos.ReadFile(path, "plan", maxPlanBytes)
	if rerr != nil {
		return nil, rerr
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode plan %s: %w", path, err)
	}
	if p.Topology == nil {
		return nil, fmt.Errorf("plan %s has no topology", path)
	}
	return &p, nil
}

// NodeAt names the node a call to hostport reaches: the node a WAN link at that address leads
// to, else the node with that IP; "" when it is none of the plan's.
func (p *Plan) NodeAt(hostport string) string {
	for _, l := range p.Links {
		if l.Listen == hostport {
			return l.ToNode
		}
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	for _, n := range p.Topology.Nodes() {
		if n.IP == ip.Unmap() {
			return n.Name
		}
	}
	return ""
}

// NodeAddr is where drill reaches a node's port: the node's own address in this plan.
func (p *Plan) NodeAddr(node string, port int) (string, error) {
	n, ok := p.Topology.Node(node)
	if !ok {
		return "", fmt.Errorf("unknown node %q", node)
	}
	return n.Addr(port), nil
}
