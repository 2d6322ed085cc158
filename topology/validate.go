package topology

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Limits of the model.
const (
	maxNameLen     = 40 // topology names label gossip clusters, run directories and containers
	maxRegions     = 200
	maxLabelLen    = 63  // one DNS label
	maxZoneLen     = 253 // a DNS name without its final dot
	maxNodesOfRole = 9   // role offsets in a region's /24 are 10 apart (web .10, db .20, dns .30, cache .40, queue .50, worker .60)
	maxWANLatency  = 10 * time.Second
)

// Validate checks a topology built or changed in code by the same rules Parse applies. The error
// is an ErrorList; its errors carry a Field but no file position.
func (t *Topology) Validate() error {
	return validate(t).Err()
}

// validate runs every check, in model order.
func validate(t *Topology) ErrorList {
	var p problems
	checkName(&p, t)
	checkNetwork(&p, t)
	checkRegions(&p, t)
	checkPrimary(&p, t)
	checkWAN(&p, t)
	checkGossip(&p, t)
	checkDNS(&p, t)
	checkDesign(&p, t)
	checkCache(&p, t)
	checkQueue(&p, t)
	return p.list
}

func checkName(p *problems, t *Topology) {
	switch {
	case t.Name == "":
		p.add("name", "is required")
	case len(t.Name) > maxNameLen:
		p.add("name", "%q is longer than %d characters", t.Name, maxNameLen)
	case !onlyNameChars(t.Name):
		p.add("name", "%q may only contain lower-case letters, digits and '-'", t.Name)
	}
}

func checkNetwork(p *problems, t *Topology) {
	if _, msg := loopbackPrefix(t.Network.LoopbackBase); msg != "" {
		p.add("network.loopback_base", "%s", msg)
	}
	base := t.Network.DockerBase
	switch prefix, err := netip.ParsePrefix(base); {
	case base == "":
		p.add("network.docker_base", "is required")
	case err != nil || !prefix.Addr().Is4() || prefix.Bits() != 16 || !prefix.Addr().IsPrivate():
		p.add("network.docker_base", "%q must be a private IPv4 /16, e.g. %s", base, defaultDockerBase)
	case prefix.Masked() != prefix:
		p.add("network.docker_base", "%s has host bits set; write %s", base, prefix.Masked())
	}
}

// loopbackPrefix parses network.loopback_base; msg says what is wrong with it, if anything.
func loopbackPrefix(base string) (netip.Prefix, string) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	prefix, err := netip.ParsePrefix(base)
	switch {
	case base == "":
		return prefix, "is required"
	case err != nil || !prefix.Addr().Is4() || prefix.Bits() != 16 || !loopback.Contains(prefix.Addr()):
		return prefix, fmt.Sprintf("%q must be a /16 inside 127.0.0.0/8, e.g. %s", base, defaultLoopbackBase)
	case prefix.Masked() != prefix:
		return prefix, fmt.Sprintf("%s has host bits set; write %s", base, prefix.Masked())
	}
	return prefix, ""
}

func checkRegions(p *problems, t *Topology) {
	switch {
	case len(t.Regions) == 0:
		p.add("regions", "at least one region is required")
	case len(t.Regions) > maxRegions:
		p.add("regions", "at most %d regions are supported, got %d", maxRegions, len(t.Regions))
	}
	firstByName := map[string]int{}
	for i, r := range t.Regions {
		field := fmt.Sprintf("regions[%d]", i)
		switch {
		case r.Name == "":
			p.add(field+".name", "is required")
		case !isLabel(r.Name):
			p.add(field+".name", "%q is not a DNS label: up to %d lower-case letters, digits and '-', "+
				"not starting or ending with '-'", r.Name, maxLabelLen)
		default:
			if first, dup := firstByName[r.Name]; dup {
				p.add(field+".name", "duplicate region %q (first defined at regions[%d])", r.Name, first)
			} else {
				firstByName[r.Name] = i
			}
		}
		checkCount(p, field+".nodes.web", r.Nodes.Web, 1)
		checkCount(p, field+".nodes.db", r.Nodes.DB, 1)
		checkCount(p, field+".nodes.dns", r.Nodes.DNS, 0)
		checkCount(p, field+".nodes.cache", r.Nodes.Cache, 0)
		if r.Nodes.Queue < 0 || r.Nodes.Queue > 1 {
			// One JetStream server holds the region's stream (R1): more would need a NATS cluster.
			p.add(field+".nodes.queue", "must be 0 or 1, got %d", r.Nodes.Queue)
		}
		checkCount(p, field+".nodes.worker", r.Nodes.Worker, 0)
		if r.Nodes.Worker > 0 && r.Nodes.Queue == 0 {
			p.add(field+".nodes.worker", "workers drain the region's queue: set nodes.queue: 1 too")
		}
		if r.DockerHost != "" {
			if msg := checkDockerHost(r.DockerHost); msg != "" {
				p.add(field+".docker_host", "%s", msg)
			}
		}
	}
	checkClientSubnets(p, t)
}

