// Package fake is an in-memory runtime for unit tests of the injector, the fault kinds and the
// drill runner: nodes are records rather than processes, but every endpoint drill talks to is a
// real HTTP server on 127.0.0.1 answering from a small model of the system, so the code under test
// runs unchanged. The model: a node answers while it is running and not frozen; gossip views are
// computed from the nodes' states and the gossip fault rules pushed to them; one db node is
// primary, and with AutoFailover another region's db node takes over when it dies; the WAN node is
// an in-memory toxiproxy API over the plan's links; with packet faults on, packet rule sets are
// kept per node.
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/dnsgeo"
	"github.com/drillworks/drill/topology"
)

// Runtime is the in-memory runtime. Its zero value is not usable: call New.
type Runtime struct {
	plan    *topology.Plan
	packets bool

	mu       sync.Mutex
	running  map[string]bool
	frozen   map[string]bool
	gossip   map[string]gossip.Rules
	clocks   map[string]clock.Shift
	disks    map[string]disk.State
	corrupt  map[string]int                         // node → records damaged
	writes   uint64                                 // writes acknowledged by the primary (its LSN)
	tables   map[string]map[string]fault.PacketRule // node → rule set id → rule
	flushed  int
	toxics   map[string][]toxi.Toxic // link → toxics
	disabled map[string]bool
	primary  string
	epoch    uint64
	ops      []string

	// AutoFailover: when the primary is killed or frozen, the first running db node of another
	// region becomes primary at the next epoch (checked on every status read).
	autoFailover bool
	// foreignRun: these nodes answer /v1/info as nodes of another run (WithForeignRun).
	foreignRun map[string]bool
	// crashAtStart: these nodes exit as soon as they are started (WithCrashAtStart).
	crashAtStart map[string]bool

	servers []*http.Server
	dns     []*dnsgeo.Server
	addrs   map[string]string // "node/port" → address
}

// Option configures New.
type Option func(*Runtime)

// WithPacketFaults makes the runtime a PacketFaulter (capability PacketFaults).
func WithPacketFaults() Option { return func(r *Runtime) { r.packets = true } }

// WithAutoFailover promotes another region's db node when the primary dies.
func WithAutoFailover() Option { return func(r *Runtime) { r.autoFailover = true } }

// WithForeignRun makes the named nodes answer /v1/info with another run's id, as a process of
// another bring-up at the node's address would.
func WithForeignRun(nodes ...string) Option {
	return func(r *Runtime) {
		r.foreignRun = map[string]bool{}
		for _, n := range nodes {
			r.foreignRun[n] = true
		}
	}
}

// WithCrashAtStart makes the named nodes exit as soon as they are started, as a node whose agent
// fails at start does (a port taken, a bad data directory).
func WithCrashAtStart(nodes ...string) Option {
	return func(r *Runtime) {
		r.crashAtStart = map[string]bool{}
		for _, n := range nodes {
			r.crashAtStart[n] = true
		}
	}
}

var (
	_ runtime.Runtime       = (*Runtime)(nil)
	_ runtime.PacketFaulter = (*Runtime)(nil)
)

