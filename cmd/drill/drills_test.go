package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// These tests run drills the way a user does: the drill binary, its exit code, its report
// directory. Each test has its own topology name and loopback range.

var binOnce struct {
	sync.Once
	dir, path string
	err       error
}

func drillBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binOnce.dir, binOnce.err = os.MkdirTemp("", "drill-bin-")
		if binOnce.err != nil {
			return
		}
		binOnce.path = filepath.Join(binOnce.dir, "drill")
		if out, err := exec.Command("go", "build", "-o", binOnce.path, ".").CombinedOutput(); err != nil {
			binOnce.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binOnce.dir != "" {
		os.RemoveAll(binOnce.dir)
	}
	os.Exit(code)
}

// env is one test's topology file and state directory.
type env struct {
	t      *testing.T
	bin    string
	topo   string
	state  string
	report string
}

// topologyFile writes the default topology under name, with a loopback and a Docker range of
// its own (netalloc), into dir and returns its path.
func topologyFile(t *testing.T, dir, name string) string {
	t.Helper()
	return builtinTopologyFile(t, dir, name, "default")
}

// builtinTopologyFile writes a built-in topology (default, cache) under name, in address ranges
// of this test's own.
func builtinTopologyFile(t *testing.T, dir, name, builtin string) string {
	t.Helper()
	def, err := os.ReadFile("../../topology/" + builtin + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	bt, ok := topology.Builtin(builtin)
	if !ok {
		t.Fatalf("no built-in topology %q", builtin)
	}
	y := strings.Replace(string(def), "name: "+builtin, "name: "+name, 1)
	y = strings.Replace(y, bt.Network.LoopbackBase, netalloc.Loopback(t).String(), 1)
	y = strings.Replace(y, bt.Network.DockerBase, netalloc.Private(t).String(), 1)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func newEnv(t *testing.T, name string) *env {
	t.Helper()
	return newEnvOf(t, name, "default")
}

// newEnvOf is newEnv on a built-in topology (default, cache, queue).
func newEnvOf(t *testing.T, name, builtin string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, bin: drillBin(t), topo: builtinTopologyFile(t, dir, name, builtin), state: filepath.Join(dir, "state"), report: filepath.Join(dir, "report")}
	t.Cleanup(func() {
		_ = exec.Command(e.bin, "recover", "--topology", e.topo, "--state-dir", e.state).Run()
		_ = exec.Command(e.bin, "down", "--topology", e.topo, "--state-dir", e.state).Run()
		e.assertNothingRunning()
	})
	return e
}

// cmd is a drill command run as a user would: the binary `go build` made (dynamically linked
// where cgo is on), from a directory outside the source tree, with no Go toolchain on PATH (the
// Docker runtime packs the binary as it is).
func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.bin, append(args, "--topology", e.topo, "--state-dir", e.state)...)
	c.Dir = filepath.Dir(e.topo)
	c.Env = withoutGoToolchain(os.Environ())
	return c
}

// withoutGoToolchain is env with the directory of `go` left out of PATH and GOROOT unset.
func withoutGoToolchain(env []string) []string {
	goBin := ""
	if p, err := exec.LookPath("go"); err == nil {
		goBin = filepath.Dir(p)
	}
	var out []string
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "GOROOT="):
		case strings.HasPrefix(kv, "PATH="):
			var dirs []string
			for _, d := range filepath.SplitList(strings.TrimPrefix(kv, "PATH=")) {
				if d != goBin {
					dirs = append(dirs, d)
				}
			}
			out = append(out, "PATH="+strings.Join(dirs, string(os.PathListSeparator)))
		default:
			out = append(out, kv)
		}
	}
	return out
}

// run runs `drill run` and returns its exit code and output.
func (e *env) run(args ...string) (int, string) {
	e.t.Helper()
	if !slices.Contains(args, "--runtime") {
		args = append(args, "--runtime", "local") // the default, auto, would pick Docker where it runs
	}
	out, err := e.cmd(append([]string{"run", "--report-dir", e.report, "--seed", "42"}, args...)...).CombinedOutput()
	return e.exitCode(err), string(out)
}

