package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// drillHistory is a hand-made region-outage history, recorded through a Recorder into the
// returned buffer: us-east is black-holed from 10 s to 30 s, eu-west is promoted at 12 s, one
// acknowledged write is lost, and WAN latency is added from 35 s to 40 s.
func drillHistory(t *testing.T, faultIDs ...string) ([]history.Op, *bytes.Buffer) {
	t.Helper()
	type stamped struct {
		op  history.Op
		sec float64
	}
	var all []stamped
	add := func(sec float64, op history.Op) { all = append(all, stamped{op, sec}) }
	ids := append([]string{"blackhole:us-east", "latency:wan"}, faultIDs...)
	add(10, history.Op{Type: history.TypeFault, F: history.FStart, Fault: ids[0], FaultKind: fault.KindBlackhole, Region: "us-east"})
	add(30, history.Op{Type: history.TypeFault, F: history.FStop, Fault: ids[0], FaultKind: fault.KindBlackhole, Region: "us-east"})
	add(35, history.Op{Type: history.TypeFault, F: history.FStart, Fault: ids[1], FaultKind: fault.KindLatency})
	add(40, history.Op{Type: history.TypeFault, F: history.FStop, Fault: ids[1], FaultKind: fault.KindLatency})
	for i, id := range faultIDs {
		add(41+float64(i), history.Op{Type: history.TypeFault, F: history.FStart, Fault: id, FaultKind: fault.KindKill, Node: "eu-west-web-1"})
	}
	add(12, history.Op{Type: history.TypeEpoch, Epoch: 2, Node: "eu-west-db-1", Region: "eu-west"})
	proc := map[string]int{"us-east": 1, "eu-west": 2}
	for _, region := range []string{"us-east", "eu-west"} {
		p := proc[region]
		for s := 0.0; s < 45; s += 1 {
			dnsTo := region
			if region == "us-east" && s >= 14 && s < 33 {
				dnsTo = "eu-west"
			}
			add(s, history.Op{Type: history.TypeDNS, Process: p, ClientRegion: region, DNSRegion: dnsTo, DNSAnswer: []string{"127.77.1.10"}})
			key := fmt.Sprintf("%s-%g", region, s)
			add(s+0.01, history.Op{Type: history.TypeInvoke, F: history.FWrite, Process: p, ClientRegion: region, Key: key, Value: "v"})
			done := history.Op{Type: history.TypeOK, F: history.FWrite, Process: p, ClientRegion: region, Key: key, Value: "v", DBNode: "us-east-db-1", LSN: uint64(s*10) + 1}
			if s >= 12 {
				done.DBNode = "eu-west-db-1"
			}
			if region == "us-east" && s >= 10 && s < 15 {
				done = history.Op{Type: history.TypeFail, F: history.FWrite, Process: p, ClientRegion: region, Key: key, Value: "v", Error: "timeout"}
			}
			add(s+0.2, done)
			final := history.Op{Type: history.TypeFinal, Key: key, Value: "v", Found: done.Type == history.TypeOK}
			if key == "us-east-9" {
				final.Found = false // acknowledged, not replicated before the black hole: lost
			}
			add(50, final)
		}
	}
	for s := 0.0; s < 45; s += 0.5 {
		lag := int64(20)
		if s >= 10 && s < 30 {
			lag = int64((s - 9) * 1000)
		}
		add(s, history.Op{Type: history.TypeLag, Region: "eu-west", Node: "eu-west-db-1", LagMS: lag})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].sec < all[j].sec })
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf)
	for _, s := range all {
		s.op.Time = at(s.sec)
		if _, err := rec.Append(s.op); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Ops(), &buf
}

func drillBudgets() check.Config {
	return check.Config{Budgets: check.Budgets{
		check.BudgetDNSFailover: 15, check.BudgetRTO: 10, check.BudgetLostAckedWrites: 0,
		check.BudgetSplitBrain: 0, check.BudgetReplicationLagP99: 500,
	}}
}

