package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// startRedis runs a real redis-server on a free loopback port; the test fails (not skips) in CI
// where redis-server is installed, and says loudly why it skipped elsewhere.
func startRedis(t *testing.T) (*Server, string) {
	t.Helper()
	if _, err := FindBinary(); err != nil {
		if os.Getenv("DRILL_CI") != "" {
			t.Fatalf("redis-server is required in CI (DRILL_CI is set): %v", err)
		}
		t.Skipf("SKIPPED, needs a real redis-server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir := t.TempDir()
	s, err := Start(context.Background(), ServerConfig{Host: "127.0.0.1", Port: port, Password: "test-password",
		DataDir: dir, MaxMemory: "16mb", Eviction: "allkeys-lru", Persistence: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func TestServerNeedsItsPassword(t *testing.T) {
	s, addr := startRedis(t)
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	defer anon.Close()
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil {
		t.Fatal("SET without the password was accepted")
	}
	wrong := NewClient(addr, "guess")
	defer wrong.Close()
	if err := wrong.Get(ctx, "k").Err(); err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("GET with a wrong password: %v, want refused", err)
	}
	good := NewClient(addr, "test-password")
	defer good.Close()
	if err := good.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with the password: %v", err)
	}
	fi, err := os.Stat(filepath.Join(s.cfg.DataDir, "redis.conf"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("redis.conf: %v, mode %v; want 0600 (it holds the password)", err, fi.Mode().Perm())
	}
	s.Stop()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("redis-server still running after Stop")
	}
}

// counter is a database stand-in that counts loads and answers with a fixed entry.
type counter struct {
	loads atomic.Int64
	delay time.Duration
	entry Entry
}

func (c *counter) load(ctx context.Context) Loaded {
	c.loads.Add(1)
	time.Sleep(c.delay)
	return Loaded{Code: 200, Found: true, Entry: c.entry, Body: map[string]any{"value": c.entry.Value}}
}

func newAside(addr string, coalesce, allRegions bool) *Aside {
	return NewAside(AsideConfig{Region: "r1", Nodes: []Node{{Name: "r1-cache-1", Region: "r1", Addr: addr}},
		Password: "test-password", TTL: 5 * time.Second, Coalesce: coalesce, AllRegions: allRegions})
}

func TestAsideServesReadsThroughTheCache(t *testing.T) {
	_, addr := startRedis(t)
	ctx := context.Background()
	db := &counter{entry: Entry{Value: "v1", LSN: 10, KeyLSN: 7, Epoch: 2, DBNode: "db-1"}}
	a := newAside(addr, true, true)
	defer a.Close()
	steps := []struct {
		name string
		want Want
		src  Source
	}{
		{"first read fills", Want{Epoch: 2}, Miss},
		{"second read hits", Want{Epoch: 2}, Hit},
		{"a client whose write is newer than the entry skips it", Want{MinLSN: 11, MinEpoch: 2, Epoch: 2}, Skip},
		{"a client whose write the entry holds hits", Want{MinLSN: 10, MinEpoch: 2, Epoch: 2}, Hit},
		{"a newer primary epoch skips the entry", Want{Epoch: 3}, Skip},
		{"a web node unsure of the primary skips the cache", Want{Epoch: 2, Unsettled: true}, Skip},
		{"a client asking for a fresh answer skips the entry", Want{Epoch: 2, Refresh: true}, Skip},
	}
	for _, st := range steps {
		l, src := a.Get(ctx, "k", st.want, db.load)
		if src != st.src || l.Code != 200 || l.Entry.Value != "v1" {
			t.Fatalf("%s: source %s, code %d, value %q; want %s, 200, v1", st.name, src, l.Code, l.Entry.Value, st.src)
		}
	}
	if err := a.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, src := a.Get(ctx, "k", Want{Epoch: 2}, db.load); src != Miss {
		t.Fatalf("read after invalidation: %s, want miss", src)
	}
	if got := db.loads.Load(); got != 6 {
		t.Errorf("database loads = %d, want 6 (miss, 4 skips, miss after invalidation)", got)
	}

	// Local invalidation keeps serving an entry of an older epoch until its TTL.
	local := newAside(addr, true, false)
	defer local.Close()
	if _, src := local.Get(ctx, "k", Want{Epoch: 9}, db.load); src != Hit {
		t.Errorf("local invalidation with a newer epoch: %s, want hit (entries live until their TTL)", src)
	}
}

func TestAsideCoalescesConcurrentMisses(t *testing.T) {
	_, addr := startRedis(t)
	for _, coalesce := range []bool{true, false} {
		db := &counter{delay: 100 * time.Millisecond, entry: Entry{Value: "v", LSN: 1, Epoch: 1}}
		a := newAside(addr, coalesce, true)
		key := "hot-" + map[bool]string{true: "on", false: "off"}[coalesce]
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.Get(context.Background(), key, Want{}, db.load)
			}()
		}
		wg.Wait()
		a.Close()
		got := db.loads.Load()
		if coalesce && got > 2 {
			t.Errorf("coalescing on: %d database loads for 20 concurrent misses, want 1 (2 if one read came after the fill)", got)
		}
		if !coalesce && got < 10 {
			t.Errorf("coalescing off: %d database loads for 20 concurrent misses, want most of 20", got)
		}
	}
}

func TestAsideFallsBackWhenTheCacheIsDown(t *testing.T) {
	s, addr := startRedis(t)
	s.Stop()
	db := &counter{entry: Entry{Value: "v", LSN: 1, Epoch: 1}}
	a := newAside(addr, true, true)
	defer a.Close()
	l, src := a.Get(context.Background(), "k", Want{}, db.load)
	if src != Down || l.Code != 200 || l.Entry.Value != "v" || db.loads.Load() != 1 {
		t.Fatalf("cache down: source %s, code %d, value %q, loads %d; want down, 200, v, 1", src, l.Code, l.Entry.Value, db.loads.Load())
	}
	if err := a.Invalidate(context.Background(), "k"); err == nil {
		t.Error("invalidation of a stopped cache reported success")
	}
}

func TestAsideCachesAbsentKeys(t *testing.T) {
	_, addr := startRedis(t)
	var loads atomic.Int64
	absent := func(context.Context) Loaded {
		loads.Add(1)
		return Loaded{Code: 404, Entry: Entry{Absent: true, LSN: 3, Epoch: 1}, Body: map[string]any{"found": false}}
	}
	a := newAside(addr, true, true)
	defer a.Close()
	for i, want := range []Source{Miss, Hit, Hit} {
		l, src := a.Get(context.Background(), "never-written", Want{Epoch: 1}, absent)
		if src != want || l.Code != 404 || l.Found {
			t.Fatalf("read %d: source %s, code %d, found %v; want %s, 404, not found", i, src, l.Code, l.Found, want)
		}
	}
	if loads.Load() != 1 {
		t.Errorf("%d database reads for an absent key read 3 times, want 1", loads.Load())
	}
}

// TestCollectorReadsTheRealRedis: the node's metrics are redis's own numbers (keys, hits and
// misses after a few commands), and a redis that does not answer reads as drill_cache_up 0.
func TestCollectorReadsTheRealRedis(t *testing.T) {
	s, addr := startRedis(t)
	c := NewClient(addr, "test-password")
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	for i := range 3 {
		if err := c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Get(ctx, "k0").Err()      // a hit
	_ = c.Get(ctx, "missing").Err() // a miss
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	values := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
		return out
	}
	got := values()
	for name, want := range map[string]float64{"drill_cache_up": 1, "drill_cache_keys": 3, "drill_cache_hits_total": 1, "drill_cache_misses_total": 1} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	if got["drill_cache_used_memory_bytes"] <= 0 || got["drill_cache_max_memory_bytes"] != 16<<20 {
		t.Errorf("memory: used %v, max %v, want used > 0 and max 16 MiB", got["drill_cache_used_memory_bytes"], got["drill_cache_max_memory_bytes"])
	}
	s.Stop()
	if got := values(); got["drill_cache_up"] != 0 || len(got) != 1 {
		t.Errorf("a stopped redis: %v, want drill_cache_up 0 alone", got)
	}
}

func TestParseInfo(t *testing.T) {
	info := parseInfo("# Stats\r\nkeyspace_hits:7\r\nkeyspace_misses:2\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=12,avg_ttl=5000\r\n")
	if info["keyspace_hits"] != "7" || info["keyspace_misses"] != "2" || keyspaceKeys(info["db0"]) != 12 {
		t.Errorf("parsed %v", info)
	}
	if keyspaceKeys("") != 0 {
		t.Error("no db0 line must read as 0 keys")
	}
}
