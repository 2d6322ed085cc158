package dnsgeo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillworks/drill/agents/gossip"
)

// pathPair is two servers with the same plan and membership, each with its own metrics: one
// answers through the batched reader with the fast path, the other with the fast path off (the
// reference: miekg/dns unpack, ServeDNS, pack).
type pathPair struct {
	fast, slow       *Server
	fastReg, slowReg *prometheus.Registry
	fastMem, slowMem *staticMembers
	clock            *fakeClock // shared: both servers see the same hold-down progress
}

func newPathPair(t testing.TB, members []gossip.Member) *pathPair {
	t.Helper()
	p := &pathPair{fastReg: prometheus.NewRegistry(), slowReg: prometheus.NewRegistry(), clock: newFakeClock()}
	mk := func(reg *prometheus.Registry) (*Server, *staticMembers) {
		var mem *staticMembers
		cfg := Config{Topology: testTopology(), Instance: "us-east-dns-1", Registry: reg, Clock: p.clock.Now}
		if members != nil {
			mem = newStaticMembers(members...)
			cfg.Members = mem
		}
		srv, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return srv, mem
	}
	p.fast, p.fastMem = mk(p.fastReg)
	p.slow, p.slowMem = mk(p.slowReg)
	return p
}

// set switches both servers to new members; settle then lets the hold-down pass, so that
// regions healthy again are re-admitted.
func (p *pathPair) set(ms []gossip.Member, settle bool) {
	p.fastMem.Set(ms...)
	p.slowMem.Set(ms...)
	p.fast.Refresh()
	p.slow.Refresh()
	if settle {
		p.clock.Advance(time.Minute)
		p.fast.Refresh()
		p.slow.Refresh()
	}
}

// serveBatched runs one packet through a batched reader of srv, as the UDP loop does, and returns
// the reply (nil for none). The packet is copied: the slow path rewrites it in place.
func serveBatched(srv *Server, slowOnly bool, pkt []byte, from *net.UDPAddr) []byte {
	u := &batchUDP{s: srv, slowOnly: slowOnly}
	w := newBatchWriter(&net.UDPAddr{IP: net.IPv4(127, 92, 0, 1), Port: 53}, 1)
	w.answering(0, from.AddrPort())
	u.serveOne(w, slices.Clone(pkt))
	if len(w.replies) == 0 {
		return nil
	}
	return w.replies[0].buf
}

// compare answers pkt through both paths and fails unless the replies are byte-identical. It
// reports whether the fast path answered.
func (p *pathPair) compare(t testing.TB, pkt []byte, from *net.UDPAddr) (tookFast bool) {
	t.Helper()
	_, _, tookFast = p.fast.fastReply(pkt, remoteIP(from), make([]byte, 0, dns.DefaultMsgSize))
	got := serveBatched(p.fast, false, pkt, from)
	want := serveBatched(p.slow, true, pkt, from)
	if !bytes.Equal(got, want) {
		t.Fatalf("fast path reply differs from the slow path's (fast path taken: %v)\npacket %x\nfrom   %s\n got %x\nwant %x\n%s",
			tookFast, pkt, from, got, want, diffMsgs(got, want))
	}
	return tookFast
}

// diffMsgs shows two replies as dig would, for failure messages.
func diffMsgs(got, want []byte) string {
	show := func(b []byte) string {
		if b == nil {
			return "(no reply)"
		}
		var m dns.Msg
		if err := m.Unpack(b); err != nil {
			return "(unparseable: " + err.Error() + ")"
		}
		return m.String()
	}
	return "--- got:\n" + show(got) + "\n--- want:\n" + show(want)
}

// checkMetrics fails unless both servers counted the same queries by rcode and region.
func (p *pathPair) checkMetrics(t testing.TB) {
	t.Helper()
	counts := func(reg *prometheus.Registry) map[string]float64 {
		out := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "drill_dns_queries_total" && mf.GetName() != "drill_dns_invalid_messages_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
			}
		}
		return out
	}
	got, want := counts(p.fastReg), counts(p.slowReg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metric %s = %v with the fast path, %v without", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("metric %s = %v with the fast path, absent without", k, v)
		}
	}
}