func checkCount(p *problems, field string, n, least int) {
	if n < least || n > maxNodesOfRole {
		p.add(field, "must be between %d and %d, got %d", least, maxNodesOfRole, n)
	}
}

// checkClientSubnets requires canonical prefixes that overlap neither each other (GeoDNS could not
// tell which region a client belongs to) nor the nodes' own addresses.
func checkClientSubnets(p *problems, t *Topology) {
	nodeSpace, msg := loopbackPrefix(t.Network.LoopbackBase)
	type subnet struct {
		prefix netip.Prefix
		region string
		field  string
	}
	var earlier []subnet
	for i, r := range t.Regions {
		for j, s := range r.ClientSubnets {
			field := fmt.Sprintf("regions[%d].client_subnets[%d]", i, j)
			prefix, err := netip.ParsePrefix(s)
			if err != nil {
				p.add(field, "%q is not a CIDR prefix such as 203.0.113.0/24 or 2001:db8::/32", s)
				continue
			}
			if prefix.Addr().Is4In6() {
				p.add(field, "%s is an IPv4-mapped IPv6 prefix; write it as IPv4", s)
				continue
			}
			if prefix.Masked() != prefix {
				p.add(field, "%s has host bits set; write %s", s, prefix.Masked())
				continue
			}
			if msg == "" && prefix.Overlaps(nodeSpace) {
				p.add(field, "%s overlaps the node address space %s (network.loopback_base)", s, nodeSpace)
				continue
			}
			for _, e := range earlier {
				if e.prefix.Overlaps(prefix) {
					p.add(field, "%s overlaps %s of region %q (%s)", s, e.prefix, e.region, e.field)
					break
				}
			}
			earlier = append(earlier, subnet{prefix: prefix, region: r.Name, field: field})
		}
	}
}

func checkPrimary(p *problems, t *Topology) {
	if len(t.Regions) == 0 {
		return // reported as a missing region already
	}
	if _, ok := t.Region(t.PrimaryRegion); !ok {
		p.add("primary_region", "%q is not a region (regions: %s)", t.PrimaryRegion, strings.Join(t.RegionNames(), ", "))
	}
}

func checkWAN(p *problems, t *Topology) {
	checkLatency(p, "wan", t.WAN.Latency, t.WAN.Jitter)
	firstByPair := map[[2]string]int{}
	for i, l := range t.WAN.Links {
		field := fmt.Sprintf("wan.links[%d]", i)
		checkLatency(p, field, l.Latency, l.Jitter)
		if len(l.Between) != 2 {
			p.add(field+".between", "must name exactly two regions, got %d", len(l.Between))
			continue
		}
		known := true
		for j, name := range l.Between {
			if _, ok := t.Region(name); !ok {
				p.add(fmt.Sprintf("%s.between[%d]", field, j), "%q is not a region", name)
				known = false
			}
		}
		if !known {
			continue
		}
		a, b := l.Between[0], l.Between[1]
		if a == b {
			p.add(field+".between", "must name two different regions, got %q twice", a)
			continue
		}
		pair := [2]string{min(a, b), max(a, b)}
		if first, dup := firstByPair[pair]; dup {
			p.add(field+".between", "duplicate link between %q and %q (first at wan.links[%d])", a, b, first)
			continue
		}
		firstByPair[pair] = i
	}
}

