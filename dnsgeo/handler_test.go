package dnsgeo

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// newTestServer is a Server (not started) with the members of c, for handler-level tests.
func newTestServer(t testing.TB, c cluster) *Server {
	t.Helper()
	srv, err := New(Config{Topology: testTopology(), Instance: "us-east-dns-1", Members: newStaticMembers(c.members()...), StartupGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestHandler covers, coredns-style with a fake ResponseWriter, what the miekg/dns server would
// reject before the handler (the handler must still be safe on its own) and the parsed
// EDNS0_SUBNET form of ECS that Handler() callers may pass.
func TestHandler(t *testing.T) {
	srv := newTestServer(t, allUp)
	app := "app." + zone
	tests := []struct {
		name    string
		src     string
		tcp     bool
		req     func() *dns.Msg
		noReply bool
		rcode   int
		answer  []string
		scope   int // -1: no ECS in the reply
	}{
		{name: "a response is never answered", src: srcUSEast, req: func() *dns.Msg {
			m := newQuery(app, dns.TypeA, 0)
			m.Response = true
			return m
		}, noReply: true},
		{name: "opcode NOTIFY → NOTIMP", src: srcUSEast, req: func() *dns.Msg {
			m := newQuery(zone, dns.TypeSOA, 0)
			m.Opcode = dns.OpcodeNotify
			return m
		}, rcode: dns.RcodeNotImplemented, scope: -1},
		{name: "no question → FORMERR", src: srcUSEast, req: func() *dns.Msg {
			m := newQuery(app, dns.TypeA, 0)
			m.Question = nil
			return m
		}, rcode: dns.RcodeFormatError, scope: -1},
		{name: "two questions → FORMERR", src: srcUSEast, req: func() *dns.Msg {
			m := newQuery(app, dns.TypeA, 0)
			m.Question = append(m.Question, m.Question[0])
			return m
		}, rcode: dns.RcodeFormatError, scope: -1},
		{name: "two OPT records → FORMERR", src: srcUSEast, req: func() *dns.Msg {
			m := newQuery(app, dns.TypeA, 1232)
			m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}})
			return m
		}, rcode: dns.RcodeFormatError, scope: -1},
		{name: "class HESIOD → REFUSED", src: srcUSEast, req: func() *dns.Msg {
			m := newQuery(app, dns.TypeA, 0)
			m.Question[0].Qclass = dns.ClassHESIOD
			return m
		}, rcode: dns.RcodeRefused, scope: -1},
		{name: "parsed ECS: echoed with scope", src: srcUnknown, req: func() *dns.Msg {
			return newQuery(app, dns.TypeA, 0, ecs("198.51.100.0/24"))
		}, answer: euWebs, scope: 24},
		{name: "parsed ECS: bits beyond the prefix → FORMERR", src: srcUnknown, req: func() *dns.Msg {
			e := ecs("198.51.100.0/24")
			e.SourceNetmask = 20
			return newQuery(app, dns.TypeA, 0, e)
		}, rcode: dns.RcodeFormatError, scope: -1},
		{name: "parsed ECS: prefix 33 → FORMERR", src: srcUnknown, req: func() *dns.Msg {
			e := ecs("198.51.100.0/24")
			e.SourceNetmask = 33
			return newQuery(app, dns.TypeA, 0, e)
		}, rcode: dns.RcodeFormatError, scope: -1},
		{name: "parsed ECS: family 0 with source 0 (old dig) → source address", src: srcEUWest, req: func() *dns.Msg {
			return newQuery(app, dns.TypeA, 0, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 0, Address: net.IPv4zero})
		}, answer: euWebs, scope: 0},
		{name: "raw ECS via our reader's code", src: srcUnknown, req: func() *dns.Msg {
			return newQuery(app, dns.TypeA, 0, &dns.EDNS0_LOCAL{Code: ecsWireCode, Data: []byte{0, 1, 24, 0, 203, 0, 113}})
		}, answer: usWebs, scope: 24},
		{name: "raw ECS, IPv6 /0 with an address → FORMERR", src: srcUnknown, req: func() *dns.Msg {
			return newQuery(app, dns.TypeA, 0, &dns.EDNS0_LOCAL{Code: ecsWireCode, Data: []byte{0, 2, 0, 0, 0x20}})
		}, rcode: dns.RcodeFormatError, scope: -1},
		{name: "TCP source address", src: srcEUWest, tcp: true, req: func() *dns.Msg {
			return newQuery(app, dns.TypeA, 0)
		}, answer: euWebs, scope: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWriter(tc.src, tc.tcp)
			srv.ServeDNS(w, tc.req())
			if tc.noReply {
				if w.reply != nil || w.wire != nil {
					t.Fatalf("replied: %v", w.reply)
				}
				return
			}
			if w.err != nil {
				t.Fatalf("reply did not pack/unpack: %v", w.err)
			}
			r := w.reply
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := aIPs(r.Answer); !slices.Equal(got, tc.answer) {
				t.Errorf("answer = %v, want %v", got, tc.answer)
			}
			e := replyECS(r)
			if (tc.scope < 0) != (e == nil) || (e != nil && int(e.SourceScope) != tc.scope) {
				t.Errorf("reply ECS = %v, want scope %d", e, tc.scope)
			}
		})
	}
}