// Sources for the comparisons: each client group, and IPv6 (no subnet).
var fastSources = []*net.UDPAddr{
	{IP: net.ParseIP(srcUSEast), Port: 40000},
	{IP: net.ParseIP(srcEUWest), Port: 40001},
	{IP: net.ParseIP(srcUnknown), Port: 40002},
	{IP: net.ParseIP("::1"), Port: 40003},
	{IP: net.ParseIP("::ffff:" + testNet + ".12.9"), Port: 40004},
}

// manyWebs is allUp plus enough extra us-east web nodes that an app.Z A answer no longer fits
// 512 octets (the slow path then truncates; the fast path must leave it alone).
func manyWebs() []gossip.Member {
	ms := allUp.members()
	for i := range 40 {
		ms = append(ms, member(fmt.Sprintf("us-east-web-x%d", i), "web", "us-east",
			fmt.Sprintf(testNet+".103.%d:8080", i+1), gossip.StateAlive, true))
	}
	return ms
}

// usEastIPv6Only is allUp with us-east's web nodes on IPv6 addresses only: us-east is up and
// chosen, but its app.Z A answer is NODATA.
func usEastIPv6Only() []gossip.Member {
	ms := allUp.members()
	for i := range ms {
		if ms[i].Meta.Role == "web" && ms[i].Meta.Region == "us-east" {
			ms[i].Meta.Service = fmt.Sprintf("[2001:db8::%d]:8080", i)
		}
	}
	return ms
}

// fastStates are the health states the comparisons run in: each changes the view, so each also
// checks that the wire answers follow it.
var fastStates = []struct {
	name    string
	members func() []gossip.Member
	settle  bool        // let the hold-down pass
	usEast  regionState // us-east's state then (checked, so the comparison is not vacuous)
}{
	{"all up", allUp.members, true, stateUp},
	{"us-east down", usEastDown.members, true, stateDown},
	{"us-east back, in hold-down", allUp.members, false, stateHoldDown},
	{"us-east unhealthy", usEastSick.members, true, stateDown},
	{"all down", allDown.members, true, stateDown},
	{"isolated (fail-static: last view)", isolated.members, true, stateDown},
	{"us-east 42 web nodes", manyWebs, true, stateUp},
	{"us-east web nodes IPv6 only", usEastIPv6Only, true, stateUp},
	{"all up again", allUp.members, true, stateUp},
}