// New starts the endpoints of every node of the plan (all running, the bootstrap db node of the
// primary region primary at epoch 1). Close stops them.
func New(plan *topology.Plan, opts ...Option) (*Runtime, error) {
	r := &Runtime{plan: plan, running: map[string]bool{}, frozen: map[string]bool{}, gossip: map[string]gossip.Rules{}, clocks: map[string]clock.Shift{}, disks: map[string]disk.State{}, corrupt: map[string]int{},
		tables: map[string]map[string]fault.PacketRule{}, toxics: map[string][]toxi.Toxic{}, disabled: map[string]bool{},
		epoch: 1, addrs: map[string]string{}}
	for _, o := range opts {
		o(r)
	}
	t := plan.Topology
	for _, n := range t.Nodes() {
		r.running[n.Name] = true
		if n.Role == topology.RoleDB && n.Region == t.PrimaryRegion && n.Index == 1 {
			r.primary = n.Name
		}
	}
	for _, n := range t.Nodes() {
		var err error
		switch {
		case n.Role == topology.RoleWAN:
			err = r.serve(n.Name, topology.PortWANAPI, peerauth.PurposeWAN, r.wanHandler())
		case n.Role == topology.RoleWitness:
			err = r.serve(n.Name, topology.PortDB, peerauth.PurposeDB, r.nodeHandler(n))
		case n.Role == topology.RoleDNS:
			err = r.serveDNS(n)
			if err == nil {
				err = r.serve(n.Name, topology.PortControl, peerauth.PurposeControl, r.nodeHandler(n))
			}
		default:
			err = r.serve(n.Name, topology.PortControl, peerauth.PurposeControl, r.nodeHandler(n))
			if err == nil && n.Role == topology.RoleDB {
				err = r.serve(n.Name, topology.PortDB, peerauth.PurposeDB, r.nodeHandler(n))
			}
		}
		if err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// serve starts one endpoint of a node, its calls signed with the run's key of purpose, as the
// real one is.
func (r *Runtime) serve(node string, port int, purpose string, h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("fake runtime: %w", err)
	}
	srv := &http.Server{Handler: peerauth.Require(peerauth.Derive(r.plan.Secret, purpose), h), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	r.servers = append(r.servers, srv)
	r.addrs[fmt.Sprintf("%s/%d", node, port)] = ln.Addr().String()
	return nil
}

// serveDNS starts a real GeoDNS server for a dns node, in static mode (every region up, each
// client to its nearest region): enough for drill's readiness check and probes.
func (r *Runtime) serveDNS(n topology.Node) error {
	s, err := dnsgeo.New(dnsgeo.Config{Topology: r.plan.Topology, Listen: "127.0.0.1:0", Instance: n.Name})
	if err != nil {
		return fmt.Errorf("fake runtime: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("fake runtime: %w", err)
	}
	r.dns = append(r.dns, s)
	r.addrs[fmt.Sprintf("%s/%d", n.Name, topology.PortDNS)] = s.Addr()
	return nil
}

// Close stops every endpoint.
func (r *Runtime) Close() {
	for _, s := range r.servers {
		_ = s.Close()
	}
	for _, s := range r.dns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
}

// Ops lists the process operations and log damages done so far, e.g. "kill us-east-db-1",
// "corrupt eu-west-db-1".
func (r *Runtime) Ops() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Disk is the disk fault state last pushed to a node.
func (r *Runtime) Disk(node string) disk.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.disks[node]
}

// Corrupted is how many log records of a node were damaged.
func (r *Runtime) Corrupted(node string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.corrupt[node]
}

// Clock is the clock shift last pushed to a node.
func (r *Runtime) Clock(node string) clock.Shift {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clocks[node]
}

// Gossip is the gossip fault rules last pushed to a node.
func (r *Runtime) Gossip(node string) gossip.Rules {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gossip[node]
}

// Toxics lists the toxics on a link.
func (r *Runtime) Toxics(link string) []toxi.Toxic {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.toxics[link])
}

// Flushes counts FlushPacketRules calls.
func (r *Runtime) Flushes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushed
}

// PacketRule is the rule set id on node, if present.
func (r *Runtime) PacketRule(node, id string) (fault.PacketRule, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.tables[node][id]
	return p, ok
}

// Primary is the model's primary and epoch.
func (r *Runtime) Primary() (string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failoverLocked()
	return r.primary, r.epoch
}

// Promote makes node the primary at the next epoch.
func (r *Runtime) Promote(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.primary, r.epoch = node, r.epoch+1
}

// Name is "fake".
func (r *Runtime) Name() string { return "fake" }

// Capabilities: packet faults when asked for.
func (r *Runtime) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{PacketFaults: r.packets}
}

