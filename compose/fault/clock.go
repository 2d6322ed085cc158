package fault

import (
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

// clockKind is a clock kind: a db node (or the primary) as target, and its shift as the effect.
type clockKind struct {
	dbNodeKind
	summary string
	shift   func(Params) clock.Shift
}

func (c clockKind) Summary() string { return c.summary }

func (c clockKind) Effects(f Fault, _ Env) Effects {
	e := Effects{Clock: map[string]clock.Shift{}}
	for _, n := range f.Resolved {
		e.Clock[n] = c.shift(f.Params)
	}
	return e
}
