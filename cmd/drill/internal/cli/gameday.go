package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/compose"
	"github.com/drillworks/drill/drills/gameday"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/verdict"
)

// defaultHistoryDir is where game days keep their history unless --history-dir says otherwise.
const defaultHistoryDir = "drill-history"

// gamedayFlags are the flags every game-day command shares.
type gamedayFlags struct {
	historyDir string
	unattended bool
	binary     string
	timeout    time.Duration
}

func (f *gamedayFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.historyDir, "history-dir", defaultHistoryDir, "where runs and the history page go")
	cmd.Flags().BoolVar(&f.unattended, "unattended", false, "skip human steps (no operator at a terminal)")
	cmd.Flags().StringVar(&f.binary, "agent-binary", "", agentBinaryHelp)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 60*time.Second, "how long to wait for each drill's cluster to converge")
}

func newGamedayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gameday",
		Short: "Run a plan of drills (a game day) once or on a cron schedule",
		Long: `A game-day plan (YAML) names drills to run in order, each with its --set overrides and budgets,
human steps that wait for an operator, what to do after a failure (stop-on-first-failure or run-all),
an optional webhook and an optional cron schedule. Every run appends to the history directory.`,
	}
	cmd.AddCommand(newGamedayRunCmd(g), newGamedayScheduleCmd(g))
	return cmd
}

func newGamedayRunCmd(g *globals) *cobra.Command {
	f := &gamedayFlags{}
	var jitter time.Duration
	cmd := &cobra.Command{
		Use:   "run PLAN",
		Short: "Run a game-day plan once",
		Long: `Runs every step of the plan in order: one report directory per drill plus summary.json, junit.xml
and index.html for the game day under HISTORY/runs/<id>/, then updates HISTORY/index.html.

Exit codes: the worst verdict wins: 0 every drill passed, 1 a check failed, 2 bad plan (nothing
started), 3 harness error, aborted run, or another game day holds the history's lock.`,
		Example: `  drill gameday run weekly.yaml
  drill gameday run weekly.yaml --unattended --history-dir /var/lib/drill/history`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			plan, err := g.loadPlan(args[0])
			if err != nil {
				return err
			}
			cfg, err := g.gamedayConfig(plan, f)
			if err != nil {
				return err
			}
			if jitter > 0 {
				wait := time.Duration(rand.Int64N(int64(jitter)))
				fmt.Fprintf(g.progressOut(), "gameday %s: starting after a jitter of %s\n", plan.Name, wait.Round(time.Millisecond))
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return harnessErr(fmt.Errorf("interrupted during the jitter: %w", ctx.Err()))
				case <-t.C:
				}
			}
			s, err := gameday.Run(ctx, cfg)
			if s != nil && g.asJSON() {
				// The summary as summary.json holds it; progress went to stderr.
				if perr := g.printJSON(s); perr != nil && err == nil {
					err = perr
				}
			}
			var busy *gameday.BusyError
			switch {
			case errors.As(err, &busy):
				return harnessErr(fmt.Errorf("%w: this run is skipped (recorded in %s)", err, cfg.History.Dir()))
			case s == nil:
				return harnessErr(err)
			case err != nil:
				return harnessErr(fmt.Errorf("game day %s ran (%s) but: %w", plan.Name, s.Verdict, err))
			}
			return verdictErr("game day "+plan.Name, s.Verdict, s.Error)
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&jitter, "jitter", 0, "wait a random time up to this long before starting (for OS schedulers)")
	return cmd
}

