package check

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NamePhantomReads names the check; BudgetPhantom is its budget.
const (
	NamePhantomReads = "phantom_reads"
	// BudgetPhantom: the longest a region's cache kept serving a value the converged database
	// does not have, counted from the failover that discarded it, in seconds.
	BudgetPhantom = "phantom_s"
)

func init() {
	registerJudge(100, NamePhantomReads, Metric{Name: BudgetPhantom, Title: "phantom values served by a cache after the failover that discarded them", Short: "phantom", Unit: "s"}, PhantomReads)
}

// PhantomRead is a cache hit that returned a value the converged database does not hold.
type PhantomRead struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// WebNode served it; Region is that node's region (its cache).
	WebNode string `json:"web_node"`
	Region  string `json:"region"`
	// WriteEpoch and WriteLSN identify the write that produced the value.
	WriteEpoch uint64 `json:"write_epoch"`
	WriteLSN   uint64 `json:"write_lsn"`
	// Superseded is when a primary of a later epoch was first seen; Served when the read began.
	Superseded time.Time `json:"superseded"`
	Served     time.Time `json:"served"`
}

// PhantomReadsEvidence is what PhantomReads found.
type PhantomReadsEvidence struct {
	// Hits is the number of cache hits judged; Phantoms those that served a discarded value
	// after its epoch was superseded (PhantomsBefore: before, which a database read would have
	// returned too).
	Hits           int `json:"hits"`
	Phantoms       int `json:"phantoms"`
	PhantomsBefore int `json:"phantoms_before"`
	// LongestByRegion is, per region, the time from the supersession to the last phantom served.
	LongestByRegion map[string]float64 `json:"longest_by_region"`
	Examples        []PhantomRead      `json:"examples"`
}

// PhantomReads looks for phantom values served by a cache: a cache hit that returned a value
// whose write (the acknowledged or indeterminate write of that key and value) is in no database
// node's final log, at the write's epoch and LSN — a write a failover discarded. Before a primary
// of a later epoch exists such a read is what any database read of the old primary returned too,
// and is only counted; after it, the cache is serving what the database no longer has. Measured
// is, over the regions, the longest time from the supersession to the last phantom served there,
// judged against BudgetPhantom (0 when none). Unknown without cache hits or without the nodes'
// final logs.
func PhantomReads(ops []history.Op, cfg Config) (Result, *PhantomReadsEvidence) {
	const unit = "s"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NamePhantomReads, unit, BudgetPhantom, "malformed history: "+err.Error(), nil), nil
	}
	logged := history.FinalLogs(ops)
	var epochs []history.Op
	for _, op := range history.Sorted(ops) {
		if op.Type == history.TypeEpoch {
			epochs = append(epochs, op)
		}
	}
	// The write of each (key, value): values are unique per write.
	type write struct{ lsn, epoch uint64 }
	writes := map[[2]string]write{}
	for _, p := range pairs {
		if p.Invoke.F == history.FWrite && p.Outcome() != history.TypeFail {
			writes[[2]string{p.Key(), p.Value()}] = write{lsn: p.Done.LSN, epoch: p.Done.Epoch}
		}
	}
	ev := &PhantomReadsEvidence{LongestByRegion: map[string]float64{}}
	for _, p := range pairs {
		if p.Invoke.F != history.FRead || !p.Acked() || p.Done.Cache != history.CacheHit || !p.Done.Found {
			continue
		}
		ev.Hits++
		w, ok := writes[[2]string{p.Key(), p.Value()}]
		if !ok || w.lsn == 0 {
			continue // no acknowledged LSN to look for (an indeterminate write): not judged
		}
		if logged.Holds(w.lsn, w.epoch, p.Key()) {
			continue
		}
		superseded := time.Time{}
		for _, e := range epochs {
			if e.Epoch > w.epoch {
				superseded = e.Time
				break
			}
		}
		if superseded.IsZero() || p.Invoke.Time.Before(superseded) {
			ev.PhantomsBefore++
			continue
		}
		ev.Phantoms++
		region := regionOfWeb(p.Done)
		if d := seconds(p.Invoke.Time.Sub(superseded)); d > ev.LongestByRegion[region] {
			ev.LongestByRegion[region] = d
		}
		if len(ev.Examples) < cfg.maxExamples() {
			ev.Examples = append(ev.Examples, PhantomRead{Key: p.Key(), Value: p.Value(), WebNode: p.Done.WebNode,
				Region: region, WriteEpoch: w.epoch, WriteLSN: w.lsn, Superseded: superseded, Served: p.Invoke.Time})
		}
	}
	switch {
	case ev.Hits == 0:
		return cfg.unknown(NamePhantomReads, unit, BudgetPhantom, "no read was served by a cache", ev), ev
	case !logged.Known():
		return cfg.unknown(NamePhantomReads, unit, BudgetPhantom, "no database log in the history (no final read): cannot tell which values survived", ev), ev
	}
	r := Result{Name: NamePhantomReads, Unit: unit, Evidence: ev}
	regions := slices.Sorted(maps.Keys(ev.LongestByRegion))
	for _, reg := range regions {
		r.Measured = max(r.Measured, ev.LongestByRegion[reg])
	}
	if ev.Phantoms == 0 {
		r.Detail = fmt.Sprintf("no phantom value served after a failover (%d cache hits; %d before one, as the database served them too)", ev.Hits, ev.PhantomsBefore)
	} else {
		c := newClock(ops)
		first := ev.Examples[0]
		r.Detail = fmt.Sprintf("%d of %d cache hits served a discarded value after its epoch ended; longest %gs (region %s); first %s=%s at %s, epoch %d ended %s",
			ev.Phantoms, ev.Hits, r.Measured, longestRegion(ev.LongestByRegion, regions), first.Key, first.Value, c.at(first.Served), first.WriteEpoch, c.at(first.Superseded))
	}
	cfg.judge(&r, BudgetPhantom)
	return r, ev
}

// regionOfWeb is the region of the web node that served op (Op.Region of a read names it).
func regionOfWeb(op history.Op) string {
	if op.Region != "" {
		return op.Region
	}
	return op.WebNode
}

func longestRegion(m map[string]float64, regions []string) string {
	best := ""
	for _, r := range regions {
		if best == "" || m[r] > m[best] {
			best = r
		}
	}
	return best
}
