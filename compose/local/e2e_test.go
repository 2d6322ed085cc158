package local_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

func TestReplicationFailoverAndRejoin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t)

	// Replication catches up: 200 writes through us-east, read back through eu-west.
	for i := range 200 {
		if r := c.put("us-east", fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)); r.Code != http.StatusOK {
			t.Fatalf("put k%d: %d %s", i, r.Code, r.Error)
		}
	}
	lag := waitFor(t, 10*time.Second, "eu-west replica to catch up", func() bool {
		st := c.status()
		return c.node(st, "eu-west-db-1").LSN == c.node(st, "us-east-db-1").LSN
	})
	t.Logf("replica caught up %s after the last write", lag)
	// The dataset and the logs are private to their owner (the WAL holds every value).
	requirePrivate(t, c.plan.RunDir)
	if r := c.get("eu-west", "k199"); r.Code != http.StatusOK || r.Value != "v199" || r.DBNode != "eu-west-db-1" {
		t.Fatalf("read through eu-west: %+v", r)
	}

	// Divergence: cut eu-west's replication link, write 5 acknowledged writes in us-east only,
	// then kill the primary: those 5 are lost to the promoted replica and must be discarded when
	// the old primary returns.
	ctx := context.Background()
	cut := toxi.Toxic{Name: fault.ToxicPrefix + "test_cut", Type: "timeout", Stream: "downstream", Attributes: map[string]any{"timeout": 0}}
	link := "eu-west--us-east-db-1"
	if err := c.inj.Toxi().AddToxic(ctx, link, cut); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if r := c.put("us-east", fmt.Sprintf("lost%d", i), "x"); r.Code != http.StatusOK {
			t.Fatalf("put lost%d: %d %s", i, r.Code, r.Error)
		}
	}
	killed := time.Now()
	if err := c.rt.Kill(ctx, "us-east-db-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.inj.Toxi().RemoveToxic(ctx, link, cut.Name); err != nil {
		t.Fatal(err)
	}
	promoted := waitFor(t, 15*time.Second, "eu-west-db-1 to promote", func() bool {
		n := c.node(c.status(), "eu-west-db-1")
		return n.Primary && n.Epoch == 2 && n.Lease
	})
	t.Logf("eu-west-db-1 promoted (epoch 2, lease held) %s after the primary was killed (failover_after %s)",
		promoted.Round(time.Millisecond), c.plan.Topology.Design.FailoverAfter.D())
	// us-east users write again once their web tier learns the new primary from gossip.
	var r kvResult
	rto := waitFor(t, 10*time.Second, "a write from us-east to succeed on the new primary", func() bool {
		r = c.put("us-east", "after-failover", "y")
		return r.Code == http.StatusOK
	})
	if r.DBNode != "eu-west-db-1" || r.Epoch != 2 {
		t.Fatalf("write after failover from us-east went to %s epoch %d", r.DBNode, r.Epoch)
	}
	t.Logf("us-east writes resumed %s after the promotion was visible, %s after the kill", rto.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))

	// The old primary returns as a replica and discards its divergent writes.
	if err := c.rt.Start(ctx, "us-east-db-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "old primary to rejoin as a caught-up replica", func() bool {
		st := c.status()
		o, p := c.node(st, "us-east-db-1"), c.node(st, "eu-west-db-1")
		return o.State == "alive" && !o.Primary && o.Epoch == 2 && o.LSN == p.LSN
	})
	addr, _ := c.rt.Endpoint("us-east-db-1", topology.PortDB)
	dbc := db.Client{BaseURL: "http://" + addr, HTTP: peerauth.Client(peerauth.Derive(c.plan.Secret, peerauth.PurposeDB), 3*time.Second, nil), Node: "us-east-db-1"}
	dbst, err := dbc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dbst.DiscardedWrites != 5 {
		t.Fatalf("old primary discarded %d writes, want 5", dbst.DiscardedWrites)
	}
	if r := c.get("us-east", "lost0"); r.Code != http.StatusNotFound {
		t.Fatalf("divergent write lost0 still readable in us-east: %+v", r)
	}
	if r := c.get("us-east", "after-failover"); r.Code != http.StatusOK || r.Value != "y" {
		t.Fatalf("us-east replica misses the new primary's write: %+v", r)
	}
}

// splitBrain runs writers in both regions through a us-east|eu-west partition and returns the
// acknowledged writes in completion order.
func splitBrain(t *testing.T, c *cluster, window time.Duration) []kvResult {
	ctx := context.Background()
	if err := c.inj.Apply(ctx, fault.Fault{ID: "split", Kind: fault.KindPartition, Regions: []string{"us-east", "eu-west"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.inj.Undo(context.Background(), "split") })
	var (
		mu   sync.Mutex
		acks []kvResult
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(window)
	for _, region := range []string{"us-east", "eu-west"} {
		wg.Add(1)
		go func(region string) {
			defer wg.Done()
			for i := 0; time.Now().Before(stop) && i < 100000; i++ {
				r := c.put(region, fmt.Sprintf("%s-%d", region, i), "v")
				if r.Code == http.StatusOK {
					mu.Lock()
					acks = append(acks, r)
					mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond) // pace retries against an unavailable primary
				}
			}
		}(region)
	}
	wg.Wait()
	if err := c.inj.Undo(ctx, "split"); err != nil {
		t.Fatal(err)
	}
	sortByDone(acks)
	return acks
}

func sortByDone(rs []kvResult) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Done.Before(rs[j-1].Done); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// overlap reports, per pair of primaries, whether their acknowledged writes interleave in time.
func ackWindows(acks []kvResult) map[string][2]time.Time {
	w := map[string][2]time.Time{}
	for _, a := range acks {
		cur, ok := w[a.DBNode]
		if !ok {
			cur = [2]time.Time{a.Done, a.Done}
		}
		if a.Done.After(cur[1]) {
			cur[1] = a.Done
		}
		w[a.DBNode] = cur
	}
	return w
}

func TestPartitionWithLeaseFencingHasOnePrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t, "fencing=lease")
	acks := splitBrain(t, c, 12*time.Second)
	w := ackWindows(acks)
	t.Logf("ack windows under lease fencing: %v", w)
	if len(acks) == 0 {
		t.Fatal("no write was acknowledged at all during the partition")
	}
	// Acks must come from one primary at a time: no interleaving.
	switches := 0
	for i := 1; i < len(acks); i++ {
		if acks[i].DBNode != acks[i-1].DBNode {
			switches++
		}
	}
	if switches > 1 {
		t.Fatalf("writes acknowledged by %d primaries interleaved (%d switches): split brain under lease fencing", len(w), switches)
	}
}

func TestPartitionWithoutFencingSplitsBrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped in -short mode")
	}
	c := startCluster(t, "fencing=none")
	acks := splitBrain(t, c, 12*time.Second)
	w := ackWindows(acks)
	t.Logf("ack windows without fencing: %v", w)
	us, eu := w["us-east-db-1"], w["eu-west-db-1"]
	if us[0].IsZero() || eu[0].IsZero() {
		t.Fatalf("expected both primaries to acknowledge writes, windows %v", w)
	}
	if !(eu[0].Before(us[1]) && us[0].Before(eu[1])) {
		t.Fatalf("expected overlapping acknowledgement windows (split brain), got %v", w)
	}
}
