package check

import (
	"fmt"
	"maps"
	"slices"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/topology"
)

// NameDuplicateJobs names the check; BudgetDuplicateJobs is its budget.
const (
	NameDuplicateJobs = "duplicate_jobs"
	// BudgetDuplicateJobs: extra completions of jobs that ran more than once.
	BudgetDuplicateJobs = "duplicate_jobs"
)

func init() {
	registerJudge(111, NameDuplicateJobs, Metric{Name: BudgetDuplicateJobs, Title: "extra completions of jobs that ran more than once", Short: "dup jobs", Unit: "jobs"}, DuplicateJobs)
}

// DuplicateJobsEvidence is what DuplicateJobs found.
type DuplicateJobsEvidence struct {
	// Jobs is how many published jobs (any outcome) the final logs hold a completion of.
	Jobs int `json:"jobs"`
	// Duplicated lists the jobs completed more than once, with their number of completions.
	Duplicated map[string]int `json:"duplicated,omitempty"`
}

// DuplicateJobs counts the completions beyond the first of every published job, from the
// distinct completion records in the final logs. Delivery is at least once, and a worker skips a
// job whose completion is already recorded, so a duplicate is work done twice in effect (two
// workers raced, or a redelivered job's check read an older database): budgeted, never assumed
// zero. Unknown without a completed job.
func DuplicateJobs(ops []history.Op, cfg Config) (Result, *DuplicateJobsEvidence) {
	const unit = "jobs"
	logs := history.FinalLogs(ops)
	ev := &DuplicateJobsEvidence{Duplicated: map[string]int{}}
	seen := map[string]bool{}
	extra := 0
	for _, op := range ops {
		if op.Type != history.TypeInvoke || op.F != history.FEnqueue || seen[op.Key] {
			continue
		}
		seen[op.Key] = true
		n := logs.Writes(topology.JobDoneKey(op.Key))
		if n > 0 {
			ev.Jobs++
		}
		if n > 1 {
			ev.Duplicated[op.Key] = n
			extra += n - 1
		}
	}
	if ev.Jobs == 0 {
		return cfg.unknown(NameDuplicateJobs, unit, BudgetDuplicateJobs, "no job was completed", ev), ev
	}
	r := Result{Name: NameDuplicateJobs, Unit: unit, Measured: float64(extra), Evidence: ev,
		Detail: fmt.Sprintf("%d extra completions: %d of %d completed jobs ran more than once", extra, len(ev.Duplicated), ev.Jobs)}
	if len(ev.Duplicated) > 0 {
		r.Detail += ": " + list(slices.Sorted(maps.Keys(ev.Duplicated)), 5)
	}
	cfg.judge(&r, BudgetDuplicateJobs)
	return r, ev
}
