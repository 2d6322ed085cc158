package cli

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/yamlpos"
)

// fileKind is what a file drill reads holds, told by its content.
type fileKind string

const (
	kindDrill    fileKind = "drill"
	kindTopology fileKind = "topology"
	kindGameday  fileKind = "game-day plan"
	kindPlan     fileKind = "plan"
)

// newValidateCmd is `drill validate FILE`: a drill, topology, game-day plan or run plan checked by
// the rules the commands that read it apply, without starting anything.
func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a drill, topology, game-day plan or run plan file (told apart by content); nothing is started",
		Long: `Checks FILE by the rules of the command that reads it: a drill file (it has steps) is parsed
and resolved against its topology (--topology, its own topology:, or the default); a topology
(regions), a game-day plan (drills) and a run plan (plan.json: run_id) are parsed and validated.
Exit 0 when valid, 2 with every problem as FILE:LINE:COL: FIELD: MESSAGE otherwise.`,
		Example: "  drill validate my-drill.yaml\n  drill validate regions.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			kind, err := sniff(path)
			if err != nil {
				return usageErr(err)
			}
			name := ""
			switch kind {
			case kindDrill:
				d, err := spec.Load(path)
				if err != nil {
					return usageErr(err)
				}
				base, err := g.loadTopologyOr(d.Topology, nil)
				if err != nil {
					return err
				}
				if _, err := d.Resolve(base); err != nil {
					return usageErr(err)
				}
				name = d.Name + " (on topology " + base.Name + ")"
			case kindTopology:
				t, err := topology.Load(path)
				if err != nil {
					return usageErr(err)
				}
				name = t.Name
			case kindGameday:
				p, err := g.loadPlan(path)
				if err != nil {
					return err
				}
				name = p.Name
			case kindPlan:
				p, err := topology.LoadPlan(path)
				if err != nil {
					return usageErr(err)
				}
				if err := p.Topology.Validate(); err != nil {
					return usageErr(fmt.Errorf("%s: its topology: %w", path, err))
				}
				name = p.RunID
			}
			if g.asJSON() {
				return g.printJSON(map[string]any{"file": path, "kind": kind, "name": name, "valid": true})
			}
			fmt.Fprintf(g.env.Stdout, "%s: valid %s %s\n", path, kind, name)
			return nil
		},
	}
}

// sniff tells a file's kind by its top-level keys.
func sniff(path string) (fileKind, error) {
	b, rerr := yamlpos.ReadFile(path, "file", yamlpos.MaxInputBytes)
	if rerr != nil {
		return "", rerr
	}
	var top map[string]any
	if err := yaml.Unmarshal(b, &top); err != nil {
		// The decoder's message quotes the file at length: its first line says enough.
		first, _, _ := strings.Cut(err.Error(), "\n")
		return "", fmt.Errorf("%s: not a YAML or JSON mapping: %s", path, first)
	}
	switch {
	case top["run_id"] != nil:
		return kindPlan, nil
	case top["steps"] != nil:
		return kindDrill, nil
	case top["drills"] != nil:
		return kindGameday, nil
	case top["regions"] != nil:
		return kindTopology, nil
	}
	return "", fmt.Errorf("%s: cannot tell what it is: a drill has steps, a topology regions, a game-day plan drills, a run plan run_id", path)
}
