package db

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Killing the primary: the replica promotes at epoch 2 within FailoverAfter plus a bound, and writes
// once it holds a majority lease (itself plus the witness). Octet 5.
func TestFailoverPromotesReplica(t *testing.T) {
	c := newCluster(t, 5)
	c.voters = []string{"p", "r", "witness"}
	c.startWitness()
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r", "b", 2, false, nil)
	c.start("p")
	r := c.start("r")
	pc := c.client("p")
	var last WriteResult
	for i := range 10 {
		last = putRetry(t, pc, fmt.Sprintf("k%d", i), "v", 5*time.Second)
	}
	waitFor(t, 5*time.Second, "replica caught up", func() bool { return r.State().LSN == last.LSN })

	failoverAfter := r.cfg.FailoverAfter
	killed := time.Now()
	c.kill("p")
	waitFor(t, failoverAfter+2*time.Second, "replica to promote", func() bool { return r.State().Primary })
	promoted := time.Since(killed)
	st := r.State()
	if st.Epoch != 2 || st.PrimaryName != "r" {
		t.Fatalf("promoted state %+v, want epoch 2", st)
	}
	if promoted < failoverAfter || promoted > failoverAfter+time.Second {
		t.Fatalf("promoted %v after the kill, want within [%v, %v]", promoted, failoverAfter, failoverAfter+time.Second)
	}
	w := putRetry(t, c.client("r"), "after", "v", 5*time.Second)
	firstWrite := time.Since(killed)
	if w.Epoch != 2 || w.LSN != last.LSN+1 {
		t.Fatalf("first write on the new primary %+v", w)
	}
	// The old primary's lease (granted for LeaseDuration at its last renewal) bounds the first write.
	if firstWrite > failoverAfter+r.cfg.LeaseDuration+time.Second {
		t.Fatalf("first write %v after the kill", firstWrite)
	}
	t.Logf("measured: promotion %v after the kill (FailoverAfter %v); first acknowledged write %v after the kill (lease %v)",
		promoted.Round(time.Millisecond), failoverAfter, firstWrite.Round(time.Millisecond), r.cfg.LeaseDuration)
	if got, err := c.client("r").Get(context.Background(), "k9", 0); err != nil || !got.Found {
		t.Fatalf("replicated data on the new primary: %+v, %v", got, err)
	}
}

// A replica that never saw a primary does not promote, even with a dead primary in its view. Octet 6.
func TestFreshReplicaDoesNotPromote(t *testing.T) {
	c := newCluster(t, 6)
	c.voters = []string{"fresh"}
	c.addNode("ghost", "a", 1, false, nil) // configured, never started: dead in the view
	c.addNode("fresh", "b", 2, false, nil)
	n := c.start("fresh")
	holdsFor(t, 3*n.cfg.FailoverAfter, "fresh replica staying replica", func() bool {
		st := n.State()
		return st.Role == RoleReplica && st.Epoch == 0
	})
}

// An old primary with acknowledged writes the replica never got comes back after a failover: it
// follows the new primary, truncates exactly those writes and converges. Octet 7.
func TestDivergentOldPrimaryTruncates(t *testing.T) {
	c := newCluster(t, 7)
	c.voters = []string{"p", "r", "witness"}
	c.startWitness()
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r", "b", 2, false, nil)
	replication := c.link("r", "p") // r → p only: p keeps its lease through the witness and r's voter
	c.start("p")
	r := c.start("r")
	pc, rc := c.client("p"), c.client("r")
	ctx := context.Background()

	var common WriteResult
	for i := range 10 {
		common = putRetry(t, pc, fmt.Sprintf("common%d", i), "v", 5*time.Second)
	}
	waitFor(t, 5*time.Second, "replica caught up", func() bool { return r.State().LSN == common.LSN })

	replication.Cut()
	for i := range 5 {
		w, err := pc.Put(ctx, fmt.Sprintf("lost%d", i), "v")
		if err != nil {
			t.Fatalf("divergent write %d: %v", i, err)
		}
		if w.LSN != common.LSN+uint64(i)+1 {
			t.Fatalf("divergent write %+v", w)
		}
	}
	c.kill("p")
	waitFor(t, 5*time.Second, "replica to promote", func() bool { return r.State().Primary })
	var newer []WriteResult
	for i := range 3 {
		newer = append(newer, putRetry(t, rc, fmt.Sprintf("new%d", i), "v", 5*time.Second))
	}
	replication.Heal()

	p := c.start("p") // reopens its data dir: not fresh, so it starts as a replica
	waitFor(t, 10*time.Second, "old primary to truncate and converge", func() bool {
		st := p.State()
		return st.Role == RoleReplica && st.DiscardedWrites == 5 && st.LSN == r.State().LSN && st.Epoch == 2
	})
	for i := range 5 {
		if got, err := pc.Get(ctx, fmt.Sprintf("lost%d", i), 0); err != nil || got.Found {
			t.Fatalf("discarded write lost%d still readable on the old primary: %+v, %v", i, got, err)
		}
	}
	for _, w := range newer {
		got, err := pc.Get(ctx, w.Key, 0)
		if err != nil || !got.Found || got.KeyLSN != w.LSN {
			t.Fatalf("new primary's write %s on the old primary: %+v, %v", w.Key, got, err)
		}
	}
	if got, err := pc.Get(ctx, "common9", 0); err != nil || !got.Found {
		t.Fatalf("common prefix lost: %+v, %v", got, err)
	}
	if st := p.State(); st.PrimaryName != "r" {
		t.Fatalf("old primary follows %q, want r", st.PrimaryName)
	}
}
