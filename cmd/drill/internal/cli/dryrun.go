package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// dryRun prints what `drill run` would do with a resolved drill: the topology and its design
// after every override, the budgets, the workload and each step, with the nodes each fault would
// reach. Nothing is started.
func dryRun(w io.Writer, d *spec.Drill, t *topology.Topology) error {
	plan, err := topology.NewPlan(t, topology.PlanOptions{})
	if err != nil {
		return harnessErr(err)
	}
	fmt.Fprintf(w, "drill %s (%s), dry run: nothing is started\n", d.Name, d.Source)
	fmt.Fprintf(w, "topology %s: %d regions (%s), %d nodes\n", t.Name, len(t.Regions), strings.Join(t.RegionNames(), ", "), len(t.Nodes()))
	ds := t.Design
	fmt.Fprintf(w, "design: replication=%s fencing=%s read_your_writes=%v read_from=%s failover_after=%s lease_duration=%s",
		ds.Replication, ds.Fencing, ds.ReadYourWrites, ds.ReadFrom, ds.FailoverAfter.D(), ds.LeaseDuration.D())
	if t.HasCache() {
		fmt.Fprintf(w, " cache_ttl=%s cache_coalescing=%v cache_invalidation=%s", ds.CacheTTL.D(), ds.CacheCoalescing, ds.CacheInvalidation)
	}
	fmt.Fprintln(w)
	names := make([]string, 0, len(d.Budgets))
	for n := range d.Budgets {
		names = append(names, n)
	}
	sort.Strings(names)
	budgets := make([]string, len(names))
	for i, n := range names {
		budgets[i] = fmt.Sprintf("%s=%g", n, d.Budgets[n])
	}
	fmt.Fprintf(w, "budgets: %s\n", orNone(strings.Join(budgets, " ")))
	wl := d.Workload
	fmt.Fprintf(w, "workload: %d clients per region, %g writes/s each, read_after_write=%v read_others=%v",
		wl.ClientsPerRegion, wl.WriteRate, wl.ReadAfterWrite, wl.ReadOthers)
	if wl.HotKeys > 0 {
		fmt.Fprintf(w, " hot_keys=%d reads_per_write=%d", wl.HotKeys, wl.ReadsPerWrite)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "steps:")
	env := fault.Env{Plan: plan}
	for i, st := range d.Steps {
		line := fmt.Sprintf("  %d. %s", i+1, st)
		if st.Kind == spec.StepInject {
			f := st.Inject.Fault
			if desc := fault.Describe(f); desc != "" {
				line += " (" + desc + ")"
			}
			if dsc, ok := fault.Lookup(f.Kind); ok {
				if nodes, err := dsc.Resolve(context.Background(), f, env); err != nil {
					line += " -> nodes resolved when applied (" + err.Error() + ")"
				} else if len(nodes) > 0 {
					line += " -> " + strings.Join(nodes, ", ")
				}
			}
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
