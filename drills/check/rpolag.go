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
	// Worst is the lost write least explained by the design's promise; Fault the fault that
	// explains it best.
	Worst string `json:"worst,omitempty"`
	Fault string `json:"fault,omitempty"`
	// LagBefore is the largest replication lag sampled in the lookback before Fault (or the last
	// sample before it), in seconds: acknowledged writes that recent may be lost to any failure
	// under asynchronous replication.
	LagBefore float64 `json:"lag_before_s"`
	// Before is how far Worst's acknowledgement lies before Fault beyond LagBefore; After how far
	// it lies after Fault's start (a primary cut off that kept acknowledging), both in seconds.
	Before float64 `json:"before_s"`
	After  float64 `json:"after_s"`
}

// RPOBeyondLag judges the loss of an asynchronous design by what the design promises rather than
// a fixed window: an acknowledged write may be lost if it was acknowledged within the replication
// lag before a fault, or after a fault started while the cut-off primary still held its lease.
// Each lost write is explained by the fault that explains it best (a schedule of several faults
// loses writes to each); Measured is the time by which the worst explained write falls outside
// its fault's lag window (before it) or after the fault's start, judged against
// BudgetRPOBeyondLag. Zero when nothing was lost; the whole span of the losses when no fault can
// explain them; unknown when LostWrites could not be measured.
func RPOBeyondLag(ops []history.Op, cfg Config) (Result, *RPOBeyondLagEvidence) {
	const unit = "s"
	lost, err := analyseLost(ops)
	if err != "" {
		return cfg.unknown(NameRPOBeyondLag, unit, BudgetRPOBeyondLag, err, nil), nil
	}
	ev := &RPOBeyondLagEvidence{}
	r := Result{Name: NameRPOBeyondLag, Unit: unit, Evidence: ev}
	windows := history.FaultWindows(ops)
	lags := make([]time.Duration, len(windows))
	for i, fw := range windows {
		lags[i] = lagBefore(ops, fw.Start)
	}
	switch {
	case len(lost.Lost) == 0:
		r.Detail = "no acknowledged write lost"
	case len(windows) == 0:
		r.Measured = seconds(lost.LastLostAck.Sub(lost.FirstLostAck))
		r.Detail = fmt.Sprintf("%d acknowledged writes lost with no fault to explain them", len(lost.Lost))
	default:
		worst := -1.0
		for _, w := range lost.Lost {
			best, bi, before, after := -1.0, 0, time.Duration(0), time.Duration(0)
			for i, fw := range windows {
				b := max(0, fw.Start.Sub(w.Completed)-lags[i])
				a := max(0, w.Completed.Sub(fw.Start))
				if cost := (b + a).Seconds(); best < 0 || cost < best {
					best, bi, before, after = cost, i, b, a
				}
			}
			if best > worst {
				worst = best
				ev.Worst, ev.Fault = w.Key, windows[bi].ID
				ev.LagBefore, ev.Before, ev.After = seconds(lags[bi]), seconds(before), seconds(after)
			}
		}
		r.Measured = seconds(time.Duration(worst * float64(time.Second)))
		clk := newClock(ops)
		r.Detail = fmt.Sprintf("%d acknowledged writes lost, acked %s..%s; the least explained, %s, is %.3fs before fault %s beyond its %.3fs of lag and %.3fs after its start",
			len(lost.Lost), clk.at(lost.FirstLostAck), clk.at(lost.LastLostAck), ev.Worst, ev.Before, ev.Fault, ev.LagBefore, ev.After)
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
