package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drillworks/drill/drills/verdict"
)

// maxDetail bounds a check's detail in the terminal table; the full text is in report.json.
const maxDetail = 110

// WriteSummary writes the terminal summary: a header, the checks table (measured vs budget),
// the faults, the residue and a verdict line.
func WriteSummary(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "drill %s: %s  (runtime %s, topology %s, seed %d, %s)\n",
		r.Drill, strings.ToUpper(string(r.Verdict)), orDash(r.Runtime), orDash(r.Topology), r.Seed, runLength(r))
	if len(r.Settings) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Settings)) {
			parts = append(parts, k+"="+r.Settings[k])
		}
		fmt.Fprintf(&b, "settings: %s\n", strings.Join(parts, " "))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tVERDICT\tMEASURED\tBUDGET\tDETAIL")
	passed, failed, unknown := 0, 0, 0
	for _, c := range r.Checks {
		switch c.Verdict {
		case verdict.Pass:
			passed++
		case verdict.Fail:
			failed++
		default:
			unknown++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Verdict, fmtValue(c.Measured, c.Unit), fmtValue(c.Budget, c.Unit), truncate(c.Detail, maxDetail))
	}
	tw.Flush()

	if len(r.Faults) > 0 {
		b.WriteString("\nfaults:\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, f := range r.Faults {
			end, state := "never healed", "NOT UNDONE"
			if f.End != nil {
				end = rel(r.Start, *f.End)
			}
			if f.Undone {
				state = "undone"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s..%s\t%s\n", f.ID, f.What(), orDash(f.Target), rel(r.Start, f.Start), end, state)
		}
		tw.Flush()
	}

	for _, a := range r.Beyond {
		fmt.Fprintf(&b, "\nbeyond the design's assumption: %s\n  (a failure under this fault is a documented limit of the design, not a bug)\n", a)
	}

	dirty := 0
	for _, res := range r.Residue {
		if !res.Clean {
			dirty++
		}
	}
	switch {
	case len(r.Residue) == 0:
		b.WriteString("\nresidue: not checked\n")
	case dirty == 0:
		fmt.Fprintf(&b, "\nresidue: clean (%d checked)\n", len(r.Residue))
	default:
		fmt.Fprintf(&b, "\nresidue: %d of %d NOT clean\n", dirty, len(r.Residue))
		for _, res := range r.Residue {
			if !res.Clean {
				fmt.Fprintf(&b, "  %s: %s\n", res.What, res.Detail)
			}
		}
	}

	fmt.Fprintf(&b, "\nverdict: %s (%d passed, %d failed, %d not judged)", strings.ToUpper(string(r.Verdict)), passed, failed, unknown)
	if r.Error != "" {
		fmt.Fprintf(&b, ": %s", r.Error)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

func runLength(r *Report) string {
	if r.Start.IsZero() || r.End.IsZero() {
		return "run time unknown"
	}
	return r.End.Sub(r.Start).Round(time.Millisecond).String()
}

// rel formats t relative to the run's start, e.g. +12.3s.
func rel(start, t time.Time) string {
	if start.IsZero() {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("+%.1fs", t.Sub(start).Seconds())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
