package local_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
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

// BenchmarkReplicationLag writes at a steady rate through us-east's web tier and measures, for
// every write, the delay from its acknowledgement until eu-west's replica serves it (the
// asynchronous replication lag a user sees), with the default 40 ms one-way WAN latency.
func BenchmarkReplicationLag(b *testing.B) {
	bin := drillBinary(&testing.T{})
	topo := topology.Default()
	topo.Name = "bench-lag"
	topo.Network.LoopbackBase = netalloc.Loopback(b).String()
	runDir := b.TempDir()
	rt, err := local.New(local.Config{RunDir: runDir, Binary: bin})
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
	defer func() { _ = rt.Down(context.Background()) }()
	if _, err := observe.New(plan, rt).WaitConverged(context.Background(), time.Minute); err != nil {
		b.Fatal(err)
	}
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