func newGamedayScheduleCmd(g *globals) *cobra.Command {
	f := &gamedayFlags{}
	var (
		cronExpr     string
		jitter       time.Duration
		maxRuns      int
		printSystemd bool
		printCrontab bool
	)
	cmd := &cobra.Command{
		Use:   "schedule PLAN",
		Short: "Run a game-day plan on a cron schedule, in the foreground",
		Long: `Stays in the foreground and runs the plan whenever the cron expression says (--cron, else the plan's
schedule.cron; 5 fields, 6 with seconds first, or @daily / @every 1h). Runs never overlap: a run
due while another is still going (here or in another process using the same history directory)
is skipped and recorded as skipped. SIGTERM or Ctrl-C aborts the running drill cleanly (its faults
are undone, its cluster torn down), records the run and exits.

--print-systemd prints a .service and .timer pair, --print-crontab a crontab line, for those who
prefer the OS scheduler; both run "drill gameday run" and exit at once.

Exit codes: the worst verdict of the runs made (0 pass or no run, 1 fail, 3 error or aborted),
2 bad plan or cron expression (nothing started).`,
		Example: `  drill gameday schedule weekly.yaml --cron "0 10 * * FRI" --jitter 5m
  drill gameday schedule weekly.yaml --cron "*/30 * * * * *" --max-runs 2
  drill gameday schedule weekly.yaml --cron "0 10 * * FRI" --print-systemd`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := g.loadPlan(args[0])
			if err != nil {
				return err
			}
			expr := cronExpr
			if expr == "" && plan.Schedule != nil {
				expr = plan.Schedule.Cron
			}
			if expr == "" {
				return usageErr(fmt.Errorf("no schedule: give --cron, or schedule.cron in %s", args[0]))
			}
			tt, err := gameday.ParseCron(expr)
			if err != nil {
				return usageErr(fmt.Errorf("--cron: %w", err))
			}
			if !cmd.Flags().Changed("jitter") && plan.Schedule != nil {
				jitter = plan.Schedule.Jitter
			}
			if maxRuns < 0 || jitter < 0 {
				return usageErr(errors.New("--max-runs and --jitter must not be negative"))
			}
			if printSystemd || printCrontab {
				return g.printOSSchedule(args[0], plan, f, expr, jitter, printSystemd)
			}
			cfg, err := g.gamedayConfig(plan, f)
			if err != nil {
				return err
			}
			res, err := gameday.RunScheduled(cmd.Context(), gameday.ScheduleConfig{Run: cfg, Timetable: tt, Cron: expr, Jitter: jitter, MaxRuns: maxRuns})
			if err != nil {
				return harnessErr(err)
			}
			fmt.Fprintf(g.env.Stdout, "gameday %s: scheduler stopped after %d runs (%d skipped)\n", plan.Name, len(res.Runs), res.Skipped)
			for _, e := range res.Errors {
				fmt.Fprintf(g.env.Stderr, "drill: %v\n", e)
			}
			if v := res.Verdict(); v != "" {
				return verdictErr("game day "+plan.Name, v, "")
			}
			if len(res.Errors) > 0 {
				return harnessErr(errors.Join(res.Errors...))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&cronExpr, "cron", "", `cron expression (overrides the plan's schedule.cron), e.g. "0 10 * * FRI"`)
	cmd.Flags().DurationVar(&jitter, "jitter", 0, "delay each run by a random time up to this long (default: the plan's schedule.jitter)")
	cmd.Flags().IntVar(&maxRuns, "max-runs", 0, "stop after this many runs (0: run until stopped)")
	cmd.Flags().BoolVar(&printSystemd, "print-systemd", false, "print a systemd .service and .timer pair and exit")
	cmd.Flags().BoolVar(&printCrontab, "print-crontab", false, "print a crontab line and exit")
	return cmd
}

// verdictErr maps a verdict to the exit code of drill run: pass 0, fail 1, error or aborted 3.
func verdictErr(what string, v verdict.Verdict, why string) error {
	switch v {
	case verdict.Pass:
		return nil
	case verdict.Fail:
		return &exitError{ExitFailed, fmt.Errorf("%s failed", what)}
	case verdict.Aborted:
		return harnessErr(fmt.Errorf("%s aborted %s", what, why))
	}
	return harnessErr(fmt.Errorf("%s could not be judged: %s", what, why))
}

// loadPlan reads and checks a plan before anything starts; every problem is a usage error.
func (g *globals) loadPlan(path string) (*gameday.Plan, error) {
	opts := gameday.LoadOptions{CheckRuntime: g.checkRuntime, Getenv: g.env.Getenv}
	if g.topology != "" {
		t, err := g.loadTopology(nil)
		if err != nil {
			return nil, err
		}
		opts.Topology = t
	}
	plan, err := gameday.Load(path, opts)
	if err != nil {
		return nil, usageErr(err)
	}
	return plan, nil
}

// checkRuntime reports whether a runtime name exists, without starting anything.
func (g *globals) checkRuntime(name string) error {
	if name == "auto" {
		return nil
	}
	_, err := compose.LookupRuntime(name)
	return err
}

// gamedayConfig is a run's configuration: the plan, the history and this CLI's way to run a drill.
func (g *globals) gamedayConfig(plan *gameday.Plan, f *gamedayFlags) (gameday.Config, error) {
	hist, err := gameday.OpenHistory(f.historyDir)
	if err != nil {
		return gameday.Config{}, harnessErr(err)
	}
	cfg := gameday.Config{Plan: plan, History: hist, Unattended: f.unattended, Stdout: g.progressOut(), Logger: g.logger(),
		RunDrill: g.gamedayDrill(f)}
	if g.env.Stdin != nil {
		cfg.Operator = gameday.NewOperator(g.env.Stdin)
	}
	return cfg, nil
}

// gamedayDrill runs one drill of a game day exactly as `drill run` does.
func (g *globals) gamedayDrill(f *gamedayFlags) gameday.RunDrillFunc {
	return func(ctx context.Context, req gameday.DrillRequest) (*report.Report, error) {
		rt, err := g.resolveRuntime(ctx, req.Runtime)
		if err != nil {
			return nil, err
		}
		return g.execDrill(ctx, drillJob{drill: req.Drill, topo: req.Topology, up: upFlags{runtime: rt, binary: f.binary, timeout: f.timeout},
			reportDir: req.ReportDir, seed: req.Seed, out: req.Progress})
	}
}

// printOSSchedule prints systemd units or a crontab line running `drill gameday run`.
func (g *globals) printOSSchedule(planArg string, plan *gameday.Plan, f *gamedayFlags, expr string, jitter time.Duration, systemd bool) error {
	exe, err := os.Executable()
	if err != nil {
		return harnessErr(fmt.Errorf("find the drill binary: %w", err))
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	wd, _ := os.Getwd()
	command := []string{exe, "gameday", "run", abs(planArg), "--unattended", "--history-dir", abs(f.historyDir)}
	if g.topology != "" {
		command = append(command, "--topology", abs(g.topology))
	}
	if g.stateDir != "" {
		command = append(command, "--state-dir", abs(g.stateDir))
	}
	if f.binary != "" {
		command = append(command, "--agent-binary", abs(f.binary))
	}
	out := g.env.Stdout
	if systemd {
		name := "drill-gameday-" + plan.Name
		service, timer, err := gameday.SystemdUnits(gameday.SystemdOptions{Name: name, Description: "drill game day " + plan.Name,
			Command: command, WorkDir: wd, Cron: expr, Jitter: jitter})
		if err != nil {
			return usageErr(fmt.Errorf("--print-systemd: %w", err))
		}
		fmt.Fprintf(out, "# ~/.config/systemd/user/%s.service\n%s\n# ~/.config/systemd/user/%s.timer\n%s", name, service, name, timer)
		return nil
	}
	if jitter > 0 {
		command = append(command, "--jitter", jitter.String())
	}
	line, err := gameday.CrontabLine(expr, command)
	if err != nil {
		return usageErr(fmt.Errorf("--print-crontab: %w", err))
	}
	// The line appends to a log in the history directory: the shell fails the whole line if
	// that directory does not exist yet.
	if _, err := gameday.OpenHistory(f.historyDir); err != nil {
		return harnessErr(err)
	}
	fmt.Fprintf(out, "# drill game day %s (add with crontab -e); output goes to the history directory\n%s >> %s 2>&1\n",
		plan.Name, line, shellQuote(filepath.Join(abs(f.historyDir), "cron.log")))
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newHistoryCmd(g *globals) *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List past game-day runs and (re)write the history page",
		Long: `Lists every game-day run in the history directory, oldest first: time, plan, trigger, verdict,
duration, and per drill its verdict, DNS failover time, RTO and lost writes, with regressions marked.
Skipped runs (a run was still going) are listed too. Also (re)writes HISTORY/index.html: the trend
of the key numbers as an inline SVG chart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(filepath.Join(dir, gameday.FileHistory)); errors.Is(err, os.ErrNotExist) {
				if asJSON || g.asJSON() {
					fmt.Fprintln(g.env.Stdout, `{"runs": [], "regressions": []}`)
					return nil
				}
				fmt.Fprintf(g.env.Stdout, "drill: no game-day history in %s yet\n", dir)
				return nil
			}
			hist, err := gameday.OpenHistory(dir)
			if err != nil {
				return harnessErr(err)
			}
			entries, err := hist.Entries()
			if err != nil {
				return harnessErr(err)
			}
			rule := gameday.DefaultRegressionRule()
			if err := hist.WriteIndex(rule); err != nil {
				return harnessErr(err)
			}
			if asJSON || g.asJSON() {
				regs := gameday.FindRegressions(entries, rule)
				if entries == nil {
					entries = []gameday.Entry{}
				}
				if regs == nil {
					regs = []gameday.Regression{}
				}
				enc := json.NewEncoder(g.env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Runs        []gameday.Entry      `json:"runs"`
					Regressions []gameday.Regression `json:"regressions"`
				}{entries, regs})
			}
			if err := gameday.WriteHistoryText(g.env.Stdout, entries, rule); err != nil {
				return harnessErr(err)
			}
			fmt.Fprintf(g.env.Stdout, "history page: %s\n", filepath.Join(hist.Dir(), gameday.FileHistoryIndex))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "history-dir", defaultHistoryDir, "the history directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs and regressions as JSON")
	return cmd
}
