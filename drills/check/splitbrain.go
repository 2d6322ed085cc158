package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NameSplitBrain names the check; BudgetSplitBrain is its budget.
const (
	NameSplitBrain = "split_brain"
	// BudgetSplitBrain: seconds during which two primaries both acknowledged writes.
	BudgetSplitBrain = "split_brain_s"
)

func init() {
	registerJudge(50, NameSplitBrain, Metric{Name: BudgetSplitBrain, Title: "time two primaries both acknowledged writes", Short: "split", Unit: "s"}, SplitBrain)
}

// PrimaryRun is a stretch of time during which one primary acknowledged writes: from the invoke
// of its first write to the completion of its last, with no gap longer than Config.RunGap.
type PrimaryRun struct {
	Primary string    `json:"primary"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// Writes is the number of acknowledged writes in the run.
	Writes int `json:"writes"`
}

// Overlap is a time two different primaries' runs share.
type Overlap struct {
	// A and B are the two primaries, A < B.
	A       string    `json:"a"`
	B       string    `json:"b"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
}

// SplitBrainEvidence is what SplitBrain found.
type SplitBrainEvidence struct {
	// Runs are every primary's runs, sorted by start then primary.
	Runs []PrimaryRun `json:"runs"`
	// Overlaps are the overlapping pairs of runs of different primaries, sorted by start.
	Overlaps []Overlap `json:"overlaps"`
	// Seconds is the total time during which at least two different primaries had a run.
	Seconds float64 `json:"seconds"`
	// Unattributed counts acknowledged writes that named no db node (not judged).
	Unattributed int `json:"unattributed"`
}

// SplitBrain finds writes acknowledged by two different primaries (Op.DBNode of the "ok"
// completion) in overlapping time. Each primary's acknowledged writes form runs (see PrimaryRun);
// Measured is the total time covered by runs of two or more different primaries, in seconds,
// judged against BudgetSplitBrain. Only acknowledged writes count: a failed or indeterminate write
// proves nothing about who was primary. verdict.Unknown when no write was acknowledged.
func SplitBrain(ops []history.Op, cfg Config) (Result, *SplitBrainEvidence) {
	const unit = "s"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameSplitBrain, unit, BudgetSplitBrain, "malformed history: "+err.Error(), nil), nil
	}
	ev := &SplitBrainEvidence{}
	byPrimary := map[string][]history.Pair{}
	acked := 0
	for _, p := range pairs {
		if p.Invoke.F != history.FWrite || !p.Acked() {
			continue
		}
		acked++
		if p.Done.DBNode == "" {
			ev.Unattributed++
			continue
		}
		byPrimary[p.Done.DBNode] = append(byPrimary[p.Done.DBNode], p)
	}
	if len(byPrimary) == 0 {
		detail := "no acknowledged write in the history"
		if acked > 0 {
			detail = fmt.Sprintf("none of the %d acknowledged writes named the db node that accepted it", acked)
		}
		return cfg.unknown(NameSplitBrain, unit, BudgetSplitBrain, detail, ev), ev
	}

	for _, primary := range sortedPairKeys(byPrimary) {
		ev.Runs = append(ev.Runs, runsOf(primary, byPrimary[primary], cfg.runGap())...)
	}
	sort.SliceStable(ev.Runs, func(i, j int) bool {
		if !ev.Runs[i].Start.Equal(ev.Runs[j].Start) {
			return ev.Runs[i].Start.Before(ev.Runs[j].Start)
		}
		return ev.Runs[i].Primary < ev.Runs[j].Primary
	})

	var spans []Overlap
	for i, a := range ev.Runs {
		for _, b := range ev.Runs[i+1:] {
			if a.Primary == b.Primary {
				continue
			}
			start, end := later(a.Start, b.Start), earlier(a.End, b.End)
			if !end.After(start) {
				continue
			}
			x, y := a.Primary, b.Primary
			if y < x {
				x, y = y, x
			}
			spans = append(spans, Overlap{A: x, B: y, Start: start, End: end, Seconds: seconds(end.Sub(start))})
		}
	}
	sort.SliceStable(spans, func(i, j int) bool {
		if !spans[i].Start.Equal(spans[j].Start) {
			return spans[i].Start.Before(spans[j].Start)
		}
		return spans[i].A+"\x00"+spans[i].B < spans[j].A+"\x00"+spans[j].B
	})
	ev.Overlaps = spans
	ev.Seconds = seconds(unionLength(spans))

	clk := newClock(ops)
	r := Result{Name: NameSplitBrain, Unit: unit, Measured: ev.Seconds, Evidence: ev}
	if len(spans) == 0 {
		r.Detail = fmt.Sprintf("one primary at a time (%d primaries, %d runs)", len(byPrimary), len(ev.Runs))
	} else {
		var items []string
		for _, o := range spans {
			items = append(items, fmt.Sprintf("%s+%s %s..%s", o.A, o.B, clk.at(o.Start), clk.at(o.End)))
		}
		r.Detail = fmt.Sprintf("two primaries acknowledged writes for %gs: %s", ev.Seconds, list(items, cfg.maxExamples()))
	}
	if ev.Unattributed > 0 {
		r.Detail += fmt.Sprintf("; %d acknowledged writes named no db node", ev.Unattributed)
	}
	cfg.judge(&r, BudgetSplitBrain)
	return r, ev
}

// runsOf splits one primary's acknowledged writes into runs.
func runsOf(primary string, writes []history.Pair, gap time.Duration) []PrimaryRun {
	sort.SliceStable(writes, func(i, j int) bool { return writes[i].Invoke.Time.Before(writes[j].Invoke.Time) })
	var runs []PrimaryRun
	for _, w := range writes {
		if n := len(runs); n > 0 && w.Invoke.Time.Sub(runs[n-1].End) <= gap {
			runs[n-1].End = later(runs[n-1].End, w.End())
			runs[n-1].Writes++
			continue
		}
		runs = append(runs, PrimaryRun{Primary: primary, Start: w.Invoke.Time, End: w.End(), Writes: 1})
	}
	return runs
}

// unionLength is the length of the union of the spans.
func unionLength(spans []Overlap) time.Duration {
	s := append([]Overlap(nil), spans...)
	sort.Slice(s, func(i, j int) bool { return s[i].Start.Before(s[j].Start) })
	var total time.Duration
	var curStart, curEnd time.Time
	for i, o := range s {
		if i == 0 || o.Start.After(curEnd) {
			total += curEnd.Sub(curStart)
			curStart, curEnd = o.Start, o.End
			continue
		}
		curEnd = later(curEnd, o.End)
	}
	if len(s) > 0 {
		total += curEnd.Sub(curStart)
	}
	return total
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func sortedPairKeys(m map[string][]history.Pair) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
