package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/verdict"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeRunner stands in for the CLI's RunDrill: it returns a report per drill name and writes
// report.json where the real one would, and counts how many drills run at once.
type fakeRunner struct {
	mu       sync.Mutex
	verdicts map[string]verdict.Verdict // drill name -> verdict (default pass)
	metrics  map[string]report.Metrics
	calls    []DrillRequest
	active   atomic.Int32
	maxSeen  atomic.Int32
	// block, when set, makes every drill wait for it to close (or ctx to end: verdict aborted).
	block chan struct{}
	// started is signalled (non-blocking) when a drill starts.
	started chan string
}

func (f *fakeRunner) run(ctx context.Context, req DrillRequest) (*report.Report, error) {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, req)
	v := f.verdicts[req.Drill.Name]
	metrics := f.metrics[req.Drill.Name]
	f.mu.Unlock()
	if f.started != nil {
		select {
		case f.started <- req.Drill.Name:
		default:
		}
	}
	start := time.Now()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			v = verdict.Aborted
		}
	}
	if v == "" {
		v = verdict.Pass
	}
	if v == "panic" {
		panic("drill exploded")
	}
	checkVerdict := verdict.Pass
	if v == verdict.Fail {
		checkVerdict = verdict.Fail
	}
	measured, budget := 3.0, 0.0
	rep := &report.Report{Drill: req.Drill.Name, Verdict: v, Runtime: "fake", Seed: req.Seed, Start: start, End: time.Now(),
		Checks:  []report.Check{{Name: "lost_acked_writes", Verdict: checkVerdict, Measured: &measured, Budget: &budget, Unit: "writes", Detail: "3 writes lost"}},
		Metrics: metrics}
	if v == verdict.Aborted {
		rep.Error = "aborted"
	}
	if err := os.MkdirAll(req.ReportDir, 0o755); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_ = report.WriteJSON(&buf, rep)
	if err := os.WriteFile(filepath.Join(req.ReportDir, report.FileJSON), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return rep, nil
}

func (f *fakeRunner) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Drill.Name)
	}
	return out
}

// testPlan writes three short drill files and a plan using them, and loads it.
func testPlan(t *testing.T, dir, extra string) *Plan {
	t.Helper()
	for _, n := range []string{"alpha", "beta", "gamma"} {
		writeFile(t, dir, n+".yaml", strings.Replace(shortDrill, "name: short-latency", "name: "+n, 1))
	}
	path := writeFile(t, dir, "plan.yaml", "name: test-plan\n"+extra+`drills:
  - drill: alpha.yaml
    budgets: {lost_acked_writes: 0}
  - drill: beta.yaml
  - drill: gamma.yaml
`)
	p, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newHistory(t *testing.T) *History {
	t.Helper()
	h, err := OpenHistory(filepath.Join(t.TempDir(), "history"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func verdicts(s *Summary) []string {
	var out []string
	for _, st := range s.Steps {
		out = append(out, string(st.Verdict))
	}
	return out
}

func TestRunStopOnFirstFailure(t *testing.T) {
	fr := &fakeRunner{verdicts: map[string]verdict.Verdict{"beta": verdict.Fail}}
	h := newHistory(t)
	s, err := Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), ""), History: h, RunDrill: fr.run})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fr.names(), ","); got != "alpha,beta" {
		t.Fatalf("ran %s, want alpha,beta (gamma skipped after beta failed)", got)
	}
	if got := strings.Join(verdicts(s), ","); s.Verdict != verdict.Fail || got != "pass,fail,skipped" {
		t.Fatalf("verdict %s steps %s", s.Verdict, got)
	}
	if !strings.Contains(s.Steps[2].Error, "stop-on-first-failure") {
		t.Fatalf("skip reason: %q", s.Steps[2].Error)
	}
	if len(s.FailedChecks) != 1 || s.FailedChecks[0].Drill != "beta" || s.FailedChecks[0].Check != "lost_acked_writes" {
		t.Fatalf("failed checks: %+v", s.FailedChecks)
	}
	// The plan's budgets reached the drill; the drill file's own stayed for the others.
	if fr.calls[0].Drill.Budgets["lost_acked_writes"] != 0 || fr.calls[0].ReportDir != filepath.Join(s.Dir, "01-alpha") {
		t.Fatalf("request: %+v", fr.calls[0])
	}
}

