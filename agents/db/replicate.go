package db

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
)

const (
	// pullWait is how long a replica's long-poll may wait on the primary for new entries.
	pullWait = time.Second
	// maxWait caps any client-supplied wait_ms.
	maxWait = 5 * time.Second
	// maxPullEntries caps one pull response.
	maxPullEntries = 1000
	// pull error backoff bounds.
	minPullBackoff = 50 * time.Millisecond
	maxPullBackoff = time.Second
)

// walResponse is the answer to GET /v1/wal.
type walResponse struct {
	Node   string `json:"node"`
	Region string `json:"region"`
	// Epoch is the primary's epoch.
	Epoch uint64 `json:"epoch"`
	// LSN and PrimaryLSN are both the primary's last LSN.
	LSN        uint64 `json:"lsn"`
	Primary    string `json:"primary"`
	PrimaryLSN uint64 `json:"primary_lsn"`
	// Entries are the entries from the requested LSN on (possibly none after a long-poll timeout).
	Entries []Entry `json:"entries"`
	// TruncateTo, when set, tells the replica its log diverged: keep entries up to this LSN and pull again.
	TruncateTo *uint64 `json:"truncate_to,omitempty"`
}

// handleWAL serves replication pulls. The request acknowledges every entry below from for that
// replica; when the replica's last entry (from-1, last_epoch) is not in this log, the answer is a
// truncation point instead of entries (Kafka leader-epoch style).
func (n *Node) handleWAL(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, ok := n.fromLSN(w, q)
	if !ok {
		return
	}
	lastEpoch, ok := n.uintParam(w, q, "last_epoch")
	if !ok {
		return
	}
	replicaEpoch, ok := n.uintParam(w, q, "epoch")
	if !ok {
		return
	}
	wait, ok := n.waitParam(w, q, pullWait)
	if !ok {
		return
	}
	replica, region := q.Get("replica"), q.Get("region")
	if replica != "" && n.cfg.Peers != nil && (n.cfg.Peers[replica] != region || replica == n.cfg.Name) {
		// Only the plan's own replicas, from their own regions, count towards semi-sync.
		n.writeError(w, http.StatusForbidden, errorBody{Error: "unknown replica " + replica + " in region " + region})
		return
	}
	prev := from - 1

	n.mu.Lock()
	if n.role != RolePrimary {
		following := n.following
		n.mu.Unlock()
		n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "not primary", Primary: following})
		return
	}
	if lastEpoch > n.epoch || replicaEpoch > n.epoch {
		// The replica holds entries of a newer epoch than ours, or has adopted one: we are a stale
		// primary. We must not make it truncate, and its acknowledgement must not count towards
		// semi-sync (finding 3).
		n.mu.Unlock()
		n.writeError(w, http.StatusConflict, errorBody{Error: "stale primary"})
		return
	}
	last := n.lastLSNLocked()
	if prev > 0 && (prev > last || n.entries[prev-1].Epoch != lastEpoch) {
		truncateTo := n.divergencePointLocked(prev, lastEpoch)
		resp := n.walResponseLocked(nil)
		resp.TruncateTo = &truncateTo
		n.mu.Unlock()
		n.logger.Info("db: replica diverged; telling it to truncate", "replica", replica,
			"replica_last_lsn", prev, "replica_last_epoch", lastEpoch, "truncate_to", truncateTo)
		writeJSON(w, http.StatusOK, resp)
		return
	}
	if replica != "" {
		p := n.replicas[replica]
		if p == nil {
			p = &replicaProgress{}
			n.replicas[replica] = p
		}
		p.region, p.seen = region, n.now()
		if p.acked != prev {
			p.acked = prev
			n.signalAckedLocked()
		}
	}

	// Long-poll until the log holds LSN from, or this node stops being primary.
	if !n.awaitLocked(w, r, wait, func() bool { return from <= n.lastLSNLocked() || n.role != RolePrimary }) {
		return
	}
	if n.role != RolePrimary {
		following := n.following
		n.mu.Unlock()
		n.writeError(w, http.StatusServiceUnavailable, errorBody{Error: "not primary", Primary: following})
		return
	}
	var batch []Entry
	if last := n.lastLSNLocked(); from <= last {
		batch = append(batch, n.entries[from-1:min(last, from-1+maxPullEntries)]...)
	}
	resp := n.walResponseLocked(batch)
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// divergencePointLocked is the last LSN in this log with an epoch <= lastEpoch, capped at prev.
// Epochs never decrease along the log, so a binary search finds it.
func (n *Node) divergencePointLocked(prev, lastEpoch uint64) uint64 {
	limit := min(prev, n.lastLSNLocked())
	return uint64(sort.Search(int(limit), func(i int) bool { return n.entries[i].Epoch > lastEpoch }))
}

