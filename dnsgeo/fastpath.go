package dnsgeo

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// Fast path for the hot queries on the batched UDP path.
//
// Almost every query a GeoDNS sees is app.Z A (or <region>.app.Z A, or an AAAA probe for either),
// with or without an OPT record that carries ECS. For those, unpacking the query into a dns.Msg
// and packing the reply cost more CPU than the decision itself (and a dozen allocations), so the
// batched UDP reader first offers each packet to fastReply: it checks the wire query directly,
// picks the answer from the current view and writes the reply from the view's precomputed wire
// records, echoing the query's id, RD/CD flags, question bytes and ECS option (with the scope the
// slow path would set). Anything it does not recognise as exactly one of those shapes is left to
// the slow path (miekg/dns unpack + ServeDNS + pack) untouched, so the fast path never has to
// reproduce an error reply.
//
// The reply must be byte-for-byte what the slow path sends for the same packet; TestFastPath*
// and FuzzHandler compare the two. What that takes, and why each fallback exists:
//
//   - Header: QR=0 and opcode QUERY; QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT 0 or 1. The slow
//     path's reply copies only ID, opcode, RD and CD, and sets QR and AA (in-zone IN answers);
//     every other request bit (TC, AA, RA, Z, AD, the rcode nibble) is ignored by both.
//   - Question: an uncompressed name made of plain labels ([A-Za-z0-9_-], so that miekg/dns's
//     presentation form has no escapes and its length is the wire length - 1), class IN, type A
//     or AAAA, and the name is app.Z or <region>.app.Z (case-insensitively, through the same
//     Server.names map the slow path uses). The question is echoed byte for byte, as the slow
//     path's unpack/pack round trip does for such names (case included).
//   - OPT (when ARCOUNT=1): owner root, version 0, options only ECS (validated by the same
//     parseECSWire; at most one) and options miekg/dns unpacks without ever failing (NSID,
//     COOKIE, PADDING): other option codes may make miekg/dns reject the whole message. The
//     reply's OPT is what readEDNS/finish make of it: UDP size max(request, 512), DO kept, every
//     other TTL bit zero, and only the ECS option, echoed with the scope set.
//   - The packet ends exactly where the last section ends (miekg/dns ignores trailing bytes; we
//     leave those rare packets to it rather than reason about them).
//   - Size: the slow path only sends an uncompressed reply when its size bound (maxLen: here one
//     octet over the wire length) fits the client's buffer; otherwise it truncates or
//     compresses, so the fast path computes the same bound and falls back.
//   - The query log needs per-query reasons, so with a query log every query takes the slow path.
//
// Metrics: the reader counts every fast reply as ServeDNS would (rcode NOERROR, answering region);
// the Prometheus counters it increments are atomics resolved at New.

// fastView holds a view's answers as wire records, built when the view is published.
type fastView struct {
	groups  []fastAnswer // app.Z A per routing group (view.groups)
	regions []fastAnswer // <region>.app.Z A per region (view.regions)
	nodata  fastAnswer   // NOERROR with the SOA in the authority section
}

// fastAnswer is one answer: the records of the answer or authority section as miekg/dns packs
// them without compression (how the slow path sends every reply that fits), back to back.
type fastAnswer struct {
	wire    []byte
	ancount uint16
	nscount uint16
	region  int // region counted in metrics: -1 for none
	maxLen  int // what these records add to the slow path's maxLen (dns.Len of each)
}

// newFastView packs v's answers. It returns nil (every query takes the slow path) if a record
// does not pack, which would make the slow path answer differently anyway.
func newFastView(v *view) *fastView {
	fv := &fastView{groups: make([]fastAnswer, len(v.groups)), regions: make([]fastAnswer, len(v.regions))}
	var ok bool
	if fv.nodata, ok = packFastAnswer(nil, v.soa, -1); !ok {
		return nil
	}
	for g, gv := range v.groups {
		fv.groups[g] = fv.nodata
		if gv.answer != nil {
			if fv.groups[g], ok = packFastAnswer(gv.answer, nil, gv.region); !ok {
				return nil
			}
		}
		// A chosen region without IPv4 web nodes answers NODATA, but is still counted as the
		// answering region, as route() sets it.
		fv.groups[g].region = gv.region
	}
	for i, rv := range v.regions {
		fv.regions[i] = fv.nodata
		if rv.answer != nil {
			if fv.regions[i], ok = packFastAnswer(rv.answer, nil, i); !ok {
				return nil
			}
		}
	}
	return fv
}

