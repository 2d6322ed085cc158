package dnsgeo

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
)

// regionState is where a region stands in the health policy.
type regionState uint8

const (
	// stateUp: admitted; answers include the region.
	stateUp regionState = iota
	// stateDown: no web node alive and healthy in gossip.
	stateDown
	// stateHoldDown: healthy again, but not re-admitted until it stays healthy for the hold-down.
	stateHoldDown
)

// String names the state as _status and metrics show it.
func (st regionState) String() string {
	switch st {
	case stateUp:
		return "up"
	case stateDown:
		return "down"
	default:
		return "hold-down"
	}
}

// regionHealth is the mutable per-region policy state (guarded by Server.hmu).
type regionHealth struct {
	state  regionState
	since  time.Time // last state change
	reason string    // why the region is in this state
	// seen: gossip has shown the region healthy at least once. Until then, within the startup
	// grace, the region keeps its bootstrap answers.
	seen bool
}

// regionObs is what one membership snapshot says about a region.
type regionObs struct {
	web     []netip.Addr // serving web nodes (alive, healthy, not leaving), sorted
	seen    int          // web members gossip knows, serving or not
	notes   []string     // why known web members are not serving
	primary bool         // an alive db node of the region claims the primary role
	epoch   uint64       // highest epoch among the region's alive db nodes
}

// healthy is the raw verdict of one snapshot, before hold-down.
func (o regionObs) healthy() bool { return len(o.web) > 0 }

// observation is one membership snapshot, digested.
type observation struct {
	regions     []regionObs
	othersAlive int // alive members other than this instance
}

// view is an immutable snapshot of everything a query needs; the handler reads it lock-free.
type view struct {
	version         uint64    // bumped whenever states or answers change; the SOA serial
	at              time.Time // when it was computed
	mode            string    // "gossip", or "static" without membership
	failStatic      bool      // no other member alive: this view is frozen
	failStaticSince time.Time
	othersAlive     int
	ttl             uint32 // answer TTL: healthy or degraded
	anyHoldDown     bool
	learning        bool // some region is still answered from the topology plan (startup grace)
	regions         []regionView
	groups          []groupView // [0] = clients in no known subnet, [i+1] = clients of region i
	uniform         bool        // every group gets the same answer: the answer ignores the client
	soa             []dns.RR    // the zone's SOA (TTL and negative TTL = ttl)
	fast            *fastView   // the answers as wire records for the UDP fast path (nil: none)
}

// regionView is one region in a view.
type regionView struct {
	name    string
	state   regionState
	since   time.Time
	reason  string
	web     []netip.Addr
	answer  []dns.RR // <region>.app.Z A RRset; nil unless the region is up
	appRRs  []dns.RR // app.Z A RRset made of this region's web nodes (up or hold-down regions)
	primary bool
	epoch   uint64
}

// groupView is the routing decision for one group of clients.
type groupView struct {
	region int      // chosen region index, -1 for none
	answer []dns.RR // app.Z A RRset to send (nil: NODATA)
	reason string   // e.g. "us-east (nearest)", "us-east down → eu-west"
}

// bootstrapObservation is the topology plan: every region's web nodes at their topology
// addresses. It is served until gossip gives a view, and forever without membership.
func (s *Server) bootstrapObservation() observation {
	obs := observation{regions: make([]regionObs, len(s.regions))}
	for i := range s.regions {
		obs.regions[i] = s.planObs(i)
		if !obs.regions[i].healthy() {
			s.health[i].state = stateDown
			s.health[i].reason = "bootstrap: no web node in the topology"
		}
	}
	return obs
}

// planObs is region i as the topology plans it: its web nodes at their topology addresses.
func (s *Server) planObs(i int) regionObs {
	var o regionObs
	for _, n := range s.cfg.Topology.NodesOf(topology.RoleWeb, s.regions[i]) {
		o.web = append(o.web, n.IP)
		o.seen++
	}
	slices.SortFunc(o.web, netip.Addr.Compare)
	return o
}

