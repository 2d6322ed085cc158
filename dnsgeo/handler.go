package dnsgeo

import (
	"encoding/binary"
	"math/bits"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// clientHow says where the address used for routing came from.
type clientHow uint8

const (
	howNone       clientHow = iota // not routed (answer does not depend on the client)
	howSource                      // no ECS: the packet's source address
	howECS                         // the ECS address
	howECSPrivate                  // ECS address private (RFC 1918/4193), ignored: source address
	howECSZero                     // ECS source prefix 0 ("don't use my address"): source address
)

// queryInfo is what the handler learned about one query, for metrics and the query log. It lives
// on the stack of ServeDNS.
type queryInfo struct {
	rcode  int
	region int // answering region index, -1 for none
	group  int // routing group (view.groups index), -1 when not routed
	subnet int // matched client subnet (Server.subnets index), -1 for none
	how    clientHow
	client netip.Addr // address the route was chosen by
	hasECS bool
	ecs    ecsOption
	scope  uint8
	note   string // reason for answers that are not a routing decision
}

// ServeDNS answers one query. The hot path (app.Z A) reads the current view without locks,
// classifies the client against a handful of prefixes and sends a precomputed RRset.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r.Response {
		return // never answer a response: no loops, no reflection
	}
	q := queryInfo{region: -1, group: -1, subnet: -1}
	v := s.view.Load()
	m := s.respond(w, r, v, &q)
	if err := w.WriteMsg(m); err != nil {
		s.logger.Debug("write dns reply", "err", err)
	}
	s.metrics.count(q.rcode, q.region)
	if s.qlog != nil {
		s.qlog.write(s, w, r, v, &q)
	}
}

// respond builds the reply.
func (s *Server) respond(w dns.ResponseWriter, r *dns.Msg, v *view, q *queryInfo) *dns.Msg {
	m := &dns.Msg{}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	if len(r.Question) == 1 {
		m.Question = r.Question[:1:1]
	}
	if r.Opcode != dns.OpcodeQuery {
		q.note = "opcode not implemented"
		return s.finish(w, r, m, nil, dns.RcodeNotImplemented, q)
	}
	if len(r.Question) != 1 {
		q.note = "question count is not 1"
		return s.finish(w, r, m, nil, dns.RcodeFormatError, q)
	}
	opt, rcode := readEDNS(r, q)
	if rcode != dns.RcodeSuccess {
		return s.finish(w, r, m, opt, rcode, q)
	}
	question := r.Question[0]
	switch question.Qclass {
	case dns.ClassINET:
		rcode = s.answerIN(w, m, v, question, q)
	case dns.ClassCHAOS:
		rcode = s.answerChaos(m, question, q)
	default:
		q.note = "class not served"
		rcode = dns.RcodeRefused
	}
	return s.finish(w, r, m, opt, rcode, q)
}

// finish sets the rcode, adds the OPT record (with the ECS echo) and fits the reply to the
// transport: UDP replies are truncated (TC) to the client's buffer (512 without EDNS).
func (s *Server) finish(w dns.ResponseWriter, r, m *dns.Msg, opt *dns.OPT, rcode int, q *queryInfo) *dns.Msg {
	m.Rcode = rcode
	q.rcode = rcode
	if opt != nil {
		if q.hasECS && rcode != dns.RcodeFormatError && rcode != dns.RcodeBadVers {
			// The option's backing array is the request's; reusing it avoids an allocation.
			opt.Option = append(opt.Option[:0], q.ecs.setScope(q.scope))
		}
		if len(m.Extra) == 0 {
			// The request's additional section held this OPT, so its array has room: reuse it.
			m.Extra = append(r.Extra[:0], opt)
		} else {
			m.Extra = append(m.Extra, opt) // shared slices are capped, so this copies
		}
	}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		m.Compress = len(m.Answer)+len(m.Ns)+len(m.Extra) > 8
		return m
	}
	size := dns.MinMsgSize
	if opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	if maxLen(m) <= size {
		m.Compress = false // fits uncompressed: skip Truncate's work (it packs options to size them)
		return m
	}
	m.Truncate(size)
	return m
}

// maxLen is an upper bound of the reply's uncompressed wire length, computed without packing
// (dns.Msg.Len packs EDNS options to measure them, which allocates).
func maxLen(m *dns.Msg) int {
	const headerLen, questionFixed, optFixed, optionHeader = 12, 4, 11, 4
	l := headerLen
	for _, q := range m.Question {
		l += len(q.Name) + 2 + questionFixed // presentation length + 2 bounds the wire length
	}
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			opt, ok := rr.(*dns.OPT)
			if !ok {
				l += dns.Len(rr)
				continue
			}
			l += optFixed
			for _, o := range opt.Option {
				switch o := o.(type) {
				case *dns.EDNS0_LOCAL:
					l += optionHeader + len(o.Data)
				case *dns.EDNS0_SUBNET:
					l += optionHeader + 4 + (int(o.SourceNetmask)+7)/8
				default:
					return 1 << 16 // unknown option: let Truncate measure it
				}
			}
		}
	}
	return l
}

