package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose/observe"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show regions, nodes (role, state, epoch, LSN, lag) and the GeoDNS addresses",
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
			if asJSON {
				enc := json.NewEncoder(g.env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(g.env.Stdout, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
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
	fmt.Fprintln(tw, "NODE\tREGION\tROLE\tADDR\tSTATE\tPRIMARY\tEPOCH\tLSN\tLAG")
	for _, n := range st.Nodes {
		region, primary, epoch, lsn, lag := n.Region, "", "", "", ""
		if region == "" {
			region = "-"
		}
		if n.Role == "db" {
			primary = fmt.Sprint(n.Primary)
			epoch, lsn, lag = fmt.Sprint(n.Epoch), fmt.Sprint(n.LSN), fmt.Sprintf("%dms", n.LagMS)
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
