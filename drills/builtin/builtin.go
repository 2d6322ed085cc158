// Package builtin holds the drills that ship inside the drill binary.
package builtin

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/drillworks/drill/drills/spec"
)

//go:embed *.yaml
var files embed.FS

// Names lists the built-in drills, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

// Load parses a built-in drill by name.
func Load(name string) (*spec.Drill, error) {
	b, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in drill %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return spec.Parse("builtin:"+name+".yaml", b)
}
