// Package topology is the model of what drill runs: the regions, their nodes and addresses, the WAN
// between them, the gossip timing profile, the DNS zone and the design settings that drills judge.
// A topology is read from YAML (Load, Parse) or taken from the embedded default (Default); every
// address in it is derived deterministically from the topology, so every runtime, every agent and
// every drill computes the same plan from the same file.
package topology

import (
	_ "embed"
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// Role is what a node does.
type Role string

const (
	// RoleWeb is a stateless HTTP front.
	RoleWeb Role = "web"
	// RoleDB is a database node: the primary or a replica.
	RoleDB Role = "db"
	// RoleDNS is a GeoDNS instance.
	RoleDNS Role = "dns"
	// RoleWitness is the tie-breaking lease voter at a third site, outside every region.
	RoleWitness Role = "witness"
	// RoleWAN is the WAN node: the toxiproxy server through which every cross-region TCP link goes.
	RoleWAN Role = "wan"
	// RoleCache is a region's cache: a real redis-server run by drill's agent beside it, which
	// makes it a gossip member.
	RoleCache Role = "cache"
	// RoleQueue is a region's durable job queue: a NATS server with JetStream embedded in drill's
	// agent, its stream stored in the node's data directory.
	RoleQueue Role = "queue"
	// RoleWorker is a worker draining its region's queue: it runs each job and records its
	// completion in the database.
	RoleWorker Role = "worker"
)

// Fixed ports. Every node has an address of its own, so every service can use a fixed port.
const (
	PortWeb     = 8080 // web HTTP
	PortDB      = 7000 // db HTTP: kv, replication, lease votes, status
	PortControl = 7001 // agent control endpoint (fault injection; needs the topology secret)
	PortGossip  = 7946 // memberlist, UDP and TCP
	PortDNS     = 5353 // GeoDNS, UDP and TCP (non-privileged)
	PortDNSHTTP = 8053 // GeoDNS metrics and status
	PortWANAPI  = 8474 // toxiproxy HTTP API on the WAN node
	PortCache   = 6379 // redis-server on a cache node (password required)
	PortQueue   = 4222 // NATS clients (web and worker nodes of the region) on a queue node (password required)
	PortLeaf    = 7422 // NATS leafnode links between regions' queue nodes (queue_replication: mirror)
)

// Design-setting values.
const (
	ReplicationAsync       = "async"
	ReplicationSemiSync    = "semi-sync"
	FencingLease           = "lease"
	FencingNone            = "none"
	ReadFromLocal          = "local"
	ReadFromPrimary        = "primary"
	ProfileFast            = "fast"
	ProfileLAN             = "lan"
	ProfileWAN             = "wan"
	InvalidateLocal        = "local"
	InvalidateAll          = "all-regions"
	PersistenceNone        = "none"
	PersistenceRDB         = "rdb"
	PersistenceAOF         = "aof"
	QueueReplicationNone   = "none"
	QueueReplicationMirror = "mirror"
	QueueStorageFile       = "file"
	QueueStorageMemory     = "memory"
	QueueAckAfterWork      = "after_work"
	QueueAckBeforeWork     = "before_work"
)

// FastGossipMaxOneWay is the slowest WAN (one-way latency + jitter) the fast gossip profile is
// tuned for; agents/gossip.FastMaxOneWay is the same number.
const FastGossipMaxOneWay = 225 * time.Millisecond

// Topology is a whole multi-region system. Field comments say what each YAML key means.
type Topology struct {
	// Name identifies the topology; it labels gossip, run directories and every object drill creates.
	Name string `yaml:"name" json:"name"`
	// Network is where node addresses come from.
	Network Network `yaml:"network" json:"network"`
	// Regions are the data centres, in order; the order is the default DNS preference order.
	Regions []Region `yaml:"regions" json:"regions"`
	// PrimaryRegion is the home region of the database primary at bootstrap.
	PrimaryRegion string `yaml:"primary_region" json:"primary_region"`
	// WAN is the simulated wide-area network between regions.
	WAN WAN `yaml:"wan" json:"wan"`
	// Gossip is the membership timing.
	Gossip Gossip `yaml:"gossip" json:"gossip"`
	// DNS is the GeoDNS zone.
	DNS DNS `yaml:"dns" json:"dns"`
	// Design holds the design settings drills judge (replication mode, fencing, ...).
	Design Design `yaml:"design" json:"design"`
	// Cache configures the redis-server of every cache node (regions with nodes.cache > 0).
	Cache Cache `yaml:"cache" json:"cache"`
	// Queue configures the job queue of regions with nodes.queue and their workers.
	Queue Queue `yaml:"queue" json:"queue"`

	// Source is the file the topology came from ("<default>" for the embedded one). Not in YAML.
	Source string `yaml:"-" json:"source,omitempty"`
}

// Network says where node addresses come from.
type Network struct {
	// LoopbackBase is a /16 inside 127.0.0.0/8. Region i (1-based, in file order) gets the /24
	// <base>.i.0/24; the WAN node is <base>.0.1 and the witness <base>.250.1.
	LoopbackBase string `yaml:"loopback_base" json:"loopback_base"`
	// DockerBase is a private /16 from which container runtimes (compose/docker) take their
	// networks' addresses.
	DockerBase string `yaml:"docker_base,omitempty" json:"docker_base,omitempty"`
	// Space is the address space the nodes' addresses come from, set by the runtime that made
	// the plan (NewPlan); nil means the loopback layout. Not in YAML.
	Space *AddressSpace `yaml:"-" json:"space,omitempty"`
}

// AddressSpace is where a runtime puts the nodes: region i's nodes in <Base>.(RegionOffset+i).0/24
// with the same last octets as on loopback (web .10+, db .20+, dns .30+), the WAN node at
// <Base>.(RegionOffset).1 and the witness at <Base>.250.1. The loopback layout is the topology's
// loopback_base with RegionOffset 0. A runtime that spreads the regions over several address
// blocks (one per Docker engine) places each region's /24 itself with RegionThirds.
type AddressSpace struct {
	// Base holds the first two octets of every address.
	Base netip.Addr `json:"base"`
	// RegionOffset is added to the third octet of every address but the witness's.
	RegionOffset int `json:"region_offset,omitempty"`
	// RegionThirds, when set, is the third octet of each region's /24 by region index (the
	// first region's first), in place of RegionOffset+i.
	RegionThirds []int `json:"region_thirds,omitempty"`
	// WitnessThird, when set, is the third octet of the witness's /24 in place of 250.
	WitnessThird int `json:"witness_third,omitempty"`
}

// Region is one data centre.
type Region struct {
	// Name is the region's name, e.g. us-east.
	Name string `yaml:"name" json:"name"`
	// ClientSubnets are the networks whose users are near this region (CIDR strings).
	ClientSubnets []string `yaml:"client_subnets" json:"client_subnets"`
	// Nodes are the node counts per role.
	Nodes NodeCounts `yaml:"nodes" json:"nodes"`
	// DockerHost names the Docker engine this region runs on (multi-host plan); empty = local.
	DockerHost string `yaml:"docker_host,omitempty" json:"docker_host,omitempty"`
}

// ClientSource is the source address of simulated client i near the region: inside its loopback
// client subnet (the first /24 or wider), where every client of the region sends from on a runtime
// whose nodes see loopback sources; the zero Addr when it has none.
func (r Region) ClientSource(i int) netip.Addr {
	for _, s := range r.ClientSubnets {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || !p.Addr().IsLoopback() || p.Bits() > 24 {
			continue
		}
		a := p.Addr().As4()
		a[3] = byte(50 + i)
		return netip.AddrFrom4(a)
	}
	return netip.Addr{}
}

// ECSSubnet is the subnet a client near the region names in an EDNS Client Subnet option: its
// first non-loopback client subnet (GeoDNS ignores private and loopback ECS addresses), else its
// first.
func (r Region) ECSSubnet() netip.Prefix {
	var first netip.Prefix
	for _, s := range r.ClientSubnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			continue
		}
		if !first.IsValid() {
			first = p
		}
		if !p.Addr().IsLoopback() {
			return p.Masked()
		}
	}
	return first
}

