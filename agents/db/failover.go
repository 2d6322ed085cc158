package db

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
)

// failoverTick is how often the failover loop looks at the gossip view.
const failoverTick = 100 * time.Millisecond

// goneTracker remembers since when the last primary has not been seen serving as primary, for the
// cases gossip gives no timestamp for (alive but no longer primary, or absent from the view).
type goneTracker struct {
	name  string
	since time.Time
}

// failoverLoop promotes a replica when its last primary is gone, and steps a primary down when an
// alive peer claims a newer epoch.
func (n *Node) failoverLoop(ctx context.Context) {
	ticker := time.NewTicker(failoverTick)
	defer ticker.Stop()
	var gone goneTracker
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		n.failoverStep(n.now(), &gone)
	}
}

func (n *Node) failoverStep(now time.Time, gone *goneTracker) {
	peers := n.cfg.View.DBPeers()
	n.mu.Lock()
	role, epoch, lsn, lastEpoch, lastPrimary := n.role, n.epoch, n.lastLSNLocked(), n.lastEpochLocked(), n.lastPrimary
	fencedAt, walErr, rebuilding := n.fencedAt, n.walErr, n.rebuilding
	n.mu.Unlock()
	if walErr != nil {
		// A node that cannot write its log never leads again (finding 4; commit stepped it down).
		return
	}
	if rebuilding && role != RolePrimary {
		// Its log was set aside as damaged: it leads only once it has caught up with a primary.
		return
	}
	if n.wal.stuck() > n.cfg.LeaseDuration/2 {
		// Its disk hangs: a node that cannot make its log durable does not volunteer to lead.
		return
	}

	if role == RolePrimary {
		gone.name, gone.since = "", time.Time{}
		n.maybeStepDown(peers, epoch)
		return
	}

	// A replica promotes only when it has followed some primary, that primary has been gone for
	// FailoverAfter, nobody alive claims primary, and it is the most up-to-date alive replica.
	if lastPrimary == "" {
		return
	}
	if gone.name != lastPrimary {
		gone.name, gone.since = lastPrimary, time.Time{}
	}
	var last *PeerState
	for i := range peers {
		if peers[i].Alive && peers[i].Primary {
			gone.since = time.Time{}
			return
		}
		if peers[i].Name == lastPrimary {
			last = &peers[i]
		}
	}
	var since time.Time
	switch {
	case lastPrimary == n.cfg.Name:
		// We were the primary and restarted as a replica, or were fenced out without learning the
		// winner: "gone" since the later of the two. The winner may die before anyone follows it
		// (finding 2); without this, writes would stay down for good.
		since = n.startedAt
		if fencedAt.After(since) {
			since = fencedAt
		}
	case last != nil && !last.Alive && !last.Since.IsZero():
		// Gossip times on real time; this node measures on its own clock.
		since = now.Add(-time.Since(last.Since))
	default: // alive but not primary any more, or not in the view
		if gone.since.IsZero() {
			gone.since = now
		}
		since = gone.since
	}
	if now.Sub(since) < n.cfg.FailoverAfter {
		return
	}
	// The most up-to-date log leads (Raft's election restriction): the epoch of the last entry
	// first, then its LSN, then the name. A peer that cannot write its log is not waited for.
	for _, p := range peers {
		if !p.Alive || p.Unfit {
			continue
		}
		if p.LastEpoch > lastEpoch || (p.LastEpoch == lastEpoch && (p.LSN > lsn || (p.LSN == lsn && p.Name < n.cfg.Name))) {
			return // a better-placed replica will promote
		}
	}
	if n.cfg.Fencing == FencingLease {
		// Promote only if a majority of voters would grant the lease, that is, only if no primary
		// holds it any more (it died, or lost its majority). A primary this node merely cannot
		// see (it is cut off itself, or was fenced out by a winner it never saw) still holds it;
		// claiming primary at a higher epoch anyway would make that healthy primary step down when
		// the cut heals, and this node's shorter log would discard every write acknowledged
		// meanwhile (found by exploration). Raft's pre-vote, for the same reason.
		if !n.preVote(n.nextEpoch(highestEpoch(epoch, peers))) {
			return
		}
	}
	n.promote(peers, lastPrimary, now.Sub(since))
}

