package check

import (
	"fmt"
	"time"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// NameBacklogDrain names the check; BudgetBacklogDrain is its budget.
const (
	NameBacklogDrain = "backlog_drain"
	// BudgetBacklogDrain: seconds from the last heal until every region's queue is empty.
	BudgetBacklogDrain = "backlog_drain_s"
)

func init() {
	registerJudge(112, NameBacklogDrain, Metric{Name: BudgetBacklogDrain, Title: "backlog drain time after heal", Short: "drain", Unit: "s", Trend: true, NoiseFloor: 1}, BacklogDrain)
}

// BacklogDrainEvidence is what BacklogDrain found.
type BacklogDrainEvidence struct {
	// From is the later of the last heal and the workload's end; Drained when every region's
	// queue was first sampled empty from then on (zero if never).
	From    time.Time `json:"from"`
	Drained time.Time `json:"drained"`
	// Peak is the largest backlog sampled in any region, and PeakRegion where.
	Peak       uint64 `json:"peak"`
	PeakRegion string `json:"peak_region,omitempty"`
}

// BacklogDrain measures, from the queue samples, how long after the later of the last heal and
// the workload's end every region's queue was empty: the backlog the faults left drained once no
// new job arrives (while jobs flow, some are always being worked on). A backlog never seen empty again fails with the time it was last seen. Unknown without
// queue samples after that point.
func BacklogDrain(ops []history.Op, cfg Config) (Result, *BacklogDrainEvidence) {
	const unit = "s"
	ev := &BacklogDrainEvidence{From: cfg.WorkloadEnd}
	for _, w := range history.FaultWindows(ops) {
		if w.Stopped && w.End.After(ev.From) {
			ev.From = w.End
		}
	}
	latest := map[string]uint64{}
	var last time.Time
	for _, op := range history.Sorted(ops) {
		if op.Type != history.TypeQueue {
			continue
		}
		if op.Backlog > ev.Peak {
			ev.Peak, ev.PeakRegion = op.Backlog, op.Region
		}
		latest[op.Region] = op.Backlog
		if ev.From.IsZero() || op.Time.Before(ev.From) {
			continue
		}
		last = op.Time
		if ev.Drained.IsZero() && allZero(latest) {
			ev.Drained = op.Time
		}
	}
	clk := newClock(ops)
	switch {
	case ev.From.IsZero():
		return cfg.unknown(NameBacklogDrain, unit, BudgetBacklogDrain, "no heal and no workload end to measure from", ev), ev
	case last.IsZero():
		return cfg.unknown(NameBacklogDrain, unit, BudgetBacklogDrain, "no queue was sampled after "+clk.at(ev.From), ev), ev
	}
	r := Result{Name: NameBacklogDrain, Unit: unit, Evidence: ev}
	if ev.Drained.IsZero() {
		r.Measured = seconds(last.Sub(ev.From))
		r.Detail = fmt.Sprintf("not drained: jobs still queued at %s, the last sample, %gs after %s; peak %d in %s",
			clk.at(last), r.Measured, clk.at(ev.From), ev.Peak, ev.PeakRegion)
		cfg.judge(&r, BudgetBacklogDrain)
		if r.HasBudget {
			r.Verdict = verdict.Fail // never drained fails whatever the budget
		}
		return r, ev
	}
	r.Measured = seconds(ev.Drained.Sub(ev.From))
	r.Detail = fmt.Sprintf("every queue empty at %s, %gs after %s; peak backlog %d in %s", clk.at(ev.Drained), r.Measured,
		clk.at(ev.From), ev.Peak, ev.PeakRegion)
	cfg.judge(&r, BudgetBacklogDrain)
	return r, ev
}

func allZero(m map[string]uint64) bool {
	for _, v := range m {
		if v > 0 {
			return false
		}
	}
	return true
}
