package gameday

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/verdict"
)

func num(v float64) *float64 { return &v }

// syntheticHistory is six runs of one plan: region-outage's DNS failover is about 2 s, then
// 4.5 s in the sixth run (a regression); primary-kill passes five times, then fails; and one
// skipped tick.
func syntheticHistory() []Entry {
	base := time.Date(2026, 3, 6, 10, 0, 0, 0, time.UTC)
	dns := []float64{2.0, 2.1, 1.9, 2.0, 2.05, 4.5}
	var out []Entry
	for i, d := range dns {
		start := base.Add(time.Duration(i) * 7 * 24 * time.Hour)
		pk := verdict.Pass
		v := verdict.Pass
		if i == 5 {
			pk, v = verdict.Fail, verdict.Fail
		}
		out = append(out, Entry{ID: start.Format("20060102-150405") + "-weekly", Plan: "weekly", Status: StatusRan, Trigger: TriggerSchedule,
			Start: start, End: start.Add(2 * time.Minute), Verdict: v, Dir: "runs/" + start.Format("20060102-150405") + "-weekly",
			Drills: []DrillEntry{
				{Name: "region-outage", Verdict: verdict.Pass, Key: KeyNumbers{check.BudgetDNSFailover: num(d), check.BudgetRTO: num(5 + float64(i)*0.1), check.BudgetLostAckedWrites: num(3)},
					Report: "runs/x/01-region-outage"},
				{Name: "primary-kill", Verdict: pk, Key: KeyNumbers{check.BudgetRTO: num(4), check.BudgetLostAckedWrites: num(2)}},
			}})
	}
	out = append(out, Entry{Plan: "weekly", Status: StatusSkipped, Trigger: TriggerSchedule, Start: base.Add(time.Minute),
		Reason: "overlap: another game day is running (plan weekly)"})
	return out
}

