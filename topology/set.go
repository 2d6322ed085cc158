package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// setting is one design setting that --set can override.
type setting struct {
	// short is the command-line name, e.g. dns_ttl.
	short string
	// field is the YAML path, e.g. dns.ttl; also accepted as a key.
	field string
	// apply parses value into t; it reports only malformed values, range checks come after.
	apply func(t *Topology, value string) error
	// check validates the section apply changed, by the rules Parse uses.
	check func(p *problems, t *Topology)
}

// settings lists the overridable settings in help order.
func settings() []setting {
	return []setting{
		{"fencing", "design.fencing", func(t *Topology, v string) error {
			t.Design.Fencing = v
			return nil
		}, checkDesign},
		{"replication", "design.replication", func(t *Topology, v string) error {
			t.Design.Replication = v
			return nil
		}, checkDesign},
		{"read_your_writes", "design.read_your_writes", func(t *Topology, v string) (err error) {
			t.Design.ReadYourWrites, err = parseSwitch(v)
			return err
		}, checkDesign},
		{"read_from", "design.read_from", func(t *Topology, v string) error {
			t.Design.ReadFrom = v
			return nil
		}, checkDesign},
		{"failover_after", "design.failover_after", func(t *Topology, v string) error {
			return t.Design.FailoverAfter.UnmarshalText([]byte(v))
		}, checkDesign},
		{"lease_duration", "design.lease_duration", func(t *Topology, v string) error {
			return t.Design.LeaseDuration.UnmarshalText([]byte(v))
		}, checkDesign},
		{"cache_ttl", "design.cache_ttl", func(t *Topology, v string) error {
			return t.Design.CacheTTL.UnmarshalText([]byte(v))
		}, checkDesign},
		{"cache_coalescing", "design.cache_coalescing", func(t *Topology, v string) (err error) {
			t.Design.CacheCoalescing, err = parseSwitch(v)
			return err
		}, checkDesign},
		{"cache_invalidation", "design.cache_invalidation", func(t *Topology, v string) error {
			t.Design.CacheInvalidation = v
			return nil
		}, checkDesign},
		{"queue_replication", "design.queue_replication", func(t *Topology, v string) error {
			t.Design.QueueReplication = v
			return nil
		}, checkDesign},
		{"queue_storage", "design.queue_storage", func(t *Topology, v string) error {
			t.Design.QueueStorage = v
			return nil
		}, checkDesign},
		{"queue_ack", "design.queue_ack", func(t *Topology, v string) error {
			t.Design.QueueAck = v
			return nil
		}, checkDesign},
		{"worker_concurrency", "queue.worker_concurrency", func(t *Topology, v string) (err error) {
			t.Queue.WorkerConcurrency, err = strconv.Atoi(v)
			return err
		}, checkQueue},
		{"dns_ttl", "dns.ttl", func(t *Topology, v string) error {
			return t.DNS.TTL.UnmarshalText([]byte(v))
		}, checkDNS},
		{"wan_latency", "wan.latency", func(t *Topology, v string) error {
			return t.WAN.Latency.UnmarshalText([]byte(v))
		}, checkWAN},
		{"gossip_profile", "gossip.profile", func(t *Topology, v string) error {
			t.Gossip.Profile = v
			return nil
		}, checkGossip},
	}
}

// SettingKeys are the keys Set accepts, in their short form; the YAML paths (design.fencing,
// dns.ttl, ...) are accepted too.
func SettingKeys() []string {
	all := settings()
	keys := make([]string, len(all))
	for i, s := range all {
		keys[i] = s.short
	}
	return keys
}

// ParseSet splits a command-line override "key=value" into its key and value.
func ParseSet(kv string) (key, value string, err error) {
	key, value, found := strings.Cut(kv, "=")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	switch {
	case !found:
		return "", "", fmt.Errorf("--set %q: expected key=value, e.g. fencing=none", kv)
	case key == "":
		return "", "", fmt.Errorf("--set %q: missing key before '='", kv)
	case value == "":
		return "", "", fmt.Errorf("--set %q: missing value after '='", kv)
	}
	return key, value, nil
}

// Set overrides one design setting, as from `--set key=value`. Keys are fencing, replication,
// read_your_writes (on/off/true/false), failover_after, lease_duration, dns_ttl, wan_latency and
// gossip_profile, or their YAML paths (design.fencing, dns.ttl, wan.latency, gossip.profile, ...).
// The value is validated by the rules Parse applies; on error t is unchanged. wan_latency changes
// the default latency only: links with their own latency keep it.
func (t *Topology) Set(key, value string) error {
	name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "-", "_")
	value = strings.TrimSpace(value)
	for _, s := range settings() {
		if name != s.short && name != s.field {
			continue
		}
		changed := *t
		if err := s.apply(&changed, value); err != nil {
			return ErrorList{{Field: s.field, Msg: err.Error()}}
		}
		var p problems
		s.check(&p, &changed)
		if len(p.list) > 0 {
			return p.list
		}
		*t = changed
		return nil
	}
	return ErrorList{{Field: key, Msg: fmt.Sprintf("unknown setting; valid settings: %s "+
		"(or their YAML paths, e.g. design.fencing, dns.ttl)", strings.Join(SettingKeys(), ", "))}}
}

// parseSwitch reads an on/off setting.
func parseSwitch(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q must be on, off, true or false", v)
}
