package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// DefaultRejoinInterval is how often a node re-joins seeds it does not see alive, when
	// Config.RejoinInterval is zero.
	DefaultRejoinInterval = 2 * time.Second
	// metaFlushInterval is the minimum gap between two metadata broadcasts: bursts of SetMeta
	// calls coalesce into one broadcast per interval.
	metaFlushInterval = 100 * time.Millisecond
	// quickRejoinDelay is the retry delay after a join that reached a seed which is still not
	// alive: the first exchange after a partition only makes both sides refute their stale death
	// with a new incarnation, and a second exchange right away carries those.
	quickRejoinDelay = 250 * time.Millisecond
	// maxQuickRejoins bounds consecutive quick retries.
	maxQuickRejoins = 3
	// maxJoinsPerRound bounds the seeds one rejoin round joins, picked at random among those
	// not seen alive. Each join is a push/pull of the whole member list, and one that succeeds
	// merges both sides' views, so a few reach everyone. Eight joins every target of the
	// built-in topologies (a cut-off region of up to 8 nodes) as before; at 110 nodes, joining
	// all 109 seeds at once from every node (12,000 push/pulls) overran memberlist's 128
	// pending push/pulls and its message queue, and the pool never converged.
	maxJoinsPerRound = 8
	// maxJoinsPerRoundLarge is maxJoinsPerRound in a pool above SmallPoolLimit, which also makes
	// no quick rejoins: every member a push/pull teaches a node is broadcast again by it (an
	// alive message retransmitted a dozen times), so at 110 nodes each extra join at start
	// was a hundred broadcasts. Two seeds, in case one is down, teach a starting node the pool.
	maxJoinsPerRoundLarge = 2
	// leavingMsgPrefix starts the user message a leaving node sends every member directly, so a
	// peer that hears the leave before the Leaving metadata still reports "left", not "dead".
	leavingMsgPrefix = "drill-gossip/leaving:"
)

// Config configures one gossip node.
type Config struct {
	// Name is the node's unique name in the cluster (the topology node name).
	Name string
	// BindIP is the IP to bind (UDP and TCP) and advertise; stream dials also leave from it so
	// peers' fault rules recognise this node by its source address.
	BindIP string
	// Port is the gossip port for both UDP and TCP; 0 picks a free one (tests).
	Port int
	// Profile is the timing preset: "fast" (default when empty), "lan" or "wan"; see Profile.
	Profile string
	// Key is the AES key (16, 24 or 32 bytes) of the keyring that encrypts all gossip; nodes
	// with another key cannot join.
	Key []byte
	// Label is the memberlist label: nodes with another label ignore this node, which isolates
	// two topologies sharing a network.
	Label string
	// Seeds are "ip:port" gossip addresses to join at start and to re-join while they are not
	// alive members. The node's own address may be listed; it is skipped.
	Seeds []string
	// RejoinInterval is how often seeds that are not alive members are joined again, so the
	// cluster re-forms after a partition heals (memberlist alone never does). 0 means
	// DefaultRejoinInterval.
	RejoinInterval time.Duration
	// Logger receives the node's and memberlist's logs; nil discards them.
	Logger *slog.Logger
	// Faults are the transport's fault rules; nil creates an empty set (see Node.Faults).
	Faults *Faults
	// Check vets every other member against what the cluster should hold (drill's plan: its
	// name, role, region, addresses, epoch bounds); a member it refuses is left out of Members
	// and logged. Nil accepts every member that holds the key.
	Check func(Member) error
}

// Node is a running gossip member.
type Node struct {
	cfg       Config
	log       *slog.Logger
	faults    *Faults
	transport *faultTransport
	ml        *memberlist.Memberlist
	// seeds are Config.Seeds normalised for comparison with member addresses.
	seeds []string

	// metaMu guards the local metadata and its encoding (what NodeMeta hands memberlist).
	metaMu  sync.Mutex
	meta    Meta
	metaBuf []byte
	// metaDirty wakes the broadcaster after a local metadata change (capacity 1: coalesces).
	metaDirty chan struct{}

	// mu guards the membership view, subscribers and RTTs. It is taken inside memberlist's
	// callbacks, so no memberlist method may be called while holding it.
	mu      sync.Mutex
	members map[string]*memberRecord
	subs    map[int]chan struct{}
	nextSub int
	rtts    map[string]time.Duration

	leaving      atomic.Bool
	stop         chan struct{}
	stopOnce     sync.Once
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
	isShutdown   atomic.Bool
}

