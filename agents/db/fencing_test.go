package db

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/peerauth"
)

// writeRecorder hammers one node with writes and records when each acknowledged write came back.
type writeRecorder struct {
	mu      sync.Mutex
	acks    []time.Time
	noLease int
	done    chan struct{}
}

func startWriter(ctx context.Context, node, baseURL, prefix string) *writeRecorder {
	w := &writeRecorder{done: make(chan struct{})}
	cl := &Client{BaseURL: baseURL, HTTP: peerauth.Client(testAuthKey, 2*time.Second, nil), Node: node}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond) // pace: failed writes return at once
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			_, err := cl.Put(ctx, fmt.Sprintf("%s%d", prefix, i), "v")
			at := time.Now()
			w.mu.Lock()
			if err == nil {
				w.acks = append(w.acks, at)
			} else if isAPIError(err, 503, "no lease") {
				w.noLease++
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *writeRecorder) snapshot() ([]time.Time, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.acks...), w.noLease
}

// partitionDrill: p (region a, primary) and r (region b) are partitioned from each other, and the
// witness is reachable from r's side only. Clients in each region keep writing to their region's
// node. It returns the acknowledgement times seen on each side, then heals the partition and
// waits until the old primary has rejoined as a replica of r.
// pMod, if set, adjusts p's config further.
func partitionDrill(t *testing.T, octet int, fencing string, pMod ...func(*Config)) (pAcks, rAcks []time.Time, pNoLease int, p, r *Node) {
	c := newCluster(t, octet)
	c.voters = []string{"p", "r", "witness"}
	c.startWitness()
	withFencing := func(cfg *Config) {
		cfg.Fencing = fencing
		// The client-side ack times carry scheduling noise; a 2 s lease gives a 200 ms safety margin.
		cfg.LeaseDuration = 2 * time.Second
	}
	c.addNode("p", "a", 1, true, func(cfg *Config) {
		withFencing(cfg)
		for _, m := range pMod {
			m(cfg)
		}
	})
	c.addNode("r", "b", 2, false, withFencing)
	links := []*testLink{c.link("p", "r"), c.link("r", "p"), c.link("p", "witness")}
	p, r = c.start("p"), c.start("r")
	waitFor(t, 5*time.Second, "r to follow p", func() bool { return r.State().PrimaryName == "p" })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pw := startWriter(ctx, "p", c.direct["p"], "p-")
	rw := startWriter(ctx, "r", c.direct["r"], "r-")
	waitFor(t, 5*time.Second, "p to acknowledge writes", func() bool { acks, _ := pw.snapshot(); return len(acks) >= 5 })

	partitionAt := time.Now()
	c.hide("p", "r", true)
	for _, l := range links {
		l.Cut()
	}
	waitFor(t, 10*time.Second, "r to acknowledge writes", func() bool { acks, _ := rw.snapshot(); return len(acks) >= 20 })
	cancel()
	<-pw.done
	<-rw.done
	pAcks, pNoLease = pw.snapshot()
	rAcks, _ = rw.snapshot()
	t.Logf("partition at %s; p acks %d (last %v after the partition), r acks %d (first %v after the partition)",
		partitionAt.Format("15:04:05.000"), len(pAcks), pAcks[len(pAcks)-1].Sub(partitionAt).Round(time.Millisecond),
		len(rAcks), rAcks[0].Sub(partitionAt).Round(time.Millisecond))

	for _, l := range links {
		l.Heal()
	}
	c.hide("p", "r", false)
	waitFor(t, 10*time.Second, "old primary to rejoin as a replica of r", func() bool {
		ps, rs := p.State(), r.State()
		return ps.Role == RoleReplica && rs.Primary && ps.PrimaryName == "r" && ps.LSN == rs.LSN && ps.Epoch == rs.Epoch
	})
	return pAcks, rAcks, pNoLease, p, r
}

// acksAfter counts the acknowledgements later than t.
func acksAfter(acks []time.Time, t time.Time) int {
	n := 0
	for _, at := range acks {
		if at.After(t) {
			n++
		}
	}
	return n
}

