// Package db is drill's database node: a key-value store with a durable write-ahead log, one primary
// that takes writes and replicas that pull its log asynchronously (or semi-synchronously), failover
// with epochs when gossip says the primary is dead, fencing with a majority lease (db nodes plus a
// witness voter), and truncation of a returning old primary's divergent suffix.
//
// Storage: one append-only WAL file of CRC-checked records (a torn tail is cut on open; damage
// before the end is refused, never cut) plus a small JSON metadata file written atomically. The
// whole map and the whole log are kept in memory; there is no compaction or snapshotting, which is
// fine for drill-sized data sets.
package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/agents/serve"
	"github.com/prometheus/client_golang/prometheus"
)

// Roles a node can have.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Setting values (the same strings as topology.Design).
const (
	ReplicationAsync    = "async"
	ReplicationSemiSync = "semi-sync"
	FencingLease        = "lease"
	FencingNone         = "none"
)

// Defaults for zero Config fields.
const (
	DefaultFailoverAfter   = 2 * time.Second
	DefaultLeaseDuration   = 2 * time.Second
	DefaultSemiSyncTimeout = 3 * time.Second
)

// Config configures one db node.
type Config struct {
	// Name is this node's name (unique in the cluster).
	Name string
	// Region is this node's region.
	Region string
	// DataDir holds the WAL, the metadata and the embedded voter's state.
	DataDir string
	// Listen is the ip:port of the HTTP API.
	Listen string
	// Bootstrap: a fresh data dir with Bootstrap starts as primary at epoch 1; otherwise the node starts as a replica.
	Bootstrap bool
	// Replication is "async" (ack once durable locally) or "semi-sync" (also wait for a replica in another region).
	Replication string
	// Fencing is "lease" (writes need a majority lease) or "none" (a primary writes while it believes it is primary).
	Fencing string
	// FailoverAfter is how long the last primary must be dead in gossip before a replica promotes.
	FailoverAfter time.Duration
	// LeaseDuration is the length of a lease granted by the voters.
	LeaseDuration time.Duration
	// Voters are the names of the lease voters (db nodes including this one, plus "witness").
	Voters []string
	// PeerURL gives the base URL ("http://ip:port") of a peer's db or voter API as reachable from
	// this node (cross-region that is a WAN proxy address, so partitions cut it).
	PeerURL func(name string) string
	// View is this node's gossip view of the other db nodes.
	View ClusterView
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the node's metrics; nil gives the node a private registry (still served on /metrics).
	Registry *prometheus.Registry
	// SemiSyncTimeout bounds how long a semi-sync write waits for a remote replica (default 3s).
	SemiSyncTimeout time.Duration
	// AuthKey signs this node's calls to its peers and authenticates every call to its API but
	// /metrics (peerauth, the run's db key). Required.
	AuthKey peerauth.Key
	// Disk is the fault layer under the node's log (drill's disk faults); nil is a healthy disk.
	Disk *disk.Faults
	// Clock is the node's clock, on which its leases, its voter's grants and its timestamps are
	// measured (drill's clock faults shift it); nil is real time.
	Clock func() time.Time
	// Peers names every db node of the plan (this one included) with its region: the only
	// candidates its voter grants a lease to and the only replicas whose acknowledgements count.
	// Empty allows any (tests of one node).
	Peers map[string]string
}

// ClusterView is the gossip view of the other db nodes.
type ClusterView interface {
	// DBPeers lists the db nodes other than this one.
	DBPeers() []PeerState
}

// PeerState is one other db node as gossip shows it.
type PeerState struct {
	// Name is the peer's node name.
	Name string
	// Region is the peer's region.
	Region string
	// Alive is gossip's liveness verdict.
	Alive bool
	// Since is when Alive last changed.
	Since time.Time
	// Primary is true if the node claims to be the primary.
	Primary bool
	// Epoch and LSN are the node's last published epoch and applied LSN; LastEpoch is the epoch
	// of its last log entry.
	Epoch, LSN, LastEpoch uint64
	// Unfit: the node cannot take writes (its log failed, or its disk hangs); it is never waited
	// for in a failover.
	Unfit bool
}

