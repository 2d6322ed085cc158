package db

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxCommitBatch caps how many writes share one fsync.
const maxCommitBatch = 512

// errSemiSyncTimeout: the write is durable locally but no remote replica confirmed it in time.
var errSemiSyncTimeout = errors.New("semi-sync timeout")

// unknownOutcomeError marks a write that reached the local log but whose acknowledgement conditions
// failed afterwards (lease lost, stepped down): it may or may not survive.
type unknownOutcomeError struct{ err error }

func (e unknownOutcomeError) Error() string { return e.err.Error() + " (outcome unknown)" }
func (e unknownOutcomeError) Unwrap() error { return e.err }

// writeRequest is one Put waiting for the committer.
type writeRequest struct {
	key, value string
	done       chan writeOutcome // buffered 1
}

type writeOutcome struct {
	lsn, epoch uint64
	err        error
}

// commitLoop is the group committer: it takes every write waiting at the moment, appends them in
// one batch with one fsync, then answers each. Concurrent writers therefore share fsyncs.
func (n *Node) commitLoop(ctx context.Context) {
	batch := make([]*writeRequest, 0, maxCommitBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-n.writes:
			batch = append(batch[:0], req)
		}
	drain:
		for len(batch) < maxCommitBatch {
			select {
			case req := <-n.writes:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		n.commit(batch)
	}
}

func (n *Node) commit(batch []*writeRequest) {
	n.walMu.Lock()
	defer n.walMu.Unlock()
	now := n.now()
	reply := func(err error) {
		for _, r := range batch {
			r.done <- writeOutcome{err: err}
		}
	}

	n.mu.Lock()
	var refuse error
	switch {
	case n.walErr != nil:
		refuse = n.walErr
	case n.role != RolePrimary:
		refuse = errNotPrimary
	case !n.leaseValidLocked(now):
		refuse = errNoLease
	}
	epoch, next := n.epoch, n.lastLSNLocked()+1
	n.mu.Unlock()
	if refuse != nil {
		reply(refuse)
		return
	}

	entries := make([]Entry, len(batch))
	for i, r := range batch {
		entries[i] = Entry{LSN: next + uint64(i), Epoch: epoch, Key: r.key, Value: r.value, TsUnixNano: now.UnixNano()}
	}
	if err := n.wal.append(entries); err != nil {
		// After a failed write or fsync the file's state is unknown; stop writing for good.
		n.logger.Error("db: wal append failed; refusing further writes and stepping down", "err", err)
		n.mu.Lock()
		n.walErr = err
		epoch := n.epoch
		n.mu.Unlock()
		reply(err)
		// Stop claiming primary and renewing the lease, so a replica takes over (finding 4).
		n.stepDown(epoch, "", "the write-ahead log failed: "+err.Error())
		return
	}
	n.mu.Lock()
	n.entries = append(n.entries, entries...)
	for _, e := range entries {
		n.data[e.Key] = kvValue{value: e.Value, lsn: e.LSN}
	}
	n.signalAppliedLocked()
	n.mu.Unlock()
	n.notifyChange()
	for i, r := range batch {
		r.done <- writeOutcome{lsn: entries[i].LSN, epoch: epoch}
	}
}

// put writes key=value and returns once the write may be acknowledged: durable locally, still
// primary with a valid lease (fencing lease), and for semi-sync also held by a replica in another
// region. ackBy is when the lease that allows the acknowledgement runs out (zero without
// fencing): an acknowledgement must not leave after it.
func (n *Node) put(ctx context.Context, key, value string) (lsn, epoch uint64, ackBy time.Time, err error) {
	req := &writeRequest{key: key, value: value, done: make(chan writeOutcome, 1)}
	select {
	case n.writes <- req:
	case <-n.ctx.Done():
		return 0, 0, time.Time{}, errClosed
	case <-ctx.Done():
		return 0, 0, time.Time{}, fmt.Errorf("submit write: %w", ctx.Err())
	}
	var out writeOutcome
	select {
	case out = <-req.done:
	case <-n.ctx.Done():
		return 0, 0, time.Time{}, unknownOutcomeError{errClosed}
	}
	if out.err != nil {
		return 0, 0, time.Time{}, out.err
	}
	if n.cfg.Replication == ReplicationSemiSync {
		if err := n.waitRemoteAck(ctx, out.lsn); err != nil {
			return out.lsn, out.epoch, time.Time{}, err
		}
	}
	// Check again just before acknowledging: the lease may have run out during the fsync or the
	// semi-sync wait, and an acknowledgement after that could overlap a new primary's writes.
	n.mu.Lock()
	switch {
	case n.role != RolePrimary || n.epoch != out.epoch:
		err = unknownOutcomeError{errNotPrimary}
	case !n.leaseValidLocked(n.now()):
		err = unknownOutcomeError{errNoLease}
	}
	if n.cfg.Fencing == FencingLease {
		// The lease is on the node's clock, a socket deadline on real time: what is left of it.
		ackBy = time.Now().Add(n.leaseUntil.Sub(n.now()))
	}
	n.mu.Unlock()
	return out.lsn, out.epoch, ackBy, err
}

// waitRemoteAck waits until a replica in another region has acknowledged lsn.
func (n *Node) waitRemoteAck(ctx context.Context, lsn uint64) error {
	timer := time.NewTimer(n.cfg.SemiSyncTimeout)
	defer timer.Stop()
	for {
		n.mu.Lock()
		done := n.remoteAckedLocked(lsn)
		stillPrimary := n.role == RolePrimary
		wake := n.acked
		n.mu.Unlock()
		if done {
			return nil
		}
		if !stillPrimary {
			return unknownOutcomeError{errNotPrimary}
		}
		select {
		case <-wake:
		case <-timer.C:
			return errSemiSyncTimeout
		case <-ctx.Done():
			return unknownOutcomeError{fmt.Errorf("semi-sync wait: %w", ctx.Err())}
		case <-n.ctx.Done():
			return unknownOutcomeError{errClosed}
		}
	}
}

func (n *Node) remoteAckedLocked(lsn uint64) bool {
	for _, r := range n.replicas {
		if r.region != n.cfg.Region && r.acked >= lsn {
			return true
		}
	}
	return false
}
