package explore

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// The same seed gives the same schedule; every schedule's drill file parses and fits the topology;
// faults on processes never overlap; and a few hundred seeds draw every kind and target class.
func TestGenerate(t *testing.T) {
	topo := topology.Default()
	kinds := map[fault.Kind]bool{}
	targets := map[TargetClass]bool{}
	overlaps, flapping := 0, 0
	for seed := int64(1); seed <= 300; seed++ {
		s, err := Generate(topo, seed, GenConfig{})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Generate(topo, seed, GenConfig{})
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("seed %d gave two schedules:\n%+v\n%+v", seed, s, again)
		}
		if n := len(s.Episodes); n < 1 || n > DefaultMaxFaults {
			t.Fatalf("seed %d: %d faults", seed, n)
		}
		data := s.DrillFile("explore-x", topo, Promises(topo))
		d, err := spec.Parse("x.yaml", data)
		if err != nil {
			t.Fatalf("seed %d: drill file does not parse: %v\n%s", seed, err, data)
		}
		if _, err := d.Resolve(topo); err != nil {
			t.Fatalf("seed %d: drill file does not fit: %v\n%s", seed, err, data)
		}
		var processEnd time.Duration = -1
		settle := topo.Design.FailoverAfter.D() + topo.Design.LeaseDuration.D()
		for i, e := range s.Episodes {
			kinds[e.Fault.Kind], targets[e.Target] = true, true
			if s.Overlapping(i) {
				overlaps++
			}
			if e.Flaps > 1 {
				flapping++
				if strings.Count(string(data), "heal: "+e.Fault.ID+"-") != e.Flaps {
					t.Fatalf("seed %d: %s is not healed %d times in its drill file\n%s", seed, e, e.Flaps, data)
				}
			}
			dsc, _ := fault.Lookup(e.Fault.Kind)
			if actsOnProcesses(dsc) {
				if e.At < processEnd {
					t.Fatalf("seed %d: %s starts before the previous process fault ends", seed, e)
				}
				if e.Target == TargetPrimary && processEnd >= 0 && e.At < processEnd+settle {
					t.Fatalf("seed %d: %s aims at the primary before a failover can have found one", seed, e)
				}
				processEnd = e.End()
			}
		}
	}
	for _, k := range DefaultKinds() {
		if !kinds[k] {
			t.Errorf("kind %s never drawn", k)
		}
	}
	for _, c := range []TargetClass{TargetNode, TargetPrimary, TargetWitness, TargetRegion, TargetSites, TargetWAN} {
		if !targets[c] {
			t.Errorf("target class %s never drawn", c)
		}
	}
	if overlaps == 0 || flapping == 0 {
		t.Errorf("%d overlapping and %d flapping faults in 300 schedules", overlaps, flapping)
	}
}

// TestGenerateFlappingKind: the periodic kind is left to be asked for by name (exploration flaps
// faults itself), and asked for, it is drawn valid.
func TestGenerateFlappingKind(t *testing.T) {
	if slices.Contains(DefaultKinds(), fault.KindFlapping) || !slices.Contains(DefaultKinds(), fault.KindPartition) {
		t.Fatalf("default kinds %v", DefaultKinds())
	}
	for seed := range int64(20) {
		s, err := Generate(topology.Default(), seed, GenConfig{Kinds: []fault.Kind{fault.KindFlapping}, MaxFaults: 1})
		if err != nil {
			t.Fatal(err)
		}
		if f := s.Episodes[0].Fault; f.Kind != fault.KindFlapping || f.Params[fault.ParamOf] == "" {
			t.Fatalf("seed %d: %+v", seed, f)
		}
	}
}

