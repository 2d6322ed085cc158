package topology

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestDefaultNodes(t *testing.T) {
	top := Default()
	if top.Source != "<default>" {
		t.Errorf("Source = %q, want <default>", top.Source)
	}
	want := []struct {
		name, region string
		role         Role
		index        int
		ip           string
	}{
		{"wan", "", RoleWAN, 1, "127.77.0.1"},
		{"witness", "", RoleWitness, 1, "127.77.250.1"},
		{"us-east-web-1", "us-east", RoleWeb, 1, "127.77.1.10"},
		{"us-east-web-2", "us-east", RoleWeb, 2, "127.77.1.11"},
		{"us-east-db-1", "us-east", RoleDB, 1, "127.77.1.20"},
		{"us-east-dns-1", "us-east", RoleDNS, 1, "127.77.1.30"},
		{"eu-west-web-1", "eu-west", RoleWeb, 1, "127.77.2.10"},
		{"eu-west-web-2", "eu-west", RoleWeb, 2, "127.77.2.11"},
		{"eu-west-db-1", "eu-west", RoleDB, 1, "127.77.2.20"},
		{"eu-west-dns-1", "eu-west", RoleDNS, 1, "127.77.2.30"},
	}
	nodes := top.Nodes()
	if len(nodes) != len(want) {
		t.Fatalf("got %d nodes, want %d: %v", len(nodes), len(want), SortedNodeNames(nodes))
	}
	for i, w := range want {
		got := nodes[i]
		wantNode := Node{Name: w.name, Region: w.region, Role: w.role, Index: w.index, IP: netip.MustParseAddr(w.ip)}
		if got != wantNode {
			t.Errorf("node %d = %+v, want %+v", i, got, wantNode)
		}
	}
	if got := nodes[4].Addr(PortDB); got != "127.77.1.20:7000" {
		t.Errorf("us-east-db-1 db address = %s, want 127.77.1.20:7000", got)
	}
	if got, want := top.RegionPrefix("eu-west"), netip.MustParsePrefix("127.77.2.0/24"); got != want {
		t.Errorf("RegionPrefix(eu-west) = %s, want %s", got, want)
	}

	var voters []string
	for _, v := range top.Voters() {
		voters = append(voters, v.Name)
	}
	if want := []string{"us-east-db-1", "eu-west-db-1", "witness"}; !slices.Equal(voters, want) {
		t.Errorf("Voters = %v, want %v", voters, want)
	}
}

func TestLinkLatency(t *testing.T) {
	top, err := Load("testdata/good/three-regions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	tests := []struct {
		top             *Topology
		a, b            string
		latency, jitter time.Duration
	}{
		{def, "us-east", "eu-west", 40 * time.Millisecond, 2 * time.Millisecond},
		{def, "eu-west", "us-east", 40 * time.Millisecond, 2 * time.Millisecond},
		{def, "us-east", "us-east", 0, 0},
		{def, "us-east", "", 0, 0},
		{top, "us-east", "eu-west", 40 * time.Millisecond, 2 * time.Millisecond},
		{top, "us-east", "asia-east", 90 * time.Millisecond, 5 * time.Millisecond},
		{top, "asia-east", "us-east", 90 * time.Millisecond, 5 * time.Millisecond},
		{top, "asia-east", "eu-west", 120 * time.Millisecond, 8 * time.Millisecond},
	}
	for _, tc := range tests {
		latency, jitter := tc.top.LinkLatency(tc.a, tc.b)
		if latency != tc.latency || jitter != tc.jitter {
			t.Errorf("%s: LinkLatency(%q, %q) = %s, %s; want %s, %s",
				tc.top.Name, tc.a, tc.b, latency, jitter, tc.latency, tc.jitter)
		}
	}
}

