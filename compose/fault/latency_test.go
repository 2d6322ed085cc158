package fault

import (
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	us, wit := tp.SitePrefix("us-east"), tp.SitePrefix("witness")

	// The whole WAN, with a bandwidth cap: latency and bandwidth toxics on both streams of
	// every link.
	e := effectsOf(t, env, Fault{ID: "latency:wan", Kind: KindLatency, Params: Params{ParamLatency: "1s", ParamBandwidth: "10"}})
	if n, links := toxicLinks(t, e); n != 24 || len(links) != 6 {
		t.Fatalf("latency on every link with bandwidth: %d toxics on %d links, want 24 on 6", n, len(links))
	}
	if len(e.Packets) != 0 || e.Process.Action != ActionNone {
		t.Errorf("latency has packet or process effects: %+v", e)
	}
	// Gossip: the added delay towards every other site.
	r := e.Gossip["eu-west-web-1"]
	var toUS, toWit bool
	for _, d := range r.Delays {
		switch d.Prefix {
		case us:
			toUS = d.Latency == time.Second
		case wit:
			toWit = d.Latency == time.Second
		}
	}
	if !toUS || !toWit || len(r.Drop) != 0 {
		t.Errorf("gossip rules of eu-west-web-1: %+v", r)
	}
	// Between two regions only.
	two := effectsOf(t, env, Fault{ID: "l", Kind: KindLatency, Regions: []string{"eu-west", "us-east"},
		Params: Params{ParamLatency: "100ms", ParamJitter: "10ms"}})
	if n, _ := toxicLinks(t, two); n != 4 {
		t.Errorf("between two regions: %d toxics, want 4", n)
	}
	if got := Describe(Fault{Kind: KindLatency, Params: Params{ParamLatency: "150ms", ParamJitter: "20ms"}}); got != "+150ms ±20ms" {
		t.Errorf("described as %q", got)
	}
	if TakesRegionOut(Fault{Kind: KindLatency, Region: "us-east"}) {
		t.Error("latency takes a region out")
	}
}
