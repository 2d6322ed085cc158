package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/local"
	"github.com/drillworks/drill/topology"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}, args)
	return code, out.String(), errOut.String()
}

func TestBadTopologyFilesExitTwoAndStartNothing(t *testing.T) {
	files, err := filepath.Glob("../../../../topology/testdata/bad/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("bad topology fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			state := t.TempDir()
			code, _, stderr := run(t, "up", "--topology", f, "--state-dir", state)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, stderr)
			}
			// file:line:col: field: message
			if !strings.Contains(stderr, f+":") || strings.Count(strings.SplitN(stderr, "\n", 2)[0], ":") < 4 {
				t.Fatalf("error does not name file, line, column and field: %q", stderr)
			}
			entries, _ := os.ReadDir(state)
			if len(entries) != 0 {
				t.Fatalf("state dir not empty after a rejected topology: %v", entries)
			}
		})
	}
}

// TestOversizedInputFilesExitTwo: a topology, drill or game-day plan file over the input limit
// (a wrong path: a log, a generated dump) is refused with exit 2 naming the file, before it is
// parsed and before anything starts.
func TestOversizedInputFilesExitTwo(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "huge.yaml")
	// Valid YAML all the way (a comment), so only the size can be what is refused.
	if err := os.WriteFile(big, append([]byte("# "), bytes.Repeat([]byte("x"), 1<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"up", "--topology", big},
		{"run", big, "--runtime", "local"},
		{"gameday", "run", big},
	} {
		state := t.TempDir()
		code, _, stderr := run(t, append(args, "--state-dir", state)...)
		if code != ExitUsage || !strings.Contains(stderr, big+": ") || !strings.Contains(stderr, "over the 1048576-byte limit") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming the file and the limit", args, code, stderr, ExitUsage)
		}
		if entries, _ := os.ReadDir(state); len(entries) != 0 {
			t.Errorf("%v left state behind: %v", args, entries)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	state := t.TempDir()
	cases := [][]string{
		{"up", "--set", "fencing=maybe", "--state-dir", state},
		{"up", "--set", "nonsense", "--state-dir", state},
		{"up", "--runtime", "mars", "--state-dir", state},
		{"frobnicate"},
		{"up", "--no-such-flag"},
		{"kv", "put", "only-key"},
		{"explore", "--kinds", "meteor", "--state-dir", state},
		{"explore", "--max-faults", "0", "--state-dir", state},
		{"explore", "--set", "fencing=maybe", "--state-dir", state},
	}
	for _, args := range cases {
		code, _, stderr := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, stderr)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Fatalf("usage errors left state behind: %v", entries)
	}
}

func TestStatusWithoutClusterIsHarnessError(t *testing.T) {
	code, _, stderr := run(t, "status", "--state-dir", t.TempDir())
	if code != ExitHarness || !strings.Contains(stderr, "no cluster is up") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "drill ") {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

// TestDNSServeRefusesAPublicAddress: `drill dns serve` binds a reachable address, for DNS or for
// its HTTP status and metrics, only when told to with --public (it would answer anyone, _status
// included).
func TestDNSServeRefusesAPublicAddress(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:5353", "[::]:5353", "192.0.2.1:5353"} {
		code, _, stderr := run(t, "dns", "serve", "--listen", listen)
		if code != ExitUsage || !strings.Contains(stderr, "--public") {
			t.Errorf("--listen %s: exit %d, stderr %q; want exit %d asking for --public", listen, code, stderr, ExitUsage)
		}
		code, _, stderr = run(t, "dns", "serve", "--listen", "127.0.0.1:0", "--http", listen)
		if code != ExitUsage || !strings.Contains(stderr, "--http") || !strings.Contains(stderr, "--public") {
			t.Errorf("--http %s: exit %d, stderr %q; want exit %d asking for --public", listen, code, stderr, ExitUsage)
		}
	}
}