func checkLatency(p *problems, field string, latency, jitter Duration) {
	for _, c := range []struct {
		name  string
		value Duration
	}{{"latency", latency}, {"jitter", jitter}} {
		switch {
		case c.value < 0:
			p.add(field+"."+c.name, "must not be negative, got %s", c.value.D())
		case c.value.D() > maxWANLatency:
			p.add(field+"."+c.name, "must be at most %s, got %s", maxWANLatency, c.value.D())
		}
	}
}

func checkGossip(p *problems, t *Topology) {
	checkOneOf(p, "gossip.profile", t.Gossip.Profile, ProfileFast, ProfileLAN, ProfileWAN)
	if t.Gossip.Profile == ProfileFast {
		// The fast profile's probe timeout only fits a WAN this fast; a slower one makes gossip
		// suspect healthy nodes (see agents/gossip.fastConfig).
		valid := func(d Duration) bool { return d >= 0 && d.D() <= maxWANLatency } // else reported already
		tooSlow := func(field string, latency, jitter Duration) {
			if !valid(latency) || !valid(jitter) {
				return
			}
			if oneWay := latency.D() + jitter.D(); oneWay > FastGossipMaxOneWay {
				p.add(field+".latency", "latency + jitter %s exceeds the %s one-way the fast gossip profile tolerates; set gossip.profile: wan",
					oneWay, FastGossipMaxOneWay)
			}
		}
		tooSlow("wan", t.WAN.Latency, t.WAN.Jitter)
		for i, l := range t.WAN.Links {
			if l.Latency != t.WAN.Latency || l.Jitter != t.WAN.Jitter { // an inherited value is reported once, above
				tooSlow(fmt.Sprintf("wan.links[%d]", i), l.Latency, l.Jitter)
			}
		}
	}
	checkPositive(p, "gossip.rejoin_interval", t.Gossip.RejoinInterval)
}

func checkDNS(p *problems, t *Topology) {
	checkZone(p, "dns.zone", t.DNS.Zone)
	// DNS TTLs are whole seconds on the wire; a fraction would be silently cut off.
	ttlOK := checkTTL(p, "dns.ttl", t.DNS.TTL)
	if checkTTL(p, "dns.degraded_ttl", t.DNS.DegradedTTL) && ttlOK && t.DNS.DegradedTTL > t.DNS.TTL {
		p.add("dns.degraded_ttl", "must not exceed dns.ttl (%s), got %s", t.DNS.TTL.D(), t.DNS.DegradedTTL.D())
	}
	if t.DNS.HoldDown < 0 {
		p.add("dns.hold_down", "must not be negative, got %s", t.DNS.HoldDown.D())
	}
}

func checkTTL(p *problems, field string, ttl Duration) bool {
	if !checkPositive(p, field, ttl) {
		return false
	}
	if ttl.D()%time.Second != 0 {
		p.add(field, "must be a whole number of seconds (DNS TTLs are in seconds), got %s", ttl.D())
		return false
	}
	return true
}

// checkZone requires a fully qualified domain name: lower-case DNS labels and the final dot.
func checkZone(p *problems, field, zone string) {
	name, fqdn := strings.CutSuffix(zone, ".")
	switch {
	case zone == "":
		p.add(field, "is required")
	case !fqdn:
		p.add(field, "%q must be fully qualified: end it with a dot (%s.)", zone, zone)
	case name == "":
		p.add(field, "must name a zone below the root, e.g. %s", defaultZone)
	case len(name) > maxZoneLen:
		p.add(field, "%q is longer than %d characters", zone, maxZoneLen)
	default:
		for _, label := range strings.Split(name, ".") {
			if !isLabel(label) {
				p.add(field, "%q: label %q is not a DNS label (lower-case letters, digits and '-', "+
					"1 to %d characters, not starting or ending with '-')", zone, label, maxLabelLen)
				return
			}
		}
	}
}

