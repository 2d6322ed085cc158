package fault

import (
	"context"
	"fmt"

	"github.com/drillworks/drill/topology"
)

// dbNodeKind is the part of a kind aimed at one db node, or at whichever is the primary when it
// lands (clock and disk faults): the target, its check and its resolution.
type dbNodeKind struct {
	Base
	kind Kind
}

func (k dbNodeKind) Kind() Kind { return k.kind }

func (k dbNodeKind) Targets() Targets {
	return Targets{Node: true, Help: "the db node it acts on (target; target: primary for whichever db node is the primary then)"}
}

func (k dbNodeKind) Check(f Fault, t *topology.Topology) error {
	if f.Node == TargetPrimary {
		return nil
	}
	if n, _ := t.Node(f.Node); n.Role != topology.RoleDB {
		return fmt.Errorf("fault %s: %s acts on a db node; %s is a %s node", f.ID, k.kind, f.Node, n.Role)
	}
	return nil
}

func (k dbNodeKind) Resolve(ctx context.Context, f Fault, env Env) ([]string, error) {
	if f.Node == TargetPrimary {
		return currentPrimary(ctx, env)
	}
	return []string{f.Node}, nil
}

// exampleDBNode is a db node of QuietRegion, for the examples of kinds aimed at db nodes.
func exampleDBNode(t *topology.Topology) string {
	if ns := t.NodesOf(topology.RoleDB, QuietRegion(t)); len(ns) > 0 {
		return ns[0].Name
	}
	return t.NodesOf(topology.RoleDB, "")[0].Name
}
