package dnsgeo

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
)

// appAnswer asks app.Z A from src and returns the addresses and the TTL of the first record.
func appAnswer(t *testing.T, h *harness, src string) ([]string, uint32) {
	t.Helper()
	r := exchange(t, h.addr, src, "udp", newQuery("app."+zone, dns.TypeA, 0))
	var ttl uint32
	if len(r.Answer) > 0 {
		ttl = r.Answer[0].Header().Ttl
	}
	return aIPs(r.Answer), ttl
}

func statusText(t *testing.T, h *harness) string {
	t.Helper()
	r := exchange(t, h.addr, srcUSEast, "tcp", newQuery("_status."+zone, dns.TypeTXT, 0))
	return strings.Join(txtLines(r), "\n")
}

// TestHoldDown: a region that comes back is re-admitted only after it stayed healthy for the
// hold-down; a flap during hold-down restarts it; TTL stays degraded until re-admission.
func TestHoldDown(t *testing.T) {
	h := startHarness(t, testNet+".2.1", testTopology(), allUp)
	h.set(usEastDown)
	if got, ttl := appAnswer(t, h, srcUSEast); !slices.Equal(got, euWebs) || ttl != 1 {
		t.Fatalf("down: got %v ttl %d, want eu-west ttl 1", got, ttl)
	}

	h.clock.Advance(time.Second)
	h.set(allUp) // healthy again → hold-down
	if got, ttl := appAnswer(t, h, srcUSEast); !slices.Equal(got, euWebs) || ttl != 1 {
		t.Fatalf("in hold-down: got %v ttl %d, want eu-west ttl 1", got, ttl)
	}
	if st := statusText(t, h); !strings.Contains(st, "region=us-east healthy=false") || !strings.Contains(st, "state=hold-down") {
		t.Fatalf("status during hold-down:\n%s", st)
	}
	// us-east.app is not served either while in hold-down.
	r := exchange(t, h.addr, srcUSEast, "udp", newQuery("us-east.app."+zone, dns.TypeA, 0))
	if len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 1 {
		t.Fatalf("us-east.app during hold-down = %v", r)
	}

	// A flap during hold-down restarts it.
	h.clock.Advance(2 * time.Second)
	h.set(usEastDown)
	h.clock.Advance(time.Second)
	h.set(allUp)
	h.clock.Advance(2 * time.Second) // 2 s into the new hold-down of 3 s
	h.srv.Refresh()
	if got, _ := appAnswer(t, h, srcUSEast); !slices.Equal(got, euWebs) {
		t.Fatalf("after a flap, hold-down restarted: got %v, want eu-west", got)
	}

	// The watcher re-checks on its own while a region is in hold-down: no Refresh, no ping.
	h.clock.Advance(time.Second)
	waitFor(t, 3*time.Second, "re-admission after hold-down", func() bool {
		got, ttl := appAnswer(t, h, srcUSEast)
		return slices.Equal(got, usWebs) && ttl == 5
	})
	if st := statusText(t, h); !strings.Contains(st, "region=us-east healthy=true") || !strings.Contains(st, "ttl=5s") {
		t.Fatalf("status after re-admission:\n%s", st)
	}
}

