package fault

import (
	"context"
	"errors"
	"fmt"

	"github.com/drillworks/drill/topology"
)

// KindKillPrimary kills whichever db node is the primary when the fault is applied, until undone.
const KindKillPrimary Kind = "kill-primary"

func init() { register(killPrimary{}) }

type killPrimary struct{ Base }

func (killPrimary) Kind() Kind { return KindKillPrimary }

func (killPrimary) Summary() string {
	return "kill whichever db node is the primary at that moment, until healed"
}

func (killPrimary) Targets() Targets { return Targets{} }

// Resolve asks the cluster for the current primary.
func (killPrimary) Resolve(ctx context.Context, _ Fault, env Env) ([]string, error) {
	return currentPrimary(ctx, env)
}

// currentPrimary asks the cluster which db node is the primary now.
func currentPrimary(ctx context.Context, env Env) ([]string, error) {
	if env.Primary == nil {
		return nil, errors.New("the current primary cannot be asked here")
	}
	p, err := env.Primary(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the primary: %w", err)
	}
	return []string{p}, nil
}

func (killPrimary) Effects(f Fault, _ Env) Effects {
	return Effects{Process: Process{Action: ActionKill, Nodes: f.Resolved}}
}

func (killPrimary) Example(*topology.Topology) Fault {
	return Fault{ID: "example-kill-primary", Kind: KindKillPrimary}
}
