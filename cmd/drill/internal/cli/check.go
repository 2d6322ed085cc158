package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/verdict"
)

func newCheckCmd(g *globals) *cobra.Command {
	var budgets []string
	cmd := &cobra.Command{
		Use:   "check HISTORY",
		Short: "Judge a saved history again (a report directory or a history.jsonl file), with every checker",
		Long: `Judge a saved history again with every checker. HISTORY is a report directory (its
history.jsonl, with the budgets its report.json records) or a history.jsonl file (budgets only
from --budget). Exit 0 when every judged check passes, 1 when one fails.`,
		Example: `  drill check drill-reports/20261204-101500-region-outage --budget lost_acked_writes=0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ops, prev, err := loadSavedHistory(args[0])
			if err != nil {
				return usageErr(err)
			}
			b := check.Budgets{}
			if prev != nil {
				b = budgetsOf(prev)
			}
			if b, err = applyBudgets(b, budgets); err != nil {
				return err
			}
			in := report.Input{Drill: "history " + args[0], Results: check.Run(ops, check.Config{Budgets: b}), History: ops}
			in.Start, in.End = history.Span(ops)
			if prev != nil {
				in.Drill, in.Runtime, in.Topology, in.Seed, in.Settings = prev.Drill, prev.Runtime, prev.Topology, prev.Seed, prev.Settings
			}
			rep := report.Build(in)
			write := func() error { return report.WriteSummary(g.env.Stdout, rep) }
			if g.asJSON() {
				write = func() error { return g.printJSON(rep) }
			}
			if err := write(); err != nil {
				return harnessErr(err)
			}
			switch rep.Verdict {
			case verdict.Pass:
				return nil
			case verdict.Fail:
				return &exitError{ExitFailed, errors.New("a check failed")}
			}
			return harnessErr(fmt.Errorf("the history could not be judged (%s)", rep.Verdict))
		},
	}
	cmd.Flags().StringArrayVar(&budgets, "budget", nil, "set a budget, name=value (e.g. lost_acked_writes=0)")
	return cmd
}

// loadSavedHistory reads a report directory's history (and its report, for the budgets), or a
// history file.
func loadSavedHistory(path string) ([]history.Op, *report.Report, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		ops, err := history.Read(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return ops, nil, nil
	}
	ops, err := report.LoadHistory(path)
	if err != nil {
		return nil, nil, err
	}
	rep, err := report.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ops, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(path, report.FileJSON), err)
	}
	return ops, rep, nil
}

// budgetsOf are the budgets a report's checks were judged against, by budget name.
func budgetsOf(r *report.Report) check.Budgets {
	byCheck := map[string]string{}
	for _, c := range check.Checkers() {
		byCheck[c.Name()] = c.Budget()
	}
	out := check.Budgets{}
	for _, c := range r.Checks {
		if name, ok := byCheck[c.Name]; ok && c.Budget != nil {
			out[name] = *c.Budget
		}
	}
	return out
}

// applyBudgets sets name=value budgets over b (nil: a new set); a bad one is a usage error.
func applyBudgets(b check.Budgets, kvs []string) (check.Budgets, error) {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || !check.IsBudgetName(k) {
			return nil, usageErr(fmt.Errorf("--budget %q: want name=number with name one of %s", kv, strings.Join(check.BudgetNames(), ", ")))
		}
		if b == nil {
			b = check.Budgets{}
		}
		b[k] = n
	}
	return b, nil
}