// TestRewriteECSCodes: the reader renames option 8 (and escapes a client's own 65001) inside the
// OPT record, also behind compressed names, and leaves everything else byte for byte.
func TestRewriteECSCodes(t *testing.T) {
	m := newQuery("app."+zone, dns.TypeA, 1232, ecs("203.0.113.0/24"), &dns.EDNS0_LOCAL{Code: ecsWireCode, Data: []byte{1}},
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	m.Answer = append(m.Answer, &dns.A{Hdr: hdr("app."+zone, dns.TypeA, 5), A: net.IPv4(127, 92, 0, 1)})
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	orig := slices.Clone(wire)
	rewriteECSCodes(wire)
	if len(wire) != len(orig) {
		t.Fatal("length changed")
	}
	var got dns.Msg
	if err := got.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	var codes []uint16
	for _, o := range got.IsEdns0().Option {
		codes = append(codes, o.Option())
	}
	if !slices.Equal(codes, []uint16{ecsWireCode, escapedLocalCode, dns.EDNS0COOKIE}) {
		t.Fatalf("option codes after rewrite = %v", codes)
	}
	diff := 0
	for i := range wire {
		if wire[i] != orig[i] {
			diff++
		}
	}
	if diff != 4 { // 00 08 → fd e9 and fd e9 → ff ff: two option codes, nothing else
		t.Fatalf("%d bytes changed, want 4", diff)
	}
}

// TestParseECSWire checks RFC 7871 §6 validation byte by byte.
func TestParseECSWire(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		err  error
		want netip.Prefix
	}{
		{"v4 /24", []byte{0, 1, 24, 0, 203, 0, 113}, nil, netip.MustParsePrefix("203.0.113.0/24")},
		{"v4 /32", []byte{0, 1, 32, 0, 203, 0, 113, 9}, nil, netip.MustParsePrefix("203.0.113.9/32")},
		{"v4 /0", []byte{0, 1, 0, 0}, nil, netip.MustParsePrefix("0.0.0.0/0")},
		{"v4 /20 clean", []byte{0, 1, 20, 0, 203, 0, 112}, nil, netip.MustParsePrefix("203.0.112.0/20")},
		{"v6 /56", []byte{0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0}, nil, netip.MustParsePrefix("2001:db8::/56")},
		{"family 0 empty", []byte{0, 0, 0, 0}, nil, netip.Prefix{}},
		{"short", []byte{0, 1, 24}, errECSShort, netip.Prefix{}},
		{"family 0 with prefix", []byte{0, 0, 8, 0, 10}, errECSFamily, netip.Prefix{}},
		{"family 3", []byte{0, 3, 8, 0, 10}, errECSFamily, netip.Prefix{}},
		{"v4 /33", []byte{0, 1, 33, 0, 1, 2, 3, 4, 5}, errECSPrefix, netip.Prefix{}},
		{"v6 /129", append([]byte{0, 2, 129, 0}, make([]byte, 17)...), errECSPrefix, netip.Prefix{}},
		{"v4 too long", []byte{0, 1, 24, 0, 203, 0, 113, 0}, errECSAddrLen, netip.Prefix{}},
		{"v4 too short", []byte{0, 1, 24, 0, 203, 0}, errECSAddrLen, netip.Prefix{}},
		{"v4 /0 with address", []byte{0, 1, 0, 0, 1}, errECSAddrLen, netip.Prefix{}},
		{"v4 bits beyond /20", []byte{0, 1, 20, 0, 203, 0, 113}, errECSBits, netip.Prefix{}},
		{"v4 bits beyond /31", []byte{0, 1, 31, 0, 203, 0, 113, 1}, errECSBits, netip.Prefix{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseECSWire(tc.b)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && e.prefix() != tc.want {
				t.Fatalf("prefix = %v, want %v", e.prefix(), tc.want)
			}
		})
	}
}

// TestClassifyScope checks the scope of unknown clients: the shortest prefix around the client
// that overlaps no configured subnet, so a resolver never reuses the answer inside a subnet.
func TestClassifyScope(t *testing.T) {
	srv := newTestServer(t, allUp)
	for _, tc := range []struct {
		ip     string
		group  int
		depend uint8
	}{
		{"203.0.113.200", 1, 24},
		{"198.51.100.1", 2, 24},
		{"8.8.8.8", 0, 2},
		{"203.0.112.1", 0, 24},     // shares 23 bits with 203.0.113.0/24
		{testNet + ".13.5", 0, 24}, // shares 23 bits with testNet.12.0/24
		{"2001:db8::1", 0, 0},
	} {
		g, _, d := srv.classify(netip.MustParseAddr(tc.ip))
		if g != tc.group || d != tc.depend {
			t.Errorf("classify(%s) = group %d depends %d, want %d %d", tc.ip, g, d, tc.group, tc.depend)
		}
		// The scope prefix around an unknown client must not overlap any subnet.
		if g == 0 && d > 0 {
			p := netip.PrefixFrom(netip.MustParseAddr(tc.ip), int(d)).Masked()
			for _, s := range srv.subnets {
				if p.Overlaps(s.prefix) {
					t.Errorf("%v overlaps %v", p, s.prefix)
				}
			}
		}
	}
}