// NodeCounts are how many nodes of each role a region runs.
type NodeCounts struct {
	Web int `yaml:"web" json:"web"`
	DB  int `yaml:"db" json:"db"`
	DNS int `yaml:"dns" json:"dns"`
	// Cache is how many redis cache nodes the region runs (default 0: no cache); the region's
	// web nodes read through them, a key on one of them by its hash.
	Cache int `yaml:"cache,omitempty" json:"cache,omitempty"`
	// Queue is 0 or 1: a region's job queue (one JetStream server holding the region's stream).
	Queue int `yaml:"queue,omitempty" json:"queue,omitempty"`
	// Worker is how many workers drain the region's queue (needs queue: 1).
	Worker int `yaml:"worker,omitempty" json:"worker,omitempty"`
}

// Queue configures the queue nodes' stream and the workers' consumer.
type Queue struct {
	// AckWait is how long a delivered job may stay unacknowledged before JetStream delivers it
	// again (to any worker): the longest a crashed worker's job waits.
	AckWait Duration `yaml:"ack_wait" json:"ack_wait"`
	// DuplicateWindow is how long the stream remembers a job id: a publish retried inside it with
	// the same id is stored once.
	DuplicateWindow Duration `yaml:"duplicate_window" json:"duplicate_window"`
	// WorkerConcurrency is how many jobs one worker runs at once.
	WorkerConcurrency int `yaml:"worker_concurrency" json:"worker_concurrency"`
}

