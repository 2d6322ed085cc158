package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/builtin"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/topology"
)

// Shell completion (cobra's `drill completion bash|zsh|fish`): drill names, fault kinds, --set
// keys and their values, budget names, built-in topologies, and the regions and nodes of the
// selected topology.

// settingValues are the values a --set key takes, where they form a list.
func settingValues(key string) []string {
	switch key {
	case "fencing":
		return []string{topology.FencingLease, topology.FencingNone}
	case "replication":
		return []string{topology.ReplicationAsync, topology.ReplicationSemiSync}
	case "read_your_writes", "cache_coalescing":
		return []string{"on", "off"}
	case "read_from":
		return []string{topology.ReadFromLocal, topology.ReadFromPrimary}
	case "cache_invalidation":
		return []string{topology.InvalidateAll, topology.InvalidateLocal}
	case "gossip_profile":
		return []string{topology.ProfileFast, topology.ProfileLAN, topology.ProfileWAN}
	}
	return nil
}

// completeSet completes --set: a key, then key=value for keys with a list of values.
func completeSet(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if key, _, found := strings.Cut(toComplete, "="); found {
		var out []string
		for _, v := range settingValues(key) {
			out = append(out, key+"="+v)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, k := range topology.SettingKeys() {
		out = append(out, k+"=")
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeBudget completes --budget with the budget names.
func completeBudget(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, b := range check.BudgetNames() {
		out = append(out, b+"=")
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeDrill completes a drill argument: the built-in drills (a file path completes too).
func completeDrill(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return builtin.Names(), cobra.ShellCompDirectiveDefault
}

// completeTopology completes --topology: the built-in topologies (a file path completes too).
func completeTopology(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return topology.BuiltinNames(), cobra.ShellCompDirectiveDefault
}

// completeInject completes `drill inject`: a fault kind, then its fields with the selected
// topology's regions and nodes.
func (g *globals) completeInject(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return fault.KindNames(), cobra.ShellCompDirectiveNoFileComp
	}
	t, err := g.loadTopology(nil)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	if key, _, found := strings.Cut(toComplete, "="); found {
		var values []string
		switch key {
		case "region", "regions":
			values = t.Sites()
		case "target":
			values = append([]string{fault.TargetPrimary}, topology.SortedNodeNames(t.Nodes())...)
		}
		out := make([]string, len(values))
		for i, v := range values {
			out[i] = key + "=" + v
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	fields := []string{"id=", "region=", "regions=", "target="}
	if d, ok := fault.Lookup(fault.Kind(args[0])); ok {
		for _, p := range d.Params() {
			fields = append(fields, p.Name+"=")
		}
	}
	return fields, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// registerCompletions wires the completions to the commands that take them.
func (g *globals) registerCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("topology", completeTopology)
	for _, c := range root.Commands() {
		if c.Flags().Lookup("set") != nil {
			_ = c.RegisterFlagCompletionFunc("set", completeSet)
		}
		if c.Flags().Lookup("budget") != nil {
			_ = c.RegisterFlagCompletionFunc("budget", completeBudget)
		}
		switch c.Name() {
		case "run":
			c.ValidArgsFunction = completeDrill
		case "inject":
			c.ValidArgsFunction = g.completeInject
		}
	}
}