// exitCode is a finished command's exit code; an error other than a non-zero exit fails the test.
func (e *env) exitCode(err error) int {
	e.t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return 0
}

type reportJSON struct {
	Verdict string `json:"verdict"`
	Error   string `json:"error"`
	Checks  []struct {
		Name     string   `json:"name"`
		Verdict  string   `json:"verdict"`
		Measured *float64 `json:"measured"`
		Detail   string   `json:"detail"`
	} `json:"checks"`
	Metrics struct {
		DNSFailoverS    *float64           `json:"dns_failover_s"`
		RTOS            map[string]float64 `json:"rto_s"`
		LostAckedWrites *int               `json:"lost_acked_writes"`
		SplitBrainS     *float64           `json:"split_brain_s"`
		StaleReads      *int               `json:"stale_reads"`
	} `json:"metrics"`
	Residue []struct {
		What  string `json:"what"`
		Clean bool   `json:"clean"`
	} `json:"residue"`
	Beyond []string `json:"beyond"`
}

// judge checks a finished `drill run` (its exit code and output): with failCheck empty it must
// pass; otherwise it must exit 1 with failCheck failing on a measured flaw. It returns the report.
func (e *env) judge(code int, out, failCheck string) reportJSON {
	e.t.Helper()
	r := e.reportJSON()
	if failCheck == "" {
		if code != 0 || r.Verdict != "pass" {
			e.logNodeWarnings(out)
			e.t.Fatalf("want a pass; exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
		}
		return r
	}
	v, measured, detail := r.check(e.t, failCheck)
	if code != 1 || v != "fail" || measured <= 0 {
		e.logNodeWarnings(out)
		e.t.Fatalf("want exit 1 and %s failing with a measured flaw; exit %d, check %s measured %v (%s)\n%s",
			failCheck, code, v, measured, detail, out)
	}
	e.t.Logf("%s: %v (%s)", failCheck, measured, detail)
	return r
}

// logNodeWarnings logs the last warnings and errors of every node's log the run left in the
// state directory: an unexpected verdict in CI is then explained by the nodes as well as by the
// report (which goes with the test's temporary directory).
// A node the run's output names ("node X did not answer", a fault's target) gets the last lines
// of its log whatever their level: a node that stopped answering may have logged no warning.
func (e *env) logNodeWarnings(out string) {
	e.t.Helper()
	logs, _ := filepath.Glob(filepath.Join(e.state, "*", "logs", "*.log"))
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if node := strings.TrimSuffix(filepath.Base(path), ".log"); strings.Contains(out, "node "+node+" ") {
			e.t.Logf("%s, named in the run's output; its last lines:\n  %s", filepath.Base(path), strings.Join(all[max(0, len(all)-15):], "\n  "))
			continue
		}
		var lines []string
		for _, l := range all {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
				lines = append(lines, l)
			}
		}
		if n := len(lines); n > 12 {
			lines = append([]string{fmt.Sprintf("(%d earlier lines left out)", n-12)}, lines[n-12:]...)
		}
		if len(lines) > 0 {
			e.t.Logf("%s, warnings and errors:\n  %s", filepath.Base(path), strings.Join(lines, "\n  "))
		}
	}
}

func (e *env) reportJSON() reportJSON {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.report, "report.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var r reportJSON
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatal(err)
	}
	for _, f := range []string{"report.json", "junit.xml", "report.html", "history.jsonl"} {
		if _, err := os.Stat(filepath.Join(e.report, f)); err != nil {
			e.t.Errorf("report file missing: %v", err)
		}
	}
	for _, res := range r.Residue {
		if !res.Clean {
			e.t.Errorf("residue left: %s", res.What)
		}
	}
	return r
}

func (r reportJSON) check(t *testing.T, name string) (string, float64, string) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			m := 0.0
			if c.Measured != nil {
				m = *c.Measured
			}
			return c.Verdict, m, c.Detail
		}
	}
	t.Fatalf("no check %q in report", name)
	return "", 0, ""
}

