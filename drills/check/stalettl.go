package check

import (
	"fmt"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NameStaleBeyondTTL names the check; BudgetStaleBeyondTTL is its budget.
const (
	NameStaleBeyondTTL = "stale_beyond_ttl"
	// BudgetStaleBeyondTTL: how far past the cache's TTL a cache hit may still return a value
	// after a newer write of its key was acknowledged, in seconds.
	BudgetStaleBeyondTTL = "stale_beyond_ttl_s"
)

func init() {
	registerJudge(101, NameStaleBeyondTTL, Metric{Name: BudgetStaleBeyondTTL, Title: "cached values served past their TTL after an overwrite", Short: "stale>ttl", Unit: "s"}, StaleBeyondTTL)
}

// StaleHit is a cache hit that returned a value older than an overwrite acknowledged more than
// the TTL before it.
type StaleHit struct {
	Key     string    `json:"key"`
	Value   string    `json:"value"`
	WebNode string    `json:"web_node"`
	Newer   string    `json:"newer"`
	Acked   time.Time `json:"newer_acked"`
	Served  time.Time `json:"served"`
	// Beyond is how long past the TTL the stale value was served, in seconds.
	Beyond float64 `json:"beyond_s"`
}

// StaleBeyondTTLEvidence is what StaleBeyondTTL found.
type StaleBeyondTTLEvidence struct {
	Hits     int        `json:"hits"`
	Stale    int        `json:"stale"`
	Examples []StaleHit `json:"examples"`
}

// StaleBeyondTTL bounds a cache's staleness: a cache hit of key k that returned the value of write
// w is stale beyond its TTL when another write of k, invoked after w completed (so definitely
// newer) and acknowledged, was acknowledged more than the TTL before the hit began; a cache that
// lets entries expire and is invalidated on writes keeps this near 0 whatever happens to the
// database. Measured is the longest such overshoot in seconds, judged against
// BudgetStaleBeyondTTL. Unknown without cache hits that carry the TTL.
func StaleBeyondTTL(ops []history.Op, cfg Config) (Result, *StaleBeyondTTLEvidence) {
	const unit = "s"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameStaleBeyondTTL, unit, BudgetStaleBeyondTTL, "malformed history: "+err.Error(), nil), nil
	}
	// Acknowledged writes per key, in invoke order, and each (key, value)'s write.
	acked := map[string][]history.Pair{}
	byValue := map[[2]string]history.Pair{}
	for _, p := range pairs {
		if p.Invoke.F != history.FWrite {
			continue
		}
		byValue[[2]string{p.Key(), p.Value()}] = p
		if p.Acked() {
			acked[p.Key()] = append(acked[p.Key()], p)
		}
	}
	ev := &StaleBeyondTTLEvidence{}
	r := Result{Name: NameStaleBeyondTTL, Unit: unit, Evidence: ev}
	for _, p := range pairs {
		if p.Invoke.F != history.FRead || !p.Acked() || p.Done.Cache != history.CacheHit || p.Done.CacheTTLMS <= 0 {
			continue
		}
		ev.Hits++
		w, ok := byValue[[2]string{p.Key(), p.Value()}]
		if !ok || !w.Completed {
			continue
		}
		ttl := time.Duration(p.Done.CacheTTLMS) * time.Millisecond
		var worst *StaleHit
		for _, o := range acked[p.Key()] {
			if !o.Invoke.Time.After(w.End()) || !o.End().Before(p.Invoke.Time) {
				continue // not definitely newer than w, or not yet acknowledged when the read began
			}
			if beyond := p.Invoke.Time.Sub(o.End()) - ttl; beyond > 0 && (worst == nil || seconds(beyond) > worst.Beyond) {
				worst = &StaleHit{Key: p.Key(), Value: p.Value(), WebNode: p.Done.WebNode, Newer: o.Value(),
					Acked: o.End(), Served: p.Invoke.Time, Beyond: seconds(beyond)}
			}
		}
		if worst == nil {
			continue
		}
		ev.Stale++
		r.Measured = max(r.Measured, worst.Beyond)
		if len(ev.Examples) < cfg.maxExamples() {
			ev.Examples = append(ev.Examples, *worst)
		}
	}
	if ev.Hits == 0 {
		return cfg.unknown(NameStaleBeyondTTL, unit, BudgetStaleBeyondTTL, "no read was served by a cache", ev), ev
	}
	if ev.Stale == 0 {
		r.Detail = fmt.Sprintf("no cache hit served a value past its TTL after an overwrite (%d hits)", ev.Hits)
	} else {
		c, e := newClock(ops), ev.Examples[0]
		r.Detail = fmt.Sprintf("%d of %d cache hits served a value past its TTL after an overwrite; worst %gs; first %s=%s at %s (%s acked %s)",
			ev.Stale, ev.Hits, r.Measured, e.Key, e.Value, c.at(e.Served), e.Newer, c.at(e.Acked))
	}
	cfg.judge(&r, BudgetStaleBeyondTTL)
	return r, ev
}
