// Package runtimetest holds the conformance test every runtime runs against a real cluster: each
// registered fault kind's example is applied, checked for what it must do as far as the runtime
// lets drill see it, undone, and the cluster must converge again with nothing left behind. A new
// fault kind is tested on every runtime by this suite without a line of its own.
package runtimetest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// Cluster is a converged cluster under test.
type Cluster struct {
	Plan     *topology.Plan
	Runtime  runtime.Runtime
	Injector *inject.Injector
	Observer *observe.Observer
}

// FaultKinds runs every registered kind's example on c, one after the other, after writing a few
// keys (so there is a log to damage). While a fault is
// active: its process operation shows in the runtime's node states, every gossip member it blocks
// from another is seen dead by that one, its toxics are on their links, its packet rule sets are
// in the nodes (runtimes with a packet layer) and the residue check is not clean. After its undo
// the cluster converges and the residue check is clean.
func FaultKinds(t *testing.T, c Cluster) {
	writeSome(t, c, 20) // a log to damage (disk-corrupt) and data for every kind to act on
	for _, k := range fault.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			d, _ := fault.Lookup(k)
			checkKind(t, c, d)
		})
	}
}

func checkKind(t *testing.T, c Cluster, d fault.Descriptor) {
	ctx := context.Background()
	tp := c.Plan.Topology
	ex := d.Example(tp)
	if err := c.Injector.Apply(ctx, ex); err != nil {
		t.Fatalf("apply %+v: %v", ex, err)
	}
	t.Cleanup(func() { _ = c.Injector.Undo(context.Background(), ex.ID) })
	applied := ex
	for _, f := range c.Injector.Active() {
		if f.ID == ex.ID {
			applied = f
		}
	}
	if d.Instant() {
		if len(c.Injector.Active()) != 0 {
			t.Fatalf("an instant fault stays outstanding: %+v", c.Injector.Active())
		}
	} else {
		e := d.Effects(applied, fault.Env{Plan: c.Plan, PacketLayer: c.Runtime.Capabilities().PacketFaults})
		waitFor(t, 30*time.Second, string(d.Kind())+" shows", func() string { return missing(ctx, c, e) })
		if items := c.Injector.Residue(ctx); inject.ResidueClean(items) {
			t.Errorf("residue clean while %s is active", ex.ID)
		}
		if err := c.Injector.Undo(ctx, ex.ID); err != nil {
			t.Fatalf("undo: %v", err)
		}
	}
	if _, err := c.Observer.WaitConverged(ctx, 60*time.Second); err != nil {
		t.Fatalf("after %s: %v", ex.ID, err)
	}
	if items := c.Injector.Residue(ctx); !inject.ResidueClean(items) {
		t.Fatalf("residue after %s: %+v", ex.ID, items)
	}
}

// missing says what of e does not show yet ("" when everything does).
func missing(ctx context.Context, c Cluster, e fault.Effects) string {
	tp := c.Plan.Topology
	nodes, err := c.Runtime.Nodes(ctx)
	if err != nil {
		return "nodes: " + err.Error()
	}
	state := map[string]runtime.NodeState{}
	for _, n := range nodes {
		state[n.Name] = n
	}
	for _, n := range e.Process.Nodes {
		switch e.Process.Action {
		case fault.ActionKill:
			if state[n].Running {
				return n + " still runs"
			}
		case fault.ActionFreeze:
			if !state[n].Frozen {
				return n + " is not frozen"
			}
		}
	}
	proxies, err := c.Injector.Toxi().Proxies(ctx)
	if err != nil {
		return "WAN links: " + err.Error()
	}
	for _, tx := range e.Toxics {
		if !slices.ContainsFunc(proxies[tx.Link].Toxics, func(p toxi.Toxic) bool { return p.Name == tx.Name }) {
			return "toxic " + tx.Name + " is not on " + tx.Link
		}
	}
	if c.Runtime.Capabilities().PacketFaults && len(e.Packets) > 0 {
		pf, _ := c.Runtime.(runtime.PacketFaulter)
		rules, err := pf.PacketRules(ctx)
		if err != nil {
			return "packet rules: " + err.Error()
		}
		for n := range e.Packets {
			if state[n].Running && len(rules[n]) == 0 {
				return "no packet rules on " + n
			}
		}
	}
	if why := stateShows(ctx, state, e.Clock, c.Observer.Clock); why != "" {
		return "clock of " + why
	}
	if why := stateShows(ctx, state, e.Disk, c.Observer.Disk); why != "" {
		return "disk of " + why
	}
	for name, r := range e.Gossip {
		a, _ := tp.Node(name)
		if p := state[name]; !p.Running || p.Frozen {
			continue
		}
		view, err := c.Observer.Members(ctx, name)
		if err != nil {
			return "members of " + name + ": " + err.Error()
		}
		blocked := slices.Concat(r.Drop, r.DropIn, r.DropOut)
		for _, m := range view {
			b, ok := tp.Node(m.Name)
			if ok && b.Name != a.Name && contains(blocked, b.IP) && m.Alive() {
				return name + " still sees " + b.Name + " alive"
			}
		}
	}
	return ""
}

// stateShows checks that every running, unfrozen node of want reports its wanted state ("" when
// all do, else the node and what it reports).
func stateShows[T comparable](ctx context.Context, procs map[string]runtime.NodeState, want map[string]T, get func(context.Context, string) (T, error)) string {
	for name, w := range want {
		if p := procs[name]; !p.Running || p.Frozen {
			continue
		}
		got, err := get(ctx, name)
		if err != nil {
			return name + ": " + err.Error()
		}
		if got != w {
			return fmt.Sprintf("%s is %+v, want %+v", name, got, w)
		}
	}
	return ""
}

func contains(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// writeSome writes n keys through the primary's database API, retrying until a deadline.
func writeSome(t *testing.T, c Cluster, n int) {
	t.Helper()
	ctx := context.Background()
	hc := peerauth.ClientFor(peerauth.Derive(c.Plan.Secret, peerauth.PurposeDB), 3*time.Second, c.Plan.NodeAt)
	written := 0
	waitFor(t, 30*time.Second, fmt.Sprintf("%d writes through the primary", n), func() string {
		st, err := c.Observer.Status(ctx)
		if err != nil {
			return "status: " + err.Error()
		}
		p := st.Primary(c.Plan.Topology, true)
		if p.Name == "" {
			return "no writable primary"
		}
		addr, err := c.Runtime.Endpoint(p.Name, topology.PortDB)
		if err != nil {
			return err.Error()
		}
		cl := db.Client{BaseURL: "http://" + addr, HTTP: hc}
		for ; written < n; written++ {
			if _, err := cl.Put(ctx, fmt.Sprintf("conformance-%d", written), "v"); err != nil {
				return fmt.Sprintf("write %d on %s: %v", written, p.Name, err)
			}
		}
		return ""
	})
}

// waitFor polls cond (which says what is still missing) until it is satisfied or the deadline.
func waitFor(t *testing.T, within time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, within, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