// Lease fencing: during the partition at most one node acknowledges writes at any time. Octet 8.
func TestLeaseFencingNoOverlap(t *testing.T) {
	pAcks, rAcks, pNoLease, p, _ := partitionDrill(t, 8, FencingLease)
	pLast, rFirst := pAcks[len(pAcks)-1], rAcks[0]
	if !pLast.Before(rFirst) {
		t.Fatalf("split brain: old primary acknowledged a write %v after the new primary's first", pLast.Sub(rFirst))
	}
	if pNoLease == 0 {
		t.Fatal("old primary never refused a write for lack of a lease")
	}
	t.Logf("measured: gap between the old primary's last ack and the new primary's first: %v; old primary refused %d writes (no lease); old primary discarded %d unreplicated writes on rejoin",
		rFirst.Sub(pLast).Round(time.Millisecond), pNoLease, p.State().DiscardedWrites)
}

// The lease's assumption, shown to hold: the primary measures its lease on its own clock, ending it
// a tenth early (LeaseDuration/10), so clocks may disagree by that much over a lease and no more.
// A primary whose clock runs 60 % slow holds its 1.8 s lease for 4.5 s of real time, long after the
// voters gave the lease to r: both acknowledge writes. This is the documented limit drill reports
// for clock faults beyond the margin, not a bug. Octet 11.
func TestClockDriftBeyondTheLeaseMarginBreaksFencing(t *testing.T) {
	slow := clock.New()
	slow.Set(clock.Shift{DriftPPM: -600_000})
	pAcks, rAcks, _, _, _ := partitionDrill(t, 11, FencingLease, func(cfg *Config) { cfg.Clock = slow.Now })
	rFirst := rAcks[0]
	overlap := acksAfter(pAcks, rFirst)
	if overlap == 0 {
		t.Fatalf("a primary whose clock runs 60 %% slow stopped writing (last ack %v) before the new primary's first; the lease margin is not what bounds clock error",
			pAcks[len(pAcks)-1].Sub(rFirst).Round(time.Millisecond))
	}
	t.Logf("measured: %d writes acknowledged by the slow-clocked old primary after the new primary's first (last %v after it)",
		overlap, pAcks[len(pAcks)-1].Sub(rFirst).Round(time.Millisecond))
}

// Without fencing both sides acknowledge writes during the partition (the known-bad setting), and
// the old primary's writes from the overlap are discarded when it rejoins. Octet 9.
func TestNoFencingSplitBrain(t *testing.T) {
	pAcks, rAcks, _, p, _ := partitionDrill(t, 9, FencingNone)
	overlap := acksAfter(pAcks, rAcks[0])
	if overlap == 0 {
		t.Fatal("with fencing none the partitioned old primary should keep acknowledging writes")
	}
	if d := p.State().DiscardedWrites; d < uint64(overlap) {
		t.Fatalf("old primary discarded %d writes, want at least the %d acknowledged during the overlap", d, overlap)
	}
	t.Logf("measured: %d writes acknowledged by the old primary while the new one was writing; %d discarded on rejoin",
		overlap, p.State().DiscardedWrites)
}

// Two primaries in the same epoch (here: both bootstrapped, a misconfiguration) are settled by the
// voters: the one that never won that epoch's lease steps down and follows the other. Octet 10.
func TestLeaseSettlesEqualEpochs(t *testing.T) {
	c := newCluster(t, 10)
	c.voters = []string{"a", "b", "witness"}
	c.startWitness()
	c.addNode("a", "x", 1, true, nil)
	c.addNode("b", "y", 2, true, nil)
	a := c.start("a")
	waitFor(t, 5*time.Second, "a to hold the lease", func() bool { return a.State().HasLease })
	b := c.start("b")
	if st := b.State(); st.Role != RolePrimary || st.Epoch != 1 {
		t.Fatalf("b should start as a second primary at epoch 1, got %+v", st)
	}
	waitFor(t, 5*time.Second, "b to step down and follow a", func() bool {
		st := b.State()
		return st.Role == RoleReplica && st.PrimaryName == "a"
	})
	if st := a.State(); !st.Primary || !st.HasLease {
		t.Fatalf("a lost its primacy: %+v", st)
	}
	if w := putRetry(t, c.client("a"), "k", "v", 5*time.Second); w.Node != "a" {
		t.Fatalf("write %+v", w)
	}
	waitFor(t, 5*time.Second, "b to replicate a's write", func() bool { return b.State().LSN == a.State().LSN })
}
