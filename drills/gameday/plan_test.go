package gameday

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/topology"
)

func TestParseValidPlan(t *testing.T) {
	src := `name: weekly-failover
description: every Friday
runtime: local
mode: run-all
drills:
  - drill: region-outage
    set: {replication: semi-sync}
    budgets: {lost_acked_writes: 0, rto_s: 12.5}
  - human: "Page the on-call and wait for ack"
  - drill: primary-kill
webhook: {url: "https://hooks.example/drill", timeout: 2s, retries: 4}
schedule: {cron: "0 10 * * FRI", jitter: 5m}
`
	p, err := Parse("plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "weekly-failover" || p.Runtime != "local" || p.Mode != ModeRunAll || len(p.Steps) != 3 {
		t.Fatalf("plan: %+v", p)
	}
	d := p.Steps[0].Drill
	if d == nil || d.Ref != "region-outage" || d.Set["replication"] != "semi-sync" || d.Budgets["lost_acked_writes"] != 0 || d.Budgets["rto_s"] != 12.5 {
		t.Fatalf("first drill: %+v", d)
	}
	if p.Steps[1].Human != "Page the on-call and wait for ack" || p.Steps[1].Drill != nil {
		t.Fatalf("human step: %+v", p.Steps[1])
	}
	if p.Steps[1].Pos != (Pos{Line: 9, Column: 5}) {
		t.Fatalf("human step at %s, want 9:5", p.Steps[1].Pos)
	}
	if w := p.Webhook; w == nil || w.URL != "https://hooks.example/drill" || w.Timeout != 2*time.Second || w.Retries != 4 {
		t.Fatalf("webhook: %+v", p.Webhook)
	}
	if s := p.Schedule; s == nil || s.Cron != "0 10 * * FRI" || s.Jitter != 5*time.Minute {
		t.Fatalf("schedule: %+v", p.Schedule)
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse("p.yaml", []byte("name: p\ndrills: [{drill: wan-latency}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Runtime != "local" || p.Mode != ModeStopOnFirstFailure || p.Webhook != nil || p.Schedule != nil {
		t.Fatalf("defaults: %+v", p)
	}
	p, err = Parse("p.yaml", []byte("name: p\ndrills: [{drill: wan-latency}]\nwebhook: {url: 'http://127.0.0.1:1/x'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Webhook.Timeout != DefaultWebhookTimeout || p.Webhook.Retries != DefaultWebhookRetries {
		t.Fatalf("webhook defaults: %+v", p.Webhook)
	}
}

// TestParseErrorsArePositioned checks each problem names the file, line, column and field.
func TestParseErrorsArePositioned(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown top field", "name: p\ndrils: []\n", "p.yaml:2:1: drils: unknown field"},
		{"missing drills", "name: p\n", "p.yaml:1:1: drills: missing drills"},
		{"missing name", "drills: [{drill: wan-latency}]\n", "p.yaml:1:1: name: missing name"},
		{"bad name", "name: Weekly Run\ndrills: [{drill: wan-latency}]\n", `p.yaml:1:7: name: "Weekly Run" is not a plan name`},
		{"bad mode", "name: p\nmode: yolo\ndrills: [{drill: wan-latency}]\n", `p.yaml:2:7: mode: must be stop-on-first-failure or run-all, not "yolo"`},
		{"bad cron", "name: p\ndrills: [{drill: wan-latency}]\nschedule:\n  cron: \"0 25 * * *\"\n", `p.yaml:4:9: schedule.cron: bad cron expression "0 25 * * *"`},
		{"cron with too many fields", "name: p\ndrills: [{drill: wan-latency}]\nschedule: {cron: '1 2 3 4 5 6 7'}\n", `p.yaml:3:18: schedule.cron: bad cron expression`},
		{"missing cron", "name: p\ndrills: [{drill: wan-latency}]\nschedule: {jitter: 1m}\n", "p.yaml:3:11: schedule.cron: missing cron"},
		{"bad jitter", "name: p\ndrills: [{drill: wan-latency}]\nschedule: {cron: '@daily', jitter: 5}\n", `p.yaml:3:36: schedule.jitter: invalid duration "5": missing unit`},
		{"unknown budget", "name: p\ndrills:\n  - drill: wan-latency\n    budgets: {lost_writes: 0}\n", `p.yaml:4:15: drills[0].budgets.lost_writes: unknown budget "lost_writes"`},
		{"negative budget", "name: p\ndrills:\n  - drill: wan-latency\n    budgets:\n      rto_s: -1\n", `p.yaml:5:14: drills[0].budgets.rto_s: must be a finite number >= 0`},
		{"unknown set key", "name: p\ndrills:\n  - drill: wan-latency\n    set:\n      fencin: none\n", "p.yaml:5:7: drills[0].set.fencin: unknown setting"},
		{"bad set value", "name: p\ndrills:\n  - drill: wan-latency\n    set: {fencing: maybe}\n", `p.yaml:4:20: drills[0].set.fencing: must be lease or none, got "maybe"`},
		{"drill and human", "name: p\ndrills:\n  - drill: wan-latency\n    human: ack\n", "p.yaml:4:5: drills[0].human: a step is a drill or a human step, not both"},
		{"human with set", "name: p\ndrills:\n  - drill: wan-latency\n  - human: ack\n    set: {fencing: none}\n", "p.yaml:5:5: drills[1].set: set does not apply to a human step"},
		{"empty step", "name: p\ndrills:\n  - drill: wan-latency\n  - budgets: {rto_s: 1}\n", "p.yaml:4:5: drills[1]: missing drill"},
		{"no drill at all", "name: p\ndrills:\n  - human: ack\n", "p.yaml:3:3: drills: a plan needs at least one drill"},
		{"bad webhook url", "name: p\ndrills: [{drill: wan-latency}]\nwebhook: {url: 'ftp://x/y'}\n", `p.yaml:3:16: webhook.url: "ftp://x/y" is not an http or https URL`},
		{"too many retries", "name: p\ndrills: [{drill: wan-latency}]\nwebhook: {url: 'http://x/y', retries: 50}\n", "p.yaml:3:39: webhook.retries: must be between 0 and 10, not 50"},
		{"syntax error", "name: p\ndrills: [\n", "p.yaml:2:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.src))
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				found = found || strings.HasPrefix(line, c.want)
			}
			if !found {
				t.Fatalf("error:\n  %v\nwant a line starting:\n  %s", err, c.want)
			}
		})
	}
}

