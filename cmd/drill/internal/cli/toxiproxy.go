package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/agents/agent"
	"github.com/drillworks/drill/agents/wan"
	"github.com/drillworks/drill/topology"
)

// newToxiproxyCmd runs the embedded toxiproxy server: a plan's WAN node (what the Docker
// runtime's WAN container runs), or a plain toxiproxy server.
func newToxiproxyCmd(g *globals) *cobra.Command {
	var planPath, dataDir, bindIP, listen, config string
	cmd := &cobra.Command{
		Use:   "toxiproxy",
		Short: "Run the embedded toxiproxy server: a plan's WAN node (--plan), or plain toxiproxy (--listen, --config)",
		Long: "With --plan, runs the plan's WAN node: every cross-site link as a proxy with the topology's latency, " +
			"the API behind the plan's secret. Without it, a plain toxiproxy server like toxiproxy-server: an " +
			"unauthenticated API on --listen, proxies from --config (toxiproxy's JSON list) if given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewJSONHandler(g.env.Stderr, nil))
			if planPath == "" {
				if err := wan.ServeStandalone(cmd.Context(), wan.StandaloneConfig{APIListen: listen, ConfigFile: config, Logger: log}); err != nil {
					return harnessErr(err)
				}
				return nil
			}
			if cmd.Flags().Changed("listen") || config != "" {
				return usageErr(fmt.Errorf("--listen and --config are for a plain toxiproxy; with --plan the plan says what to serve"))
			}
			plan, err := topology.LoadPlan(planPath)
			if err != nil {
				return usageErr(err)
			}
			node := ""
			for _, n := range plan.Topology.Nodes() {
				if n.Role == topology.RoleWAN {
					node = n.Name
				}
			}
			if node == "" {
				return usageErr(fmt.Errorf("%s: the plan has no WAN node", planPath))
			}
			if err := agent.Run(cmd.Context(), agent.Options{Plan: plan, Node: node, DataDir: dataDir, BindIP: bindIP, Logger: log}); err != nil {
				return harnessErr(fmt.Errorf("WAN node: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planPath, "plan", "", "plan file written by a runtime: serve its WAN node")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "with --plan: data directory (default <run dir>/data/wan)")
	cmd.Flags().StringVar(&bindIP, "bind", "", "with --plan: bind address (default: the WAN node's planned address)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8474", "without --plan: where the toxiproxy API listens")
	cmd.Flags().StringVar(&config, "config", "", "without --plan: toxiproxy JSON proxy list to create at start")
	return cmd
}