// fastTable is a table of hand-written packets: the hot shapes (which must take the fast path)
// and near misses (which must not, or must at least give the same reply).
func fastTable(t testing.TB) []struct {
	name string
	pkt  []byte
	fast bool // the fast path must answer it (in states where the reply fits)
} {
	app, us := "app."+zone, "us-east.app."+zone
	pack := func(m *dns.Msg) []byte {
		m.Id = 0x4242
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	q := func(name string, qtype, size uint16, opts ...dns.EDNS0) []byte {
		return pack(newQuery(name, qtype, size, opts...))
	}
	with := func(b []byte, f func(b []byte) []byte) []byte { return f(slices.Clone(b)) }
	noRD := func(name string) []byte {
		m := newQuery(name, dns.TypeA, 0)
		m.RecursionDesired = false
		m.CheckingDisabled = true
		return pack(m)
	}
	do := func() []byte {
		m := newQuery(app, dns.TypeA, 4096, ecs("198.51.100.0/24"))
		m.IsEdns0().SetDo()
		return pack(m)
	}
	plain := q(app, dns.TypeA, 0)
	withECS := q(app, dns.TypeA, 1232, ecs("203.0.113.0/24"))
	// withECS's OPT record starts after the header and the question (app.drill.test.: 16 octets):
	// its extended rcode is at +5, the version at +6, the flags (DO first) at +7 and +8.
	const opt = 12 + 16 + 4
	return []struct {
		name string
		pkt  []byte
		fast bool
	}{
		{"app A, no EDNS", plain, true},
		{"app A, EDNS without options", q(app, dns.TypeA, 1232), true},
		{"app A, ECS us-east /24", withECS, true},
		{"app A, ECS eu-west /24", q(app, dns.TypeA, 1232, ecs("198.51.100.0/24")), true},
		{"app A, ECS /32 in a subnet", q(app, dns.TypeA, 1232, ecs("203.0.113.77/32")), true},
		{"app A, ECS /20 (shorter than the subnet)", q(app, dns.TypeA, 1232, ecs("203.0.112.0/20")), true},
		{"app A, ECS unknown v4", q(app, dns.TypeA, 1232, ecs("8.8.8.0/24")), true},
		{"app A, ECS v6", q(app, dns.TypeA, 1232, ecs("2001:db8::/56")), true},
		{"app A, ECS RFC 1918", q(app, dns.TypeA, 1232, ecs("10.1.0.0/16")), true},
		{"app A, ECS RFC 4193", q(app, dns.TypeA, 1232, ecs("fd00::/8")), true},
		{"app A, ECS /0", q(app, dns.TypeA, 1232, rawECS(1, 0, 0)), true},
		{"app A, ECS family 0 (old dig)", q(app, dns.TypeA, 1232, rawECS(0, 0, 0)), true},
		{"app A, ECS scope set by the client", q(app, dns.TypeA, 1232, rawECS(1, 24, 16, 203, 0, 113)), true},
		{"app A, ECS + cookie + NSID + padding", q(app, dns.TypeA, 1232,
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}, ecs("203.0.113.0/24"),
			&dns.EDNS0_NSID{Code: dns.EDNS0NSID}, &dns.EDNS0_PADDING{Padding: make([]byte, 12)}), true},
		{"app A, DO bit, 4096", do(), true},
		{"app A, UDP size 100 (→ 512)", q(app, dns.TypeA, 100, ecs("203.0.113.0/24")), true},
		{"app A, no RD, CD", noRD(app), true},
		{"app AAAA", q(app, dns.TypeAAAA, 0), true},
		{"app AAAA with ECS", q(app, dns.TypeAAAA, 1232, ecs("203.0.113.0/24")), true},
		{"APP.DRILL.TEST A (case)", q("ApP.dRiLL.TEST.", dns.TypeA, 1232, ecs("203.0.113.0/24")), true},
		{"us-east.app A", q(us, dns.TypeA, 0), true},
		{"eu-west.app A with ECS", q("eu-west.app."+zone, dns.TypeA, 1232, ecs("203.0.113.0/24")), true},
		{"US-East.App A", q("US-East.App.Drill.Test.", dns.TypeA, 0), true},
		{"us-east.app AAAA", q(us, dns.TypeAAAA, 1232), true},

		{"app ANY", q(app, dns.TypeANY, 0), false},
		{"app TXT", q(app, dns.TypeTXT, 0), false},
		{"apex SOA", q(zone, dns.TypeSOA, 0), false},
		{"_status TXT", q("_status."+zone, dns.TypeTXT, 0), false},
		{"NXDOMAIN", q("nothing."+zone, dns.TypeA, 0), false},
		{"outside the zone", q("app.example.", dns.TypeA, 0), false},
		{"app. prefix of another zone", q("app.drill.test.evil.", dns.TypeA, 0), false},
		{"class CHAOS", with(plain, func(b []byte) []byte { b[len(b)-1] = dns.ClassCHAOS; return b }), false},
		{"opcode NOTIFY", with(plain, func(b []byte) []byte { b[2] |= dns.OpcodeNotify << 3; return b }), false},
		{"opcode UPDATE", with(plain, func(b []byte) []byte { b[2] |= dns.OpcodeUpdate << 3; return b }), false},
		{"response", with(plain, func(b []byte) []byte { b[2] |= 0x80; return b }), false},
		{"query with TC, AA, Z, AD, RA and rcode bits", with(withECS, func(b []byte) []byte { b[2] |= 0x06; b[3] |= 0xef; return b }), true},
		{"two questions", with(plain, func(b []byte) []byte { b[5] = 2; return b }), false},
		{"answer count 1", with(plain, func(b []byte) []byte { b[7] = 1; return b }), false},
		{"trailing garbage", append(slices.Clone(plain), 0xde, 0xad), false},
		{"trailing garbage after OPT", append(slices.Clone(withECS), 0), false},
		{"truncated OPT", withECS[:len(withECS)-3], false},
		{"OPT count but no OPT", with(plain, func(b []byte) []byte { b[11] = 1; return b }), false},
		{"EDNS version 1", with(withECS, func(b []byte) []byte { b[opt+6] = 1; return b }), false},
		{"extended rcode bits in the query's OPT", with(withECS, func(b []byte) []byte { b[opt+5] = 0x7f; return b }), true},
		{"OPT Z flags and DO", with(withECS, func(b []byte) []byte { b[opt+7] = 0xff; b[opt+8] = 0xff; return b }), true},
		{"two ECS options", q(app, dns.TypeA, 1232, ecs("203.0.113.0/24"), ecs("198.51.100.0/24")), false},
		{"ECS bad family", q(app, dns.TypeA, 1232, rawECS(3, 24, 0, 203, 0, 113)), false},
		{"ECS prefix 33", q(app, dns.TypeA, 1232, rawECS(1, 33, 0, 203, 0, 113, 1, 0)), false},
		{"ECS extra address octet", q(app, dns.TypeA, 1232, rawECS(1, 24, 0, 203, 0, 113, 0)), false},
		{"ECS bits beyond the prefix", q(app, dns.TypeA, 1232, rawECS(1, 20, 0, 203, 0, 113)), false},
		{"ECS short", q(app, dns.TypeA, 1232, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: []byte{0, 1, 24}}), false},
		{"TCP keepalive with a bad length", q(app, dns.TypeA, 1232, &dns.EDNS0_LOCAL{Code: dns.EDNS0TCPKEEPALIVE, Data: []byte{1}}), false},
		{"unknown option", q(app, dns.TypeA, 1232, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{0, 1, 24, 0, 203, 0, 113}}), false},
		{"name with an escaped dot", q(`app\.x.`+zone, dns.TypeA, 0), false},
		{"compressed question name", with(plain, func(b []byte) []byte {
			return append(append(b[:12:12], 3, 'a', 'p', 'p', 0xc0, 12), 0, 1, 0, 1) // loops: miekg/dns rejects it
		}), false},
		{"header only", plain[:12], false},
		{"question without type", plain[:len(plain)-4], false},
		{"question without class", plain[:len(plain)-2], false},
	}
}

