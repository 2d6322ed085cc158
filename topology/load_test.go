package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// wantErr is one expected problem: exact position and field, and a part of the message.
type wantErr struct {
	line, column int
	field        string
	msg          string
}

// checkErrors asserts that err is an ErrorList holding exactly want, in order.
func checkErrors(t *testing.T, err error, file string, want []wantErr) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T) is not an ErrorList", err, err)
	}
	for i := 0; i < max(len(list), len(want)); i++ {
		switch {
		case i >= len(list):
			t.Errorf("missing error %d: %d:%d %s: %s", i, want[i].line, want[i].column, want[i].field, want[i].msg)
		case i >= len(want):
			t.Errorf("unexpected error %d: %v", i, list[i])
		default:
			got, w := list[i], want[i]
			if got.File != file || got.Line != w.line || got.Column != w.column || got.Field != w.field ||
				!strings.Contains(got.Msg, w.msg) {
				t.Errorf("error %d = %q\n       want %s:%d:%d: %s: ...%s...", i, got.Error(), file, w.line, w.column, w.field, w.msg)
			}
		}
	}
}

// twoRegions is a valid minimal topology, four lines long, that cases extend.
const twoRegions = "name: t\nregions:\n  - name: a\n  - name: b\n"

func TestParseErrors(t *testing.T) {
	manyRegions := "name: t\nregions:\n"
	for i := range 201 {
		manyRegions += fmt.Sprintf("  - name: r%d\n", i)
	}
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		// Strict decoding.
		{"unknown top-level field", twoRegions + "regionz: []\n",
			[]wantErr{{5, 1, "regionz", `unknown field "regionz" (valid: name, network, regions,`}}},
		{"unknown design field", twoRegions + "design:\n  replication: async\n  fencin: none\n",
			[]wantErr{{7, 3, "design.fencin", `unknown field "fencin"`}}},
		{"unknown region field", "name: t\nregions:\n  - name: a\n    node: {web: 1}\n",
			[]wantErr{{4, 5, "regions[0].node", `unknown field "node"`}}},
		{"duplicate top-level key", "name: t\nregions:\n  - name: a\nname: u\n",
			[]wantErr{{4, 1, "name", `duplicate key "name" (first at line 1)`}}},
		{"duplicate nested key", "name: t\nregions:\n  - name: a\n    nodes: {web: 1, web: 2}\n",
			[]wantErr{{4, 21, "regions[0].nodes.web", `duplicate key "web"`}}},
		{"merge key", "name: t\nregions:\n  - name: a\n    <<: {web: 1}\n",
			[]wantErr{{4, 5, "regions[0]", "merge keys (<<) are not supported"}}},
		{"list where a mapping belongs", "name: t\nregions:\n  - name: a\nwan: [40ms]\n",
			[]wantErr{{4, 6, "wan", "must be a mapping, not a list"}}},
		{"mapping where a list belongs", "name: t\nregions: {a: 1}\n",
			[]wantErr{{2, 10, "regions", "must be a list, not a mapping"}}},
		{"root is a list", "- name: t\n",
			[]wantErr{{1, 1, "", "must be a mapping, not a list"}}},
		{"not an integer", "name: t\nregions:\n  - name: a\n    nodes: {web: two}\n",
			[]wantErr{{4, 18, "regions[0].nodes.web", `must be an integer, not "two"`}}},
		{"not a bool", "name: t\nregions: [{name: a}]\ndesign: {read_your_writes: yes}\n",
			[]wantErr{{3, 28, "design.read_your_writes", `must be true or false, not "yes"`}}},
		{"cache eviction", "name: t\nregions: [{name: a}]\ncache: {eviction: lru}\n",
			[]wantErr{{3, 19, "cache.eviction", `must be allkeys-lru, allkeys-lfu,`}}},
		{"cache memory", "name: t\nregions: [{name: a}]\ncache: {max_memory: 64 megs}\n",
			[]wantErr{{3, 21, "cache.max_memory", `must be a redis memory size such as 64mb`}}},
		{"cache persistence", "name: t\nregions: [{name: a}]\ncache: {persistence: always}\n",
			[]wantErr{{3, 22, "cache.persistence", `must be none, rdb or aof, got "always"`}}},
		{"too many caches", "name: t\nregions:\n  - name: a\n    nodes: {cache: 10}\n",
			[]wantErr{{4, 20, "regions[0].nodes.cache", "must be between 0 and 9, got 10"}}},
		{"two documents", "name: t\nregions: [{name: a}]\n---\nname: u\n",
			[]wantErr{{4, 1, "", "exactly one YAML document"}}},

		// name
		{"missing name points at the root mapping", "# no name\nregions:\n  - name: a\n",
			[]wantErr{{2, 1, "name", "is required"}}},
		{"null name points at its key", "name:\nregions: [{name: a}]\n",
			[]wantErr{{1, 1, "name", "is required"}}},
		{"name with bad characters", "name: Drill_1\nregions: [{name: a}]\n",
			[]wantErr{{1, 7, "name", `"Drill_1" may only contain lower-case letters, digits and '-'`}}},
		{"name too long", "name: " + strings.Repeat("a", 41) + "\nregions: [{name: a}]\n",
			[]wantErr{{1, 7, "name", "longer than 40 characters"}}},

		// regions
		{"no regions", "name: t\n",
			[]wantErr{{1, 1, "regions", "at least one region is required"}}},
		{"empty regions", "name: t\nregions: []\n",
			[]wantErr{{2, 10, "regions", "at least one region is required"}}},
		{"too many regions", manyRegions,
			[]wantErr{{3, 3, "regions", "at most 200 regions are supported, got 201"}}},
		{"region names not DNS labels",
			"name: t\nregions:\n  - name: US-East\n  - name: -a\n  - name: " + strings.Repeat("a", 64) + "\n",
			[]wantErr{
				{3, 11, "regions[0].name", `"US-East" is not a DNS label`},
				{4, 11, "regions[1].name", `"-a" is not a DNS label`},
				{5, 11, "regions[2].name", "is not a DNS label"},
			}},
		{"duplicate region", twoRegions + "  - name: a\n",
			[]wantErr{{5, 11, "regions[2].name", `duplicate region "a" (first defined at regions[0])`}}},
		{"region without a name points at its mapping", "name: t\nregions:\n  - name: a\n  - nodes: {web: 1}\n",
			[]wantErr{{4, 5, "regions[1].name", "is required"}}},

		// client_subnets
		{"subnets not CIDR", "name: t\nregions:\n  - name: a\n    client_subnets: [10.0.0/8, 10.1.0.0]\n",
			[]wantErr{
				{4, 22, "regions[0].client_subnets[0]", `"10.0.0/8" is not a CIDR prefix`},
				{4, 32, "regions[0].client_subnets[1]", `"10.1.0.0" is not a CIDR prefix`},
			}},
		{"subnet with host bits", "name: t\nregions:\n  - name: a\n    client_subnets: [10.0.0.1/8]\n",
			[]wantErr{{4, 22, "regions[0].client_subnets[0]", "10.0.0.1/8 has host bits set; write 10.0.0.0/8"}}},
		{"subnets overlapping across regions",
			"name: t\nregions:\n  - name: a\n    client_subnets: [203.0.113.0/24]\n" +
				"  - name: b\n    client_subnets:\n      - 198.51.100.0/24\n      - 203.0.113.128/25\n",
			[]wantErr{{8, 9, "regions[1].client_subnets[1]",
				`203.0.113.128/25 overlaps 203.0.113.0/24 of region "a" (regions[0].client_subnets[0])`}}},
		{"IPv6 subnets overlapping in one region",
			"name: t\nregions:\n  - name: a\n    client_subnets: [2001:db8::/32, 2001:db8:1::/48]\n",
			[]wantErr{{4, 37, "regions[0].client_subnets[1]", `overlaps 2001:db8::/32 of region "a"`}}},
		{"subnets overlapping the node addresses",
			"name: t\nregions:\n  - name: a\n    client_subnets: [127.77.9.0/24, 127.0.0.0/8]\n",
			[]wantErr{
				{4, 22, "regions[0].client_subnets[0]", "overlaps the node address space 127.77.0.0/16"},
				{4, 37, "regions[0].client_subnets[1]", "overlaps the node address space 127.77.0.0/16"},
			}},

		// nodes
		{"node counts out of range",
			"name: t\nregions:\n  - name: a\n    nodes: {web: 0, db: 0, dns: -1}\n" +
				"  - name: b\n    nodes: {web: 10, db: 1, dns: 10}\n",
			[]wantErr{
				{4, 18, "regions[0].nodes.web", "must be between 1 and 9, got 0"},
				{4, 25, "regions[0].nodes.db", "must be between 1 and 9, got 0"},
				{4, 33, "regions[0].nodes.dns", "must be between 0 and 9, got -1"},
				{6, 18, "regions[1].nodes.web", "must be between 1 and 9, got 10"},
				{6, 34, "regions[1].nodes.dns", "must be between 0 and 9, got 10"},
			}},

		// network
		{"bases outside their ranges",
			"name: t\nnetwork:\n  loopback_base: 10.0.0.0/16\n  docker_base: 8.8.0.0/16\nregions: [{name: a}]\n",
			[]wantErr{
				{3, 18, "network.loopback_base", `"10.0.0.0/16" must be a /16 inside 127.0.0.0/8`},
				{4, 16, "network.docker_base", `"8.8.0.0/16" must be a private IPv4 /16`},
			}},
		{"bases of the wrong size",
			"name: t\nnetwork:\n  loopback_base: 127.77.0.0/24\n  docker_base: 10.0.0.0/8\nregions: [{name: a}]\n",
			[]wantErr{
				{3, 18, "network.loopback_base", "must be a /16 inside 127.0.0.0/8"},
				{4, 16, "network.docker_base", "must be a private IPv4 /16"},
			}},
		{"bases with host bits",
			"name: t\nnetwork:\n  loopback_base: 127.77.1.0/16\n  docker_base: 10.77.1.0/16\nregions: [{name: a}]\n",
			[]wantErr{
				{3, 18, "network.loopback_base", "127.77.1.0/16 has host bits set; write 127.77.0.0/16"},
				{4, 16, "network.docker_base", "10.77.1.0/16 has host bits set; write 10.77.0.0/16"},
			}},

		// primary_region
		{"unknown primary region", twoRegions + "primary_region: c\n",
			[]wantErr{{5, 17, "primary_region", `"c" is not a region (regions: a, b)`}}},

		// wan
		{"wan latencies and links", twoRegions + `wan:
  latency: 11s
  jitter: -1ms
  links:
    - between: [a]
    - between: [a, a]
    - between: [a, c]
    - between: [a, b]
      latency: -5ms
    - between: [b, a]
`,
			// Links without their own latency inherit the WAN-wide one; its error is not repeated.
			[]wantErr{
				{6, 12, "wan.latency", "must be at most 10s, got 11s"},
				{7, 11, "wan.jitter", "must not be negative, got -1ms"},
				{9, 16, "wan.links[0].between", "must name exactly two regions, got 1"},
				{10, 16, "wan.links[1].between", `must name two different regions, got "a" twice`},
				{11, 20, "wan.links[2].between[1]", `"c" is not a region`},
				{13, 16, "wan.links[3].latency", "must not be negative, got -5ms"},
				{14, 16, "wan.links[4].between", `duplicate link between "b" and "a" (first at wan.links[3])`},
			}},

		// durations
		{"bad durations", "name: t\nregions:\n  - name: a\n" + `gossip:
  rejoin_interval: 0s
dns:
  ttl: 1500ms
design:
  failover_after: fast
  lease_duration: -1s
`,
			[]wantErr{
				{5, 20, "gossip.rejoin_interval", "must be positive, got 0s"},
				{7, 8, "dns.ttl", "must be a whole number of seconds"},
				{9, 19, "design.failover_after", `invalid duration "fast" (use e.g. 40ms, 3s)`},
				{10, 19, "design.lease_duration", "must be positive, got -1s"},
			}},
		{"zero ttl", "name: t\nregions:\n  - name: a\ndns:\n  ttl: 0s\n  degraded_ttl: 2s\n",
			[]wantErr{{5, 8, "dns.ttl", "must be positive, got 0s"}}},
		{"degraded ttl above ttl", "name: t\nregions:\n  - name: a\ndns:\n  ttl: 2s\n  degraded_ttl: 3s\n",
			[]wantErr{{6, 17, "dns.degraded_ttl", "must not exceed dns.ttl (2s), got 3s"}}},

		// enumerations
		{"unknown profile, replication and fencing",
			"name: t\nregions:\n  - name: a\ngossip: {profile: slow}\ndesign: {replication: sync, fencing: stonith}\n",
			[]wantErr{
				{4, 19, "gossip.profile", `must be fast, lan or wan, got "slow"`},
				{5, 23, "design.replication", `must be async or semi-sync, got "sync"`},
				{5, 38, "design.fencing", `must be lease or none, got "stonith"`},
			}},

		// dns.zone
		{"zone without the final dot", "name: t\nregions:\n  - name: a\ndns:\n  zone: drill.test\n",
			[]wantErr{{5, 9, "dns.zone", `"drill.test" must be fully qualified: end it with a dot (drill.test.)`}}},
		{"zone with an empty label", "name: t\nregions:\n  - name: a\ndns:\n  zone: drill..test.\n",
			[]wantErr{{5, 9, "dns.zone", `label "" is not a DNS label`}}},
		{"root zone", "name: t\nregions:\n  - name: a\ndns:\n  zone: .\n",
			[]wantErr{{5, 9, "dns.zone", "must name a zone below the root"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("parsed without error: %+v", top)
			}
			if top != nil {
				t.Errorf("Parse returned a topology along with the error")
			}
			checkErrors(t, err, "bad.yaml", tc.want)
		})
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("name: t\n  regions: 1\n"))
	checkErrors(t, err, "bad.yaml", []wantErr{{1, 7, "", "mapping value is not allowed"}})
	var e *Error
	if !errors.As(err, &e) || e.Line != 1 {
		t.Errorf("errors.As(*Error) = %v, want the syntax error", e)
	}
}