// TestStartupGrace: while a starting instance has not seen a region healthy in gossip, it answers
// that region's users by proximity from the topology plan (never NODATA, never the other region);
// the grace ends when the region is first seen healthy (admitted at once, no hold-down) or when it
// runs out (the region is failed as usual).
func TestStartupGrace(t *testing.T) {
	topo := testTopology()
	var plan []string
	for _, n := range topo.NodesOf(topology.RoleWeb, "us-east") {
		plan = append(plan, n.IP.String())
	}
	h := startHarnessGrace(t, testNet+".2.2", topo, usEastSick, 10*time.Second)
	if got, _ := appAnswer(t, h, srcUSEast); !slices.Equal(got, plan) {
		t.Fatalf("starting, us-east not yet healthy: got %v, want its plan addresses %v", got, plan)
	}
	if got, _ := appAnswer(t, h, srcEUWest); !slices.Equal(got, euWebs) {
		t.Fatalf("eu-west users: got %v, want eu-west", got)
	}
	if st := statusText(t, h); !strings.Contains(st, "reason=starting") {
		t.Fatalf("status while starting:\n%s", st)
	}
	h.clock.Advance(11 * time.Second)
	h.srv.Refresh()
	if got, _ := appAnswer(t, h, srcUSEast); !slices.Equal(got, euWebs) {
		t.Fatalf("after the grace, us-east still unhealthy: got %v, want eu-west", got)
	}

	// Seen healthy during the grace: admitted at once, and failed at once afterwards.
	h2 := startHarnessGrace(t, testNet+".2.3", topo, usEastSick, 10*time.Second)
	h2.set(allUp)
	if got, _ := appAnswer(t, h2, srcUSEast); !slices.Equal(got, usWebs) {
		t.Fatalf("first seen healthy: got %v, want us-east without hold-down", got)
	}
	h2.set(usEastDown)
	if got, _ := appAnswer(t, h2, srcUSEast); !slices.Equal(got, euWebs) {
		t.Fatalf("down after being seen: got %v, want eu-west at once", got)
	}
}

// TestMembershipPing: a membership change reaches answers through Subscribe alone.
func TestMembershipPing(t *testing.T) {
	h := startHarness(t, testNet+".2.2", testTopology(), allUp)
	h.members.Set(usEastDown.members()...) // no Refresh: the watcher must react to the ping
	waitFor(t, 3*time.Second, "failover after a membership ping", func() bool {
		got, _ := appAnswer(t, h, srcUSEast)
		return slices.Equal(got, euWebs)
	})
	// One web node back (the other still dead) is enough for the region once hold-down passes.
	ms := usEastDown.members()
	for i := range ms {
		if ms[i].Name == "us-east-web-2" {
			ms[i].State = gossip.StateAlive
		}
	}
	h.members.Set(ms...)
	waitFor(t, 3*time.Second, "hold-down to start", func() bool {
		return strings.Contains(statusText(t, h), "state=hold-down")
	})
	h.clock.Advance(3 * time.Second)
	waitFor(t, 3*time.Second, "re-admission with one web node", func() bool {
		got, _ := appAnswer(t, h, srcUSEast)
		return slices.Equal(got, []string{usWeb2})
	})
}

// TestFailStaticRecovery: isolated → last good view; members visible again → their view applies.
func TestFailStaticRecovery(t *testing.T) {
	h := startHarness(t, testNet+".2.3", testTopology(), allUp)
	h.set(isolated)
	if got, _ := appAnswer(t, h, srcUSEast); !slices.Equal(got, usWebs) {
		t.Fatalf("fail static: got %v, want the last good us-east answer", got)
	}
	h.set(usEastDown)
	if got, _ := appAnswer(t, h, srcUSEast); !slices.Equal(got, euWebs) {
		t.Fatalf("after isolation ends: got %v, want eu-west", got)
	}
	if st := statusText(t, h); !strings.Contains(st, "fail_static=false") {
		t.Fatalf("status after isolation:\n%s", st)
	}
}

// TestBootstrapIsolated: a fresh instance that sees nobody serves the topology plan, fail-static.
func TestBootstrapIsolated(t *testing.T) {
	h := startHarness(t, testNet+".2.4", testTopology(), isolated)
	got, ttl := appAnswer(t, h, srcEUWest)
	if !slices.Equal(got, []string{"127.77.2.10", "127.77.2.11"}) || ttl != 5 {
		t.Fatalf("bootstrap answer = %v ttl %d, want eu-west topology addresses", got, ttl)
	}
	if st := statusText(t, h); !strings.Contains(st, "fail_static=true") {
		t.Fatalf("status:\n%s", st)
	}
}

// TestStaticMode: without membership the server serves the topology plan.
func TestStaticMode(t *testing.T) {
	srv, err := New(Config{Topology: testTopology(), Listen: testNet + ".2.5:0", Instance: "eu-west-dns-1"})
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, srv)
	h := &harness{srv: srv, addr: srv.Addr()}
	if got, _ := appAnswer(t, h, srcUSEast); !slices.Equal(got, []string{"127.77.1.10", "127.77.1.11"}) {
		t.Fatalf("static answer = %v", got)
	}
	st := statusText(t, h)
	if !strings.Contains(st, "mode=static") || !strings.Contains(st, "region=eu-west") {
		t.Fatalf("status:\n%s", st)
	}
}

