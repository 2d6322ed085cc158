package check

import (
	"fmt"
	"math"
	"sort"

	"github.com/drillworks/drill/drills/history"
)

// NameReplicationLag names the check; BudgetReplicationLagP99 is its budget.
const (
	NameReplicationLag = "replication_lag"
	// BudgetReplicationLagP99: p99 replication lag while no fault is active, in milliseconds.
	BudgetReplicationLagP99 = "replication_lag_p99_ms"
)

func init() {
	registerJudge(70, NameReplicationLag, Metric{Name: BudgetReplicationLagP99, Title: "steady-state p99 replication lag", Short: "lag", Unit: "ms"}, ReplicationLag)
}

// LagStats summarises replication-lag samples, in milliseconds.
type LagStats struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

// ReplicationLagEvidence is what ReplicationLag found.
type ReplicationLagEvidence struct {
	// All covers every sample; Steady the samples taken while no fault was active.
	All    LagStats `json:"all"`
	Steady LagStats `json:"steady"`
	// ByNode covers every sample per sampled node (JSON sorts the keys).
	ByNode map[string]LagStats `json:"by_node"`
}

// ReplicationLag summarises the "lag" samples: p50, p99 (nearest rank) and max, overall, per node,
// and while no fault was active (steady state: outside every fault window). Measured is the
// steady-state p99 in milliseconds, judged against BudgetReplicationLagP99, because lag while a
// region is cut off is expected to grow without bound. verdict.Unknown without steady-state samples.
func ReplicationLag(ops []history.Op, cfg Config) (Result, *ReplicationLagEvidence) {
	const unit = "ms"
	windows := history.FaultWindows(ops)
	var all, steady []float64
	byNode := map[string][]float64{}
	for _, op := range history.Sorted(ops) {
		if op.Type != history.TypeLag {
			continue
		}
		v := float64(op.LagMS)
		all = append(all, v)
		byNode[op.Node] = append(byNode[op.Node], v)
		active := false
		for _, w := range windows {
			active = active || w.Contains(op.Time)
		}
		if !active {
			steady = append(steady, v)
		}
	}
	ev := &ReplicationLagEvidence{All: stats(all), Steady: stats(steady), ByNode: map[string]LagStats{}}
	for node, samples := range byNode {
		ev.ByNode[node] = stats(samples)
	}
	if len(all) == 0 {
		return cfg.unknown(NameReplicationLag, unit, BudgetReplicationLagP99, "no replication-lag sample in the history", ev), ev
	}
	overall := fmt.Sprintf("all %d samples p50 %gms p99 %gms max %gms", ev.All.Samples, ev.All.P50, ev.All.P99, ev.All.Max)
	if len(steady) == 0 {
		return cfg.unknown(NameReplicationLag, unit, BudgetReplicationLagP99, "no lag sample outside fault windows; "+overall, ev), ev
	}
	r := Result{Name: NameReplicationLag, Unit: unit, Measured: ev.Steady.P99, Evidence: ev,
		Detail: fmt.Sprintf("steady state p50 %gms p99 %gms max %gms (%d samples); %s",
			ev.Steady.P50, ev.Steady.P99, ev.Steady.Max, ev.Steady.Samples, overall)}
	cfg.judge(&r, BudgetReplicationLagP99)
	return r, ev
}

// stats computes nearest-rank percentiles.
func stats(samples []float64) LagStats {
	if len(samples) == 0 {
		return LagStats{}
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return LagStats{Samples: len(s), P50: rank(50), P99: rank(99), Max: s[len(s)-1]}
}
