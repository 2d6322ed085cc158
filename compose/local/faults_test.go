package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/topology"
)

// Simulated users: the default topology's loopback client subnets are 127.10.1.0/24 (us-east)
// and 127.10.2.0/24 (eu-west).
var (
	usEastUser = net.IPv4(127, 10, 1, 50)
	euWestUser = net.IPv4(127, 10, 2, 50)
)

// httpFrom does one GET from a client source address; it returns the status code or the error.
func httpFrom(src net.IP, addr, path string, timeout time.Duration) (int, error) {
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: timeout}).DialContext,
		DisableKeepAlives: true,
	}}
	resp, err := hc.Get("http://" + addr + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dnsFrom sends one UDP query for app.<zone> A from a client source address.
func dnsFrom(src net.IP, addr, zone string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: src}, Timeout: timeout}}
	m := new(dns.Msg)
	m.SetQuestion("app."+dns.Fqdn(zone), dns.TypeA)
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// requireClean fails the test unless every residue item is clean.
func requireClean(t *testing.T, items []inject.ResidueItem) {
	t.Helper()
	for _, it := range items {
		if !it.Clean {
			t.Errorf("residue: %s: %s", it.What, it.Detail)
		}
	}
	// Every check runs; the local runtime has no packet layer, so none of packet rules.
	var what []string
	for _, it := range items {
		what = append(what, it.What)
	}
	want := []string{"drill toxics on WAN links", "disabled WAN links", "gossip fault rules on running nodes", "frozen nodes",
		"nodes not running", "outstanding faults in the ledger", "shifted clocks on running db nodes", "disk faults on running db nodes"}
	if !slices.Equal(what, want) {
		t.Errorf("residue checks %q, want %q", what, want)
	}
}

// gossipRules reads a node's drill fault rules from its control endpoint.
func (c *cluster) gossipRules(node string) gossip.Rules {
	c.t.Helper()
	addr, err := c.rt.Endpoint(node, topology.PortControl)
	if err != nil {
		c.t.Fatal(err)
	}
	hc := peerauth.ClientFor(peerauth.Derive(c.plan.Secret, peerauth.PurposeControl), 3*time.Second, c.plan.NodeAt)
	resp, err := hc.Get("http://" + addr + "/v1/gossip/faults")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r gossip.Rules
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		c.t.Fatal(err)
	}
	return r
}

