package db

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
)

// The six findings of the design review (issue 11), each reproduced: every test here failed before
// its fix. Octets 30-35.

// withPeers names the plan's db nodes for every node of a test cluster (what the agent does).
func withPeers(peers map[string]string) func(*Config) {
	return func(cfg *Config) { cfg.Peers = peers }
}

// primaryAndReplica starts p (primary, region a) and r (replica, region b) with the witness as the
// third voter, writes one key and waits until r has it.
func primaryAndReplica(t *testing.T, octet int) (c *cluster, p, r *Node) {
	t.Helper()
	c = newCluster(t, octet)
	c.voters = []string{"p", "r", "witness"}
	c.startWitness()
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r", "b", 2, false, nil)
	p, r = c.start("p"), c.start("r")
	last := putRetry(t, c.client("p"), "k", "v", 5*time.Second)
	waitFor(t, 5*time.Second, "replica caught up", func() bool { return r.State().LSN == last.LSN })
	return c, p, r
}

// TestPartitionedReplicasPickDistinctEpochs (finding 1): two replicas that cannot see each other
// both promote when the primary dies; they must not share an epoch, or a replica could append one
// primary's entries after the other's at the same epoch and never see the divergence. Octet 30.
func TestPartitionedReplicasPickDistinctEpochs(t *testing.T) {
	c := newCluster(t, 30)
	c.voters = []string{"p", "x", "y"}
	peers := map[string]string{"p": "a", "x": "b", "y": "c"}
	none := func(cfg *Config) { cfg.Peers, cfg.Fencing = peers, FencingNone }
	c.addNode("p", "a", 1, true, none)
	c.addNode("x", "b", 2, false, none)
	c.addNode("y", "c", 3, false, none)
	c.start("p")
	x, y := c.start("x"), c.start("y")
	last := putRetry(t, c.client("p"), "k", "v", 5*time.Second)
	waitFor(t, 5*time.Second, "replicas caught up", func() bool { return x.State().LSN == last.LSN && y.State().LSN == last.LSN })
	c.hide("x", "y", true)
	c.kill("p")
	waitFor(t, 10*time.Second, "both partitioned replicas to promote", func() bool { return x.State().Primary && y.State().Primary })
	if ex, ey := x.State().Epoch, y.State().Epoch; ex == ey {
		t.Fatalf("x and y are both primary at epoch %d", ex)
	} else {
		t.Logf("x promoted to epoch %d, y to epoch %d", ex, ey)
	}
}

// TestFencedPrimaryPromotesWhenTheWinnerDies (finding 2): a primary fenced out by a newer epoch
// whose primary it never saw steps down; when that winner dies before anyone followed it, the
// fenced node must still be able to take over, or writes stay down for good, but never while the
// winner still holds the lease. Octet 31.
func TestFencedPrimaryPromotesWhenTheWinnerDies(t *testing.T) {
	c, p, r := primaryAndReplica(t, 31)
	// p is cut off from the voters (its lease lapses) and hidden from r in gossip: r promotes
	// once p's lease has run out, and when p's links heal the voters fence it out, while it
	// still cannot see r.
	c.hide("p", "r", true)
	cut := []*testLink{c.link("p", "r"), c.link("p", "witness")}
	for _, l := range cut {
		l.Cut()
	}
	waitFor(t, 10*time.Second, "r to promote", func() bool { return r.State().Primary })
	for _, l := range cut {
		l.Heal()
	}
	waitFor(t, 10*time.Second, "p to step down", func() bool { return !p.State().Primary })
	// While the winner lives and holds the lease, the fenced node must not take over again just
	// because it cannot see it (pre-vote): that would depose a healthy primary and lose its writes.
	holdsFor(t, 3*p.cfg.FailoverAfter+p.cfg.LeaseDuration, "the live winner keeping the primary", func() bool {
		return r.State().Primary && !p.State().Primary
	})
	c.kill("r") // the winner dies before p ever followed it
	waitFor(t, 15*time.Second, "the fenced node to take over again", func() bool { return p.State().Primary })
	w := putRetry(t, c.client("p"), "after", "v", 10*time.Second)
	t.Logf("writes resumed on p at epoch %d", w.Epoch)
}