func TestFindRegressions(t *testing.T) {
	h := newHistory(t)
	for _, e := range syntheticHistory() {
		if err := h.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := h.Entries()
	if err != nil {
		t.Fatal(err)
	}
	regs := FindRegressions(entries, DefaultRegressionRule())
	if len(regs) != 2 {
		t.Fatalf("regressions: %v", regs)
	}
	last := entries[len(entries)-1].ID
	if r := regs[0]; r.RunID != last || r.Drill != "region-outage" || r.Metric != check.BudgetDNSFailover || r.Value != 4.5 || r.Baseline != 2.0 {
		t.Errorf("first regression: %+v", r)
	}
	if r := regs[1]; r.RunID != last || r.Drill != "primary-kill" || r.Metric != MetricVerdict || r.From != "pass" || r.To != "fail" {
		t.Errorf("second regression: %+v", r)
	}
	// Creeping RTO (5.0 .. 5.5 s) stays under the noise floor: no regression.
	for _, r := range regs {
		if r.Metric == check.BudgetRTO {
			t.Errorf("RTO marked: %+v", r)
		}
	}
}

func TestHistoryEntriesOrderAndTornLine(t *testing.T) {
	h := newHistory(t)
	late := Entry{ID: "b", Plan: "p", Status: StatusRan, Start: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	early := Entry{ID: "a", Plan: "p", Status: StatusRan, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, e := range []Entry{late, early} {
		if err := h.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	// A crash in the middle of an append leaves a torn last line: ignored.
	f, err := os.OpenFile(filepath.Join(h.Dir(), FileHistory), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"c","plan":"p","sta`)
	f.Close()
	entries, err := h.Entries()
	if err != nil || len(entries) != 2 || entries[0].ID != "a" || entries[1].ID != "b" {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	// A malformed line in the middle is not a crash: it is an error.
	if err := os.WriteFile(filepath.Join(h.Dir(), FileHistory), []byte("{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Entries(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("malformed history: %v", err)
	}
}

func TestHistoryText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHistoryText(&b, syntheticHistory(), DefaultRegressionRule()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines, want a header, 6 runs and 1 skipped tick:\n%s", len(lines), out)
	}
	for _, want := range []string{"region-outage pass dns=2 s rto=5 s lost=3", "region-outage pass dns=4.50 s", "REGRESSION(dns_failover_s)",
		"primary-kill fail", "REGRESSION(verdict)", "skipped", "overlap: another game day is running"} {
		if !strings.Contains(out, want) {
			t.Errorf("history text lacks %q:\n%s", want, out)
		}
	}
}

func TestHistoryHTMLMarksRegressions(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHistoryHTML(&b, syntheticHistory(), DefaultRegressionRule()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`<svg id="trend"`, `data-metric="dns_failover_s"`, `data-metric="rto_s"`, `data-metric="lost_acked_writes"`,
		`class="regression-ring"`, "REGRESSION in run 20260410-100000-weekly: region-outage dns_failover_s = 4.5 s", `class="num regression"`,
		`href="runs/20260306-100000-weekly/index.html"`, `href="runs/x/01-region-outage/report.html"`, "6 runs, 1 skipped"} {
		if !strings.Contains(page, want) {
			t.Errorf("history page lacks %q", want)
		}
	}
	// One ring per marked number in the chart: the DNS failover of the sixth run only.
	if n := strings.Count(page, `<circle class="regression-ring" cx=`); n != 2 { // + the legend's
		t.Errorf("%d regression rings, want 1 in the chart and 1 in the legend", n)
	}
	if strings.Contains(page, "<script") {
		t.Error("the history page must not hold scripts")
	}
	// Each series has one point per run it was measured in.
	if n := strings.Count(page, `<circle class="point"`); n != 6*2+6*2+6*2-6 {
		t.Errorf("%d points, want 30 (primary-kill has no DNS failover)", n)
	}
}

func TestHistoryHTMLEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHistoryHTML(&b, nil, DefaultRegressionRule()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `id="no-runs"`) {
		t.Fatal("empty history page does not say so")
	}
}

// findBrowser is a headless-capable Chromium or Chrome on PATH, or "".
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// RenderInChromium loads a page in headless Chromium and returns the DOM it built and the
// browser's console and network errors (via --enable-logging).
func renderInChromium(t *testing.T, browser, page string) (dom, errs string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--enable-logging=stderr", "--v=0", "--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+page)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed: %v\nstderr:\n%s", browser, err, stderr.String())
	}
	var bad []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Failed to load") || strings.Contains(line, "Uncaught") {
			bad = append(bad, line)
		}
	}
	return stdout.String(), strings.Join(bad, "\n")
}

// TestHistoryPageInChromium renders the history page in headless Chromium: it must load without
// console or loading errors and show every run, the chart and the regression. CI installs
// chromium; without it the test is skipped, loudly.
func TestHistoryPageInChromium(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("SKIPPED: HISTORY PAGE NOT CHECKED IN A BROWSER — no chromium, chromium-browser or google-chrome on PATH " +
			"(CI installs chromium; install it locally to run this test)")
	}
	h := newHistory(t)
	for _, e := range syntheticHistory() {
		if err := h.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.WriteIndex(DefaultRegressionRule()); err != nil {
		t.Fatal(err)
	}
	dom, errs := renderInChromium(t, browser, filepath.Join(h.Dir(), FileHistoryIndex))
	if errs != "" {
		t.Errorf("browser errors:\n%s", errs)
	}
	if !strings.Contains(dom, `<svg id="trend"`) || strings.Count(dom, "<polyline") != 5 {
		t.Errorf("rendered DOM lacks the trend chart (%d polylines, want 5)", strings.Count(dom, "<polyline"))
	}
	for _, e := range syntheticHistory() {
		if e.Status == StatusRan && !strings.Contains(dom, `data-run="`+e.ID+`"`) {
			t.Errorf("rendered DOM lacks run %s", e.ID)
		}
	}
	if !strings.Contains(dom, "regression-ring") || !strings.Contains(dom, "overlap: another game day is running") {
		t.Error("rendered DOM lacks the regression mark or the skipped tick")
	}
}

// TestRegressionsPerPlanAndPosition: the same drill in another plan is another series, and a
// drill run twice in one run is marked only where it regressed.
func TestRegressionsPerPlanAndPosition(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entries := []Entry{
		{ID: "r1", Plan: "a", Status: StatusRan, Start: base, Drills: []DrillEntry{{Name: "d", Verdict: verdict.Pass, Key: KeyNumbers{check.BudgetRTO: num(2)}}}},
		{ID: "r2", Plan: "b", Status: StatusRan, Start: base.Add(time.Hour), Drills: []DrillEntry{{Name: "d", Verdict: verdict.Fail, Key: KeyNumbers{check.BudgetRTO: num(9)}}}},
		{ID: "r3", Plan: "a", Status: StatusRan, Start: base.Add(2 * time.Hour), Drills: []DrillEntry{
			{Name: "d", Verdict: verdict.Fail, Key: KeyNumbers{check.BudgetRTO: num(2)}}, {Name: "d", Verdict: verdict.Skipped}}},
	}
	regs := FindRegressions(entries, DefaultRegressionRule())
	if len(regs) != 1 || regs[0].RunID != "r3" || regs[0].Position != 0 || regs[0].Metric != MetricVerdict {
		t.Fatalf("regressions: %+v", regs)
	}
	var b bytes.Buffer
	if err := WriteHistoryText(&b, entries, DefaultRegressionRule()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "REGRESSION"); n != 1 {
		t.Fatalf("%d marks, want 1:\n%s", n, b.String())
	}
	b.Reset()
	if err := WriteHistoryHTML(&b, entries, DefaultRegressionRule()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), ">a: d</text>") || !strings.Contains(b.String(), ">b: d</text>") {
		t.Fatal("legend does not name each plan's series")
	}
}
