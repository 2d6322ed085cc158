package workload

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/topology"
)

// A client with UseECS names its region's first non-loopback client subnet in an EDNS Client
// Subnet option; without it, it sends no option.
func TestLookupCarriesECS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan netip.Prefix, 4)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		got := netip.Prefix{}
		if opt := r.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_SUBNET); ok {
					a, _ := netip.AddrFromSlice(e.Address)
					got = netip.PrefixFrom(a.Unmap(), int(e.SourceNetmask))
				}
			}
		}
		seen <- got
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
			A: net.IPv4(10, 0, 0, 1)})
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	r, _ := topology.Default().Region("us-east")
	want := r.ECSSubnet()
	if want != netip.MustParsePrefix("203.0.113.0/24") {
		t.Fatalf("ECS subnet of us-east: %s", want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ecs := range []netip.Prefix{want, {}} {
		ips, ttl, err := lookup(ctx, []string{pc.LocalAddr().String()}, netip.Addr{}, ecs, "drill.test.", time.Second)
		if err != nil || len(ips) != 1 || ttl != 5*time.Second {
			t.Fatalf("lookup: %v %v %v", ips, ttl, err)
		}
		if got := <-seen; got != ecs {
			t.Fatalf("server saw ECS %v, want %v", got, ecs)
		}
	}
}