// assertNothingRunning fails if any process of this test's plan is alive.
func (e *env) assertNothingRunning() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), e.state+string(os.PathSeparator)) && strings.Contains(string(b), "agent") {
			e.t.Errorf("node process left running: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole drill; skipped in -short mode")
	}
}

// parallelDrill marks t parallel and waits for one of the machine's cluster slots
// (netalloc.ClusterSlot): a drill spends most of its time in scripted waits, so a few overlap
// well, while the slots keep two cores free enough for the drills' timing budgets. Every test has
// its own topology name, address ranges (netalloc) and state directory, so none can meet another's
// cluster.
func parallelDrill(t *testing.T) {
	t.Helper()
	skipShort(t)
	t.Parallel()
	netalloc.ClusterSlot(t)
}

// parallelDockerDrill is parallelDrill for a test whose cluster runs on Docker: it takes one of
// the machine's Docker slots first (netalloc.DockerSlot), so that the engine is never asked to
// serve more Docker clusters than it can in time.
func parallelDockerDrill(t *testing.T) {
	t.Helper()
	skipShort(t)
	t.Parallel()
	netalloc.DockerSlot(t)
	netalloc.ClusterSlot(t)
}

// drillCase is one run of a drill table: the drill and its arguments, and the check that must
// fail ("" for a run that must pass).
type drillCase struct {
	name      string
	args      []string
	failCheck string
}

// runDrillTable runs each case on the local runtime on its own copy of a built-in topology, named
// prefix-<index>, several at a time (as parallelDrill), and judges it (env.judge); need, when
// set, runs first in each case (it may skip for a missing dependency, or take a slot).
func runDrillTable(t *testing.T, prefix, builtin string, need func(*testing.T), cases []drillCase) {
	skipShort(t)
	t.Parallel()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // before need: a slot taken before it would be held while the test waits
			if need != nil {
				need(t)
			}
			netalloc.ClusterSlot(t)
			e := newEnvOf(t, fmt.Sprintf("%s-%d", prefix, i), builtin)
			code, out := e.run(tc.args...)
			e.judge(code, out, tc.failCheck)
		})
	}
}

func TestRegionOutagePasses(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "outage-pass")
	start := time.Now()
	code, out := e.run("region-outage")
	r := e.reportJSON()
	t.Logf("region-outage took %s, verdict %s, dns failover %v s, rto %v, lost %v", time.Since(start).Round(time.Second),
		r.Verdict, deref(r.Metrics.DNSFailoverS), r.Metrics.RTOS, derefInt(r.Metrics.LostAckedWrites))
	if code != 0 || r.Verdict != "pass" {
		t.Fatalf("exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
	}
	if f := deref(r.Metrics.DNSFailoverS); f > 5 {
		t.Errorf("DNS failover %.2fs > 5s", f)
	}
	if rto := r.Metrics.RTOS["us-east"]; rto > 10 {
		t.Errorf("us-east RTO %.2fs > 10s", rto)
	}
}

// TestKnownBadDesignsFail runs each drill under its known-bad setting: the drill must fail (exit
// 1) on the check that catches the flaw, with a measured flaw, every time (the seeded workload
// keeps several writes in flight per WAN round trip).
func TestKnownBadDesignsFail(t *testing.T) {
	runDrillTable(t, "bad", "default", nil, []drillCase{
		{"region-outage loses writes under async", []string{"region-outage", "--budget", "lost_acked_writes=0"}, "lost_acked_writes"},
		{"primary-kill loses writes under async", []string{"primary-kill", "--budget", "lost_acked_writes=0"}, "lost_acked_writes"},
		{"region-partition splits brain without fencing", []string{"region-partition", "--set", "fencing=none"}, "split_brain"},
		{"wan-latency reads stale without read-your-writes", []string{"wan-latency", "--set", "read_your_writes=off"}, "stale_reads"},
		{"primary-pause keeps writes down with a failover timer longer than the pause", []string{"primary-pause", "--set", "failover_after=30s"}, "write_unavailability"},
		{"flapping-partition splits brain without fencing", []string{"flapping-partition", "--set", "fencing=none"}, "split_brain"},
		{"failover-second-failure loses writes under async", []string{"failover-second-failure", "--set", "replication=async"}, "lost_acked_writes"},
	})
}