// Up does nothing: New started everything.
func (r *Runtime) Up(context.Context, *topology.Plan) error { return nil }

// Down stops every node.
func (r *Runtime) Down(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := range r.running {
		r.running[n] = false
	}
	return nil
}

// Nodes reports every node's state.
func (r *Runtime) Nodes(context.Context) ([]runtime.NodeState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.NodeState
	for _, n := range r.plan.Topology.Nodes() {
		out = append(out, runtime.NodeState{Name: n.Name, Running: r.running[n.Name], Frozen: r.frozen[n.Name]})
	}
	return out, nil
}

func (r *Runtime) op(what, node string, pre func() error, do func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[node]; !ok {
		return fmt.Errorf("fake: unknown node %q", node)
	}
	if err := pre(); err != nil {
		return fmt.Errorf("%s %s: %w", what, node, err)
	}
	do()
	r.ops = append(r.ops, what+" "+node)
	return nil
}

// Kill stops a running node (its packet rules go with it, as a container's namespace does, and
// its gossip rules, clock shift and disk faults, as a process's memory does).
func (r *Runtime) Kill(_ context.Context, node string) error {
	return r.op("kill", node, func() error { return r.need(node, true) }, func() {
		r.running[node], r.frozen[node] = false, false
		delete(r.tables, node)
		delete(r.gossip, node)
		delete(r.clocks, node)
		delete(r.disks, node)
	})
}

// Freeze suspends a running node.
func (r *Runtime) Freeze(_ context.Context, node string) error {
	return r.op("freeze", node, func() error { return r.need(node, true) }, func() { r.frozen[node] = true })
}

// Thaw resumes a frozen node.
func (r *Runtime) Thaw(_ context.Context, node string) error {
	return r.op("thaw", node, func() error { return r.need(node, true) }, func() { r.frozen[node] = false })
}

// Start starts a stopped node; a returning old primary comes back as a replica.
func (r *Runtime) Start(_ context.Context, node string) error {
	return r.op("start", node, func() error { return r.need(node, false) }, func() { r.running[node] = !r.crashAtStart[node] })
}

func (r *Runtime) need(node string, running bool) error {
	if r.running[node] != running {
		return fmt.Errorf("running is %v", r.running[node])
	}
	return nil
}

// Endpoint is the address of one of a node's endpoints.
func (r *Runtime) Endpoint(node string, port int) (string, error) {
	a, ok := r.addrs[fmt.Sprintf("%s/%d", node, port)]
	if !ok {
		return "", fmt.Errorf("fake: node %s has no port %d", node, port)
	}
	return a, nil
}

// ApplyPacketRules keeps rule set id on each running named node.
func (r *Runtime) ApplyPacketRules(_ context.Context, id string, rules map[string]fault.PacketRule) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, rule := range rules {
		if rule.LossPercent < 0 || rule.LossPercent > fault.MaxLossPercent {
			return fmt.Errorf("fake: loss percent %d", rule.LossPercent)
		}
		if !r.running[n] {
			continue
		}
		if r.tables[n] == nil {
			r.tables[n] = map[string]fault.PacketRule{}
		}
		r.tables[n][id] = rule
	}
	return nil
}

// RemovePacketRules drops rule set id from the named nodes.
func (r *Runtime) RemovePacketRules(_ context.Context, id string, nodes []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range nodes {
		delete(r.tables[n], id)
	}
	return nil
}

// PacketRules lists the rule sets per node.
func (r *Runtime) PacketRules(context.Context) (map[string][]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for n, ids := range r.tables {
		for id := range ids {
			out[n] = append(out[n], id)
		}
		sort.Strings(out[n])
	}
	return out, nil
}

// FlushPacketRules drops every rule set.
func (r *Runtime) FlushPacketRules(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tables = map[string]map[string]fault.PacketRule{}
	r.flushed++
	return nil
}

// up reports whether a node answers (running and not frozen); callers hold mu.
func (r *Runtime) up(node string) bool { return r.running[node] && !r.frozen[node] }