// observe digests a membership snapshot.
func (s *Server) observe(members []gossip.Member) observation {
	obs := observation{regions: make([]regionObs, len(s.regions))}
	for _, m := range members {
		if m.Name == s.instance {
			continue
		}
		if m.Alive() {
			obs.othersAlive++
		}
		region, role := m.Meta.Region, m.Meta.Role
		if tn, ok := s.topoNodes[m.Name]; ok {
			if region == "" {
				region = tn.Region
			}
			if role == "" {
				role = tn.Role
			}
		}
		ri := slices.Index(s.regions, region)
		if ri < 0 {
			continue
		}
		o := &obs.regions[ri]
		switch role {
		case topology.RoleWeb:
			o.seen++
			switch {
			case !m.Alive():
				o.notes = append(o.notes, m.Name+" "+string(m.State))
			case m.Meta.Leaving:
				o.notes = append(o.notes, m.Name+" leaving")
			case !m.Meta.Healthy:
				o.notes = append(o.notes, m.Name+" unhealthy")
			default:
				ip, ok := s.webIP(m)
				if !ok {
					o.notes = append(o.notes, m.Name+" has no address")
					continue
				}
				o.web = append(o.web, ip)
			}
		case topology.RoleDB:
			if m.Alive() {
				o.primary = o.primary || m.Meta.Primary
				o.epoch = max(o.epoch, m.Meta.Epoch)
			}
		}
	}
	for i := range obs.regions {
		slices.SortFunc(obs.regions[i].web, netip.Addr.Compare)
		obs.regions[i].web = slices.Compact(obs.regions[i].web)
	}
	return obs
}

// webIP is a web member's answer address: the host of Meta.Service, else its topology address.
func (s *Server) webIP(m gossip.Member) (netip.Addr, bool) {
	if m.Meta.Service != "" {
		if ap, err := netip.ParseAddrPort(m.Meta.Service); err == nil {
			return ap.Addr().Unmap(), true
		}
		if a, err := netip.ParseAddr(m.Meta.Service); err == nil {
			return a.Unmap(), true
		}
		if host, _, err := net.SplitHostPort(m.Meta.Service); err == nil {
			if a, err := netip.ParseAddr(host); err == nil {
				return a.Unmap(), true
			}
		}
	}
	if n, ok := s.topoWeb[m.Name]; ok {
		return n.IP, true
	}
	return netip.Addr{}, false
}

// recompute applies a fresh membership snapshot to the health policy and publishes a new view.
func (s *Server) recompute() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	now := s.now()
	obs := s.observe(s.cfg.Members.Members())
	cur := s.view.Load()
	if obs.othersAlive == 0 {
		// Cut off from everyone: our view of the others says nothing about them, so keep the
		// last known good answers rather than fail every region.
		if !cur.failStatic {
			frozen := *cur
			frozen.failStatic, frozen.failStaticSince, frozen.othersAlive = true, now, 0
			s.view.Store(&frozen)
			s.logger.Warn("fail-static: no other alive member; serving the last known good view", "instance", s.instance)
		}
		return
	}
	if cur.failStatic {
		s.logger.Info("fail-static over: members visible again", "instance", s.instance, "others_alive", obs.othersAlive)
	}
	changed := false
	learning := false
	for i := range s.health {
		h := &s.health[i]
		if !h.seen && obs.regions[i].healthy() {
			h.seen = true // first sight: admitted as it stands; hold-down is for a region coming back
		}
		if !h.seen && now.Before(s.learnUntil) {
			// Still starting: gossip has not shown the region healthy yet (its web nodes may not
			// have joined or become healthy). Answer it from the plan, by proximity, rather than
			// fail it and send its users across the world.
			obs.regions[i] = s.planObs(i)
			h.reason = "starting: not yet seen healthy in gossip; answered from the topology plan"
			learning = true
			continue
		}
		changed = s.step(i, obs.regions[i], now) || changed
	}
	v := s.buildView(now, obs, cur.version)
	v.learning = learning
	if changed || !sameAnswers(cur, v) {
		v.version = cur.version + 1
		v.soa = s.soaRR(v.version, v.ttl)
	}
	v.fast = newFastView(v) // after the final SOA: the wire records include it
	s.view.Store(v)
}

