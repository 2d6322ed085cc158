// Package observe reads a running cluster's state through the nodes' own endpoints: which nodes
// are alive in the majority gossip view, which regions are healthy, who is primary, how far each
// replica lags, and where each GeoDNS instance answers. It is the one place that defines "the
// current primary" (Status.Primary).
package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// Status is the whole cluster as drill sees it: `drill status --json` prints exactly this.
type Status struct {
	Topology string         `json:"topology"`
	RunID    string         `json:"run_id"`
	Runtime  string         `json:"runtime"`
	Regions  []RegionStatus `json:"regions"`
	Nodes    []NodeStatus   `json:"nodes"`
	DNS      []DNSStatus    `json:"dns"`
	// Views is each answering gossip member's view of the cluster (not printed: for judging
	// conditions from a chosen vantage point, e.g. the regions outside a failed one).
	Views map[string][]gossip.Member `json:"-"`
}

// RegionStatus is one region's health: healthy while one of its web nodes is alive and healthy.
type RegionStatus struct {
	Name          string   `json:"name"`
	ClientSubnets []string `json:"client_subnets"`
	Healthy       bool     `json:"healthy"`
}

// State is a node's state as drill sees it.
type State string

// Node states.
const (
	// StateAlive: running and alive in the majority gossip view (the witness: its voter answers).
	StateAlive State = "alive"
	// StateDead: running but not alive in the majority gossip view.
	StateDead State = "dead"
	// StateUnreachable: the witness runs but its voter does not answer.
	StateUnreachable State = "unreachable"
	// StateRunning: the WAN node runs (it is no gossip member).
	StateRunning State = "running"
	// StateFrozen: suspended.
	StateFrozen State = "frozen"
	// StateStopped: not running.
	StateStopped State = "stopped"
)

// Up reports whether the node is running and not suspended.
func (s State) Up() bool { return s != StateFrozen && s != StateStopped }

// NodeStatus is one node.
type NodeStatus struct {
	Name    string        `json:"name"`
	Region  string        `json:"region"`
	Role    topology.Role `json:"role"`
	Addr    string        `json:"addr"`
	State   State         `json:"state"`
	Primary bool          `json:"primary"`
	Epoch   uint64        `json:"epoch"`
	LSN     uint64        `json:"lsn"`
	LagMS   int64         `json:"lag_ms"`
	Lease   bool          `json:"lease,omitempty"`
	// Backlog is a queue node's jobs not yet acknowledged by a worker, as it last published them
	// in gossip.
	Backlog uint64 `json:"backlog,omitempty"`
	// Ready is a queue node's own verdict in gossip: JetStream answers and its mirrors exist.
	Ready bool `json:"ready,omitempty"`
}