func (n *Node) walResponseLocked(entries []Entry) walResponse {
	if entries == nil {
		entries = []Entry{}
	}
	last := n.lastLSNLocked()
	return walResponse{Node: n.cfg.Name, Region: n.cfg.Region, Epoch: n.epoch, LSN: last,
		Primary: n.cfg.Name, PrimaryLSN: last, Entries: entries}
}

// replicaLoop pulls the log from the current primary while this node is a replica.
func (n *Node) replicaLoop(ctx context.Context) {
	backoff := minPullBackoff
	failing := false
	for ctx.Err() == nil {
		n.mu.Lock()
		isReplica := n.role == RoleReplica
		n.mu.Unlock()
		if !isReplica {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		target, ok := n.choosePrimary()
		n.setFollowing(target.Name)
		if !ok {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		from, resp, err := n.pull(ctx, target.Name)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Out of contact: no longer provably caught up, so LagMS starts counting.
			n.mu.Lock()
			n.caughtUp = false
			stillReplica := n.role == RoleReplica
			n.mu.Unlock()
			if !failing && stillReplica {
				n.logger.Warn("db: replication pull failing", "primary", target.Name, "err", err)
				failing = true
			}
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, maxPullBackoff)
			continue
		}
		if failing {
			n.logger.Info("db: replication pull recovered", "primary", target.Name)
			failing = false
		}
		backoff = minPullBackoff
		n.applyPull(target.Name, from, resp)
	}
}

// choosePrimary picks the alive peer claiming primary with the highest epoch (ties: lowest name).
func (n *Node) choosePrimary() (PeerState, bool) {
	var best PeerState
	found := false
	for _, p := range n.cfg.View.DBPeers() {
		if !p.Alive || !p.Primary || p.Name == n.cfg.Name {
			continue
		}
		if !found || p.Epoch > best.Epoch || (p.Epoch == best.Epoch && p.Name < best.Name) {
			best, found = p, true
		}
	}
	return best, found
}

func (n *Node) setFollowing(name string) {
	n.mu.Lock()
	changed := n.role == RoleReplica && n.following != name
	if changed {
		n.following = name
		n.caughtUp = false
		n.syncedWith = ""
	}
	n.mu.Unlock()
	if changed {
		n.logger.Info("db: following primary", "primary", name)
		n.notifyChange()
	}
}

