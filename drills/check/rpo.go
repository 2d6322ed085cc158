package check

import (
	"fmt"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// NameRPO names the check; BudgetRPO is its budget.
const (
	NameRPO = "rpo"
	// BudgetRPO: the time span of lost acknowledged writes, in seconds.
	BudgetRPO = "rpo_s"
)

func init() {
	registerJudge(40, NameRPO, Metric{Name: BudgetRPO, Title: "RPO (time span of lost acknowledged writes)", Short: "rpo", Unit: "s"}, RPO)
}

// RPO is the recovery point actually achieved: the time span of the acknowledged writes that
// LostWrites found lost, stretched to the start of the fault behind the loss (see
// LostWritesEvidence.RPOFault): writes lost to replication lag just before a fault give the
// time from the first of them to the fault. Zero when nothing was lost. Judged against
// BudgetRPO; unknown when LostWrites could not be measured.
func RPO(ops []history.Op, cfg Config) (Result, *LostWritesEvidence) {
	const unit = "s"
	ev, err := analyseLost(ops)
	if err != "" {
		return cfg.unknown(NameRPO, unit, BudgetRPO, err, ev), ev
	}
	clk := newClock(ops)
	r := Result{Name: NameRPO, Unit: unit, Measured: ev.RPOSeconds, Evidence: ev}
	switch {
	case len(ev.Lost) == 0:
		r.Detail = "no acknowledged write lost"
	case ev.RPOFault != "":
		r.Detail = fmt.Sprintf("%d acknowledged writes lost, acked %s..%s; with fault %s, window %s..%s",
			len(ev.Lost), clk.at(ev.FirstLostAck), clk.at(ev.LastLostAck), ev.RPOFault, clk.at(ev.RPOFrom), clk.at(ev.RPOTo))
	default:
		r.Detail = fmt.Sprintf("%d acknowledged writes lost from %s to %s (no fault before them)",
			len(ev.Lost), clk.at(ev.FirstLostAck), clk.at(ev.LastLostAck))
	}
	cfg.judge(&r, BudgetRPO)
	if n := len(ev.Unverified); n > 0 && r.Verdict == verdict.Pass {
		r.Verdict = verdict.Unknown
		r.Detail += fmt.Sprintf("; %d acknowledged writes have no final read", n)
	}
	return r, ev
}