func TestRegionOutageSemiSyncLosesNothing(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "outage-semisync")
	_, out := e.run("region-outage", "--budget", "lost_acked_writes=0", "--set", "replication=semi-sync")
	r := e.reportJSON()
	if v, lost, detail := r.check(t, "lost_acked_writes"); v != "pass" || lost != 0 {
		t.Fatalf("semi-sync: lost check %s measured %v (%s)\n%s", v, lost, detail, out)
	}
}

func TestRegionPartitionWithLeasePasses(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "partition-lease")
	code, out := e.run("region-partition")
	r := e.reportJSON()
	if v, secs, detail := r.check(t, "split_brain"); code != 0 || v != "pass" || secs != 0 {
		t.Fatalf("lease fencing: exit %d, split_brain %s %v (%s)\n%s", code, v, secs, detail, out)
	}
}

func TestWANLatencyPasses(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "latency-pass")
	code, out := e.run("wan-latency")
	if r := e.reportJSON(); code != 0 || r.Verdict != "pass" {
		t.Fatalf("exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
	}
}

// The drills of failure classes exploration reaches (a paused primary that wakes, a flapping
// partition, a second failure during a failover) pass at the correct design.
func TestFailureClassDrillsPass(t *testing.T) {
	runDrillTable(t, "class", "default", nil, []drillCase{
		{"primary-pause", []string{"primary-pause"}, ""},
		{"flapping-partition", []string{"flapping-partition"}, ""},
		{"failover-second-failure", []string{"failover-second-failure"}, ""},
	})
}

// slowClockDrill cuts the primary's region off from the other region and the witness while the
// primary's clock runs slow by percent.
const slowClockDrill = `name: slow-clock
budgets:
  split_brain_s: 0
workload:
  clients_per_region: 4
  write_rate: 25
steps:
  - steady: {within: 20s, expect: [converged, primary_in us-east]}
  - workload: start
  - wait: 2s
  - inject: {fault: clock-drift, id: slow, target: primary, percent: -75}
  - wait: 1s
  - inject: {fault: partition, id: cut1, regions: [us-east, eu-west]}
  - inject: {fault: partition, id: cut2, regions: [us-east, witness]}
  - wait: 10s
  - heal: cut1
  - heal: cut2
  - heal: slow
  - expect: {condition: converged, within: 30s}
  - wait: 2s
  - workload: stop
  - verify: {final_read: true}
`

// TestClockBeyondTheLeaseMarginIsADocumentedLimit: a primary whose clock runs 75 % slow keeps its
// lease long after the voters gave it away; with its region cut off, both regions' primaries
// acknowledge writes (split brain), and the report names the design's clock assumption the fault
// breaks, so the failure reads as a documented limit rather than a bug.
func TestClockBeyondTheLeaseMarginIsADocumentedLimit(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "slow-clock")
	file := filepath.Join(filepath.Dir(e.topo), "slow-clock-drill.yaml")
	if err := os.WriteFile(file, []byte(slowClockDrill), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := e.run(file)
	if code == 2 {
		t.Fatalf("drill refused:\n%s", out)
	}
	r := e.reportJSON()
	v, m, d := r.check(t, "split_brain")
	if code != 1 || v != "fail" || m <= 0 {
		t.Fatalf("exit %d, split_brain %s %.3f s (%s)\n%s", code, v, m, d, out)
	}
	t.Logf("split brain %.3f s: %s", m, d)
	if len(r.Beyond) != 1 || !strings.Contains(r.Beyond[0], "lease margin") || !strings.Contains(out, "beyond the design's assumption") {
		t.Fatalf("the broken assumption is not named: %q\n%s", r.Beyond, out)
	}
}