func TestGenerateRestrictedKinds(t *testing.T) {
	s, err := Generate(topology.Default(), 7, GenConfig{Kinds: []fault.Kind{fault.KindPartition}, MaxFaults: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Episodes) != 1 || s.Episodes[0].Fault.Kind != fault.KindPartition {
		t.Fatalf("schedule %+v", s)
	}
	if _, err := Generate(topology.Default(), 7, GenConfig{Kinds: []fault.Kind{"no-such-kind"}}); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
}

func TestPromises(t *testing.T) {
	topo := topology.Default()
	b := Promises(topo)
	want := check.Budgets{check.BudgetEpochsWithTwoPrimaries: 0, check.BudgetLogMismatches: 0, check.BudgetSplitBrain: 0, check.BudgetStaleReads: 0,
		check.BudgetRPOBeyondLag: topo.Design.LeaseDuration.D().Seconds() + rpoMargin.Seconds()}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("default design promises %v, want %v", b, want)
	}
	for _, kv := range [][2]string{{"replication", "semi-sync"}, {"read_from", "primary"}} {
		if err := topo.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	b = Promises(topo)
	if _, ok := b[check.BudgetRPOBeyondLag]; ok || b[check.BudgetLostAckedWrites] != 0 {
		t.Fatalf("semi-sync promises %v", b)
	}
	if v, ok := b[check.BudgetNonLinearizableKeys]; !ok || v != 0 {
		t.Fatalf("reads from the primary with semi-sync and fencing promise no linearizability: %v", b)
	}
}

// A schedule that fails whenever it holds a long partition of us-east shrinks to that one fault,
// moved to the start and as short as still fails.
func TestShrink(t *testing.T) {
	part := fault.Fault{ID: "f2-partition", Kind: fault.KindPartition, Region: "us-east"}
	s := Schedule{Seed: 9, Episodes: []Episode{
		{Fault: fault.Fault{ID: "f1-latency", Kind: fault.KindLatency, Params: fault.Params{"latency": "100ms"}}, At: 500 * time.Millisecond, For: time.Second, Target: TargetWAN},
		{Fault: part, At: 2 * time.Second, For: 6 * time.Second, Target: TargetRegion},
		{Fault: fault.Fault{ID: "f3-kill", Kind: fault.KindKill, Node: "eu-west-web-1"}, At: 3 * time.Second, For: 2 * time.Second, Target: TargetNode},
	}}
	runs := 0
	fails := func(c Schedule) bool {
		runs++
		for _, e := range c.Episodes {
			if e.Fault.ID == part.ID && e.For >= 1500*time.Millisecond {
				return true
			}
		}
		return false
	}
	got := Shrink(s, fails)
	if len(got.Episodes) != 1 || got.Episodes[0].Fault.ID != part.ID {
		t.Fatalf("shrunk to %s", episodesText(got))
	}
	if e := got.Episodes[0]; e.At != 0 || e.For != 1500*time.Millisecond {
		t.Fatalf("shrunk timing %s, want at 0 for 1.5s (6s halved while it fails)", e)
	}
	if runs > 16 {
		t.Errorf("%d runs to shrink three faults", runs)
	}
}

// A flapping fault that fails when switched on once shrinks to one switch-on.
func TestShrinkFlapping(t *testing.T) {
	s := Schedule{Seed: 3, Episodes: []Episode{{Fault: fault.Fault{ID: "f1-partition", Kind: fault.KindPartition, Region: "us-east"},
		At: time.Second, For: 2 * time.Second, Flaps: 3, Off: time.Second, Target: TargetRegion}}}
	got := Shrink(s, func(c Schedule) bool { return c.Episodes[0].For >= time.Second })
	if e := got.Episodes[0]; e.times() != 1 || e.At != 0 || e.For != time.Second {
		t.Fatalf("shrunk to %s", e)
	}
}

func TestDDMinIsOneMinimal(t *testing.T) {
	items := []int{0, 1, 2, 3, 4, 5, 6, 7}
	// Fails when 2 and 5 are both present.
	got := ddmin(items, func(c []int) bool { return slices.Contains(c, 2) && slices.Contains(c, 5) })
	if !slices.Equal(got, []int{2, 5}) {
		t.Fatalf("ddmin = %v", got)
	}
}

// An exploration on a stand-in cluster: a schedule fails when it kills or freezes the primary
// (the stand-in's bug). The failure is shrunk to that one fault, written as a drill file that
// parses, replayed, and the report counts and covers what ran. Invalid runs rebuild.
func TestExplore(t *testing.T) {
	topo := topology.Default()
	dir := t.TempDir()
	rebuilds := 0
	ran := 0
	o := Options{
		Topology: topo, Seed: 1, Schedules: 12, Dir: dir, Reproduce: 2,
		Run: func(_ context.Context, d *spec.Drill, seed int64, out string) (RunResult, error) {
			ran++
			if err := os.MkdirAll(out, 0o755); err != nil {
				return RunResult{}, err
			}
			if seed == 5 && !strings.Contains(out, "shrink") && !strings.Contains(out, "replay") {
				return RunResult{Outcome: Invalid, Details: []string{"steady state not reached"}}, nil
			}
			for _, st := range d.Steps {
				if st.Kind == spec.StepInject && (st.Inject.Node == fault.TargetPrimary || st.Inject.Kind == fault.KindKillPrimary) {
					return RunResult{Outcome: Failed, Failed: []string{check.NameSplitBrain}, Details: []string{"two primaries"}}, nil
				}
			}
			return RunResult{Outcome: Passed}, nil
		},
		Rebuild: func(context.Context) error { rebuilds++; return nil },
	}
	rep, err := Explore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Schedules != 12 || rep.Passed+rep.Invalid+len(rep.Failures)+len(rep.Limits) != 12 || rep.Invalid != 1 || rebuilds < 1 {
		t.Fatalf("report %+v, %d rebuilds", rep, rebuilds)
	}
	if len(rep.Failures) == 0 {
		t.Fatal("the stand-in's bug was not found in 12 schedules")
	}
	for _, f := range rep.Failures {
		if len(f.Minimal.Episodes) != 1 || f.Reproduced != 2 || f.Replays != 2 {
			t.Errorf("failure %d: minimal %s, reproduced %d of %d", f.Seed, episodesText(f.Minimal), f.Reproduced, f.Replays)
		}
		data, err := os.ReadFile(f.DrillFile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := spec.Parse(f.DrillFile, data); err != nil {
			t.Fatalf("minimal drill does not parse: %v\n%s", err, data)
		}
	}
	if rep.KindsTotal != len(DefaultKinds()) || rep.KindsExercised == 0 || len(rep.Coverage) == 0 {
		t.Fatalf("coverage %d of %d: %+v", rep.KindsExercised, rep.KindsTotal, rep.Coverage)
	}
	back, err := Load(dir)
	if err != nil || back.Schedules != rep.Schedules || len(back.Failures) != len(rep.Failures) {
		t.Fatalf("report.json: %+v %v", back, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := WriteSummary(&sb, rep); err != nil || !strings.Contains(sb.String(), "FAILED schedule") || !strings.Contains(sb.String(), "drill run ") {
		t.Fatalf("summary:\n%s", sb.String())
	}
}

// TestExploreDocumentedLimits: a failure whose minimal schedule needs a fault beyond a stated
// assumption of the design (a clock off by more than the lease margin) is a documented limit; a
// failure that shrinks away from such a fault is a bug, even if the schedule drawn had one.
func TestExploreDocumentedLimits(t *testing.T) {
	topo := topology.Default()
	margin := fault.LeaseMargin(topo)
	beyondSkew := func(d *spec.Drill) bool {
		for _, st := range d.Steps {
			if st.Kind == spec.StepInject && st.Inject.Kind == fault.KindClockSkew {
				if off, _ := time.ParseDuration(st.Inject.Params[fault.ParamOffset]); off > margin || -off > margin {
					return true
				}
			}
		}
		return false
	}
	hasPartition := func(d *spec.Drill) bool {
		return slices.ContainsFunc(d.Steps, func(st spec.Step) bool {
			return st.Kind == spec.StepInject && st.Inject.Kind == fault.KindPartition
		})
	}
	explore := func(t *testing.T, kinds []fault.Kind, fails func(*spec.Drill) bool) *Report {
		rep, err := Explore(context.Background(), Options{
			Topology: topo, Seed: 40, Schedules: 10, Dir: t.TempDir(), Reproduce: 1,
			Gen: GenConfig{Kinds: kinds, MaxFaults: 3},
			Run: func(_ context.Context, d *spec.Drill, _ int64, out string) (RunResult, error) {
				if fails(d) {
					return RunResult{Outcome: Failed, Failed: []string{check.NameSplitBrain}}, nil
				}
				return RunResult{Outcome: Passed}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	t.Run("limit", func(t *testing.T) {
		rep := explore(t, []fault.Kind{fault.KindClockSkew}, beyondSkew)
		if len(rep.Limits) == 0 || len(rep.Failures) != 0 || rep.Passed+len(rep.Limits) != 10 {
			t.Fatalf("%d passed, %d failures, %d limits", rep.Passed, len(rep.Failures), len(rep.Limits))
		}
		for _, f := range rep.Limits {
			if len(f.Beyond) != 1 || !strings.Contains(f.Beyond[0], "lease margin") || len(f.Minimal.Beyond(topo)) == 0 {
				t.Errorf("limit %d: beyond %q, minimal %s", f.Seed, f.Beyond, episodesText(f.Minimal))
			}
		}
		var sb strings.Builder
		if err := WriteSummary(&sb, rep); err != nil || !strings.Contains(sb.String(), "DOCUMENTED LIMIT") {
			t.Fatalf("summary:\n%s", sb.String())
		}
	})
	t.Run("bug beside a limit", func(t *testing.T) {
		rep := explore(t, []fault.Kind{fault.KindPartition, fault.KindClockSkew}, hasPartition)
		if len(rep.Failures) == 0 || len(rep.Limits) != 0 {
			t.Fatalf("%d failures, %d limits: a partition's failure was taken for the clock's limit", len(rep.Failures), len(rep.Limits))
		}
		for _, f := range rep.Failures {
			if len(f.Minimal.Episodes) != 1 || f.Minimal.Episodes[0].Fault.Kind != fault.KindPartition {
				t.Errorf("failure %d: minimal %s", f.Seed, episodesText(f.Minimal))
			}
		}
	})
}