// preVote asks every voter whether it would grant this node the lease at epoch, changing nothing,
// and reports whether a majority would. It answers as soon as the outcome is certain: a voter
// that hangs (the paused primary is one) must not hold a failover up for the whole timeout.
func (n *Node) preVote(epoch uint64) bool {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaseDuration/2)
	defer cancel()
	req := LeaseRequest{Candidate: n.cfg.Name, Epoch: epoch, DurationMS: n.cfg.LeaseDuration.Milliseconds(), DryRun: true}
	yes := make(chan bool, len(n.cfg.Voters))
	for _, voter := range n.cfg.Voters {
		go func() {
			resp, err := n.askVoter(ctx, voter, req)
			yes <- err == nil && resp.Granted
		}()
	}
	majority := len(n.cfg.Voters)/2 + 1
	granted, refused := 0, 0
	for range n.cfg.Voters {
		if <-yes {
			granted++
		} else {
			refused++
		}
		switch {
		case granted >= majority:
			return true
		case refused > len(n.cfg.Voters)-majority:
			return false
		}
	}
	return false
}

// maybeStepDown steps a primary down when an alive peer claims primary with a higher epoch. With
// fencing none an equal epoch is broken by name (lowest wins); with fencing lease equal epochs are
// settled by the voters instead (see renewLease), because gossip cannot tell who holds the lease.
func (n *Node) maybeStepDown(peers []PeerState, epoch uint64) {
	var winner *PeerState
	for i := range peers {
		p := &peers[i]
		if !p.Alive || !p.Primary {
			continue
		}
		newer := p.Epoch > epoch || (n.cfg.Fencing == FencingNone && p.Epoch == epoch && p.Name < n.cfg.Name)
		if newer && (winner == nil || p.Epoch > winner.Epoch) {
			winner = p
		}
	}
	if winner != nil {
		n.stepDown(winner.Epoch, winner.Name, fmt.Sprintf("peer %s is primary at epoch %d", winner.Name, winner.Epoch))
	}
}

// promote makes this replica the primary at a new epoch, persisted before anything else.
func (n *Node) promote(peers []PeerState, lastPrimary string, goneFor time.Duration) {
	n.mu.Lock()
	if n.role != RoleReplica {
		n.mu.Unlock()
		return
	}
	newEpoch := n.nextEpoch(highestEpoch(n.epoch, peers))
	prevEpoch, prevLastPrimary, prevFollowing := n.epoch, n.lastPrimary, n.following
	n.role, n.epoch, n.lastPrimary, n.following = RolePrimary, newEpoch, n.cfg.Name, n.cfg.Name
	if err := n.persistMetaLocked(); err != nil {
		n.role, n.epoch, n.lastPrimary, n.following = RoleReplica, prevEpoch, prevLastPrimary, prevFollowing
		n.mu.Unlock()
		n.logger.Error("db: promotion aborted: cannot persist the new epoch", "err", err)
		return
	}
	n.leaseUntil, n.leaseEpoch = time.Time{}, 0
	n.replicas = map[string]*replicaProgress{}
	lsn := n.lastLSNLocked()
	n.signalAppliedLocked()
	n.mu.Unlock()
	n.logger.Warn("db: promoted to primary", "epoch", newEpoch, "lsn", lsn,
		"last_primary", lastPrimary, "gone_for", goneFor.Round(time.Millisecond).String())
	n.notifyChange()
	select {
	case n.leaseKick <- struct{}{}:
	default:
	}
}

// highestEpoch is the highest of own and the peers' epochs.
func highestEpoch(own uint64, peers []PeerState) uint64 {
	for _, p := range peers {
		own = max(own, p.Epoch)
	}
	return own
}

