package dnsgeo

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestRateLimiterBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(10, func() time.Time { return now })
	a, sameNet, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("198.51.100.7")
	for i := range 10 {
		src := a
		if i%2 == 1 {
			src = sameNet // one /24 shares a bucket
		}
		if !l.allow(src) {
			t.Fatalf("answer %d of the burst refused", i+1)
		}
	}
	if l.allow(a) || l.allow(sameNet) {
		t.Fatal("11th answer within the same second allowed")
	}
	if !l.allow(other) {
		t.Fatal("another client network limited by the first one's rate")
	}
	now = now.Add(100 * time.Millisecond) // one token back at 10/s
	if !l.allow(a) || l.allow(a) {
		t.Fatal("refill: want exactly one answer after 100 ms at 10/s")
	}
	v6 := netip.MustParseAddr("2001:db8:0:ff12::1")
	if clientNetwork(v6) != netip.MustParsePrefix("2001:db8:0:ff00::/56") || clientNetwork(netip.MustParseAddr("::ffff:192.0.2.9")) != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("client networks: %v %v", clientNetwork(v6), clientNetwork(netip.MustParseAddr("::ffff:192.0.2.9")))
	}
}

// TestResponseRateLimitOverUDP: a flood of UDP queries from one client network (a forged victim
// address, in an amplification attack) gets at most the configured rate of answers; another
// network is still answered, and so is the flooded one over TCP (not forgeable).
func TestResponseRateLimitOverUDP(t *testing.T) {
	const rate = 20
	srv, err := New(Config{Topology: testTopology(), Listen: dropNet + ".20.1:0", Instance: "us-east-dns-1", ResponseRate: rate})
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	q := newQuery("_status.drill.test.", dns.TypeTXT, 0)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(dropNet + ".21.5")}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(srv.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 200
	start := time.Now()
	for range sent {
		if _, err := conn.Write(wire); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	answered := 0
	buf := make([]byte, 65535)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := conn.Read(buf); err != nil {
			break
		}
		answered++
	}
	// The burst (one second's worth) plus what refilled while the flood was being sent.
	limit := rate + int(elapsed.Seconds()*rate) + 1
	t.Logf("%d UDP queries in %s: %d answered (limit %d)", sent, elapsed.Round(time.Millisecond), answered, limit)
	if answered == 0 || answered > limit {
		t.Fatalf("%d of %d flooded queries answered, want 1..%d", answered, sent, limit)
	}
	if r := exchange(t, srv.Addr(), dropNet+".22.5", "udp", q); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("another client network: %v", r)
	}
	if r := exchange(t, srv.Addr(), dropNet+".21.5", "tcp", q); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("the flooded network over TCP: %v", r)
	}
}

// TestTCPConnectionCap: with every allowed connection open, a further connection is not served
// until one of them closes.
func TestTCPConnectionCap(t *testing.T) {
	srv, err := New(Config{Topology: testTopology(), Listen: dropNet + ".23.1:0", Instance: "us-east-dns-1", MaxTCPConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	q := newQuery("app.drill.test.", dns.TypeA, 0)
	dial := func() *dns.Conn {
		t.Helper()
		c, err := dns.DialTimeout("tcp", srv.TCPAddr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ask := func(c *dns.Conn, wait time.Duration) error {
		_ = c.SetDeadline(time.Now().Add(wait))
		if err := c.WriteMsg(q); err != nil {
			return err
		}
		_, err := c.ReadMsg()
		return err
	}
	held := []*dns.Conn{dial(), dial()}
	for i, c := range held {
		if err := ask(c, 2*time.Second); err != nil {
			t.Fatalf("connection %d within the cap: %v", i+1, err)
		}
	}
	third := dial() // accepted by the kernel's backlog, not served
	if err := ask(third, 500*time.Millisecond); err == nil {
		t.Fatal("a connection over the cap was served")
	}
	_ = held[0].Close()
	// The pending query is read once the server accepts the connection.
	_ = third.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.ReadMsg(); err != nil {
		t.Fatalf("the waiting connection after one closed: %v", err)
	}
}
