package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// topologyImager is a runtime whose node image depends on the topology (the docker runtime's
// TopologyImage).
type topologyImager interface {
	TopologyImage(ctx context.Context, t *topology.Topology) (ref string, built bool, err error)
}

func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the node image of a runtime that runs nodes from an image (docker)",
	}
	var binary, name string
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the node image from the drill binary (no registry; rebuilt only when the binary changes)",
		Long: `Makes the node image of a runtime whose nodes run from an image (by default the first such
registered runtime: docker). The docker runtime imports a root filesystem holding this drill binary
(and, for a dynamically linked one, its loader and libraries), tagged with its content hash; for a
topology with cache nodes, also this host's redis-server with its libraries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, runDir, err := g.selected()
			if err != nil {
				return err
			}
			if name == "" {
				for _, d := range compose.Runtimes() {
					if d.Capabilities.NodeImages {
						name = d.Name
						break
					}
				}
			}
			rt, _, err := g.newRuntime(name, runDir, binary)
			if err != nil {
				return err
			}
			ib, ok := rt.(runtime.ImageBuilder)
			if !ok || !rt.Capabilities().NodeImages {
				return usageErr(errors.New("the " + rt.Name() + " runtime runs no node image"))
			}
			start := time.Now()
			image := ib.Image
			// A runtime that packs per topology (docker: redis-server for cache nodes) builds
			// the image the selected topology's nodes run.
			if ti, ok := rt.(topologyImager); ok {
				image = func(ctx context.Context) (string, bool, error) { return ti.TopologyImage(ctx, t) }
			}
			ref, built, err := image(cmd.Context())
			if err != nil {
				return harnessErr(err)
			}
			took := time.Since(start)
			if g.asJSON() {
				return g.printJSON(struct {
					Ref   string  `json:"ref"`
					Built bool    `json:"built"`
					TookS float64 `json:"took_s"`
				}{ref, built, took.Seconds()})
			}
			what := "already there"
			if built {
				what = "built"
			}
			fmt.Fprintf(g.env.Stdout, "%s (%s in %s)\n", ref, what, took.Round(time.Millisecond))
			return nil
		},
	}
	build.Flags().StringVar(&binary, "agent-binary", "", "drill binary to put in the image (default: this one)")
	build.Flags().StringVar(&name, "runtime", "", "runtime whose image to build (default: the first that runs images)")
	cmd.AddCommand(build)
	return cmd
}
