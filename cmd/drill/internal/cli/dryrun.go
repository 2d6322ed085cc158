package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// dryRunPlan is what `drill run --dry-run` resolves (its -o json form): the drill, the topology
// and its design after every override, the budgets, the workload and each step, with the nodes
// each fault would reach.
type dryRunPlan struct {
	Drill    string             `json:"drill"`
	Source   string             `json:"source"`
	Topology string             `json:"topology"`
	Regions  []string           `json:"regions"`
	Nodes    int                `json:"nodes"`
	Design   topology.Design    `json:"design"`
	Budgets  map[string]float64 `json:"budgets"`
	Workload dryRunWorkload     `json:"workload"`
	Steps    []dryRunStep       `json:"steps"`
}

// dryRunWorkload is the resolved workload.
type dryRunWorkload struct {
	ClientsPerRegion int     `json:"clients_per_region"`
	WriteRate        float64 `json:"write_rate"`
	ReadAfterWrite   bool    `json:"read_after_write"`
	ReadOthers       bool    `json:"read_others"`
	HotKeys          int     `json:"hot_keys,omitempty"`
	ReadsPerWrite    int     `json:"reads_per_write,omitempty"`
}

// dryRunStep is one step as the drill file resolves it.
type dryRunStep struct {
	// Step is the step as the summary prints it (e.g. "inject blackhole:us-east").
	Step string `json:"step"`
	// Fault describes an inject step's fault; Nodes are the nodes it reaches now, or
	// ResolvedWhenApplied says why they are known only when it is applied (a target: primary).
	Fault               string   `json:"fault,omitempty"`
	Nodes               []string `json:"nodes,omitempty"`
	ResolvedWhenApplied string   `json:"resolved_when_applied,omitempty"`
}

// resolveDryRun resolves a drill against its topology's plan; nothing is started.
func resolveDryRun(d *spec.Drill, t *topology.Topology) (dryRunPlan, error) {
	plan, err := topology.NewPlan(t, topology.PlanOptions{})
	if err != nil {
		return dryRunPlan{}, harnessErr(err)
	}
	wl := d.Workload
	p := dryRunPlan{Drill: d.Name, Source: d.Source, Topology: t.Name, Regions: t.RegionNames(), Nodes: len(t.Nodes()),
		Design: t.Design, Budgets: d.Budgets,
		Workload: dryRunWorkload{ClientsPerRegion: wl.ClientsPerRegion, WriteRate: wl.WriteRate, ReadAfterWrite: wl.ReadAfterWrite,
			ReadOthers: wl.ReadOthers, HotKeys: wl.HotKeys, ReadsPerWrite: wl.ReadsPerWrite}}
	if p.Budgets == nil {
		p.Budgets = map[string]float64{}
	}
	env := fault.Env{Plan: plan}
	for _, st := range d.Steps {
		step := dryRunStep{Step: st.String()}
		if st.Kind == spec.StepInject {
			f := st.Inject.Fault
			step.Fault = fault.Describe(f)
			if dsc, ok := fault.Lookup(f.Kind); ok {
				if nodes, err := dsc.Resolve(context.Background(), f, env); err != nil {
					step.ResolvedWhenApplied = err.Error()
				} else {
					step.Nodes = nodes
				}
			}
		}
		p.Steps = append(p.Steps, step)
	}
	return p, nil
}

// dryRun prints what `drill run` would do with a resolved drill (resolveDryRun), as text or, with
// -o json, as JSON. Nothing is started.
func (g *globals) dryRun(d *spec.Drill, t *topology.Topology) error {
	p, err := resolveDryRun(d, t)
	if err != nil {
		return err
	}
	if g.asJSON() {
		return g.printJSON(p)
	}
	w := g.env.Stdout
	fmt.Fprintf(w, "drill %s (%s), dry run: nothing is started\n", p.Drill, p.Source)
	fmt.Fprintf(w, "topology %s: %d regions (%s), %d nodes\n", p.Topology, len(p.Regions), strings.Join(p.Regions, ", "), p.Nodes)
	ds := p.Design
	fmt.Fprintf(w, "design: replication=%s fencing=%s read_your_writes=%v read_from=%s failover_after=%s lease_duration=%s",
		ds.Replication, ds.Fencing, ds.ReadYourWrites, ds.ReadFrom, ds.FailoverAfter.D(), ds.LeaseDuration.D())
	if t.HasCache() {
		fmt.Fprintf(w, " cache_ttl=%s cache_coalescing=%v cache_invalidation=%s", ds.CacheTTL.D(), ds.CacheCoalescing, ds.CacheInvalidation)
	}
	fmt.Fprintln(w)
	names := make([]string, 0, len(p.Budgets))
	for n := range p.Budgets {
		names = append(names, n)
	}
	sort.Strings(names)
	budgets := make([]string, len(names))
	for i, n := range names {
		budgets[i] = fmt.Sprintf("%s=%g", n, p.Budgets[n])
	}
	fmt.Fprintf(w, "budgets: %s\n", orNone(strings.Join(budgets, " ")))
	wl := p.Workload
	fmt.Fprintf(w, "workload: %d clients per region, %g writes/s each, read_after_write=%v read_others=%v",
		wl.ClientsPerRegion, wl.WriteRate, wl.ReadAfterWrite, wl.ReadOthers)
	if wl.HotKeys > 0 {
		fmt.Fprintf(w, " hot_keys=%d reads_per_write=%d", wl.HotKeys, wl.ReadsPerWrite)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "steps:")
	for i, st := range p.Steps {
		line := fmt.Sprintf("  %d. %s", i+1, st.Step)
		if st.Fault != "" {
			line += " (" + st.Fault + ")"
		}
		switch {
		case st.ResolvedWhenApplied != "":
			line += " -> nodes resolved when applied (" + st.ResolvedWhenApplied + ")"
		case len(st.Nodes) > 0:
			line += " -> " + strings.Join(st.Nodes, ", ")
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
