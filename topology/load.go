package topology

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/drillworks/drill/topology/yamlpos"
)

// Values of optional settings left out of a topology file.
const (
	defaultLoopbackBase   = "127.77.0.0/16"
	defaultDockerBase     = "10.77.0.0/16"
	defaultWANLatency     = 40 * time.Millisecond
	defaultGossipProfile  = ProfileFast
	defaultRejoinInterval = 2 * time.Second
	defaultZone           = "drill.test."
	defaultTTL            = 5 * time.Second
	defaultDegradedTTL    = 1 * time.Second
	defaultHoldDown       = 3 * time.Second
	defaultFailoverAfter  = 2 * time.Second
	defaultLeaseDuration  = 3 * time.Second
	defaultWebNodes       = 2
	defaultDBNodes        = 1
	defaultDNSNodes       = 1
	defaultCacheTTL       = 5 * time.Second
	defaultCacheMaxMemory = "64mb"
	defaultCacheEviction  = "allkeys-lru"
	// Long enough for a job of a few hundred ms on a loaded machine, short enough that a crashed
	// worker's job is redelivered within a drill's scripted waits.
	defaultQueueAckWait = 3 * time.Second
	// JetStream's own default: a client retrying a publish for two minutes is still deduplicated.
	defaultQueueDuplicateWindow = 2 * time.Minute
	defaultWorkerConcurrency    = 4
)

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	data, rerr := yamlpos.ReadFile(path, "topology", yamlpos.MaxInputBytes)
	if rerr != nil {
		return nil, ErrorList{rerr}
	}
	return Parse(path, data)
}

// Parse reads a topology from YAML. source names the file in errors and becomes t.Source.
//
// Decoding is strict: unknown fields, duplicate keys and values of the wrong kind are errors.
// Settings left out get their documented defaults (a region without nodes gets 2 web, 1 db and
// 1 dns; a nodes mapping that names only some roles gets the default for the others; a WAN link
// without latency or jitter gets the WAN-wide value). The result is then validated.
//
// On failure the error is an ErrorList of every problem found, sorted by position; each *Error
// carries the line and column of the offending node (for a missing field: of its parent mapping).
func Parse(source string, data []byte) (*Topology, error) {
	d := &decoder{
		Decoder:   yamlpos.NewDecoder(source),
		positions: map[string]yamlpos.Pos{},
		present:   map[string]bool{},
		bad:       map[string]bool{},
	}
	body, ok := d.Document(data, "topology")
	if !ok {
		return nil, d.Errs
	}

	t := &Topology{Source: source}
	start := yamlpos.Pos{Line: 1, Column: 1}
	d.positions[""] = start
	d.decode(body, reflect.ValueOf(t).Elem(), "", start)
	defaulted := applyDefaults(t, d.present)

	errs := d.Errs
	for _, e := range validate(t) {
		// A field the decoder already complained about, or one Parse filled with a default, only
		// fails as a consequence of another problem; reporting it again would be noise.
		if d.isBad(e.Field) || defaulted[e.Field] {
			continue
		}
		p := d.locate(e.Field)
		e.File, e.Line, e.Column = source, p.Line, p.Column
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return t, nil
}

// applyDefaults fills every optional setting the file left out (absent or null) and returns the
// field paths it filled.
func applyDefaults(t *Topology, present map[string]bool) map[string]bool {
	defaulted := map[string]bool{}
	set := func(field string, apply func()) {
		if !present[field] {
			apply()
			defaulted[field] = true
		}
	}
	set("network.loopback_base", func() { t.Network.LoopbackBase = defaultLoopbackBase })
	set("network.docker_base", func() { t.Network.DockerBase = defaultDockerBase })
	for i := range t.Regions {
		nodes := &t.Regions[i].Nodes
		prefix := fmt.Sprintf("regions[%d].nodes.", i)
		set(prefix+"web", func() { nodes.Web = defaultWebNodes })
		set(prefix+"db", func() { nodes.DB = defaultDBNodes })
		set(prefix+"dns", func() { nodes.DNS = defaultDNSNodes })
	}
	set("primary_region", func() {
		if len(t.Regions) > 0 {
			t.PrimaryRegion = t.Regions[0].Name
		}
	})
	set("wan.latency", func() { t.WAN.Latency = Duration(defaultWANLatency) })
	set("wan.jitter", func() { t.WAN.Jitter = 0 })
	for i := range t.WAN.Links {
		link := &t.WAN.Links[i]
		prefix := fmt.Sprintf("wan.links[%d].", i)
		set(prefix+"latency", func() { link.Latency = t.WAN.Latency })
		set(prefix+"jitter", func() { link.Jitter = t.WAN.Jitter })
	}
	set("gossip.profile", func() { t.Gossip.Profile = defaultGossipProfile })
	set("gossip.rejoin_interval", func() { t.Gossip.RejoinInterval = Duration(defaultRejoinInterval) })
	set("dns.zone", func() { t.DNS.Zone = defaultZone })
	set("dns.ttl", func() { t.DNS.TTL = Duration(defaultTTL) })
	set("dns.degraded_ttl", func() { t.DNS.DegradedTTL = Duration(defaultDegradedTTL) })
	set("dns.hold_down", func() { t.DNS.HoldDown = Duration(defaultHoldDown) })
	set("design.replication", func() { t.Design.Replication = ReplicationAsync })
	set("design.fencing", func() { t.Design.Fencing = FencingLease })
	set("design.read_your_writes", func() { t.Design.ReadYourWrites = true })
	set("design.read_from", func() { t.Design.ReadFrom = ReadFromLocal })
	set("design.failover_after", func() { t.Design.FailoverAfter = Duration(defaultFailoverAfter) })
	set("design.lease_duration", func() { t.Design.LeaseDuration = Duration(defaultLeaseDuration) })
	set("design.cache_ttl", func() { t.Design.CacheTTL = Duration(defaultCacheTTL) })
	set("design.cache_coalescing", func() { t.Design.CacheCoalescing = true })
	set("design.cache_invalidation", func() { t.Design.CacheInvalidation = InvalidateAll })
	set("cache.max_memory", func() { t.Cache.MaxMemory = defaultCacheMaxMemory })
	set("cache.eviction", func() { t.Cache.Eviction = defaultCacheEviction })
	set("cache.persistence", func() { t.Cache.Persistence = PersistenceNone })
	set("design.queue_replication", func() { t.Design.QueueReplication = QueueReplicationNone })
	set("design.queue_storage", func() { t.Design.QueueStorage = QueueStorageFile })
	set("design.queue_ack", func() { t.Design.QueueAck = QueueAckAfterWork })
	set("queue.ack_wait", func() { t.Queue.AckWait = Duration(defaultQueueAckWait) })
	set("queue.duplicate_window", func() { t.Queue.DuplicateWindow = Duration(defaultQueueDuplicateWindow) })
	set("queue.worker_concurrency", func() { t.Queue.WorkerConcurrency = defaultWorkerConcurrency })
	return defaulted
}

// decoder fills a Go value from the YAML AST by the yaml struct tags, strictly, recording where
// every field was found so that later validation errors can point into the file.
type decoder struct {
	*yamlpos.Decoder
	// positions maps each field path seen in the file to the position errors about it point at.
	positions map[string]yamlpos.Pos
	// present holds the field paths with a non-null value: the rest get defaults.
	present map[string]bool
	// bad holds the field paths the decoder rejected, whose Go value is therefore incomplete.
	bad map[string]bool
}

// reject records a value of the wrong shape: the field keeps its zero value.
func (d *decoder) reject(at yamlpos.Pos, field, format string, args ...any) {
	d.bad[field] = true
	d.Errorf(at, field, format, args...)
}

// isBad reports whether field or one of its parents was rejected by the decoder.
func (d *decoder) isBad(field string) bool {
	for {
		if d.bad[field] {
			return true
		}
		if field == "" {
			return false
		}
		field = parentField(field)
	}
}

// locate is where an error about field points: the field's own node, or for a field missing from
// the file, its nearest parent that is in the file.
func (d *decoder) locate(field string) yamlpos.Pos {
	for {
		if p, ok := d.positions[field]; ok {
			return p
		}
		if field == "" {
			return yamlpos.Pos{Line: 1, Column: 1}
		}
		field = parentField(field)
	}
}

// parentField strips the last element of a field path: a.b[2] -> a.b, a.b -> a, a -> "".
func parentField(field string) string {
	if strings.HasSuffix(field, "]") {
		if i := strings.LastIndexByte(field, '['); i >= 0 {
			return field[:i]
		}
	}
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[:i]
	}
	return ""
}

