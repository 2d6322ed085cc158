package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// runtimeHelp documents --runtime for up and run.
func runtimeHelp() string {
	var names []string
	for _, d := range compose.Runtimes() {
		names = append(names, d.Name+" ("+d.Summary+")")
	}
	return "runtime: " + strings.Join(names, ", ") + ", or auto (the first of these available here)"
}

type upFlags struct {
	sets    []string
	runtime string
	binary  string
	timeout time.Duration
	// overCapacity brings a plan up even beyond the runtime's measured capacity here.
	overCapacity bool
}

func newUpCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the simulated regions up and wait until they are converged and healthy",
		Example: `  drill up
  drill up --topology my-regions.yaml --set fencing=none`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.loadTopology(f.sets)
			if err != nil {
				return err
			}
			if f.runtime, err = g.resolveRuntime(cmd.Context(), f.runtime); err != nil {
				return err
			}
			c, err := g.upCluster(cmd.Context(), t, f)
			if err != nil {
				return err
			}
			if g.asJSON() {
				return g.printJSON(c.status)
			}
			fmt.Fprintf(g.env.Stdout, "drill: %s up on the %s runtime (run %s) in %s\n", t.Name, c.rt.Name(), c.plan.RunID,
				time.Since(c.started).Round(time.Millisecond))
			printStatus(g.env.Stdout, c.status)
			return nil
		},
	}
	f.register(cmd, "override a design setting, key=value (fencing, replication, read_your_writes, failover_after, dns_ttl, ...)")
	return cmd
}

// register adds the flags of every command that brings a cluster up: --set (with its help),
// --runtime, --agent-binary and --timeout.
func (f *upFlags) register(cmd *cobra.Command, setHelp string) {
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, setHelp)
	cmd.Flags().StringVar(&f.runtime, "runtime", "auto", runtimeHelp())
	cmd.Flags().StringVar(&f.binary, "agent-binary", "", agentBinaryHelp)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 60*time.Second, "how long to wait for the cluster to converge")
	cmd.Flags().BoolVar(&f.overCapacity, "over-capacity", false, "bring the topology up even when it has more nodes than this machine holds converging (the runtime's measured capacity)")
}

// checkCapacity refuses, before anything starts, a topology with more nodes than the runtime
// holds on this machine (its Capacity), unless --over-capacity: such a cluster would only time
// out while converging, after minutes of a starved machine.
func checkCapacity(d runtime.Descriptor, t *topology.Topology, f *upFlags) error {
	if d.Capacity == nil || f.overCapacity {
		return nil
	}
	limit, basis := d.Capacity()
	if n := len(t.Nodes()); n > limit {
		return usageErr(fmt.Errorf("topology %s has %d nodes; the %s runtime holds about %d converging on this machine (%s). "+
			"Use fewer regions or nodes, a bigger machine, or --over-capacity to try anyway", t.Name, n, d.Name, limit, basis))
	}
	return nil
}

// cluster is a running cluster as a command sees it.
type cluster struct {
	plan    *topology.Plan
	rt      runtime.Runtime
	obs     *observe.Observer
	status  *observe.Status
	started time.Time
}

// agentBinaryHelp documents --agent-binary.
const agentBinaryHelp = "drill binary the nodes run (default: this one; the docker runtime packs it, with its " +
	"loader and libraries when it is dynamically linked, into the node image)"

// newRuntime makes the named runtime for a run directory.
func (g *globals) newRuntime(name, runDir, binary string) (runtime.Runtime, runtime.Descriptor, error) {
	d, err := compose.LookupRuntime(name)
	if err != nil {
		return nil, d, usageErr(fmt.Errorf("--runtime: %w", err))
	}
	rt, err := d.New(runtime.Config{RunDir: runDir, Binary: binary, Logger: g.logger()})
	if err != nil {
		return nil, d, harnessErr(err)
	}
	return rt, d, nil
}

// resolveRuntime turns "auto" into the first registered runtime available here, and says which it
// chose and why (on stderr: stdout stays the command's own output).
func (g *globals) resolveRuntime(ctx context.Context, name string) (string, error) {
	if name != "auto" {
		if _, err := compose.LookupRuntime(name); err != nil {
			return "", usageErr(fmt.Errorf("--runtime: %w", err))
		}
		return name, nil
	}
	d, skipped := compose.AutoRuntime(ctx, 3*time.Second)
	for _, err := range skipped {
		fmt.Fprintf(g.env.Stderr, "drill: --runtime auto: not available: %v\n", err)
	}
	fmt.Fprintf(g.env.Stderr, "drill: --runtime auto: using the %s runtime\n", d.Name)
	return d.Name, nil
}