// State is the node's state for gossip metadata and status.
type State struct {
	// Name and Region identify the node.
	Name   string `json:"name"`
	Region string `json:"region"`
	// Role is primary or replica.
	Role string `json:"role"`
	// Primary is Role == primary.
	Primary bool `json:"primary"`
	// Epoch is the highest epoch the node has adopted (0 on a fresh replica).
	Epoch uint64 `json:"epoch"`
	// LSN is the applied (durable) log sequence number.
	LSN uint64 `json:"lsn"`
	// LastEpoch is the epoch of the last log entry (0 on an empty log): with LSN, how up to date
	// the log is when replicas compare themselves for a failover.
	LastEpoch uint64 `json:"last_epoch"`
	// LagMS is the replica's staleness bound: 0 on a primary and on a replica whose last pull (recent,
	// within the long-poll window plus a second) showed it had everything the primary had; otherwise
	// the milliseconds since the replica was last known to be caught up (since it started, if never).
	LagMS int64 `json:"lag_ms"`
	// HasLease: the primary holds a valid majority lease now (always false with fencing none).
	HasLease bool `json:"has_lease"`
	// PrimaryName is the primary this node follows (itself when primary; "" when it knows none).
	PrimaryName string `json:"primary_name"`
	// DiscardedWrites counts log entries this node dropped while truncating a divergent suffix.
	DiscardedWrites uint64 `json:"discarded_writes"`
	// LeaseLost: a primary that held the lease in its current epoch and no longer does (cut off
	// from the voters). A newly promoted primary still waiting for its first grant has not lost it.
	LeaseLost bool `json:"lease_lost"`
	// InSync: a replica that has caught up with the primary it follows at least once since it
	// began following it (a returning old primary is not, until it has); false on a primary.
	InSync bool `json:"in_sync"`
	// Healthy: the store is open, its WAL has not failed and its disk does not hang.
	Healthy bool `json:"healthy"`
}

// kvValue is one key's current value and the LSN that wrote it.
type kvValue struct {
	value string
	lsn   uint64
}

// replicaProgress is what the primary knows about a replica pulling from it.
type replicaProgress struct {
	region string
	acked  uint64 // highest LSN the replica holds and that matches this log
	seen   time.Time
}

// Node is one database node. Open it, then Start (or Serve) it; Close stops it.
type Node struct {
	cfg       Config
	logger    *slog.Logger
	voter     *Voter
	metrics   *nodeMetrics
	peers     *http.Client
	changes   chan struct{}
	writes    chan *writeRequest
	leaseKick chan struct{} // wakes the lease loop right after a promotion
	startedAt time.Time

	// walMu serialises every change to the WAL file (appends, rewrites) and is held across the
	// fsync, so log order on disk equals LSN order and a truncation never races an append.
	walMu sync.Mutex
	wal   *wal

	mu          sync.Mutex
	role        string
	epoch       uint64
	lastPrimary string // persisted: last primary followed (self while primary)
	following   string // primary this replica pulls from now
	entries     []Entry
	data        map[string]kvValue
	applied     chan struct{} // closed and replaced whenever the log changes
	leaseUntil  time.Time     // writes allowed before this (fencing lease)
	leaseEpoch  uint64        // epoch the lease was granted for
	wonEpoch    uint64        // highest epoch in which this node got a majority lease
	replicas    map[string]*replicaProgress
	acked       chan struct{} // closed and replaced whenever a replica's ack advances
	discarded   uint64
	caughtUp    bool      // last pull showed this replica had all the primary had
	lastContact time.Time // last successful pull
	caughtUpAt  time.Time // last time the replica was known caught up
	syncedWith  string    // the primary this replica has caught up with since it began following it
	// matchedEpoch is the highest epoch whose primary confirmed this replica's log as a prefix of
	// its own (a pull applied without truncation); see holdsLocked.
	matchedEpoch uint64
	walErr       error     // a failed WAL write: the node stops writing and never leads again
	rebuilding   bool      // the log was damaged and set aside: no leading until caught up once
	fencedAt     time.Time // when this node last stepped down without knowing the new primary

	// beforeAck, when set (tests), runs between a write's last lease check and its
	// acknowledgement, where a real process may be paused.
	beforeAck atomic.Pointer[func()]

	down    atomic.Bool // set when Close begins; State reads it without lifeMu
	lifeMu  sync.Mutex
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	server  *http.Server
	ln      net.Listener
	serveCh chan error
	wg      sync.WaitGroup
}

// Errors a write can end with.
var (
	errNotPrimary = errors.New("not primary")
	errNoLease    = errors.New("no lease")
	errClosed     = errors.New("node closed")
)

