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

// TestDockerDrills runs every built-in drill on the Docker runtime, as it is and under its
// known-bad design setting, with the same expectations as on the local runtime: each passes with
// its own budgets, and each known-bad variant fails on the check that catches the flaw, with a
// measured flaw.
func TestDockerDrills(t *testing.T) {
	needDocker(t)
	for _, tc := range []struct {
		name  string
		octet int
		args  []string
		// failCheck is empty for a run that must pass; else the check that must fail.
		failCheck string
	}{
		{"region-outage passes", 111, []string{"region-outage"}, ""},
		{"region-outage loses writes under async", 113, []string{"region-outage", "--budget", "lost_acked_writes=0"}, "lost_acked_writes"},
		{"primary-kill passes", 114, []string{"primary-kill"}, ""},
		{"primary-kill loses writes under async", 115, []string{"primary-kill", "--budget", "lost_acked_writes=0"}, "lost_acked_writes"},
		{"wan-latency passes", 116, []string{"wan-latency"}, ""},
		{"wan-latency reads stale without read-your-writes", 117, []string{"wan-latency", "--set", "read_your_writes=off"}, "stale_reads"},
		{"region-partition passes with lease fencing", 118, []string{"region-partition"}, ""},
		{"region-partition splits brain without fencing", 112, []string{"region-partition", "--set", "fencing=none"}, "split_brain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := dockerEnv(t, fmt.Sprintf("docker-%d", tc.octet), tc.octet)
			start := time.Now()
			code, out := e.run(append(tc.args, "--runtime", "docker")...)
			r := e.reportJSON()
			t.Logf("%s on docker: %s wall, exit %d, verdict %s; dns failover %v s, rto %v, lost %v, split brain %v s, stale reads %v",
				tc.args[0], time.Since(start).Round(time.Second), code, r.Verdict, deref(r.Metrics.DNSFailoverS), r.Metrics.RTOS,
				derefInt(r.Metrics.LostAckedWrites), deref(r.Metrics.SplitBrainS), derefInt(r.Metrics.StaleReads))
			if tc.failCheck == "" {
				if code != 0 || r.Verdict != "pass" {
					t.Fatalf("want a pass; exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
				}
				return
			}
			v, measured, detail := r.check(t, tc.failCheck)
			if code != 1 || v != "fail" || measured <= 0 {
				t.Fatalf("want exit 1 and %s failing with a measured flaw; exit %d, check %s measured %v (%s)\n%s",
					tc.failCheck, code, v, measured, detail, out)
			}
			t.Logf("%s: %v (%s)", tc.failCheck, measured, detail)
		})
	}
}