// TestFastPathMatchesSlowPath: for every packet of the table, from every source, in every health
// state, the fast path's reply is byte-identical to the slow path's, the hot shapes take the fast
// path, and the metrics count the same.
func TestFastPathMatchesSlowPath(t *testing.T) {
	table := fastTable(t)
	p := newPathPair(t, allUp.members())
	for _, st := range fastStates {
		p.set(st.members(), st.settle)
		if got := p.fast.view.Load().regions[0].state; got != st.usEast {
			t.Fatalf("%s: us-east is %s, want %s", st.name, got, st.usEast)
		}
		for _, tc := range table {
			for _, from := range fastSources {
				took := p.compare(t, tc.pkt, from)
				if took && !tc.fast {
					t.Errorf("%s: %s from %s took the fast path", st.name, tc.name, from)
				}
				if tc.fast && !took && st.name != "us-east 42 web nodes" {
					t.Errorf("%s: %s from %s did not take the fast path", st.name, tc.name, from)
				}
			}
		}
		p.checkMetrics(t)
	}
}

// TestFastPathStatic: the same in static mode (no membership).
func TestFastPathStatic(t *testing.T) {
	p := newPathPair(t, nil)
	for _, tc := range fastTable(t) {
		for _, from := range fastSources {
			if took := p.compare(t, tc.pkt, from); took != tc.fast {
				t.Errorf("%s from %s: fast path taken = %v, want %v", tc.name, from, took, tc.fast)
			}
		}
	}
	p.checkMetrics(t)
}

