package docker_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/docker"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/topology"
)

// connects makes n TCP connects to addr from the host, each with its own timeout, a few at a
// time, and returns how many succeeded. Bounded: at most n × timeout / workers.
func connects(addr string, n int, timeout time.Duration) int {
	const workers = 4
	var ok atomic.Int64
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if c, err := net.DialTimeout("tcp", addr, timeout); err == nil {
					ok.Add(1)
					c.Close()
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// TestLossAtThePacketLevel: a loss rule set drops a random share of a node's packets (some
// connects from the host get through, most do not), drill's management traffic stays exempt, and
// undoing it restores everything; a loss fault through the injector puts its tables on one side
// of the cut only, shows in the residue check while active and leaves nothing after undo and
// after recover.
func TestLossAtThePacketLevel(t *testing.T) {
	c := startCluster(t, "dtest-loss", docker.PacketRulesFromAuto)
	ctx := context.Background()
	web, _ := c.rt.Endpoint("us-east-web-1", topology.PortWeb)
	ctl, _ := c.rt.Endpoint("us-east-web-1", topology.PortControl)
	const n, timeout = 60, 300 * time.Millisecond
	if got := connects(web, n, timeout); got != n {
		t.Fatalf("before any fault %d of %d connects succeeded", got, n)
	}

	// The runtime layer alone: 50 % of every packet to and from us-east-web-1. The web port is not
	// a management port, so the host's connects are subject to it: a connect needs its SYN in
	// and its SYN-ACK out to survive (0.5 × 0.5), and a lost SYN is retried only after 1 s, past
	// the timeout. Expected: 15 of 60 succeed (standard deviation 3.4); the bounds below are
	// more than 3.5 standard deviations out, and 0 or 60 would mean no loss or a black hole.
	const id = "test:loss"
	start := time.Now()
	if err := c.rt.ApplyPacketRules(ctx, id, lossAll(50)); err != nil {
		t.Fatal(err)
	}
	t.Logf("50%% loss installed on us-east-web-1 in %s", time.Since(start).Round(time.Millisecond))
	if rules, err := c.rt.PacketRules(ctx); err != nil || len(rules) != 1 || !slices.Equal(rules["us-east-web-1"], []string{docker.TableName(id)}) {
		t.Fatalf("packet rules with the loss applied: %v %v", rules, err)
	}
	start = time.Now()
	got := connects(web, n, timeout)
	t.Logf("50%% loss: %d of %d connects from the host succeeded within %s each (expected ≈ %d), in %s",
		got, n, timeout, n/4, time.Since(start).Round(time.Millisecond))
	if got < 3 || got > 30 {
		t.Fatalf("50%% packet loss: %d of %d connects succeeded, want some but most not (3..30)", got, n)
	}
	// drill's own control traffic from the host is exempt, as for a black hole.
	if got := connects(ctl, 20, time.Second); got != 20 {
		t.Fatalf("control endpoint under packet loss: %d of 20 connects succeeded, want all (management is exempt)", got)
	}
	if err := c.rt.ApplyPacketRules(ctx, "test:bad", lossAll(100)); err == nil {
		t.Fatal("a loss of 100 % was installed")
	}
	if err := c.rt.RemovePacketRules(ctx, id, []string{"us-east-web-1"}); err != nil {
		t.Fatal(err)
	}
	if got := connects(web, n, timeout); got != n {
		t.Fatalf("after healing %d of %d connects succeeded", got, n)
	}
	if rules, err := c.rt.PacketRules(ctx); err != nil || len(rules) != 0 {
		t.Fatalf("packet rules after healing: %v %v", rules, err)
	}

	// The same from a helper container (how drill does it when it is not root on the engine's
	// host): the percentage travels in the helper's spec.
	helper, err := docker.New(docker.Config{RunDir: c.plan.RunDir, Binary: drillBinary(t), Engine: c.eng, PacketRulesFrom: docker.PacketRulesFromHelper})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := helper.ApplyPacketRules(ctx, id, lossAll(50)); err != nil {
		t.Fatal(err)
	}
	t.Logf("50%% loss installed by a helper container in %s", time.Since(start).Round(time.Millisecond))
	got = connects(web, n, timeout)
	t.Logf("50%% loss (helper): %d of %d connects succeeded", got, n)
	if got < 3 || got > 30 {
		t.Fatalf("50%% packet loss installed by a helper: %d of %d connects succeeded, want 3..30", got, n)
	}
	if err := helper.RemovePacketRules(ctx, id, []string{"us-east-web-1"}); err != nil {
		t.Fatal(err)
	}
	if got := connects(web, n, timeout); got != n {
		t.Fatalf("after healing from a helper %d of %d connects succeeded", got, n)
	}

	// Through the injector, as a drill does it: 50 % loss between the regions.
	inj, err := inject.New(c.plan, c.rt, inject.LedgerPath(c.plan.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := fault.Fault{ID: "loss:eu-west|us-east", Kind: fault.KindLoss, Regions: []string{"eu-west", "us-east"}, Params: fault.Params{fault.ParamPercent: "50"}}
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	rules, err := c.rt.PacketRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	for node, tables := range rules {
		holders = append(holders, node)
		if !slices.Equal(tables, []string{docker.TableName(f.ID)}) {
			t.Errorf("tables of %s: %v", node, tables)
		}
	}
	slices.Sort(holders)
	// One side of the cut holds the rules (both directions), so a packet meets one draw, not two.
	if want := []string{"eu-west-db-1", "eu-west-dns-1", "eu-west-web-1", "eu-west-web-2"}; !slices.Equal(holders, want) {
		t.Fatalf("loss tables on %v, want on %v", holders, want)
	}
	// Users from the host are not between the regions: all their connects work.
	if got := connects(web, 20, time.Second); got != 20 {
		t.Fatalf("loss between regions cut the host's users: %d of 20 connects", got)
	}
	residue := inj.Residue(ctx)
	var packetItem, gossipItem inject.ResidueItem
	for _, it := range residue {
		switch {
		case strings.HasPrefix(it.What, "packet"):
			packetItem = it
		case strings.HasPrefix(it.What, "gossip"):
			gossipItem = it
		}
	}
	if packetItem.Clean || !strings.Contains(packetItem.Detail, "eu-west-db-1/"+docker.TableName(f.ID)) {
		t.Fatalf("residue while the loss is active: %+v", packetItem)
	}
	if !gossipItem.Clean {
		t.Fatalf("gossip loss rules on a runtime whose packets carry the loss: %+v", gossipItem)
	}
	if err := inj.Undo(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	for _, it := range inj.Residue(ctx) {
		if !it.Clean {
			t.Errorf("residue after undo: %s: %s", it.What, it.Detail)
		}
	}

	// Applied again and left for `drill recover` (a new injector, the ledger alone).
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := inj.Close(); err != nil { // as if drill had died
		t.Fatal(err)
	}
	rec, err := inject.New(c.plan, c.rt, inject.LedgerPath(c.plan.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if undone, err := rec.Recover(ctx); err != nil || len(undone) != 1 || undone[0].Params.Int(fault.ParamPercent) != 50 {
		t.Fatalf("recover: %+v %v", undone, err)
	}
	for _, it := range rec.Residue(ctx) {
		if !it.Clean {
			t.Errorf("residue after recover: %s: %s", it.What, it.Detail)
		}
	}
	if got := connects(web, n, timeout); got != n {
		t.Fatalf("after recover %d of %d connects succeeded", got, n)
	}
}

// lossAll is a loss rule on us-east-web-1 against every address.
func lossAll(percent int) map[string]fault.PacketRule {
	return map[string]fault.PacketRule{"us-east-web-1": {Drop: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, LossPercent: percent}}
}
