package db

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/disk"
)

// diskCluster is a primary p whose disk has faults drill can set, a replica r in another region
// and the witness, with one write replicated.
func diskCluster(t *testing.T, octet int) (c *cluster, p, r *Node, faults *disk.Faults) {
	t.Helper()
	faults = &disk.Faults{}
	c = newCluster(t, octet)
	c.voters = []string{"p", "r", "witness"}
	c.startWitness()
	c.addNode("p", "a", 1, true, func(cfg *Config) { cfg.Disk = faults })
	c.addNode("r", "b", 2, false, nil)
	p, r = c.start("p"), c.start("r")
	// Cleanups run last-in first-out: the disk comes back before the nodes are closed, so a
	// failed test does not leave a close waiting on a held fsync.
	t.Cleanup(func() { faults.Set(disk.State{}) })
	last := putRetry(t, c.client("p"), "k", "v", 5*time.Second)
	waitFor(t, 5*time.Second, "replica caught up", func() bool { return r.State().LSN == last.LSN })
	return c, p, r, faults
}

// TestFsyncStallHandsOverThePrimary: a primary whose disk hangs acknowledges nothing, and without
// more it would keep its lease and its claim to lead while every write waits. It steps down once
// its log has not become durable for half a lease, the replica takes over, and when the disk
// comes back the old primary follows (its stuck write, never acknowledged, truncated). Octet 38.
func TestFsyncStallHandsOverThePrimary(t *testing.T) {
	c, p, r, faults := diskCluster(t, 38)
	faults.Set(disk.State{Stall: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.client("p").Put(ctx, "stuck", "v"); err == nil {
		t.Fatal("a write was acknowledged while the disk hung")
	}
	waitFor(t, 15*time.Second, "the replica to take over from the stalled primary", func() bool {
		return r.State().Primary && !p.State().Primary
	})
	putRetry(t, c.client("r"), "after", "v", 10*time.Second)
	faults.Set(disk.State{})
	waitFor(t, 15*time.Second, "the old primary to follow the new one", func() bool {
		ps, rs := p.State(), r.State()
		return ps.PrimaryName == "r" && ps.LSN == rs.LSN && ps.Epoch == rs.Epoch
	})
}

// TestFullDiskHandsOverThePrimary: ENOSPC on the primary's log (finding 4, through drill's disk
// fault layer): the write fails, the primary steps down for good, the replica takes over. Octet 39.
func TestFullDiskHandsOverThePrimary(t *testing.T) {
	c, p, r, faults := diskCluster(t, 39)
	faults.Set(disk.State{Full: true})
	if _, err := c.client("p").Put(context.Background(), "doomed", "v"); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("a write on a full disk: %v, want no space left", err)
	}
	waitFor(t, 15*time.Second, "the replica to take over from the primary with a full disk", func() bool {
		return r.State().Primary && !p.State().Primary
	})
	putRetry(t, c.client("r"), "after", "v", 10*time.Second)
}

// TestDamagedLogIsSetAsideAndRebuilt: a bit flipped in the middle of a replica's log (drill's
// disk-corrupt fault) is found at its next start; the node keeps the damaged log aside, starts an
// empty one and rebuilds it from the primary: afterwards its log is the primary's. Octet 40.
func TestDamagedLogIsSetAsideAndRebuilt(t *testing.T) {
	c, p, r, _ := diskCluster(t, 40)
	for i := range 20 {
		putRetry(t, c.client("p"), "key"+string(rune('a'+i)), "v", 5*time.Second)
	}
	want := p.State().LSN
	waitFor(t, 5*time.Second, "replica caught up", func() bool { return r.State().LSN == want })
	dir := c.cfgs["r"].DataDir
	lsn, err := CorruptWALRecord(dir)
	if err != nil || lsn == 0 || lsn >= want {
		t.Fatalf("corrupt: lsn %d of %d, %v", lsn, want, err)
	}
	c.kill("r")
	r = c.start("r")
	aside, _ := filepath.Glob(filepath.Join(dir, walFileName+".damaged-*"))
	if len(aside) != 1 {
		t.Fatalf("damaged log kept as %v", aside)
	}
	if info, err := os.Stat(aside[0]); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("damaged log %v %v", info, err)
	}
	waitFor(t, 10*time.Second, "the rebuilt replica to catch up", func() bool { return r.State().LSN == want })
	pl, err := c.client("p").Log(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rl, err := c.client("r").Log(context.Background())
	if err != nil || !slices.Equal(pl, rl) {
		t.Fatalf("rebuilt log differs from the primary's (%d vs %d entries, %v)", len(rl), len(pl), err)
	}
}