func TestThreeRegions(t *testing.T) {
	top, err := Load("testdata/good/three-regions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Topology{
		Name:    "three-regions",
		Network: Network{LoopbackBase: "127.78.0.0/16", DockerBase: "10.78.0.0/16"},
		Regions: []Region{
			{Name: "us-east", ClientSubnets: []string{"203.0.113.0/24", "127.10.1.0/24"}, Nodes: NodeCounts{Web: 2, DB: 1, DNS: 1}},
			{Name: "eu-west", ClientSubnets: []string{"198.51.100.0/24", "127.10.2.0/24"}, Nodes: NodeCounts{Web: 3, DB: 2, DNS: 1}},
			{Name: "asia-east", ClientSubnets: []string{"192.0.2.0/24", "2001:db8::/32"}, Nodes: NodeCounts{Web: 1, DB: 1, DNS: 0},
				DockerHost: "ssh://drill@asia.example"},
		},
		PrimaryRegion: "eu-west",
		WAN: WAN{
			Latency: Duration(40 * time.Millisecond), Jitter: Duration(2 * time.Millisecond),
			Links: []WANLink{
				{Between: []string{"us-east", "asia-east"}, Latency: Duration(90 * time.Millisecond), Jitter: Duration(5 * time.Millisecond)},
				{Between: []string{"eu-west", "asia-east"}, Latency: Duration(120 * time.Millisecond), Jitter: Duration(8 * time.Millisecond)},
			},
		},
		Gossip: Gossip{Profile: ProfileWAN, RejoinInterval: Duration(5 * time.Second)},
		DNS: DNS{Zone: "geo.drill.test.", TTL: Duration(10 * time.Second), DegradedTTL: Duration(2 * time.Second),
			HoldDown: Duration(5 * time.Second)},
		Design: Design{Replication: ReplicationSemiSync, Fencing: FencingLease, ReadYourWrites: false, ReadFrom: ReadFromLocal,
			FailoverAfter: Duration(3 * time.Second), LeaseDuration: Duration(1500 * time.Millisecond),
			CacheTTL: Duration(5 * time.Second), CacheCoalescing: true, CacheInvalidation: InvalidateAll,
			QueueReplication: QueueReplicationNone, QueueStorage: QueueStorageFile, QueueAck: QueueAckAfterWork},
		Cache:  Cache{MaxMemory: "64mb", Eviction: "allkeys-lru", Persistence: PersistenceNone},
		Queue:  Queue{AckWait: Duration(3 * time.Second), DuplicateWindow: Duration(2 * time.Minute), WorkerConcurrency: 4},
		Source: "testdata/good/three-regions.yaml",
	}
	if !reflect.DeepEqual(top, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", top, want)
	}
	// 2 + (4 + 6 + 2) nodes; the witness and wan come from the configured /16.
	if n := len(top.Nodes()); n != 14 {
		t.Errorf("got %d nodes, want 14", n)
	}
	if n, _ := top.Node("eu-west-db-2"); n.IP != netip.MustParseAddr("127.78.2.21") {
		t.Errorf("eu-west-db-2 = %s, want 127.78.2.21", n.IP)
	}
	if n, _ := top.Node("witness"); n.IP != netip.MustParseAddr("127.78.250.1") {
		t.Errorf("witness = %s, want 127.78.250.1", n.IP)
	}
	if n := len(top.Voters()); n != 5 {
		t.Errorf("got %d voters, want 4 db nodes + witness", n)
	}
	if err := top.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestRoundTrip writes parsed topologies back as YAML and parses the result: nothing may change,
// so `drill topology show` output is itself a valid topology file.
func TestRoundTrip(t *testing.T) {
	full, err := Load("testdata/good/three-regions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range []*Topology{full, Default()} {
		out, err := yaml.Marshal(top)
		if err != nil {
			t.Fatalf("%s: marshal: %v", top.Name, err)
		}
		again, err := Parse(top.Source, out)
		if err != nil {
			t.Fatalf("%s: parse of marshalled topology: %v\n%s", top.Name, err, out)
		}
		if !reflect.DeepEqual(again, top) {
			t.Errorf("%s: round trip changed the topology\nbefore %+v\nafter  %+v\nyaml:\n%s", top.Name, top, again, out)
		}
	}
}

func TestCacheTopology(t *testing.T) {
	top, ok := Builtin("cache")
	if !ok {
		t.Fatal("no built-in cache topology")
	}
	caches := top.NodesOf(RoleCache, "")
	if len(caches) != 2 || caches[0].Name != "us-east-cache-1" || caches[0].IP.String() != "127.79.1.40" {
		t.Fatalf("cache nodes = %+v, want us-east-cache-1 at 127.79.1.40 and eu-west-cache-1", caches)
	}
	if !top.HasCache() || Default().HasCache() {
		t.Error("HasCache: want true for the cache topology, false for the default")
	}
	p, err := NewPlan(top, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A web node in us-east reaches its own cache directly and eu-west's through a WAN link to
	// redis's port; the witness has no link to a cache.
	if got, _ := p.DialAddr("us-east", "us-east-cache-1"); got != "127.79.1.40:6379" {
		t.Errorf("own cache at %s", got)
	}
	got, err := p.DialAddr("us-east", "eu-west-cache-1")
	if err != nil {
		t.Fatal(err)
	}
	var upstream string
	for _, l := range p.Links {
		if l.Listen == got {
			upstream = l.Upstream
		}
		if l.FromSite == WitnessSite && l.ToNode == "eu-west-cache-1" {
			t.Errorf("witness has a link to a cache: %+v", l)
		}
	}
	if upstream != "127.79.2.40:6379" {
		t.Errorf("link %s goes to %q, want eu-west's redis", got, upstream)
	}
	if _, ok := Builtin("nope"); ok {
		t.Error("Builtin(nope) found something")
	}
}

// TestNodeAt: an address names the node a call to it reaches: a node's own address names the
// node, a WAN link's the node the link leads to; any other address names none.
func TestNodeAt(t *testing.T) {
	p, err := NewPlan(Default(), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Topology.Nodes() {
		if got := p.NodeAt(n.Addr(PortControl)); got != n.Name {
			t.Errorf("NodeAt(%s) = %q, want %s", n.Addr(PortControl), got, n.Name)
		}
	}
	if len(p.Links) == 0 {
		t.Fatal("the default plan has no WAN links")
	}
	for _, l := range p.Links {
		if got := p.NodeAt(l.Listen); got != l.ToNode {
			t.Errorf("NodeAt(link %s at %s) = %q, want %s", l.Name, l.Listen, got, l.ToNode)
		}
	}
	for _, addr := range []string{"192.0.2.1:7001", "not an address", ""} {
		if got := p.NodeAt(addr); got != "" {
			t.Errorf("NodeAt(%q) = %q, want none", addr, got)
		}
	}
}
