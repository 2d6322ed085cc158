package dnsgeo

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// Test addresses: everything binds inside testNet.
var (
	srcUSEast  = testNet + ".11.5"   // in us-east's test client subnet
	srcEUWest  = testNet + ".12.5"   // in eu-west's test client subnet
	srcUnknown = testNet + ".13.5"   // in no client subnet
	usWeb1     = testNet + ".101.10" // us-east web Service addresses published in gossip
	usWeb2     = testNet + ".101.11"
	euWeb1     = testNet + ".102.10"
	euWeb2     = testNet + ".102.11"
)

// waitFor polls cond until it holds or the timeout passes (never a bare sleep for readiness).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testTopology is the default topology with client subnets our tests can source from.
func testTopology() *topology.Topology {
	t := topology.Default()
	t.Regions[0].ClientSubnets = []string{"203.0.113.0/24", testNet + ".11.0/24"}
	t.Regions[1].ClientSubnets = []string{"198.51.100.0/24", testNet + ".12.0/24"}
	return t
}

// fakeClock is a controllable Config.Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// staticMembers is a Membership whose member list the test sets (the e2e test uses real gossip).
type staticMembers struct {
	mu      sync.Mutex
	members []gossip.Member
	subs    map[int]chan struct{}
	next    int
}

func newStaticMembers(ms ...gossip.Member) *staticMembers {
	return &staticMembers{members: ms, subs: map[int]chan struct{}{}}
}

func (f *staticMembers) Members() []gossip.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

func (f *staticMembers) Subscribe() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{}, 1)
	id := f.next
	f.next++
	f.subs[id] = ch
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