// TestBadFiles checks the example files the CLI tests reuse, and that every file in testdata/bad
// really is rejected.
func TestBadFiles(t *testing.T) {
	tests := map[string]wantErr{
		"unknown-field.yaml":       {10, 3, "design.fencin", `unknown field "fencin"`},
		"duplicate-region.yaml":    {6, 11, "regions[1].name", `duplicate region "us-east"`},
		"overlapping-subnets.yaml": {9, 9, "regions[1].client_subnets[1]", `overlaps 203.0.113.0/24 of region "us-east"`},
		"zero-db.yaml":             {9, 25, "regions[1].nodes.db", "must be between 1 and 9, got 0"},
	}
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name := range tests {
		if !contains(files, filepath.Join("testdata/bad", name)) {
			t.Errorf("testdata/bad/%s is missing", name)
		}
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded without error")
			}
			if want, ok := tests[filepath.Base(path)]; ok {
				checkErrors(t, err, path, []wantErr{want})
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(absent) = %v, want fs.ErrNotExist", err)
	}
}

func TestParseDefaults(t *testing.T) {
	want := func(edit func(*Topology)) *Topology {
		top := &Topology{
			Name:          "mini",
			Network:       Network{LoopbackBase: "127.77.0.0/16", DockerBase: "10.77.0.0/16"},
			Regions:       []Region{{Name: "a", Nodes: NodeCounts{Web: 2, DB: 1, DNS: 1}}},
			PrimaryRegion: "a",
			WAN:           WAN{Latency: Duration(40 * time.Millisecond)},
			Gossip:        Gossip{Profile: ProfileFast, RejoinInterval: Duration(2 * time.Second)},
			DNS: DNS{Zone: "drill.test.", TTL: Duration(5 * time.Second), DegradedTTL: Duration(time.Second),
				HoldDown: Duration(3 * time.Second)},
			Design: Design{Replication: ReplicationAsync, Fencing: FencingLease, ReadYourWrites: true, ReadFrom: ReadFromLocal,
				FailoverAfter: Duration(2 * time.Second), LeaseDuration: Duration(3 * time.Second),
				CacheTTL: Duration(5 * time.Second), CacheCoalescing: true, CacheInvalidation: InvalidateAll,
				QueueReplication: QueueReplicationNone, QueueStorage: QueueStorageFile, QueueAck: QueueAckAfterWork},
			Cache:  Cache{MaxMemory: "64mb", Eviction: "allkeys-lru", Persistence: PersistenceNone},
			Queue:  Queue{AckWait: Duration(3 * time.Second), DuplicateWindow: Duration(2 * time.Minute), WorkerConcurrency: 4},
			Source: "mini.yaml",
		}
		edit(top)
		return top
	}
	tests := []struct {
		name string
		yaml string
		want *Topology
	}{
		{"minimal", "name: mini\nregions:\n  - name: a\n", want(func(*Topology) {})},
		{"null sections are defaults", "name: mini\nregions:\n  - name: a\n    nodes:\nwan:\ndesign:\n  fencing:\n",
			want(func(*Topology) {})},
		{"explicit false and zero are kept",
			"name: mini\nregions:\n  - name: a\nwan: {latency: 0s}\ndesign: {read_your_writes: false}\n",
			want(func(t *Topology) {
				t.WAN.Latency = 0
				t.Design.ReadYourWrites = false
			})},
		{"nodes default per role", "name: mini\nregions:\n  - name: a\n    nodes: {web: 3, dns: 0}\n",
			want(func(t *Topology) { t.Regions[0].Nodes = NodeCounts{Web: 3, DB: 1, DNS: 0} })},
		{"links inherit the wan latency", "name: mini\nregions: [{name: a}, {name: b}]\n" +
			"wan: {latency: 30ms, jitter: 3ms, links: [{between: [a, b], jitter: 1ms}]}\n",
			want(func(t *Topology) {
				t.Regions = append(t.Regions, Region{Name: "b", Nodes: NodeCounts{Web: 2, DB: 1, DNS: 1}})
				t.WAN = WAN{Latency: Duration(30 * time.Millisecond), Jitter: Duration(3 * time.Millisecond),
					Links: []WANLink{{Between: []string{"a", "b"}, Latency: Duration(30 * time.Millisecond),
						Jitter: Duration(time.Millisecond)}}}
			})},
		{"anchors and aliases", "name: mini\nregions:\n  - name: a\n    nodes: &small {web: 1, db: 1, dns: 0}\n" +
			"  - name: b\n    nodes: *small\n",
			want(func(t *Topology) {
				t.Regions = []Region{
					{Name: "a", Nodes: NodeCounts{Web: 1, DB: 1}},
					{Name: "b", Nodes: NodeCounts{Web: 1, DB: 1}},
				}
			})},
		{"subnets next to a custom node space",
			"name: mini\nnetwork: {loopback_base: 127.99.0.0/16}\nregions:\n  - name: a\n    client_subnets: [127.77.0.0/16]\n",
			want(func(t *Topology) {
				t.Network.LoopbackBase = "127.99.0.0/16"
				t.Regions[0].ClientSubnets = []string{"127.77.0.0/16"}
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("mini.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "f.yaml", Line: 3, Column: 5, Field: "design.fencing", Msg: "bad"}, "f.yaml:3:5: design.fencing: bad"},
		{&Error{File: "f.yaml", Line: 1, Column: 7, Msg: "syntax"}, "f.yaml:1:7: syntax"},
		{&Error{Field: "regions[1].name", Msg: "bad"}, "regions[1].name: bad"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	list := ErrorList{tests[0].err, tests[2].err}
	if got, want := list.Error(), "f.yaml:3:5: design.fencing: bad\nregions[1].name: bad"; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}