// readEDNS finds the OPT record and the ECS option and turns the request's OPT into the reply's
// (same UDP size and DO bit, version 0, no options yet). A non-success rcode means stop here.
func readEDNS(r *dns.Msg, q *queryInfo) (*dns.OPT, int) {
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				q.note = "more than one OPT record"
				return nil, dns.RcodeFormatError // RFC 6891 §6.1.1
			}
			opt = o
		}
	}
	if opt == nil {
		return nil, dns.RcodeSuccess
	}
	version := opt.Version()
	rcode := dns.RcodeSuccess
	if version != 0 {
		q.note = "unsupported EDNS version"
		rcode = dns.RcodeBadVers
	} else {
		for _, o := range opt.Option {
			var e ecsOption
			var err error
			switch o := o.(type) {
			case *dns.EDNS0_LOCAL:
				if o.Code != ecsWireCode {
					continue
				}
				e, err = parseECSWire(o.Data)
				e.local = o
			case *dns.EDNS0_SUBNET:
				e, err = parseECSSubnet(o)
			default:
				continue
			}
			if err == nil && q.hasECS {
				err = errECSDuplicate
			}
			if err != nil {
				q.hasECS = false
				q.note = err.Error()
				rcode = dns.RcodeFormatError
				break
			}
			q.ecs, q.hasECS = e, true
		}
	}
	// Reuse the request's OPT as the reply's: it already carries the client's UDP size and DO bit
	// (RFC 3225: DO is copied), so only the rest is reset.
	opt.Hdr.Name = "."
	opt.Hdr.Rrtype = dns.TypeOPT
	opt.Hdr.Ttl &= 0x8000 // keep DO; extended rcode (set on pack), version 0, other flags 0
	opt.Hdr.Rdlength = 0
	if opt.UDPSize() < dns.MinMsgSize {
		opt.SetUDPSize(dns.MinMsgSize)
	}
	opt.Option = opt.Option[:0]
	return opt, rcode
}

// answerIN answers class IN questions.
func (s *Server) answerIN(w dns.ResponseWriter, m *dns.Msg, v *view, question dns.Question, q *queryInfo) int {
	entry, inZone := s.lookup(question.Name)
	if !inZone {
		q.note = "outside the zone"
		return dns.RcodeRefused
	}
	m.Authoritative = true
	qtype := question.Qtype
	switch entry.kind {
	case kindApex:
		switch qtype {
		case dns.TypeSOA:
			m.Answer = v.soa
		case dns.TypeNS:
			m.Answer = s.nsRRs
			m.Extra = s.glue
		case dns.TypeANY:
			m.Answer = s.hinfo // RFC 8482 §4.2
		default:
			m.Ns = v.soa
		}
		return dns.RcodeSuccess
	case kindApp:
		if qtype != dns.TypeA && qtype != dns.TypeANY {
			m.Ns = v.soa
			q.note = "no data of this type"
			return dns.RcodeSuccess
		}
		s.route(remoteIP(w.RemoteAddr()), v, q)
		if a := v.groups[q.group].answer; a != nil {
			m.Answer = a
		} else {
			m.Ns = v.soa
		}
		return dns.RcodeSuccess
	case kindRegionApp:
		rv := &v.regions[entry.index]
		q.note = rv.name + " " + rv.state.String()
		if (qtype == dns.TypeA || qtype == dns.TypeANY) && rv.answer != nil {
			m.Answer = rv.answer
			q.region = entry.index
		} else {
			m.Ns = v.soa
		}
		return dns.RcodeSuccess
	case kindNS:
		if qtype == dns.TypeA || qtype == dns.TypeANY {
			m.Answer = s.glue[entry.index : entry.index+1 : entry.index+1]
		} else {
			m.Ns = v.soa
		}
		return dns.RcodeSuccess
	case kindStatus:
		if qtype == dns.TypeTXT || qtype == dns.TypeANY {
			m.Answer = s.statusRRs(w, v, q)
		} else {
			m.Ns = v.soa
		}
		return dns.RcodeSuccess
	}
	q.note = "no such name"
	m.Ns = v.soa
	return dns.RcodeNameError
}

