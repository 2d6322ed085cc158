package fault

import (
	"context"
	"fmt"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/topology"
)

// Clock faults shift a db node's clock through its control endpoint: the database measures its
// leases, its voter's grants and its lag on that clock, so a clock off from the others does to
// them what it would on a real machine. Undoing the fault steps the clock back to real time.

// LeaseMargin is how far apart the db nodes' clocks may be over one lease: a primary ends its lease
// this much before the voters can grant it to anyone else (agents/db ends it a tenth early). The
// design's assumption about clocks, and the bound the clock kinds name when a fault breaks it.
func LeaseMargin(t *topology.Topology) time.Duration { return t.Design.LeaseDuration.D() / 10 }

// clockAssumption names the assumption in words, with the topology's numbers.
func clockAssumption(t *topology.Topology) string {
	return fmt.Sprintf("clocks of the db nodes agree within the lease margin, lease_duration/10 = %s over a %s lease (a step of at most %s, a drift of at most 10 %%)",
		LeaseMargin(t), t.Design.LeaseDuration.D(), LeaseMargin(t))
}

// clockKind is the part the clock kinds share: a db node (or the primary) as target, resolved to
// one node, and the node's shift as the effect.
type clockKind struct {
	Base
	kind    Kind
	summary string
	shift   func(Params) clock.Shift
}

func (c clockKind) Kind() Kind      { return c.kind }
func (c clockKind) Summary() string { return c.summary }

func (c clockKind) Targets() Targets {
	return Targets{Node: true, Help: "the db node whose clock is off (target; target: primary for whichever db node is the primary then)"}
}

func (c clockKind) Check(f Fault, t *topology.Topology) error {
	if f.Node == TargetPrimary {
		return nil
	}
	if n, _ := t.Node(f.Node); n.Role != topology.RoleDB {
		return fmt.Errorf("fault %s: %s acts on a db node's clock; %s is a %s node", f.ID, c.kind, f.Node, n.Role)
	}
	return nil
}

func (c clockKind) Resolve(ctx context.Context, f Fault, env Env) ([]string, error) {
	if f.Node == TargetPrimary {
		return currentPrimary(ctx, env)
	}
	return []string{f.Node}, nil
}

func (c clockKind) Effects(f Fault, _ Env) Effects {
	e := Effects{Clock: map[string]clock.Shift{}}
	for _, n := range f.Resolved {
		e.Clock[n] = c.shift(f.Params)
	}
	return e
}

// exampleDBNode is a db node of QuietRegion, for the clock kinds' examples.
func exampleDBNode(t *topology.Topology) string {
	if ns := t.NodesOf(topology.RoleDB, QuietRegion(t)); len(ns) > 0 {
		return ns[0].Name
	}
	return t.NodesOf(topology.RoleDB, "")[0].Name
}