// step advances one region's state machine; it reports whether the state changed.
func (s *Server) step(i int, o regionObs, now time.Time) bool {
	h := &s.health[i]
	from := h.state
	switch h.state {
	case stateUp:
		if !o.healthy() {
			h.state, h.since = stateDown, now
		}
	case stateDown:
		if o.healthy() {
			h.state, h.since = stateHoldDown, now
			if s.holdDown <= 0 {
				h.state = stateUp
			}
		}
	case stateHoldDown:
		if !o.healthy() {
			h.state, h.since = stateDown, now
		} else if now.Sub(h.since) >= s.holdDown {
			h.state, h.since = stateUp, now
		}
	}
	switch {
	case h.state == stateDown && len(o.notes) > 0:
		h.reason = "no web node alive and healthy: " + strings.Join(o.notes, ", ")
	case h.state == stateDown:
		h.reason = "no web node in gossip"
	case h.state == stateHoldDown:
		h.reason = strconv.Itoa(len(o.web)) + "/" + strconv.Itoa(o.seen) + " web healthy; hold-down " + s.holdDown.String()
	default:
		h.reason = strconv.Itoa(len(o.web)) + "/" + strconv.Itoa(o.seen) + " web healthy"
	}
	if h.state == from {
		return false
	}
	s.metrics.transitions.WithLabelValues(s.regions[i], h.state.String()).Inc()
	s.logger.Info("region state change", "instance", s.instance, "region", s.regions[i],
		"from", from.String(), "to", h.state.String(), "reason", h.reason)
	return true
}

// sameAnswers reports whether two views answer every query the same way.
func sameAnswers(a, b *view) bool {
	if a.ttl != b.ttl || len(a.regions) != len(b.regions) {
		return false
	}
	for i := range a.regions {
		if a.regions[i].state != b.regions[i].state || !slices.Equal(a.regions[i].web, b.regions[i].web) {
			return false
		}
	}
	return true
}

// buildView turns the health state and a snapshot into ready-made answers.
func (s *Server) buildView(now time.Time, obs observation, version uint64) *view {
	v := &view{version: version, at: now, mode: "gossip", othersAlive: obs.othersAlive, ttl: s.ttl}
	v.regions = make([]regionView, len(s.regions))
	for _, h := range s.health {
		if h.state != stateUp {
			v.ttl = s.degraded
		}
		v.anyHoldDown = v.anyHoldDown || h.state == stateHoldDown
	}
	for i, h := range s.health {
		o := obs.regions[i]
		rv := regionView{name: s.regions[i], state: h.state, since: h.since, reason: h.reason,
			web: o.web, primary: o.primary, epoch: o.epoch}
		if h.state != stateDown {
			rv.appRRs = aRRset(s.appName, o.web, v.ttl)
		}
		if h.state == stateUp {
			rv.answer = aRRset(s.regions[i]+".app."+s.zone, o.web, v.ttl)
		}
		v.regions[i] = rv
	}
	v.groups = make([]groupView, len(s.regions)+1)
	order := make([]int, 0, len(s.regions))
	for g := range v.groups {
		order = order[:0]
		if g > 0 {
			order = append(order, g-1)
		}
		for i := range s.regions {
			if i != g-1 {
				order = append(order, i)
			}
		}
		v.groups[g] = route(v.regions, order, g == 0)
	}
	v.uniform = true
	for _, g := range v.groups[1:] {
		v.uniform = v.uniform && g.region == v.groups[0].region
	}
	v.soa = s.soaRR(version, v.ttl)
	return v
}