// TestFastPathLargeAnswerFallsBack: an answer that needs truncation is left to the slow path.
func TestFastPathLargeAnswerFallsBack(t *testing.T) {
	p := newPathPair(t, manyWebs())
	from := fastSources[0]
	small := newQuery("app."+zone, dns.TypeA, 0)
	wire, _ := small.Pack()
	if p.compare(t, wire, from) {
		t.Fatal("an answer over 512 octets took the fast path")
	}
	big := newQuery("app."+zone, dns.TypeA, 4096)
	wire, _ = big.Pack()
	if !p.compare(t, wire, from) {
		t.Fatal("an answer that fits the 4096-octet buffer did not take the fast path")
	}
	full := serveBatched(p.fast, false, wire, from)
	serveBatched(p.slow, true, wire, from) // keeps both servers' metrics comparable
	var r dns.Msg
	if err := r.Unpack(full); err != nil || len(r.Answer) != 42 || r.Truncated {
		t.Fatalf("big answer: %d records, TC %v, err %v", len(r.Answer), r.Truncated, err)
	}
	// Around the boundary: the fast path answers exactly when the slow path's bound (one octet
	// over the reply's length) fits the client's buffer, and the replies stay identical.
	for size := len(full) - 3; size <= len(full)+3; size++ {
		q := newQuery("app."+zone, dns.TypeA, uint16(size))
		wire, _ := q.Pack()
		if took, want := p.compare(t, wire, from), size >= len(full)+1; took != want {
			t.Errorf("UDP size %d (reply %d octets): fast path taken = %v, want %v", size, len(full), took, want)
		}
	}
	p.checkMetrics(t)
}

// TestFastPathQueryLogFallsBack: with a query log every query takes the slow path (the log needs
// the per-query reason), and is logged.
func TestFastPathQueryLogFallsBack(t *testing.T) {
	var log syncBuffer
	srv, err := New(Config{Topology: testTopology(), Instance: "us-east-dns-1", QueryLog: &log})
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := newQuery("app."+zone, dns.TypeA, 0).Pack()
	from := fastSources[0]
	if _, _, ok := srv.fastReply(wire, remoteIP(from), make([]byte, 0, 512)); ok {
		t.Fatal("fast path answered with the query log on")
	}
	if serveBatched(srv, false, wire, from) == nil || !strings.Contains(log.String(), `"qname":"app.drill.test."`) {
		t.Fatalf("query not answered or not logged: %q", log.String())
	}
}

// TestFastPathRandomized compares both paths on random packets: mostly well-formed queries of
// random shape (names, case, types, classes, flags, OPT, options, ECS, sizes), some of them then
// cut short, extended or with random bytes flipped.
func TestFastPathRandomized(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	p := newPathPair(t, allUp.members())
	fast := 0
	for i := range n {
		if i%(n/len(fastStates)+1) == 0 {
			st := fastStates[(i/(n/len(fastStates)+1))%len(fastStates)]
			p.set(st.members(), st.settle)
		}
		pkt := randomQuery(rng)
		if p.compare(t, pkt, fastSources[rng.IntN(len(fastSources))]) {
			fast++
		}
	}
	p.checkMetrics(t)
	t.Logf("%d of %d random packets took the fast path", fast, n)
	if fast < n/10 {
		t.Fatalf("only %d of %d random packets took the fast path: the generator misses the hot shapes", fast, n)
	}
}

