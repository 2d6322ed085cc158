package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/topology"
)

// needRedis skips a test that brings up cache nodes where no redis-server is installed, saying so
// loudly; in CI (DRILL_CI, set by .ci/run, which installs it) a missing one fails the test.
func needRedis(t *testing.T) {
	t.Helper()
	if _, err := cache.FindBinary(); err != nil {
		if os.Getenv("DRILL_CI") != "" {
			t.Fatalf("redis-server is required in CI: %v", err)
		}
		t.Skipf("SKIPPED: the cache tier was NOT tested: %v", err)
	}
}

// TestCacheDrills runs both cache drills on the local runtime, as they are and under their
// known-bad settings: each passes, and each known-bad variant fails on the check that catches it
// with a measured flaw. (Docker: TestCacheNodesRunRealRedis and drills/accuracy.sh.)
func TestCacheDrills(t *testing.T) {
	runDrillTable(t, "cache", "cache", needRedis, []drillCase{
		{"cache-failover passes", []string{"cache-failover"}, ""},
		{"cache-failover serves phantoms with local invalidation", []string{"cache-failover", "--set", "cache_invalidation=local"}, "phantom_reads"},
		{"cache-stampede passes", []string{"cache-stampede"}, ""},
		{"cache-stampede amplifies reads without coalescing", []string{"cache-stampede", "--set", "cache_coalescing=off"}, "db_read_amplification"},
	})
}

// cacheFaultsDrill aims the process faults at cache nodes and the WAN faults between regions
// (which cross-region invalidations take) while users read hot keys through the caches.
const cacheFaultsDrill = `name: cache-faults
topology: cache
budgets:
  stale_reads: 0
  phantom_s: 0
  read_p99_ms: 2000
workload:
  clients_per_region: 4
  write_rate: 2
  hot_keys: 20
  reads_per_write: 10
steps:
  - steady: {within: 20s, expect: [converged, primary_in us-east]}
  - workload: start
  - wait: 2s
  - inject: {fault: freeze, id: f, target: us-east-cache-1}
  - wait: 2s
  - heal: f
  - inject: {fault: kill, id: k, target: eu-west-cache-1}
  - wait: 2s
  - heal: k
  - inject: {fault: latency, id: l, regions: [us-east, eu-west], latency: 100ms}
  - wait: 2s
  - heal: l
  - inject: {fault: loss, id: x, regions: [us-east, eu-west], percent: 30}
  - wait: 2s
  - heal: x
  - expect: {condition: converged, within: 20s}
  - workload: stop
  - verify: {final_read: true}
`

// TestFaultsReachCacheNodes: a frozen cache (its redis too) and a killed one send reads to the
// database (the history says "down"), read-your-writes and the other promises hold, every fault
// is undone, and the cluster converges again.
func TestFaultsReachCacheNodes(t *testing.T) {
	needRedis(t)
	parallelDrill(t)
	e := newEnvOf(t, "cache-faults", "cache")
	file := filepath.Join(filepath.Dir(e.topo), "cache-faults-drill.yaml")
	if err := os.WriteFile(file, []byte(cacheFaultsDrill), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := e.run(file)
	r := e.judge(code, out, "")
	_, missPct, detail := r.check(t, "cache_hit_ratio")
	if !strings.Contains(detail, "down ") || strings.Contains(detail, "down 0)") {
		t.Fatalf("no read found its cache down while it was frozen or killed: %s (miss %v%%)", detail, missPct)
	}
	t.Log(detail)
}

// TestCacheNodesRunRealRedis brings the cache topology up on each runtime, writes and reads keys
// through the web tier, and asks every cache node's redis (with the password `drill cache
// password` prints) for its keyspace: the reads filled it. After down no redis is left.
func TestCacheNodesRunRealRedis(t *testing.T) {
	for _, rt := range []string{"local", "docker"} {
		t.Run(rt, func(t *testing.T) {
			needRedis(t)
			if rt == "docker" {
				needDocker(t)
				parallelDockerDrill(t)
			} else {
				parallelDrill(t)
			}
			e := newEnvOf(t, "redis-"+rt, "cache")
			drill := func(args ...string) (string, string) {
				t.Helper()
				c := e.cmd(args...)
				var stdout, stderr strings.Builder
				c.Stdout, c.Stderr = &stdout, &stderr
				if err := c.Run(); err != nil {
					t.Fatalf("drill %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
				}
				return stdout.String(), stderr.String()
			}
			drill("up", "--runtime", rt)
			for i := range 5 {
				drill("kv", "put", fmt.Sprintf("k%d", i), "v", "--via", "us-east")
				for range 2 {
					drill("kv", "get", fmt.Sprintf("k%d", i), "--via", "eu-west", "--wait", "5s")
				}
			}
			password, addrs := drill("cache", "password")
			password = strings.TrimSpace(password)
			var eu string
			for _, line := range strings.Split(strings.TrimSpace(addrs), "\n") {
				if name, addr, ok := strings.Cut(line, "\t"); ok && strings.HasPrefix(name, "eu-west-cache") {
					eu = addr
				}
			}
			if eu == "" || password == "" {
				t.Fatalf("cache password printed %q and addresses %q", password, addrs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			anon := redis.NewClient(&redis.Options{Addr: eu, Protocol: 2, MaxRetries: -1})
			defer anon.Close()
			if err := anon.Get(ctx, "k0").Err(); err == nil || err == redis.Nil {
				t.Errorf("eu-west's redis answered a client without the password: %v", err)
			}
			c := redis.NewClient(&redis.Options{Addr: eu, Password: password, Protocol: 2, MaxRetries: -1})
			defer c.Close()
			info, err := c.Info(ctx, "keyspace", "server").Result()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(info, "redis_version:") || !strings.Contains(info, "db0:keys=") {
				t.Fatalf("eu-west's redis INFO shows no keys after reads through the cache:\n%s", info)
			}
			t.Logf("eu-west cache: %s", keyspaceLine(info))
			plan, err := topology.LoadPlan(filepath.Join(e.state, "redis-"+rt, "plan.json"))
			if err != nil {
				t.Fatal(err)
			}
			drill("down")
			if rt == "docker" {
				e.assertNoDockerObjects()
				return
			}
			for _, n := range plan.Topology.NodesOf(topology.RoleCache, "") {
				if redisRunning(n.Addr(topology.PortCache)) {
					t.Errorf("redis-server of %s still runs after down", n.Name)
				}
			}
		})
	}
}

func keyspaceLine(info string) string {
	for _, l := range strings.Split(info, "\n") {
		if strings.HasPrefix(l, "db0:") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// redisRunning reports whether a redis-server process listens at addr (its title names it).
func redisRunning(addr string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "redis-server") && strings.Contains(string(b), addr) {
			return true
		}
	}
	return false
}