// memberRecord is one member as this node tracks it.
type memberRecord struct {
	Member
	// leaving is set when the member said it is leaving (metadata or direct message), so its
	// disappearance counts as a leave, not a death.
	leaving bool
	// leavingAt is when a direct "leaving" notice about the member arrived: it only counts for
	// leavingNoticeTTL (a notice forged by another key holder for a member that stays is void).
	leavingAt time.Time
	// refused is why Check refused the member ("" when accepted), logged once per reason.
	refused string
}

// leavingNoticeTTL is how long a direct "leaving" notice marks a member that has not gone.
const leavingNoticeTTL = 5 * time.Second

// encodeMeta is Meta's compact JSON, which must fit memberlist's metadata limit.
func encodeMeta(m Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode gossip meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip meta is %d bytes, limit %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// normaliseAddr writes "ip:port" in canonical form; anything else is kept as given.
func normaliseAddr(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return s
}

// Start brings the local node up and returns once it is listening; joining the seeds happens in
// the background and is retried until it works, so an unreachable seed is not an error.
func Start(cfg Config, meta Meta) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("gossip: node name is required")
	}
	if cfg.BindIP == "" {
		return nil, errors.New("gossip: bind IP is required")
	}
	switch len(cfg.Key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("gossip: key must be 16, 24 or 32 bytes, got %d", len(cfg.Key))
	}
	if cfg.Profile == "" {
		cfg.Profile = ProfileFast
	}
	if cfg.RejoinInterval <= 0 {
		cfg.RejoinInterval = DefaultRejoinInterval
	}
	mlc, err := Profile(cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	if cfg.Profile == ProfileFast {
		scaleFast(mlc, len(cfg.Seeds)+1)
	}
	metaBuf, err := encodeMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", cfg.Name)
	faults := cfg.Faults
	if faults == nil {
		faults = &Faults{}
	}
	keyring, err := memberlist.NewKeyring(nil, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}

	n := &Node{
		cfg:       cfg,
		log:       log,
		faults:    faults,
		meta:      meta,
		metaBuf:   metaBuf,
		metaDirty: make(chan struct{}, 1),
		members:   make(map[string]*memberRecord),
		subs:      make(map[int]chan struct{}),
		rtts:      make(map[string]time.Duration),
		stop:      make(chan struct{}),
	}
	for _, s := range cfg.Seeds {
		n.seeds = append(n.seeds, normaliseAddr(s))
	}

	tr, err := newFaultTransport(cfg.BindIP, cfg.Port, faults, log)
	if err != nil {
		return nil, err
	}
	n.transport = tr
	port := tr.GetAutoBindPort()

	mlc.Name = cfg.Name
	mlc.BindAddr = cfg.BindIP
	mlc.BindPort = port
	mlc.AdvertiseAddr = ""
	mlc.AdvertisePort = port
	mlc.Transport = tr
	mlc.Keyring = keyring
	mlc.Label = cfg.Label
	// No LZW: every pool drill runs is on loopback or container bridges, where bandwidth costs
	// nothing and CPU is what a hundred agents on two cores run out of (compression was the
	// largest user-space cost of a 110-node pool converging).
	mlc.EnableCompression = false
	mlc.Logger = newStdLogger(log)
	d := &delegate{n: n}
	mlc.Delegate = d
	mlc.Events = d
	mlc.Ping = d

	ml, err := memberlist.Create(mlc)
	if err != nil {
		_ = tr.Shutdown()
		return nil, fmt.Errorf("gossip: create memberlist: %w", err)
	}
	n.ml = ml

	n.wg.Add(2)
	go n.broadcastMeta()
	go n.rejoinLoop()
	log.Info("gossip node up", "addr", n.LocalAddr(), "profile", cfg.Profile, "seeds", len(n.seeds))
	return n, nil
}

// Name is the local node's name.
func (n *Node) Name() string { return n.cfg.Name }

