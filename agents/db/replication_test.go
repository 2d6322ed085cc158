package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// One primary, two replicas, 500 concurrent writes: both replicas converge to the same data. Octet 2.
func TestReplicationCatchesUp(t *testing.T) {
	c := newCluster(t, 2)
	c.voters = []string{"p"}
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r1", "b", 2, false, nil)
	c.addNode("r2", "b", 3, false, nil)
	c.start("p")
	r1, r2 := c.start("r1"), c.start("r2")
	pc := c.client("p")

	const writes, writers, keys = 500, 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < writes; i += writers {
				if _, err := putWithRetry(pc, fmt.Sprintf("k%d", i%keys), fmt.Sprintf("v%d", i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write: %v", err)
	}
	for _, r := range []*Node{r1, r2} {
		waitFor(t, 10*time.Second, r.cfg.Name+" to apply 500 entries", func() bool { return r.State().LSN == writes })
		waitFor(t, 3*time.Second, r.cfg.Name+" lag 0", func() bool { return r.State().LagMS == 0 })
	}
	ctx := context.Background()
	for i := range keys {
		key := fmt.Sprintf("k%d", i)
		want, err := pc.Get(ctx, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"r1", "r2"} {
			got, err := c.client(name).Get(ctx, key, writes)
			if err != nil || got.Value != want.Value || got.KeyLSN != want.KeyLSN || got.Node != name {
				t.Fatalf("%s %s = %+v, %v; primary has %+v", name, key, got, err, want)
			}
		}
	}
	if st := r1.State(); st.PrimaryName != "p" || st.Epoch != 1 || st.Role != RoleReplica {
		t.Fatalf("replica state %+v", st)
	}
	// Every node's log, read through /v1/log in pages, is the primary's.
	logs := map[string][]LogEntry{}
	for _, name := range []string{"p", "r1", "r2"} {
		l, err := c.client(name).Log(ctx)
		if err != nil || len(l) != writes || l[0].LSN != 1 || l[writes-1].LSN != writes {
			t.Fatalf("log of %s: %d entries, %v", name, len(l), err)
		}
		logs[name] = l
	}
	if !slices.Equal(logs["p"], logs["r1"]) || !slices.Equal(logs["p"], logs["r2"]) {
		t.Fatal("a replica's log differs from the primary's")
	}
	_, err := c.client("r1").Put(ctx, "x", "y")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Message != "not primary" || apiErr.Primary != "p" {
		t.Fatalf("put on replica: %v, want 503 not primary naming p", err)
	}
}

// putWithRetry retries only "no lease" (the primary's first lease round may still be running).
func putWithRetry(cl *Client, key, value string) (WriteResult, error) {
	for range 200 {
		res, err := cl.Put(context.Background(), key, value)
		if !isAPIError(err, 503, "no lease") {
			return res, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return WriteResult{}, fmt.Errorf("no lease after 2s")
}

// Async: a write is acknowledged while the replica cannot have it; reads with min_lsn on the
// replica answer 409 behind until it catches up. Octet 3.
func TestAsyncAckBeforeReplicaAndReadMinLSN(t *testing.T) {
	c := newCluster(t, 3)
	c.voters = []string{"p"}
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r", "b", 2, false, nil)
	link := c.link("r", "p")
	c.start("p")
	r := c.start("r")
	pc, rc := c.client("p"), c.client("r")
	ctx := context.Background()

	first := putRetry(t, pc, "k", "v1", 5*time.Second)
	waitFor(t, 5*time.Second, "replica to apply the first write", func() bool { return r.State().LSN == first.LSN })

	link.Cut()
	w, err := pc.Put(ctx, "k", "v2")
	if err != nil {
		t.Fatalf("async write with the replica cut off: %v", err)
	}
	holdsFor(t, 300*time.Millisecond, "replica behind the acknowledged write", func() bool { return r.State().LSN < w.LSN })
	waitFor(t, 3*time.Second, "replica lag to show", func() bool { return r.State().LagMS >= 100 })

	// Reading on the replica: without min_lsn it serves its stale value; with min_lsn it refuses.
	stale, err := rc.Get(ctx, "k", 0)
	if err != nil || stale.Value != "v1" || stale.LSN != first.LSN {
		t.Fatalf("stale read: %+v, %v", stale, err)
	}
	start := time.Now()
	_, err = rc.GetWait(ctx, "k", w.LSN, 200*time.Millisecond)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Message != "behind" || apiErr.LSN != first.LSN {
		t.Fatalf("read with min_lsn on a behind replica: %v", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("behind answer after %v, want the 200 ms wait first", waited)
	}
	// On the primary the same read is served at once.
	if got, err := pc.Get(ctx, "k", w.LSN); err != nil || got.Value != "v2" || got.KeyLSN != w.LSN {
		t.Fatalf("read on primary: %+v, %v", got, err)
	}

	// A read that waits sees the write as soon as the link heals.
	type result struct {
		res ReadResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := rc.GetWait(ctx, "k", w.LSN, 5*time.Second)
		done <- result{res, err}
	}()
	link.Heal()
	got := <-done
	if got.err != nil || got.res.Value != "v2" || got.res.KeyLSN != w.LSN {
		t.Fatalf("waiting read after heal: %+v, %v", got.res, got.err)
	}
	waitFor(t, 3*time.Second, "replica lag back to 0", func() bool { return r.State().LagMS == 0 })
}

// Semi-sync: an ack means a replica in another region holds the write; with that replica cut off
// the write times out with outcome unknown, even though a same-region replica has it. Octet 4.
func TestSemiSync(t *testing.T) {
	c := newCluster(t, 4)
	c.voters = []string{"p"}
	semi := func(cfg *Config) {
		cfg.Replication = ReplicationSemiSync
		cfg.SemiSyncTimeout = 500 * time.Millisecond
	}
	c.addNode("p", "a", 1, true, semi)
	c.addNode("remote", "b", 2, false, semi)
	c.addNode("local", "a", 3, false, semi)
	link := c.link("remote", "p")
	c.start("p")
	remote, local := c.start("remote"), c.start("local")
	pc := c.client("p")
	ctx := context.Background()

	for i := range 5 {
		w := putRetry(t, pc, fmt.Sprintf("k%d", i), "v", 5*time.Second)
		if got := remote.State().LSN; got < w.LSN {
			t.Fatalf("semi-sync ack for lsn %d while the remote replica has only %d", w.LSN, got)
		}
	}

	link.Cut()
	start := time.Now()
	_, err := pc.Put(ctx, "cut", "v")
	took := time.Since(start)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 504 || apiErr.Message != "semi-sync timeout" || apiErr.Outcome != "unknown" {
		t.Fatalf("semi-sync write with the remote replica cut off: %v", err)
	}
	if took < 500*time.Millisecond || took > 2*time.Second {
		t.Fatalf("semi-sync timeout after %v, want about 500 ms", took)
	}
	// The same-region replica did get it: its ack does not count.
	waitFor(t, 3*time.Second, "local replica to hold the timed-out write", func() bool { return local.State().LSN >= apiErr.WriteLSN })

	link.Heal()
	w := putRetry(t, pc, "healed", "v", 5*time.Second)
	if got := remote.State().LSN; got < w.LSN {
		t.Fatalf("ack after heal for lsn %d while remote has %d", w.LSN, got)
	}
}
