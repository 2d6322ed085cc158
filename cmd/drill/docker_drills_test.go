package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
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

// TestDockerDrills runs every built-in drill on the Docker runtime, as it is and under its
// known-bad design setting, with the same expectations as on the local runtime: each passes with
// its own budgets, and each known-bad variant fails on the check that catches the flaw, with a
// measured flaw.
func TestDockerDrills(t *testing.T) {
	needDocker(t)
	t.Parallel()
	for i, tc := range []struct {
		name string
		args []string
		// failCheck is empty for a run that must pass; else the check that must fail.
		failCheck string
		// topology is the built-in topology the drill runs on ("": default).
		topology string
	}{
		{"region-outage passes", []string{"region-outage"}, "", ""},
		{"region-outage loses writes under async", []string{"region-outage", "--budget", "lost_acked_writes=0"}, "lost_acked_writes", ""},
		{"primary-kill passes", []string{"primary-kill"}, "", ""},
		{"primary-kill loses writes under async", []string{"primary-kill", "--budget", "lost_acked_writes=0"}, "lost_acked_writes", ""},
		{"wan-latency passes", []string{"wan-latency"}, "", ""},
		{"wan-latency reads stale without read-your-writes", []string{"wan-latency", "--set", "read_your_writes=off"}, "stale_reads", ""},
		{"region-partition passes with lease fencing", []string{"region-partition"}, "", ""},
		{"region-partition splits brain without fencing", []string{"region-partition", "--set", "fencing=none"}, "split_brain", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallelDockerDrill(t)
			if tc.topology == "" {
				tc.topology = "default"
			} else {
				needRedis(t)
			}
			e := newEnvOf(t, fmt.Sprintf("docker-%d", i), tc.topology)
			start := time.Now()
			code, out := e.run(append(tc.args, "--runtime", "docker")...)
			r := e.reportJSON()
			e.assertNoDockerObjects() // run tears its cluster down, pass or fail
			t.Logf("%s on docker: %s wall, exit %d, verdict %s; dns failover %v s, rto %v, lost %v, split brain %v s, stale reads %v",
				tc.args[0], time.Since(start).Round(time.Second), code, r.Verdict, deref(r.Metrics.DNSFailoverS), r.Metrics.RTOS,
				derefInt(r.Metrics.LostAckedWrites), deref(r.Metrics.SplitBrainS), derefInt(r.Metrics.StaleReads))
			e.judge(code, out, tc.failCheck)
		})
	}
}

// TestDockerInterruptMidFault sends SIGINT while a black-hole is in force on Docker: the run must
// undo it, tear down (no labelled container or network left) and report verdict aborted.
func TestDockerInterruptMidFault(t *testing.T) {
	needDocker(t)
	parallelDockerDrill(t)
	e := newEnv(t, "docker-interrupt")
	e.interruptMidFault("docker")
	e.assertNoDockerObjects()
}

// TestDockerKill9MidFaultThenRecover kills drill with SIGKILL while a partition's nftables rules
// are in the containers: `drill recover` must remove them from the ledger, and `drill down` must
// leave no labelled container or network.
func TestDockerKill9MidFaultThenRecover(t *testing.T) {
	needDocker(t)
	parallelDockerDrill(t)
	e := newEnv(t, "docker-kill9")
	rt, err := docker.New(docker.Config{RunDir: filepath.Join(e.state, "docker-kill9")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e.kill9MidPartitionThenRecover("docker", func(cmd *exec.Cmd, out *lockedBuffer) {
		// The ledger records a fault before applying it: wait until its rules are in the containers.
		for {
			rules, err := rt.PacketRules(ctx)
			if err == nil && len(rules) > 0 {
				return
			}
			if ctx.Err() != nil {
				_ = cmd.Process.Kill()
				t.Fatalf("the partition's nftables tables never appeared (last: %v, %v)\n%s", rules, err, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}, func() {
		if rules, err := rt.PacketRules(ctx); err != nil || len(rules) != 0 {
			t.Fatalf("after recover: packet rules %v (%v), want none", rules, err)
		}
	})
	e.assertNoDockerObjects()
}

// assertNoDockerObjects fails if any container or network labelled with this test's topology
// exists (node containers, nftables helpers, networks; nftables rules live in the containers'
// network namespaces and go with them).
func (e *env) assertNoDockerObjects() {
	e.t.Helper()
	eng, err := docker.NewEngine()
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	labels := map[string]string{docker.LabelTopology: strings.TrimSuffix(filepath.Base(e.topo), ".yaml"), docker.LabelOwner: docker.Owner()}
	cs, err := eng.ContainerList(ctx, labels)
	if err != nil {
		e.t.Fatal(err)
	}
	nets, err := eng.NetworkList(ctx, labels)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range cs {
		e.t.Errorf("container left: %s (%s)", c.Name, c.State)
	}
	for _, n := range nets {
		e.t.Errorf("network left: %s", n.Name)
	}
}

// TestImageBuildCommand: `drill image build -o json` names the node image it made or found, and
// the engine has it; a second build finds it there.
func TestImageBuildCommand(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := newEnv(t, "image-build")
	type built struct {
		Ref   string  `json:"ref"`
		Built bool    `json:"built"`
		TookS float64 `json:"took_s"`
	}
	build := func() built {
		t.Helper()
		cmd := e.cmd("image", "build", "-o", "json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		var b built
		if err := cmd.Run(); err != nil || json.Unmarshal(stdout.Bytes(), &b) != nil || !strings.HasPrefix(b.Ref, "drill-node:") {
			t.Fatalf("image build -o json: %v: %+v\n%s%s", err, b, stdout.String(), stderr.String())
		}
		return b
	}
	first := build()
	eng, err := docker.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if ok, err := eng.ImageExists(context.Background(), first.Ref); err != nil || !ok {
		t.Fatalf("the engine has no %s after the build (%v)", first.Ref, err)
	}
	if again := build(); again.Ref != first.Ref || again.Built {
		t.Errorf("a second build: %+v, want %s found, not built", again, first.Ref)
	}
}