func TestPrimaryKillPasses(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "primary-kill")
	code, out := e.run("primary-kill")
	if r := e.reportJSON(); code != 0 || r.Verdict != "pass" {
		t.Fatalf("exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
	}
}

// TestInterruptMidFault sends SIGINT while a fault is active: the run must undo it, tear down and
// still write a report with verdict aborted.
func TestInterruptMidFault(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "interrupt")
	e.interruptMidFault("local")
	e.assertNothingRunning()
}

// TestKill9MidFaultThenRecover kills drill with SIGKILL while a partition is active: `drill
// recover` must undo it from the ledger and `drill down` must leave nothing.
func TestKill9MidFaultThenRecover(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "kill9")
	e.kill9MidPartitionThenRecover("local", nil, nil)
	e.assertNothingRunning()
}

// startUntilFault starts `drill run <drill>` on a runtime and returns once fault id is in the
// ledger.
func (e *env) startUntilFault(drill, runtime, id string) (*exec.Cmd, *lockedBuffer) {
	e.t.Helper()
	cmd := e.cmd("run", drill, "--runtime", runtime, "--report-dir", e.report, "--seed", "1")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.waitForFault(cmd, out, id, time.Now().Add(120*time.Second))
	return cmd, out
}

// interruptMidFault interrupts region-outage during its black hole: exit 3, verdict aborted.
func (e *env) interruptMidFault(runtime string) {
	e.t.Helper()
	cmd, out := e.startUntilFault("region-outage", runtime, "blackhole:us-east")
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		e.t.Fatalf("want exit 3 after an interrupt, got %v\n%s", err, out.String())
	}
	if r := e.reportJSON(); r.Verdict != "aborted" {
		e.t.Fatalf("verdict %s, want aborted\n%s", r.Verdict, out.String())
	}
}

// kill9Drill partitions two regions for far longer than any test waits, so the SIGKILL lands
// while the partition is in force however slowly a loaded machine checks that it is (the
// built-in region-partition heals after 12 s, which a CI machine running many Docker tests
// once outlasted).
const kill9Drill = `name: kill9-partition
steps:
  - steady: {within: 60s, expect: [converged]}
  - inject: {fault: partition, id: split, regions: [us-east, eu-west]}
  - wait: 10m
  - heal: split
`