// Cache configures the cache nodes' redis-server; every field maps to a redis directive.
type Cache struct {
	// MaxMemory is redis's maxmemory ("64mb", "1gb"; "0" means no limit).
	MaxMemory string `yaml:"max_memory" json:"max_memory"`
	// Eviction is redis's maxmemory-policy (allkeys-lru by default: a cache evicts, it does not
	// refuse writes as redis's own default noeviction would).
	Eviction string `yaml:"eviction" json:"eviction"`
	// Persistence is none (the default: a restarted cache comes back empty), rdb (snapshots) or
	// aof (an append-only file, fsync every second).
	Persistence string `yaml:"persistence" json:"persistence"`
}

// WAN is the simulated network between regions.
type WAN struct {
	// Latency is the default one-way latency on every cross-region link.
	Latency Duration `yaml:"latency" json:"latency"`
	// Jitter is the default jitter on every cross-region link.
	Jitter Duration `yaml:"jitter" json:"jitter"`
	// Links override latency and jitter for given region pairs.
	Links []WANLink `yaml:"links,omitempty" json:"links,omitempty"`
}

// WANLink is the one-way latency between two named regions (both directions).
type WANLink struct {
	Between []string `yaml:"between" json:"between"`
	Latency Duration `yaml:"latency" json:"latency"`
	Jitter  Duration `yaml:"jitter" json:"jitter"`
}

// Gossip is the membership timing.
type Gossip struct {
	// Profile is fast, lan or wan (see agents/gossip profiles).
	Profile string `yaml:"profile" json:"profile"`
	// RejoinInterval is how often nodes re-join the seeds so a split cluster re-forms.
	RejoinInterval Duration `yaml:"rejoin_interval" json:"rejoin_interval"`
}

// DNS is the GeoDNS zone.
type DNS struct {
	// Zone is the authoritative zone, fully qualified (e.g. drill.test.).
	Zone string `yaml:"zone" json:"zone"`
	// TTL is the TTL of answers while every region is healthy.
	TTL Duration `yaml:"ttl" json:"ttl"`
	// DegradedTTL is the TTL while any region is degraded.
	DegradedTTL Duration `yaml:"degraded_ttl" json:"degraded_ttl"`
	// HoldDown is how long a region must stay healthy before it is re-admitted.
	HoldDown Duration `yaml:"hold_down" json:"hold_down"`
}