// pull does one long-poll against the primary; from is the LSN asked for.
func (n *Node) pull(ctx context.Context, primary string) (uint64, walResponse, error) {
	n.mu.Lock()
	last, epoch := n.lastLSNLocked(), n.epoch
	var lastEpoch uint64
	if last > 0 {
		lastEpoch = n.entries[last-1].Epoch
	}
	n.mu.Unlock()
	from := last + 1
	base := n.cfg.PeerURL(primary)
	if base == "" {
		return from, walResponse{}, fmt.Errorf("no URL for primary %s", primary)
	}
	q := url.Values{}
	q.Set("from", strconv.FormatUint(from, 10))
	q.Set("last_epoch", strconv.FormatUint(lastEpoch, 10))
	q.Set("epoch", strconv.FormatUint(epoch, 10))
	q.Set("replica", n.cfg.Name)
	q.Set("region", n.cfg.Region)
	q.Set("wait_ms", strconv.FormatInt(pullWait.Milliseconds(), 10))
	reqCtx, cancel := context.WithTimeout(ctx, pullWait+2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, base+"/v1/wal?"+q.Encode(), nil)
	if err != nil {
		return from, walResponse{}, fmt.Errorf("build pull request: %w", err)
	}
	peerauth.For(req, primary)
	res, err := n.peers.Do(req)
	if err != nil {
		return from, walResponse{}, fmt.Errorf("pull from %s: %w", primary, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return from, walResponse{}, fmt.Errorf("pull from %s: status %d: %s", primary, res.StatusCode, body)
	}
	var resp walResponse
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil {
		return from, walResponse{}, fmt.Errorf("decode pull from %s: %w", primary, err)
	}
	return from, resp, nil
}

// applyPull applies one pull response: adopt a higher epoch, truncate a divergent suffix, or append
// the entries durably. A response that no longer fits (role, primary or log changed meanwhile) is
// dropped; the next pull asks again.
func (n *Node) applyPull(primary string, from uint64, resp walResponse) {
	n.walMu.Lock()
	defer n.walMu.Unlock()
	n.mu.Lock()
	if n.walErr != nil || n.role != RoleReplica || n.following != primary || n.lastLSNLocked()+1 != from {
		n.mu.Unlock()
		return
	}
	if resp.Epoch < n.epoch {
		// A primary of an older epoch than one this replica has adopted is stale (Raft's term
		// rule): nothing of it is applied (finding 3).
		n.mu.Unlock()
		n.logger.Warn("db: ignoring a stale primary", "primary", primary, "its_epoch", resp.Epoch, "epoch", n.epoch)
		return
	}
	metaDirty := false
	if resp.Epoch > n.epoch {
		n.logger.Info("db: adopting primary's epoch", "primary", primary, "epoch", resp.Epoch, "was", n.epoch)
		n.epoch = resp.Epoch
		metaDirty = true
	}
	if n.lastPrimary != primary {
		n.lastPrimary = primary
		metaDirty = true
	}
	if metaDirty {
		if err := n.persistMetaLocked(); err != nil {
			n.logger.Error("db: persist metadata", "err", err)
		}
	}
	now := n.now()

	if resp.TruncateTo != nil {
		n.truncateLocked(primary, *resp.TruncateTo)
		n.mu.Unlock()
		n.notifyChange()
		return
	}

	if len(resp.Entries) > 0 {
		if err := n.checkContinuationLocked(resp.Entries); err != nil {
			n.mu.Unlock()
			n.logger.Warn("db: dropping pull response", "primary", primary, "err", err)
			return
		}
		n.mu.Unlock()
		err := n.wal.append(resp.Entries)
		n.mu.Lock()
		if err != nil {
			n.walErr = err
			n.mu.Unlock()
			n.logger.Error("db: wal append failed; replica stops applying", "err", err)
			return
		}
		n.entries = append(n.entries, resp.Entries...)
		for _, e := range resp.Entries {
			n.data[e.Key] = kvValue{value: e.Value, lsn: e.LSN}
		}
		n.signalAppliedLocked()
	}
	// The primary answered with entries (or none) rather than a truncation: it found this log's
	// last entry in its own, so the log is a prefix of the epoch's log.
	n.matchedEpoch = max(n.matchedEpoch, resp.Epoch)
	n.lastContact = now
	n.caughtUp = n.lastLSNLocked() >= resp.PrimaryLSN
	if n.caughtUp {
		n.caughtUpAt = now
		n.syncedWith = n.following
		n.rebuilding = false
	}
	n.mu.Unlock()
	n.notifyChange()
}

// checkContinuationLocked verifies entries continue this log: contiguous LSNs, epochs not decreasing.
func (n *Node) checkContinuationLocked(entries []Entry) error {
	next := n.lastLSNLocked() + 1
	var prevEpoch uint64
	if next > 1 {
		prevEpoch = n.entries[next-2].Epoch
	}
	for i, e := range entries {
		if e.LSN != next+uint64(i) {
			return fmt.Errorf("entry %d has lsn %d, want %d", i, e.LSN, next+uint64(i))
		}
		if e.Epoch < prevEpoch {
			return fmt.Errorf("entry lsn %d epoch %d below previous %d", e.LSN, e.Epoch, prevEpoch)
		}
		prevEpoch = e.Epoch
	}
	return nil
}

// truncateLocked drops the log after truncateTo (n.mu and n.walMu held; n.mu is released around the
// file rewrite). If the primary's point makes no progress, the whole last epoch of this log goes:
// the primary already said our last entry is not in its log, and epochs are contiguous runs.
func (n *Node) truncateLocked(primary string, truncateTo uint64) {
	last := n.lastLSNLocked()
	if last == 0 {
		return
	}
	if truncateTo >= last {
		lastEpoch := n.entries[last-1].Epoch
		truncateTo = uint64(sort.Search(int(last), func(i int) bool { return n.entries[i].Epoch >= lastEpoch }))
	}
	kept := append([]Entry(nil), n.entries[:truncateTo]...)
	n.mu.Unlock()
	err := n.wal.rewrite(kept)
	n.mu.Lock()
	if err != nil {
		n.walErr = err
		n.logger.Error("db: wal truncation failed; replica stops applying", "err", err)
		return
	}
	dropped := last - truncateTo
	n.entries = kept
	n.data = make(map[string]kvValue, len(n.data))
	for _, e := range kept {
		n.data[e.Key] = kvValue{value: e.Value, lsn: e.LSN}
	}
	n.discarded += dropped
	n.metrics.discarded.Add(float64(dropped))
	n.caughtUp = false
	n.syncedWith = ""
	n.signalAppliedLocked()
	n.logger.Warn("db: truncated divergent suffix", "primary", primary, "discarded_writes", dropped,
		"from_lsn", truncateTo+1, "to_lsn", last, "kept_lsn", truncateTo)
}

// parseOptionalUint parses s, treating "" as 0.
func parseOptionalUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseWait parses a wait_ms parameter ("" = def), capped at maxWait.
func parseWait(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 {
		return 0, fmt.Errorf("bad wait_ms %q", s)
	}
	return min(time.Duration(ms)*time.Millisecond, maxWait), nil
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
