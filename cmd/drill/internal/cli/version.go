package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3"; otherwise the module
// build info says what was built.
var Version = ""

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print drill's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, rev := Version, ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if v == "" {
					v = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = s.Value
					}
				}
			}
			if v == "" {
				v = "(devel)"
			}
			if g.asJSON() {
				return g.printJSON(map[string]string{"version": v, "revision": rev})
			}
			fmt.Fprintf(g.env.Stdout, "drill %s", v)
			if rev != "" {
				fmt.Fprintf(g.env.Stdout, " (%s)", rev)
			}
			fmt.Fprintln(g.env.Stdout)
			return nil
		},
	}
}