// randomQuery builds a random, mostly plausible query packet byte by byte.
func randomQuery(rng *rand.Rand) []byte {
	pick := func(n int) bool { return rng.IntN(n) == 0 } // true one time in n
	b := binary.BigEndian.AppendUint16(nil, uint16(rng.Uint32()))
	flags := uint16(0x0100) // RD
	switch rng.IntN(8) {
	case 0:
		flags = uint16(rng.Uint32()) // anything, opcode and QR included
	case 1:
		flags = uint16(rng.Uint32()) &^ (0x8000 | 0x7800) // any query flags
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	optCount := 0
	switch rng.IntN(10) {
	case 0, 1, 2:
	case 3:
		optCount = 2
	default:
		optCount = 1
	}
	counts := [4]uint16{1, 0, 0, uint16(optCount)}
	if pick(20) {
		counts[rng.IntN(4)] = uint16(rng.IntN(3))
	}
	for _, c := range counts {
		b = binary.BigEndian.AppendUint16(b, c)
	}

	hot := []string{"app." + zone, "us-east.app." + zone, "eu-west.app." + zone}
	names := []string{"nowhere.app." + zone, zone, "_status." + zone, "ns-us-east-1." + zone, "x.app." + zone,
		"app.drill.test.evil.", "example.com.", "."}
	name := hot[rng.IntN(len(hot))]
	if pick(4) {
		name = names[rng.IntN(len(names))]
	}
	wire := make([]byte, 256)
	off, err := dns.PackDomainName(name, wire, 0, nil, false)
	if err != nil {
		panic(err)
	}
	wire = wire[:off]
	for i := range wire { // random case (labels are letters, digits, - and _ only)
		if c := wire[i]; 'a' <= c && c <= 'z' && pick(3) {
			wire[i] = c - 'a' + 'A'
		}
	}
	if pick(30) && len(wire) > 2 {
		wire[1+rng.IntN(len(wire)-2)] = byte(rng.IntN(256)) // odd byte in a label (or a length)
	}
	b = append(b, wire...)
	qtype := uint16(dns.TypeA)
	if pick(3) {
		qtypes := []uint16{dns.TypeAAAA, dns.TypeAAAA, dns.TypeANY, dns.TypeTXT, dns.TypeSOA, uint16(rng.Uint32())}
		qtype = qtypes[rng.IntN(len(qtypes))]
	}
	b = binary.BigEndian.AppendUint16(b, qtype)
	qclass := uint16(dns.ClassINET)
	if pick(10) {
		qclass = []uint16{dns.ClassCHAOS, dns.ClassANY, uint16(rng.Uint32())}[rng.IntN(3)]
	}
	b = binary.BigEndian.AppendUint16(b, qclass)

	for range optCount {
		b = append(b, randomOPT(rng, pick)...)
	}
	switch rng.IntN(12) {
	case 0:
		b = b[:rng.IntN(len(b)+1)] // cut short
	case 1:
		b = append(b, byte(rng.IntN(256))) // trailing byte
	case 2:
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255)) // flipped bytes
		}
	}
	return b
}

