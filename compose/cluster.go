package compose

import (
	"context"
	"log/slog"

	"github.com/drillworks/drill/topology"
)

// Cluster is a running plan as a drill sees it: its status (Observer) and its faults (Injector),
// over any runtime.
type Cluster struct {
	*Injector
	plan *topology.Plan
	rt   Runtime
	obs  *Observer
}

// NewCluster opens a running plan, with its fault ledger at LedgerPath(p.RunDir). log may be nil.
func NewCluster(p *topology.Plan, rt Runtime, log *slog.Logger) (*Cluster, error) {
	inj, err := NewInjector(p, rt, LedgerPath(p.RunDir), log)
	if err != nil {
		return nil, err
	}
	return &Cluster{Injector: inj, plan: p, rt: rt, obs: NewObserver(p, rt)}, nil
}

// Plan is the running plan.
func (c *Cluster) Plan() *topology.Plan { return c.plan }

// Runtime runs it.
func (c *Cluster) Runtime() Runtime { return c.rt }

// RuntimeName is "local" or "docker".
func (c *Cluster) RuntimeName() string { return c.rt.Name() }

// Observer reads the cluster's state.
func (c *Cluster) Observer() *Observer { return c.obs }

// Status is the cluster's state now.
func (c *Cluster) Status(ctx context.Context) (*Status, error) { return c.obs.Status(ctx) }

// Endpoint is where a node's port is reached from here.
func (c *Cluster) Endpoint(node string, port int) (string, error) { return c.rt.Endpoint(node, port) }
