package dnsgeo

import (
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzHandler feeds raw packets through what the server does with them (the ECS code rewrite,
// miekg/dns parsing, the handler) over UDP and TCP. The handler must never panic or hang, and
// every reply must pack. Each packet also goes through the batched UDP reader with and without
// the fast path (fastpath.go), in two health states and from two sources: the replies must be
// byte-identical.
func FuzzHandler(f *testing.F) {
	seeds := []*dns.Msg{
		newQuery("app."+zone, dns.TypeA, 0),
		newQuery("app."+zone, dns.TypeA, 0, ecs("203.0.113.0/24")),
		newQuery("app."+zone, dns.TypeA, 0, ecs("2001:db8::/56")),
		newQuery("app."+zone, dns.TypeA, 0, rawECS(1, 20, 0, 203, 0, 113)),
		newQuery("APP."+zone, dns.TypeAAAA, 4096, ecs("198.51.100.0/24"), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}),
		newQuery("eu-west.app."+zone, dns.TypeA, 1232, ecs("10.0.0.0/8")),
		newQuery("app."+zone, dns.TypeANY, 4096, rawECS(1, 0, 0)),
		newQuery("_status."+zone, dns.TypeTXT, 512, ecs("10.0.0.0/8")),
		newQuery(zone, dns.TypeNS, 0),
		newQuery("us-east.app."+zone, dns.TypeA, 0),
		newQuery("nothing."+zone, dns.TypeA, 0),
		newQuery("example.com.", dns.TypeA, 0),
	}
	chaos := newQuery("id.server.", dns.TypeTXT, 0)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	seeds = append(seeds, chaos)
	for _, m := range seeds {
		m.Compress = true
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		f.Add(randomQuery(rng))
	}
	srv := newTestServer(f, usEastDown)
	pairs := []*pathPair{newPathPair(f, allUp.members()), newPathPair(f, usEastDown.members())}
	froms := []*net.UDPAddr{fastSources[0], fastSources[3]}
	f.Fuzz(func(t *testing.T, packet []byte) {
		for _, p := range pairs {
			for _, from := range froms {
				p.compare(t, packet, from)
			}
		}
		raw := slices.Clone(packet)
		rewriteECSCodes(raw)
		req := new(dns.Msg)
		if err := req.Unpack(raw); err != nil {
			return // the miekg/dns server answers FORMERR (or drops) without calling the handler
		}
		for _, tcp := range []bool{false, true} {
			w := newFakeWriter(srcUSEast, tcp)
			done := make(chan struct{})
			go func() {
				defer close(done)
				srv.ServeDNS(w, req.Copy())
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatalf("handler hung on %x", packet)
			}
			if w.wire != nil && w.err != nil {
				t.Fatalf("reply failed to pack or unpack: %v (packet %x)", w.err, packet)
			}
		}
	})
}
