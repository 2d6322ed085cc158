package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NameWriteUnavailability names the check; BudgetRTO is its budget.
const (
	NameWriteUnavailability = "write_unavailability"
	// BudgetRTO: longest write unavailability of any client region, in seconds.
	BudgetRTO = "rto_s"
)

func init() {
	register(20, declared{name: NameWriteUnavailability, check: rtoPerRegion,
		metric: Metric{Name: BudgetRTO, Title: "RTO (longest write unavailability of any region)", Short: "rto", Unit: "s", PerRegion: true, Trend: true, NoiseFloor: 1}})
}

// rtoPerRegion measures one RTO per client region.
func rtoPerRegion(ops []history.Op, cfg Config) Result {
	r, ev := WriteUnavailability(ops, cfg)
	if !r.NoData {
		for region, v := range ev.RTOs() {
			r.Metrics = append(r.Metrics, MetricValue{Name: BudgetRTO, Region: region, Value: v})
		}
		sort.Slice(r.Metrics, func(i, j int) bool { return r.Metrics[i].Region < r.Metrics[j].Region })
	}
	return r
}

// RegionRTO is the write unavailability of one client region.
type RegionRTO struct {
	Region string `json:"region"`
	// Judged is false when the region attempted no write inside the window.
	Judged bool `json:"judged"`
	// Seconds is the longest gap without a successful write.
	Seconds float64 `json:"seconds"`
	// GapStart and GapEnd bound that gap: from the last success before it (or the window start)
	// to the next success (or the window end).
	GapStart time.Time `json:"gap_start"`
	GapEnd   time.Time `json:"gap_end"`
	// OpenEnded is true when no success ended the gap: writes still failed at the window end.
	OpenEnded bool `json:"open_ended"`
	// Successes and Failures count write completions inside the window (never-completed writes
	// count as failures).
	Successes int `json:"successes"`
	Failures  int `json:"failures"`
}

// WriteUnavailabilityEvidence is what WriteUnavailability found.
type WriteUnavailabilityEvidence struct {
	// WindowStart is the start of the first fault (or of the first write, with no fault);
	// WindowEnd is Config.WorkloadEnd or the last client op.
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// Fault is the id of the fault that opened the window; empty when there was none.
	Fault string `json:"fault,omitempty"`
	// Regions are the client regions, sorted by name.
	Regions []RegionRTO `json:"regions"`
}

// RTOs is the measured unavailability per judged region, in seconds.
func (e *WriteUnavailabilityEvidence) RTOs() map[string]float64 {
	out := map[string]float64{}
	if e == nil {
		return out
	}
	for _, r := range e.Regions {
		if r.Judged {
			out[r.Region] = r.Seconds
		}
	}
	return out
}

