// Package compose brings a topology to life and injects faults into it. Its parts are
// sub-packages: compose/runtime (the small Runtime interface and what a runtime declares about
// itself), one package per runtime (compose/local for child processes, compose/docker for
// containers), compose/fault (the fault vocabulary: one file per kind), compose/inject (the
// injector, its ledger and the residue check) and compose/observe (cluster status). This package
// holds the runtime registry and Cluster, which joins a running plan's runtime, injector and
// observer for drills.
package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/docker"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/local"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// Runtimes lists the registered runtimes, in the order --runtime auto tries them: a new runtime
// is one package and one line here.
func Runtimes() []runtime.Descriptor {
	return []runtime.Descriptor{
		docker.Descriptor(),
		local.Descriptor(),
	}
}

// RuntimeNames lists the registered runtimes' names.
func RuntimeNames() []string {
	var out []string
	for _, d := range Runtimes() {
		out = append(out, d.Name)
	}
	return out
}

// LookupRuntime returns a registered runtime by name.
func LookupRuntime(name string) (runtime.Descriptor, error) {
	for _, d := range Runtimes() {
		if d.Name == name {
			return d, nil
		}
	}
	return runtime.Descriptor{}, fmt.Errorf("unknown runtime %q (available: %s, auto)", name, strings.Join(RuntimeNames(), ", "))
}

// AutoRuntime is the first registered runtime that is available here within timeout, and why
// each one before it was not.
func AutoRuntime(ctx context.Context, timeout time.Duration) (runtime.Descriptor, []error) {
	var skipped []error
	all := Runtimes()
	for _, d := range all {
		if d.Available == nil {
			return d, skipped
		}
		if err := d.Available(ctx, timeout); err != nil {
			skipped = append(skipped, fmt.Errorf("%s: %w", d.Name, err))
			continue
		}
		return d, skipped
	}
	return all[len(all)-1], skipped
}

// FindPlan reads the plan of a run directory, wherever its runtime keeps it; runtime.ErrNotUp
// when there is none.
func FindPlan(runDir string) (*topology.Plan, runtime.Descriptor, error) {
	var seen []string
	for _, d := range Runtimes() {
		path := d.PlanPath(runDir)
		if slices.Contains(seen, path) {
			continue
		}
		seen = append(seen, path)
		p, err := topology.LoadPlan(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, runtime.Descriptor{}, err
		}
		rd, err := LookupRuntime(p.Runtime)
		if err != nil {
			return nil, runtime.Descriptor{}, fmt.Errorf("plan %s: %w", path, err)
		}
		return p, rd, nil
	}
	return nil, runtime.Descriptor{}, runtime.ErrNotUp
}

// Cluster is a running plan as a drill sees it: its runtime, its status (Observer) and its
// faults (Injector), over any runtime.
type Cluster struct {
	*inject.Injector
	plan *topology.Plan
	rt   runtime.Runtime
	obs  *observe.Observer
}

// NewCluster opens a running plan, with its fault ledger at inject.LedgerPath(p.RunDir). log may
// be nil.
func NewCluster(p *topology.Plan, rt runtime.Runtime, log *slog.Logger) (*Cluster, error) {
	inj, err := inject.New(p, rt, inject.LedgerPath(p.RunDir), log)
	if err != nil {
		return nil, err
	}
	return &Cluster{Injector: inj, plan: p, rt: rt, obs: observe.New(p, rt)}, nil
}

// Plan is the running plan.
func (c *Cluster) Plan() *topology.Plan { return c.plan }

// Runtime runs it.
func (c *Cluster) Runtime() runtime.Runtime { return c.rt }

// RuntimeName is the runtime's name.
func (c *Cluster) RuntimeName() string { return c.rt.Name() }

// Capabilities are the runtime's.
func (c *Cluster) Capabilities() runtime.Capabilities { return c.rt.Capabilities() }

// Observer reads the cluster's state.
func (c *Cluster) Observer() *observe.Observer { return c.obs }

// Status is the cluster's state now.
func (c *Cluster) Status(ctx context.Context) (*observe.Status, error) { return c.obs.Status(ctx) }

// Endpoint is where a node's port is reached from here.
func (c *Cluster) Endpoint(node string, port int) (string, error) { return c.rt.Endpoint(node, port) }