// TestReplicaRefusesAStalePrimary (finding 3): a replica that has adopted epoch 5 applies nothing
// of a primary at epoch 3, and a primary never counts the acknowledgement of a replica that has
// adopted a newer epoch than its own (that replica would ack a write the newer primary never has).
// Octet 32.
func TestReplicaRefusesAStalePrimary(t *testing.T) {
	c := newCluster(t, 32)
	c.voters = []string{"p"}
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r", "b", 2, false, nil)
	p := c.start("p")
	r := c.start("r")
	putRetry(t, c.client("p"), "k", "v", 5*time.Second)
	waitFor(t, 5*time.Second, "replica to follow p", func() bool { return r.State().LSN == 1 })

	// The replica's side: a pull answer from a primary below the adopted epoch is dropped.
	r.walMu.Lock()
	r.mu.Lock()
	r.epoch, r.following = 5, "old"
	r.mu.Unlock()
	r.walMu.Unlock()
	stale := walResponse{Node: "old", Epoch: 3, LSN: 2, PrimaryLSN: 2, Entries: []Entry{{LSN: 2, Epoch: 3, Key: "stale", Value: "v"}}}
	r.applyPull("old", 2, stale)
	if st := r.State(); st.LSN != 1 || st.Epoch != 5 {
		t.Fatalf("replica at epoch 5 after a pull from an epoch-3 primary: %+v, want nothing applied", st)
	}

	// The primary's side: a pull from a replica at a newer epoch is refused, its ack not counted.
	q := url.Values{"from": {"2"}, "last_epoch": {"1"}, "epoch": {"5"}, "replica": {"r2"}, "region": {"c"}, "wait_ms": {"0"}}
	req, _ := http.NewRequest(http.MethodGet, c.direct["p"]+"/v1/wal?"+q.Encode(), nil)
	resp, err := c.client("p").HTTP.Do(peerauth.For(req, "p"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("pull from a replica at a newer epoch: HTTP %d, want 409", resp.StatusCode)
	}
	p.mu.Lock()
	acked := p.replicas["r2"] != nil
	p.mu.Unlock()
	if acked {
		t.Fatal("the stale primary recorded the newer replica's acknowledgement")
	}
}

// TestWALFailureHandsOverThePrimary (finding 4): a primary whose log cannot be written (disk full)
// stops claiming primary and renewing its lease, so a replica takes over. Octet 33.
func TestWALFailureHandsOverThePrimary(t *testing.T) {
	c, p, r := primaryAndReplica(t, 33)
	// Every later write to the log fails, as on a full disk.
	p.walMu.Lock()
	_ = p.wal.file.Close()
	p.walMu.Unlock()
	if _, err := c.client("p").Put(context.Background(), "doomed", "v"); err == nil {
		t.Fatal("a write succeeded on a node whose log cannot be written")
	}
	waitFor(t, 15*time.Second, "the replica to take over from the failed primary", func() bool {
		return r.State().Primary && !p.State().Primary
	})
	putRetry(t, c.client("r"), "after", "v", 10*time.Second)
	if p.State().Primary {
		t.Fatal("the node with a failed log became primary again")
	}
}

// TestWALCorruptionInTheMiddleIsNotATornTail (finding 5): a flipped bit in a record followed by
// valid records must not be cut like a torn tail (that silently drops every acknowledged write
// after it): opening refuses and leaves the file as it was.
func TestWALCorruptionInTheMiddleIsNotATornTail(t *testing.T) {
	dir := t.TempDir()
	w, _, err := openWAL(dir, testLogger(t), func() {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := walEntries(1, 10, 1)
	if err := w.append(entries); err != nil {
		t.Fatal(err)
	}
	w.close()
	path := filepath.Join(dir, walFileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fifth := len(appendWALRecord(nil, entries[0])) * 4 // records 1-4 have the same size
	raw[fifth+walHeaderSize+20] ^= 0x01                // one bit in record 5's payload
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, got, err := openWAL(dir, testLogger(t), func() {}, nil)
	if !errors.Is(err, ErrWALCorrupt) {
		t.Fatalf("open with a damaged record 5 of 10: %v (%d entries kept), want ErrWALCorrupt", err, len(got))
	}
	after, _ := os.ReadFile(path)
	if len(after) != len(raw) {
		t.Fatalf("the log was changed: %d bytes, was %d", len(after), len(raw))
	}
	t.Log(err)
}

// TestNoAcknowledgementAfterTheLease (finding 6): a primary paused between its last lease check and
// the reply (GC, SIGSTOP, a frozen container) must not deliver the acknowledgement once the lease
// has run out: by then a new primary may have taken writes. Octet 34.
func TestNoAcknowledgementAfterTheLease(t *testing.T) {
	c := newCluster(t, 34)
	c.voters = []string{"p", "witness"}
	c.startWitness()
	c.addNode("p", "a", 1, true, nil)
	p := c.start("p")
	putRetry(t, c.client("p"), "warm", "v", 5*time.Second)
	pause := p.cfg.LeaseDuration + 200*time.Millisecond
	hook := func() { time.Sleep(pause) }
	p.beforeAck.Store(&hook)
	_, err := c.client("p").Put(context.Background(), "late", "v")
	if err == nil {
		t.Fatalf("an acknowledgement arrived after a %s pause, past the %s lease", pause, p.cfg.LeaseDuration)
	}
	t.Logf("after the pause the client got: %v", err)
	p.beforeAck.Store(nil)
	if _, err := c.client("p").Put(context.Background(), "again", "v"); err != nil {
		t.Fatalf("a write without a pause: %v", err)
	}
}

// TestDivergentSuffixIsNotReadYourWrites (found by the flapping-partition drill): a node that was
// primary of an older epoch holds a longer log than the new primary's, its suffix divergent until
// its next pull truncates it. Its length passes min_lsn, yet it lacks the write the client made at
// the new epoch: a read carrying the write's epoch must wait until a primary of that epoch has
// confirmed the log. The node is opened without its loops, so nothing pulls behind the test's back.
func TestDivergentSuffixIsNotReadYourWrites(t *testing.T) {
	c := newCluster(t, 36)
	c.voters = []string{"r"}
	c.addNode("r", "b", 1, false, nil)
	r, err := Open(c.cfgs["r"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	// r led epoch 2 up to LSN 5 and has adopted epoch 3; the new primary acknowledged the
	// client's write at LSN 3 in epoch 3, which r does not hold.
	r.walMu.Lock()
	r.mu.Lock()
	for lsn := uint64(1); lsn <= 5; lsn++ {
		e := Entry{LSN: lsn, Epoch: 2, Key: fmt.Sprintf("old-%d", lsn), Value: "v"}
		r.entries = append(r.entries, e)
		r.data[e.Key] = kvValue{value: e.Value, lsn: e.LSN}
	}
	r.epoch, r.matchedEpoch, r.following = 3, 2, "p3"
	r.mu.Unlock()
	r.walMu.Unlock()
	holds := func(lsn, epoch uint64) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.holdsLocked(lsn, epoch)
	}
	if holds(3, 3) {
		t.Fatal("a log only epoch 2 confirmed passes for a write of epoch 3 at a lower LSN")
	}
	if !holds(3, 2) || !holds(3, 0) {
		t.Fatal("a write of epoch 2 (or of a client that gives no epoch) is not found in the epoch-2 log")
	}
	// The epoch-3 primary truncates the suffix (not yet enough), then sends its own entries.
	r.applyPull("p3", 6, walResponse{Node: "p3", Epoch: 3, PrimaryLSN: 3, TruncateTo: ptr(uint64(2))})
	if holds(3, 3) {
		t.Fatal("passes after the truncation alone")
	}
	r.applyPull("p3", 3, walResponse{Node: "p3", Epoch: 3, LSN: 3, PrimaryLSN: 3, Entries: []Entry{{LSN: 3, Epoch: 3, Key: "mine", Value: "v"}}})
	if !holds(3, 3) {
		t.Fatal("does not pass once the epoch-3 primary's entries are applied")
	}
}

func ptr[T any](v T) *T { return &v }

// TestIsolatedReplicaDoesNotDisruptTheLeaseholder (found by exploration, schedule 5029: a
// partition of the replica's region lost 140 writes the primary had acknowledged meanwhile): a
// replica cut off from everyone must not promote itself, because a primary it merely cannot see
// still holds the lease; had it claimed primary at a higher epoch, the healthy primary would step
// down when the partition heals and the new one would discard every write acknowledged while it
// was cut off. Every promotion under lease fencing first asks the voters (pre-vote). Octet 37.
func TestIsolatedReplicaDoesNotDisruptTheLeaseholder(t *testing.T) {
	c, p, r := primaryAndReplica(t, 37)
	epoch := p.State().Epoch
	cut := []*testLink{c.link("r", "p"), c.link("r", "witness"), c.link("p", "r")}
	c.hide("p", "r", true)
	for _, l := range cut {
		l.Cut()
	}
	during := putRetry(t, c.client("p"), "during", "v", 5*time.Second)
	holdsFor(t, 3*r.cfg.FailoverAfter+2*r.cfg.LeaseDuration, "the cut-off replica staying a replica", func() bool {
		return !r.State().Primary && p.State().Primary
	})
	for _, l := range cut {
		l.Heal()
	}
	c.hide("p", "r", false)
	waitFor(t, 10*time.Second, "the replica to catch up after the heal", func() bool { return r.State().LSN >= during.LSN })
	holdsFor(t, 2*r.cfg.LeaseDuration, "the primary keeping its epoch", func() bool {
		st := p.State()
		return st.Primary && st.Epoch == epoch && !r.State().Primary
	})
}
