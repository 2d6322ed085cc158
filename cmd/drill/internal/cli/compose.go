package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose/docker"
)

func newComposeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "compose", Short: "Docker Compose files for a topology"}
	var out, binary string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write a compose file (and the plan it mounts) for the topology, for `docker compose up`",
		Long: `Writes DIR/compose.yaml and DIR/plan.json: the same image, networks, static addresses, labels
and agent command as the docker runtime. The image is the one ` + "`drill image build`" + ` makes from
this binary (its content hash is the tag); build it first. plan.json holds the gossip key and the
control secret of this export.`,
		Example: "  drill image build && drill compose export --out ./regions && (cd regions && docker compose up -d)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.loadTopology(nil)
			if err != nil {
				return err
			}
			bin := binary
			if bin == "" {
				if bin, err = os.Executable(); err != nil {
					return harnessErr(err)
				}
			}
			spec, err := docker.ImageSpecFor(t, bin)
			if err != nil {
				return harnessErr(fmt.Errorf("compose export: %w", err))
			}
			im, err := spec.Image()
			if err != nil {
				return harnessErr(fmt.Errorf("compose export: %w", err))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return harnessErr(err)
			}
			abs, _ := filepath.Abs(out)
			plan, err := docker.NewPlan(t, abs)
			if err != nil {
				return harnessErr(err)
			}
			if err := plan.Save(filepath.Join(out, "plan.json")); err != nil {
				return harnessErr(err)
			}
			for _, n := range plan.Topology.Nodes() {
				if err := os.MkdirAll(filepath.Join(out, "data", n.Name), 0o700); err != nil {
					return harnessErr(err)
				}
			}
			f, err := os.Create(filepath.Join(out, "compose.yaml"))
			if err != nil {
				return harnessErr(err)
			}
			defer f.Close()
			if err := docker.ExportCompose(f, plan, im.Ref()); err != nil {
				return harnessErr(err)
			}
			composeFile, planFile := filepath.Join(out, "compose.yaml"), filepath.Join(out, "plan.json")
			if g.asJSON() {
				return g.printJSON(struct {
					ComposeFile string `json:"compose_file"`
					PlanFile    string `json:"plan_file"`
					Image       string `json:"image"`
				}{composeFile, planFile, im.Ref()})
			}
			fmt.Fprintf(g.env.Stdout, "wrote %s and %s (image %s)\n", composeFile, planFile, im.Ref())
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "drill-compose", "directory to write compose.yaml, plan.json and data/ into")
	export.Flags().StringVar(&binary, "agent-binary", "", "drill binary the image holds (default: this one)")
	cmd.AddCommand(export)
	return cmd
}