// upCluster brings a topology up and waits for convergence; on failure it tears down what started.
func (g *globals) upCluster(ctx context.Context, t *topology.Topology, f *upFlags) (*cluster, error) {
	runDir, err := g.runDir(t)
	if err != nil {
		return nil, err
	}
	rt, d, err := g.newRuntime(f.runtime, runDir, f.binary)
	if err != nil {
		return nil, err
	}
	if err := checkCapacity(d, t, f); err != nil {
		return nil, err
	}
	plan, err := d.NewPlan(t, runDir)
	if err != nil {
		return nil, harnessErr(err)
	}
	c := &cluster{plan: plan, rt: rt, started: time.Now()}
	if err := rt.Up(ctx, plan); err != nil {
		if errors.Is(err, runtime.ErrAlreadyUp) {
			return nil, harnessErr(fmt.Errorf("%s: %w", t.Name, err))
		}
		_ = rt.Down(context.WithoutCancel(ctx))
		return nil, harnessErr(fmt.Errorf("bring up %s: %w", t.Name, err))
	}
	c.obs = observe.New(plan, rt)
	c.obs.Logger = g.logger()
	st, err := c.obs.WaitConverged(ctx, f.timeout)
	if err != nil {
		_ = rt.Down(context.WithoutCancel(ctx))
		return nil, harnessErr(fmt.Errorf("bring up %s: %w (node logs: %s/logs)", t.Name, err, runDir))
	}
	c.status = st
	return c, nil
}

// attach finds the running cluster of the selected topology.
func (g *globals) attach() (*cluster, error) {
	t, runDir, err := g.selected()
	if err != nil {
		return nil, err
	}
	plan, rt, err := g.openPlan(runDir)
	if err != nil {
		return nil, harnessErr(fmt.Errorf("%s: %w", t.Name, err))
	}
	nodes, err := rt.Nodes(context.Background())
	if err != nil {
		return nil, harnessErr(err)
	}
	running := 0
	for _, n := range nodes {
		if n.Running {
			running++
		}
	}
	if running == 0 {
		return nil, harnessErr(fmt.Errorf("%s: %w", t.Name, runtime.ErrNotUp))
	}
	return &cluster{plan: plan, rt: rt, obs: observe.New(plan, rt)}, nil
}

// openPlan reads a run directory's plan and makes the runtime that runs it.
func (g *globals) openPlan(runDir string) (*topology.Plan, runtime.Runtime, error) {
	plan, d, err := compose.FindPlan(runDir)
	if err != nil {
		return nil, nil, err
	}
	rt, err := d.New(runtime.Config{RunDir: runDir, Logger: g.logger()})
	if err != nil {
		return nil, nil, err
	}
	return plan, rt, nil
}

func newDownCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every node of the cluster and remove its data (logs stay)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, runDir, err := g.selected()
			if err != nil {
				return err
			}
			if err := g.down(cmd.Context(), t, runDir); err != nil {
				return err
			}
			if g.asJSON() {
				return g.printJSON(map[string]any{"topology": t.Name, "down": true})
			}
			fmt.Fprintf(g.env.Stdout, "drill: %s is down; nothing left running\n", t.Name)
			return nil
		},
	}
}

// down stops the topology's cluster on the runtime its plan names. Without a plan (a crashed run
// or a lost run directory) it asks every registered runtime that is available here to remove what
// it holds of the topology: each finds its own objects (processes by command line, containers by
// label).
func (g *globals) down(ctx context.Context, t *topology.Topology, runDir string) error {
	var targets []runtime.Descriptor
	if _, d, err := compose.FindPlan(runDir); err == nil {
		targets = []runtime.Descriptor{d}
	} else {
		for _, d := range compose.Runtimes() {
			if d.Available == nil || d.Available(ctx, 2*time.Second) == nil {
				targets = append(targets, d)
			}
		}
	}
	for _, d := range targets {
		rt, err := d.New(runtime.Config{RunDir: runDir, Topology: t.Name, Logger: g.logger()})
		if err != nil {
			return harnessErr(err)
		}
		if err := rt.Down(ctx); err != nil {
			return harnessErr(fmt.Errorf("%s runtime: %w", d.Name, err))
		}
	}
	return nil
}
