package gameday

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/drills/verdict"
)

// every is a fast timetable for tests: a tick every d.
type every struct{ d time.Duration }

func (e every) Next(t time.Time) time.Time { return t.Add(e.d) }

// once is a timetable with a single tick at a fixed time.
type once struct {
	mu  sync.Mutex
	at  time.Time
	got bool
}

func (o *once) Next(time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.got {
		return time.Time{}
	}
	o.got = true
	return o.at
}

func ranAndSkipped(t *testing.T, h *History) (ran, skipped []Entry) {
	t.Helper()
	entries, err := h.Entries()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Status == StatusRan {
			ran = append(ran, e)
		} else {
			skipped = append(skipped, e)
		}
	}
	return ran, skipped
}

// TestScheduleSkipsOverlappingTicks: ticks every 50 ms while the first run is held; the ticks
// that fall during it are skipped and recorded, never run at the same time; two runs happen.
func TestScheduleSkipsOverlappingTicks(t *testing.T) {
	fr := &fakeRunner{block: make(chan struct{})}
	h := newHistory(t)
	p := testPlan(t, t.TempDir(), "")
	var out syncBuffer
	done := make(chan *ScheduleResult, 1)
	go func() {
		res, _ := RunScheduled(context.Background(), ScheduleConfig{Run: Config{Plan: p, History: h, RunDrill: fr.run, Stdout: &out},
			Timetable: every{50 * time.Millisecond}, Cron: "test", MaxRuns: 2})
		done <- res
	}()
	waitFor(t, 10*time.Second, "two skipped ticks", func() bool {
		_, skipped := ranAndSkipped(t, h)
		return len(skipped) >= 2
	})
	close(fr.block)
	var res *ScheduleResult
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("scheduler did not stop after two runs")
	}
	if len(res.Runs) != 2 || res.Skipped < 2 || res.Verdict() != verdict.Pass {
		t.Fatalf("runs %d skipped %d verdict %s", len(res.Runs), res.Skipped, res.Verdict())
	}
	if m := fr.maxSeen.Load(); m != 1 {
		t.Fatalf("%d drills ran at once", m)
	}
	ran, skipped := ranAndSkipped(t, h)
	if len(ran) != 2 || ran[0].Trigger != TriggerSchedule {
		t.Fatalf("history: %d runs %+v", len(ran), ran)
	}
	if ran[1].Start.Before(ran[0].End) {
		t.Fatalf("runs overlap: first %s..%s, second starts %s", ran[0].Start, ran[0].End, ran[1].Start)
	}
	// Skipped ticks fell while the first run held the lock (its drills, then its files).
	for _, s := range skipped {
		if !strings.Contains(s.Reason, "overlap") || s.Start.Before(ran[0].Start) || s.Start.After(ran[1].Start) {
			t.Errorf("skipped tick %s (%s) not between the first run's start %s and the second's %s", s.Start, s.Reason, ran[0].Start, ran[1].Start)
		}
	}
	if !strings.Contains(out.String(), "skipped: another game day is running") {
		t.Errorf("skips not reported on stdout:\n%s", out.String())
	}
}

// TestScheduleCancelAbortsTheRunningDrill: SIGTERM (ctx cancel) during a run aborts it; the
// aborted run is recorded and the scheduler returns.
func TestScheduleCancelAbortsTheRunningDrill(t *testing.T) {
	fr := &fakeRunner{block: make(chan struct{}), started: make(chan string, 1)}
	h := newHistory(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *ScheduleResult, 1)
	go func() {
		res, _ := RunScheduled(ctx, ScheduleConfig{Run: Config{Plan: testPlan(t, t.TempDir(), ""), History: h, RunDrill: fr.run},
			Timetable: every{20 * time.Millisecond}})
		done <- res
	}()
	select {
	case <-fr.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no run started")
	}
	cancel()
	var res *ScheduleResult
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("scheduler did not return after cancel")
	}
	if len(res.Runs) != 1 || res.Verdict() != verdict.Aborted {
		t.Fatalf("runs %d verdict %s", len(res.Runs), res.Verdict())
	}
	ran, _ := ranAndSkipped(t, h)
	if len(ran) != 1 || ran[0].Verdict != verdict.Aborted {
		t.Fatalf("history: %+v", ran)
	}
	if got := strings.Join(fr.names(), ","); got != "alpha" {
		t.Fatalf("drills run: %s (none may start after the abort)", got)
	}
}

