package check

import (
	"fmt"
	"math"

	"github.com/drillworks/drill/drills/history"
)

// NameCacheHitRatio names the check; BudgetCacheMisses is its budget.
const (
	NameCacheHitRatio = "cache_hit_ratio"
	// BudgetCacheMisses: the share of reads through a cache that the cache did not serve
	// (100 - hit ratio), in percent: a budget is a ceiling.
	BudgetCacheMisses = "cache_miss_pct"
)

func init() {
	registerJudge(103, NameCacheHitRatio, Metric{Name: BudgetCacheMisses, Title: "reads through a cache it did not serve", Short: "cache misses", Unit: "%"}, CacheHitRatio)
}

// CacheHitRatioEvidence counts the reads through a cache by how they were served.
type CacheHitRatioEvidence struct {
	Reads    int                         `json:"reads"`
	BySource map[history.CacheSource]int `json:"by_source"`
	// HitRatio is hits / reads, in percent.
	HitRatio float64 `json:"hit_ratio_pct"`
}

// CacheHitRatio is the cache's hit ratio over the successful reads served through a cache.
// Measured is the miss share (100 - hit ratio) in percent, judged against BudgetCacheMisses when
// the drill sets it. Unknown without reads through a cache.
func CacheHitRatio(ops []history.Op, cfg Config) (Result, *CacheHitRatioEvidence) {
	const unit = "%"
	ev := &CacheHitRatioEvidence{BySource: map[history.CacheSource]int{}}
	for _, op := range ops {
		if op.Type == history.TypeOK && op.F == history.FRead && op.Cache != "" {
			ev.Reads++
			ev.BySource[op.Cache]++
		}
	}
	if ev.Reads == 0 {
		return cfg.unknown(NameCacheHitRatio, unit, BudgetCacheMisses, "no read was served through a cache", ev), ev
	}
	ev.HitRatio = math.Round(1000*float64(ev.BySource[history.CacheHit])/float64(ev.Reads)) / 10
	r := Result{Name: NameCacheHitRatio, Unit: unit, Evidence: ev, Measured: math.Round(10*(100-ev.HitRatio)) / 10,
		Detail: fmt.Sprintf("hit ratio %g%% of %d reads (hit %d, miss %d, shared %d, skip %d, down %d)", ev.HitRatio, ev.Reads,
			ev.BySource[history.CacheHit], ev.BySource[history.CacheMiss], ev.BySource[history.CacheShared],
			ev.BySource[history.CacheSkip], ev.BySource[history.CacheDown])}
	cfg.judge(&r, BudgetCacheMisses)
	return r, ev
}