// nextEpoch is the epoch this node promotes to above highest: the next one of its own slot when
// Config.Peers names the plan's db nodes (slot = this node's place among them, sorted by name),
// so two replicas that cannot see each other never pick the same epoch and an epoch names one
// primary, in every fencing mode; highest+1 without Peers (tests of one node).
func (n *Node) nextEpoch(highest uint64) uint64 {
	names := slices.Sorted(maps.Keys(n.cfg.Peers))
	slot := slices.Index(names, n.cfg.Name)
	if slot < 0 {
		return highest + 1
	}
	slots := uint64(len(names))
	next := highest + 1
	return next + (uint64(slot)+slots-next%slots)%slots
}

// stepDown turns this primary into a replica following follow ("" = not known yet) at epoch >= newEpoch.
func (n *Node) stepDown(newEpoch uint64, follow, reason string) {
	n.mu.Lock()
	if n.role != RolePrimary {
		n.mu.Unlock()
		return
	}
	n.role = RoleReplica
	n.epoch = max(n.epoch, newEpoch)
	// Without a known new primary this node stays its own last primary, fenced now: it may
	// promote again (at a higher epoch) only if no primary shows up within FailoverAfter.
	n.lastPrimary, n.following = follow, follow
	if follow == "" {
		n.lastPrimary, n.fencedAt = n.cfg.Name, n.now()
	}
	n.leaseUntil, n.leaseEpoch = time.Time{}, 0
	n.replicas = map[string]*replicaProgress{}
	n.caughtUp = false
	n.syncedWith = ""
	n.caughtUpAt = n.now()
	if err := n.persistMetaLocked(); err != nil {
		n.logger.Error("db: persist metadata after stepping down", "err", err)
	}
	epoch := n.epoch
	n.signalAckedLocked()
	n.signalAppliedLocked()
	n.mu.Unlock()
	n.logger.Warn("db: stepped down to replica", "reason", reason, "epoch", epoch, "following", follow)
	n.notifyChange()
}

// leaseLoop keeps the primary's majority lease (fencing lease): a round every LeaseDuration/3 while
// the lease is valid, every LeaseDuration/10 while it is not, so a new primary starts writing soon.
// Rounds run concurrently: a black-holed voter holds its round for the full request timeout, and
// that must not delay the next round.
func (n *Node) leaseLoop(ctx context.Context) {
	var rounds sync.WaitGroup
	defer rounds.Wait()
	renewEvery := n.cfg.LeaseDuration / 3
	retryEvery := max(n.cfg.LeaseDuration/10, 10*time.Millisecond)
	for ctx.Err() == nil {
		n.mu.Lock()
		isPrimary, epoch, valid := n.role == RolePrimary, n.epoch, n.leaseValidLocked(n.now())
		n.mu.Unlock()
		if stuck := n.wal.stuck(); isPrimary && stuck > n.cfg.LeaseDuration/2 {
			// A primary whose log has not become durable for half a lease has a hung disk: it
			// acknowledges nothing, yet it would keep its lease and its claim in gossip, and no
			// replica would take over. It steps down instead, as after a failed write (finding 4).
			n.stepDown(epoch, "", fmt.Sprintf("the write-ahead log has not become durable for %s (a hung disk)", stuck.Round(time.Millisecond)))
			isPrimary = false
		}
		interval := renewEvery
		if isPrimary && n.cfg.Fencing == FencingLease {
			rounds.Add(1)
			go func() {
				defer rounds.Done()
				n.renewLease(ctx, epoch, valid)
			}()
			if !valid {
				interval = retryEvery
			}
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-n.leaseKick:
		}
		timer.Stop()
	}
}

