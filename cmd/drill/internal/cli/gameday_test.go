package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePlan(t *testing.T, body string) (dir, plan string) {
	t.Helper()
	dir = t.TempDir()
	plan = filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, plan
}

func TestGamedayUsageErrorsStartNothing(t *testing.T) {
	dir, plan := writePlan(t, "name: weekly\ndrills:\n  - drill: region-outage\n")
	hist, state := filepath.Join(dir, "history"), filepath.Join(dir, "state")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"gameday", "schedule", plan}, "no schedule: give --cron"},
		{[]string{"gameday", "schedule", plan, "--cron", "0 10 * *"}, "--cron: bad cron expression"},
		{[]string{"gameday", "schedule", plan, "--cron", "@daily", "--max-runs", "-1"}, "must not be negative"},
		{[]string{"gameday", "schedule", plan, "--cron", "*/5 * * * * *", "--print-crontab"}, "crontab has minute resolution"},
		{[]string{"gameday", "run", filepath.Join(dir, "none.yaml")}, "read plan file"},
		{[]string{"gameday", "run"}, "accepts 1 arg"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, append(c.args, "--history-dir", hist, "--state-dir", state)...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	for _, d := range []string{hist, state} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s was created by a rejected command", d)
		}
	}
}

func TestGamedayPrintSystemdAndCrontab(t *testing.T) {
	dir, plan := writePlan(t, "name: weekly\ndrills:\n  - drill: region-outage\nschedule: {cron: '0 10 * * FRI', jitter: 5m}\n")
	hist := filepath.Join(dir, "history")
	code, out, stderr := run(t, "gameday", "schedule", plan, "--print-systemd", "--history-dir", hist)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"drill-gameday-weekly.service", "drill-gameday-weekly.timer", "OnCalendar=Fri *-*-* 10:00:00",
		"RandomizedDelaySec=300s", "gameday run " + plan + " --unattended --history-dir " + hist} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-systemd lacks %q:\n%s", want, out)
		}
	}
	code, out, stderr = run(t, "gameday", "schedule", plan, "--print-crontab", "--cron", "30 6 * * MON-FRI", "--history-dir", hist)
	if code != ExitOK || !strings.Contains(out, "\n30 6 * * MON-FRI ") || !strings.Contains(out, "--jitter 5m0s >> '"+filepath.Join(hist, "cron.log")+"' 2>&1") {
		t.Fatalf("--print-crontab: exit %d\n%s%s", code, out, stderr)
	}
}

func TestHistoryCommand(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := run(t, "history", "--history-dir", dir)
	if code != ExitOK || !strings.Contains(out, "no game-day history") {
		t.Fatalf("empty history: exit %d %q", code, out)
	}
	lines := `{"id":"20260306-100000-weekly","plan":"weekly","status":"ran","trigger":"schedule","start":"2026-03-06T10:00:00Z","end":"2026-03-06T10:02:00Z","verdict":"pass","dir":"runs/20260306-100000-weekly","drills":[{"name":"region-outage","verdict":"pass","key":{"dns_failover_s":2,"rto_s":5,"lost_acked_writes":3}}]}
{"plan":"weekly","status":"skipped","trigger":"schedule","start":"2026-03-06T10:01:00Z","reason":"overlap: another game day is running"}
{"id":"20260313-100000-weekly","plan":"weekly","status":"ran","trigger":"manual","start":"2026-03-13T10:00:00Z","end":"2026-03-13T10:02:00Z","verdict":"fail","dir":"runs/20260313-100000-weekly","drills":[{"name":"region-outage","verdict":"fail","key":{"dns_failover_s":6,"rto_s":5,"lost_acked_writes":3},"failed_checks":["dns_failover"]}]}
`
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "history", "--history-dir", dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"region-outage pass dns=2 s rto=5 s lost=3", "skipped", "region-outage fail dns=6 s", "REGRESSION(verdict,dns_failover_s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil || !strings.Contains(string(page), `<svg id="trend"`) {
		t.Fatalf("history page not (re)written: %v", err)
	}
	code, out, _ = run(t, "history", "--history-dir", dir, "--json")
	var h struct {
		Runs        []map[string]any `json:"runs"`
		Regressions []map[string]any `json:"regressions"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &h) != nil || len(h.Runs) != 3 || len(h.Regressions) != 2 {
		t.Fatalf("--json: exit %d %s", code, out)
	}
}
