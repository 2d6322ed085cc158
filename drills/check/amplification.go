package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NameReadAmplification names the check; BudgetReadAmplification is its budget.
const (
	NameReadAmplification = "db_read_amplification"
	// BudgetReadAmplification: database reads of one key in one TTL window, at most.
	BudgetReadAmplification = "db_reads_per_key_ttl"
)

func init() {
	registerJudge(102, NameReadAmplification, Metric{Name: BudgetReadAmplification, Title: "database reads per key per cache TTL", Short: "db reads/key/ttl", Unit: "reads"}, ReadAmplification)
}

// AmplifiedKey is one key's busiest TTL window.
type AmplifiedKey struct {
	Key string `json:"key"`
	// From is the window's start; Reads the database reads made for the key in it.
	From  time.Time `json:"from"`
	Reads int       `json:"reads"`
}

// ReadAmplificationEvidence is what ReadAmplification found.
type ReadAmplificationEvidence struct {
	// Reads is every read served through a cache; Loads those that made a database read after
	// the cache answered (a miss or a skipped entry); WhileDown those that read the database
	// because the cache did not answer.
	Reads     int `json:"reads"`
	Loads     int `json:"loads"`
	WhileDown int `json:"while_down"`
	// TTLSeconds is the window.
	TTLSeconds float64 `json:"ttl_s"`
	// Busiest are the keys with the most database reads in one window, most first.
	Busiest []AmplifiedKey `json:"busiest"`
}

// ReadAmplification counts what a cache stampede does to the database: the reads served through a
// cache that made a database read of their own after the cache answered (a miss or a skipped
// entry; a read answered by another's load does not count, and reads while the cache did not
// answer are counted apart: there was no cache to stampede), per key and per TTL window (windows
// of the cache's TTL from the first such read). With request coalescing a hot key costs about
// one database read per web node per TTL; without it, every concurrent miss is one. Measured is
// the most database reads of one key in one window, judged against BudgetReadAmplification.
// Unknown without reads served through a cache.
func ReadAmplification(ops []history.Op, cfg Config) (Result, *ReadAmplificationEvidence) {
	const unit = "reads"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameReadAmplification, unit, BudgetReadAmplification, "malformed history: "+err.Error(), nil), nil
	}
	ev := &ReadAmplificationEvidence{}
	var ttl time.Duration
	var start time.Time
	type window struct {
		key string
		n   int64
	}
	counts := map[window]int{}
	for _, p := range pairs {
		if p.Invoke.F != history.FRead || !p.Completed || p.Done.Cache == "" {
			continue
		}
		ev.Reads++
		if ttl == 0 && p.Done.CacheTTLMS > 0 {
			ttl = time.Duration(p.Done.CacheTTLMS) * time.Millisecond
		}
		if !p.Done.Cache.LoadsDatabase() {
			continue
		}
		if p.Done.Cache == history.CacheDown {
			ev.WhileDown++ // no cache to stampede: counted apart
			continue
		}
		ev.Loads++
		if start.IsZero() {
			start = p.Invoke.Time
		}
		if ttl > 0 {
			counts[window{p.Key(), int64(p.Invoke.Time.Sub(start) / ttl)}]++
		}
	}
	if ev.Reads == 0 || ttl == 0 {
		return cfg.unknown(NameReadAmplification, unit, BudgetReadAmplification, "no read was served through a cache", ev), ev
	}
	ev.TTLSeconds = ttl.Seconds()
	for w, n := range counts {
		ev.Busiest = append(ev.Busiest, AmplifiedKey{Key: w.key, From: start.Add(time.Duration(w.n) * ttl), Reads: n})
	}
	sort.Slice(ev.Busiest, func(i, j int) bool {
		a, b := ev.Busiest[i], ev.Busiest[j]
		if a.Reads != b.Reads {
			return a.Reads > b.Reads
		}
		return a.From.Before(b.From) || (a.From.Equal(b.From) && a.Key < b.Key)
	})
	if len(ev.Busiest) > cfg.maxExamples() {
		ev.Busiest = ev.Busiest[:cfg.maxExamples()]
	}
	r := Result{Name: NameReadAmplification, Unit: unit, Evidence: ev}
	if len(ev.Busiest) == 0 {
		r.Detail = fmt.Sprintf("no database read behind %d cached reads", ev.Reads)
	} else {
		b := ev.Busiest[0]
		r.Measured = float64(b.Reads)
		r.Detail = fmt.Sprintf("%d database reads of %s in the %gs TTL window from %s; %d of %d reads through the cache read the database (%d more while it did not answer)",
			b.Reads, b.Key, ev.TTLSeconds, newClock(ops).at(b.From), ev.Loads, ev.Reads, ev.WhileDown)
	}
	cfg.judge(&r, BudgetReadAmplification)
	return r, ev
}