// renewLease runs one lease round: it asks every voter in parallel and takes the lease as soon as a
// majority granted; it steps down when a voter reports a newer epoch, or when a rival holds the
// lease in our own epoch and we never won that epoch. The lease counts
// from the request's start: valid until start + LeaseDuration - LeaseDuration/10, which ends before
// any voter (whose grant runs LeaseDuration from its receipt) can grant someone else.
func (n *Node) renewLease(ctx context.Context, epoch uint64, heldAtStart bool) {
	start := n.now()
	// A round may take up to half the lease: long enough for a vote across a slow WAN (a 300 ms
	// one-way latency makes a ~700 ms round trip), short enough that a granted lease still has
	// time to run. Rounds overlap, so a slow one never delays the next.
	roundCtx, cancel := context.WithTimeout(ctx, n.cfg.LeaseDuration/2)
	defer cancel()
	req := LeaseRequest{Candidate: n.cfg.Name, Epoch: epoch, DurationMS: n.cfg.LeaseDuration.Milliseconds()}
	type vote struct {
		voter string
		resp  LeaseResponse
		err   error
	}
	votes := make(chan vote, len(n.cfg.Voters))
	for _, voter := range n.cfg.Voters {
		go func() {
			resp, err := n.askVoter(roundCtx, voter, req)
			votes <- vote{voter, resp, err}
		}()
	}
	majority := len(n.cfg.Voters)/2 + 1
	granted := 0
	var highest uint64
	lostElection := false
	for range n.cfg.Voters {
		v := <-votes
		if v.err != nil {
			continue
		}
		highest = max(highest, v.resp.Epoch)
		if v.resp.Granted {
			granted++
			if granted == majority {
				n.takeLease(epoch, start)
			}
		} else if v.resp.Holder != n.cfg.Name && v.resp.HolderEpoch == epoch {
			lostElection = true // a rival was granted our very epoch: it is never ours at this voter
		}
	}
	if granted >= majority {
		n.metrics.leaseRenewals.WithLabelValues("granted").Inc()
	} else {
		n.metrics.leaseRenewals.WithLabelValues("denied").Inc()
		if heldAtStart && ctx.Err() == nil {
			n.logger.Warn("db: lease renewal denied; writes stop when the lease runs out",
				"epoch", epoch, "granted", granted, "majority", majority)
		}
		n.mu.Lock()
		wonThisEpoch := n.wonEpoch == epoch
		n.mu.Unlock()
		if lostElection && !wonThisEpoch {
			n.stepDown(epoch, "", fmt.Sprintf("another candidate holds the lease for epoch %d", epoch))
			return
		}
	}
	if highest > epoch {
		n.stepDown(highest, "", fmt.Sprintf("a voter has seen epoch %d", highest))
	}
}

// takeLease records a majority grant made in the round that started at start.
func (n *Node) takeLease(epoch uint64, start time.Time) {
	until := start.Add(n.cfg.LeaseDuration - n.cfg.LeaseDuration/10)
	n.mu.Lock()
	if n.role != RolePrimary || n.epoch != epoch {
		n.mu.Unlock()
		return
	}
	first := n.leaseEpoch != epoch || !n.now().Before(n.leaseUntil)
	if n.leaseEpoch != epoch || until.After(n.leaseUntil) {
		n.leaseUntil, n.leaseEpoch = until, epoch
	}
	n.wonEpoch = max(n.wonEpoch, epoch)
	n.mu.Unlock()
	if first {
		n.logger.Info("db: lease acquired", "epoch", epoch, "valid_for", until.Sub(n.now()).Round(time.Millisecond).String())
		n.notifyChange()
	}
}

// askVoter asks one voter: this node's own voter in-process, the others over HTTP via PeerURL.
func (n *Node) askVoter(ctx context.Context, voter string, req LeaseRequest) (LeaseResponse, error) {
	if voter == n.cfg.Name {
		return n.voter.Vote(req)
	}
	base := n.cfg.PeerURL(voter)
	if base == "" {
		return LeaseResponse{}, fmt.Errorf("no URL for voter %s", voter)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return LeaseResponse{}, fmt.Errorf("encode lease request: %w", err)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/lease", bytes.NewReader(body))
	if err != nil {
		return LeaseResponse{}, fmt.Errorf("build lease request: %w", err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	peerauth.For(httpReq, voter)
	res, err := n.peers.Do(httpReq)
	if err != nil {
		return LeaseResponse{}, fmt.Errorf("ask voter %s: %w", voter, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return LeaseResponse{}, fmt.Errorf("voter %s: status %d: %s", voter, res.StatusCode, msg)
	}
	var resp LeaseResponse
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil {
		return LeaseResponse{}, fmt.Errorf("decode vote from %s: %w", voter, err)
	}
	return resp, nil
}
