package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/drills/gameday"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// newSchemaCmd is `drill schema drill|topology|plan|gameday`: the JSON Schemas the repository
// checks in (drills/spec/schema, topology/schema, drills/gameday/schema), printed from the code
// that generates them.
func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:       "schema drill|topology|plan|gameday",
		Short:     "Print the JSON Schema of drill files, topology files, run plans or game-day plans (for editors)",
		Example:   "  drill schema drill > drill.schema.json",
		ValidArgs: []string{"drill", "topology", "plan", "gameday"},
		Args:      cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			gen := map[string]func() ([]byte, error){"drill": spec.JSONSchema, "topology": topology.TopologySchema, "plan": topology.PlanSchema,
				"gameday": gameday.JSONSchema}[args[0]]
			if gen == nil {
				return usageErr(fmt.Errorf("schema %q: drill, topology, plan or gameday", args[0]))
			}
			b, err := gen()
			if err != nil {
				return harnessErr(err)
			}
			_, err = fmt.Fprintln(g.env.Stdout, string(b))
			return err
		},
	}
}