// packFastAnswer packs answer and authority records with miekg/dns itself (a dns.Msg with only
// those sections, uncompressed), so the bytes are the ones the slow path would write.
func packFastAnswer(answer, ns []dns.RR, region int) (fastAnswer, bool) {
	const headerLen = 12
	m := &dns.Msg{Answer: answer, Ns: ns}
	wire, err := m.Pack()
	if err != nil || len(wire) < headerLen {
		return fastAnswer{}, false
	}
	a := fastAnswer{wire: wire[headerLen:], ancount: uint16(len(answer)), nscount: uint16(len(ns)), region: region}
	for _, rr := range answer {
		a.maxLen += dns.Len(rr)
	}
	for _, rr := range ns {
		a.maxLen += dns.Len(rr)
	}
	return a, true
}

// Wire constants of the fast path.
const (
	fastHeaderLen = 12
	flagQR        = 1 << 15
	flagAA        = 1 << 10
	flagRD        = 1 << 8
	flagCD        = 1 << 4
	opcodeMask    = 0xf << 11
	optFixedLen   = 11 // root owner, type, class, TTL, RDLENGTH
	optionHdrLen  = 4
)

// fastQuery is what fastParse learned from a packet.
type fastQuery struct {
	qend    int // end of the question section
	qtype   uint16
	entry   nameEntry
	hasOPT  bool
	udpSize uint16 // the reply's (request's, at least 512)
	do      bool
	hasECS  bool
	ecs     ecsOption
	ecsData []byte // the request's ECS option body (echoed with the scope byte set)
}

// fastParse checks that pkt is one of the query shapes the fast path answers and returns what
// the answer needs. ok false means: leave it to the slow path.
func (s *Server) fastParse(pkt []byte) (q fastQuery, ok bool) {
	if len(pkt) < fastHeaderLen {
		return q, false
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&flagQR != 0 || flags&opcodeMask != 0 {
		return q, false // responses are ignored, other opcodes answered NOTIMP: slow path
	}
	if binary.BigEndian.Uint16(pkt[4:]) != 1 || binary.BigEndian.Uint16(pkt[6:]) != 0 ||
		binary.BigEndian.Uint16(pkt[8:]) != 0 {
		return q, false
	}
	arcount := binary.BigEndian.Uint16(pkt[10:])
	if arcount > 1 {
		return q, false
	}

	// The question name, lower-cased into its presentation form for the Server.names lookup.
	var name [256]byte
	n := 0
	off := fastHeaderLen
	for {
		if off >= len(pkt) {
			return q, false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) || n+l+1 > 254 {
			return q, false // pointer, reserved label type, or longer than any name we serve
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				return q, false // would be escaped in presentation form
			}
			name[n] = c
			n++
		}
		name[n] = '.'
		n++
		off += l
	}
	if n == 0 || off+4 > len(pkt) {
		return q, false
	}
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	if q.qtype != dns.TypeA && q.qtype != dns.TypeAAAA || binary.BigEndian.Uint16(pkt[off+2:]) != dns.ClassINET {
		return q, false
	}
	off += 4
	q.qend = off
	entry, found := s.names[string(name[:n])] // no allocation for a map lookup
	if !found || entry.kind != kindApp && entry.kind != kindRegionApp {
		return q, false
	}
	q.entry = entry

	if arcount == 0 {
		return q, off == len(pkt)
	}
	// The OPT record: root owner, TYPE 41, CLASS = UDP size, TTL = ext-rcode, version, flags.
	if off+optFixedLen > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != dns.TypeOPT {
		return q, false
	}
	q.hasOPT = true
	q.udpSize = max(binary.BigEndian.Uint16(pkt[off+3:]), dns.MinMsgSize)
	if pkt[off+6] != 0 {
		return q, false // EDNS version other than 0: BADVERS
	}
	q.do = pkt[off+7]&0x80 != 0
	rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
	off += optFixedLen
	if off+rdlen != len(pkt) {
		return q, false
	}
	for off < len(pkt) {
		if off+optionHdrLen > len(pkt) {
			return q, false
		}
		code := binary.BigEndian.Uint16(pkt[off:])
		olen := int(binary.BigEndian.Uint16(pkt[off+2:]))
		off += optionHdrLen
		if off+olen > len(pkt) {
			return q, false
		}
		data := pkt[off : off+olen]
		off += olen
		switch code {
		case dns.EDNS0SUBNET:
			e, err := parseECSWire(data)
			if err != nil || q.hasECS {
				return q, false // FORMERR
			}
			q.hasECS, q.ecs, q.ecsData = true, e, data
		case dns.EDNS0NSID, dns.EDNS0COOKIE, dns.EDNS0PADDING:
			// miekg/dns unpacks these from any body, and the reply drops them.
		default:
			return q, false
		}
	}
	return q, true
}