// TestCheckRejudgesAHistory: `drill check` judges a saved history with the budgets given: an
// acknowledged write missing from the final read fails a zero budget (exit 1) and passes a budget
// of one (exit 0); a bad budget or a missing file is a usage error.
func TestCheckRejudgesAHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	lines := []string{
		`{"index":0,"type":"invoke","f":"write","process":1,"client_region":"us-east","key":"k1","value":"v1","time":"2026-12-04T10:00:00Z"}`,
		`{"index":1,"type":"ok","f":"write","process":1,"client_region":"us-east","key":"k1","value":"v1","db_node":"us-east-db-1","epoch":1,"lsn":1,"time":"2026-12-04T10:00:00.1Z"}`,
		`{"index":2,"type":"final","key":"k1","time":"2026-12-04T10:00:05Z"}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := run(t, "check", path, "--budget", "lost_acked_writes=0"); code != ExitFailed || !strings.Contains(out, "1 of 1 acknowledged writes lost") {
		t.Fatalf("zero budget: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := run(t, "check", path, "--budget", "lost_acked_writes=1"); code != 0 {
		t.Fatalf("budget of one: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, _ := run(t, "check", path, "--budget", "nonsense=1"); code != ExitUsage {
		t.Fatalf("bad budget: exit %d", code)
	}
	if code, _, _ := run(t, "check", path+".missing"); code != ExitUsage {
		t.Fatalf("missing history: exit %d", code)
	}
}

func TestCacheTopologyWithoutRedisExitsThree(t *testing.T) {
	t.Setenv("DRILL_REDIS_SERVER", filepath.Join(t.TempDir(), "no-redis-server"))
	state := t.TempDir()
	code, _, stderr := run(t, "up", "--topology", "cache", "--runtime", "local", "--state-dir", state)
	if code != ExitHarness || !strings.Contains(stderr, "apt-get install redis-server") {
		t.Fatalf("exit %d, stderr %q; want %d naming Debian's redis-server package", code, stderr, ExitHarness)
	}
	out, _ := exec.Command("ps", "-eo", "args").Output()
	if strings.Contains(string(out), state) {
		t.Fatalf("a process of the refused cluster runs:\n%s", out)
	}
}

func TestValidateTellsFilesApart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plan, err := topology.NewPlan(topology.Default(), topology.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	planPath := filepath.Join(dir, "plan.json")
	if err := plan.Save(planPath); err != nil {
		t.Fatal(err)
	}
	good := []struct{ path, want string }{
		{"../../../../drills/builtin/cache-failover.yaml", "valid drill cache-failover (on topology cache)"},
		{"../../../../topology/cache.yaml", "valid topology cache"},
		{write("weekly.yaml", "name: weekly\ndrills:\n  - drill: region-outage\n  - human: Check the dashboards\n"), "valid game-day plan weekly"},
		{planPath, "valid plan " + plan.RunID},
	}
	for _, g := range good {
		code, stdout, stderr := run(t, "validate", g.path)
		if code != 0 || !strings.Contains(stdout, g.want) {
			t.Errorf("validate %s: exit %d, %q %q; want 0 and %q", g.path, code, stdout, stderr, g.want)
		}
	}
	bad := []struct{ path, want string }{
		{write("bad-drill.yaml", "name: x\nsteps:\n  - inject: {fault: nuke}\n"), `bad-drill.yaml:3:21: steps[0].inject.fault: unknown fault "nuke"`},
		{write("bad-topology.yaml", "name: t\nregions: [{name: a}]\ncache: {eviction: lru}\n"), "bad-topology.yaml:3:19: cache.eviction"},
		{write("what.yaml", "hello: world\n"), "cannot tell what it is"},
		{write("bad-gameday.yaml", "name: w\nmode: yolo\ndrills: [{drill: region-outage}]\n"), "bad-gameday.yaml:2:7: mode"},
		{write("bad-plan.json", `{"run_id": "x", "topology": {"name": "t", "regions": []}}`), "bad-plan.json"},
	}
	for _, b := range bad {
		code, _, stderr := run(t, "validate", b.path)
		if code != ExitUsage || !strings.Contains(stderr, b.want) {
			t.Errorf("validate %s: exit %d, %q; want %d and %q", b.path, code, stderr, ExitUsage, b.want)
		}
	}
}

func TestRunDryRunStartsNothing(t *testing.T) {
	state := t.TempDir()
	code, stdout, stderr := run(t, "run", "cache-stampede", "--dry-run", "--set", "cache_coalescing=off", "--budget", "read_p99_ms=500",
		"--runtime", "local", "--state-dir", state)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"dry run: nothing is started", "topology cache", "cache_coalescing=false", "read_p99_ms=500",
		"hot_keys=4", "inject restart:eu-west-cache-1 -> eu-west-cache-1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("a dry run left state behind: %v", entries)
	}
	// -o json: the same resolution, as data.
	code, stdout, stderr = run(t, "run", "cache-stampede", "--dry-run", "--set", "cache_coalescing=off", "--budget", "read_p99_ms=500",
		"--runtime", "local", "--state-dir", state, "-o", "json")
	if code != 0 {
		t.Fatalf("-o json: exit %d: %s", code, stderr)
	}
	var p dryRunPlan
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("-o json is not a dry-run plan: %v\n%s", err, stdout)
	}
	restart := false
	for _, st := range p.Steps {
		restart = restart || (st.Step == "inject restart:eu-west-cache-1" && slices.Equal(st.Nodes, []string{"eu-west-cache-1"}))
	}
	if p.Drill != "cache-stampede" || p.Topology != "cache" || p.Design.CacheCoalescing || p.Budgets["read_p99_ms"] != 500 ||
		p.Workload.HotKeys != 4 || !restart {
		t.Errorf("-o json dry run: %+v", p)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("a dry run left state behind: %v", entries)
	}
}

func TestShellCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "run", ""}, []string{"region-outage", "cache-stampede"}},
		{[]string{"__complete", "run", "region-outage", "--set", ""}, []string{"fencing=", "cache_ttl="}},
		{[]string{"__complete", "run", "region-outage", "--set", "cache_invalidation="}, []string{"cache_invalidation=local", "cache_invalidation=all-regions"}},
		{[]string{"__complete", "run", "region-outage", "--budget", ""}, []string{"lost_acked_writes=", "phantom_s="}},
		{[]string{"__complete", "up", "--topology", ""}, []string{"default", "cache"}},
		{[]string{"__complete", "inject", ""}, []string{"blackhole", "one-way-partition"}},
		{[]string{"__complete", "inject", "kill", "target="}, []string{"target=primary", "target=us-east-db-1"}},
		{[]string{"__complete", "inject", "latency", ""}, []string{"regions=", "latency=", "jitter="}},
	} {
		code, stdout, stderr := run(t, tc.args...)
		for _, w := range tc.want {
			if code != 0 || !strings.Contains(stdout, w+"\n") {
				t.Errorf("%v: exit %d, want %q among:\n%s%s", tc.args, code, w, stdout, stderr)
			}
		}
	}
}

func TestSchemaCommand(t *testing.T) {
	for _, kind := range []string{"drill", "topology", "plan", "gameday"} {
		code, stdout, stderr := run(t, "schema", kind)
		if code != 0 || !strings.Contains(stdout, `"$schema": "https://json-schema.org/draft/2020-12/schema"`) {
			t.Errorf("schema %s: exit %d %s", kind, code, stderr)
		}
	}
	if code, _, _ := run(t, "schema", "cron"); code != ExitUsage {
		t.Errorf("schema cron: exit %d, want %d", code, ExitUsage)
	}
}

// Commands that print a result print it as JSON with -o json; a bad -o is a usage error.
func TestOutputJSON(t *testing.T) {
	for _, args := range [][]string{
		{"version"}, {"list"}, {"schema", "drill"},
		{"validate", "../../../../topology/cache.yaml"},
		{"compose", "export", "--out", filepath.Join(t.TempDir(), "export")},
	} {
		code, stdout, stderr := run(t, append(args, "-o", "json")...)
		var v any
		if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil {
			t.Errorf("%v -o json: exit %d, not JSON:\n%s%s", args, code, stdout, stderr)
		}
	}
	code, stdout, _ := run(t, "list", "-o", "json")
	var drills []struct {
		Name, Topology string
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &drills) != nil || len(drills) < 9 {
		t.Fatalf("list -o json: %s", stdout)
	}
	if code, _, _ := run(t, "version", "-o", "yaml"); code != ExitUsage {
		t.Errorf("-o yaml: exit %d, want %d", code, ExitUsage)
	}
}

// TestAgentProcs: an agent gets its fair share of the machine's cores, never less than one.
func TestAgentProcs(t *testing.T) {
	for _, tc := range []struct{ cpus, nodes, want int }{
		{2, 10, 1}, {2, 112, 1}, {32, 10, 3}, {64, 16, 4}, {8, 0, 8}, {1, 1, 1},
	} {
		if got := agentProcs(tc.cpus, tc.nodes); got != tc.want {
			t.Errorf("agentProcs(%d cpus, %d nodes) = %d, want %d", tc.cpus, tc.nodes, got, tc.want)
		}
	}
}

// TestUpRefusesBeyondCapacity: a topology with more nodes than the local runtime holds on this
// machine is refused before anything starts, with exit 2 naming both numbers.
func TestUpRefusesBeyondCapacity(t *testing.T) {
	limit, _ := local.Capacity(goruntime.NumCPU())
	regions := limit/11 + 1 // 9 web + db + dns each
	if regions > 200 {
		t.Skipf("SKIPPED: this machine's capacity (%d nodes) is beyond the largest topology", limit)
	}
	var b strings.Builder
	b.WriteString("name: too-big\nnetwork:\n  loopback_base: 127.90.0.0/16\nregions:\n")
	for i := range regions {
		fmt.Fprintf(&b, "  - name: r%d\n    client_subnets: [10.%d.%d.0/24]\n    nodes: {web: 9, db: 1, dns: 1}\n", i, 100+i/250, i%250)
	}
	b.WriteString("primary_region: r0\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "too-big.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	code, _, stderr := run(t, "up", "--topology", path, "--state-dir", state, "--runtime", "local")
	want := fmt.Sprintf("has %d nodes; the local runtime holds about %d", regions*11+2, limit)
	if code != ExitUsage || !strings.Contains(stderr, want) || !strings.Contains(stderr, "--over-capacity") {
		t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Fatalf("state dir not empty after a refused topology: %v", entries)
	}
}