// Open opens (or creates) the node's data dir: replays the WAL, loads the metadata and the embedded
// voter. It does not listen; call Start or Serve.
func Open(cfg Config) (*Node, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	logger := cfg.Logger.With("db", cfg.Name)
	n := &Node{
		cfg:       cfg,
		logger:    logger,
		changes:   make(chan struct{}, 1),
		writes:    make(chan *writeRequest, 1024),
		leaseKick: make(chan struct{}, 1),
		startedAt: cfg.Clock(),
		data:      map[string]kvValue{},
		applied:   make(chan struct{}),
		acked:     make(chan struct{}),
		replicas:  map[string]*replicaProgress{},
		peers: &http.Client{Transport: &peerauth.Transport{Key: cfg.AuthKey, Base: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
		}}},
	}
	// The node's lifetime context exists from Open so handlers and writes can watch it even when the
	// caller serves Handler() itself; Close cancels it.
	n.ctx, n.cancel = context.WithCancel(context.Background())
	metrics, err := newNodeMetrics(cfg.Registry, n)
	if err != nil {
		n.cancel()
		return nil, err
	}
	n.metrics = metrics
	fail := func(err error) (*Node, error) {
		n.cancel()
		n.metrics.unregister()
		if n.wal != nil {
			n.wal.close()
		}
		return nil, err
	}

	voter, err := OpenVoter(cfg.DataDir, slices.Sorted(maps.Keys(cfg.Peers)), cfg.Clock, logger)
	if err != nil {
		return fail(err)
	}
	n.voter = voter

	var meta metadata
	metaFound, err := readJSON(cfg.DataDir, metaFileName, &meta)
	if err != nil {
		return fail(err)
	}
	w, entries, err := openWAL(cfg.DataDir, logger, n.metrics.walFsyncs.Inc, cfg.Disk)
	if errors.Is(err, ErrWALCorrupt) {
		// A damaged record with valid ones after it: the log cannot be trusted, and cutting it
		// would silently drop acknowledged writes (finding 5). The damaged log is kept aside for
		// inspection and the node rebuilds its log from the primary, as a replica that may not
		// lead until it has caught up: every write it held that a replica also holds survives.
		aside, qerr := quarantineWAL(cfg.DataDir)
		if qerr != nil {
			return fail(errors.Join(err, qerr))
		}
		logger.Error("db: the write-ahead log is damaged before its end; kept aside, rebuilding from the primary",
			"err", err, "kept_as", aside)
		n.rebuilding = true
		w, entries, err = openWAL(cfg.DataDir, logger, n.metrics.walFsyncs.Inc, cfg.Disk)
	}
	if err != nil {
		return fail(err)
	}
	n.wal = w
	n.entries = entries
	for _, e := range entries {
		n.data[e.Key] = kvValue{value: e.Value, lsn: e.LSN}
	}
	n.epoch = meta.Epoch
	if k := len(entries); k > 0 && entries[k-1].Epoch > n.epoch {
		n.epoch = entries[k-1].Epoch
	}
	n.lastPrimary = meta.LastPrimary
	n.role = RoleReplica
	fresh := !metaFound && len(entries) == 0
	if fresh && cfg.Bootstrap {
		n.role = RolePrimary
		n.epoch = 1
		n.lastPrimary = cfg.Name
		n.following = cfg.Name
	}
	if err := n.persistMetaLocked(); err != nil {
		return fail(err)
	}
	logger.Info("db: opened", "role", n.role, "epoch", n.epoch, "lsn", len(entries),
		"last_primary", n.lastPrimary, "fresh", fresh, "replication", cfg.Replication, "fencing", cfg.Fencing)
	return n, nil
}

func (c *Config) withDefaults() error {
	if c.Name == "" || c.DataDir == "" || c.Listen == "" {
		return fmt.Errorf("db config: Name, DataDir and Listen are required")
	}
	if !c.AuthKey.Valid() {
		return fmt.Errorf("db config: AuthKey is required (every call to the database API is authenticated)")
	}
	if c.Replication == "" {
		c.Replication = ReplicationAsync
	}
	if c.Replication != ReplicationAsync && c.Replication != ReplicationSemiSync {
		return fmt.Errorf("db config: replication %q (want %s or %s)", c.Replication, ReplicationAsync, ReplicationSemiSync)
	}
	if c.Fencing == "" {
		c.Fencing = FencingLease
	}
	if c.Fencing != FencingLease && c.Fencing != FencingNone {
		return fmt.Errorf("db config: fencing %q (want %s or %s)", c.Fencing, FencingLease, FencingNone)
	}
	if c.FailoverAfter <= 0 {
		c.FailoverAfter = DefaultFailoverAfter
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.SemiSyncTimeout <= 0 {
		c.SemiSyncTimeout = DefaultSemiSyncTimeout
	}
	if len(c.Voters) == 0 {
		c.Voters = []string{c.Name}
	}
	if c.PeerURL == nil {
		c.PeerURL = func(string) string { return "" }
	}
	if c.View == nil {
		c.View = emptyView{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// emptyView is the view of a node alone.
type emptyView struct{}

func (emptyView) DBPeers() []PeerState { return nil }

// Start listens on Config.Listen and starts the committer, replication, failover and lease loops.
func (n *Node) Start() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.started || n.closed {
		return fmt.Errorf("db %s: already started or closed", n.cfg.Name)
	}
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("db listen %s: %w", n.cfg.Listen, err)
	}
	n.started = true
	n.ln = ln
	n.server = serve.Server("", n.Handler())
	n.serveCh = make(chan error, 1)
	go func() {
		if err := n.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveCh <- fmt.Errorf("db serve: %w", err)
		}
		close(n.serveCh)
	}()
	for _, loop := range []func(context.Context){n.commitLoop, n.replicaLoop, n.failoverLoop, n.leaseLoop} {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			loop(n.ctx)
		}()
	}
	n.logger.Info("db: serving", "addr", ln.Addr().String())
	return nil
}