// TestScheduleJitterDelaysTheRun: the run starts after the jitter picked; a timetable that
// says "never again" ends the scheduler.
func TestScheduleJitterDelaysTheRun(t *testing.T) {
	fr := &fakeRunner{}
	h := newHistory(t)
	due := time.Now().Add(50 * time.Millisecond)
	res, err := RunScheduled(context.Background(), ScheduleConfig{Run: Config{Plan: testPlan(t, t.TempDir(), ""), History: h, RunDrill: fr.run},
		Timetable: &once{at: due}, Jitter: time.Hour, RandDuration: func(max time.Duration) time.Duration {
			if max != time.Hour {
				t.Errorf("jitter drawn from [0, %s), want [0, 1h)", max)
			}
			return 300 * time.Millisecond
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 1 {
		t.Fatalf("%d runs", len(res.Runs))
	}
	if late := res.Runs[0].Start.Sub(due); late < 300*time.Millisecond {
		t.Fatalf("run started %s after it was due; jitter was 300ms", late)
	}
}

func TestParseCron(t *testing.T) {
	for _, ok := range []string{"0 10 * * FRI", "*/5 * * * * *", "@daily", "@every 90s", "CRON_TZ=Europe/Berlin 0 10 * * 1-5", "0 0 1 JAN *"} {
		if _, err := ParseCron(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0 10 * *", "60 * * * *", "* * * * * * *", "@fortnightly", "0 10 * * FUNDAY"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	tt, _ := ParseCron("*/5 * * * * *")
	base := time.Date(2026, 1, 2, 3, 4, 6, 0, time.Local)
	if next := tt.Next(base); !next.Equal(base.Add(4 * time.Second)) {
		t.Fatalf("*/5 seconds after %s: %s", base, next)
	}
}

// TestSystemdCalendarMatchesCron converts cron expressions to OnCalendar and asks
// systemd-analyze for the next elapses: they must be the times robfig/cron computes.
func TestSystemdCalendarMatchesCron(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPED: OnCalendar conversion NOT checked against systemd — no systemd-analyze on PATH")
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	exprs := []string{"0 10 * * FRI", "*/15 9-17 * * MON-FRI", "30 2 1 * *", "0 0 1 1 *", "*/5 * * * * *", "0 0/20 8-18/2 * * *",
		"@daily", "@hourly", "@weekly", "@monthly", "@yearly", "0 12 * * 0", "0 12 * * 5-6,0", "15,45 6 * 2-4 *", "0 5/10 * * *"}
	for _, expr := range exprs {
		cal, every, err := SystemdTimer(expr)
		if err != nil || every != 0 {
			t.Errorf("%q: %v (every %s)", expr, err, every)
			continue
		}
		out, err := exec.Command(analyze, "calendar", "--iterations=6", "--base-time="+base.Format("2006-01-02 15:04:05"), cal).CombinedOutput()
		if err != nil {
			t.Errorf("%q -> %q: systemd-analyze: %v\n%s", expr, cal, err, out)
			continue
		}
		var got []time.Time
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			_, when, ok := strings.Cut(line, ": ")
			if !strings.HasPrefix(line, "Next elapse:") && !strings.HasPrefix(line, "Iter. #") || !ok {
				continue
			}
			tm, err := time.ParseInLocation("Mon 2006-01-02 15:04:05 MST", when, time.Local)
			if err != nil {
				t.Fatalf("parse %q: %v", when, err)
			}
			got = append(got, tm)
		}
		tt, _ := ParseCron(expr)
		next := base
		for i, g := range got {
			next = tt.Next(next)
			if !next.Equal(g) {
				t.Errorf("%q -> OnCalendar=%s: elapse %d is %s by systemd, %s by cron", expr, cal, i+1, g, next)
				break
			}
		}
		if len(got) != 6 {
			t.Errorf("%q -> %q: %d elapses parsed:\n%s", expr, cal, len(got), out)
		}
	}
	if _, _, err := SystemdTimer("0 10 13 * FRI"); err == nil {
		t.Error("day of month and day of week both set: systemd cannot say it; want an error")
	}
	if _, every, err := SystemdTimer("@every 90m"); err != nil || every != 90*time.Minute {
		t.Errorf("@every 90m: %s %v", every, err)
	}
}

func TestSystemdUnitsAndCrontab(t *testing.T) {
	cmd := []string{"/opt/drill bin/drill", "gameday", "run", "/etc/plan.yaml", "--unattended"}
	svc, timer, err := SystemdUnits(SystemdOptions{Name: "drill-gameday-weekly", Description: "drill game day weekly", Command: cmd,
		WorkDir: "/var/lib/drill", Cron: "0 10 * * FRI", Jitter: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=oneshot", "ExecStart='/opt/drill bin/drill' gameday run /etc/plan.yaml --unattended", "KillSignal=SIGTERM",
		"WorkingDirectory=/var/lib/drill"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	for _, want := range []string{"OnCalendar=Fri *-*-* 10:00:00", "RandomizedDelaySec=300s", "Unit=drill-gameday-weekly.service", "WantedBy=timers.target"} {
		if !strings.Contains(timer, want) {
			t.Errorf("timer lacks %q:\n%s", want, timer)
		}
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		// systemd's own linter on the printed pair.
		dir := t.TempDir()
		writeFile(t, dir, "drill-gameday-weekly.service", strings.Replace(svc, "'/opt/drill bin/drill'", "/bin/true", 1))
		writeFile(t, dir, "drill-gameday-weekly.timer", timer)
		out, err := exec.Command(analyze, "verify", "--man=no", dir+"/drill-gameday-weekly.timer").CombinedOutput()
		if err != nil || strings.Contains(string(out), "Unknown key") || strings.Contains(string(out), "Invalid") {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
	line, err := CrontabLine("0 10 * * FRI", []string{"/usr/bin/drill", "gameday", "run", "/p 100%.yaml"})
	if err != nil || line != `0 10 * * FRI /usr/bin/drill gameday run '/p 100\%.yaml'` {
		t.Fatalf("crontab line %q: %v", line, err)
	}
	if _, err := CrontabLine("*/5 * * * * *", cmd); err == nil {
		t.Error("seconds in a crontab line: want an error")
	}
	if line, err := CrontabLine("@daily", []string{"/usr/bin/drill"}); err != nil || line != "@daily /usr/bin/drill" {
		t.Errorf("@daily: %q %v", line, err)
	}
}
