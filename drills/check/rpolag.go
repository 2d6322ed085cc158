package check

import (
	"fmt"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NameRPOBeyondLag names the check; BudgetRPOBeyondLag is its budget.
const (
	NameRPOBeyondLag = "rpo_beyond_lag"
	// BudgetRPOBeyondLag: the part of the RPO window that replication lag does not explain, in
	// seconds. Asynchronous replication with lease fencing promises at most the lease duration
	// (a primary cut off keeps acknowledging until its lease runs out) plus the runtime's time to
	// act; exploration sets it from the design.
	BudgetRPOBeyondLag = "rpo_beyond_lag_s"
)

// lagLookback is how far before a fault the lag samples that explain its losses are taken from:
// drill samples every replica about once a second, so two seconds hold at least one sample.
const lagLookback = 2 * time.Second

func init() {
	registerJudge(45, NameRPOBeyondLag, Metric{Name: BudgetRPOBeyondLag, Title: "RPO beyond the replication lag before the fault", Short: "rpo-lag", Unit: "s"}, RPOBeyondLag)
}

// RPOBeyondLagEvidence is what RPOBeyondLag found.
type RPOBeyondLagEvidence struct {
	// Fault is the fault behind the loss (LostWritesEvidence.RPOFault).
	Fault string `json:"fault,omitempty"`
	// LagBefore is the largest replication lag sampled in the lookback before the fault (or the
	// last sample before it), in seconds: acknowledged writes that recent may be lost to any
	// failure under asynchronous replication.
	LagBefore float64 `json:"lag_before_s"`
	// Before is how far the first lost acknowledgement lies before the fault beyond LagBefore;
	// After how far the last lies after the fault's start (a primary cut off that kept
	// acknowledging), both in seconds.
	Before float64 `json:"before_s"`
	After  float64 `json:"after_s"`
}

// RPOBeyondLag judges the loss of an asynchronous design by what the design promises rather than
// a fixed window: an acknowledged write may be lost if it was acknowledged within the replication
// lag before the fault behind the loss, or after the fault started while the cut-off primary still
// held its lease. Measured is the span of lost acknowledgements not so explained, Before + After,
// judged against BudgetRPOBeyondLag. Zero when nothing was lost; unknown when LostWrites could not
// be measured.
func RPOBeyondLag(ops []history.Op, cfg Config) (Result, *RPOBeyondLagEvidence) {
	const unit = "s"
	lost, err := analyseLost(ops)
	if err != "" {
		return cfg.unknown(NameRPOBeyondLag, unit, BudgetRPOBeyondLag, err, nil), nil
	}
	ev := &RPOBeyondLagEvidence{Fault: lost.RPOFault}
	r := Result{Name: NameRPOBeyondLag, Unit: unit, Evidence: ev}
	switch {
	case len(lost.Lost) == 0:
		r.Detail = "no acknowledged write lost"
	case lost.RPOFault == "":
		// Nothing to measure from: the whole span of the losses is unexplained.
		ev.After = seconds(lost.LastLostAck.Sub(lost.FirstLostAck))
		r.Measured = ev.After
		r.Detail = fmt.Sprintf("%d acknowledged writes lost with no fault before them", len(lost.Lost))
	default:
		var start time.Time
		for _, fw := range history.FaultWindows(ops) {
			if fw.ID == lost.RPOFault {
				start = fw.Start
			}
		}
		lag := lagBefore(ops, start)
		ev.LagBefore = seconds(lag)
		ev.Before = seconds(max(0, start.Sub(lost.FirstLostAck)-lag))
		ev.After = seconds(max(0, lost.LastLostAck.Sub(start)))
		r.Measured = seconds(time.Duration((ev.Before + ev.After) * float64(time.Second)))
		clk := newClock(ops)
		r.Detail = fmt.Sprintf("%d acknowledged writes lost, acked %s..%s; fault %s at %s after %.3fs of lag: %.3fs before it beyond the lag, %.3fs after it",
			len(lost.Lost), clk.at(lost.FirstLostAck), clk.at(lost.LastLostAck), lost.RPOFault, clk.at(start), ev.LagBefore, ev.Before, ev.After)
	}
	cfg.judge(&r, BudgetRPOBeyondLag)
	return r, ev
}

// lagBefore is the largest replication lag sampled in the lookback before t, or the last sample
// before t when none falls in it (zero without samples).
func lagBefore(ops []history.Op, t time.Time) time.Duration {
	var largest, last time.Duration
	var lastAt time.Time
	for _, op := range ops {
		if op.Type != history.TypeLag || op.Time.After(t) {
			continue
		}
		d := time.Duration(op.LagMS) * time.Millisecond
		if !op.Time.Before(t.Add(-lagLookback)) {
			largest = max(largest, d)
		}
		if op.Time.After(lastAt) {
			last, lastAt = d, op.Time
		}
	}
	if largest == 0 {
		return last
	}
	return largest
}
