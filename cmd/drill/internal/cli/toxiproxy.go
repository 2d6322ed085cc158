package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/agents/agent"
	"github.com/drillworks/drill/agents/wan"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/yamlpos"
)

// newToxiproxyCmd runs the embedded toxiproxy server: a plan's WAN node (what the Docker
// runtime's WAN container runs), or a plain toxiproxy server.
func newToxiproxyCmd(g *globals) *cobra.Command {
	var planPath, dataDir, bindIP, listen, config, tokenFile string
	var allowPublic bool
	cmd := &cobra.Command{
		Use:   "toxiproxy",
		Short: "Run the embedded toxiproxy server: a plan's WAN node (--plan), or plain toxiproxy (--listen, --config)",
		Long: "With --plan, runs the plan's WAN node: every cross-site link as a proxy with the topology's latency, " +
			"the API behind the plan's secret. Without it, a plain toxiproxy server like toxiproxy-server: the API on " +
			"--listen (loopback unless --allow-public) behind a bearer token (read from --token-file, or made up and " +
			"printed on stderr), proxies from --config (toxiproxy's JSON list) if given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewJSONHandler(g.env.Stderr, nil))
			if planPath == "" {
				if err := wan.CheckLoopback(listen, allowPublic); err != nil {
					return usageErr(err)
				}
				token, err := readToken(tokenFile)
				if err != nil {
					return usageErr(err)
				}
				if tokenFile == "" {
					fmt.Fprintf(g.env.Stderr, "drill toxiproxy: API on %s; every call needs the header\n  Authorization: Bearer %s\n", listen, token)
				}
				cfg := wan.StandaloneConfig{APIListen: listen, ConfigFile: config, Token: token, AllowPublic: allowPublic, Logger: log}
				if err := wan.ServeStandalone(cmd.Context(), cfg); err != nil {
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
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "without --plan: file holding the API's bearer token (default: a new token, printed)")
	cmd.Flags().BoolVar(&allowPublic, "allow-public", false, "without --plan: allow a --listen address beyond loopback")
	return cmd
}

// readToken reads a bearer token from a file (first line, at most 4 KiB), or makes a random one.
func readToken(path string) (string, error) {
	if path == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	}
	b, rerr := yamlpos.ReadFile(path, "token file", 4<<10)
	if rerr != nil {
		return "", fmt.Errorf("--token-file: %w", rerr)
	}
	token := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if len(token) < 16 {
		return "", fmt.Errorf("--token-file %s: the token must have at least 16 characters", path)
	}
	return token, nil
}