// failoverLocked promotes another region's db node if the primary is down (AutoFailover).
func (r *Runtime) failoverLocked() {
	if !r.autoFailover || r.up(r.primary) {
		return
	}
	old, _ := r.plan.Topology.Node(r.primary)
	for _, n := range r.plan.Topology.NodesOf(topology.RoleDB, "") {
		if n.Region != old.Region && r.up(n.Name) {
			r.primary, r.epoch = n.Name, r.epoch+1
			return
		}
	}
}

// sees reports whether node a's gossip reaches b and back under both nodes' rules; callers hold
// mu.
func (r *Runtime) sees(a, b topology.Node) bool {
	blocked := func(rules gossip.Rules, ip netip.Addr) bool {
		for _, ps := range [][]netip.Prefix{rules.Drop, rules.DropIn, rules.DropOut} {
			for _, p := range ps {
				if p.Contains(ip) {
					return true
				}
			}
		}
		return false
	}
	return !blocked(r.gossip[a.Name], b.IP) && !blocked(r.gossip[b.Name], a.IP)
}

// stateHandlers serve one node's entry of a fault-state map at path, as a node's control
// endpoint does: GET reads it, PUT sets it, DELETE clears it.
func stateHandlers[T any](mux *http.ServeMux, path string, guard func(http.HandlerFunc) http.HandlerFunc, mu *sync.Mutex, m map[string]T, node string) {
	mux.HandleFunc("GET "+path, guard(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, m[node])
	}))
	mux.HandleFunc("PUT "+path, guard(func(w http.ResponseWriter, req *http.Request) {
		var v T
		if err := json.NewDecoder(req.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		m[node] = v
		mu.Unlock()
		writeJSON(w, v)
	}))
	mux.HandleFunc("DELETE "+path, guard(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		delete(m, node)
		mu.Unlock()
		var zero T
		writeJSON(w, zero)
	}))
}

// nodeHandler answers a node's control, db and witness endpoints.
func (r *Runtime) nodeHandler(n topology.Node) http.Handler {
	mux := http.NewServeMux()
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			up := r.up(n.Name)
			r.mu.Unlock()
			if !up {
				http.Error(w, "node is down", http.StatusServiceUnavailable)
				return
			}
			h(w, req)
		}
	}
	mux.HandleFunc("GET /v1/info", guard(func(w http.ResponseWriter, _ *http.Request) {
		run := r.plan.RunID
		if r.foreignRun[n.Name] {
			run = "another-run"
		}
		writeJSON(w, map[string]string{"node": n.Name, "role": string(n.Role), "region": n.Region, "run_id": run})
	}))
	mux.HandleFunc("GET /v1/members", guard(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, r.members(n))
	}))
	stateHandlers(mux, "/v1/gossip/faults", guard, &r.mu, r.gossip, n.Name)
	stateHandlers(mux, "/v1/clock", guard, &r.mu, r.clocks, n.Name)
	stateHandlers(mux, "/v1/disk", guard, &r.mu, r.disks, n.Name)
	mux.HandleFunc("PUT /v1/kv/{key...}", guard(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if n.Name != r.primary {
			http.Error(w, "not primary", http.StatusServiceUnavailable)
			return
		}
		r.writes++
		writeJSON(w, db.WriteResult{Key: req.PathValue("key"), LSN: r.writes, Epoch: r.epoch, Node: n.Name, Region: n.Region})
	}))
	mux.HandleFunc("POST /v1/disk/corrupt", guard(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		r.corrupt[n.Name]++
		r.ops = append(r.ops, "corrupt "+n.Name)
		r.mu.Unlock()
		writeJSON(w, map[string]uint64{"lsn": 1})
	}))
	mux.HandleFunc("GET /v1/status", guard(func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.failoverLocked()
		primary := n.Name == r.primary
		role := "replica"
		if primary {
			role = "primary"
		}
		writeJSON(w, db.State{Name: n.Name, Region: n.Region, Role: role, Primary: primary, Epoch: r.epoch,
			HasLease: primary, PrimaryName: r.primary, InSync: !primary, Healthy: true})
	}))
	mux.HandleFunc("GET /v1/lease", guard(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, map[string]any{}) }))
	return mux
}