// WriteUnavailability measures the RTO seen by each client region: within [start of the first
// fault, end of workload], the longest time without a successful write completion. A gap starts
// at the last success before it (or at the fault start) and ends at the next success; when writes
// still fail at the end of the window, the gap runs to the end. Gaps between successes count even
// without failures in between, but a quiet tail with no failed write after the last success does
// not. Measured is the longest gap of any region, in seconds, judged against BudgetRTO. Without a
// fault the window starts at the first write. verdict.Unknown when no region attempted a write in the
// window.
func WriteUnavailability(ops []history.Op, cfg Config) (Result, *WriteUnavailabilityEvidence) {
	const unit = "s"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameWriteUnavailability, unit, BudgetRTO, "malformed history: "+err.Error(), nil), nil
	}
	var writes []history.Pair
	for _, p := range pairs {
		if p.Invoke.F == history.FWrite {
			writes = append(writes, p)
		}
	}
	ev := &WriteUnavailabilityEvidence{WindowEnd: cfg.WorkloadEnd}
	if faults := history.FaultWindows(ops); len(faults) > 0 {
		ev.WindowStart, ev.Fault = faults[0].Start, faults[0].ID
	} else if len(writes) > 0 {
		ev.WindowStart = writes[0].Invoke.Time
		for _, w := range writes {
			ev.WindowStart = earlier(ev.WindowStart, w.Invoke.Time)
		}
	}
	if ev.WindowEnd.IsZero() {
		for _, op := range ops {
			if op.IsClient() {
				ev.WindowEnd = later(ev.WindowEnd, op.Time)
			}
		}
	}
	if len(writes) == 0 || !ev.WindowEnd.After(ev.WindowStart) {
		return cfg.unknown(NameWriteUnavailability, unit, BudgetRTO, "no write attempted after the fault started", ev), ev
	}

	byRegion := map[string][]history.Pair{}
	for _, w := range writes {
		byRegion[w.Invoke.ClientRegion] = append(byRegion[w.Invoke.ClientRegion], w)
	}
	for _, region := range sortedPairKeys(byRegion) {
		ev.Regions = append(ev.Regions, regionRTO(region, byRegion[region], ev.WindowStart, ev.WindowEnd))
	}

	clk := newClock(ops)
	r := Result{Name: NameWriteUnavailability, Unit: unit, Evidence: ev}
	var parts, unjudged []string
	judged := 0
	for _, rr := range ev.Regions {
		if !rr.Judged {
			unjudged = append(unjudged, rr.Region)
			continue
		}
		judged++
		if rr.Seconds > r.Measured {
			r.Measured = rr.Seconds
		}
		part := fmt.Sprintf("%s %gs (%s..%s)", rr.Region, rr.Seconds, clk.at(rr.GapStart), clk.at(rr.GapEnd))
		if rr.OpenEnded {
			part = fmt.Sprintf("%s %gs (%s..end, writes still failing)", rr.Region, rr.Seconds, clk.at(rr.GapStart))
		}
		parts = append(parts, part)
	}
	if judged == 0 {
		return cfg.unknown(NameWriteUnavailability, unit, BudgetRTO,
			fmt.Sprintf("no client region attempted a write between %s and %s", clk.at(ev.WindowStart), clk.at(ev.WindowEnd)), ev), ev
	}
	from := "the first write"
	if ev.Fault != "" {
		from = "fault " + ev.Fault
	}
	r.Detail = fmt.Sprintf("longest write gap from %s: %s", from, list(parts, len(parts)))
	if len(unjudged) > 0 {
		r.Detail += "; no writes from " + list(unjudged, len(unjudged))
	}
	cfg.judge(&r, BudgetRTO)
	return r, ev
}

// regionRTO measures one region's longest gap inside [start, end].
func regionRTO(region string, writes []history.Pair, start, end time.Time) RegionRTO {
	rr := RegionRTO{Region: region}
	var successes []time.Time
	var failureEnds []time.Time
	for _, w := range writes {
		done := w.End()
		if !w.Completed {
			done = end // still pending when the history ended
		}
		if w.Invoke.Time.After(end) || done.Before(start) {
			continue // outside the window
		}
		rr.Judged = true
		if w.Acked() && !done.After(end) {
			successes = append(successes, done)
			rr.Successes++
			continue
		}
		// Failed, indeterminate, or still waiting at the end of the window.
		rr.Failures++
		failureEnds = append(failureEnds, done)
	}
	if !rr.Judged {
		return rr
	}
	sort.Slice(successes, func(i, j int) bool { return successes[i].Before(successes[j]) })
	last := start
	consider := func(from, to time.Time, open bool) {
		if gap := seconds(to.Sub(from)); gap > rr.Seconds || rr.GapEnd.IsZero() {
			rr.Seconds, rr.GapStart, rr.GapEnd, rr.OpenEnded = gap, from, to, open
		}
	}
	for _, s := range successes {
		if s.Before(start) {
			continue
		}
		consider(last, s, false)
		last = s
	}
	for _, f := range failureEnds {
		if f.After(last) {
			consider(last, end, true)
			break
		}
	}
	return rr
}