func TestBlackholeIsSilent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t)
	ctx := context.Background()
	inj := c.inj
	web := c.plan.Topology.NodesOf(topology.RoleWeb, "us-east")[0].Addr(topology.PortWeb)
	dnsAddr := c.plan.Topology.NodesOf(topology.RoleDNS, "us-east")[0].Addr(topology.PortDNS)
	euWeb := c.plan.Topology.NodesOf(topology.RoleWeb, "eu-west")[0].Addr(topology.PortWeb)
	zone := c.plan.Topology.DNS.Zone

	// Before: us-east users are served by us-east.
	if code, err := httpFrom(usEastUser, web, "/healthz", 2*time.Second); err != nil || code != http.StatusOK {
		t.Fatalf("before the fault: GET from a us-east user: %d %v", code, err)
	}
	// (An answer, possibly empty while a region is still in hold-down after the bring-up.)
	if _, err := dnsFrom(usEastUser, dnsAddr, zone, 2*time.Second); err != nil {
		t.Fatalf("before the fault: DNS from a us-east user: %v", err)
	}

	f := fault.Fault{ID: "blackhole:us-east", Kind: fault.KindBlackhole, Region: "us-east"}
	applied := time.Now()
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	t.Logf("blackhole applied in %s", time.Since(applied).Round(time.Millisecond))
	// eu-west's gossip view must mark every us-east member dead; timed from the apply, while
	// the silence checks below run.
	usEast := []string{"us-east-web-1", "us-east-web-2", "us-east-db-1", "us-east-dns-1"}
	allDead := func() bool {
		ms, err := c.obs.Members(ctx, "eu-west-web-1")
		if err != nil {
			return false
		}
		for _, m := range ms {
			if slices.Contains(usEast, m.Name) && m.Alive() {
				return false
			}
		}
		return true
	}
	deadAfter := make(chan time.Duration, 1)
	stopPoll := make(chan struct{})
	defer close(stopPoll) // the poller ends with the test, even a failed one
	go func() {
		for i := 0; i < 400 && time.Since(applied) < 20*time.Second; i++ {
			if allDead() {
				deadAfter <- time.Since(applied)
				return
			}
			select {
			case <-stopPoll:
				deadAfter <- -1
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		deadAfter <- -1
	}()
	if got := inj.Active(); len(got) != 1 || len(got[0].Resolved) != 4 {
		t.Fatalf("active after apply: %+v", got)
	}

	// Silent: the connection is accepted (not refused), and then nothing: no bytes, no reset.
	// The DNS check runs meanwhile (both wait out their 2 s).
	dnsErr := make(chan error, 1)
	go func() {
		r, err := dnsFrom(usEastUser, dnsAddr, zone, 2*time.Second)
		if !isTimeout(err) {
			dnsErr <- fmt.Errorf("black-holed DNS answered a us-east user: %v, err %v (want a timeout)", r, err)
			return
		}
		dnsErr <- nil
	}()
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: usEastUser}, Timeout: 2 * time.Second}).Dial("tcp", web)
	if err != nil {
		t.Fatalf("connect from a us-east user to a black-holed web node: %v (want accepted, then silence)", err)
	}
	_, _ = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: app\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(make([]byte, 512))
	conn.Close()
	if n != 0 || !isTimeout(err) {
		t.Fatalf("black-holed web answered a us-east user: %d bytes, err %v (want no bytes and a read timeout)", n, err)
	}
	if err := <-dnsErr; err != nil {
		t.Fatal(err)
	}
	// eu-west still answers its own users (healthy or not: its replica lost the primary).
	if code, err := httpFrom(euWestUser, euWeb, "/healthz", 2*time.Second); err != nil || code == 0 {
		t.Fatalf("eu-west web did not answer an eu-west user during the blackhole: %d %v", code, err)
	}
	// drill itself (127.0.0.1) still reaches the black-holed nodes' control endpoints.
	if r := c.gossipRules("us-east-web-1"); len(r.Drop) == 0 {
		t.Fatal("us-east-web-1 has no drop rules during the blackhole")
	}

	switch d := <-deadAfter; {
	case d < 0:
		t.Fatal("eu-west-web-1 still sees a us-east node alive 20s after the blackhole")
	default:
		t.Logf("eu-west-web-1 saw every us-east node dead %s after the blackhole was applied", d.Round(time.Millisecond))
	}

	undoAt := time.Now()
	if err := inj.Undo(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if err := inj.Undo(ctx, f.ID); err != nil {
		t.Fatalf("second undo is not a no-op: %v", err)
	}
	waitFor(t, 5*time.Second, "us-east web to answer a us-east user again", func() bool {
		code, err := httpFrom(usEastUser, web, "/healthz", time.Second)
		return err == nil && code != 0
	})
	waitFor(t, 5*time.Second, "us-east DNS to answer a us-east user again", func() bool {
		r, err := dnsFrom(usEastUser, dnsAddr, zone, time.Second)
		return err == nil && r != nil
	})
	if _, err := c.obs.WaitConverged(ctx, 25*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster converged again %s after undo", time.Since(undoAt).Round(time.Millisecond))
	requireClean(t, inj.Residue(ctx))
}

func TestLedgerRecoversAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t)
	ctx := context.Background()
	ledger := inject.LedgerPath(c.plan.RunDir)

	// One drill process applies three faults, then dies without undoing anything (kill -9).
	if err := c.inj.Close(); err != nil {
		t.Fatal(err)
	}
	first, err := inject.New(c.plan, c.rt, ledger, nil)
	if err != nil {
		t.Fatal(err)
	}
	faults := []fault.Fault{
		{ID: "partition:eu-west|us-east", Kind: fault.KindPartition, Regions: []string{"eu-west", "us-east"}},
		{ID: "freeze:eu-west-web-2", Kind: fault.KindFreeze, Node: "eu-west-web-2"},
		{ID: "latency:wan", Kind: fault.KindLatency, Params: fault.Params{fault.ParamLatency: "200ms", fault.ParamJitter: "10ms", fault.ParamBandwidth: "512"}},
	}
	for _, f := range faults {
		if err := first.Apply(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	dirty := 0
	for _, it := range first.Residue(ctx) {
		if !it.Clean {
			dirty++
			t.Logf("residue while faulted (expected): %s: %s", it.What, it.Detail)
		}
	}
	if dirty < 4 {
		t.Fatalf("only %d residue items dirty with a partition, a freeze and latency active, want toxics, gossip rules, frozen and ledger", dirty)
	}
	// While it lives, nobody else may write the ledger.
	if _, err := inject.New(c.plan, c.rt, ledger, nil); !errors.Is(err, inject.ErrLedgerInUse) {
		t.Fatalf("a second injector while the first holds the ledger: %v, want ErrLedgerInUse", err)
	}
	// Its death releases the lock (the kernel drops a dead process's flock).
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// A new drill process opens the same ledger and knows what is outstanding.
	second, err := inject.New(c.plan, c.rt, ledger, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range second.Active() {
		ids = append(ids, f.ID)
	}
	if want := []string{faults[0].ID, faults[1].ID, faults[2].ID}; !slices.Equal(ids, want) {
		t.Fatalf("new injector's active set %v, want %v", ids, want)
	}
	if got := second.Active()[2]; got.Params.Duration(fault.ParamLatency) != 200*time.Millisecond || got.Params.Int(fault.ParamBandwidth) != 512 {
		t.Fatalf("latency fault read back from the ledger: %+v", got)
	}
	start := time.Now()
	undone, err := second.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recover undid %d faults in %s", len(undone), time.Since(start).Round(time.Millisecond))
	if len(undone) != 3 {
		t.Fatalf("recover undid %d faults, want 3", len(undone))
	}
	requireClean(t, second.Residue(ctx))
	if _, err := c.obs.WaitConverged(ctx, 25*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster converged %s after recover began", time.Since(start).Round(time.Millisecond))
	// A third injector sees nothing outstanding.
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := inject.New(c.plan, c.rt, ledger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if a := third.Active(); len(a) != 0 {
		t.Fatalf("after recover the ledger still holds %+v", a)
	}
}

// fastestPut times n writes through a region's web tier and returns the fastest. Load on the
// machine only adds time, so the fastest write shows a latency floor most faithfully.
func (c *cluster) fastestPut(region string, n int) time.Duration {
	c.t.Helper()
	var fastest time.Duration
	for i := range n {
		r := c.put(region, fmt.Sprintf("lat-%d", i), "v")
		if r.Code != http.StatusOK {
			c.t.Fatalf("put through %s: %d %s", region, r.Code, r.Error)
		}
		if d := r.Done.Sub(r.Invoked); i == 0 || d < fastest {
			fastest = d
		}
	}
	return fastest
}

func TestLatencyShowsInCrossRegionRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t)
	ctx := context.Background()
	inj := c.inj
	t1 := c.plan.Topology
	usPrefix := t1.SitePrefix("us-east")

	before := c.fastestPut("eu-west", 7) // eu-west web → primary in us-east
	f := fault.Fault{ID: "latency:eu-west|us-east", Kind: fault.KindLatency, Regions: []string{"eu-west", "us-east"}, Params: fault.Params{fault.ParamLatency: "300ms"}}
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	during := c.fastestPut("eu-west", 7)
	// Gossip sees the same one-way total as TCP: base WAN latency + injected.
	r := c.gossipRules("eu-west-web-1")
	if len(r.Delays) != 1 || r.Delays[0].Prefix != usPrefix || r.Delays[0].Latency != t1.WAN.Latency.D()+300*time.Millisecond {
		t.Fatalf("eu-west-web-1 gossip delays during latency: %+v", r.Delays)
	}
	if err := inj.Undo(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	after := c.fastestPut("eu-west", 7)
	t.Logf("cross-region PUT, fastest of 7: before %s, with +300ms one-way %s, after undo %s",
		before.Round(time.Millisecond), during.Round(time.Millisecond), after.Round(time.Millisecond))
	// 300 ms each way on the request and the response: a floor no write can beat, however idle
	// or loaded the machine (load adds time; it never takes the toxic's away).
	floor := 2 * 300 * time.Millisecond
	if during < floor {
		t.Fatalf("injected latency did not show: fastest write %s during, below the %s the toxics add", during, floor)
	}
	if after >= floor {
		t.Fatalf("latency stayed after undo: fastest write %s after, %s before, %s during", after, before, during)
	}
	requireClean(t, inj.Residue(ctx))
}

func TestKillPrimaryResolvesAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t)
	ctx := context.Background()
	inj := c.inj
	f := fault.Fault{ID: "kill-primary", Kind: fault.KindKillPrimary}
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	// The resolution is in the ledger, for whoever undoes it: the injector that applied it
	// lets go, a new one takes over and undoes it.
	if err := inj.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := inject.New(c.plan, c.rt, inject.LedgerPath(c.plan.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	inj = reopened
	act := reopened.Active()
	if len(act) != 1 || !slices.Equal(act[0].Resolved, []string{"us-east-db-1"}) {
		t.Fatalf("kill-primary resolved %+v, want us-east-db-1 (the bootstrap primary)", act)
	}
	if st := c.node(c.status(), "us-east-db-1"); st.State != "stopped" {
		t.Fatalf("us-east-db-1 is %s after kill-primary", st.State)
	}
	// The replica takes over; then the undo brings the old primary back (as a replica).
	waitFor(t, 15*time.Second, "eu-west-db-1 to promote", func() bool {
		return c.node(c.status(), "eu-west-db-1").Primary
	})
	start := time.Now()
	if err := inj.Undo(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.obs.WaitConverged(ctx, 25*time.Second); err != nil {
		t.Fatal(err)
	}
	st := c.status()
	if o := c.node(st, "us-east-db-1"); o.State != "alive" || o.Primary {
		t.Fatalf("old primary after undo: %+v", o)
	}
	t.Logf("old primary restarted and converged as a replica %s after undo", time.Since(start).Round(time.Millisecond))
	requireClean(t, inj.Residue(ctx))
	if b, err := os.ReadFile(inject.LedgerPath(c.plan.RunDir)); err != nil || !strings.Contains(string(b), `"resolved":["us-east-db-1"]`) {
		t.Fatalf("ledger does not record the resolved primary: %v\n%s", err, b)
	}
}
