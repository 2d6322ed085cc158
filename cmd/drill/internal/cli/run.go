package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/drills/builtin"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/runner"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/drills/verdict"
	"github.com/drillworks/drill/topology"
)

type runFlags struct {
	up        upFlags
	budgets   []string
	reportDir string
	seed      int64
	// dryRun prints the resolved drill and starts nothing.
	dryRun bool
	// keep leaves the cluster up after the run.
	keep bool
}

// teardownTimeout bounds taking a cluster down after a run. Docker removes containers one at a
// time (see compose/docker), each in under a second when the engine is idle but several when it
// is busy with other clusters; a tear-down cut short leaves containers for `drill down`.
const teardownTimeout = 2 * time.Minute

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run DRILL",
		Short: "Bring the regions up, run a drill (built-in name or YAML file), tear down, and report",
		Long: `Runs one drill: brings the topology up, runs the drill's steps with simulated users while it
injects faults, always undoes the faults, tears the cluster down and writes report.json, junit.xml,
report.html and history.jsonl to the report directory.

Exit codes: 0 every check passed, 1 a check failed, 2 bad usage or drill file, 3 harness error or
aborted run.`,
		Example: `  drill run region-outage
  drill run region-partition --set fencing=none      # the known-bad design: must fail
  drill run my-drill.yaml --seed 7 --report-dir out/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return g.runDrill(cmd.Context(), args[0], f) },
	}
	f.up.register(cmd, "override a topology design setting, key=value (wins over the drill's settings)")
	cmd.Flags().StringArrayVar(&f.budgets, "budget", nil, "override a budget, name=value (e.g. lost_acked_writes=0)")
	cmd.Flags().StringVar(&f.reportDir, "report-dir", "", "where the report goes (default ./drill-reports/<time>-<drill>)")
	cmd.Flags().Int64Var(&f.seed, "seed", 0, "random seed of the workload (default: from the clock; printed in the report)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the resolved drill (topology, settings, budgets, workload, steps and their targets) and start nothing")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "leave the cluster up after the run (its faults are still undone), to look at it; `drill down` takes it down")
	return cmd
}

// loadDrill reads a built-in drill by name, or a drill file by path.
func loadDrill(arg string) (*spec.Drill, error) {
	if strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") || strings.ContainsRune(arg, os.PathSeparator) {
		d, err := spec.Load(arg)
		if err != nil {
			return nil, usageErr(err)
		}
		return d, nil
	}
	d, err := builtin.Load(arg)
	if err != nil {
		return nil, usageErr(err)
	}
	return d, nil
}

func (g *globals) runDrill(ctx context.Context, arg string, f *runFlags) error {
	d, err := loadDrill(arg)
	if err != nil {
		return err
	}
	base, err := g.loadTopologyOr(d.Topology, nil)
	if err != nil {
		return err
	}
	t, err := d.Resolve(base)
	if err != nil {
		return usageErr(err)
	}
	for _, kv := range f.up.sets {
		k, v, err := topology.ParseSet(kv)
		if err == nil {
			err = t.Set(k, v)
		}
		if err != nil {
			return usageErr(fmt.Errorf("--set %s: %w", kv, err))
		}
		if d.Settings == nil {
			d.Settings = map[string]string{}
		}
		d.Settings[k] = v
	}
	if d.Budgets, err = applyBudgets(d.Budgets, f.budgets); err != nil {
		return err
	}
	if f.dryRun {
		return g.dryRun(d, t)
	}
	// Resolved last: a usage error must not wait on a Docker engine that does not answer.
	if f.up.runtime, err = g.resolveRuntime(ctx, f.up.runtime); err != nil {
		return err
	}
	seed := seedOrClock(f.seed)
	dir := reportDirOrDefault(f.reportDir, d.Name)
	// With -o json, progress and the summary go to stderr and the report to stdout.
	out := g.progressOut()
	rep, err := g.execDrill(ctx, drillJob{drill: d, topo: t, up: f.up, reportDir: dir, seed: seed, out: out, keep: f.keep})
	if rep != nil && g.asJSON() {
		if perr := g.printJSON(rep); perr != nil && err == nil {
			err = harnessErr(perr)
		}
	}
	if err != nil {
		return err
	}
	switch rep.Verdict {
	case verdict.Pass:
		return nil
	case verdict.Fail:
		return &exitError{ExitFailed, fmt.Errorf("drill %s failed", d.Name)}
	case verdict.Aborted:
		return harnessErr(fmt.Errorf("drill %s aborted: %s", d.Name, rep.Error))
	}
	return harnessErr(fmt.Errorf("drill %s could not be judged: %s", d.Name, rep.Error))
}

// seedOrClock is the --seed flag's value, or when it is 0 (not given) a seed from the clock.
func seedOrClock(seed int64) int64 {
	if seed == 0 {
		return time.Now().UnixNano() % 1_000_000
	}
	return seed
}

// reportDirOrDefault is the --report-dir flag's value, or when it is empty
// ./drill-reports/<time>-<name>.
func reportDirOrDefault(dir, name string) string {
	if dir == "" {
		return filepath.Join("drill-reports", time.Now().Format("20060102-150405")+"-"+name)
	}
	return dir
}

// drillJob is one drill ready to run: parsed, resolved against its topology, overrides applied.
type drillJob struct {
	// drill is the drill with its settings and budgets final.
	drill *spec.Drill
	// topo is the topology to bring up, every setting applied.
	topo *topology.Topology
	// up says how to bring it up (runtime, agent binary, convergence timeout).
	up upFlags
	// reportDir receives the report (and the nodes' logs).
	reportDir string
	// seed is the workload's random seed.
	seed int64
	// out receives progress and the summary.
	out io.Writer
	// keep leaves the cluster up after the run (faults undone).
	keep bool
}

// execDrill brings the cluster up, runs one drill, tears the cluster down and returns the
// report. It is the body of `drill run` and what game days run for each drill. An error carries
// its exit code (harness errors); the report may come with an error when the drill ran but its
// report could not be written.
func (g *globals) execDrill(ctx context.Context, j drillJob) (*report.Report, error) {
	d, t, out, dir := j.drill, j.topo, j.out, j.reportDir
	fmt.Fprintf(out, "drill: %s — %s\n", d.Name, strings.TrimSpace(d.Description))
	fmt.Fprintf(out, "drill: bringing %s up on the %s runtime (seed %d)\n", t.Name, j.up.runtime, j.seed)

	c, err := g.upCluster(ctx, t, &j.up)
	if err != nil {
		return nil, err
	}
	// Whatever happens from here, the cluster comes down (after the runner undid its faults),
	// unless asked to keep it.
	defer func() {
		if j.keep {
			fmt.Fprintf(out, "drill: kept %s up (faults undone); take it down with: %s\n", t.Name, g.downCommand(t))
			return
		}
		down, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		if err := c.rt.Down(down); err != nil {
			fmt.Fprintf(g.env.Stderr, "drill: tear down: %v\n", err)
		}
		// After Down: the docker runtime saves its containers' logs there at Down.
		copyLogs(c.plan.RunDir, dir)
	}()
	live, color := g.liveOutput(out)
	log := g.logger()
	if live && isTerminal(g.env.Stderr) {
		log = g.loggerTo(clearingWriter{g.env.Stderr})
	}
	sys, err := compose.NewCluster(c.plan, c.rt, log)
	if err != nil {
		return nil, harnessErr(err)
	}
	defer sys.Close() // before the Down above: the ledger's lock is released first
	fmt.Fprintf(out, "drill: up in %s; running %d steps\n", time.Since(c.started).Round(time.Millisecond), len(d.Steps))
	rep, err := runner.Run(ctx, runner.Options{Drill: d, System: sys, ReportDir: dir, Seed: j.seed, Progress: out, Live: live, Color: color,
		Logger: log})
	if err != nil && rep == nil {
		return nil, harnessErr(err)
	}
	fmt.Fprintln(out)
	_ = report.WriteSummary(out, rep)
	fmt.Fprintf(out, "report: %s\n", dir)
	if err != nil {
		return rep, harnessErr(err)
	}
	return rep, nil
}

// downCommand is the command that takes t's cluster down: the topology as given (a file, or the
// built-in name the drill chose) and the state directory when not the default.
func (g *globals) downCommand(t *topology.Topology) string {
	topo := g.topology
	if topo == "" {
		topo = t.Name
	}
	cmd := "drill down --topology " + topo
	if g.stateDir != "" {
		cmd += " --state-dir " + g.stateDir
	}
	return cmd
}

// copyLogs keeps the nodes' logs with the report, for post-mortems.
func copyLogs(runDir, reportDir string) {
	src := filepath.Join(runDir, "logs")
	entries, err := os.ReadDir(src)
	if err != nil {
		return
	}
	dst := filepath.Join(reportDir, "logs")
	if err := os.MkdirAll(dst, 0o700); err != nil { // as private as the originals
		return
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			continue
		}
		if outF, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			_, _ = io.Copy(outF, in)
			outF.Close()
		}
		in.Close()
	}
}

func newListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the built-in drills",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			type listed struct {
				Name        string `json:"name"`
				Topology    string `json:"topology"`
				Description string `json:"description"`
			}
			var all []listed
			tw := tabwriter.NewWriter(g.env.Stdout, 0, 2, 2, ' ', 0)
			for _, n := range builtin.Names() {
				d, err := builtin.Load(n)
				if err != nil {
					return harnessErr(err)
				}
				topo := d.Topology
				if topo == "" {
					topo = "default"
				}
				all = append(all, listed{Name: n, Topology: topo, Description: strings.TrimSpace(d.Description)})
				desc := strings.TrimSpace(d.Description)
				if i := strings.Index(desc, ". "); i > 0 {
					desc = desc[:i+1]
				}
				fmt.Fprintf(tw, "%s\t%s\n", n, desc)
			}
			if g.asJSON() {
				return g.printJSON(all)
			}
			return tw.Flush()
		},
	}
}

func newReportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Print the summary of a past drill run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := report.Load(args[0])
			if err != nil {
				return usageErr(err)
			}
			if g.asJSON() {
				return g.printJSON(r)
			}
			return report.WriteSummary(g.env.Stdout, r)
		},
	}
}

func newRecoverCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "recover",
		Short: "Undo every fault the fault ledger holds (after a crash or kill -9 of drill)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, runDir, err := g.selected()
			if err != nil {
				return err
			}
			plan, rt, err := g.openPlan(runDir)
			if errors.Is(err, runtime.ErrNotUp) {
				fmt.Fprintf(g.env.Stdout, "drill: no plan for %s in %s: nothing to recover\n", t.Name, runDir)
				return nil
			}
			if err != nil {
				return harnessErr(err)
			}
			sys, err := compose.NewCluster(plan, rt, g.logger())
			if err != nil {
				return harnessErr(err)
			}
			defer sys.Close()
			var out struct {
				Skipped []string             `json:"skipped_ledger_lines"`
				Undone  []string             `json:"undone"`
				Residue []inject.ResidueItem `json:"residue"`
				Clean   bool                 `json:"clean"`
			}
			for _, s := range sys.LedgerSkipped() {
				out.Skipped = append(out.Skipped, s.String())
				if !g.asJSON() {
					fmt.Fprintf(g.env.Stdout, "ledger: skipped %s\n", s)
				}
			}
			undone, err := sys.Recover(cmd.Context())
			for _, f := range undone {
				out.Undone = append(out.Undone, f.ID)
				if !g.asJSON() {
					fmt.Fprintf(g.env.Stdout, "undone: %s\n", f.ID)
				}
			}
			if err != nil {
				return harnessErr(fmt.Errorf("recover: %w", err))
			}
			dirty := 0
			out.Residue = sys.Residue(cmd.Context())
			for _, r := range out.Residue {
				mark := "clean"
				if !r.Clean {
					mark, dirty = "LEFT", dirty+1
				}
				if !g.asJSON() {
					fmt.Fprintf(g.env.Stdout, "%-6s %s %s\n", mark, r.What, r.Detail)
				}
			}
			out.Clean = dirty == 0
			if g.asJSON() {
				if err := g.printJSON(out); err != nil {
					return err
				}
			}
			if dirty > 0 {
				return harnessErr(errors.New("residue left after recover"))
			}
			if !g.asJSON() {
				fmt.Fprintln(g.env.Stdout, "drill: nothing drill injected is left")
			}
			return nil
		},
	}
}
