package cli

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/agents/agent"
	"github.com/drillworks/drill/topology"
)

func newAgentCmd(g *globals) *cobra.Command {
	var planPath, node, dataDir, bindIP string
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Run one node of a plan (started by the runtimes, not by people)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := topology.LoadPlan(planPath)
			if err != nil {
				return usageErr(err)
			}
			if g.env.Getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(agentProcs(runtime.NumCPU(), len(plan.Topology.Nodes())))
			}
			log := slog.New(slog.NewJSONHandler(g.env.Stderr, nil))
			if err := agent.Run(cmd.Context(), agent.Options{Plan: plan, Node: node, DataDir: dataDir, BindIP: bindIP, Logger: log}); err != nil {
				return harnessErr(fmt.Errorf("node %s: %w", node, err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planPath, "plan", "", "plan file written by the runtime")
	cmd.Flags().StringVar(&node, "node", "", "node name")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (default <run dir>/data/<node>)")
	cmd.Flags().StringVar(&bindIP, "bind", "", "bind address (default: the node's planned address)")
	_ = cmd.MarkFlagRequired("plan")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}

// agentProcs is an agent's share of the machine's cores (GOMAXPROCS), at least one: every node
// of a plan runs on the same cores. An agent does little work, and with more threads than its
// share its idle threads spin and steal work from each other: at 110 agents on two cores that
// scheduling cost was a large part of all CPU time. GOMAXPROCS in the environment wins.
func agentProcs(cpus, nodes int) int {
	return max(1, cpus/max(nodes, 1))
}