// kill9MidPartitionThenRecover kills a drill with SIGKILL during its partition (after inForce
// says the fault is in force, when given), then runs `drill recover` (which must undo the
// partition; afterRecover checks more, when given) and `drill down`.
func (e *env) kill9MidPartitionThenRecover(runtime string, inForce func(cmd *exec.Cmd, out *lockedBuffer), afterRecover func()) {
	e.t.Helper()
	file := filepath.Join(filepath.Dir(e.topo), "kill9-partition.yaml")
	if err := os.WriteFile(file, []byte(kill9Drill), 0o600); err != nil {
		e.t.Fatal(err)
	}
	cmd, out := e.startUntilFault(file, runtime, "split")
	if inForce != nil {
		inForce(cmd, out)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// A line no drill can use (hand-edited, or from a newer drill) must not stop the recovery.
	ledger := filepath.Join(e.state, strings.TrimSuffix(filepath.Base(e.topo), ".yaml"), "faults.jsonl")
	f, err := os.OpenFile(ledger, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatalf("open the ledger: %v", err)
	}
	_, werr := f.WriteString("{not json\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		e.t.Fatal(err)
	}
	rec, err := e.cmd("recover").CombinedOutput()
	if err != nil {
		e.t.Fatalf("recover: %v\n%s", err, rec)
	}
	if !strings.Contains(string(rec), "undone: split") || !strings.Contains(string(rec), "nothing drill injected is left") {
		e.t.Fatalf("recover did not undo the partition:\n%s", rec)
	}
	if !strings.Contains(string(rec), "ledger: skipped line") {
		e.t.Fatalf("recover did not report the unreadable ledger line:\n%s", rec)
	}
	if afterRecover != nil {
		afterRecover()
	}
	if down, err := e.cmd("down").CombinedOutput(); err != nil {
		e.t.Fatalf("down: %v\n%s", err, down)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func derefInt(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitForFault polls the fault ledger until the fault's apply record is there (it is written just
// before the fault is injected), so the signal that follows lands mid-fault.
func (e *env) waitForFault(cmd *exec.Cmd, out *lockedBuffer, id string, deadline time.Time) {
	e.t.Helper()
	name := strings.TrimSuffix(filepath.Base(e.topo), ".yaml")
	ledger := filepath.Join(e.state, name, "faults.jsonl")
	for {
		b, _ := os.ReadFile(ledger)
		if strings.Contains(string(b), `"op":"apply"`) && strings.Contains(string(b), `"id":"`+id+`"`) {
			return
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			e.t.Fatalf("fault %s never showed as applied in %s:\n%s", id, ledger, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunKeepLeavesTheClusterUp: `drill run --keep` leaves the cluster up with its faults undone,
// says how to take it down, and that command does.
func TestRunKeepLeavesTheClusterUp(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "keep")
	file := filepath.Join(filepath.Dir(e.topo), "keep-drill.yaml")
	drill := "name: keep\nsteps:\n  - steady: {within: 20s, expect: [converged]}\n" +
		"  - inject: {fault: partition, id: cut, regions: [us-east, eu-west]}\n  - wait: 1s\n"
	if err := os.WriteFile(file, []byte(drill), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := e.run(file, "--keep")
	if strings.Contains(out, "\033[") || strings.Contains(out, "\r") {
		t.Errorf("progress through a pipe has terminal control sequences:\n%q", out)
	}
	if code != 0 || !strings.Contains(out, "take it down with: drill down --topology "+e.topo) {
		t.Fatalf("exit %d, output lacks the down command:\n%s", code, out)
	}
	status, err := e.cmd("status", "--json").CombinedOutput()
	if err != nil || !strings.Contains(string(status), `"primary": true`) && !strings.Contains(string(status), `"primary":true`) {
		t.Fatalf("status after --keep: %v\n%s", err, status)
	}
	if res, err := e.cmd("recover").CombinedOutput(); err != nil || strings.Contains(string(res), "cut") {
		t.Fatalf("the kept cluster still had a fault to recover: %v\n%s", err, res)
	}
	if out, err := e.cmd("down").CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	e.assertNothingRunning()
}

// TestOperatorFaultCommands: drill inject leaves a fault in force that drill faults lists and the
// cluster shows (the primary moves out of a black-holed region); bad input exits 2 and changes
// nothing; drill heal undoes it and checks nothing is left, and recover then finds nothing.
func TestOperatorFaultCommands(t *testing.T) {
	parallelDrill(t)
	e := newEnv(t, "operator")
	run := func(args ...string) (int, string) {
		t.Helper()
		out, err := e.cmd(args...).CombinedOutput()
		return e.exitCode(err), string(out)
	}
	if code, out := run("up", "--runtime", "local"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	if code, out := run("inject", "blackhole", "region=us-east"); code != 0 || !strings.Contains(out, "drill heal blackhole:us-east") {
		t.Fatalf("inject: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"inject", "blackhole", "region=mars"}, {"inject", "meteor"}, {"inject", "latency", "regions"},
		{"inject", "flapping", "of=partition", "regions=us-east,eu-west"}, {"heal", "no-such-fault"}, {"heal"}} {
		if code, out := run(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", bad, code, out)
		}
	}
	code, out := run("faults", "-o", "json")
	var active []struct {
		ID       string   `json:"id"`
		Resolved []string `json:"resolved"`
	}
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "["):]), &active) != nil || len(active) != 1 ||
		active[0].ID != "blackhole:us-east" || len(active[0].Resolved) == 0 {
		t.Fatalf("faults: exit %d, want exactly the black hole with its nodes\n%s", code, out)
	}
	// The fault is in force while no drill runs: eu-west takes over.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := e.cmd("status", "--json").Output()
		var status struct {
			Nodes []struct {
				Name    string `json:"name"`
				Primary bool   `json:"primary"`
			} `json:"nodes"`
		}
		_ = json.Unmarshal(st, &status)
		if slices.ContainsFunc(status.Nodes, func(n struct {
			Name    string `json:"name"`
			Primary bool   `json:"primary"`
		}) bool {
			return n.Name == "eu-west-db-1" && n.Primary
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eu-west never took over while us-east was black-holed:\n%s", st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	code, out = run("heal", "--all", "-o", "json")
	var healed struct {
		Healed []string `json:"healed"`
		Clean  bool     `json:"clean"`
	}
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &healed) != nil || !healed.Clean ||
		len(healed.Healed) != 1 || healed.Healed[0] != "blackhole:us-east" {
		t.Fatalf("heal --all -o json: exit %d\n%s", code, out)
	}
	if code, out := run("faults"); code != 0 || !strings.Contains(out, "no fault is active") {
		t.Fatalf("faults after heal: exit %d\n%s", code, out)
	}
	code, out = run("recover", "-o", "json")
	var recovered struct {
		Undone []string `json:"undone"`
		Clean  bool     `json:"clean"`
	}
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &recovered) != nil || !recovered.Clean || len(recovered.Undone) != 0 {
		t.Fatalf("recover after heal found something to undo: exit %d\n%s", code, out)
	}
}

// TestLiveStatusLineOnATerminal runs a drill in a tmux pane: its terminal shows the refreshing
// status line (step, workload counters, faults in force) under the progress lines. Through a pipe
// (every other test) the output has no terminal control sequences.
func TestLiveStatusLineOnATerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("DRILL_CI") != "" {
			t.Fatal("tmux is required in CI (.ci/run installs it)")
		}
		t.Skip("SKIPPED: no tmux: the live status line was NOT checked")
	}
	parallelDrill(t)
	e := newEnv(t, "live")
	file := filepath.Join(filepath.Dir(e.topo), "live-drill.yaml")
	drill := "name: live\nworkload: {clients_per_region: 2, write_rate: 5}\nsteps:\n" +
		"  - steady: {within: 20s, expect: [converged]}\n  - workload: start\n" +
		"  - inject: {fault: latency, id: slow, regions: [us-east, eu-west], latency: 50ms}\n  - wait: 8s\n  - workload: stop\n"
	if err := os.WriteFile(file, []byte(drill), 0o644); err != nil {
		t.Fatal(err)
	}
	session := fmt.Sprintf("drill-live-%d", os.Getpid())
	c := e.cmd("run", file, "--runtime", "local", "--report-dir", e.report)
	shell := strings.Join(append([]string{"NO_COLOR=1"}, c.Args...), " ") + "; sleep 60"
	if out, err := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "220", "-y", "50", "-c", c.Dir, shell).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(tmux, "kill-session", "-t", session).Run() })
	deadline := time.Now().Add(90 * time.Second)
	for {
		pane, _ := exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
		for _, line := range strings.Split(string(pane), "\n") {
			// The status line: "[  3.1s] step 4/5 wait 8s | us-east writes ok=... | faults: slow"
			// (progress lines have "step N/M:" and no " | ").
			if strings.Contains(line, "step 4/5 wait 8s | ") && strings.Contains(line, "writes ok=") && strings.Contains(line, "| faults: slow") {
				t.Logf("status line: %s", strings.TrimSpace(line))
				waitForVerdict(t, tmux, session)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live status line in the pane:\n%s", pane)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitForVerdict waits (bounded) until the drill in the tmux session printed its verdict, so that
// it ends by itself, its cluster down, before the session goes.
func waitForVerdict(t *testing.T, tmux, session string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		pane, _ := exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
		if strings.Contains(string(pane), "verdict: ") {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("the drill in tmux printed no verdict within 60 s")
}
