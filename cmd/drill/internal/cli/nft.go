package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose/docker/nft"
)

// newNftCmd is what the Docker runtime's helper containers run inside a node's network namespace
// (NetworkMode container:<node>, NET_ADMIN): it changes drill's nftables tables there and nothing
// else. Not for people.
func newNftCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "nft",
		Short:  "Change drill's nftables tables in this network namespace (run by the Docker runtime's helpers)",
		Hidden: true,
	}
	var spec string
	apply := &cobra.Command{
		Use:  "apply",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var s nft.Spec
			if err := json.Unmarshal([]byte(spec), &s); err != nil {
				return usageErr(fmt.Errorf("--spec: %w", err))
			}
			if err := nft.Apply(s); err != nil {
				return harnessErr(err)
			}
			return nil
		},
	}
	apply.Flags().StringVar(&spec, "spec", "", "the table to install, as JSON (nft.Spec)")
	_ = apply.MarkFlagRequired("spec")

	var table string
	del := &cobra.Command{
		Use:  "delete",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nft.Delete(table); err != nil {
				return harnessErr(err)
			}
			return nil
		},
	}
	del.Flags().StringVar(&table, "table", "", "table to delete")
	_ = del.MarkFlagRequired("table")

	prefix := nft.TablePrefix
	list := &cobra.Command{
		Use:  "list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := nft.List(prefix)
			if err != nil {
				return harnessErr(err)
			}
			for _, n := range names {
				fmt.Fprintln(g.env.Stdout, n)
			}
			return nil
		},
	}
	flush := &cobra.Command{
		Use:  "flush",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := nft.Flush(prefix)
			for _, n := range names {
				fmt.Fprintln(g.env.Stdout, n)
			}
			if err != nil {
				return harnessErr(err)
			}
			return nil
		},
	}
	for _, c := range []*cobra.Command{list, flush} {
		c.Flags().StringVar(&prefix, "prefix", nft.TablePrefix, "table name prefix (must start with "+nft.TablePrefix+")")
	}
	cmd.AddCommand(apply, del, list, flush)
	return cmd
}
