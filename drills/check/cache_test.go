package check

import (
	"testing"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// The history's cache vocabulary is the cache's own.
func TestCacheSourcesMatchTheCache(t *testing.T) {
	pairs := map[history.CacheSource]cache.Source{history.CacheHit: cache.Hit, history.CacheMiss: cache.Miss,
		history.CacheShared: cache.Shared, history.CacheSkip: cache.Skip, history.CacheDown: cache.Down}
	for h, c := range pairs {
		if string(h) != string(c) || h.LoadsDatabase() != c.LoadsDatabase() {
			t.Errorf("history %q (loads %v) vs cache %q (loads %v)", h, h.LoadsDatabase(), c, c.LoadsDatabase())
		}
	}
}

// cacheRead records a successful read of key through web node web (region region) served as src.
func (h *hist) cacheRead(p int, region, key, value string, src history.CacheSource, inv, done float64) {
	h.add(history.Op{Type: history.TypeInvoke, F: history.FRead, Process: p, ClientRegion: region, Key: key}, inv)
	h.add(history.Op{Type: history.TypeOK, F: history.FRead, Process: p, ClientRegion: region, Key: key, Value: value,
		Found: true, Cache: src, CacheTTLMS: 5000, Region: region, WebNode: region + "-web-1"}, done)
}

// cacheFailoverHistory: hot key k written twice at epoch 1 (LSN 1 kept, LSN 2 discarded by a failover
// to epoch 2 at +10 s, the final logs holding LSN 1 only), then read from us-east's cache.
func cacheFailoverHistory(phantomAt float64) []history.Op {
	var h hist
	h.writeValue(1, "us-east", "k", "a", 0, history.TypeOK, 0.1, "us-east-db-1", 1)
	h.writeValue(1, "us-east", "k", "b", 1, history.TypeOK, 1.1, "us-east-db-1", 2)
	h.cacheRead(2, "us-east", "k", "b", history.CacheHit, 2, 2.01) // before the failover: not counted
	h.add(history.Op{Type: history.TypeEpoch, Epoch: 2, Node: "eu-west-db-1", Region: "eu-west"}, 10)
	if phantomAt > 0 {
		h.cacheRead(2, "us-east", "k", "b", history.CacheHit, phantomAt, phantomAt+0.01)
	}
	h.cacheRead(3, "eu-west", "k", "a", history.CacheHit, 12, 12.01)
	for _, n := range []string{"us-east-db-1", "eu-west-db-1"} {
		h.add(history.Op{Type: history.TypeLog, Node: n, Log: []history.LogEntry{{LSN: 1, Epoch: 1, Key: "k"}}}, 30)
	}
	return h.build()
}

func TestPhantomReads(t *testing.T) {
	r, ev := PhantomReads(cacheFailoverHistory(0), budgets(BudgetPhantom, 1))
	expectVerdict(t, r, verdict.Pass, 0)
	if ev.PhantomsBefore != 1 || ev.Phantoms != 0 {
		t.Errorf("evidence %+v, want 1 phantom before the failover and none after", ev)
	}
	r, ev = PhantomReads(cacheFailoverHistory(16), budgets(BudgetPhantom, 1))
	expectVerdict(t, r, verdict.Fail, 6)
	if ev.Phantoms != 1 || ev.Examples[0].Region != "us-east" || ev.Examples[0].WriteLSN != 2 {
		t.Errorf("evidence %+v, want one phantom of LSN 2 in us-east", ev)
	}
	var h hist
	h.writeValue(1, "us-east", "k", "a", 0, history.TypeOK, 0.1, "us-east-db-1", 1)
	h.read(1, "us-east", "k", 1, history.TypeOK, 1.1, true, 1, "a")
	if r, _ := PhantomReads(h.build(), budgets(BudgetPhantom, 1)); r.Verdict != verdict.Unknown {
		t.Errorf("no cache: %s, want unknown", r.Verdict)
	}
}

func TestStaleBeyondTTL(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readAt   float64
		want     verdict.Verdict
		measured float64
	}{
		{"within the TTL of the overwrite", 5.5, verdict.Pass, 0},
		{"2 s past it", 8.1, verdict.Fail, 2},
	} {
		var h hist
		h.writeValue(1, "us-east", "k", "a", 0, history.TypeOK, 0.1, "us-east-db-1", 1)
		h.writeValue(1, "us-east", "k", "b", 1, history.TypeOK, 1.1, "us-east-db-1", 2)
		h.cacheRead(2, "eu-west", "k", "a", history.CacheHit, tc.readAt, tc.readAt+0.01)
		r, _ := StaleBeyondTTL(h.build(), budgets(BudgetStaleBeyondTTL, 1))
		t.Run(tc.name, func(t *testing.T) { expectVerdict(t, r, tc.want, tc.measured) })
	}
}

func TestReadAmplificationAndHitRatio(t *testing.T) {
	var h hist
	// Window 0: 2 loads of hot (a miss and a skip; one more read with the cache down, counted
	// apart), 1 shared, 2 hits; window 1 (from +5 s): 1 load.
	h.cacheRead(1, "us-east", "hot", "a", history.CacheMiss, 0, 0.01)
	h.cacheRead(2, "us-east", "hot", "a", history.CacheShared, 0.005, 0.01)
	h.cacheRead(1, "us-east", "hot", "a", history.CacheHit, 1, 1.01)
	h.cacheRead(1, "us-east", "hot", "a", history.CacheSkip, 2, 2.01)
	h.cacheRead(1, "us-east", "hot", "a", history.CacheDown, 3, 3.3)
	h.cacheRead(1, "us-east", "hot", "a", history.CacheHit, 4, 4.01)
	h.cacheRead(1, "us-east", "hot", "a", history.CacheMiss, 6, 6.01)
	ops := h.build()
	r, ev := ReadAmplification(ops, budgets(BudgetReadAmplification, 1))
	expectVerdict(t, r, verdict.Fail, 2)
	if ev.Loads != 3 || ev.WhileDown != 1 || ev.Reads != 7 || ev.TTLSeconds != 5 {
		t.Errorf("evidence %+v", ev)
	}
	hr, hev := CacheHitRatio(ops, Config{})
	if hev.HitRatio != 28.6 || hr.Measured != 71.4 || hr.Verdict != verdict.Unknown {
		t.Errorf("hit ratio %+v, result %+v; want 28.6%% (2 of 7), not judged", hev, hr)
	}
	lr, lev := ReadLatency(ops, budgets(BudgetReadLatencyP99, 100))
	expectVerdict(t, lr, verdict.Fail, 300)
	if lev.P50 != 10 {
		t.Errorf("latency %+v, want p50 10 ms", lev)
	}
}