// DNSStatus is one GeoDNS instance and a ready-to-copy dig line.
type DNSStatus struct {
	Region string `json:"region"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Dig    string `json:"dig"`
}

// Observer reads a running cluster's state through the nodes' own endpoints.
type Observer struct {
	// Plan is the running plan.
	Plan *topology.Plan
	// Runtime runs it.
	Runtime runtime.Runtime
	// HTTP is the client of the control endpoints and DBHTTP of the database API, each signing
	// with the run's key (short timeouts: a black-holed node must not stall status).
	HTTP, DBHTTP *http.Client
	// Logger, when set, receives at debug level what WaitConverged still waits for, each time
	// that changes (where the time of a slow convergence goes).
	Logger *slog.Logger
}

// NewObserver returns an observer with a client suited to status polling.
func New(p *topology.Plan, rt runtime.Runtime) *Observer {
	const timeout = 800 * time.Millisecond
	return &Observer{Plan: p, Runtime: rt,
		HTTP:   peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeControl), timeout, p.NodeAt),
		DBHTTP: peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeDB), timeout, p.NodeAt)}
}

func (o *Observer) getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out)
}

// Members is the gossip view of one node (through its control endpoint).
func (o *Observer) Members(ctx context.Context, node string) ([]gossip.Member, error) {
	return controlState[[]gossip.Member](ctx, o, node, "/v1/members")
}

// Disk is a node's disk fault state, as its control endpoint reports it.
func (o *Observer) Disk(ctx context.Context, node string) (disk.State, error) {
	return controlState[disk.State](ctx, o, node, "/v1/disk")
}

// Clock is a node's clock shift, as its control endpoint reports it.
func (o *Observer) Clock(ctx context.Context, node string) (clock.Shift, error) {
	return controlState[clock.Shift](ctx, o, node, "/v1/clock")
}

// controlState reads one state (members, a fault state) from a node's control endpoint.
func controlState[T any](ctx context.Context, o *Observer, node, path string) (T, error) {
	var v T
	addr, err := o.Runtime.Endpoint(node, topology.PortControl)
	if err != nil {
		return v, err
	}
	err = o.getJSON(ctx, o.HTTP, "http://"+addr+path, &v)
	return v, err
}

// Status gathers the cluster's state. The gossip verdict is the majority view of the running
// nodes that answer, so one cut-off node does not decide what everyone sees.
func (o *Observer) Status(ctx context.Context) (*Status, error) {
	t := o.Plan.Topology
	procs, err := o.Runtime.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	proc := map[string]runtime.NodeState{}
	for _, p := range procs {
		proc[p.Name] = p
	}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		views  = map[string][]gossip.Member{}
		voters = map[string]bool{} // witness answering its voter endpoint
		dbs    = map[string]db.State{}
		nodes  = t.Nodes()
		lookup = map[string]topology.Node{}
	)
	for _, n := range nodes {
		lookup[n.Name] = n
		if n.Role == topology.RoleWAN || !proc[n.Name].Running || proc[n.Name].Frozen {
			continue
		}
		wg.Add(1)
		go func(n topology.Node) {
			defer wg.Done()
			if n.Role == topology.RoleWitness {
				addr, err := o.Runtime.Endpoint(n.Name, topology.PortDB)
				var v map[string]any
				if err == nil && o.getJSON(ctx, o.DBHTTP, "http://"+addr+"/v1/lease", &v) == nil {
					mu.Lock()
					voters[n.Name] = true
					mu.Unlock()
				}
				return
			}
			if ms, err := o.Members(ctx, n.Name); err == nil {
				mu.Lock()
				views[n.Name] = ms
				mu.Unlock()
			}
			if n.Role == topology.RoleDB {
				addr, err := o.Runtime.Endpoint(n.Name, topology.PortDB)
				if err != nil {
					return
				}
				c := db.Client{BaseURL: "http://" + addr, HTTP: o.DBHTTP}
				if st, err := c.Status(ctx); err == nil {
					mu.Lock()
					dbs[n.Name] = st
					mu.Unlock()
				}
			}
		}(n)
	}
	wg.Wait()

	// Majority gossip view per member.
	aliveVotes, totalVotes := map[string]int{}, 0
	meta := map[string]gossip.Meta{}
	for _, ms := range views {
		totalVotes++
		for _, m := range ms {
			if m.Alive() {
				aliveVotes[m.Name]++
				meta[m.Name] = m.Meta
			}
		}
	}
	aliveInGossip := func(name string) bool { return totalVotes > 0 && aliveVotes[name]*2 > totalVotes }

	st := &Status{Topology: t.Name, RunID: o.Plan.RunID, Runtime: o.Runtime.Name(), Views: views}
	for _, n := range nodes {
		addr, _ := o.Runtime.Endpoint(n.Name, mainPort(n.Role))
		ns := NodeStatus{Name: n.Name, Region: n.Region, Role: n.Role, Addr: addr}
		p := proc[n.Name]
		switch {
		case !p.Running:
			ns.State = StateStopped
		case p.Frozen:
			ns.State = StateFrozen
		case n.Role == topology.RoleWAN:
			ns.State = StateRunning
		case n.Role == topology.RoleWitness && voters[n.Name]:
			ns.State = StateAlive // not a gossip member: alive when its voter answers
		case n.Role == topology.RoleWitness:
			ns.State = StateUnreachable
		case aliveInGossip(n.Name):
			ns.State = StateAlive
		default:
			ns.State = StateDead
		}
		if d, ok := dbs[n.Name]; ok {
			ns.Primary, ns.Epoch, ns.LSN, ns.LagMS, ns.Lease = d.Primary, d.Epoch, d.LSN, d.LagMS, d.HasLease
		}
		if n.Role == topology.RoleQueue && ns.State == StateAlive {
			ns.Backlog, ns.Ready = meta[n.Name].Backlog, meta[n.Name].Healthy
		}
		st.Nodes = append(st.Nodes, ns)
	}
	for _, r := range t.Regions {
		// Healthy by majority too: most views see one of its web nodes alive and healthy (each
		// view with the metadata it has; views differ by a gossip hop).
		votes := 0
		for _, ms := range views {
			for _, m := range ms {
				if m.Meta.Region == r.Name && m.Meta.Role == topology.RoleWeb && m.Alive() && m.Meta.Healthy {
					votes++
					break
				}
			}
		}
		st.Regions = append(st.Regions, RegionStatus{Name: r.Name, ClientSubnets: r.ClientSubnets,
			Healthy: totalVotes > 0 && votes*2 > totalVotes})
	}
	for _, n := range t.NodesOf(topology.RoleDNS, "") {
		addr, _ := o.Runtime.Endpoint(n.Name, topology.PortDNS)
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		st.DNS = append(st.DNS, DNSStatus{Region: n.Region, Name: n.Name, Addr: addr,
			Dig: fmt.Sprintf("dig @%s -p %s app.%s +subnet=%s", host, port, t.DNS.Zone, firstSubnet(t, n.Region))})
	}
	sort.SliceStable(st.DNS, func(i, j int) bool { return t.RegionIndex(st.DNS[i].Region) < t.RegionIndex(st.DNS[j].Region) })
	return st, nil
}

func firstSubnet(t *topology.Topology, region string) string {
	if r, ok := t.Region(region); ok && len(r.ClientSubnets) > 0 {
		return r.ClientSubnets[0]
	}
	return "0.0.0.0/0"
}

func mainPort(r topology.Role) int {
	switch r {
	case topology.RoleWeb:
		return topology.PortWeb
	case topology.RoleDNS:
		return topology.PortDNS
	case topology.RoleWAN:
		return topology.PortWANAPI
	case topology.RoleQueue:
		return topology.PortQueue
	case topology.RoleWorker:
		return topology.PortControl // a worker serves nothing but its agent's control endpoint
	}
	return topology.ServicePort(r)
}

// Primaries lists the alive db nodes that claim primary.
func (s *Status) Primaries() []NodeStatus {
	var out []NodeStatus
	for _, n := range s.Nodes {
		if n.Role == topology.RoleDB && n.Primary && n.State == StateAlive {
			out = append(out, n)
		}
	}
	return out
}

// Primary is the current primary: of the running, unfrozen db nodes that answer as primary, the
// one with the highest epoch; with writable, only one that may write now (it holds its lease
// under lease fencing). drill's status polls reach every node directly, so a black-holed old
// primary still answers here: the epoch tells which one users' writes reach. The zero NodeStatus
// when there is none.
func (s *Status) Primary(t *topology.Topology, writable bool) NodeStatus {
	var best NodeStatus
	for _, n := range s.Nodes {
		if n.Role != topology.RoleDB || !n.Primary || !n.State.Up() {
			continue
		}
		if writable && t.Design.Fencing == topology.FencingLease && !n.Lease {
			continue
		}
		if best.Name == "" || n.Epoch > best.Epoch {
			best = n
		}
	}
	return best
}

// Converged reports whether the cluster is ready: every running gossip member alive in the
// majority view, every region healthy, exactly one primary (holding its lease under lease fencing),
// and every db replica caught up. The reason says what is still missing.
func (s *Status) Converged(t *topology.Topology) (bool, string) {
	for _, n := range s.Nodes {
		if n.Role != topology.RoleWAN && n.State != StateAlive {
			return false, fmt.Sprintf("node %s is %s", n.Name, n.State)
		}
	}
	for _, r := range s.Regions {
		if !r.Healthy {
			return false, fmt.Sprintf("region %s is not healthy", r.Name)
		}
	}
	ps := s.Primaries()
	if len(ps) != 1 {
		return false, fmt.Sprintf("%d primaries", len(ps))
	}
	if t.Design.Fencing == topology.FencingLease && !ps[0].Lease {
		return false, fmt.Sprintf("primary %s holds no lease yet", ps[0].Name)
	}
	for _, n := range s.Nodes {
		if n.Role == topology.RoleDB && !n.Primary && (n.LSN != ps[0].LSN || n.Epoch != ps[0].Epoch) {
			return false, fmt.Sprintf("replica %s at lsn %d epoch %d, primary at %d epoch %d", n.Name, n.LSN, n.Epoch, ps[0].LSN, ps[0].Epoch)
		}
	}
	return true, ""
}

// WaitConverged polls Status until Converged and every GeoDNS instance sends the users near each
// region to that region (DNSReady), or the timeout; the error names what was missing.
func (o *Observer) WaitConverged(ctx context.Context, timeout time.Duration) (*Status, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	reason := "no status yet"
	for {
		var why string
		st, err := o.Status(ctx)
		if err == nil {
			var ok bool
			ok, why = st.Converged(o.Plan.Topology)
			if ok {
				// Ready means answering: every GeoDNS instance sends each region's users home.
				routes, err := o.DNSRoutes(ctx)
				switch {
				case err != nil:
					ok, why = false, err.Error()
				default:
					ok, why = DNSReady(o.Plan.Topology, routes)
				}
			}
			if ok {
				return st, nil
			}
		} else {
			why = err.Error()
		}
		if why != reason && o.Logger != nil {
			o.Logger.Debug("not converged yet", "waiting_for", why, "after", time.Since(start).Round(time.Millisecond))
		}
		reason = why
		if time.Now().After(deadline) {
			return st, fmt.Errorf("cluster did not converge within %s: %s", timeout, reason)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