// TestPreBoundSockets: the server serves on sockets the caller bound.
func TestPreBoundSockets(t *testing.T) {
	pc, err := net.ListenPacket("udp", testNet+".2.6:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", testNet+".2.7:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	srv, err := New(Config{Topology: testTopology(), PacketConn: pc, Listener: ln, Instance: "us-east-dns-1",
		Members: newStaticMembers(allUp.members()...)})
	if err != nil {
		pc.Close()
		ln.Close()
		t.Fatal(err)
	}
	startServer(t, srv)
	if srv.Addr() != pc.LocalAddr().String() || srv.TCPAddr() != ln.Addr().String() {
		t.Fatalf("Addr %s TCPAddr %s, want %s and %s", srv.Addr(), srv.TCPAddr(), pc.LocalAddr(), ln.Addr())
	}
	for _, proto := range []string{"udp", "tcp"} {
		addr := srv.Addr()
		if proto == "tcp" {
			addr = srv.TCPAddr()
		}
		r := exchange(t, addr, srcEUWest, proto, newQuery("app."+zone, dns.TypeA, 0))
		if got := aIPs(r.Answer); !slices.Equal(got, euWebs) {
			t.Fatalf("%s: answer %v", proto, got)
		}
	}
}

// TestTruncation: a large answer is truncated (TC) over UDP to 512 without EDNS or to the EDNS
// size, and sent whole over TCP.
func TestTruncation(t *testing.T) {
	ms := allUp.members()
	var want []string
	for i := 0; i < 60; i++ {
		ip := fmt.Sprintf(testNet+".103.%d", 10+i)
		want = append(want, ip)
		ms = append(ms, member(fmt.Sprintf("us-east-web-%d", 3+i), "web", "us-east", ip+":8080", gossip.StateAlive, true))
	}
	want = append(want, usWebs...)
	slices.Sort(want)
	h := startHarness(t, testNet+".2.8", testTopology(), allUp)
	h.members.Set(ms...)
	h.srv.Refresh()

	r := exchange(t, h.addr, srcUSEast, "udp", newQuery("app."+zone, dns.TypeA, 0))
	if !r.Truncated || len(r.Answer) >= len(want) {
		t.Fatalf("UDP without EDNS: TC=%v with %d answers, want TC and fewer than %d", r.Truncated, len(r.Answer), len(want))
	}
	r.Compress = true // the server compresses what it truncates; measure it the same way
	if wire, _ := r.Pack(); len(wire) > 512 {
		t.Fatalf("UDP reply without EDNS is %d bytes, over 512", len(wire))
	}
	r = exchange(t, h.addr, srcUSEast, "udp", newQuery("app."+zone, dns.TypeA, 700))
	r.Compress = true
	if wire, _ := r.Pack(); !r.Truncated || len(wire) > 700 {
		t.Fatalf("UDP with EDNS 700: TC=%v size %d", r.Truncated, len(wire))
	}
	r = exchange(t, h.addr, srcUSEast, "udp", newQuery("app."+zone, dns.TypeA, 4096))
	if r.Truncated || !slices.Equal(aIPs(r.Answer), want) {
		t.Fatalf("UDP with EDNS 4096: TC=%v, %d answers", r.Truncated, len(r.Answer))
	}
	r = exchange(t, h.addr, srcUSEast, "tcp", newQuery("app."+zone, dns.TypeA, 0))
	if r.Truncated || !slices.Equal(aIPs(r.Answer), want) {
		t.Fatalf("TCP: TC=%v, %d answers", r.Truncated, len(r.Answer))
	}
}