// Design holds the settings whose known-bad values drills must catch.
type Design struct {
	// Replication is async (ack once durable on the primary) or semi-sync (ack once a remote replica has it).
	Replication string `yaml:"replication" json:"replication"`
	// Fencing is lease (writes need a majority lease) or none (a partitioned primary keeps writing).
	Fencing string `yaml:"fencing" json:"fencing"`
	// ReadYourWrites: a client passing the LSN of its last write is never served older data.
	ReadYourWrites bool `yaml:"read_your_writes" json:"read_your_writes"`
	// ReadFrom is local (reads from the region's own database: fast, possibly stale) or primary
	// (reads from the primary while it holds the lease: linearizable per key, at a WAN round trip
	// for other regions).
	ReadFrom string `yaml:"read_from" json:"read_from"`
	// FailoverAfter is how long the primary must be dead in gossip before a replica promotes.
	FailoverAfter Duration `yaml:"failover_after" json:"failover_after"`
	// LeaseDuration is how long a primary's lease lasts (fencing: lease).
	LeaseDuration Duration `yaml:"lease_duration" json:"lease_duration"`
	// CacheTTL is how long a cached value lives (regions with cache nodes).
	CacheTTL Duration `yaml:"cache_ttl" json:"cache_ttl"`
	// CacheCoalescing: concurrent misses of one key in a web node make one database read
	// (request coalescing); off, every miss reads the database.
	CacheCoalescing bool `yaml:"cache_coalescing" json:"cache_coalescing"`
	// CacheInvalidation is all-regions (a write deletes the key from every region's cache, and
	// an entry filled under an older primary epoch is not served) or local (a write deletes the
	// key from its own region's cache only; entries live until their TTL whatever happened).
	CacheInvalidation string `yaml:"cache_invalidation" json:"cache_invalidation"`
	// QueueReplication is none (a region's jobs wait in its own stream while it is lost and are
	// drained after it heals) or mirror (every other region's queue mirrors the stream over a
	// NATS leafnode link, asynchronously, and its workers drain the mirror while the region's own
	// queue is dead; the database's completion record keeps a job from running twice in effect).
	QueueReplication string `yaml:"queue_replication" json:"queue_replication"`
	// QueueStorage is file (the stream is written to the queue node's data directory: an
	// acknowledged job survives a crash of the queue process) or memory (it does not).
	QueueStorage string `yaml:"queue_storage" json:"queue_storage"`
	// QueueAck is after_work (a worker acknowledges a job once its completion is recorded: a
	// worker crash means redelivery) or before_work (acknowledged on receipt, as a known-bad
	// design: a worker crash mid-job loses the job).
	QueueAck string `yaml:"queue_ack" json:"queue_ack"`
}

// Node is one planned node, with its deterministic address.
type Node struct {
	// Name is unique, e.g. us-east-web-1, witness, wan.
	Name string `json:"name"`
	// Region is the region's name; empty for the witness and the WAN node.
	Region string `json:"region"`
	// Role is what the node does.
	Role Role `json:"role"`
	// Index is 1-based within region and role.
	Index int `json:"index"`
	// IP is the node's address, in the plan's address space (Network.Space).
	IP netip.Addr `json:"ip"`
}

// Addr is ip:port for one of the node's services.
func (n Node) Addr(port int) string { return netip.AddrPortFrom(n.IP, uint16(port)).String() }

// Duration is a time.Duration written in YAML as "40ms", "3s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes the duration as Go syntax ("40ms").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 40ms, 3s)", string(b))
	}
	*d = Duration(v)
	return nil
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the embedded default topology file.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the embedded default topology: us-east and eu-west, 2 web + 1 db + 1 dns each.
func Default() *Topology {
	t, err := Parse("<default>", defaultYAML)
	if err != nil {
		panic("embedded default topology is invalid: " + err.Error())
	}
	return t
}

//go:embed cache.yaml
var cacheYAML []byte

//go:embed queue.yaml
var queueYAML []byte

// builtins are the embedded topologies by name.
var builtins = map[string]*[]byte{"default": &defaultYAML, "cache": &cacheYAML, "queue": &queueYAML}

// BuiltinNames lists the embedded topologies' names.
func BuiltinNames() []string { return []string{"default", "cache", "queue"} }

// Builtin returns an embedded topology by name ("default", "cache", "queue").
func Builtin(name string) (*Topology, bool) {
	b, ok := builtins[name]
	if !ok {
		return nil, false
	}
	t, err := Parse("<"+name+">", *b)
	if err != nil {
		panic("embedded topology " + name + " is invalid: " + err.Error())
	}
	return t, true
}

