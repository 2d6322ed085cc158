package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
