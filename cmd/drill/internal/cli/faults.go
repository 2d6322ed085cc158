package cli

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/fault"
)

// Operator commands on a running cluster: inject a fault, heal it, list what is active. Each
// opens the run's fault ledger (locked against a running drill) through the same injector drills
// use, so `drill recover` and the residue check cover their faults too.

// openFaults attaches to the running cluster and opens its injector; close releases the ledger.
func (g *globals) openFaults() (*compose.Cluster, error) {
	c, err := g.attach()
	if err != nil {
		return nil, err
	}
	sys, err := compose.NewCluster(c.plan, c.rt, g.logger())
	if err != nil {
		return nil, harnessErr(err)
	}
	return sys, nil
}

// faultFromArgs builds a fault from a kind and key=value fields, named as in a drill file's
// inject step: id, region, regions (comma-separated), target (a node, or primary), and the kind's
// own parameters.
func faultFromArgs(kind string, fields []string) (fault.Fault, error) {
	f := fault.Fault{Kind: fault.Kind(kind), Params: fault.Params{}}
	if _, ok := fault.Lookup(f.Kind); !ok {
		return f, fmt.Errorf("unknown fault %q (valid: %s)", kind, strings.Join(fault.KindNames(), ", "))
	}
	for _, kv := range fields {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return f, fmt.Errorf("%q: expected key=value, e.g. region=us-east", kv)
		}
		switch k {
		case "id":
			f.ID = v
		case "region":
			f.Region = v
		case "regions":
			f.Regions = strings.Split(v, ",")
		case "target":
			f.Node = v
		case "fault", "kind":
			return f, fmt.Errorf("%q: the kind is the first argument", kv)
		default:
			f.Params[k] = v
		}
	}
	if len(f.Params) == 0 {
		f.Params = nil
	}
	if f.ID == "" {
		f.ID = f.DerivedID()
	}
	return f, nil
}

func newInjectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inject FAULT [key=value ...]",
		Short: "Inject a fault into the running cluster and leave it in force (drill heal undoes it)",
		Long: `Injects one fault of any registered kind into the running cluster, with the fields a drill
file's inject step takes, as key=value: id, region, regions (comma-separated), target (a node, or
primary), and the kind's parameters. The fault stays in force after the command returns; it is in
the fault ledger, so 'drill heal', 'drill recover' and 'drill faults' see it. A flapping fault
needs a running drill to switch it, so it is refused here.`,
		Example: `  drill inject blackhole region=us-east
  drill inject latency regions=us-east,eu-west latency=150ms jitter=20ms id=slow-wan
  drill inject kill target=primary`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := faultFromArgs(args[0], args[1:])
			if err != nil {
				return usageErr(err)
			}
			if d, _ := fault.Lookup(f.Kind); d != nil {
				if _, periodic := d.(fault.Periodic); periodic {
					return usageErr(fmt.Errorf("%s is switched on and off by the drill that injects it: use it in a drill file", f.Kind))
				}
			}
			sys, err := g.openFaults()
			if err != nil {
				return err
			}
			defer sys.Close()
			check := f.Clone()
			if err := fault.Validate(&check, sys.Plan().Topology); err != nil {
				return usageErr(err)
			}
			if err := sys.Apply(cmd.Context(), f); err != nil {
				return harnessErr(err)
			}
			for _, a := range sys.Active() {
				if a.ID == f.ID && g.asJSON() {
					return g.printJSON(activeFault{ID: a.ID, Kind: a.Kind, Target: a.Target(), Params: a.Params, Resolved: a.Resolved})
				}
				if a.ID == f.ID {
					on := a.Target()
					if len(a.Resolved) > 0 {
						on = strings.Join(a.Resolved, ", ")
					}
					fmt.Fprintf(g.env.Stdout, "injected %s (%s) on %s; undo with: drill heal %s\n", a.ID, a.Kind, on, a.ID)
					return nil
				}
			}
			if g.asJSON() {
				return g.printJSON(activeFault{ID: f.ID, Kind: f.Kind, Target: f.Target(), Params: f.Params})
			}
			fmt.Fprintf(g.env.Stdout, "injected %s (%s): over at once, nothing to heal\n", f.ID, f.Kind)
			return nil
		},
	}
}

func newHealCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "heal ID|--all",
		Short:   "Undo an active fault of the running cluster (or every one) and check nothing is left",
		Example: "  drill heal blackhole:us-east\n  drill heal --all",
		Args: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) || len(args) > 1 {
				return usageErr(errors.New("give one fault id, or --all"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sys, err := g.openFaults()
			if err != nil {
				return err
			}
			defer sys.Close()
			active := sys.Active()
			var healed []string
			if all {
				if err := sys.UndoAll(cmd.Context()); err != nil {
					return harnessErr(err)
				}
				for i := len(active) - 1; i >= 0; i-- {
					healed = append(healed, active[i].ID)
				}
			} else {
				id := args[0]
				known := make([]string, len(active))
				for i, a := range active {
					known[i] = a.ID
				}
				if !slices.Contains(known, id) {
					return usageErr(fmt.Errorf("no active fault %q (active: %s)", id, orNone(strings.Join(known, ", "))))
				}
				if err := sys.Undo(cmd.Context(), id); err != nil {
					return harnessErr(err)
				}
				healed = append(healed, id)
			}
			result := map[string]any{"healed": healed, "still_active": len(sys.Active())}
			if !g.asJSON() {
				for _, id := range healed {
					fmt.Fprintf(g.env.Stdout, "healed %s\n", id)
				}
			}
			if len(sys.Active()) > 0 {
				// Others are still in force: their traces are expected.
				if g.asJSON() {
					return g.printJSON(result)
				}
				return nil
			}
			for _, r := range sys.Residue(cmd.Context()) {
				if !r.Clean {
					return harnessErr(fmt.Errorf("residue left after heal: %s %s", r.What, r.Detail))
				}
			}
			result["clean"] = true
			if g.asJSON() {
				return g.printJSON(result)
			}
			fmt.Fprintln(g.env.Stdout, "drill: no fault is active and nothing drill injected is left")
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "undo every active fault, newest first")
	return cmd
}

// activeFault is one line of `drill faults`.
type activeFault struct {
	ID       string            `json:"id"`
	Kind     fault.Kind        `json:"kind"`
	Target   string            `json:"target"`
	Params   map[string]string `json:"params,omitempty"`
	Resolved []string          `json:"resolved,omitempty"`
}

func newFaultsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "faults",
		Short: "List the faults in force in the running cluster (from its fault ledger)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sys, err := g.openFaults()
			if err != nil {
				return err
			}
			defer sys.Close()
			list := []activeFault{}
			for _, a := range sys.Active() {
				list = append(list, activeFault{ID: a.ID, Kind: a.Kind, Target: a.Target(), Params: a.Params, Resolved: a.Resolved})
			}
			if g.asJSON() {
				return g.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.env.Stdout, "no fault is active")
				return nil
			}
			for _, a := range list {
				keys := make([]string, 0, len(a.Params))
				for k := range a.Params {
					keys = append(keys, k+"="+a.Params[k])
				}
				sort.Strings(keys)
				fmt.Fprintf(g.env.Stdout, "%-28s %-18s %-20s %s %s\n", a.ID, a.Kind, a.Target, strings.Join(keys, " "), strings.Join(a.Resolved, ","))
			}
			return nil
		},
	}
	return cmd
}
