package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose/docker"
)

func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the node image of the docker runtime",
	}
	var binary string
	build := &cobra.Command{
		Use:   "build",
		Short: "Build the node image from the drill binary (no registry; rebuilt only when the binary changes)",
		Long: `Imports a one-file image holding a static drill binary, tagged with the binary's content hash
(` + docker.ImageRepo + `:<sha256 prefix>). If this drill is dynamically linked, a static one is built once with
CGO_ENABLED=0 from the module source in the working directory (or pass --agent-binary).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, runDir, err := g.selected()
			if err != nil {
				return err
			}
			rt, err := docker.New(docker.Config{RunDir: runDir, Binary: binary, Logger: g.logger()})
			if err != nil {
				return harnessErr(err)
			}
			start := time.Now()
			ref, built, err := rt.Image(cmd.Context())
			if err != nil {
				return harnessErr(err)
			}
			what := "already there"
			if built {
				what = "built"
			}
			fmt.Fprintf(g.env.Stdout, "%s (%s in %s)\n", ref, what, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	build.Flags().StringVar(&binary, "agent-binary", "", "static drill binary to put in the image (default: this one)")
	cmd.AddCommand(build)
	return cmd
}