// LocalAddr is the local gossip address, "ip:port".
func (n *Node) LocalAddr() string { return n.ml.LocalNode().Address() }

// Faults are the node's live fault rules.
func (n *Node) Faults() *Faults { return n.faults }

// Memberlist exposes the underlying memberlist (tests and diagnostics only).
func (n *Node) Memberlist() *memberlist.Memberlist { return n.ml }

// Meta returns the local metadata, including changes not yet broadcast.
func (n *Node) Meta() Meta {
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	return n.meta
}

// SetMeta changes the local metadata and schedules its broadcast; it does not wait for the
// network. An update that would exceed the 512-byte metadata limit is discarded and logged.
func (n *Node) SetMeta(update func(*Meta)) {
	if err := n.TrySetMeta(update); err != nil {
		n.log.Error("gossip meta update discarded", "err", err)
	}
}

// TrySetMeta is SetMeta returning the error instead of logging it.
func (n *Node) TrySetMeta(update func(*Meta)) error {
	n.metaMu.Lock()
	m := n.meta
	update(&m)
	buf, err := encodeMeta(m)
	if err != nil {
		n.metaMu.Unlock()
		return err
	}
	changed := !bytes.Equal(buf, n.metaBuf)
	n.meta, n.metaBuf = m, buf
	n.metaMu.Unlock()
	if !changed {
		return nil
	}
	select {
	case n.metaDirty <- struct{}{}:
	default: // a broadcast is already pending; it will carry this change too
	}
	n.mu.Lock()
	n.notifyLocked()
	n.mu.Unlock()
	return nil
}

// broadcastMeta pushes local metadata changes to the cluster, at most once per
// metaFlushInterval.
func (n *Node) broadcastMeta() {
	defer n.wg.Done()
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.metaDirty:
		}
		// The alive message is queued before UpdateNode waits; the wait only confirms it was
		// sent, so a short timeout is harmless.
		if err := n.ml.UpdateNode(metaFlushInterval); err != nil {
			n.log.Debug("gossip meta broadcast not yet confirmed", "err", err)
		}
		pause.Reset(metaFlushInterval)
		select {
		case <-n.stop:
			return
		case <-pause.C:
		}
	}
}

// Members returns every member ever seen that Config.Check accepts, self included, sorted by name.
func (n *Node) Members() []Member {
	local := n.Meta()
	n.mu.Lock()
	out := make([]Member, 0, len(n.members))
	for _, r := range n.members {
		m := r.Member
		if m.Name == n.cfg.Name {
			m.Meta = local
		} else if n.cfg.Check != nil {
			if err := n.cfg.Check(m); err != nil {
				if why := err.Error(); why != r.refused {
					r.refused = why
					n.log.Warn("gossip member refused: not what the plan holds", "member", m.Name, "addr", m.Addr, "err", err)
				}
				continue
			}
			r.refused = ""
		}
		out = append(out, m)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NumAlive counts alive members, self included.
func (n *Node) NumAlive() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	alive := 0
	for _, r := range n.members {
		if r.State == StateAlive {
			alive++
		}
	}
	return alive
}

// RTT is the round-trip time of the last successful direct probe of the named member.
func (n *Node) RTT(name string) (time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, ok := n.rtts[name]
	return d, ok
}

// Subscribe returns a channel (capacity 1) that receives a signal after any membership or
// metadata change, local or remote; signals coalesce, so re-read Members on each. The returned
// func unsubscribes; the channel is never closed.
func (n *Node) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	id := n.nextSub
	n.nextSub++
	n.subs[id] = ch
	n.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.subs, id)
			n.mu.Unlock()
		})
	}
}