func checkDesign(p *problems, t *Topology) {
	checkOneOf(p, "design.replication", t.Design.Replication, ReplicationAsync, ReplicationSemiSync)
	checkOneOf(p, "design.fencing", t.Design.Fencing, FencingLease, FencingNone)
	checkOneOf(p, "design.read_from", t.Design.ReadFrom, ReadFromLocal, ReadFromPrimary)
	checkPositive(p, "design.failover_after", t.Design.FailoverAfter)
	checkPositive(p, "design.lease_duration", t.Design.LeaseDuration)
	if checkPositive(p, "design.cache_ttl", t.Design.CacheTTL) && t.Design.CacheTTL.D()%time.Second != 0 {
		// redis's EX takes whole seconds; a TTL that is not one would be rounded silently.
		p.add("design.cache_ttl", "must be whole seconds (redis EX), got %s", t.Design.CacheTTL.D())
	}
	checkOneOf(p, "design.cache_invalidation", t.Design.CacheInvalidation, InvalidateAll, InvalidateLocal)
	checkOneOf(p, "design.queue_replication", t.Design.QueueReplication, QueueReplicationNone, QueueReplicationMirror)
	checkOneOf(p, "design.queue_storage", t.Design.QueueStorage, QueueStorageFile, QueueStorageMemory)
	checkOneOf(p, "design.queue_ack", t.Design.QueueAck, QueueAckAfterWork, QueueAckBeforeWork)
}

func checkQueue(p *problems, t *Topology) {
	checkPositive(p, "queue.ack_wait", t.Queue.AckWait)
	checkPositive(p, "queue.duplicate_window", t.Queue.DuplicateWindow)
	if c := t.Queue.WorkerConcurrency; c < 1 || c > 64 {
		p.add("queue.worker_concurrency", "must be between 1 and 64, got %d", c)
	}
}

// cacheEvictions are redis's maxmemory-policy values.
var cacheEvictions = []string{"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
	"volatile-random", "volatile-ttl", "noeviction"}

func checkCache(p *problems, t *Topology) {
	if !validMemory(t.Cache.MaxMemory) {
		p.add("cache.max_memory", "must be a redis memory size such as 64mb, 1gb or 0 (no limit), got %q", t.Cache.MaxMemory)
	}
	checkOneOf(p, "cache.eviction", t.Cache.Eviction, cacheEvictions...)
	checkOneOf(p, "cache.persistence", t.Cache.Persistence, PersistenceNone, PersistenceRDB, PersistenceAOF)
}

// validMemory accepts redis's memory units: digits, then nothing, b, k, kb, m, mb, g or gb.
func validMemory(s string) bool {
	s = strings.ToLower(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 15 {
		return false
	}
	switch s[i:] {
	case "", "b", "k", "kb", "m", "mb", "g", "gb":
		return true
	}
	return false
}

func checkOneOf(p *problems, field, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.add(field, "must be %s, got %q", orList(allowed), value)
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func checkPositive(p *problems, field string, d Duration) bool {
	if d <= 0 {
		p.add(field, "must be positive, got %s", d.D())
		return false
	}
	return true
}

// isLabel reports whether s is a DNS label as drill uses them: 1 to 63 lower-case letters, digits
// and '-', not starting or ending with '-'.
func isLabel(s string) bool {
	return s != "" && len(s) <= maxLabelLen && onlyNameChars(s) && s[0] != '-' && s[len(s)-1] != '-'
}

func onlyNameChars(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkDockerHost validates a region's Docker engine address, written as DOCKER_HOST is:
// unix:///path, tcp://host:port or ssh://[user@]host[:port].
func checkDockerHost(h string) string {
	u, err := url.Parse(h)
	if err != nil {
		return fmt.Sprintf("%q is not a Docker engine address: %v", h, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" || u.Host != "" {
			return fmt.Sprintf("%q: a unix socket is written unix:///path/to/docker.sock", h)
		}
	case "tcp", "ssh":
		if u.Hostname() == "" {
			return fmt.Sprintf("%q names no host", h)
		}
		if u.Scheme == "tcp" && u.Port() == "" {
			return fmt.Sprintf("%q: a tcp engine address needs a port, e.g. tcp://host:2376", h)
		}
	default:
		return fmt.Sprintf("%q: the scheme must be unix, tcp or ssh (as in DOCKER_HOST)", h)
	}
	return ""
}