// Serve starts the node and runs it until ctx is done (or the HTTP server fails), then closes it.
func (n *Node) Serve(ctx context.Context) error {
	if err := n.Start(); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case err, ok := <-n.serveCh:
		if ok {
			serveErr = err
		}
	}
	return errors.Join(serveErr, n.Close())
}

// Addr is the bound HTTP address ("" before Start).
func (n *Node) Addr() string {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// Close stops the loops and the HTTP API and closes the WAL. It is idempotent. Closing is abrupt
// for clients (as a crash would be): open long-polls and pending writes end at once.
func (n *Node) Close() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.down.Store(true)
	n.cancel()
	if n.started {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := n.server.Shutdown(shutdownCtx); err != nil {
			n.server.Close()
		}
		cancel()
		n.wg.Wait()
	}
	n.peers.CloseIdleConnections()
	n.metrics.unregister()
	n.walMu.Lock()
	err := n.wal.close()
	n.walMu.Unlock()
	n.logger.Info("db: closed")
	return err
}

// Changes is pinged (buffered 1, coalescing) when the role, epoch or LSN changes.
func (n *Node) Changes() <-chan struct{} { return n.changes }

func (n *Node) notifyChange() {
	select {
	case n.changes <- struct{}{}:
	default:
	}
}

// State is a snapshot of the node's state.
func (n *Node) State() State {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	// A node whose log failed, or whose disk hangs, is unfit: no failover waits for it to lead.
	healthy := !n.down.Load() && n.walErr == nil && n.wal.stuck() <= n.cfg.LeaseDuration/2
	return State{
		Name:            n.cfg.Name,
		Region:          n.cfg.Region,
		Role:            n.role,
		Primary:         n.role == RolePrimary,
		Epoch:           n.epoch,
		LSN:             uint64(len(n.entries)),
		LastEpoch:       n.lastEpochLocked(),
		LagMS:           n.lagLocked(now).Milliseconds(),
		HasLease:        n.cfg.Fencing == FencingLease && n.leaseValidLocked(now),
		PrimaryName:     n.following,
		DiscardedWrites: n.discarded,
		LeaseLost: n.role == RolePrimary && n.cfg.Fencing == FencingLease && n.leaseEpoch == n.epoch &&
			!now.Before(n.leaseUntil),
		InSync:  n.role == RoleReplica && n.following != "" && n.syncedWith == n.following,
		Healthy: healthy,
	}
}

// lagLocked implements the LagMS definition documented on State.
func (n *Node) lagLocked(now time.Time) time.Duration {
	if n.role == RolePrimary {
		return 0
	}
	if n.caughtUp && now.Sub(n.lastContact) < pullWait+time.Second {
		return 0
	}
	since := n.caughtUpAt
	if since.IsZero() {
		since = n.startedAt
	}
	return now.Sub(since)
}

// now reads the node's clock (Config.Clock): leases, grants, lag and timestamps are measured on it.
func (n *Node) now() time.Time { return n.cfg.Clock() }

// leaseValidLocked reports whether this primary may write now as far as fencing is concerned.
func (n *Node) leaseValidLocked(now time.Time) bool {
	if n.cfg.Fencing == FencingNone {
		return true
	}
	return n.leaseEpoch == n.epoch && now.Before(n.leaseUntil)
}

func (n *Node) lastLSNLocked() uint64 { return uint64(len(n.entries)) }

// lastEpochLocked is the epoch of the last log entry (0 on an empty log).
func (n *Node) lastEpochLocked() uint64 {
	if len(n.entries) == 0 {
		return 0
	}
	return n.entries[len(n.entries)-1].Epoch
}

// persistMetaLocked writes the metadata file (n.mu held; it is small and written rarely).
func (n *Node) persistMetaLocked() error {
	return writeJSONAtomic(n.cfg.DataDir, metaFileName, metadata{Epoch: n.epoch, Role: n.role, LastPrimary: n.lastPrimary})
}

// signalAppliedLocked wakes everything waiting for the log to change.
func (n *Node) signalAppliedLocked() {
	close(n.applied)
	n.applied = make(chan struct{})
}

// signalAckedLocked wakes semi-sync writers.
func (n *Node) signalAckedLocked() {
	close(n.acked)
	n.acked = make(chan struct{})
}
