package check

import (
	"fmt"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/topology"
)

// NameLostJobs names the check; BudgetLostJobs is its budget.
const (
	NameLostJobs = "lost_jobs"
	// BudgetLostJobs: jobs whose publish was acknowledged that no worker completed.
	BudgetLostJobs = "lost_jobs"
)

func init() {
	registerInvariant(110, NameLostJobs, Metric{Name: BudgetLostJobs, Title: "acknowledged jobs never completed", Short: "lost jobs", Unit: "jobs", Trend: true, NoiseFloor: 0.5}, LostJobs)
}

// LostJobsEvidence is what LostJobs found.
type LostJobsEvidence struct {
	// Acked is how many publishes the queue acknowledged; Completed how many of those the final
	// logs hold a completion of.
	Acked     int `json:"acked"`
	Completed int `json:"completed"`
	// Lost are the acknowledged jobs without a completion, by id.
	Lost []string `json:"lost"`
	// Recovered are jobs whose publish ended indeterminate (info) yet were completed; Failed
	// completed are jobs the client was told failed yet ran (a wrong "fail").
	Recovered       int `json:"recovered"`
	FailedCompleted int `json:"failed_completed"`
}

// LostJobs looks, for every job whose publish the queue acknowledged, for its completion record
// in the database nodes' final logs: a job without one was lost (the drill waits for the queues
// to drain before its final read). An invariant: judged against 0 unless the drill sets
// lost_jobs. Unknown without an acknowledged publish or without the final logs.
func LostJobs(ops []history.Op, cfg Config) (Result, *LostJobsEvidence) {
	const unit = "jobs"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameLostJobs, unit, BudgetLostJobs, "malformed history: "+err.Error(), nil), nil
	}
	logs := history.FinalLogs(ops)
	ev := &LostJobsEvidence{}
	for _, p := range pairs {
		if p.Invoke.F != history.FEnqueue {
			continue
		}
		done := logs.Writes(topology.JobDoneKey(p.Invoke.Key)) > 0
		switch {
		case p.Acked():
			ev.Acked++
			if done {
				ev.Completed++
			} else {
				ev.Lost = append(ev.Lost, p.Invoke.Key)
			}
		case p.Outcome() == history.TypeFail && done:
			ev.FailedCompleted++
		case done:
			ev.Recovered++
		}
	}
	switch {
	case ev.Acked == 0:
		return cfg.unknown(NameLostJobs, unit, BudgetLostJobs, "no job was acknowledged", ev), ev
	case !logs.Known():
		return cfg.unknown(NameLostJobs, unit, BudgetLostJobs, "no final database logs to find completions in", ev), ev
	}
	r := Result{Name: NameLostJobs, Unit: unit, Measured: float64(len(ev.Lost)), Evidence: ev,
		Detail: fmt.Sprintf("%d of %d acknowledged jobs never completed", len(ev.Lost), ev.Acked)}
	if len(ev.Lost) > 0 {
		r.Detail += ": " + list(ev.Lost, 5)
	}
	if ev.Recovered+ev.FailedCompleted > 0 {
		r.Detail += fmt.Sprintf("; %d indeterminate publishes completed, %d told failed completed", ev.Recovered, ev.FailedCompleted)
	}
	cfg.judge(&r, BudgetLostJobs)
	return r, ev
}