// members is node n's gossip view.
func (r *Runtime) members(self topology.Node) []gossip.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failoverLocked()
	var out []gossip.Member
	for _, n := range r.plan.Topology.Nodes() {
		if !fault.IsGossipMember(n) {
			continue
		}
		state := gossip.StateAlive
		if n.Name != self.Name && (!r.up(n.Name) || !r.sees(self, n)) {
			state = gossip.StateDead
		}
		m := gossip.Member{Name: n.Name, Addr: n.Addr(topology.PortGossip), State: state,
			Meta: gossip.Meta{Region: n.Region, Role: n.Role, Healthy: true}}
		if n.Role == topology.RoleDB {
			m.Meta.Primary, m.Meta.Epoch = n.Name == r.primary, r.epoch
		}
		out = append(out, m)
	}
	return out
}

// wanHandler is the toxiproxy API subset the injector uses.
func (r *Runtime) wanHandler() http.Handler {
	mux := http.NewServeMux()
	link := func(w http.ResponseWriter, name string) bool {
		for _, l := range r.plan.Links {
			if l.Name == name {
				return true
			}
		}
		http.Error(w, "no such proxy", http.StatusNotFound)
		return false
	}
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, "fake") })
	mux.HandleFunc("GET /proxies", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		out := map[string]toxi.Proxy{}
		for _, l := range r.plan.Links {
			out[l.Name] = toxi.Proxy{Name: l.Name, Listen: l.Listen, Upstream: l.Upstream, Enabled: !r.disabled[l.Name],
				Toxics: slices.Clone(r.toxics[l.Name])}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("POST /proxies/{name}/toxics", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		if !link(w, name) {
			return
		}
		var tx toxi.Toxic
		if err := json.NewDecoder(req.Body).Decode(&tx); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if slices.ContainsFunc(r.toxics[name], func(t toxi.Toxic) bool { return t.Name == tx.Name }) {
			http.Error(w, "toxic already exists", http.StatusConflict)
			return
		}
		r.toxics[name] = append(r.toxics[name], tx)
		writeJSON(w, tx)
	})
	mux.HandleFunc("DELETE /proxies/{name}/toxics/{toxic}", func(w http.ResponseWriter, req *http.Request) {
		name, toxic := req.PathValue("name"), req.PathValue("toxic")
		if !link(w, name) {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		i := slices.IndexFunc(r.toxics[name], func(t toxi.Toxic) bool { return t.Name == toxic })
		if i < 0 {
			http.Error(w, "toxic not found", http.StatusNotFound)
			return
		}
		r.toxics[name] = slices.Delete(r.toxics[name], i, i+1)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /proxies/{name}", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		if !link(w, name) {
			return
		}
		var body struct {
			Enabled bool `json:"enabled"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.disabled[name] = !body.Enabled
		r.mu.Unlock()
		writeJSON(w, body)
	})
	return mux
}

// DisableLink disables a WAN link, as a stray client of the toxiproxy API might.
func (r *Runtime) DisableLink(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disabled[name] = true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// LinkNames lists the plan's links touching a site, sorted.
func LinkNames(p *topology.Plan, site string) []string {
	var out []string
	for _, l := range p.Links {
		if l.FromSite == site || l.ToSite == site {
			out = append(out, l.Name)
		}
	}
	sort.Strings(out)
	return out
}

// HasToxicPrefix reports whether any link holds a toxic whose name starts with prefix.
func (r *Runtime) HasToxicPrefix(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, txs := range r.toxics {
		for _, t := range txs {
			if strings.HasPrefix(t.Name, prefix) {
				return true
			}
		}
	}
	return false
}