// writeFile writes a file under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// shortDrill is a valid drill file (never run by these tests).
const shortDrill = `name: short-latency
description: a short latency drill
budgets: {lost_acked_writes: 0}
steps:
  - steady: {within: 20s, expect: [region_healthy us-east]}
  - workload: start
  - wait: 2s
  - inject: {fault: latency, id: slow, latency: 50ms}
  - heal: slow
  - workload: stop
  - verify: {final_read: true}
`

func TestLoadResolvesDrillsAndTopologies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "drills/short.yaml", shortDrill)
	def := string(topology.DefaultYAML())
	writeFile(t, dir, "topo-a.yaml", strings.Replace(def, "name: default", "name: topo-a", 1))
	writeFile(t, dir, "topo-b.yaml", strings.Replace(def, "name: default", "name: topo-b", 1))
	plan := writeFile(t, dir, "plan.yaml", `name: p
topology: topo-a.yaml
drills:
  - drill: drills/short.yaml
    set: {fencing: none}
    budgets: {rto_s: 3}
  - drill: wan-latency
    topology: topo-b.yaml
`)
	p, err := Load(plan, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Steps[0].Drill, p.Steps[1].Drill
	if a.Path != filepath.Join(dir, "drills/short.yaml") || a.Drill.Name != "short-latency" || a.Resolved.Name != "topo-a" {
		t.Fatalf("first drill: path %s drill %v topology %v", a.Path, a.Drill, a.Resolved)
	}
	if a.Resolved.Design.Fencing != "none" || a.Drill.Settings["fencing"] != "none" || a.Drill.Budgets["rto_s"] != 3 || a.Drill.Budgets["lost_acked_writes"] != 0 {
		t.Fatalf("overrides not applied: fencing %s settings %v budgets %v", a.Resolved.Design.Fencing, a.Drill.Settings, a.Drill.Budgets)
	}
	if b.Path != "" || b.Drill.Name != "wan-latency" || b.Resolved.Name != "topo-b" {
		t.Fatalf("second drill: %+v on %s", b.Drill, b.Resolved.Name)
	}
	// --topology replaces the plan's topology but not a drill's own.
	override := topology.Default()
	override.Name = "from-flag"
	p, err = Load(plan, LoadOptions{Topology: override})
	if err != nil {
		t.Fatal(err)
	}
	if p.Steps[0].Drill.Resolved.Name != "from-flag" || p.Steps[1].Drill.Resolved.Name != "topo-b" {
		t.Fatalf("override: %s, %s", p.Steps[0].Drill.Resolved.Name, p.Steps[1].Drill.Resolved.Name)
	}
}

func TestLoadErrorsArePositioned(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "broken.yaml", "name: broken\nsteps:\n  - inject: {fault: meteor}\n")
	writeFile(t, dir, "elsewhere.yaml", strings.Replace(shortDrill, "region_healthy us-east", "region_healthy ap-south", 1))
	plan := writeFile(t, dir, "plan.yaml", `name: p
runtime: mars
drills:
  - drill: regin-outage
  - drill: missing.yaml
  - drill: broken.yaml
  - drill: elsewhere.yaml
  - drill: wan-latency
    topology: nope.yaml
  - drill: wan-latency
    set: {fencing: maybe}
schedule: {cron: "not a cron"}
`)
	_, err := Load(plan, LoadOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	text := err.Error()
	want := []string{
		plan + `:2:10: runtime: unknown runtime "mars"`,
		plan + `:4:12: drills[0].drill: unknown drill "regin-outage": not a built-in drill`,
		plan + `:5:12: drills[1].drill: unknown drill "missing.yaml": no such drill file`,
		plan + `:6:12: drills[2].drill: ` + filepath.Join(dir, "broken.yaml") + `:3:21: steps[0].inject.fault: unknown fault "meteor"`,
		plan + `:7:12: drills[3].drill: does not fit topology default: ` + filepath.Join(dir, "elsewhere.yaml") + `:5:`,
		plan + `:9:15: drills[4].topology: ` + filepath.Join(dir, "nope.yaml") + `: read topology`,
		plan + `:11:20: drills[5].set.fencing: must be lease or none`,
		plan + `:12:18: schedule.cron: bad cron expression "not a cron"`,
	}
	lines := strings.Split(text, "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), text)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d:\n  %s\nwant prefix:\n  %s", i, lines[i], w)
		}
	}
}

func TestLoadUnreadablePlan(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"), LoadOptions{})
	var list ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "read plan file") {
		t.Fatalf("error: %v", err)
	}
}