// decode stores node into v. keyPos is where the node's key is, used for errors about a null value
// (whose own token points past the key).
func (d *decoder) decode(node ast.Node, v reflect.Value, field string, keyPos yamlpos.Pos) {
	node, ok := d.Resolve(node, keyPos, field)
	if !ok {
		d.bad[field] = true
		return
	}
	if yamlpos.IsNull(node) {
		// An empty value means "not set": the field keeps its zero value or gets its default.
		d.positions[field] = keyPos
		return
	}
	at := yamlpos.NodePos(node)
	d.positions[field] = at
	d.present[field] = true

	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		text, ok := yamlpos.ScalarText(node)
		if !ok {
			d.reject(at, field, "must be a single value, not a %s", yamlpos.KindName(node))
			return
		}
		if err := u.UnmarshalText([]byte(text)); err != nil {
			d.reject(at, field, "%s", err.Error())
		}
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(node, v, field, at)
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			d.reject(at, field, "must be a list, not a %s", yamlpos.KindName(node))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values)))
		for i, item := range seq.Values {
			d.decode(item, v.Index(i), yamlpos.ItemField(field, i), yamlpos.NodePos(item))
		}
	case reflect.String:
		text, ok := yamlpos.ScalarText(node)
		if !ok {
			d.reject(at, field, "must be a string, not a %s", yamlpos.KindName(node))
			return
		}
		v.SetString(text)
	case reflect.Int:
		n, ok := node.(*ast.IntegerNode)
		if !ok {
			d.reject(at, field, "must be an integer, not %s", yamlpos.Describe(node))
			return
		}
		switch i := n.Value.(type) {
		case int64:
			v.SetInt(i)
		case uint64:
			if i > math.MaxInt64 {
				d.reject(at, field, "%d is too large", i)
				return
			}
			v.SetInt(int64(i))
		}
	case reflect.Bool:
		b, ok := node.(*ast.BoolNode)
		if !ok {
			d.reject(at, field, "must be true or false, not %s", yamlpos.Describe(node))
			return
		}
		v.SetBool(b.Value)
	default:
		// Only reachable if a field of an unsupported type is added to the model.
		panic(fmt.Sprintf("topology: cannot decode into %s", v.Type()))
	}
}

// decodeStruct fills a struct from a mapping, by yaml tags, rejecting unknown and repeated keys.
func (d *decoder) decodeStruct(node ast.Node, v reflect.Value, field string, at yamlpos.Pos) {
	fields := map[string]int{}
	names := []string{} // non-nil: Pairs then rejects every key not in it
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	entries, ok := d.Pairs(node, at, field, names)
	if !ok {
		d.bad[field] = true
		return
	}
	for _, e := range entries {
		d.decode(e.Value, v.Field(fields[e.Key]), e.Field, e.KeyPos)
	}
}
