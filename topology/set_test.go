package topology

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	tests := []struct {
		key, value string
		want       func(*Topology) // the expected change to the default topology
	}{
		{"fencing", "none", func(t *Topology) { t.Design.Fencing = FencingNone }},
		{"design.fencing", "none", func(t *Topology) { t.Design.Fencing = FencingNone }},
		{"replication", "semi-sync", func(t *Topology) { t.Design.Replication = ReplicationSemiSync }},
		{"read_your_writes", "off", func(t *Topology) { t.Design.ReadYourWrites = false }},
		{"read-your-writes", "FALSE", func(t *Topology) { t.Design.ReadYourWrites = false }},
		{"design.read_your_writes", "on", func(t *Topology) { t.Design.ReadYourWrites = true }},
		{"failover_after", "500ms", func(t *Topology) { t.Design.FailoverAfter = Duration(500 * time.Millisecond) }},
		{"lease_duration", "4s", func(t *Topology) { t.Design.LeaseDuration = Duration(4 * time.Second) }},
		{"dns_ttl", "30s", func(t *Topology) { t.DNS.TTL = Duration(30 * time.Second) }},
		{"dns.ttl", "1s", func(t *Topology) { t.DNS.TTL = Duration(time.Second) }},
		{"wan_latency", "150ms", func(t *Topology) { t.WAN.Latency = Duration(150 * time.Millisecond) }},
		{"wan.latency", "0s", func(t *Topology) { t.WAN.Latency = 0 }},
		{"gossip_profile", "wan", func(t *Topology) { t.Gossip.Profile = ProfileWAN }},
		{"gossip.profile", "lan", func(t *Topology) { t.Gossip.Profile = ProfileLAN }},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			got := Default()
			if err := got.Set(tc.key, tc.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			want := Default()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestSetRejects(t *testing.T) {
	tests := []struct {
		key, value string
		field, msg string
	}{
		{"fencing", "stonith", "design.fencing", `must be lease or none, got "stonith"`},
		{"replication", "sync", "design.replication", `must be async or semi-sync, got "sync"`},
		{"read_your_writes", "maybe", "design.read_your_writes", `"maybe" must be on, off, true or false`},
		{"failover_after", "soon", "design.failover_after", `invalid duration "soon"`},
		{"lease_duration", "0s", "design.lease_duration", "must be positive, got 0s"},
		{"dns_ttl", "1500ms", "dns.ttl", "must be a whole number of seconds"},
		{"dns_ttl", "0s", "dns.ttl", "must be positive"},
		{"wan_latency", "-1ms", "wan.latency", "must not be negative"},
		{"wan_latency", "11s", "wan.latency", "must be at most 10s"},
		{"gossip_profile", "slow", "gossip.profile", `must be fast, lan or wan, got "slow"`},
		{"cache_ttl", "1500ms", "design.cache_ttl", "must be whole seconds (redis EX), got 1.5s"},
		{"cache_coalescing", "sometimes", "design.cache_coalescing", `"sometimes" must be on, off, true or false`},
		{"cache_invalidation", "global", "design.cache_invalidation", `must be all-regions or local, got "global"`},
		{"quorum", "2", "quorum", "unknown setting; valid settings: fencing, replication, read_your_writes, read_from, " +
			"failover_after, lease_duration, cache_ttl, cache_coalescing, cache_invalidation, queue_replication, queue_storage, queue_ack, worker_concurrency, dns_ttl, wan_latency, gossip_profile"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			top := Default()
			err := top.Set(tc.key, tc.value)
			checkErrors(t, err, "", []wantErr{{0, 0, tc.field, tc.msg}})
			if !reflect.DeepEqual(top, Default()) {
				t.Errorf("a rejected Set changed the topology: %+v", top)
			}
		})
	}

	// A TTL below the degraded TTL breaks the relation between the two.
	top := Default()
	if err := top.Set("dns.degraded_ttl", "1s"); err == nil {
		t.Error("dns.degraded_ttl is not a settable key, but Set accepted it")
	}
	top.DNS.DegradedTTL = Duration(3 * time.Second)
	err := top.Set("dns_ttl", "2s")
	checkErrors(t, err, "", []wantErr{{0, 0, "dns.degraded_ttl", "must not exceed dns.ttl (2s), got 3s"}})
}

func TestParseSet(t *testing.T) {
	tests := []struct {
		in         string
		key, value string
		err        string
	}{
		{in: "fencing=none", key: "fencing", value: "none"},
		{in: " dns.ttl = 5s ", key: "dns.ttl", value: "5s"},
		{in: "a=b=c", key: "a", value: "b=c"},
		{in: "fencing", err: "expected key=value"},
		{in: "=none", err: "missing key"},
		{in: "fencing=", err: "missing value"},
	}
	for _, tc := range tests {
		key, value, err := ParseSet(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSet(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseSet(%q): %v", tc.in, err)
		case key != tc.key || value != tc.value:
			t.Errorf("ParseSet(%q) = %q, %q; want %q, %q", tc.in, key, value, tc.key, tc.value)
		}
	}
}
