package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/topology"
)

// newCacheCmd is `drill cache`: what an operator needs to look into a running cluster's caches.
func newCacheCmd(g *globals) *cobra.Command {
	cache := &cobra.Command{Use: "cache", Short: "Look into the running cluster's redis caches"}
	cache.AddCommand(&cobra.Command{
		Use:   "password",
		Short: "Print the caches' redis password (derived from the run's secret) and where they listen",
		Long: `Print the redis password of the running cluster's cache nodes on standard output, and
each cache node's address on standard error, for redis-cli. The password is derived from the
run's secret in plan.json (0600): only the user who ran up can print it.`,
		Example: "  REDISCLI_AUTH=$(drill cache password --topology cache) redis-cli -h 127.79.1.40 -p 6379 INFO keyspace",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.attach()
			if err != nil {
				return err
			}
			nodes := c.plan.Topology.NodesOf(topology.RoleCache, "")
			if len(nodes) == 0 {
				return usageErr(fmt.Errorf("topology %s has no cache nodes", c.plan.Topology.Name))
			}
			addrs := map[string]string{}
			for _, n := range nodes {
				addr, err := c.rt.Endpoint(n.Name, topology.PortCache)
				if err != nil {
					return harnessErr(err)
				}
				addrs[n.Name] = addr
				if !g.asJSON() {
					fmt.Fprintf(g.env.Stderr, "%s\t%s\n", n.Name, addr)
				}
			}
			if g.asJSON() {
				return g.printJSON(map[string]any{"password": peerauth.CachePassword(c.plan.Secret), "caches": addrs})
			}
			fmt.Fprintln(g.env.Stdout, peerauth.CachePassword(c.plan.Secret))
			return nil
		},
	})
	return cache
}