// Region returns the named region.
func (t *Topology) Region(name string) (Region, bool) {
	for _, r := range t.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

// RegionIndex is the 1-based index of the named region, 0 if unknown.
func (t *Topology) RegionIndex(name string) int {
	for i, r := range t.Regions {
		if r.Name == name {
			return i + 1
		}
	}
	return 0
}

func (t *Topology) loopbackBase() [4]byte {
	p, err := netip.ParsePrefix(t.Network.LoopbackBase)
	if err != nil || !p.Addr().Is4() {
		return [4]byte{127, 77, 0, 0}
	}
	return p.Addr().As4()
}

// witnessOctet is the third octet of the witness's site in every layout.
const witnessOctet = 250

// addr is a node address from its place in the loopback layout (third and fourth octets), in the
// topology's address space.
func (t *Topology) addr(third, fourth int) netip.Addr {
	if sp := t.Network.Space; sp != nil && sp.Base.Is4() {
		b := sp.Base.As4()
		switch {
		case third >= 1 && third <= len(sp.RegionThirds):
			third = sp.RegionThirds[third-1]
		case third == witnessOctet && sp.WitnessThird != 0:
			third = sp.WitnessThird
		case third != witnessOctet: // the witness keeps .250: above every region's offset+i
			third += sp.RegionOffset
		}
		return netip.AddrFrom4([4]byte{b[0], b[1], byte(third), byte(fourth)})
	}
	b := t.loopbackBase()
	return netip.AddrFrom4([4]byte{b[0], b[1], byte(third), byte(fourth)})
}

// RegionPrefix is the /24 of a region's node addresses.
func (t *Topology) RegionPrefix(name string) netip.Prefix {
	return netip.PrefixFrom(t.addr(t.RegionIndex(name), 0), 24)
}

// Role offsets inside a region's /24: web .10+, db .20+, dns .30+, cache .40+, queue .50,
// worker .60+, proxies .100+ (see compose).
var roleOffset = map[Role]int{RoleWeb: 10, RoleDB: 20, RoleDNS: 30, RoleCache: 40, RoleQueue: 50, RoleWorker: 60}

// Nodes lists every node, deterministically ordered: the WAN node, the witness, then per region
// (file order) web, db, dns, cache, queue and worker nodes.
func (t *Topology) Nodes() []Node {
	nodes := []Node{
		{Name: "wan", Role: RoleWAN, Index: 1, IP: t.addr(0, 1)},
		{Name: "witness", Role: RoleWitness, Index: 1, IP: t.addr(witnessOctet, 1)},
	}
	for ri, r := range t.Regions {
		for _, rc := range []struct {
			role  Role
			count int
		}{{RoleWeb, r.Nodes.Web}, {RoleDB, r.Nodes.DB}, {RoleDNS, r.Nodes.DNS}, {RoleCache, r.Nodes.Cache}, {RoleQueue, r.Nodes.Queue}, {RoleWorker, r.Nodes.Worker}} {
			for i := 1; i <= rc.count; i++ {
				nodes = append(nodes, Node{
					Name:   fmt.Sprintf("%s-%s-%d", r.Name, rc.role, i),
					Region: r.Name,
					Role:   rc.role,
					Index:  i,
					IP:     t.addr(ri+1, roleOffset[rc.role]+i-1),
				})
			}
		}
	}
	return nodes
}

// Node returns the named node.
func (t *Topology) Node(name string) (Node, bool) {
	for _, n := range t.Nodes() {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// NodesOf lists the nodes of one role, optionally restricted to one region ("" = all).
func (t *Topology) NodesOf(role Role, region string) []Node {
	var out []Node
	for _, n := range t.Nodes() {
		if n.Role == role && (region == "" || n.Region == region) {
			out = append(out, n)
		}
	}
	return out
}

// Voters are the lease voters: every db node plus the witness. With one db node per region in two
// regions, that is three voters, majority two, so the two regions can never both hold a lease.
func (t *Topology) Voters() []Node {
	v := t.NodesOf(RoleDB, "")
	w, _ := t.Node("witness")
	return append(v, w)
}

// HasCache reports whether any region runs cache nodes.
func (t *Topology) HasCache() bool {
	for _, r := range t.Regions {
		if r.Nodes.Cache > 0 {
			return true
		}
	}
	return false
}

// JobDoneKey is the database key under which a worker records that job id ran: the contract
// between the workers (agents/queue) and the checkers that look for it in the final logs.
func JobDoneKey(id string) string { return "done-" + id }

// HasQueue reports whether any region runs a queue node.
func (t *Topology) HasQueue() bool {
	for _, r := range t.Regions {
		if r.Nodes.Queue > 0 {
			return true
		}
	}
	return false
}

// LinkLatency is the one-way latency and jitter between two regions (zero within a region).
func (t *Topology) LinkLatency(a, b string) (latency, jitter time.Duration) {
	if a == b || a == "" || b == "" {
		return 0, 0
	}
	for _, l := range t.WAN.Links {
		if len(l.Between) == 2 && ((l.Between[0] == a && l.Between[1] == b) || (l.Between[0] == b && l.Between[1] == a)) {
			return l.Latency.D(), l.Jitter.D()
		}
	}
	return t.WAN.Latency.D(), t.WAN.Jitter.D()
}

// RegionNames lists the regions' names in file order.
func (t *Topology) RegionNames() []string {
	out := make([]string, len(t.Regions))
	for i, r := range t.Regions {
		out[i] = r.Name
	}
	return out
}

// SortedNodeNames is a convenience for stable output.
func SortedNodeNames(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	sort.Strings(out)
	return out
}
