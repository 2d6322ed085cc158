package docker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/docker"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// BenchmarkUpToConverged times `drill up --runtime docker`: from Up until the cluster is
// converged (every member alive, one primary holding its lease, replicas caught up). "cold"
// removes the node image first, so Up imports it again; "cached" finds it. Down is not timed.
//
//	go test -run '^$' -bench UpToConverged -benchtime 3x ./compose/docker/
func BenchmarkUpToConverged(b *testing.B) {
	if err := docker.Available(context.Background(), 5*time.Second); err != nil {
		b.Skipf("SKIPPED: no Docker engine answers (%v): nothing measured", err)
	}
	eng, err := docker.NewEngine()
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	bin := drillBinary(&testing.T{})
	im, err := docker.ImageFor(bin)
	if err != nil {
		b.Fatal(err)
	}
	ref := im.Ref()
	for _, mode := range []string{"cold", "cached"} {
		b.Run(mode, func(b *testing.B) {
			var samples []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ctx := context.Background()
				if mode == "cold" {
					if ok, err := eng.ImageExists(ctx, ref); err != nil {
						b.Fatal(err)
					} else if ok {
						if err := eng.ImageRemove(ctx, ref); err != nil {
							b.Fatal(err)
						}
					}
				}
				topo := topology.Default()
				topo.Name = "bench-docker-up"
				topo.Network.DockerBase = netalloc.Private(b).String()
				runDir := b.TempDir()
				rt, err := docker.New(docker.Config{RunDir: runDir, Binary: bin, Engine: eng})
				if err != nil {
					b.Fatal(err)
				}
				plan, err := docker.NewPlan(topo, runDir)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				upErr := rt.Up(ctx, plan)
				if upErr == nil {
					_, upErr = observe.New(plan, rt).WaitConverged(ctx, 2*time.Minute)
				}
				took := time.Since(start)
				b.StopTimer()
				down, cancel := context.WithTimeout(ctx, 2*time.Minute)
				downErr := rt.Down(down)
				cancel()
				if upErr != nil || downErr != nil {
					b.Fatalf("up: %v; down: %v", upErr, downErr)
				}
				samples = append(samples, took)
				b.StartTimer()
			}
			slices.Sort(samples)
			b.Logf("%s: up to converged %v", mode, samples)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(samples[len(samples)/2].Seconds(), "up_median_s")
			b.ReportMetric(samples[len(samples)-1].Seconds(), "up_max_s")
		})
	}
}
