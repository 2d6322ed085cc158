package check

import (
	"fmt"
	"math"
	"sort"

	"github.com/drillworks/drill/drills/history"
)

// NameReadLatency names the check; BudgetReadLatencyP99 is its budget.
const (
	NameReadLatency = "read_latency"
	// BudgetReadLatencyP99: p99 latency of successful reads, as clients saw it, in milliseconds.
	BudgetReadLatencyP99 = "read_p99_ms"
)

func init() {
	registerJudge(104, NameReadLatency, Metric{Name: BudgetReadLatencyP99, Title: "p99 read latency seen by clients", Short: "read p99", Unit: "ms"}, ReadLatency)
}

// ReadLatencyEvidence summarises the successful reads' (or publishes') latencies, in milliseconds.
type ReadLatencyEvidence struct {
	// Reads is how many successful ops were measured.
	Reads int     `json:"reads"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// ReadLatency is the latency of successful reads from invoke to completion, as the clients saw
// it (DNS, the web tier, the cache or the database). Measured is the p99 (nearest rank) in
// milliseconds, judged against BudgetReadLatencyP99. Unknown without a successful read.
func ReadLatency(ops []history.Op, cfg Config) (Result, *ReadLatencyEvidence) {
	return latencyP99(ops, cfg, history.FRead, NameReadLatency, BudgetReadLatencyP99, "reads")
}

// latencyP99 judges the p99 latency (nearest rank, milliseconds) of the successful client ops
// of kind f against budget; noun names them in the detail.
func latencyP99(ops []history.Op, cfg Config, f, name, budget, noun string) (Result, *ReadLatencyEvidence) {
	const unit = "ms"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(name, unit, budget, "malformed history: "+err.Error(), nil), nil
	}
	var ms []float64
	for _, p := range pairs {
		if p.Invoke.F == f && p.Acked() {
			ms = append(ms, float64(p.End().Sub(p.Invoke.Time).Microseconds())/1000)
		}
	}
	if len(ms) == 0 {
		return cfg.unknown(name, unit, budget, "no successful "+f+" in the history", nil), nil
	}
	sort.Float64s(ms)
	rank := func(q float64) float64 {
		return math.Round(ms[int(math.Ceil(q*float64(len(ms))))-1]*10) / 10
	}
	ev := &ReadLatencyEvidence{Reads: len(ms), P50: rank(0.5), P99: rank(0.99), Max: math.Round(ms[len(ms)-1]*10) / 10}
	r := Result{Name: name, Unit: unit, Measured: ev.P99, Evidence: ev,
		Detail: fmt.Sprintf("p50 %gms p99 %gms max %gms over %d %s", ev.P50, ev.P99, ev.Max, ev.Reads, noun)}
	cfg.judge(&r, budget)
	return r, ev
}
