package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/topology"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var sdFile string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show regions, nodes (role, state, epoch, LSN, lag, queue backlog) and the GeoDNS addresses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.attach()
			if err != nil {
				return err
			}
			st, err := c.obs.Status(cmd.Context())
			if err != nil {
				return harnessErr(err)
			}
			if sdFile != "" {
				if err := writePrometheusSD(sdFile, c); err != nil {
					return harnessErr(err)
				}
			}
			if asJSON || g.asJSON() {
				enc := json.NewEncoder(g.env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(g.env.Stdout, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&sdFile, "prometheus-sd", "", "also write the nodes' metrics endpoints to this file, as a Prometheus file_sd target list")
	return cmd
}

// sdGroup is one target group of a Prometheus file_sd file.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// writePrometheusSD writes the running cluster's metrics endpoints as a file_sd target list: one
// group per node, labelled with its job (drill_<role>), node, region, topology and run. Web,
// database, GeoDNS and WAN nodes serve /metrics on their own HTTP port; cache, queue and worker
// nodes, which have none, on their control port.
func writePrometheusSD(path string, c *cluster) error {
	ports := map[topology.Role]int{topology.RoleWeb: topology.PortWeb, topology.RoleDB: topology.PortDB, topology.RoleDNS: topology.PortDNSHTTP,
		topology.RoleWAN: topology.PortWANAPI, topology.RoleCache: topology.PortControl, topology.RoleQueue: topology.PortControl,
		topology.RoleWorker: topology.PortControl}
	groups := []sdGroup{}
	for _, n := range c.plan.Topology.Nodes() {
		port, ok := ports[n.Role]
		if !ok {
			continue
		}
		addr, err := c.rt.Endpoint(n.Name, port)
		if err != nil {
			return err
		}
		groups = append(groups, sdGroup{Targets: []string{addr}, Labels: map[string]string{
			"job": "drill_" + string(n.Role), "node": n.Name, "region": n.Region,
			"topology": c.plan.Topology.Name, "run_id": c.plan.RunID}})
	}
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return err
	}
	// Readable by a Prometheus running as another user: it names addresses, no secret.
	return renameio.WriteFile(path, append(b, '\n'), 0o644)
}

func printStatus(w io.Writer, st *observe.Status) {
	if st == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tHEALTHY\tCLIENT SUBNETS")
	for _, r := range st.Regions {
		fmt.Fprintf(tw, "%s\t%v\t%v\n", r.Name, r.Healthy, r.ClientSubnets)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tREGION\tROLE\tADDR\tSTATE\tPRIMARY\tEPOCH\tLSN\tLAG/BACKLOG")
	for _, n := range st.Nodes {
		region, primary, epoch, lsn, lag := n.Region, "", "", "", ""
		if region == "" {
			region = "-"
		}
		if n.Role == "db" {
			primary = fmt.Sprint(n.Primary)
			epoch, lsn, lag = fmt.Sprint(n.Epoch), fmt.Sprint(n.LSN), fmt.Sprintf("%dms", n.LagMS)
		}
		if n.Role == topology.RoleQueue && n.State == observe.StateAlive {
			lag = fmt.Sprintf("%d jobs", n.Backlog) // published, not yet acknowledged by a worker
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, region, n.Role, n.Addr, n.State, primary, epoch, lsn, lag)
	}
	tw.Flush()
	if len(st.DNS) > 0 {
		fmt.Fprintln(w, "\nGeoDNS (see where users go, and why):")
		for _, d := range st.DNS {
			fmt.Fprintf(w, "  %-8s %s\n", d.Region, d.Dig)
		}
	}
}