// fastReply writes the reply to pkt (from src) into buf if pkt is a query the fast path serves,
// and returns it with the region to count it under (ServeDNS counts NOERROR, region); the caller
// counts it. ok false means the slow path must handle pkt (buf is then unchanged). It has no side
// effects, so tests can ask it which path a packet takes.
func (s *Server) fastReply(pkt []byte, src netip.Addr, buf []byte) (reply []byte, region int, ok bool) {
	if s.qlog != nil {
		return nil, -1, false
	}
	v := s.view.Load()
	fv := v.fast
	if fv == nil {
		return nil, -1, false
	}
	q, ok := s.fastParse(pkt)
	if !ok {
		return nil, -1, false
	}

	// The answer, as answerIN chooses it for these names and types.
	ans := &fv.nodata
	var scope uint8
	switch {
	case q.entry.kind == kindApp && q.qtype == dns.TypeA:
		qi := queryInfo{region: -1, group: -1, subnet: -1, hasECS: q.hasECS, ecs: q.ecs}
		s.route(src, v, &qi)
		ans, scope = &fv.groups[qi.group], qi.scope
	case q.entry.kind == kindRegionApp && q.qtype == dns.TypeA:
		ans = &fv.regions[q.entry.index]
	}

	// The slow path sends this reply uncompressed only if maxLen (header, question name length
	// in presentation form + 2, type and class, records, OPT) fits the client's buffer.
	size := dns.MinMsgSize
	optLen := 0
	if q.hasOPT {
		size = int(q.udpSize)
		optLen = optFixedLen
		if q.hasECS {
			optLen += optionHdrLen + len(q.ecsData)
		}
	}
	// The question's presentation name is one octet shorter than its wire form (plain labels),
	// so the question adds (q.qend-fastHeaderLen)+1 to maxLen.
	maxLen := q.qend + 1 + ans.maxLen + optLen
	wireLen := q.qend + len(ans.wire) + optLen
	if maxLen > size || wireLen > cap(buf) {
		return nil, -1, false
	}

	b := buf[:wireLen]
	flags := uint16(flagQR|flagAA) | binary.BigEndian.Uint16(pkt[2:])&(flagRD|flagCD)
	copy(b[0:2], pkt[0:2]) // id
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], ans.ancount)
	binary.BigEndian.PutUint16(b[8:], ans.nscount)
	var arcount uint16
	if q.hasOPT {
		arcount = 1
	}
	binary.BigEndian.PutUint16(b[10:], arcount)
	off := copy(b[fastHeaderLen:q.qend], pkt[fastHeaderLen:q.qend]) + fastHeaderLen
	off += copy(b[off:], ans.wire)
	if q.hasOPT {
		b[off] = 0 // root
		binary.BigEndian.PutUint16(b[off+1:], dns.TypeOPT)
		binary.BigEndian.PutUint16(b[off+3:], q.udpSize)
		var ttlFlags uint32 // extended rcode 0 (NOERROR), version 0, only DO kept
		if q.do {
			ttlFlags = 1 << 15
		}
		binary.BigEndian.PutUint32(b[off+5:], ttlFlags)
		binary.BigEndian.PutUint16(b[off+9:], uint16(optLen-optFixedLen))
		off += optFixedLen
		if q.hasECS {
			binary.BigEndian.PutUint16(b[off:], dns.EDNS0SUBNET)
			binary.BigEndian.PutUint16(b[off+2:], uint16(len(q.ecsData)))
			off += optionHdrLen
			copy(b[off:], q.ecsData)
			b[off+3] = scope // RFC 7871 §7.2.1: all else echoed as sent
		}
	}
	return b, ans.region, true
}