func TestRunAllRunsEverything(t *testing.T) {
	fr := &fakeRunner{verdicts: map[string]verdict.Verdict{"alpha": verdict.Error, "beta": verdict.Fail}}
	h := newHistory(t)
	s, err := Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), "mode: run-all\n"), History: h, RunDrill: fr.run})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(verdicts(s), ","); got != "error,fail,pass" || s.Verdict != verdict.Error {
		t.Fatalf("steps %s, game day %s (worst verdict must win: error)", got, s.Verdict)
	}
}

func TestRunWritesSummaryJUnitIndexAndHistory(t *testing.T) {
	lost := 4.0
	dns := 2.5
	fr := &fakeRunner{verdicts: map[string]verdict.Verdict{"beta": verdict.Fail},
		metrics: map[string]report.Metrics{"alpha": {check.BudgetDNSFailover: {Value: &dns},
			check.BudgetRTO: {ByRegion: map[string]float64{"us-east": 4.25, "eu-west": 1}}, check.BudgetLostAckedWrites: {Value: &lost}}}}
	h := newHistory(t)
	p := testPlan(t, t.TempDir(), "mode: run-all\n")
	s, err := Run(context.Background(), Config{Plan: p, History: h, RunDrill: fr.run})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadSummary(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Verdict != verdict.Fail || len(loaded.Steps) != 3 || *loaded.Steps[0].Key[check.BudgetRTO] != 4.25 || *loaded.Steps[0].Key[check.BudgetLostAckedWrites] != 4 {
		t.Fatalf("summary.json: %+v", loaded)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, FileJUnit))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(data, &junit); err != nil {
		t.Fatal(err)
	}
	if junit.Tests != 3 || junit.Failures != 1 || len(junit.Suites) != 3 || junit.Suites[1].Name != "gameday.test-plan.02-beta" ||
		junit.Suites[1].Cases[0].Failure == nil {
		t.Fatalf("junit: %+v", junit)
	}
	index, err := os.ReadFile(filepath.Join(s.Dir, FileIndex))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`href="01-alpha/report.html"`, `href="02-beta/report.html"`, `href="03-gamma/report.html"`, "4.25 s", "<b>lost_acked_writes</b>"} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if n := strings.Count(string(index), "<tr class=\"drill\">"); n != 3 {
		t.Errorf("index.html has %d drill rows, want 3", n)
	}
	entries, err := h.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].ID != s.ID || entries[0].Status != StatusRan || len(entries[0].Drills) != 3 ||
		entries[0].Drills[1].FailedChecks[0] != "lost_acked_writes" || entries[0].Drills[0].Report != "runs/"+s.ID+"/01-alpha" {
		t.Fatalf("history: %+v", entries)
	}
	if _, err := os.Stat(filepath.Join(h.Dir(), FileHistoryIndex)); err != nil {
		t.Fatalf("history page not written: %v", err)
	}
}

