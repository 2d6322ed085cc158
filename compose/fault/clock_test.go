package fault

import (
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/clock"
)

func TestClockFaults(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	skew := Fault{ID: "s", Kind: KindClockSkew, Node: "eu-west-db-1", Params: Params{ParamOffset: "-500ms"}}
	e := effectsOf(t, env, skew)
	if len(e.Clock) != 1 || e.Clock["eu-west-db-1"] != (clock.Shift{Offset: -500 * time.Millisecond}) {
		t.Fatalf("skew effects %+v", e.Clock)
	}
	if len(e.Toxics)+len(e.Packets)+len(e.Gossip) != 0 || e.Process.Action != ActionNone {
		t.Errorf("a clock fault touches other layers: %+v", e)
	}
	drift := Fault{ID: "d", Kind: KindClockDrift, Node: "us-east-db-1", Params: Params{ParamPercent: "-20"}}
	if e := effectsOf(t, env, drift); e.Clock["us-east-db-1"] != (clock.Shift{DriftPPM: -200_000}) {
		t.Fatalf("drift effects %+v", e.Clock)
	}
	if Describe(skew) != "500ms behind" || Describe(drift) != "clock 20 % slow" {
		t.Errorf("described as %q and %q", Describe(skew), Describe(drift))
	}

	// The default design's lease is 3 s, so its margin is 300 ms: the assumption is named beyond it.
	if LeaseMargin(tp) != 300*time.Millisecond {
		t.Fatalf("lease margin %s", LeaseMargin(tp))
	}
	for _, c := range []struct {
		f      Fault
		beyond bool
	}{
		{skew, true},
		{Fault{Kind: KindClockSkew, Params: Params{ParamOffset: "300ms"}}, false},
		{Fault{Kind: KindClockSkew, Params: Params{ParamOffset: "-301ms"}}, true},
		{drift, true},
		{Fault{Kind: KindClockDrift, Params: Params{ParamPercent: "10"}}, false},
		{Fault{Kind: KindClockDrift, Params: Params{ParamPercent: "-10"}}, false},
		{Fault{Kind: KindClockDrift, Params: Params{ParamPercent: "11"}}, true},
	} {
		got := Beyond(c.f, tp)
		if (got != "") != c.beyond {
			t.Errorf("%s %v: beyond %q, want beyond=%v", c.f.Kind, c.f.Params, got, c.beyond)
		}
		if got != "" && !strings.Contains(got, "lease margin") {
			t.Errorf("assumption %q does not name the lease margin", got)
		}
	}
	if Beyond(Fault{Kind: KindPartition, Regions: []string{"us-east", "eu-west"}}, tp) != "" {
		t.Error("a partition breaks a stated assumption")
	}

	onPrimary := Fault{ID: "p", Kind: KindClockSkew, Node: TargetPrimary, Params: Params{ParamOffset: "1s"}}
	if err := Validate(&onPrimary, tp); err != nil {
		t.Errorf("target primary refused: %v", err)
	}
	for _, bad := range []Fault{
		{ID: "x", Kind: KindClockSkew, Node: "us-east-web-1", Params: Params{ParamOffset: "1s"}}, // not a db node
		{ID: "x", Kind: KindClockSkew, Node: "witness", Params: Params{ParamOffset: "1s"}},       // no control endpoint
		{ID: "x", Kind: KindClockSkew, Node: "us-east-db-1"},                                     // no offset
		{ID: "x", Kind: KindClockSkew, Node: "us-east-db-1", Params: Params{ParamOffset: "2m"}},  // out of range
		{ID: "x", Kind: KindClockSkew, Region: "us-east", Params: Params{ParamOffset: "1s"}},     // a region
		{ID: "x", Kind: KindClockDrift, Node: "us-east-db-1", Params: Params{ParamPercent: "0"}},
		{ID: "x", Kind: KindClockDrift, Node: "us-east-db-1", Params: Params{ParamPercent: "-95"}},
	} {
		if err := Validate(&bad, tp); err == nil {
			t.Errorf("validate accepted %+v", bad)
		}
	}
}
