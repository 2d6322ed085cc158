package dnsgeo

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// acceptCase is one row of the acceptance table: a query from a source (and maybe with ECS) in a
// health state, and the reply a real client must get from the running server.
type acceptCase struct {
	name   string
	src    string   // client source address (testNet)
	proto  string   // "udp" (default) or "tcp"
	q      *dns.Msg // the query
	rcode  int
	answer []string // expected A addresses in the answer (sorted); nil = no A records
	ttl    uint32   // expected TTL of every answer A record (0 = not checked)
	scope  int      // expected ECS scope in the reply; -1 = the reply must carry no ECS option
	soa    bool     // the authority section must hold the SOA (negative answers)
	notAA  bool     // the reply must not be authoritative (REFUSED)
	check  func(t *testing.T, r *dns.Msg)
}

var (
	usWebs = []string{usWeb1, usWeb2}
	euWebs = []string{euWeb1, euWeb2}
)

const zone = "drill.test."

// txtLines joins the TXT strings of an answer.
func txtLines(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

func containsLine(t *testing.T, lines []string, want string) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, want) {
			return
		}
	}
	t.Errorf("no line contains %q in:\n%s", want, strings.Join(lines, "\n"))
}

// acceptTable is the acceptance table, keyed by health state.
func acceptTable() map[string]struct {
	state cluster
	cases []acceptCase
} {
	app := "app." + zone
	return map[string]struct {
		state cluster
		cases []acceptCase
	}{
		"all-up": {allUp, []acceptCase{
			{name: "source us-east → us-east", src: srcUSEast, q: newQuery(app, dns.TypeA, 0), answer: usWebs, ttl: 5, scope: -1},
			{name: "source eu-west → eu-west", src: srcEUWest, q: newQuery(app, dns.TypeA, 0), answer: euWebs, ttl: 5, scope: -1},
			{name: "source unknown → default order (first region)", src: srcUnknown, q: newQuery(app, dns.TypeA, 0), answer: usWebs, ttl: 5, scope: -1},
			{name: "edns without ecs: no ecs in reply", src: srcEUWest, q: newQuery(app, dns.TypeA, 1232), answer: euWebs, scope: -1},
			{name: "ecs us-east /24 → us-east, scope 24", src: srcUnknown, q: newQuery(app, dns.TypeA, 0, ecs("203.0.113.0/24")), answer: usWebs, ttl: 5, scope: 24},
			{name: "ecs wins over source", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, ecs("198.51.100.0/24")), answer: euWebs, scope: 24},
			{name: "ecs /32 inside a subnet: scope is the subnet's", src: srcUnknown, q: newQuery(app, dns.TypeA, 0, ecs("203.0.113.77/32")), answer: usWebs, scope: 24},
			{name: "ecs loopback in a configured subnet is used", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, ecs(testNet+".12.0/24")), answer: euWebs, scope: 24},
			{name: "ecs RFC1918 10/8 ignored → source, scope 8", src: srcEUWest, q: newQuery(app, dns.TypeA, 0, ecs("10.1.2.0/24")), answer: euWebs, scope: 8},
			{name: "ecs RFC1918 192.168/16 ignored → source, scope 16", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, ecs("192.168.1.0/24")), answer: usWebs, scope: 16},
			{name: "ecs RFC4193 ULA ignored → source, scope 7", src: srcEUWest, q: newQuery(app, dns.TypeA, 0, ecs("fd00:1::/48")), answer: euWebs, scope: 7},
			{name: "ecs source prefix 0 → source address, scope 0", src: srcEUWest, q: newQuery(app, dns.TypeA, 0, rawECS(1, 0, 0)), answer: euWebs, scope: 0, check: func(t *testing.T, r *dns.Msg) {
				if e := replyECS(r); e == nil || e.Family != 1 || e.SourceNetmask != 0 {
					t.Errorf("ECS echo = %v, want family 1 source 0", e)
				}
			}},
			{name: "ecs unknown v4 → default order, widest non-overlapping scope", src: srcEUWest, q: newQuery(app, dns.TypeA, 0, ecs("8.8.8.0/24")), answer: usWebs, scope: 2},
			{name: "ecs unknown v6 (no v6 subnets) → default, scope 0", src: srcEUWest, q: newQuery(app, dns.TypeA, 0, ecs("2001:db8::/56")), answer: usWebs, scope: 0},
			{name: "ecs over tcp", src: srcUnknown, proto: "tcp", q: newQuery(app, dns.TypeA, 0, ecs("198.51.100.0/24")), answer: euWebs, scope: 24},
			{name: "ecs unknown family → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, rawECS(3, 24, 0, 203, 0, 113)), rcode: dns.RcodeFormatError, scope: -1},
			{name: "ecs address longer than the prefix needs → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, rawECS(1, 24, 0, 203, 0, 113, 0)), rcode: dns.RcodeFormatError, scope: -1},
			{name: "ecs address shorter than the prefix needs → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, rawECS(1, 24, 0, 203, 0)), rcode: dns.RcodeFormatError, scope: -1},
			{name: "ecs bits set beyond the source prefix → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, rawECS(1, 20, 0, 203, 0, 113)), rcode: dns.RcodeFormatError, scope: -1},
			{name: "ecs v4 prefix 33 → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, rawECS(1, 33, 0, 203, 0, 113, 0, 0)), rcode: dns.RcodeFormatError, scope: -1},
			{name: "ecs v6 prefix 129 → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, rawECS(2, 129, 0, make([]byte, 17)...)), rcode: dns.RcodeFormatError, scope: -1},
			{name: "two ecs options → FORMERR", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, ecs("203.0.113.0/24"), ecs("198.51.100.0/24")), rcode: dns.RcodeFormatError, scope: -1},
			{name: "edns version 1 → BADVERS", src: srcUSEast, q: func() *dns.Msg {
				m := newQuery(app, dns.TypeA, 0, ecs("203.0.113.0/24"))
				m.IsEdns0().SetVersion(1)
				return m
			}(), rcode: dns.RcodeBadVers, scope: -1, check: func(t *testing.T, r *dns.Msg) {
				if o := r.IsEdns0(); o == nil || o.Version() != 0 {
					t.Errorf("BADVERS reply must carry an OPT of version 0, got %v", o)
				}
			}},
			{name: "soa with ecs: scope 0", src: srcUSEast, q: newQuery(zone, dns.TypeSOA, 0, ecs("203.0.113.0/24")), scope: 0, check: func(t *testing.T, r *dns.Msg) {
				if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
					t.Fatalf("want one SOA, got %v", r.Answer)
				}
				soa := r.Answer[0].(*dns.SOA)
				if soa.Ns != "ns-us-east-1."+zone || soa.Mbox != "hostmaster."+zone {
					t.Errorf("soa = %v", soa)
				}
			}},
			{name: "ns with glue, scope 0", src: srcUSEast, q: newQuery(zone, dns.TypeNS, 0, ecs("203.0.113.0/24")), scope: 0, check: func(t *testing.T, r *dns.Msg) {
				var ns []string
				for _, rr := range r.Answer {
					ns = append(ns, rr.(*dns.NS).Ns)
				}
				slices.Sort(ns)
				if !slices.Equal(ns, []string{"ns-eu-west-1." + zone, "ns-us-east-1." + zone}) {
					t.Errorf("NS = %v", ns)
				}
				glue := map[string]string{}
				for _, rr := range r.Extra {
					if a, ok := rr.(*dns.A); ok {
						glue[a.Hdr.Name] = a.A.String()
					}
				}
				if glue["ns-us-east-1."+zone] != "127.77.1.30" || glue["ns-eu-west-1."+zone] != "127.77.2.30" {
					t.Errorf("glue = %v", glue)
				}
			}},
			{name: "name server A record", src: srcUSEast, q: newQuery("ns-eu-west-1."+zone, dns.TypeA, 0), answer: []string{"127.77.2.30"}, scope: -1},
			{name: "<region>.app while healthy, scope 0", src: srcUSEast, q: newQuery("eu-west.app."+zone, dns.TypeA, 0, ecs("203.0.113.0/24")), answer: euWebs, ttl: 5, scope: 0},
			{name: "unknown region under app → NXDOMAIN", src: srcUSEast, q: newQuery("mars.app."+zone, dns.TypeA, 0), rcode: dns.RcodeNameError, soa: true, scope: -1},
			{name: "NXDOMAIN with SOA, scope 0", src: srcUSEast, q: newQuery("nothing."+zone, dns.TypeA, 0, ecs("203.0.113.0/24")), rcode: dns.RcodeNameError, soa: true, scope: 0},
			{name: "AAAA for app → NODATA with SOA", src: srcUSEast, q: newQuery(app, dns.TypeAAAA, 0), soa: true, scope: -1},
			{name: "MX for app → NODATA with SOA", src: srcUSEast, q: newQuery(app, dns.TypeMX, 0), soa: true, scope: -1},
			{name: "A at the apex → NODATA with SOA", src: srcUSEast, q: newQuery(zone, dns.TypeA, 0), soa: true, scope: -1},
			{name: "ANY at the apex → RFC 8482 HINFO", src: srcUSEast, q: newQuery(zone, dns.TypeANY, 0), scope: -1, check: func(t *testing.T, r *dns.Msg) {
				if len(r.Answer) != 1 {
					t.Fatalf("want one HINFO, got %v", r.Answer)
				}
				if h, ok := r.Answer[0].(*dns.HINFO); !ok || h.Cpu != "RFC8482" {
					t.Errorf("want HINFO RFC8482, got %v", r.Answer[0])
				}
			}},
			{name: "ANY for app → the A RRset only", src: srcEUWest, q: newQuery(app, dns.TypeANY, 0), answer: euWebs, scope: -1, check: func(t *testing.T, r *dns.Msg) {
				if len(r.Answer) != 2 {
					t.Errorf("want only the A RRset, got %v", r.Answer)
				}
			}},
			{name: "outside the zone → REFUSED", src: srcUSEast, q: newQuery("example.com.", dns.TypeA, 0), rcode: dns.RcodeRefused, notAA: true, scope: -1},
			{name: "suffix without a label boundary → REFUSED", src: srcUSEast, q: newQuery("xdrill.test.", dns.TypeA, 0), rcode: dns.RcodeRefused, notAA: true, scope: -1},
			{name: "outside the zone with ecs: echoed, scope 0", src: srcUSEast, q: newQuery("example.com.", dns.TypeA, 0, ecs("203.0.113.0/24")), rcode: dns.RcodeRefused, notAA: true, scope: 0},
			{name: "mixed case name", src: srcEUWest, q: newQuery("APP.Drill.TEST.", dns.TypeA, 0), answer: euWebs, scope: -1},
			{name: "_status TXT, scope 0", src: srcUSEast, q: newQuery("_status."+zone, dns.TypeTXT, 4096, ecs("203.0.113.0/24")), scope: 0, check: func(t *testing.T, r *dns.Msg) {
				lines := txtLines(r)
				containsLine(t, lines, "region=us-east healthy=true primary=true epoch=3 since=")
				containsLine(t, lines, "region=eu-west healthy=true primary=false epoch=3 since=")
				containsLine(t, lines, "instance=us-east-dns-1 region=us-east fail_static=false")
				containsLine(t, lines, "decision=ecs 203.0.113.0/24 -> us-east (nearest)")
			}},
			{name: "CHAOS id.server.", src: srcUSEast, q: func() *dns.Msg {
				m := newQuery("id.server.", dns.TypeTXT, 0)
				m.Question[0].Qclass = dns.ClassCHAOS
				return m
			}(), scope: -1, check: func(t *testing.T, r *dns.Msg) {
				if l := txtLines(r); !slices.Equal(l, []string{"us-east-dns-1"}) {
					t.Errorf("id.server = %v", l)
				}
			}},
			{name: "CHAOS hostname.bind.", src: srcUSEast, q: func() *dns.Msg {
				m := newQuery("hostname.bind.", dns.TypeTXT, 0)
				m.Question[0].Qclass = dns.ClassCHAOS
				return m
			}(), scope: -1, check: func(t *testing.T, r *dns.Msg) {
				if l := txtLines(r); !slices.Equal(l, []string{"us-east-dns-1"}) {
					t.Errorf("hostname.bind = %v", l)
				}
			}},
			{name: "UDP size and DO bit preserved", src: srcUSEast, q: func() *dns.Msg {
				m := newQuery(app, dns.TypeA, 0)
				m.SetEdns0(1400, true)
				return m
			}(), answer: usWebs, scope: -1, check: func(t *testing.T, r *dns.Msg) {
				o := r.IsEdns0()
				if o == nil || o.UDPSize() != 1400 || !o.Do() {
					t.Errorf("reply OPT = %v, want udp 1400 with DO", o)
				}
			}},
		}},
		"us-east-down": {usEastDown, []acceptCase{
			{name: "us-east client fails over to eu-west, degraded TTL", src: srcUSEast, q: newQuery(app, dns.TypeA, 0), answer: euWebs, ttl: 1, scope: -1},
			{name: "ecs us-east: only one answer exists → scope 0", src: srcUnknown, q: newQuery(app, dns.TypeA, 0, ecs("203.0.113.0/24")), answer: euWebs, ttl: 1, scope: 0},
			{name: "unknown client: next healthy region", src: srcUnknown, q: newQuery(app, dns.TypeA, 0), answer: euWebs, scope: -1},
			{name: "<region>.app of a down region → NODATA with SOA", src: srcUSEast, q: newQuery("us-east.app."+zone, dns.TypeA, 0), soa: true, scope: -1, check: func(t *testing.T, r *dns.Msg) {
				if ttl := r.Ns[0].Header().Ttl; ttl != 1 {
					t.Errorf("SOA TTL while degraded = %d, want 1", ttl)
				}
			}},
			{name: "<region>.app of a healthy region", src: srcUSEast, q: newQuery("eu-west.app."+zone, dns.TypeA, 0), answer: euWebs, ttl: 1, scope: -1},
			{name: "_status says why", src: srcUSEast, q: newQuery("_status."+zone, dns.TypeTXT, 4096), scope: -1, check: func(t *testing.T, r *dns.Msg) {
				lines := txtLines(r)
				containsLine(t, lines, "region=us-east healthy=false primary=true epoch=3")
				containsLine(t, lines, "state=down")
				containsLine(t, lines, "us-east-web-1 dead")
				containsLine(t, lines, "route clients=us-east answer=eu-west reason=us-east down -> eu-west")
				containsLine(t, lines, "ttl=1s")
			}},
		}},
		"us-east-left": {usEastLeft, []acceptCase{
			{name: "left web nodes are gone", src: srcUSEast, q: newQuery(app, dns.TypeA, 0), answer: euWebs, ttl: 1, scope: -1},
		}},
		"us-east-unhealthy": {usEastSick, []acceptCase{
			{name: "alive but unhealthy web nodes are not served", src: srcUSEast, q: newQuery(app, dns.TypeA, 0), answer: euWebs, ttl: 1, scope: -1},
		}},
		"all-down": {allDown, []acceptCase{
			{name: "no healthy region → NODATA with SOA", src: srcUSEast, q: newQuery(app, dns.TypeA, 0, ecs("203.0.113.0/24")), soa: true, scope: 0},
		}},
		"isolated": {isolated, []acceptCase{
			{name: "fail static: last known good answer", src: srcUSEast, q: newQuery(app, dns.TypeA, 0), answer: usWebs, ttl: 5, scope: -1},
			{name: "fail static: eu-west still served", src: srcEUWest, q: newQuery(app, dns.TypeA, 0), answer: euWebs, scope: -1},
			{name: "fail static is reported in _status", src: srcUSEast, q: newQuery("_status."+zone, dns.TypeTXT, 4096), scope: -1, check: func(t *testing.T, r *dns.Msg) {
				lines := txtLines(r)
				containsLine(t, lines, "fail_static=true")
				containsLine(t, lines, "no other alive member: serving the last known good view")
				containsLine(t, lines, "region=us-east healthy=true")
			}},
		}},
	}
}

// TestAcceptance runs the acceptance table against running servers with a real client.
func TestAcceptance(t *testing.T) {
	hostByState := map[string]string{"all-up": testNet + ".1.1", "us-east-down": testNet + ".1.2", "us-east-left": testNet + ".1.3",
		"us-east-unhealthy": testNet + ".1.4", "all-down": testNet + ".1.5", "isolated": testNet + ".1.6"}
	for stateName, group := range acceptTable() {
		t.Run(stateName, func(t *testing.T) {
			h := startHarness(t, hostByState[stateName], testTopology(), allUp)
			h.set(group.state)
			for _, tc := range group.cases {
				t.Run(tc.name, func(t *testing.T) {
					proto := tc.proto
					if proto == "" {
						proto = "udp"
					}
					queryECS := replyECS(tc.q) // the query's own option, if well-formed
					r := exchange(t, h.addr, tc.src, proto, tc.q.Copy())
					checkReply(t, tc, queryECS, r)
				})
			}
		})
	}
}

// checkReply asserts a table row's expectations.
func checkReply(t *testing.T, tc acceptCase, queryECS *dns.EDNS0_SUBNET, r *dns.Msg) {
	t.Helper()
	if r.Rcode != tc.rcode {
		t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
	}
	if r.RecursionAvailable {
		t.Errorf("RA set: this server never recurses")
	}
	if r.Authoritative == tc.notAA && tc.rcode != dns.RcodeFormatError && tc.rcode != dns.RcodeBadVers {
		t.Errorf("AA = %v, want %v", r.Authoritative, !tc.notAA)
	}
	if got := aIPs(r.Answer); !slices.Equal(got, tc.answer) {
		t.Errorf("answer = %v, want %v", got, tc.answer)
	}
	if tc.ttl != 0 {
		for _, rr := range r.Answer {
			if rr.Header().Ttl != tc.ttl {
				t.Errorf("TTL of %v = %d, want %d", rr, rr.Header().Ttl, tc.ttl)
			}
		}
	}
	hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
	if hasSOA != tc.soa {
		t.Errorf("SOA in authority = %v, want %v (ns: %v)", hasSOA, tc.soa, r.Ns)
	}
	got := replyECS(r)
	switch {
	case tc.scope < 0 && got != nil:
		t.Errorf("reply carries ECS %v, want none", got)
	case tc.scope >= 0 && got == nil:
		t.Errorf("reply lacks the ECS option")
	case tc.scope >= 0:
		if int(got.SourceScope) != tc.scope {
			t.Errorf("ECS scope = %d, want %d", got.SourceScope, tc.scope)
		}
		if queryECS != nil {
			// RFC 7871 §7.2.1: FAMILY, SOURCE PREFIX-LENGTH and ADDRESS echoed unchanged.
			if got.Family != queryECS.Family || got.SourceNetmask != queryECS.SourceNetmask || !got.Address.Equal(queryECS.Address) {
				t.Errorf("ECS echo = %v, want family/source/address of %v", got, queryECS)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, r)
	}
}
