package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// testPlan is the default topology's loopback plan in a range of this test's own.
func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	topo := topology.Default()
	topo.Network.LoopbackBase = netalloc.Loopback(t).String()
	p, err := topology.NewPlan(topo, topology.PlanOptions{Runtime: "local", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGossipPeersAndBaseRules(t *testing.T) {
	p := testPlan(t)
	tp := p.Topology
	peers := gossipPeers(tp, "us-east-web-1")
	if len(peers) != 7 {
		t.Fatalf("%d peers, want the 7 other gossip members (no WAN node, no witness): %v", len(peers), peers)
	}
	self, _ := tp.Node("us-east-web-1")
	if slices.Contains(peers, self.Addr(topology.PortGossip)) {
		t.Fatal("a node is its own gossip peer")
	}
	r := baseRules(tp, "us-east")
	lat, _ := tp.SiteLatency("us-east", "eu-west")
	if len(r.Delays) != 2 || len(r.Drop) != 0 {
		t.Fatalf("base rules %+v, want a delay to eu-west and to the witness", r)
	}
	for _, d := range r.Delays {
		if d.Prefix == tp.SitePrefix("eu-west") && d.Latency != lat {
			t.Errorf("delay to eu-west %s, want the topology's %s", d.Latency, lat)
		}
	}
	if got := serviceAddr(self, "0.0.0.0"); got != self.Addr(topology.PortWeb) {
		t.Errorf("service address %s, want the plan's %s when bound to any address", got, self.Addr(topology.PortWeb))
	}
}

// TestControlEndpoint: every call needs the plan's secret; fault rules are layered over the base
// WAN delays (a fault delay replaces the base delay for its prefix) and read back as set.
func TestControlEndpoint(t *testing.T) {
	p := testPlan(t)
	node, _ := p.Topology.Node("eu-west-web-1")
	g, err := gossip.Start(gossip.Config{Name: node.Name, BindIP: node.IP.String(), Port: 0, Profile: topology.ProfileFast,
		Key: p.GossipKey}, gossip.Meta{Region: node.Region, Role: node.Role})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	clk := clock.New()
	faults := &disk.Faults{}
	reg := prometheus.NewRegistry()
	c := newControl(p, node, g, clk, faults, t.TempDir(), reg, slog.New(slog.DiscardHandler))
	c.registerMetrics(reg)
	// active is drill_node_fault_active of the layer, as the node's /metrics would say it.
	active := func(layer string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if mf.GetName() == "drill_node_fault_active" && l.GetName() == "layer" && l.GetValue() == layer {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		t.Fatalf("no drill_node_fault_active{layer=%q}", layer)
		return 0
	}
	srv := httptest.NewServer(c.handler())
	t.Cleanup(srv.Close)

	// call signs with the run's control key derived from secret ("" sends the request unsigned).
	call := func(method, path, secret string, body any) *http.Response {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
		hc := http.DefaultClient
		if secret != "" {
			hc = peerauth.ClientFor(peerauth.Derive(secret, peerauth.PurposeControl), 5*time.Second, func(string) string { return node.Name })
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := call(http.MethodGet, "/v1/info", "", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned info: %s", r.Status)
	}
	// /metrics alone is open, and read-only.
	if r := call(http.MethodGet, "/metrics", "", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("unsigned GET /metrics: %s", r.Status)
	} else if b, _ := io.ReadAll(r.Body); !bytes.Contains(b, []byte("drill_node_fault_active")) {
		t.Fatalf("GET /metrics lacks drill_node_fault_active:\n%s", b)
	}
	if r := call(http.MethodPut, "/metrics", "", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned PUT /metrics: %s, want 401", r.Status)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/info", nil)
	if _, err := peerauth.Client(peerauth.Derive("another run", peerauth.PurposeControl), time.Second, nil).Do(req); err == nil {
		t.Fatal("a call signed with another run's key was answered as if valid")
	}
	// Signed with this run's key but for another node (or for none): a request captured on its
	// way to another node and replayed here is refused.
	for _, to := range []string{"eu-west-db-1", ""} {
		hc := peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeControl), time.Second, func(string) string { return to })
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/info", nil)
		if _, err := hc.Do(req); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("a call signed for node %q answered by %s: %v, want 401", to, node.Name, err)
		}
	}
	req.Header.Set("Authorization", "Bearer "+p.Secret) // the old bearer scheme, secret in the clear
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bearer secret: %v %v", r, err)
	}
	var info Info
	if err := json.NewDecoder(call(http.MethodGet, "/v1/info", p.Secret, nil).Body).Decode(&info); err != nil || info.RunID != p.RunID || info.Node != node.Name {
		t.Fatalf("info %+v %v", info, err)
	}

	us := p.Topology.SitePrefix("us-east")
	wit := p.Topology.SitePrefix("witness")
	rules := gossip.Rules{DropOut: []netip.Prefix{us}, Delays: []gossip.Delay{{Prefix: wit, Latency: 500 * time.Millisecond}}}
	if r := call(http.MethodPut, "/v1/gossip/faults", p.Secret, rules); r.StatusCode != http.StatusOK {
		t.Fatalf("put rules: %s", r.Status)
	}
	var back gossip.Rules
	if err := json.NewDecoder(call(http.MethodGet, "/v1/gossip/faults", p.Secret, nil).Body).Decode(&back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.DropOut, rules.DropOut) || len(back.Delays) != 1 {
		t.Fatalf("rules read back as %+v", back)
	}
	if active("network") != 1 || active("clock") != 0 || active("disk") != 0 {
		t.Fatalf("fault gauges network %v clock %v disk %v, want 1 0 0", active("network"), active("clock"), active("disk"))
	}
	// The transport's rules: the fault's, plus the base delay to us-east (the fault's delay to the
	// witness replaces the base one).
	applied := g.Faults().Rules()
	if !slices.Equal(applied.DropOut, []netip.Prefix{us}) || len(applied.Delays) != 2 {
		t.Fatalf("transport rules %+v", applied)
	}
	for _, d := range applied.Delays {
		if d.Prefix == wit && d.Latency != 500*time.Millisecond {
			t.Errorf("witness delay %s, want the fault's", d.Latency)
		}
	}
	if !g.Faults().Blocks(netip.MustParseAddr(us.Addr().Next().String())) {
		t.Error("a one-way drop does not block conversations with us-east")
	}
	if r := call(http.MethodDelete, "/v1/gossip/faults", p.Secret, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("delete rules: %s", r.Status)
	}
	if applied := g.Faults().Rules(); len(applied.DropOut) != 0 || len(applied.Delays) != 2 {
		t.Fatalf("after delete the transport keeps %+v, want the base delays only", applied)
	}
	if active("network") != 0 {
		t.Fatal("the network fault gauge stays 1 after the rules were deleted (the base delays are no fault)")
	}
	if r := call(http.MethodPut, "/v1/gossip/faults", p.Secret, "not rules"); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad rules: %s", r.Status)
	}

	// The clock: shifted through the endpoint, read back, and put back on real time.
	shift := clock.Shift{Offset: -2 * time.Second, DriftPPM: 50_000}
	if r := call(http.MethodPut, "/v1/clock", p.Secret, shift); r.StatusCode != http.StatusOK {
		t.Fatalf("put clock: %s", r.Status)
	}
	var got clock.Shift
	if err := json.NewDecoder(call(http.MethodGet, "/v1/clock", p.Secret, nil).Body).Decode(&got); err != nil || got != shift {
		t.Fatalf("clock read back as %+v (%v), want %+v", got, err, shift)
	}
	if behind := time.Since(clk.Now()); behind < time.Second {
		t.Fatalf("the node's clock is %s behind real time after a -2s shift", behind)
	}
	if active("clock") != 1 {
		t.Fatal("no clock fault gauge while the clock is shifted")
	}
	if r := call(http.MethodPut, "/v1/clock", p.Secret, shift); r.StatusCode != http.StatusOK {
		t.Fatalf("put clock again: %s", r.Status)
	}
	if r := call(http.MethodDelete, "/v1/clock", p.Secret, nil); r.StatusCode != http.StatusOK || !clk.Shift().Zero() {
		t.Fatalf("delete clock: %s, shift %+v", r.Status, clk.Shift())
	}
	if r := call(http.MethodPut, "/v1/clock", "", shift); r.StatusCode != http.StatusUnauthorized || !clk.Shift().Zero() {
		t.Fatalf("an unsigned clock shift: %s, shift %+v", r.Status, clk.Shift())
	}

	// The disk: faults set, read back and cleared; a web node has no log to damage.
	if r := call(http.MethodPut, "/v1/disk", p.Secret, disk.State{Stall: true}); r.StatusCode != http.StatusOK || !faults.State().Stall {
		t.Fatalf("put disk: %s, state %+v", r.Status, faults.State())
	}
	if active("disk") != 1 || active("clock") != 0 {
		t.Fatalf("disk gauge %v, clock gauge %v after the clock was put back; want 1 and 0", active("disk"), active("clock"))
	}
	var ds disk.State
	if err := json.NewDecoder(call(http.MethodGet, "/v1/disk", p.Secret, nil).Body).Decode(&ds); err != nil || !ds.Stall || ds.Full {
		t.Fatalf("disk read back as %+v (%v)", ds, err)
	}
	if r := call(http.MethodDelete, "/v1/disk", p.Secret, nil); r.StatusCode != http.StatusOK || !faults.State().Zero() {
		t.Fatalf("delete disk: %s, state %+v", r.Status, faults.State())
	}
	if r := call(http.MethodPost, "/v1/disk/corrupt", p.Secret, nil); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("corrupt on a web node: %s", r.Status)
	}
	if r := call(http.MethodPut, "/v1/disk", "", disk.State{Full: true}); r.StatusCode != http.StatusUnauthorized || !faults.State().Zero() {
		t.Fatalf("an unsigned disk fault: %s, state %+v", r.Status, faults.State())
	}
}

