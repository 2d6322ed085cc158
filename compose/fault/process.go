package fault

import (
	"context"
	"fmt"

	"github.com/drillworks/drill/topology"
)

// Process faults go through the runtime, so they work alike for processes and containers: kill
// (SIGKILL until undone), freeze (SIGSTOP or pause until undone) and restart (kill and start
// again at once), aimed at one node or every node of a region.

// processKind is a kill, freeze or restart kind.
type processKind struct {
	Base
	kind    Kind
	action  Action
	summary string
}

func (p processKind) Kind() Kind      { return p.kind }
func (p processKind) Summary() string { return p.summary }
func (p processKind) Instant() bool   { return p.action == ActionRestart }

func (p processKind) Targets() Targets {
	return Targets{Node: true, Region: true,
		Help: fmt.Sprintf("the node to %s (target; target: primary for whichever db node is the primary then) or the region whose nodes to %s", p.kind, p.kind)}
}

// TakesRegionOut: killing or freezing every node of a region takes it out; a restart is over at
// once.
func (p processKind) TakesRegionOut(f Fault) bool { return f.Region != "" && p.action != ActionRestart }

func (p processKind) Resolve(ctx context.Context, f Fault, env Env) ([]string, error) {
	if f.Node == TargetPrimary {
		return currentPrimary(ctx, env)
	}
	if f.Node != "" {
		return []string{f.Node}, nil
	}
	return RegionNodes(env.Plan.Topology, f.Region), nil
}

func (p processKind) Effects(f Fault, _ Env) Effects {
	return Effects{Process: Process{Action: p.action, Nodes: f.Resolved}}
}

func (p processKind) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-" + string(p.kind), Kind: p.kind, Node: quietNode(t)}
}
