// Package agent is the program every node runs (`drill agent`): it reads the plan, joins gossip,
// serves the control endpoint drill uses to inject faults (gossip rules, a db node's clock shift
// and disk faults, a damaged log record), and runs the node's role: web,
// db, dns, witness (a lease voter) or wan (the toxiproxy server).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/wan"
	"github.com/drillworks/drill/topology"
)

// Options say which node of which plan to run.
type Options struct {
	// Plan is the running plan.
	Plan *topology.Plan
	// Node is this node's name in the plan.
	Node string
	// DataDir is where the node keeps state; empty = <run dir>/data/<node>.
	DataDir string
	// BindIP overrides the node's address from the plan (the Docker runtime binds 0.0.0.0 etc.).
	BindIP string
	// Logger receives the node's logs.
	Logger *slog.Logger
}

// Run runs the node until ctx is done, then leaves gossip gracefully.
func Run(ctx context.Context, o Options) error {
	node, ok := o.Plan.Topology.Node(o.Node)
	if !ok {
		return fmt.Errorf("node %q is not in the plan", o.Node)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger.With("node", node.Name)
	if o.DataDir == "" {
		o.DataDir = filepath.Join(o.Plan.RunDir, "data", node.Name)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	bindIP := node.IP.String()
	if o.BindIP != "" {
		bindIP = o.BindIP
	}
	if node.Role == topology.RoleWAN {
		srv, err := wan.New(wan.Config{Plan: o.Plan, APIListen: bindIP + fmt.Sprint(":", topology.PortWANAPI), Logger: log})
		if err != nil {
			return err
		}
		return srv.Serve(ctx)
	}

	if node.Role == topology.RoleWitness {
		// The witness is a lease voter at a third site and deliberately not a gossip member: a
		// member that sees both sides of a partition would relay each side's liveness to the
		// other, and the partition would never show in anyone's view.
		return serveWitness(ctx, o.Plan, node.Name, o.DataDir, net.JoinHostPort(bindIP, fmt.Sprint(topology.PortDB)), log)
	}

	epochs, err := loadEpochMemory(o.DataDir, log)
	if err != nil {
		return err
	}
	g, err := startGossip(o.Plan, node, bindIP, epochs, log)
	if err != nil {
		return err
	}
	// The node's clock: the database measures its leases on it, and drill's clock faults shift it.
	clk := clock.New()
	// Its disk: the database writes its log through it, and drill's disk faults set it.
	faults := &disk.Faults{}
	reg := nodeRegistry(log)
	ctl := newControl(o.Plan, node, g, clk, faults, o.DataDir, reg, log)
	ctl.registerMetrics(reg)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("control", func(ctx context.Context) error { return ctl.Serve(ctx, bindIP) })
	role, err := newRole(o, node, bindIP, g, clk, faults, reg, log)
	if err != nil {
		cancel()
		_ = g.Shutdown()
		wg.Wait()
		return err
	}
	run(string(node.Role), role)
	log.Info("node up", "role", node.Role, "addr", bindIP)

	<-ctx.Done()
	log.Info("node leaving")
	_ = g.Leave(time.Second)
	_ = g.Shutdown()
	wg.Wait()
	close(errs)
	return <-errs // nil when the node stopped because it was asked to
}

// gossipPeers is every gossip member's address: all nodes but the WAN node and the witness.
func gossipPeers(t *topology.Topology, self string) []string {
	var seeds []string
	for _, n := range t.Nodes() {
		if n.Role == topology.RoleWAN || n.Role == topology.RoleWitness || n.Name == self {
			continue
		}
		seeds = append(seeds, n.Addr(topology.PortGossip))
	}
	return seeds
}

// baseRules are the steady WAN: every other site's gossip traffic is delayed by the topology's
// one-way latency, as the TCP links are by their base toxics.
func baseRules(t *topology.Topology, site string) gossip.Rules {
	var r gossip.Rules
	for _, other := range t.Sites() {
		if other == site {
			continue
		}
		lat, jit := t.SiteLatency(site, other)
		if lat > 0 {
			r.Delays = append(r.Delays, gossip.Delay{Prefix: t.SitePrefix(other), Latency: lat, Jitter: jit})
		}
	}
	return r
}

func startGossip(p *topology.Plan, node topology.Node, bindIP string, epochs *epochMemory, log *slog.Logger) (*gossip.Node, error) {
	t := p.Topology
	meta := gossip.Meta{Region: node.Region, Role: node.Role, Service: serviceAddr(node, bindIP)}
	faults := gossip.NewFaults(baseRules(t, node.Site()))
	g, err := gossip.Start(gossip.Config{
		Name:           node.Name,
		BindIP:         bindIP,
		Port:           topology.PortGossip,
		Profile:        t.Gossip.Profile,
		Key:            p.GossipKey,
		Label:          "drill/" + t.Name,
		Seeds:          gossipPeers(t, node.Name),
		RejoinInterval: t.Gossip.RejoinInterval.D(),
		Logger:         log.With("component", "gossip"),
		Faults:         faults,
		Check:          planCheck(p, epochs),
	}, meta)
	if err != nil {
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	return g, nil
}

// serviceAddr is the node's main service, published in gossip.
func serviceAddr(n topology.Node, bindIP string) string {
	ip := n.IP
	if a, err := netip.ParseAddr(bindIP); err == nil && !a.IsUnspecified() {
		ip = a
	}
	switch n.Role {
	case topology.RoleWeb:
		return netip.AddrPortFrom(ip, topology.PortWeb).String()
	case topology.RoleDB, topology.RoleWitness:
		return netip.AddrPortFrom(ip, topology.PortDB).String()
	case topology.RoleDNS:
		return netip.AddrPortFrom(ip, topology.PortDNS).String()
	case topology.RoleCache:
		return netip.AddrPortFrom(ip, topology.PortCache).String()
	case topology.RoleQueue:
		return netip.AddrPortFrom(ip, topology.PortQueue).String()
	}
	return "" // a worker serves nothing
}

// planCheck vets gossip members against the plan: a member must be a gossip node of the plan,
// at its planned address, claiming its planned role and region and a service at its own address,
// and its epoch may not run more than db.MaxEpochLead ahead of the highest epoch this node has
// accepted so far, restarts included (epochs).
// Every container holds the gossip key, so the key alone does not make a member trustworthy.
func planCheck(p *topology.Plan, epochs *epochMemory) func(gossip.Member) error {
	nodes := map[string]topology.Node{}
	for _, n := range p.Topology.Nodes() {
		nodes[n.Name] = n
	}
	return func(m gossip.Member) error {
		n, ok := nodes[m.Name]
		switch {
		case !ok:
			return fmt.Errorf("%q is not a node of the plan", m.Name)
		case n.Role == topology.RoleWAN || n.Role == topology.RoleWitness:
			return fmt.Errorf("%s is no gossip member in the plan", m.Name)
		case m.Meta.Role != "" && m.Meta.Role != n.Role:
			return fmt.Errorf("%s claims role %s; the plan says %s", m.Name, m.Meta.Role, n.Role)
		case m.Meta.Region != "" && m.Meta.Region != n.Region:
			return fmt.Errorf("%s claims region %s; the plan says %s", m.Name, m.Meta.Region, n.Region)
		}
		if ap, err := netip.ParseAddrPort(m.Addr); err != nil || ap.Addr().Unmap() != n.IP {
			return fmt.Errorf("%s gossips from %s; the plan puts it at %s", m.Name, m.Addr, n.IP)
		}
		if m.Meta.Service != "" {
			if ap, err := netip.ParseAddrPort(m.Meta.Service); err != nil || ap.Addr().Unmap() != n.IP {
				return fmt.Errorf("%s publishes service %s, not at its own address %s", m.Name, m.Meta.Service, n.IP)
			}
		}
		if highest := epochs.highest(); m.Meta.Epoch > highest+db.MaxEpochLead {
			return fmt.Errorf("%s claims epoch %d, more than %d above the highest accepted (%d)", m.Name, m.Meta.Epoch, db.MaxEpochLead, highest)
		}
		epochs.accept(m.Meta.Epoch)
		return nil
	}
}
