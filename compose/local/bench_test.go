package local_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/local"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// BenchmarkUpToConverged times `drill up` on the local runtime: from Up until the cluster is
// converged (every member alive, one primary holding its lease, replicas caught up).
func BenchmarkUpToConverged(b *testing.B) {
	bin := drillBinary(&testing.T{})
	topo := topology.Default()
	topo.Name = "bench-up"
	topo.Network.LoopbackBase = netalloc.Loopback(b).String()
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runDir := b.TempDir()
		rt, err := local.New(local.Config{RunDir: runDir, Binary: bin})
		if err != nil {
			b.Fatal(err)
		}
		plan, err := local.NewPlan(topo, runDir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := rt.Up(context.Background(), plan); err != nil {
			b.Fatal(err)
		}
		if _, err := observe.New(plan, rt).WaitConverged(context.Background(), time.Minute); err != nil {
			_ = rt.Down(context.Background())
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
		b.StopTimer()
		if err := rt.Down(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(samples[len(samples)/2].Seconds(), "up_median_s")
	b.ReportMetric(samples[len(samples)-1].Seconds(), "up_max_s")
}

// benchCluster brings topo up on the local runtime in an address range of the benchmark's own,
// waits until it converged, and takes it down when the benchmark ends.
func benchCluster(b *testing.B, topo *topology.Topology) (*topology.Plan, *local.Runtime) {
	b.Helper()
	topo.Network.LoopbackBase = netalloc.Loopback(b).String()
	runDir := b.TempDir()
	rt, err := local.New(local.Config{RunDir: runDir, Binary: drillBinary(&testing.T{})})
	if err != nil {
		b.Fatal(err)
	}
	plan, err := local.NewPlan(topo, runDir)
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Up(context.Background(), plan); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Down(context.Background()) })
	if _, err := observe.New(plan, rt).WaitConverged(context.Background(), time.Minute); err != nil {
		b.Fatal(err)
	}
	return plan, rt
}

// BenchmarkReplicationLag writes at a steady rate through us-east's web tier and measures, for
// every write, the delay from its acknowledgement until eu-west's replica serves it (the
// asynchronous replication lag a user sees), with the default 40 ms one-way WAN latency.
func BenchmarkReplicationLag(b *testing.B) {
	topo := topology.Default()
	topo.Name = "bench-lag"
	plan, rt := benchCluster(b, topo)
	c := &cluster{plan: plan, rt: rt, http: &http.Client{Timeout: 3 * time.Second}}
	replica, _ := rt.Endpoint("eu-west-db-1", topology.PortDB)

	const rate = 200 // writes per second
	const duration = 5 * time.Second
	var (
		mu     sync.Mutex
		delays []time.Duration
		wg     sync.WaitGroup
	)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		tick := time.NewTicker(time.Second / rate)
		stop := time.Now().Add(duration)
		for i := 0; time.Now().Before(stop); i++ {
			<-tick.C
			key := fmt.Sprintf("lag-%d-%d", n, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := c.put("us-east", key, "v")
				if r.Code != http.StatusOK {
					return
				}
				acked := time.Now()
				for deadline := acked.Add(5 * time.Second); time.Now().Before(deadline); {
					resp, err := c.http.Get("http://" + replica + "/v1/kv/" + key)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							mu.Lock()
							delays = append(delays, time.Since(acked))
							mu.Unlock()
							return
						}
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		tick.Stop()
	}
	wg.Wait()
	b.StopTimer()
	if len(delays) == 0 {
		b.Fatal("no write became visible in eu-west")
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	pct := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "lag_p50_ms")
	b.ReportMetric(pct(0.99), "lag_p99_ms")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "lag_max_ms")
	b.ReportMetric(float64(len(delays))/float64(b.N)/duration.Seconds(), "replicated_writes/s")
}

// BenchmarkCacheReads measures the web tier's read throughput and latency with the cache warm and
// without it, in one run on one cluster (the cache topology): 16 clients read 100 hot keys
// through us-east's web nodes for 5 s each way, once served by the cache and once with
// Cache-Control: no-cache (every read goes to the database, as without a cache). Bounded: 3 x 5 s
// per iteration (a warm-up, then the two measured).
func BenchmarkCacheReads(b *testing.B) {
	topo, _ := topology.Builtin("cache")
	topo.Name = "bench-cache"
	plan, _ := benchCluster(b, topo)
	var webs []string
	for _, n := range plan.Topology.NodesOf(topology.RoleWeb, "us-east") {
		webs = append(webs, "http://"+n.Addr(topology.PortWeb))
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	const keys = 100
	for k := 0; k < keys; k++ {
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/kv/hot-%d", webs[0], k), strings.NewReader("value"))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	measure := func(noCache bool) (perSec float64, p99 time.Duration) {
		const clients, span = 16, 5 * time.Second
		lat := load(b, clients, span, func(c, i int) bool {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/kv/hot-%d", webs[c%len(webs)], (c*31+i)%keys), nil)
			if noCache {
				req.Header.Set("Cache-Control", "no-cache")
			}
			return answered200(client.Do(req))
		})
		return float64(len(lat)) / span.Seconds(), lat[len(lat)*99/100]
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		measure(false) // warm: every hot key cached
		cached, cachedP99 := measure(false)
		direct, directP99 := measure(true)
		b.ReportMetric(cached, "cached_reads/s")
		b.ReportMetric(direct, "db_reads/s")
		b.ReportMetric(cached/direct, "throughput_ratio")
		b.ReportMetric(float64(cachedP99.Microseconds())/1000, "cached_p99_ms")
		b.ReportMetric(float64(directP99.Microseconds())/1000, "db_p99_ms")
	}
}

// BenchmarkJobs measures jobs through the whole queue path in one run on one cluster (the queue
// topology): 16 clients publish jobs with no work (POST /jobs to us-east's web nodes) for 5 s,
// each answered once JetStream stored it; us-east's two workers (4 jobs at a time each) check and
// record every completion on the primary. Reported: acknowledged publishes per second and their
// p99, and jobs completed per second from the first publish until the queue was empty again.
// Bounded: 5 s of publishing and at most 60 s of draining per iteration.
func BenchmarkJobs(b *testing.B) {
	topo, _ := topology.Builtin("queue")
	topo.Name = "bench-queue"
	plan, rt := benchCluster(b, topo)
	obs := observe.New(plan, rt)
	var webs []string
	for _, n := range plan.Topology.NodesOf(topology.RoleWeb, "us-east") {
		webs = append(webs, "http://"+n.Addr(topology.PortWeb)+"/jobs")
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	backlog := func() (uint64, bool) {
		st, err := obs.Status(context.Background())
		if err != nil {
			return 0, false
		}
		for _, n := range st.Nodes {
			if n.Role == topology.RoleQueue && n.Region == "us-east" && n.State == observe.StateAlive {
				return n.Backlog, true
			}
		}
		return 0, false
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		const clients, span = 16, 5 * time.Second
		start := time.Now()
		lat := load(b, clients, span, func(c, j int) bool {
			body := fmt.Sprintf(`{"id":"bench-%d-%d-%d","work_ms":0}`, i, c, j)
			return answered200(client.Post(webs[c%len(webs)], "application/json", strings.NewReader(body)))
		})
		// Drained: the queue's published backlog, as it reports it in gossip, back to zero.
		drainDeadline := time.Now().Add(60 * time.Second)
		for {
			if n, ok := backlog(); ok && n == 0 {
				break
			}
			if time.Now().After(drainDeadline) {
				b.Fatal("the queue did not drain within 60 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		done := time.Since(start)
		b.ReportMetric(float64(len(lat))/span.Seconds(), "published/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "publish_p99_ms")
		b.ReportMetric(float64(len(lat))/done.Seconds(), "completed/s")
	}
}

// load runs clients goroutines calling do(client, i) for i = 0, 1, ... until span has passed, and
// returns the latencies of the calls that succeeded, sorted; it fails b when none did.
func load(b *testing.B, clients int, span time.Duration, do func(c, i int) bool) []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(span)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				start := time.Now()
				if do(c, i) {
					mine = append(mine, time.Since(start))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	if len(lat) == 0 {
		b.Fatal("no request succeeded")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

// answered200 reads and closes a response: whether the request answered 200.
func answered200(resp *http.Response, err error) bool {
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