func buildReport(t *testing.T, ops []history.Op, mutate func(*Input)) *Report {
	t.Helper()
	in := Input{
		Drill: "region-outage", Runtime: "local", Topology: "default", Seed: 42,
		Start: at(0), End: at(51), Settings: map[string]string{"fencing": "none", "dns_ttl": "2s"},
		Results: check.Run(ops, drillBudgets()), History: ops,
		Residue: []Residue{{What: "toxiproxy toxics", Clean: true, Detail: "no drill_* toxic left"}},
	}
	if mutate != nil {
		mutate(&in)
	}
	return Build(in)
}

func TestBuild(t *testing.T) {
	ops, _ := drillHistory(t)
	r := buildReport(t, ops, nil)
	if r.Verdict != verdict.Fail || r.Error != "" {
		t.Fatalf("verdict %s %q", r.Verdict, r.Error)
	}
	byName := map[string]Check{}
	for _, c := range r.Checks {
		byName[c.Name] = c
	}
	if c := byName[check.NameLostWrites]; c.Verdict != verdict.Fail || *c.Measured != 1 || *c.Budget != 0 {
		t.Fatalf("lost writes %+v", c)
	}
	if c := byName[check.NameStaleReads]; c.Measured != nil || c.Budget != nil || c.Verdict != verdict.Unknown {
		t.Fatalf("stale reads without data or budget must be null/unknown: %+v", c)
	}
	m := r.Metrics
	num := func(name string) float64 {
		if v := m[name].Value; v != nil {
			return *v
		}
		return -1
	}
	if num(check.BudgetLostAckedWrites) != 1 || num(check.BudgetDNSFailover) != 4 || num(check.BudgetSplitBrain) != 0 ||
		m[check.BudgetStaleReads].Value != nil || num(check.BudgetReplicationLagP99) != 20 {
		t.Fatalf("metrics %+v", m)
	}
	if fmt.Sprint(m[check.BudgetRTO].ByRegion) != "map[eu-west:1 us-east:5.2]" {
		t.Fatalf("rto %v", m[check.BudgetRTO])
	}
	if len(m) != len(check.Metrics()) {
		t.Fatalf("%d metrics, want every one of the catalogue's %d", len(m), len(check.Metrics()))
	}
	if len(r.Faults) != 2 || r.Faults[0].ID != "blackhole:us-east" || r.Faults[0].Target != "us-east" || !r.Faults[0].Undone ||
		!r.Faults[0].End.Equal(at(30)) || r.Faults[1].Target != "wan" {
		t.Fatalf("faults %+v", r.Faults)
	}
}