// notifyLocked signals every subscriber without blocking. Callers hold n.mu.
func (n *Node) notifyLocked() {
	for _, ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Join joins the given "ip:port" addresses now and reports how many answered.
func (n *Node) Join(addrs ...string) (int, error) {
	joined, err := n.ml.Join(addrs)
	if err != nil {
		return joined, fmt.Errorf("gossip join: %w", err)
	}
	return joined, nil
}

// Leave leaves the cluster gracefully so peers report this node as left, not dead: it publishes
// Leaving, waits (bounded) for that broadcast, tells every member directly, then performs
// memberlist's leave. Call Shutdown afterwards.
func (n *Node) Leave(timeout time.Duration) error {
	if n.isShutdown.Load() {
		return errors.New("gossip: leave after shutdown")
	}
	deadline := time.Now().Add(timeout)
	n.leaving.Store(true)
	var errs []error
	if err := n.TrySetMeta(func(m *Meta) { m.Leaving = true }); err != nil {
		errs = append(errs, fmt.Errorf("publish leaving: %w", err))
	}
	if err := n.ml.UpdateNode(max(time.Until(deadline)/2, time.Millisecond)); err != nil {
		errs = append(errs, fmt.Errorf("broadcast leaving: %w", err))
	}
	msg := []byte(leavingMsgPrefix + n.cfg.Name)
	for _, m := range n.ml.Members() {
		if m.Name != n.cfg.Name {
			_ = n.ml.SendBestEffort(m, msg) // best effort by design: the metadata is the main path
		}
	}
	if err := n.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, fmt.Errorf("gossip leave: %w", err))
	}
	n.log.Info("gossip node left")
	return errors.Join(errs...)
}

// Shutdown stops the node without telling anyone (peers will declare it dead unless Leave ran
// first). It is safe to call more than once.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.isShutdown.Store(true)
		n.stopOnce.Do(func() { close(n.stop) })
		if err := n.ml.Shutdown(); err != nil {
			n.shutdownErr = fmt.Errorf("gossip shutdown: %w", err)
		}
		n.wg.Wait()
		n.log.Info("gossip node shut down")
	})
	return n.shutdownErr
}

// rejoinLoop joins the seeds that are not alive members, at start and then every
// RejoinInterval, until the node stops or leaves.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	timer := time.NewTimer(0) // first attempt at once
	defer timer.Stop()
	everJoined, warned, quick := false, false, 0
	for {
		select {
		case <-n.stop:
			return
		case <-timer.C:
		}
		if n.leaving.Load() {
			return
		}
		next := n.cfg.RejoinInterval
		targets := n.seedsToJoin()
		perRound, quickRejoins := maxJoinsPerRound, maxQuickRejoins
		if len(n.seeds)+1 > SmallPoolLimit {
			perRound, quickRejoins = maxJoinsPerRoundLarge, 0
		}
		if len(targets) > perRound {
			rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
			targets = targets[:perRound]
		}
		if len(targets) > 0 {
			joined, err := n.joinEach(targets)
			switch {
			case joined > 0:
				n.log.Info("gossip joined seeds", "joined", joined, "tried", len(targets))
				everJoined = true
				if quick < quickRejoins && len(n.seedsToJoin()) > 0 {
					next, quick = quickRejoinDelay, quick+1
				} else {
					quick = 0
				}
			case !everJoined && !warned:
				// Only the first failure is worth a warning: later ones are expected while a
				// seed is down or cut off, and would flood the log.
				n.log.Warn("gossip cannot reach any seed yet; retrying in the background", "err", err)
				warned = true
			default:
				n.log.Debug("gossip rejoin failed", "tried", len(targets), "err", err)
			}
			if !everJoined {
				// Not in any pool yet: the seeds are most likely still starting (a refused
				// dial costs nothing), and a node alone in its pool is no use to anyone.
				next = quickRejoinDelay
			}
		}
		timer.Reset(next)
	}
}

// seedsToJoin lists the seeds that are neither this node nor an alive or departed member.
func (n *Node) seedsToJoin() []string {
	self := normaliseAddr(n.LocalAddr())
	skip := map[string]bool{self: true}
	n.mu.Lock()
	for _, r := range n.members {
		if r.State == StateAlive || r.State == StateLeft {
			skip[normaliseAddr(r.Addr)] = true
		}
	}
	n.mu.Unlock()
	var out []string
	for _, s := range n.seeds {
		if !skip[s] {
			out = append(out, s)
			skip[s] = true // duplicates
		}
	}
	return out
}

// joinEach joins every target in parallel, so one black-holed seed (which costs a full TCP
// timeout) does not hold up the others.
func (n *Node) joinEach(targets []string) (int, error) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		joined int
		errs   []error
	)
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := n.ml.Join([]string{t})
			mu.Lock()
			defer mu.Unlock()
			joined += k
			if err != nil {
				errs = append(errs, fmt.Errorf("join %s: %w", t, err))
			}
		}()
	}
	wg.Wait()
	return joined, errors.Join(errs...)
}