// TestQueryLogAndMetrics: every query logs one JSON line with the reason; counters and gauges move.
func TestQueryLogAndMetrics(t *testing.T) {
	h := startHarness(t, testNet+".2.9", testTopology(), allUp)
	exchange(t, h.addr, srcUnknown, "udp", newQuery("app."+zone, dns.TypeA, 0, ecs("203.0.113.0/24")))
	h.set(usEastDown)
	exchange(t, h.addr, srcUSEast, "udp", newQuery("app."+zone, dns.TypeA, 0))
	exchange(t, h.addr, srcUSEast, "udp", newQuery("nothing."+zone, dns.TypeA, 0))
	exchange(t, h.addr, srcUSEast, "udp", newQuery("app."+zone, dns.TypeA, 0, rawECS(9, 8, 0, 1)))

	var lines []map[string]string
	for _, l := range strings.Split(strings.TrimSpace(h.qlog.String()), "\n") {
		var rec map[string]string
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("query log line is not JSON: %q: %v", l, err)
		}
		lines = append(lines, rec)
	}
	if len(lines) != 4 {
		t.Fatalf("want 4 log lines, got %d", len(lines))
	}
	want := []map[string]string{
		{"ecs": "203.0.113.0/24/24", "qname": "app." + zone, "qtype": "A", "rcode": "NOERROR", "region": "us-east",
			"reason": "ecs 203.0.113.0/24 → us-east (nearest)", "proto": "udp"},
		{"ecs": "", "rcode": "NOERROR", "region": "eu-west", "reason": "source " + testNet + ".11.0/24 → us-east down → eu-west"},
		{"rcode": "NXDOMAIN", "region": "", "reason": "no such name"},
		{"rcode": "FORMERR", "reason": errECSFamily.Error()},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("log line %d: %s = %q, want %q (line %v)", i, k, lines[i][k], v, lines[i])
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, lines[i]["time"]); err != nil {
			t.Errorf("log line %d: time %q: %v", i, lines[i]["time"], err)
		}
		if !strings.HasPrefix(lines[i]["client"], testNet+".1") {
			t.Errorf("log line %d: client %q", i, lines[i]["client"])
		}
	}

	values := gather(t, h.reg)
	checks := map[string]float64{
		`drill_dns_queries_total{rcode="NOERROR",region="us-east"}`:           1,
		`drill_dns_queries_total{rcode="NOERROR",region="eu-west"}`:           1,
		`drill_dns_queries_total{rcode="NXDOMAIN",region="none"}`:             1,
		`drill_dns_queries_total{rcode="FORMERR",region="none"}`:              1,
		`drill_dns_region_state_changes_total{region="us-east",state="down"}`: 1,
		`drill_dns_region_admitted{region="us-east"}`:                         0,
		`drill_dns_region_admitted{region="eu-west"}`:                         1,
		`drill_dns_fail_static`:                                               0,
	}
	for k, v := range checks {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	changed := gather(t, h.reg)[`drill_dns_region_last_change_timestamp_seconds{region="us-east"}`]
	h.clock.Advance(1500 * time.Millisecond)
	if got := gather(t, h.reg)[`drill_dns_region_last_change_timestamp_seconds{region="us-east"}`]; got != changed || got < 1e9 {
		t.Errorf("last change timestamp = %v after time passed without a change, want %v (a Unix time)", got, changed)
	}
}

// gather flattens a registry into "name{labels}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = metricValue(m)
		}
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// TestLifecycle: Status works without a start; Start fails cleanly on a taken address and twice.
func TestLifecycle(t *testing.T) {
	srv, err := New(Config{Topology: testTopology(), Instance: "us-east-dns-1", Members: newStaticMembers(usEastDown.members()...), StartupGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	st := strings.Join(srv.Status(), "\n")
	if !strings.Contains(st, "region=us-east healthy=false") || !strings.Contains(st, "reason=us-east down -> eu-west") {
		t.Fatalf("Status:\n%s", st)
	}

	taken, err := net.ListenPacket("udp", testNet+".4.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy, err := New(Config{Topology: testTopology(), Listen: taken.LocalAddr().String(), Instance: "us-east-dns-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := busy.Start(ctx); err == nil {
		t.Fatal("Start on a taken address succeeded")
	}

	ok, err := New(Config{Topology: testTopology(), Listen: testNet + ".4.2:0", Instance: "us-east-dns-1"})
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, ok)
	if err := ok.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a topology succeeded")
	}
}