func TestBuildVerdicts(t *testing.T) {
	ops, _ := drillHistory(t)
	for _, tc := range []struct {
		name    string
		verdict verdict.Verdict
		err     string
		mutate  func(*Input)
	}{
		{"harness error", verdict.Error, "bring-up failed", func(in *Input) { in.Err = errors.New("bring-up failed") }},
		{"aborted", verdict.Aborted, "steady state not reached", func(in *Input) {
			in.Aborted, in.Err = true, errors.New("steady state not reached")
		}},
		{"nothing judged", verdict.Error, "no check could be judged", func(in *Input) { in.Results = check.Run(nil, check.Config{}) }},
		{"pass with residue", verdict.Error, "cleanup left residue: node processes", func(in *Input) {
			in.Results = []check.Result{{Name: check.NameSplitBrain, Verdict: verdict.Pass, HasBudget: true, Unit: "s", Detail: "ok"}}
			in.Residue = append(in.Residue, Residue{What: "node processes", Detail: "us-east-db-1 still running"})
		}},
		{"fail with residue stays fail", verdict.Fail, "", func(in *Input) {
			in.Residue = append(in.Residue, Residue{What: "node processes", Detail: "us-east-db-1 still running"})
		}},
		{"pass", verdict.Pass, "", func(in *Input) {
			in.Results = []check.Result{
				{Name: check.NameSplitBrain, Verdict: verdict.Pass, HasBudget: true, Unit: "s", Detail: "ok"},
				{Name: check.NameStaleReads, Verdict: verdict.Unknown, NoData: true, Unit: "reads", Detail: "no reads"},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := buildReport(t, ops, tc.mutate)
			if r.Verdict != tc.verdict || r.Error != tc.err {
				t.Fatalf("verdict %s %q, want %s %q", r.Verdict, r.Error, tc.verdict, tc.err)
			}
		})
	}
}

func TestWriteAllAndLoad(t *testing.T) {
	ops, histBuf := drillHistory(t)
	r := buildReport(t, ops, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileHistory), histBuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteAll(dir, r, ops); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "history.jsonl junit.xml metrics.prom report.html report.json" {
		t.Fatalf("files %v (no temporary file may remain)", names)
	}
	// The results in the Prometheus text format parse, and carry the verdict and the checks.
	prom, err := os.Open(filepath.Join(dir, FileProm))
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(prom)
	if err != nil {
		t.Fatalf("metrics.prom does not parse: %v", err)
	}
	for _, name := range []string{"drill_run_verdict", "drill_run_duration_seconds", "drill_check_passed", "drill_check_measured"} {
		if families[name] == nil || len(families[name].Metric) == 0 {
			t.Errorf("metrics.prom lacks %s", name)
		}
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, r) {
		a, _ := json.Marshal(loaded)
		b, _ := json.Marshal(r)
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	back, err := LoadHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(ops) || !reflect.DeepEqual(check.Run(back, drillBudgets())[2], check.Run(ops, drillBudgets())[2]) {
		t.Fatal("history read back judges differently")
	}

	// The JSON has exactly the documented keys.
	raw, _ := os.ReadFile(filepath.Join(dir, FileJSON))
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	expectKeys(t, "report", doc, "checks drill drill_version end faults metrics residue runtime schema_version seed settings start topology verdict")
	if string(doc["schema_version"]) != "1" {
		t.Errorf("schema_version %s, want 1", doc["schema_version"])
	}
	var checks []map[string]json.RawMessage
	json.Unmarshal(doc["checks"], &checks)
	expectKeys(t, "check", checks[0], "budget detail measured name unit verdict")
	var metrics map[string]json.RawMessage
	json.Unmarshal(doc["metrics"], &metrics)
	expectKeys(t, "metrics", metrics, "backlog_drain_s cache_miss_pct db_reads_per_key_ttl dns_failback_early_s dns_failover_s duplicate_jobs epochs_with_two_primaries log_mismatches lost_acked_writes lost_jobs nonlinearizable_keys phantom_s publish_p99_ms read_p99_ms replication_lag_p99_ms rpo_beyond_lag_s rpo_s rto_s split_brain_s stale_beyond_ttl_s stale_reads")
	var faults []map[string]json.RawMessage
	json.Unmarshal(doc["faults"], &faults)
	expectKeys(t, "fault", faults[0], "end id kind start target undone")
	var residue []map[string]json.RawMessage
	json.Unmarshal(doc["residue"], &residue)
	expectKeys(t, "residue", residue[0], "clean detail what")
	if string(metrics["stale_reads"]) != "null" {
		t.Fatalf("unmeasured metric must be null, got %s", metrics["stale_reads"])
	}

	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("Load of an empty directory must fail")
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, FileJSON), []byte(`{"hello":1}`), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "not a drill report") {
		t.Fatalf("Load of a foreign JSON: %v", err)
	}
}

func expectKeys(t *testing.T, what string, m map[string]json.RawMessage, want string) {
	t.Helper()
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, " ") != want {
		t.Fatalf("%s keys %v, want %s", what, keys, want)
	}
}

// junitDoc is JUnit XML as a CI system reads it.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuite"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Props    []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []struct {
		Name    string `xml:"name,attr"`
		Class   string `xml:"classname,attr"`
		Failure *struct {
			Message string `xml:"message,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
		Error *struct {
			Message string `xml:"message,attr"`
			Type    string `xml:"type,attr"`
		} `xml:"error"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
	} `xml:"testcase"`
	SystemOut string `xml:"system-out"`
}