// delegate receives memberlist's callbacks. Memberlist calls the event methods serially, some
// with its node lock held, so they only touch the Node's own state and never block.
type delegate struct{ n *Node }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate  = (*delegate)(nil)
)

// NodeMeta hands memberlist the encoded local metadata (validated against the limit on change).
func (d *delegate) NodeMeta(limit int) []byte {
	d.n.metaMu.Lock()
	defer d.n.metaMu.Unlock()
	if len(d.n.metaBuf) > limit {
		return nil
	}
	return slices.Clone(d.n.metaBuf)
}

// NotifyMsg receives user messages: only a peer's "leaving" notice.
func (d *delegate) NotifyMsg(b []byte) {
	name, ok := strings.CutPrefix(string(b), leavingMsgPrefix)
	if !ok {
		return
	}
	n := d.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, ok := n.members[name]; ok {
		r.leavingAt = time.Now()
	}
}

// GetBroadcasts has nothing to add: everything travels in metadata.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no extra state for push/pull.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores push/pull extra state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// AckPayload adds nothing to probe acks.
func (d *delegate) AckPayload() []byte { return nil }

// NotifyPingComplete records the probe RTT of a peer.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	d.n.mu.Lock()
	d.n.rtts[other.Name] = rtt
	d.n.mu.Unlock()
}

// decodeMeta reads a member's metadata; undecodable metadata counts as empty.
func (d *delegate) decodeMeta(node *memberlist.Node) Meta {
	var m Meta
	if len(node.Meta) == 0 {
		return m
	}
	if err := json.Unmarshal(node.Meta, &m); err != nil {
		d.n.log.Debug("gossip: undecodable member meta", "member", node.Name, "err", err)
		return Meta{}
	}
	return m
}

// record returns the member's record, creating it, updated to node's address and to meta (its
// decoded metadata). Callers hold n.mu.
func (d *delegate) record(node *memberlist.Node, meta Meta) *memberRecord {
	r, ok := d.n.members[node.Name]
	if !ok {
		r = &memberRecord{Member: Member{Name: node.Name}}
		d.n.members[node.Name] = r
	}
	r.Addr = node.Address()
	r.Meta = meta
	return r
}

// NotifyJoin: a new member, or one coming back from dead or left.
func (d *delegate) NotifyJoin(node *memberlist.Node) {
	meta := d.decodeMeta(node)
	n := d.n
	n.mu.Lock()
	defer n.mu.Unlock()
	r := d.record(node, meta)
	r.leaving, r.leavingAt = meta.Leaving, time.Time{}
	if r.State != StateAlive {
		r.State, r.Since = StateAlive, time.Now()
	}
	n.notifyLocked()
	if node.Name != n.cfg.Name {
		n.log.Info("gossip member alive", "member", node.Name, "addr", r.Addr)
	}
}

// NotifyLeave: the member is gone; whether it left or died depends on what it said before.
func (d *delegate) NotifyLeave(node *memberlist.Node) {
	meta := d.decodeMeta(node)
	n := d.n
	if node.Name == n.cfg.Name {
		meta = n.Meta()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	r := d.record(node, meta)
	state := StateDead
	if r.leaving || meta.Leaving || (!r.leavingAt.IsZero() && time.Since(r.leavingAt) < leavingNoticeTTL) {
		state = StateLeft
	}
	if r.State != state {
		r.State, r.Since = state, time.Now()
	}
	delete(n.rtts, node.Name)
	n.notifyLocked()
	n.log.Info("gossip member gone", "member", node.Name, "state", state)
}

// NotifyUpdate: the member published new metadata.
func (d *delegate) NotifyUpdate(node *memberlist.Node) {
	meta := d.decodeMeta(node)
	n := d.n
	n.mu.Lock()
	defer n.mu.Unlock()
	r := d.record(node, meta)
	// The member's own latest word: a forged "leaving" it later refutes does not stick.
	r.leaving = meta.Leaving
	n.notifyLocked()
}
