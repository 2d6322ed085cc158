package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/explore"
	"github.com/drillworks/drill/drills/runner"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/drills/verdict"
)

type exploreFlags struct {
	up        upFlags
	schedules int
	duration  time.Duration
	seed      int64
	kinds     []string
	maxFaults int
	reproduce int
	reportDir string
}

func newExploreCmd(g *globals) *cobra.Command {
	f := &exploreFlags{}
	cmd := &cobra.Command{
		Use:   "explore",
		Short: "Run random fault schedules against one cluster, judge each by the design's promises, shrink failures to minimal drills",
		Long: `Brings the topology up once and runs randomized fault schedules against it, each drawn from a
seed (the same seed gives the same schedule): kinds from the fault registry, targets (a node, the
primary, the witness, a region, a pair of sites, the whole WAN), overlaps and durations, with the
workload running. Between schedules the cluster must converge again (one primary, replicas caught
up, users sent home) and leave no residue, or it is rebuilt and the run counts as invalid.

Each schedule is judged by what the design promises (see the README), not by a scripted drill's
budgets. A failing schedule is shrunk (delta debugging over its faults, then their timing) to a
minimal drill file, replayed to say how often it fails again, and written next to the report;
'drill run FILE --seed S' replays it. A failure whose minimal drill still needs a fault beyond a
stated assumption of the design (a clock off by more than the lease margin) is a documented
limit: listed apart, with the assumption named, and not counted as a failure.

Exit codes: 0 no failure found (documented limits may be listed), 1 failures found, 2 bad usage,
3 harness error.`,
		Example: `  drill explore --schedules 20
  drill explore --time 30m --seed 1000
  drill explore --set fencing=none --schedules 30      # the known-bad design: finds split brain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return g.explore(cmd.Context(), f) },
	}
	f.up.register(cmd, "override a topology design setting, key=value")
	cmd.Flags().IntVar(&f.schedules, "schedules", 0, "how many schedules to run (default: 10 unless --time is given)")
	cmd.Flags().DurationVar(&f.duration, "time", 0, "run schedules for this long (e.g. 30m); with --schedules, whichever ends first")
	cmd.Flags().Int64Var(&f.seed, "seed", 0, "the first schedule's seed (default: from the clock; printed in the report)")
	cmd.Flags().StringSliceVar(&f.kinds, "kinds", nil, "fault kinds to draw from (default: all but flapping, which exploration does itself): "+strings.Join(fault.KindNames(), ", "))
	cmd.Flags().IntVar(&f.maxFaults, "max-faults", explore.DefaultMaxFaults, "most faults in one schedule")
	cmd.Flags().IntVar(&f.reproduce, "reproduce", explore.DefaultReproduce, "replays of each minimal drill")
	cmd.Flags().StringVar(&f.reportDir, "report-dir", "", "where the exploration goes (default ./drill-reports/<time>-explore)")
	return cmd
}

func (g *globals) explore(ctx context.Context, f *exploreFlags) error {
	t, err := g.loadTopology(f.up.sets)
	if err != nil {
		return err
	}
	gen := explore.GenConfig{MaxFaults: f.maxFaults}
	for _, k := range f.kinds {
		if _, ok := fault.Lookup(fault.Kind(k)); !ok {
			return usageErr(fmt.Errorf("--kinds: unknown fault kind %q (valid: %s)", k, strings.Join(fault.KindNames(), ", ")))
		}
		gen.Kinds = append(gen.Kinds, fault.Kind(k))
	}
	switch {
	case f.schedules < 0 || f.duration < 0 || f.maxFaults < 1 || f.reproduce < 1:
		return usageErr(errors.New("--schedules, --time, --max-faults and --reproduce must be positive"))
	case f.schedules == 0 && f.duration == 0:
		f.schedules = 10
	}
	if f.up.runtime, err = g.resolveRuntime(ctx, f.up.runtime); err != nil {
		return err
	}
	seed := seedOrClock(f.seed)
	dir := reportDirOrDefault(f.reportDir, "explore")
	// With -o json, progress and the summary go to stderr and the report to stdout.
	out := g.progressOut()
	fmt.Fprintf(out, "explore: bringing %s up on the %s runtime (first seed %d)\n", t.Name, f.up.runtime, seed)
	// up brings a cluster up with its injector; a cluster whose injector cannot open comes down.
	up := func(ctx context.Context) (*cluster, *compose.Cluster, error) {
		c, err := g.upCluster(ctx, t, &f.up)
		if err != nil {
			return nil, nil, err
		}
		sys, err := compose.NewCluster(c.plan, c.rt, g.logger())
		if err != nil {
			_ = c.rt.Down(context.WithoutCancel(ctx))
			return nil, nil, harnessErr(err)
		}
		return c, sys, nil
	}
	c, sys, err := up(ctx)
	if err != nil {
		return err
	}
	// Whatever happens, the cluster in use at the end comes down.
	defer func() {
		sys.Close()
		down, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		if err := c.rt.Down(down); err != nil {
			fmt.Fprintf(g.env.Stderr, "drill: tear down: %v\n", err)
		}
	}()
	fmt.Fprintf(out, "explore: up in %s\n", time.Since(c.started).Round(time.Millisecond))

	rep, err := explore.Explore(ctx, explore.Options{
		Topology: t, Seed: seed, Schedules: f.schedules, Duration: f.duration, Gen: gen,
		Reproduce: f.reproduce, Dir: dir, Progress: out,
		Run: func(ctx context.Context, d *spec.Drill, seed int64, reportDir string) (explore.RunResult, error) {
			return runScheduleDrill(ctx, sys, d, seed, reportDir, g)
		},
		Rebuild: func(ctx context.Context) error {
			fmt.Fprintln(out, "explore: rebuilding the cluster")
			sys.Close()
			down, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
			defer cancel()
			if err := c.rt.Down(down); err != nil {
				return err
			}
			nc, ns, err := up(ctx)
			if err != nil {
				return err
			}
			c, sys = nc, ns
			return nil
		},
	})
	if rep != nil {
		fmt.Fprintln(out)
		_ = explore.WriteSummary(out, rep)
		fmt.Fprintf(out, "report: %s\n", dir)
		if g.asJSON() {
			if perr := g.printJSON(rep); perr != nil && err == nil {
				err = perr
			}
		}
	}
	if err != nil {
		return harnessErr(err)
	}
	if len(rep.Failures) > 0 {
		return &exitError{ExitFailed, fmt.Errorf("exploration found %d failing schedules", len(rep.Failures))}
	}
	return nil
}

// runScheduleDrill runs one schedule's drill on the shared cluster, its keys apart from every
// other run's, and says whether it passed, failed or could not judge.
func runScheduleDrill(ctx context.Context, sys *compose.Cluster, d *spec.Drill, seed int64, dir string, g *globals) (explore.RunResult, error) {
	var res explore.RunResult
	rep, err := runner.Run(ctx, runner.Options{Drill: d, System: sys, ReportDir: dir, Seed: seed,
		KeyPrefix: filepath.Base(filepath.Dir(dir)) + "-", Progress: io.Discard, Logger: g.logger()})
	if rep == nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	for _, r := range rep.Residue {
		if !r.Clean {
			res.Details = append(res.Details, "residue: "+r.What+" "+r.Detail)
		}
	}
	var failed, failedDetails []string
	for _, ch := range rep.Checks {
		if ch.Verdict == verdict.Fail {
			failed = append(failed, ch.Name)
			failedDetails = append(failedDetails, ch.Name+": "+ch.Detail)
		}
	}
	runErr := rep.Error
	if err != nil {
		runErr = err.Error()
	}
	switch {
	case strings.Contains(rep.Error, runner.ErrSteady.Error()):
		// The cluster did not reset (the runner reports the gate's error, wrapping ErrSteady, in
		// the report): nothing of this run judges the design.
		res.Outcome, res.Details = explore.Invalid, append(res.Details, runErr)
	case len(failed) > 0:
		// A broken promise stands even if the run could not finish afterwards (a cluster that
		// never converges fails "expect converged", then its final read).
		res.Outcome, res.Failed, res.Details = explore.Failed, failed, append(failedDetails, res.Details...)
		if runErr != "" {
			res.Details = append(res.Details, "then: "+runErr)
		}
	case runErr != "" || rep.Verdict == verdict.Error || rep.Verdict == verdict.Aborted:
		res.Outcome, res.Details = explore.Invalid, append(res.Details, runErr)
	case len(res.Details) > 0: // residue
		res.Outcome = explore.Invalid
	default:
		res.Outcome = explore.Passed
	}
	if res.Outcome != explore.Passed {
		// The nodes' logs, before a rebuild starts them afresh.
		copyLogs(sys.Plan().RunDir, dir)
	}
	return res, nil
}