func TestHumanSteps(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "alpha.yaml", strings.Replace(shortDrill, "name: short-latency", "name: alpha", 1))
	path := writeFile(t, dir, "plan.yaml", "name: human\ndrills:\n  - drill: alpha.yaml\n  - human: Page the on-call\n  - drill: alpha.yaml\n")
	p, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("unattended", func(t *testing.T) {
		fr := &fakeRunner{}
		var out bytes.Buffer
		s, err := Run(context.Background(), Config{Plan: p, History: newHistory(t), RunDrill: fr.run, Unattended: true, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(verdicts(s), ","); got != "pass,skipped,pass" || s.Verdict != verdict.Pass {
			t.Fatalf("steps %s verdict %s", got, s.Verdict)
		}
	})

	t.Run("operator acknowledges", func(t *testing.T) {
		fr := &fakeRunner{}
		in, typist := io.Pipe()
		t.Cleanup(func() { typist.Close() })
		out := &syncBuffer{}
		done := make(chan *Summary, 1)
		go func() {
			s, _ := Run(context.Background(), Config{Plan: p, History: newHistory(t), RunDrill: fr.run, Operator: NewOperator(in), Stdout: out})
			done <- s
		}()
		waitFor(t, 10*time.Second, "the prompt", func() bool { return strings.Contains(out.String(), "HUMAN STEP: Page the on-call") })
		if got := fr.names(); len(got) != 1 {
			t.Fatalf("drills before the acknowledgement: %v", got)
		}
		if _, err := typist.Write([]byte("\n")); err != nil {
			t.Fatal(err)
		}
		var s *Summary
		select {
		case s = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("game day did not go on after the acknowledgement")
		}
		if got := strings.Join(verdicts(s), ","); got != "pass,acknowledged,pass" || s.Steps[1].WaitedS == nil {
			t.Fatalf("steps %s, waited %v", got, s.Steps[1].WaitedS)
		}
	})

	t.Run("no operator", func(t *testing.T) {
		fr := &fakeRunner{}
		s, err := Run(context.Background(), Config{Plan: p, History: newHistory(t), RunDrill: fr.run, Operator: NewOperator(strings.NewReader(""))})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(verdicts(s), ","); got != "pass,error,skipped" || s.Verdict != verdict.Error || !strings.Contains(s.Steps[1].Error, "--unattended") {
			t.Fatalf("steps %s verdict %s error %q", got, s.Verdict, s.Steps[1].Error)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunAbortedMidDrill(t *testing.T) {
	fr := &fakeRunner{block: make(chan struct{}), started: make(chan string, 1)}
	h := newHistory(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Summary, 1)
	go func() {
		s, _ := Run(ctx, Config{Plan: testPlan(t, t.TempDir(), "mode: run-all\n"), History: h, RunDrill: fr.run})
		done <- s
	}()
	select {
	case <-fr.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no drill started")
	}
	cancel()
	var s *Summary
	select {
	case s = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end after cancel")
	}
	if got := strings.Join(verdicts(s), ","); got != "aborted,skipped,skipped" || s.Verdict != verdict.Aborted {
		t.Fatalf("steps %s verdict %s (run-all must still stop on abort)", got, s.Verdict)
	}
	entries, _ := h.Entries()
	if len(entries) != 1 || entries[0].Verdict != verdict.Aborted {
		t.Fatalf("history: %+v", entries)
	}
}

func TestRunDrillPanicIsAnError(t *testing.T) {
	fr := &fakeRunner{verdicts: map[string]verdict.Verdict{"alpha": "panic"}}
	s, err := Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), "mode: run-all\n"), History: newHistory(t), RunDrill: fr.run})
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps[0].Verdict != verdict.Error || !strings.Contains(s.Steps[0].Error, "drill exploded") || s.Verdict != verdict.Error {
		t.Fatalf("steps %v, error %q", verdicts(s), s.Steps[0].Error)
	}
}

func TestRunDrillErrorWithoutReport(t *testing.T) {
	run := func(ctx context.Context, req DrillRequest) (*report.Report, error) {
		return nil, fmt.Errorf("bring up %s: converge timeout", req.Topology.Name)
	}
	s, err := Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), ""), History: newHistory(t), RunDrill: run})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(verdicts(s), ","); got != "error,skipped,skipped" || s.Steps[0].ReportDir != "" || !strings.Contains(s.Steps[0].Error, "converge timeout") {
		t.Fatalf("steps %s report dir %q error %q", got, s.Steps[0].ReportDir, s.Steps[0].Error)
	}
}

// TestRunWhileLockedIsSkipped: a second run of the same history (here: another holder of the
// lock, as another process would be) is refused and recorded as skipped.
func TestRunWhileLockedIsSkipped(t *testing.T) {
	h := newHistory(t)
	other, err := OpenHistory(h.Dir())
	if err != nil {
		t.Fatal(err)
	}
	lock, err := other.TryLock("plan other, pid 4242")
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRunner{}
	_, err = Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), ""), History: h, RunDrill: fr.run})
	var busy *BusyError
	if !errors.As(err, &busy) || !strings.Contains(busy.Holder, "pid 4242") {
		t.Fatalf("want a BusyError naming the holder, got %v", err)
	}
	if len(fr.names()) != 0 {
		t.Fatalf("drills ran while locked: %v", fr.names())
	}
	lock.Release()
	entries, _ := h.Entries()
	if len(entries) != 1 || entries[0].Status != StatusSkipped || !strings.Contains(entries[0].Reason, "pid 4242") {
		t.Fatalf("history: %+v", entries)
	}
	if _, err := Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), ""), History: h, RunDrill: fr.run}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestSummaryJSONIsWellFormed(t *testing.T) {
	fr := &fakeRunner{}
	s, err := Run(context.Background(), Config{Plan: testPlan(t, t.TempDir(), ""), History: newHistory(t), RunDrill: fr.run})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir, FileSummary))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	prom, err := os.ReadFile(filepath.Join(s.Dir, report.FileProm))
	if err != nil || !strings.Contains(string(prom), "drill_gameday_verdict{") || !strings.Contains(string(prom), "drill_gameday_failed_checks{") {
		t.Errorf("metrics.prom of the game day: %v\n%s", err, prom)
	}
	for _, k := range []string{"schema_version", "drill_version", "id", "plan", "verdict", "start", "end", "steps", "failed_checks", "dir"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("summary.json lacks %q", k)
		}
	}
}
