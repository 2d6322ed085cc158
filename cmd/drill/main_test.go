package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drillworks/drill/topology"
)

// TestQuickstart runs the README's quickstart with the real binary: up, status, kv put, kv get
// through eu-west, down, and checks no node process is left.
func TestQuickstart(t *testing.T) {
	parallelDrill(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "drill")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// Its own topology name and address range, so it never meets another test's cluster.
	topo := topologyFile(t, dir, "quickstart")
	state := filepath.Join(dir, "state")
	drill := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--topology", topo, "--state-dir", state)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("drill %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { _ = exec.Command(bin, "down", "--topology", topo, "--state-dir", state).Run() })

	drill("up", "--runtime", "local") // the default, auto, would pick Docker where an engine answers
	digRightAfterUp(t, filepath.Join(state, "quickstart", "plan.json"))
	var st struct {
		Regions []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
		} `json:"regions"`
		Nodes []struct {
			Name    string `json:"name"`
			Role    string `json:"role"`
			Primary bool   `json:"primary"`
			State   string `json:"state"`
		} `json:"nodes"`
		DNS []struct {
			Region string `json:"region"`
			Addr   string `json:"addr"`
		} `json:"dns"`
	}
	if err := json.Unmarshal([]byte(drill("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	healthy, primaries := 0, 0
	for _, r := range st.Regions {
		if r.Healthy {
			healthy++
		}
	}
	for _, n := range st.Nodes {
		if n.Role == "db" && n.Primary {
			primaries++
		}
	}
	if healthy != 2 || primaries != 1 || len(st.DNS) != 2 {
		t.Fatalf("status: %d healthy regions, %d primaries, %d dns; want 2, 1, 2", healthy, primaries, len(st.DNS))
	}
	if out := drill("kv", "put", "k", "v"); !strings.HasPrefix(out, "OK ") {
		t.Fatalf("kv put: %q", out)
	}
	if out := drill("kv", "get", "k", "--via", "eu-west"); strings.TrimSpace(out) != "v" {
		t.Fatalf("kv get --via eu-west: %q", out)
	}
	drill("down")
	planPath := filepath.Join(state, "quickstart", "plan.json")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), planPath) {
			t.Fatalf("a node process is still running after down: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// TestUpReadyDocker: right after `drill up` on Docker returns, dig gets each region's web
// addresses from each GeoDNS instance on the first try.
func TestUpReadyDocker(t *testing.T) {
	needDocker(t)
	parallelDockerDrill(t)
	e := newEnv(t, "ready-docker")
	drill := func(args ...string) string {
		t.Helper()
		out, err := e.cmd(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("drill %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	drill("up", "--runtime", "docker")
	digRightAfterUp(t, filepath.Join(e.state, "ready-docker", "plan.json"))
	drill("down")
	e.assertNoDockerObjects()
}

// digRightAfterUp asks every GeoDNS instance of the plan `drill up` wrote, with dig and a single
// try, where the users near each region are sent (naming their region's documentation subnet in
// EDNS Client Subnet), and wants that region's web addresses, every one of them.
func digRightAfterUp(t *testing.T, planPath string) {
	t.Helper()
	digBin, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("SKIPPED: no dig on PATH (CI installs dnsutils): readiness at up NOT checked")
	}
	plan, err := topology.LoadPlan(planPath)
	if err != nil {
		t.Fatal(err)
	}
	tp := plan.Topology
	for _, d := range tp.NodesOf(topology.RoleDNS, "") {
		addr, _ := plan.NodeAddr(d.Name, topology.PortDNS)
		host, port, _ := net.SplitHostPort(addr)
		for _, r := range tp.Regions {
			out, err := exec.Command(digBin, "@"+host, "-p", port, "app."+tp.DNS.Zone, "+subnet="+r.ECSSubnet().String(),
				"+short", "+tries=1", "+time=2").CombinedOutput()
			if err != nil {
				t.Fatalf("dig @%s for %s: %v\n%s", addr, r.Name, err, out)
			}
			got := strings.Fields(string(out))
			var want []string
			for _, n := range tp.NodesOf(topology.RoleWeb, r.Name) {
				want = append(want, n.IP.String())
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("dig at %s for users near %s right after up: %v, want %s's web nodes %v", d.Name, r.Name, got, r.Name, want)
			}
		}
	}
}
