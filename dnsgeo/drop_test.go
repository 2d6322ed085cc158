package dnsgeo

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/agents/gossip"
)

// TestDropIsSilent: a query from a dropped source gets no answer at all, over UDP and TCP (the TCP
// connection is accepted and then held in silence), while other sources are answered; Shutdown
// lets held connections go at once.
func TestDropIsSilent(t *testing.T) {
	dropped := netip.MustParseAddr(dropNet + ".9.2")
	srv, err := New(Config{
		Topology: testTopology(),
		Listen:   dropNet + ".9.1:0",
		Instance: "us-east-dns-1",
		Drop:     func(a netip.Addr) bool { return a == dropped },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}
	t.Cleanup(func() { _ = shutdown() })
	q := newQuery("app.drill.test.", dns.TypeA, 0)

	if r := exchange(t, srv.Addr(), dropNet+".9.3", "udp", q); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("undropped source: %v", r)
	}
	c := &dns.Client{Net: "udp", Timeout: 700 * time.Millisecond,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: dropped.AsSlice()}, Timeout: 700 * time.Millisecond}}
	if r, _, err := c.Exchange(q, srv.Addr()); err == nil {
		t.Fatalf("dropped source answered over UDP: %v", r)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("dropped source over UDP: %v, want a timeout", err)
	}

	// TCP: accepted, then nothing.
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: dropped.AsSlice()}, Timeout: time.Second}).Dial("tcp", srv.TCPAddr())
	if err != nil {
		t.Fatalf("dropped source could not connect over TCP: %v", err)
	}
	defer conn.Close()
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire))))
	_, _ = conn.Write(wire)
	_ = conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 512)); n != 0 || err == nil {
		t.Fatalf("dropped source over TCP: %d bytes, %v", n, err)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("dropped source over TCP: %v, want a read timeout (no reset, no close)", err)
	}
	start := time.Now()
	if err := shutdown(); err != nil {
		t.Fatalf("shutdown with a held connection: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("held connection still open after shutdown")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("shutdown took %s with a held connection", d)
	}
}

// BenchmarkDropCheck is the per-packet cost Config.Drop adds to an undropped query when drill
// wires it to a node's gossip fault rules during a blackhole (six dropped prefixes).
func BenchmarkDropCheck(b *testing.B) {
	f := gossip.NewFaults(gossip.Rules{Drop: []netip.Prefix{
		netip.MustParsePrefix("127.77.2.0/24"), netip.MustParsePrefix("127.77.250.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("127.10.1.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("127.10.2.0/24"),
	}})
	r := dropReader{dropUDP: f.Blocks}
	addr := net.Addr(&net.UDPAddr{IP: net.ParseIP("127.10.3.7"), Port: 40000})
	b.ReportAllocs()
	for b.Loop() {
		if r.dropUDP(remoteIP(addr)) {
			b.Fatal("dropped")
		}
	}
}