// TestPlanCheck: gossip members that are not what the plan holds are refused: unknown names, the
// WAN node or the witness, a wrong role or region, another address, a service elsewhere, an
// epoch far ahead.
func TestPlanCheck(t *testing.T) {
	p := testPlan(t)
	dir := t.TempDir()
	epochs, err := loadEpochMemory(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	check := planCheck(p, epochs)
	db1, _ := p.Topology.Node("us-east-db-1")
	good := gossip.Member{Name: db1.Name, Addr: db1.Addr(topology.PortGossip),
		Meta: gossip.Meta{Region: db1.Region, Role: db1.Role, Epoch: 3, Primary: true, Service: db1.Addr(topology.PortDB)}}
	if err := check(good); err != nil {
		t.Fatalf("the plan's own member refused: %v", err)
	}
	web, _ := p.Topology.Node("eu-west-web-1")
	for name, mutate := range map[string]func(*gossip.Member){
		"unknown name":      func(m *gossip.Member) { m.Name = "mallory" },
		"the witness":       func(m *gossip.Member) { m.Name = "witness" },
		"wrong role":        func(m *gossip.Member) { m.Meta.Role = topology.RoleWeb },
		"wrong region":      func(m *gossip.Member) { m.Meta.Region = "eu-west" },
		"another address":   func(m *gossip.Member) { m.Addr = web.Addr(topology.PortGossip) },
		"service elsewhere": func(m *gossip.Member) { m.Meta.Service = "203.0.113.66:8080" },
		"epoch far ahead":   func(m *gossip.Member) { m.Meta.Epoch = 18446744073709551615 },
	} {
		m := good
		mutate(&m)
		if err := check(m); err == nil {
			t.Errorf("%s: accepted %+v", name, m)
		}
	}

	// The epochs accepted outlive the process: after more than MaxEpochLead elections a
	// restarted node still accepts the primary of the day (found by exploration).
	for e := uint64(4); e <= 3*db.MaxEpochLead; e += db.MaxEpochLead / 2 {
		m := good
		m.Meta.Epoch = e
		if err := check(m); err != nil {
			t.Fatalf("epoch %d after %d: %v", e, e-db.MaxEpochLead/2, err)
		}
	}
	restarted, err := loadEpochMemory(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, epochFileName)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("epoch memory file: %v %v", info, err)
	}
	m := good
	m.Meta.Epoch = restarted.highest() + db.MaxEpochLead
	if err := planCheck(p, restarted)(m); err != nil || restarted.highest() < 3*db.MaxEpochLead-db.MaxEpochLead/2 {
		t.Fatalf("after a restart (remembering %d): %v", restarted.highest(), err)
	}
	m.Meta.Epoch += 2 * db.MaxEpochLead
	if err := planCheck(p, restarted)(m); err == nil {
		t.Fatal("after a restart an epoch far ahead was accepted")
	}
}
