package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/docker"
	"github.com/drillworks/drill/compose/local"
	"github.com/drillworks/drill/topology"
)

// runtimeHelp documents --runtime for up and run.
const runtimeHelp = "runtime: local (child processes on loopback), docker (one container per node; needs a Docker engine), " +
	"or auto (docker when an engine answers, else local)"

type upFlags struct {
	sets    []string
	runtime string
	binary  string
	timeout time.Duration
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
			fmt.Fprintf(g.env.Stdout, "drill: %s up on the %s runtime (run %s) in %s\n", t.Name, c.rt.Name(), c.plan.RunID,
				time.Since(c.started).Round(time.Millisecond))
			printStatus(g.env.Stdout, c.status)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a design setting, key=value (fencing, replication, read_your_writes, failover_after, dns_ttl, ...)")
	cmd.Flags().StringVar(&f.runtime, "runtime", "auto", runtimeHelp)
	cmd.Flags().StringVar(&f.binary, "agent-binary", "", agentBinaryHelp)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 60*time.Second, "how long to wait for convergence")
	return cmd
}

// cluster is a running cluster as a command sees it.
type cluster struct {
	plan    *topology.Plan
	rt      compose.Runtime
	obs     *compose.Observer
	status  *compose.Status
	started time.Time
}

// agentBinaryHelp documents --agent-binary.
const agentBinaryHelp = "drill binary the nodes run (default: this one; the docker runtime needs a static one " +
	"and builds it with CGO_ENABLED=0 from the module source when this one is not)"

func (g *globals) newRuntime(name, runDir, binary string) (compose.Runtime, error) {
	switch name {
	case "local", "":
		return local.New(local.Config{RunDir: runDir, Binary: binary, Logger: g.logger()})
	case "docker":
		rt, err := docker.New(docker.Config{RunDir: runDir, Binary: binary, Logger: g.logger()})
		if err != nil {
			return nil, harnessErr(err)
		}
		return rt, nil
	}
	return nil, usageErr(fmt.Errorf("--runtime %q: unknown runtime (available: local, docker, auto)", name))
}

// resolveRuntime turns "auto" into docker when an engine answers and local otherwise, and says
// which it chose (on stderr: stdout stays the command's own output).
func (g *globals) resolveRuntime(ctx context.Context, name string) (string, error) {
	if name != "auto" {
		return name, nil
	}
	if err := docker.Available(ctx, 3*time.Second); err != nil {
		fmt.Fprintf(g.env.Stderr, "drill: --runtime auto: no Docker engine answers (%v); using the local runtime\n", err)
		return "local", nil
	}
	fmt.Fprintln(g.env.Stderr, "drill: --runtime auto: a Docker engine answers; using the docker runtime")
	return "docker", nil
}

// upCluster brings a topology up and waits for convergence; on failure it tears down what started.
func (g *globals) upCluster(ctx context.Context, t *topology.Topology, f *upFlags) (*cluster, error) {
	runDir, err := g.runDir(t)
	if err != nil {
		return nil, err
	}
	rt, err := g.newRuntime(f.runtime, runDir, f.binary)
	if err != nil {
		return nil, err
	}
	plan, err := topology.NewPlan(t, rt.Name(), runDir)
	if err != nil {
		return nil, harnessErr(err)
	}
	c := &cluster{plan: plan, rt: rt, started: time.Now()}
	if err := rt.Up(ctx, plan); err != nil {
		if errors.Is(err, compose.ErrAlreadyUp) {
			return nil, harnessErr(fmt.Errorf("%s: %w", t.Name, err))
		}
		_ = rt.Down(context.WithoutCancel(ctx))
		return nil, harnessErr(fmt.Errorf("bring up %s: %w", t.Name, err))
	}
	c.obs = compose.NewObserver(plan, rt)
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
	plan, err := topology.LoadPlan(local.PlanPath(runDir))
	if err != nil {
		return nil, harnessErr(fmt.Errorf("%s: %w", t.Name, compose.ErrNotUp))
	}
	rt, err := g.newRuntime(plan.Runtime, runDir, "")
	if err != nil {
		return nil, err
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
		return nil, harnessErr(fmt.Errorf("%s: %w", t.Name, compose.ErrNotUp))
	}
	return &cluster{plan: plan, rt: rt, obs: compose.NewObserver(plan, rt)}, nil
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
			fmt.Fprintf(g.env.Stdout, "drill: %s is down; nothing left running\n", t.Name)
			return nil
		},
	}
}

// down stops the topology's cluster on the runtime its plan names. Without a plan it stops what
// the local runtime finds and, when a Docker engine answers, removes every container and network
// labelled with the topology.
func (g *globals) down(ctx context.Context, t *topology.Topology, runDir string) error {
	name := "local"
	if plan, err := topology.LoadPlan(local.PlanPath(runDir)); err == nil && plan.Runtime != "" {
		name = plan.Runtime
	}
	rt, err := g.newRuntime(name, runDir, "")
	if err != nil {
		return err
	}
	if err := rt.Down(ctx); err != nil {
		return harnessErr(err)
	}
	if name != "local" {
		return nil
	}
	if docker.Available(ctx, 2*time.Second) != nil {
		return nil
	}
	drt, err := docker.New(docker.Config{RunDir: runDir, Topology: t.Name, Logger: g.logger()})
	if err != nil {
		return harnessErr(err)
	}
	if err := drt.Down(ctx); err != nil {
		return harnessErr(err)
	}
	return nil
}
