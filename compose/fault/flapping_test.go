package fault

import (
	"strings"
	"testing"
	"time"
)

func TestFlapping(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	f := Fault{ID: "flap", Kind: KindFlapping, Regions: []string{"us-east", "eu-west"},
		Params: Params{ParamOf: string(KindPartition), ParamOn: "2s", ParamOff: "1s"}}
	e := effectsOf(t, env, f)
	want := effectsOf(t, env, Fault{ID: "flap", Kind: KindPartition, Regions: []string{"us-east", "eu-west"}})
	if len(e.Toxics) == 0 || len(e.Toxics) != len(want.Toxics) || e.Toxics[0].Name != want.Toxics[0].Name || len(e.Gossip) != len(want.Gossip) {
		t.Fatalf("on: %d toxics, %d gossip rules; the partition's are %d and %d", len(e.Toxics), len(e.Gossip), len(want.Toxics), len(want.Gossip))
	}
	offEnv := env
	offEnv.Off = func(id string) bool { return id == "flap" }
	d, _ := Lookup(KindFlapping)
	if e := d.Effects(f, offEnv); len(e.Toxics)+len(e.Packets)+len(e.Gossip) != 0 {
		t.Fatalf("off: %+v", e)
	}
	if on, off := d.(Periodic).Period(f); on != 2*time.Second || off != time.Second {
		t.Fatalf("period %s/%s", on, off)
	}
	if got := Describe(f); got != "partition, on 2s / off 1s" {
		t.Errorf("described as %q", got)
	}
	bh := Fault{ID: "b", Kind: KindFlapping, Region: "us-east", Params: Params{ParamOf: string(KindBlackhole), ParamOn: "1s", ParamOff: "1s"}}
	if !TakesRegionOut(bh) || TakesRegionOut(f) {
		t.Error("a flapping black hole takes its region out; a flapping partition does not")
	}
	lat := Fault{ID: "l", Kind: KindFlapping, Params: Params{ParamOf: string(KindLatency), ParamOn: "1s", ParamOff: "500ms", ParamLatency: "200ms"}}
	if err := Validate(&lat, tp); err != nil || Describe(lat) != "latency +200ms, on 1s / off 500ms" {
		t.Errorf("flapping latency on the WAN: %v, %q", err, Describe(lat))
	}
	d2, _ := Lookup(KindFlapping)
	choices := d2.Params()[0].Choices
	for _, k := range []Kind{KindKill, KindFreeze, KindKillPrimary, KindClockSkew, KindDiskStall, KindFlapping} {
		if strings.Contains(" "+strings.Join(choices, " ")+" ", " "+string(k)+" ") {
			t.Errorf("%s can be flapped (choices %v)", k, choices)
		}
	}
	for _, bad := range []Fault{
		{ID: "x", Kind: KindFlapping, Region: "us-east", Params: Params{ParamOn: "1s", ParamOff: "1s"}},                                             // no of
		{ID: "x", Kind: KindFlapping, Region: "us-east", Params: Params{ParamOf: "kill", ParamOn: "1s", ParamOff: "1s"}},                            // not a network fault
		{ID: "x", Kind: KindFlapping, Region: "us-east", Params: Params{ParamOf: "partition", ParamOff: "1s"}},                                      // no on
		{ID: "x", Kind: KindFlapping, Region: "us-east", Params: Params{ParamOf: "partition", ParamOn: "10ms", ParamOff: "1s"}},                     // too short
		{ID: "x", Kind: KindFlapping, Params: Params{ParamOf: "latency", ParamOn: "1s", ParamOff: "1s"}},                                            // latency without latency
		{ID: "x", Kind: KindFlapping, Region: "us-east", Params: Params{ParamOf: "partition", ParamOn: "1s", ParamOff: "1s", ParamPercent: "30"}},   // not the partition's
		{ID: "x", Kind: KindFlapping, Regions: []string{"us-east", "eu-west"}, Params: Params{ParamOf: "blackhole", ParamOn: "1s", ParamOff: "1s"}}, // a black hole takes one region
	} {
		if err := Validate(&bad, tp); err == nil {
			t.Errorf("validate accepted %+v", bad)
		}
	}
}