// route picks the first admitted region in order; with none admitted the answer is empty. A
// region in hold-down is never served, even when it is the only healthy one: an instance that
// was cut off sees every region come back at once, and must not send users to a region that has
// not stayed healthy for the hold-down (its database may just have caught up, or not yet).
func route(regions []regionView, order []int, defaultOrder bool) groupView {
	pick := func(want regionState) int {
		for _, i := range order {
			if regions[i].state == want {
				return i
			}
		}
		return -1
	}
	chosen := pick(stateUp)
	var b strings.Builder
	for _, i := range order {
		if i == chosen {
			break
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(regions[i].name + " " + regions[i].state.String())
	}
	g := groupView{region: chosen}
	switch {
	case chosen < 0:
		g.reason = "no healthy region (" + b.String() + ")"
	case b.Len() == 0 && defaultOrder:
		g.reason = regions[chosen].name + " (default order)"
	case b.Len() == 0:
		g.reason = regions[chosen].name + " (nearest)"
	default:
		g.reason = b.String() + " → " + regions[chosen].name
		if defaultOrder {
			g.reason += " (default order)"
		}
	}
	if chosen >= 0 {
		g.answer = regions[chosen].appRRs
	}
	return g
}

// aRRset builds an A RRset; the slice is capped so no append can write into a shared array.
func aRRset(owner string, addrs []netip.Addr, ttl uint32) []dns.RR {
	rrs := make([]dns.RR, 0, len(addrs))
	for _, a := range addrs {
		if a.Is4() {
			rrs = append(rrs, &dns.A{Hdr: hdr(owner, dns.TypeA, ttl), A: a.AsSlice()})
		}
	}
	if len(rrs) == 0 {
		return nil
	}
	return rrs[:len(rrs):len(rrs)]
}

// soaRR is the zone's SOA; its TTL and MINIMUM follow the answer TTL so negative answers are not
// cached longer than positive ones while a region is degraded.
func (s *Server) soaRR(serial uint64, ttl uint32) []dns.RR {
	mname := "ns." + s.zone
	if len(s.nsRRs) > 0 {
		mname = s.nsRRs[0].(*dns.NS).Ns
	}
	return []dns.RR{&dns.SOA{
		Hdr:     hdr(s.zone, dns.TypeSOA, ttl),
		Ns:      mname,
		Mbox:    "hostmaster." + s.zone,
		Serial:  uint32(serial),
		Refresh: 60,
		Retry:   30,
		Expire:  600,
		Minttl:  ttl,
	}}
}

// statusLines renders _status: one line per region, the routing decisions, the querying client's
// own decision and this instance's state. TXT data is octets that dig shows escaped, so lines are
// ASCII ("->" for the query log's "→") and free-text reasons come last, unquoted.
func (s *Server) statusLines(v *view, now time.Time, you string) []string {
	lines := make([]string, 0, 2*len(v.regions)+3)
	for _, r := range v.regions {
		lines = append(lines, "region="+r.name+
			" healthy="+strconv.FormatBool(r.state == stateUp)+
			" primary="+strconv.FormatBool(r.primary)+
			" epoch="+strconv.FormatUint(r.epoch, 10)+
			" since="+since(now, r.since)+
			" state="+r.state.String()+
			" web="+joinAddrs(r.web)+
			" reason="+r.reason)
	}
	for g, gv := range v.groups {
		clients := "unknown"
		if g > 0 {
			clients = v.regions[g-1].name
		}
		answer := "none"
		if gv.region >= 0 {
			answer = v.regions[gv.region].name
		}
		lines = append(lines, "route clients="+clients+" answer="+answer+" reason="+gv.reason)
	}
	if you != "" {
		lines = append(lines, "you "+you)
	}
	inst := "instance=" + s.instance + " region=" + s.region +
		" fail_static=" + strconv.FormatBool(v.failStatic) +
		" others_alive=" + strconv.Itoa(v.othersAlive) +
		" ttl=" + strconv.FormatUint(uint64(v.ttl), 10) + "s" +
		" version=" + strconv.FormatUint(v.version, 10) +
		" mode=" + v.mode
	if v.failStatic {
		inst += " fail_static_since=" + since(now, v.failStaticSince) +
			" reason=no other alive member: serving the last known good view"
	}
	lines = append(lines, inst)
	for i, l := range lines {
		l = strings.ReplaceAll(l, "→", "->")
		if len(l) > 255 { // one TXT string holds at most 255 octets
			l = l[:252] + "..."
		}
		lines[i] = l
	}
	return lines
}

// since formats the time since t with 0.1 s precision, e.g. 12.3s.
func since(now, t time.Time) string {
	return strconv.FormatFloat(now.Sub(t).Seconds(), 'f', 1, 64) + "s"
}

// joinAddrs lists addresses comma-separated ("-" for none).
func joinAddrs(as []netip.Addr) string {
	if len(as) == 0 {
		return "-"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}