// Set replaces the members and pings subscribers.
func (f *staticMembers) Set(ms ...gossip.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = ms
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// member builds a gossip member.
func member(name, role, region, service string, st gossip.State, healthy bool) gossip.Member {
	return gossip.Member{Name: name, Addr: testNet + ".200.1:7946", State: st,
		Meta: gossip.Meta{Region: region, Role: topology.Role(role), Service: service, Healthy: healthy}}
}

// cluster is a member list for a health state of the test topology.
type cluster struct {
	usWeb, euWeb gossip.State // state of both web nodes of each region
	usHealthy    bool         // Meta.Healthy of us-east's web nodes
	isolated     bool         // nobody else alive: only this instance
}

func (c cluster) members() []gossip.Member {
	self := member("us-east-dns-1", "dns", "us-east", "", gossip.StateAlive, true)
	if c.isolated {
		dead := member("eu-west-dns-1", "dns", "eu-west", "", gossip.StateDead, true)
		return []gossip.Member{self, dead}
	}
	db := member("us-east-db-1", "db", "us-east", testNet+".101.20:7000", gossip.StateAlive, true)
	db.Meta.Primary, db.Meta.Epoch = true, 3
	db2 := member("eu-west-db-1", "db", "eu-west", testNet+".102.20:7000", gossip.StateAlive, true)
	db2.Meta.Epoch = 3
	return []gossip.Member{
		self, db, db2,
		member("eu-west-dns-1", "dns", "eu-west", "", gossip.StateAlive, true),
		member("us-east-web-1", "web", "us-east", usWeb1+":8080", c.usWeb, c.usHealthy),
		member("us-east-web-2", "web", "us-east", usWeb2+":8080", c.usWeb, c.usHealthy),
		member("eu-west-web-1", "web", "eu-west", euWeb1+":8080", c.euWeb, true),
		member("eu-west-web-2", "web", "eu-west", euWeb2+":8080", c.euWeb, true),
	}
}

var (
	allUp      = cluster{usWeb: gossip.StateAlive, euWeb: gossip.StateAlive, usHealthy: true}
	usEastDown = cluster{usWeb: gossip.StateDead, euWeb: gossip.StateAlive, usHealthy: true}
	usEastLeft = cluster{usWeb: gossip.StateLeft, euWeb: gossip.StateAlive, usHealthy: true}
	usEastSick = cluster{usWeb: gossip.StateAlive, euWeb: gossip.StateAlive, usHealthy: false}
	allDown    = cluster{usWeb: gossip.StateDead, euWeb: gossip.StateDead, usHealthy: true}
	isolated   = cluster{isolated: true}
)

// harness is a started server with controllable membership and clock.
type harness struct {
	srv     *Server
	members *staticMembers
	clock   *fakeClock
	reg     *prometheus.Registry
	qlog    *syncBuffer
	addr    string
}

// syncBuffer is a goroutine-safe bytes.Buffer for the query log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startHarness starts a server on ip:0 with the members of c, without a startup grace.
func startHarness(t *testing.T, ip string, topo *topology.Topology, c cluster) *harness {
	t.Helper()
	return startHarnessGrace(t, ip, topo, c, -1)
}

// startHarnessGrace is startHarness with a startup grace.
func startHarnessGrace(t *testing.T, ip string, topo *topology.Topology, c cluster, grace time.Duration) *harness {
	t.Helper()
	h := &harness{members: newStaticMembers(c.members()...), clock: newFakeClock(),
		reg: prometheus.NewRegistry(), qlog: &syncBuffer{}}
	srv, err := New(Config{
		Topology:     topo,
		Listen:       net.JoinHostPort(ip, "0"),
		Instance:     "us-east-dns-1",
		Members:      h.members,
		QueryLog:     h.qlog,
		Registry:     h.reg,
		Clock:        h.clock.Now,
		StartupGrace: grace,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	startServer(t, srv)
	h.srv, h.addr = srv, srv.Addr()
	return h
}

// startServer starts srv and shuts it down at cleanup.
func startServer(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// set applies a health state synchronously.
func (h *harness) set(c cluster) {
	h.members.Set(c.members()...)
	h.srv.Refresh()
}

// exchange sends m from src (an IP in testNet) over proto and returns the reply.
func exchange(t *testing.T, server, src, proto string, m *dns.Msg) *dns.Msg {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	if proto == "tcp" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	} else {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
	}
	c := &dns.Client{Net: proto, Dialer: d, Timeout: 2 * time.Second, UDPSize: 65535}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // UDP on a busy box may drop; bounded retries
		r, _, err := c.Exchange(m, server)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("exchange %s %s from %s: %v", proto, m.Question[0].String(), src, lastErr)
	return nil
}

// newQuery builds a query; ecs may be nil or an EDNS0 option; edns adds an OPT with that size.
func newQuery(name string, qtype uint16, edns uint16, opts ...dns.EDNS0) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	if edns > 0 || len(opts) > 0 {
		if edns == 0 {
			edns = 1232
		}
		m.SetEdns0(edns, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, opts...)
	}
	return m
}

// ecs is a well-formed ECS option for prefix.
func ecs(prefix string) *dns.EDNS0_SUBNET {
	p := netip.MustParsePrefix(prefix)
	fam := uint16(1)
	if p.Addr().Is6() {
		fam = 2
	}
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(p.Bits()),
		Address: net.IP(p.Addr().AsSlice())}
}

// rawECS is an ECS option with exactly the given wire body (for malformed options).
func rawECS(family uint16, source, scope uint8, addr ...byte) *dns.EDNS0_LOCAL {
	data := append([]byte{byte(family >> 8), byte(family), source, scope}, addr...)
	return &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: data}
}

// replyECS returns the ECS option of a reply (nil if none).
func replyECS(m *dns.Msg) *dns.EDNS0_SUBNET {
	o := m.IsEdns0()
	if o == nil {
		return nil
	}
	for _, e := range o.Option {
		if s, ok := e.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	return nil
}

// aIPs lists the A addresses of an answer section, sorted.
func aIPs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// fakeWriter is a dns.ResponseWriter for handler tests: it packs the reply like the server does
// and keeps the unpacked result, i.e. what the client would see.
type fakeWriter struct {
	remote net.Addr
	reply  *dns.Msg
	wire   []byte
	err    error
}

func newFakeWriter(ip string, tcp bool) *fakeWriter {
	if tcp {
		return &fakeWriter{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	}
	return &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

func (w *fakeWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 92, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	w.wire, w.err = m.PackBuffer(w.wire[:0])
	if w.err != nil {
		return w.err
	}
	w.reply = new(dns.Msg)
	w.err = w.reply.Unpack(w.wire)
	return w.err
}
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}

// testNet is this test process's own loopback /16 ("127.N"), from netalloc, so that packages
// testing in parallel never share an address.
var testNet = netalloc.LoopbackNet16ForProcess()

// benchNet is this test process's own loopback /16 ("127.N"), from netalloc, so that packages
// testing in parallel never share an address.
var benchNet = netalloc.LoopbackNet16ForProcess()

// dropNet is this test process's own loopback /16 ("127.N"), from netalloc, so that packages
// testing in parallel never share an address.
var dropNet = netalloc.LoopbackNet16ForProcess()