// randomOPT is an OPT record with random UDP size, flags, version and options.
func randomOPT(rng *rand.Rand, pick func(int) bool) []byte {
	var rdata []byte
	option := func(code uint16, data []byte) {
		rdata = binary.BigEndian.AppendUint16(rdata, code)
		rdata = binary.BigEndian.AppendUint16(rdata, uint16(len(data)))
		rdata = append(rdata, data...)
	}
	for range rng.IntN(3) + rng.IntN(2) {
		switch rng.IntN(12) {
		case 0, 1, 2, 3, 7, 8, 9, 10:
			option(dns.EDNS0SUBNET, randomECS(rng, pick))
		case 4:
			option(dns.EDNS0COOKIE, randomBytes(rng, []int{8, 16, 24, 40}[rng.IntN(4)]))
		case 5:
			option([]uint16{dns.EDNS0NSID, dns.EDNS0PADDING}[rng.IntN(2)], randomBytes(rng, rng.IntN(20)))
		case 6:
			option([]uint16{dns.EDNS0TCPKEEPALIVE, dns.EDNS0EXPIRE, dns.EDNS0EDE, dns.EDNS0UL, 65001}[rng.IntN(5)], randomBytes(rng, rng.IntN(6)))
		default:
			option(uint16(rng.Uint32()), randomBytes(rng, rng.IntN(8)))
		}
	}
	if pick(20) && len(rdata) > 0 {
		rdata = rdata[:rng.IntN(len(rdata))] // option cut short
	}
	b := []byte{0}
	if pick(30) {
		b = []byte{1, 'x', 0} // not the root
	}
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	sizes := []uint16{512, 1232, 4096, 0, 100, 65535, uint16(rng.Uint32())}
	b = binary.BigEndian.AppendUint16(b, sizes[rng.IntN(len(sizes))])
	var ttl uint32
	if pick(2) {
		ttl |= 1 << 15 // DO
	}
	if pick(10) {
		ttl |= uint32(rng.IntN(256)) << 24 // extended rcode bits
	}
	if pick(10) {
		ttl |= uint32(rng.IntN(3)) << 16 // version
	}
	if pick(10) {
		ttl |= uint32(rng.IntN(1 << 15)) // Z flags
	}
	b = binary.BigEndian.AppendUint32(b, ttl)
	rdlen := len(rdata)
	if pick(30) {
		rdlen += rng.IntN(5) - 2 // lying RDLENGTH
	}
	b = binary.BigEndian.AppendUint16(b, uint16(max(rdlen, 0)))
	return append(b, rdata...)
}

// randomECS is an ECS option body: mostly valid (v4 and v6, known and unknown, private, /0,
// family 0), sometimes not.
func randomECS(rng *rand.Rand, pick func(int) bool) []byte {
	prefixes := []string{"203.0.113.0/24", "198.51.100.0/24", "203.0.113.77/32", "8.8.8.0/24", "10.0.0.0/8",
		"192.168.7.0/24", "172.16.0.0/12", testNet + ".12.0/24", "2001:db8::/56", "fd00::/8", "::/0", "0.0.0.0/0", "198.51.100.128/25"}
	p := netip.MustParsePrefix(prefixes[rng.IntN(len(prefixes))])
	fam := uint16(1)
	if p.Addr().Is6() {
		fam = 2
	}
	addr := p.Addr().AsSlice()[:(p.Bits()+7)/8]
	b := binary.BigEndian.AppendUint16(nil, fam)
	scope := byte(0)
	if pick(5) {
		scope = byte(rng.IntN(33))
	}
	b = append(b, byte(p.Bits()), scope)
	b = append(b, addr...)
	switch {
	case pick(40):
		b = []byte{0, 0, 0, 0} // family 0 (old dig)
	case pick(15):
		b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
	case pick(15):
		b = append(b, 0)
	case pick(15):
		b = b[:rng.IntN(len(b))]
	}
	return b
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// TestFastPathAllocs: answering the benchmark's query through the batched reader's fast path
// allocates nothing.
func TestFastPathAllocs(t *testing.T) {
	srv := newTestServer(t, allUp)
	wire, _ := newQuery("app."+zone, dns.TypeA, 1232, ecs("198.51.100.0/24")).Pack()
	u := &batchUDP{s: srv}
	w := newBatchWriter(&net.UDPAddr{IP: net.IPv4(127, 92, 0, 1), Port: 53}, 1)
	from := netip.MustParseAddrPort(srcUSEast + ":40000")
	pkt := slices.Clone(wire)
	allocs := testing.AllocsPerRun(1000, func() {
		w.replies = w.replies[:0]
		w.answering(0, from)
		copy(pkt, wire)
		u.serveOne(w, pkt)
	})
	if len(w.replies) != 1 {
		t.Fatal("no reply")
	}
	var r dns.Msg
	if err := r.Unpack(w.replies[0].buf); err != nil || len(r.Answer) != 2 || replyECS(&r).SourceScope != 24 {
		t.Fatalf("unexpected reply %v (%v)", &r, err)
	}
	if allocs != 0 {
		t.Fatalf("fast path allocates %.1f times per query, want 0", allocs)
	}
}
