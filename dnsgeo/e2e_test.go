package dnsgeo

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
)

// e2eKey and e2eLabel isolate this test's gossip cluster.
var e2eKey = []byte("dnsgeo-e2e-test-key-0123456789ab")

const e2eLabel = "dnsgeo-e2e"

// startGossip starts a real gossip node on ip (any free port) and stops it at cleanup.
func startGossip(t *testing.T, name, ip string, meta gossip.Meta, seeds ...string) *gossip.Node {
	t.Helper()
	n, err := gossip.Start(gossip.Config{Name: name, BindIP: ip, Port: 0, Profile: gossip.ProfileFast,
		Key: e2eKey, Label: e2eLabel, Seeds: seeds, RejoinInterval: 500 * time.Millisecond}, meta)
	if err != nil {
		t.Fatalf("gossip start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// TestEndToEndGossip runs two DNS instances, each following its own node of a real gossip cluster
// with four web nodes. Web members of us-east leave and die; every DNS instance must stop
// returning them within a bound, and return them after the partition heals and the hold-down.
func TestEndToEndGossip(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end gossip test skipped in -short mode")
	}
	const (
		leaveBound   = 5 * time.Second  // a graceful leave is broadcast at once
		deathBound   = 10 * time.Second // the fast profile declares a silent node dead in ~2.6–4.5 s
		recoverBound = 15 * time.Second // rejoin (every 500 ms here) + hold-down
	)
	topo := testTopology()
	topo.DNS.HoldDown = topology.Duration(2 * time.Second)

	webMeta := func(region, ip string) gossip.Meta {
		return gossip.Meta{Region: region, Role: "web", Healthy: true, Service: ip + ":8080"}
	}
	// The seed never fails, so every other node can always rejoin through it.
	seed := startGossip(t, "eu-west-web-1", testNet+".22.10", webMeta("eu-west", testNet+".22.10"))
	seedAddr := seed.LocalAddr()
	startGossip(t, "eu-west-web-2", testNet+".22.11", webMeta("eu-west", testNet+".22.11"), seedAddr)
	usWeb1Node := startGossip(t, "us-east-web-1", testNet+".21.10", webMeta("us-east", testNet+".21.10"), seedAddr)
	usWeb2Node := startGossip(t, "us-east-web-2", testNet+".21.11", webMeta("us-east", testNet+".21.11"), seedAddr)

	type instance struct {
		name string
		srv  *Server
	}
	var dnsInstances []instance
	for _, d := range []struct{ name, region, ip string }{
		{"us-east-dns-1", "us-east", testNet + ".21.30"},
		{"eu-west-dns-1", "eu-west", testNet + ".22.30"},
	} {
		node := startGossip(t, d.name, d.ip, gossip.Meta{Region: d.region, Role: "dns", Healthy: true}, seedAddr)
		srv, err := New(Config{Topology: topo, Listen: net.JoinHostPort(d.ip, "0"), Instance: d.name, Members: node})
		if err != nil {
			t.Fatal(err)
		}
		startServer(t, srv)
		dnsInstances = append(dnsInstances, instance{d.name, srv})
	}

	// ask returns every instance's answer for a us-east client (by ECS).
	ask := func() map[string][]string {
		out := map[string][]string{}
		for _, in := range dnsInstances {
			r := exchange(t, in.srv.Addr(), testNet+".20.5", "udp", newQuery("app."+zone, dns.TypeA, 0, ecs("203.0.113.0/24")))
			out[in.name] = aIPs(r.Answer)
		}
		return out
	}
	all := func(want []string) func() bool {
		return func() bool {
			for _, got := range ask() {
				if !slices.Equal(got, want) {
					return false
				}
			}
			return true
		}
	}
	usBoth := []string{testNet + ".21.10", testNet + ".21.11"}
	euBoth := []string{testNet + ".22.10", testNet + ".22.11"}

	waitFor(t, 15*time.Second, "cluster to converge (every instance answers us-east web nodes)", all(usBoth))

	// 1. us-east-web-1 leaves gracefully: it disappears from every answer; the region stays up.
	start := time.Now()
	if err := usWeb1Node.Leave(2 * time.Second); err != nil {
		t.Logf("leave: %v", err)
	}
	_ = usWeb1Node.Shutdown()
	waitFor(t, leaveBound, "every instance to drop the web node that left", all([]string{testNet + ".21.11"}))
	t.Logf("leave reflected by every instance after %s", time.Since(start).Round(time.Millisecond))

	// 2. us-east-web-2 is cut off from everyone (black-holed): gossip declares it dead and every
	// instance fails us-east clients over to eu-west.
	start = time.Now()
	usWeb2Node.Faults().Set(gossip.Rules{Drop: []netip.Prefix{netip.MustParsePrefix(testNet + ".20.0/22")}})
	waitFor(t, deathBound, "every instance to fail over to eu-west", all(euBoth))
	t.Logf("death reflected by every instance after %s", time.Since(start).Round(time.Millisecond))
	for _, in := range dnsInstances {
		st := strings.Join(txtLines(exchange(t, in.srv.Addr(), testNet+".20.5", "tcp", newQuery("_status."+zone, dns.TypeTXT, 0))), "\n")
		if !strings.Contains(st, "region=us-east healthy=false") || !strings.Contains(st, "us-east-web-2 dead") {
			t.Errorf("%s _status after the death:\n%s", in.name, st)
		}
	}

	// 3. Heal: the partition ends and us-east-web-1 comes back. The region returns only after
	// the hold-down, and never earlier than the hold-down after the heal.
	healed := time.Now()
	usWeb2Node.Faults().Clear()
	startGossip(t, "us-east-web-1", testNet+".21.10", webMeta("us-east", testNet+".21.10"), seedAddr)
	var earliest time.Duration
	waitFor(t, recoverBound, "every instance to re-admit us-east", func() bool {
		answers := ask()
		for _, got := range answers {
			if slices.Equal(got, usBoth) || slices.Equal(got, []string{testNet + ".21.11"}) || slices.Equal(got, []string{testNet + ".21.10"}) {
				if earliest == 0 {
					earliest = time.Since(healed)
				}
			}
		}
		for _, got := range answers {
			if !slices.Equal(got, usBoth) {
				return false
			}
		}
		return true
	})
	if earliest < topo.DNS.HoldDown.D() {
		t.Errorf("us-east answered again %s after the heal, before the %s hold-down", earliest, topo.DNS.HoldDown.D())
	}
	t.Logf("re-admitted by every instance after %s (first instance after %s)", time.Since(healed).Round(time.Millisecond), earliest.Round(time.Millisecond))
}