// answerChaos answers the CHAOS-class identity names.
func (s *Server) answerChaos(m *dns.Msg, question dns.Question, q *queryInfo) int {
	var rrs []dns.RR
	switch {
	case equalFold(question.Name, "id.server."):
		rrs = s.chaosID
	case equalFold(question.Name, "hostname.bind."):
		rrs = s.chaosHB
	default:
		q.note = "chaos name not served"
		return dns.RcodeRefused
	}
	m.Authoritative = true
	if question.Qtype == dns.TypeTXT || question.Qtype == dns.TypeANY {
		m.Answer = rrs
	}
	q.note = "chaos identity"
	return dns.RcodeSuccess
}

// route decides which address the client (whose packet came from src) is routed by and which
// group it falls in, and sets the ECS scope: the prefix length the answer depends on.
func (s *Server) route(src netip.Addr, v *view, q *queryInfo) {
	q.client, q.how = src, howSource
	var privateBits uint8
	if q.hasECS {
		switch {
		case q.ecs.family == 0 || q.ecs.source == 0:
			q.how = howECSZero // RFC 7871 §7.5: answer, but by the source address, scope 0
		default:
			if private, bits := isPrivate(q.ecs.addr); private {
				q.how, privateBits = howECSPrivate, bits
			} else {
				q.client, q.how = q.ecs.addr, howECS
			}
		}
	}
	group, subnet, depends := s.classify(q.client)
	q.group, q.subnet = group, subnet
	q.region = v.groups[group].region
	switch {
	case !q.hasECS || v.uniform || v.groups[group].answer == nil:
		q.scope = 0 // the answer is the same for every client (or negative)
	case q.how == howECS:
		q.scope = depends
	case q.how == howECSPrivate:
		q.scope = privateBits // RFC 7871 §10: scope covering the private range
	default:
		q.scope = 0
	}
}

// classify finds the client's group (0 = no known subnet, i+1 = region i's clients), the matched
// subnet and the prefix length the decision depends on: the matched subnet's length, or for an
// unknown client the shortest prefix around it that overlaps no configured subnet.
func (s *Server) classify(client netip.Addr) (group, subnet int, depends uint8) {
	if !client.IsValid() {
		return 0, -1, 0
	}
	for i := range s.subnets {
		if s.subnets[i].prefix.Contains(client) {
			return s.subnets[i].region + 1, i, uint8(s.subnets[i].prefix.Bits())
		}
	}
	for i := range s.subnets {
		p := s.subnets[i].prefix
		if p.Addr().Is4() != client.Is4() {
			continue
		}
		if c := commonBits(client, p.Addr()) + 1; c > int(depends) {
			depends = uint8(c)
		}
	}
	return 0, -1, depends
}

// commonBits is the number of leading bits two same-family addresses share.
func commonBits(a, b netip.Addr) int {
	if a.Is4() {
		x, y := a.As4(), b.As4()
		return bits.LeadingZeros32(binary.BigEndian.Uint32(x[:]) ^ binary.BigEndian.Uint32(y[:]))
	}
	x, y := a.As16(), b.As16()
	hi := binary.BigEndian.Uint64(x[:8]) ^ binary.BigEndian.Uint64(y[:8])
	if hi != 0 {
		return bits.LeadingZeros64(hi)
	}
	return 64 + bits.LeadingZeros64(binary.BigEndian.Uint64(x[8:])^binary.BigEndian.Uint64(y[8:]))
}

// remoteIP is the client's address from the ResponseWriter.
func remoteIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// lookup finds a name of the zone, case-insensitively, without allocating for short names;
// inZone is false for names outside the zone.
func (s *Server) lookup(name string) (entry nameEntry, inZone bool) {
	var buf [256]byte
	if len(name) > len(buf) {
		return nameEntry{}, false // longer than any DNS name
	}
	lower := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if e, ok := s.names[string(lower)]; ok { // the compiler does not allocate for this lookup
		return e, true
	}
	z := s.zone
	if len(lower) > len(z) && lower[len(lower)-len(z)-1] == '.' && string(lower[len(lower)-len(z):]) == z {
		return nameEntry{kind: kindNone}, true
	}
	return nameEntry{}, false
}

// equalFold compares ASCII names case-insensitively.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// statusRRs renders _status as TXT records (TTL 0: it changes every second). It includes the
// querying client's own routing decision; with TTL 0 nothing caches it, so scope 0 is harmless.
func (s *Server) statusRRs(w dns.ResponseWriter, v *view, q *queryInfo) []dns.RR {
	var probe queryInfo = *q
	s.route(remoteIP(w.RemoteAddr()), v, &probe)
	you := "client=" + probe.client.String() + " decision=" + s.routeReason(v, &probe)
	lines := s.statusLines(v, s.now(), you)
	rrs := make([]dns.RR, len(lines))
	for i, l := range lines {
		rrs[i] = &dns.TXT{Hdr: hdr("_status."+s.zone, dns.TypeTXT, 0), Txt: []string{l}}
	}
	q.note = "status"
	return rrs
}
