package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/topology"
)

func TestParseExample(t *testing.T) {
	dr, err := Load(filepath.Join("testdata", "region-outage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if dr.Name != "region-outage" || !strings.HasPrefix(dr.Description, "Black-hole us-east") {
		t.Fatalf("name/description: %q %q", dr.Name, dr.Description)
	}
	if fmt.Sprint(dr.Settings) != "map[dns_ttl:2s fencing:lease]" {
		t.Fatalf("settings %v", dr.Settings)
	}
	if fmt.Sprint(dr.Budgets) != "map[dns_failback_early_s:0 dns_failover_s:15 lost_acked_writes:0 replication_lag_p99_ms:500 rto_s:20 split_brain_s:0 stale_reads:0]" {
		t.Fatalf("budgets %v", dr.Budgets)
	}
	if dr.Workload != (Workload{ClientsPerRegion: 3, WriteRate: 2.5, ReadAfterWrite: true, JobWorkMS: DefaultJobWorkMS, Until: UntilStop}) {
		t.Fatalf("workload %+v", dr.Workload)
	}
	var steps []string
	for _, s := range dr.Steps {
		steps = append(steps, fmt.Sprintf("%s %s", s.Pos, s))
	}
	want := []string{
		"21:5 steady within 10s: region_healthy us-east, region_healthy eu-west",
		"22:5 workload start",
		"23:5 wait 5s",
		"24:5 inject blackhole:us-east",
		"25:5 expect dns_points_away_from us-east within 15s",
		"26:5 expect primary_in eu-west within 10s holding 3s",
		"30:5 inject latency:eu-west|us-east",
		"31:5 expect no_failover within 1s holding 5s",
		"32:5 heal blackhole:us-east",
		"33:5 heal all",
		"34:5 expect replica_caught_up us-east within 30s",
		"35:5 inject kill:eu-west-web-1",
		"36:5 inject restart:us-east",
		"37:5 inject primary-down",
		"38:5 expect primary_in us-east within 10s",
		"39:5 heal all",
		"40:5 workload stop",
		"41:5 verify final_read",
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Fatalf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	lat := dr.Steps[6].Inject
	if lat.Kind != fault.KindLatency || lat.Params.Duration(fault.ParamLatency) != 200*time.Millisecond ||
		lat.Params.Duration(fault.ParamJitter) != 20*time.Millisecond || fmt.Sprint(lat.Regions) != "[eu-west us-east]" {
		t.Fatalf("latency inject %+v", lat)
	}
	if c := dr.Steps[4].Expect.Condition; c.Kind != CondDNSPointsAwayFrom || c.Region != "us-east" || c.Pos != (Pos{Line: 25, Column: 25}) {
		t.Fatalf("condition %+v", c)
	}
	if dr.Steps[13].Inject.Instant() || !dr.Steps[12].Inject.Instant() {
		t.Fatal("restart is instant, kill-primary is not")
	}

	resolved, err := dr.Resolve(topology.Default())
	if err != nil {
		t.Fatal(err)
	}
	if resolved.DNS.TTL.D() != 2*time.Second || resolved.Design.Fencing != topology.FencingLease {
		t.Fatalf("settings not applied: %+v %+v", resolved.DNS, resolved.Design)
	}
	if topology.Default().DNS.TTL.D() == 2*time.Second {
		t.Fatal("the default topology must be unchanged")
	}
}

func TestParseDefaults(t *testing.T) {
	dr, err := Parse("d.yaml", []byte("name: tiny\nsteps:\n  - wait: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if dr.Workload != (Workload{ClientsPerRegion: 2, WriteRate: 5, ReadAfterWrite: true, Until: UntilEnd}) {
		t.Fatalf("default workload %+v", dr.Workload)
	}
	dr, err = Parse("d.yaml", []byte("name: tiny\nworkload: {duration: 1m, read_after_write: false}\nsteps:\n  - workload: start\n  - workload: stop\n"))
	if err != nil {
		t.Fatal(err)
	}
	if dr.Workload != (Workload{ClientsPerRegion: 2, WriteRate: 5, JobWorkMS: DefaultJobWorkMS, Duration: time.Minute}) {
		t.Fatalf("workload %+v", dr.Workload)
	}
}

// TestParseErrors: every error names file, line, column and field, exactly.
func TestParseErrors(t *testing.T) {
	// The registered kinds, as the errors list them (a new kind must not break this test).
	kinds := strings.Join(fault.KindNames(), ", ")
	for _, k := range []string{"blackhole", "freeze", "kill", "kill-primary", "latency", "loss"} {
		if !slices.Contains(fault.KindNames(), k) {
			t.Fatalf("registered kinds %s lack %s", kinds, k)
		}
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown top-level field", "name: x\nbudget: {}\nsteps: [{wait: 1s}]\n",
			`f.yaml:2:1: budget: unknown field "budget" (valid: name, description, topology, settings, budgets, workload, steps)`},
		{"unknown topology", "name: x\ntopology: big\nsteps: [{wait: 1s}]\n",
			`f.yaml:2:11: topology: "big" is not a built-in topology (valid: default, cache, queue); a topology file is given with --topology`},
		{"unknown fault", "name: x\nsteps:\n  - inject: {fault: nuke, region: us-east}\n",
			`f.yaml:3:21: steps[0].inject.fault: unknown fault "nuke" (valid: ` + kinds + `)`},
		{"missing fault", "name: x\nsteps:\n  - inject:\n      region: us-east\n",
			`f.yaml:4:7: steps[0].inject.fault: missing fault (one of ` + kinds + `)`},
		{"missing region", "name: x\nsteps:\n  - inject:\n      fault: blackhole\n",
			`f.yaml:4:7: steps[0].inject.region: missing region: blackhole needs the region whose traffic to drop`},
		{"missing region (flow)", "name: x\nsteps:\n  - wait: 1s\n  - inject: {fault: partition}\n",
			`f.yaml:4:13: steps[1].inject.region: missing region: partition needs the region to cut off from everything else, or regions: [a, b] to cut the links between them`},
		{"missing target", "name: x\nsteps:\n  - inject: {fault: freeze}\n",
			`f.yaml:3:13: steps[0].inject.target: missing target: freeze needs the node to freeze (target; target: primary for whichever db node is the primary then) or the region whose nodes to freeze`},
		{"field that does not apply", "name: x\nsteps:\n  - inject: {fault: kill-primary, region: us-east}\n",
			`f.yaml:3:35: steps[0].inject.region: region does not apply to fault kill-primary`},
		{"latency needs latency", "name: x\nsteps:\n  - inject: {fault: latency}\n",
			`f.yaml:3:13: steps[0].inject.latency: missing latency: the one-way latency to add, e.g. latency: 200ms`},
		{"a clock offset out of range", "name: x\nsteps:\n  - inject: {fault: clock-skew, target: us-east-db-1, offset: -2m}\n",
			`f.yaml:3:63: steps[0].inject.offset: -2m0s out of -1m0s..1m0s`},
		{"a clock offset without a unit", "name: x\nsteps:\n  - inject: {fault: clock-skew, target: us-east-db-1, offset: -5}\n",
			`f.yaml:3:63: steps[0].inject.offset: "-5" is not a duration (e.g. 150ms, 2s)`},
		{"loss needs percent", "name: x\nsteps:\n  - inject: {fault: loss, region: us-east}\n",
			`f.yaml:3:13: steps[0].inject.percent: missing percent: the share of packets to drop, 1 to 99, e.g. percent: 30`},
		{"loss needs a region", "name: x\nsteps:\n  - inject: {fault: loss, percent: 30}\n",
			`f.yaml:3:13: steps[0].inject.region: missing region: loss needs the region whose packets to and from everything else to drop, or regions: [a, b] for the packets between them`},
		{"loss of 0 percent", "name: x\nsteps:\n  - inject: {fault: loss, region: us-east, percent: 0}\n",
			`f.yaml:3:53: steps[0].inject.percent: must be between 1 and 99, not 0`},
		{"loss of 100 percent", "name: x\nsteps:\n  - inject:\n      fault: loss\n      regions: [us-east, eu-west]\n      percent: 100\n",
			`f.yaml:6:16: steps[0].inject.percent: must be between 1 and 99, not 100`},
		{"loss percent with a sign", "name: x\nsteps:\n  - inject: {fault: loss, region: us-east, percent: 30%}\n",
			`f.yaml:3:53: steps[0].inject.percent: must be an integer, not "30%"`},
		{"loss percent as a fraction", "name: x\nsteps:\n  - inject: {fault: loss, region: us-east, percent: 0.3}\n",
			`f.yaml:3:53: steps[0].inject.percent: must be an integer, not "0.3"`},
		{"percent does not apply", "name: x\nsteps:\n  - inject: {fault: partition, region: us-east, percent: 30}\n",
			`f.yaml:3:49: steps[0].inject.percent: percent does not apply to fault partition`},
		{"loss with a target", "name: x\nsteps:\n  - inject: {fault: loss, target: us-east-db-1, percent: 30}\n",
			`f.yaml:3:27: steps[0].inject.target: target does not apply to fault loss`},
		{"loss with region and regions", "name: x\nsteps:\n  - inject: {fault: loss, region: us-east, regions: [us-east, eu-west], percent: 5}\n",
			`f.yaml:3:44: steps[0].inject.regions: set region or regions, not both`},
		{"region and regions", "name: x\nsteps:\n  - inject: {fault: partition, region: us-east, regions: [a, b]}\n",
			`f.yaml:3:49: steps[0].inject.regions: set region or regions, not both`},
		{"one region in regions", "name: x\nsteps:\n  - inject: {fault: partition, regions: [us-east]}\n",
			`f.yaml:3:41: steps[0].inject.regions: needs at least two regions (for one region, use region:)`},
		{"region listed twice", "name: x\nsteps:\n  - inject: {fault: partition, regions: [us-east, us-east]}\n",
			`f.yaml:3:51: steps[0].inject.regions[1]: region us-east listed twice (first at line 3)`},
		{"bad region name", "name: x\nsteps:\n  - inject: {fault: blackhole, region: US East}\n",
			`f.yaml:3:40: steps[0].inject.region: "US East" is not a region name (lower-case letters, digits and dashes)`},
		{"unknown condition", "name: x\nsteps:\n  - expect: {condition: dns_points_at us-east, within: 5s}\n",
			`f.yaml:3:25: steps[0].expect.condition: unknown condition "dns_points_at" (valid: converged, dns_points_away_from REGION, dns_points_to REGION, no_failover, primary_in REGION, primary_outside REGION, queue_backlog REGION, queue_drained, region_healthy REGION, region_unhealthy REGION, replica_caught_up REGION)`},
		{"condition without region", "name: x\nsteps:\n  - steady:\n      within: 10s\n      expect:\n        - region_healthy us-east\n        - primary_in\n",
			`f.yaml:7:11: steps[0].steady.expect[1]: primary_in needs a region, e.g. "primary_in us-east"`},
		{"condition with extra words", "name: x\nsteps:\n  - expect: {condition: primary_in us-east eu-west, within: 5s}\n",
			`f.yaml:3:25: steps[0].expect.condition: primary_in takes one region, got "us-east eu-west"`},
		{"no_failover takes no region", "name: x\nsteps:\n  - expect: {condition: no_failover us-east, within: 5s}\n",
			`f.yaml:3:25: steps[0].expect.condition: no_failover takes no argument, got "us-east"`},
		{"expect without within", "name: x\nsteps:\n  - expect: {condition: no_failover}\n",
			`f.yaml:3:13: steps[0].expect.within: missing within: how long it may take, e.g. within: 15s`},
		{"steady with no conditions", "name: x\nsteps:\n  - steady: {within: 5s, expect: []}\n",
			`f.yaml:3:34: steps[0].steady.expect: needs at least one condition`},
		{"bad duration", "name: x\nsteps:\n  - wait: 10x\n",
			`f.yaml:3:11: steps[0].wait: invalid duration "10x" (use e.g. 500ms, 10s, 2m)`},
		{"duration without unit", "name: x\nsteps:\n  - expect: {condition: no_failover, within: 10}\n",
			`f.yaml:3:46: steps[0].expect.within: invalid duration "10": missing unit (use e.g. 10s)`},
		{"zero wait", "name: x\nsteps:\n  - wait: 0s\n",
			`f.yaml:3:11: steps[0].wait: must be longer than 0, not 0s`},
		{"negative hold", "name: x\nsteps:\n  - expect: {condition: no_failover, within: 1s, hold: -1s}\n",
			`f.yaml:3:56: steps[0].expect.hold: must not be negative, not -1s`},
		{"unknown budget", "name: x\nbudgets:\n  rto: 5\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:3: budgets.rto: unknown budget "rto" (valid: ` + strings.Join(check.BudgetNames(), ", ") + `)`},
		{"budget with a unit", "name: x\nbudgets:\n  rto_s: 5s\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:10: budgets.rto_s: must be a number (the unit is in the budget's name), not "5s"`},
		{"negative budget", "name: x\nbudgets:\n  stale_reads: -1\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:16: budgets.stale_reads: must be a finite number >= 0, not "-1"`},
		{"two actions in one step", "name: x\nsteps:\n  - wait: 1s\n    heal: all\n",
			`f.yaml:4:5: steps[0]: a step has exactly one action, found "wait" and "heal" (start a new list item with -)`},
		{"unknown step", "name: x\nsteps:\n  - sleep: 1s\n",
			`f.yaml:3:5: steps[0].sleep: unknown step "sleep" (valid: steady, workload, inject, expect, wait, heal, verify)`},
		{"step that is not a mapping", "name: x\nsteps:\n  - wait\n",
			`f.yaml:3:5: steps[0]: must be a mapping, not "wait"`},
		{"empty step", "name: x\nsteps:\n  - {}\n",
			`f.yaml:3:5: steps[0]: empty step: give one of steady, workload, inject, expect, wait, heal, verify`},
		{"heal of an unknown fault", "name: x\nsteps:\n  - inject: {fault: blackhole, region: us-east}\n  - heal: blackhole:eu-west\n",
			`f.yaml:4:11: steps[1].heal: no active fault "blackhole:eu-west" to heal (active: blackhole:us-east)`},
		{"heal with nothing active", "name: x\nsteps:\n  - heal: all\n",
			`f.yaml:3:11: steps[0].heal: nothing to heal: no fault is active`},
		{"heal of a healed fault", "name: x\nsteps:\n  - inject: {fault: blackhole, region: us-east}\n  - heal: all\n  - heal: blackhole:us-east\n",
			`f.yaml:5:11: steps[2].heal: no active fault "blackhole:us-east" to heal (no fault is active)`},
		{"heal of an instant fault", "name: x\nsteps:\n  - inject: {fault: restart, target: us-east-db-1}\n  - heal: restart:us-east-db-1\n",
			`f.yaml:4:11: steps[1].heal: no active fault "restart:us-east-db-1" to heal (no fault is active)`},
		{"fault injected twice", "name: x\nsteps:\n  - inject: {fault: blackhole, region: us-east}\n  - inject: {fault: blackhole, region: us-east}\n",
			`f.yaml:4:13: steps[1].inject: fault blackhole:us-east is already active (injected at line 3); heal it first or give this one another id`},
		{"reserved id", "name: x\nsteps:\n  - inject: {fault: kill-primary, id: all}\n",
			`f.yaml:3:39: steps[0].inject.id: "all" cannot be a fault id (no blanks, and "all" is reserved)`},
		{"duplicate key", "name: x\nsteps:\n  - inject: {fault: blackhole, region: us-east, region: eu-west}\n",
			`f.yaml:3:49: steps[0].inject.region: duplicate key "region" (first at line 3)`},
		{"stop without start", "name: x\nsteps:\n  - workload: stop\n",
			`f.yaml:3:15: steps[0].workload: the workload is not running (no earlier ` + "`workload: start`" + `)`},
		{"start twice", "name: x\nsteps:\n  - workload: start\n  - workload: start\n",
			`f.yaml:4:15: steps[1].workload: the workload is already running (started at line 3)`},
		{"bad workload action", "name: x\nsteps:\n  - workload: go\n",
			`f.yaml:3:15: steps[0].workload: must be start or stop, not "go"`},
		{"verify while the workload runs", "name: x\nsteps:\n  - workload: start\n  - verify: {final_read: true}\n  - workload: stop\n",
			`f.yaml:4:13: steps[1].verify: final_read while the workload still runs (started at line 3): add ` + "`- workload: stop`" + ` before it`},
		{"verify nothing", "name: x\nsteps:\n  - verify: {final_read: false}\n",
			`f.yaml:3:13: steps[0].verify: nothing to verify: set final_read: true`},
		{"duration and until", "name: x\nworkload:\n  duration: 1m\n  until: stop\nsteps: [{wait: 1s}]\n",
			`f.yaml:4:3: workload.until: set duration or until, not both (duration at line 3)`},
		{"until stop without a stop step", "name: x\nworkload:\n  until: stop\nsteps:\n  - workload: start\n",
			`f.yaml:3:3: workload.until: until: stop, but no step stops the workload (add ` + "`- workload: stop`" + `)`},
		{"bad until", "name: x\nworkload: {until: forever}\nsteps: [{wait: 1s}]\n",
			`f.yaml:2:19: workload.until: must be stop or end, not "forever"`},
		{"no clients", "name: x\nworkload:\n  clients_per_region: 0\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:23: workload.clients_per_region: must be between 1 and 100, not 0`},
		{"zero write rate", "name: x\nworkload:\n  write_rate: 0\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:15: workload.write_rate: must be more than 0 and at most 1000 writes per second, not "0"`},
		{"unknown workload field", "name: x\nworkload:\n  users: 3\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:3: workload.users: unknown field "users" (valid: clients_per_region, write_rate, read_after_write, read_others, hot_keys, reads_per_write, job_rate, job_work_ms, duration, until)`},
		{"unknown setting", "name: x\nsettings:\n  fence: none\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:3: settings.fence: unknown setting; valid settings: fencing, replication, read_your_writes, read_from, failover_after, lease_duration, cache_ttl, cache_coalescing, cache_invalidation, queue_replication, queue_storage, queue_ack, worker_concurrency, dns_ttl, wan_latency, gossip_profile (or their YAML paths, e.g. design.fencing, dns.ttl)`},
		{"bad setting value", "name: x\nsettings:\n  fencing: maybe\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:12: settings.fencing: must be lease or none, got "maybe"`},
		{"setting out of range", "name: x\nsettings:\n  failover_after: 0s\nsteps: [{wait: 1s}]\n",
			`f.yaml:3:19: settings.failover_after: must be positive, got 0s`},
		{"missing name", "steps: [{wait: 1s}]\n",
			`f.yaml:1:1: name: missing name`},
		{"missing steps", "name: x\n",
			`f.yaml:1:1: steps: missing steps`},
		{"no steps", "name: x\nsteps: []\n",
			`f.yaml:2:8: steps: a drill needs at least one step`},
		{"bad drill name", "name: Region Outage\nsteps: [{wait: 1s}]\n",
			`f.yaml:1:7: name: "Region Outage" is not a drill name (lower-case letters, digits and dashes)`},
		{"empty file", "# nothing\n",
			`f.yaml:1:1: empty drill file: it needs at least name and steps`},
		{"not a mapping", "- wait: 1s\n",
			`f.yaml:1:1: must be a mapping, not a list`},
		{"two documents", "name: x\nsteps: [{wait: 1s}]\n---\nname: y\n",
			`f.yaml:4:1: a drill file holds exactly one YAML document`},
		{"yaml syntax", "name: x\nsteps: [\n",
			`f.yaml:2:8: sequence end token ']' not found`},
		{"duplicate top-level key", "name: x\nname: y\nsteps: [{wait: 1s}]\n",
			`f.yaml:2:1: name: duplicate key "name" (first at line 1)`},
		{"unknown alias", "name: x\ndescription: *b\nsteps: [{wait: 1s}]\n",
			`f.yaml:2:14: description: unknown alias *b`},
		{"empty value", "name: x\nsteps:\n  - wait:\n",
			`f.yaml:3:5: steps[0].wait: missing value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dr, err := Parse("f.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; parsed %+v", dr)
			}
			if dr != nil {
				t.Fatal("a drill returned with an error")
			}
			var list ErrorList
			var one *Error
			if !errors.As(err, &list) || !errors.As(err, &one) {
				t.Fatalf("error %T is not an ErrorList of *Error", err)
			}
			if len(list) != 1 || list[0].Error() != tc.want {
				t.Fatalf("errors\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestParseLoss: a loss fault between regions or of one region against everything, its derived
// id, and the check of its regions against the topology.
func TestParseLoss(t *testing.T) {
	src := "name: lossy\nsteps:\n" +
		"  - inject: {fault: loss, regions: [us-east, eu-west], percent: 30}\n" +
		"  - inject: {fault: loss, region: us-east, percent: 5, id: flaky}\n" +
		"  - heal: loss:eu-west|us-east\n" +
		"  - heal: flaky\n"
	dr, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	between, one := dr.Steps[0].Inject, dr.Steps[1].Inject
	if between.Kind != fault.KindLoss || between.ID != "loss:eu-west|us-east" || between.Params.Int(fault.ParamPercent) != 30 ||
		fmt.Sprint(between.Regions) != "[eu-west us-east]" || between.Region != "" || between.Instant() {
		t.Fatalf("loss between regions: %+v", between)
	}
	if one.ID != "flaky" || one.Region != "us-east" || one.Params.Int(fault.ParamPercent) != 5 || len(one.Regions) != 0 {
		t.Fatalf("loss of one region: %+v", one)
	}
	if _, err := dr.Resolve(topology.Default()); err != nil {
		t.Fatal(err)
	}
	dr, err = Parse("f.yaml", []byte("name: x\nsteps:\n  - inject: {fault: loss, regions: [us-east, mars], percent: 30}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dr.Resolve(topology.Default())
	if want := `f.yaml:3:46: steps[0].inject.regions[1]: topology default has no site "mars" (sites: us-east, eu-west, witness)`; err == nil || err.Error() != want {
		t.Fatalf("resolve: %v\nwant %s", err, want)
	}
}

func TestParseReportsEveryErrorSorted(t *testing.T) {
	src := "name: x\nbudgets: {rto: 1}\nsteps:\n  - wait: 1\n  - inject: {fault: blackhole}\n  - expect: {condition: up us-east, within: 1s}\n"
	_, err := Parse("f.yaml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Column, e.Field))
	}
	want := "2:11 budgets.rto 4:11 steps[0].wait 5:13 steps[1].inject.region 6:25 steps[2].expect.condition"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s\n%v", strings.Join(got, " "), want, err)
	}
}

func TestResolveErrors(t *testing.T) {
	src := "name: x\n" +
		"steps:\n" +
		"  - inject: {fault: blackhole, region: ap-south}\n" +
		"  - inject: {fault: kill, target: us-east-db-9}\n" +
		"  - expect: {condition: primary_in eu-west, within: 1s}\n"
	dr, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dr.Resolve(topology.Default())
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	want := []string{
		`f.yaml:3:40: steps[0].inject.region: topology default has no region "ap-south" (regions: us-east, eu-west)`,
		`f.yaml:4:35: steps[1].inject.target: topology default has no node "us-east-db-9" (nodes: `,
	}
	if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], want[1]) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestResolveSettingForTopology(t *testing.T) {
	dr, err := Parse("f.yaml", []byte("name: x\nsettings:\n  wan_latency: 80ms\nsteps: [{wait: 1s}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := dr.Resolve(topology.Default())
	if err != nil {
		t.Fatal(err)
	}
	if topo.WAN.Latency.D() != 80*time.Millisecond {
		t.Fatalf("wan latency %v", topo.WAN.Latency)
	}
}

func TestParseCondition(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dns_points_to eu-west", "dns_points_to eu-west"},
		{"  region_unhealthy   us-east ", "region_unhealthy us-east"},
		{"no_failover", "no_failover"},
		{"", "error: empty condition"},
		{"primary_in EU", `error: "EU" is not a region name`},
	} {
		c, err := ParseCondition(tc.in)
		got := c.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("ParseCondition(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var one *Error
	if !errors.As(err, &one) || !strings.Contains(err.Error(), "nope.yaml: read drill file:") {
		t.Fatalf("got %v", err)
	}
}

// TestSignedDurationParam: a clock's offset may be negative, unlike every other duration.
func TestSignedDurationParam(t *testing.T) {
	dr, err := Parse("d.yaml", []byte("name: x\nsteps:\n  - inject: {fault: clock-skew, target: primary, offset: -500ms, id: s}\n  - heal: s\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := dr.Steps[0].Inject
	if in.Kind != fault.KindClockSkew || in.Node != fault.TargetPrimary || in.Params[fault.ParamOffset] != "-500ms" {
		t.Fatalf("inject %+v", in)
	}
}

// TestFlappingInDrillFiles: a flapping fault names the fault it flaps and its period; a kind that
// is not a network fault is refused with the choices.
func TestFlappingInDrillFiles(t *testing.T) {
	dr, err := Parse("d.yaml", []byte("name: x\nsteps:\n  - inject: {fault: flapping, id: fl, of: partition, regions: [us-east, eu-west], on: 2s, off: 1s}\n  - heal: fl\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := dr.Steps[0].Inject
	if in.Kind != fault.KindFlapping || in.Params[fault.ParamOf] != "partition" || in.Params[fault.ParamOn] != "2s" || len(in.Regions) != 2 {
		t.Fatalf("inject %+v", in)
	}
	_, err = Parse("d.yaml", []byte("name: x\nsteps:\n  - inject: {fault: flapping, region: us-east, of: kill, on: 2s, off: 1s}\n"))
	if err == nil || !strings.Contains(err.Error(), `d.yaml:3:52: steps[0].inject.of: "kill" is not one of blackhole,`) {
		t.Fatalf("of: kill: %v", err)
	}
}