func TestWriteJUnit(t *testing.T) {
	ops, _ := drillHistory(t)
	r := buildReport(t, ops, nil)
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("junit does not parse: %v\n%s", err, buf.String())
	}
	if doc.Name != "drill.region-outage" || doc.Tests != len(r.Checks) || doc.Errors != 0 {
		t.Fatalf("suite %s tests %d errors %d", doc.Name, doc.Tests, doc.Errors)
	}
	failures, skipped := 0, 0
	for i, c := range doc.Cases {
		want := r.Checks[i]
		if c.Name != want.Name || c.Class != "drill.region-outage" {
			t.Fatalf("case %d is %s/%s, want %s", i, c.Class, c.Name, want.Name)
		}
		switch want.Verdict {
		case verdict.Fail:
			failures++
			if c.Failure == nil || c.Skipped != nil || !strings.Contains(c.Failure.Message, want.Detail) {
				t.Fatalf("%s: failed check without <failure>: %+v", c.Name, c)
			}
		case verdict.Pass:
			if c.Failure != nil || c.Skipped != nil || c.Error != nil {
				t.Fatalf("%s: passed check marked: %+v", c.Name, c)
			}
		default:
			skipped++
			if c.Skipped == nil || c.Failure != nil {
				t.Fatalf("%s: unknown check not skipped: %+v", c.Name, c)
			}
		}
	}
	if failures == 0 || skipped == 0 || doc.Failures != failures || doc.Skipped != skipped {
		t.Fatalf("failures %d/%d skipped %d/%d", doc.Failures, failures, doc.Skipped, skipped)
	}
	props := map[string]string{}
	for _, p := range doc.Props {
		props[p.Name] = p.Value
	}
	if props["seed"] != "42" || props["verdict"] != "fail" || props["setting.fencing"] != "none" {
		t.Fatalf("properties %v", props)
	}
	if !strings.Contains(doc.SystemOut, "verdict: FAIL") {
		t.Fatalf("system-out %q", doc.SystemOut)
	}

	// An errored drill adds a "drill" case with <error>.
	errored := buildReport(t, ops, func(in *Input) { in.Err = errors.New(`agent "us-east-db-1" <died>`) })
	buf.Reset()
	if err := WriteJUnit(&buf, errored); err != nil {
		t.Fatal(err)
	}
	doc = junitDoc{}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	last := doc.Cases[len(doc.Cases)-1]
	if doc.Errors != 1 || doc.Tests != len(r.Checks)+1 || last.Name != "drill" || last.Error == nil ||
		last.Error.Message != `agent "us-east-db-1" <died>` || last.Error.Type != "error" {
		t.Fatalf("errored suite: errors %d tests %d last %+v", doc.Errors, doc.Tests, last)
	}
}

func TestWriteSummary(t *testing.T) {
	ops, _ := drillHistory(t)
	r := buildReport(t, ops, nil)
	var buf bytes.Buffer
	if err := WriteSummary(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"drill region-outage: FAIL  (runtime local, topology default, seed 42, 51s)",
		"settings: dns_ttl=2s fencing=none",
		"CHECK", "MEASURED", "BUDGET",
		"lost_acked_writes", "1 writes", "0 writes",
		"blackhole:us-east", "+10.0s..+30.0s", "undone",
		"residue: clean (1 checked)",
		"verdict: FAIL (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	var again bytes.Buffer
	WriteSummary(&again, r)
	if again.String() != out {
		t.Fatal("summary is not deterministic")
	}
}

// TestFaultSettingsShow: a fault's settings recorded in the history reach the report's fault
// list and the terminal summary.
func TestFaultSettingsShow(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ops := []history.Op{
		{Index: 1, Type: history.TypeFault, F: history.FStart, Fault: "wan-150ms", FaultKind: fault.KindLatency, FaultParams: "+150ms ±20ms", Time: t0},
		{Index: 2, Type: history.TypeFault, F: history.FStop, Fault: "wan-150ms", FaultKind: fault.KindLatency, Time: t0.Add(30 * time.Second)},
		{Index: 3, Type: history.TypeFault, F: history.FStart, Fault: "kill:us-east-db-1", FaultKind: fault.KindKill, Node: "us-east-db-1", Time: t0.Add(time.Minute)},
	}
	fs := FaultsFrom(ops, nil)
	if len(fs) != 2 || fs[0].What() != "latency +150ms ±20ms" || fs[0].Params != "+150ms ±20ms" || fs[1].What() != "kill" {
		t.Fatalf("faults = %+v", fs)
	}
	var b strings.Builder
	if err := WriteSummary(&b, &Report{Drill: "d", Verdict: verdict.Pass, Start: t0, Faults: fs}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "latency +150ms ±20ms") {
		t.Fatalf("summary lacks the fault's settings:\n%s", b.String())
	}
}
