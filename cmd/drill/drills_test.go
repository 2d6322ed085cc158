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

	"github.com/drillworks/drill/topology/netalloc"
)

// These tests run drills the way a user does: the drill binary, its exit code, its report
// directory. Each test has its own topology name and loopback range.

var binOnce struct {
	sync.Once
	dir, path string
	err       error
}

func drillBin(t *testing.T) string {
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
	def, err := os.ReadFile("../../topology/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(def), "name: default", "name: "+name, 1)
	y = strings.Replace(y, "127.77.0.0/16", netalloc.Loopback(t).String(), 1)
	y = strings.Replace(y, "10.77.0.0/16", netalloc.Private(t).String(), 1)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func newEnv(t *testing.T, name string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, bin: drillBin(t), topo: topologyFile(t, dir, name), state: filepath.Join(dir, "state"), report: filepath.Join(dir, "report")}
	t.Cleanup(func() {
		_ = exec.Command(e.bin, "recover", "--topology", e.topo, "--state-dir", e.state).Run()
		_ = exec.Command(e.bin, "down", "--topology", e.topo, "--state-dir", e.state).Run()
		e.assertNothingRunning()
	})
	return e
}

// cmd is a drill command run as a user would: the binary `go build` made (dynamically linked
// where cgo is on), from a directory outside the source tree.
func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.bin, append(args, "--topology", e.topo, "--state-dir", e.state)...)
	c.Dir = filepath.Dir(e.topo)
	return c
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
	skipShort(t)
	t.Parallel()
	for i, tc := range []struct {
		name  string
		args  []string
		check string
	}{
		{"region-outage loses writes under async", []string{"region-outage", "--budget", "lost_acked_writes=0"}, "lost_acked_writes"},
		{"primary-kill loses writes under async", []string{"primary-kill", "--budget", "lost_acked_writes=0"}, "lost_acked_writes"},
		{"region-partition splits brain without fencing", []string{"region-partition", "--set", "fencing=none"}, "split_brain"},
		{"wan-latency reads stale without read-your-writes", []string{"wan-latency", "--set", "read_your_writes=off"}, "stale_reads"},
		{"primary-pause keeps writes down with a failover timer longer than the pause", []string{"primary-pause", "--set", "failover_after=30s"}, "write_unavailability"},
		{"flapping-partition splits brain without fencing", []string{"flapping-partition", "--set", "fencing=none"}, "split_brain"},
		{"failover-second-failure loses writes under async", []string{"failover-second-failure", "--set", "replication=async"}, "lost_acked_writes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallelDrill(t)
			e := newEnv(t, fmt.Sprintf("bad-%d", i))
			code, out := e.run(tc.args...)
			v, measured, detail := e.reportJSON().check(t, tc.check)
			if code != 1 || v != "fail" || measured <= 0 {
				t.Fatalf("want exit 1 and %s failing with a measured flaw; exit %d, check %s measured %v (%s)\n%s",
					tc.check, code, v, measured, detail, out)
			}
			t.Logf("%s: %v (%s)", tc.check, measured, detail)
		})
	}
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
	skipShort(t)
	t.Parallel()
	for _, name := range []string{"primary-pause", "flapping-partition", "failover-second-failure"} {
		t.Run(name, func(t *testing.T) {
			parallelDrill(t)
			e := newEnv(t, name)
			code, out := e.run(name)
			if r := e.reportJSON(); code != 0 || r.Verdict != "pass" {
				t.Fatalf("exit %d verdict %s (%s)\n%s", code, r.Verdict, r.Error, out)
			}
		})
	}
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
  - inject: {fault: clock-drift, id: slow, target: primary, percent: -50}
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

// TestClockBeyondTheLeaseMarginIsADocumentedLimit: a primary whose clock runs 50 % slow keeps its
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
	if v, m, d := r.check(t, "split_brain"); code != 1 || v != "fail" || m <= 0 {
		t.Fatalf("exit %d, split_brain %s %.3f s (%s)\n%s", code, v, m, d, out)
	}
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

// kill9MidPartitionThenRecover kills region-partition with SIGKILL during its partition (after
// inForce says the fault is in force, when given), then runs `drill recover` (which must undo
// the partition; afterRecover checks more, when given) and `drill down`.
func (e *env) kill9MidPartitionThenRecover(runtime string, inForce func(cmd *exec.Cmd, out *lockedBuffer), afterRecover func()) {
	e.t.Helper()
	cmd, out := e.startUntilFault("region-partition", runtime, "split")
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
