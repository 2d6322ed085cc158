package check

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/verdict"
)

func failoversString(ev *DNSFailoverEvidence) string {
	var parts []string
	for _, f := range ev.Failovers {
		parts = append(parts, fmt.Sprintf("%s/%s:%g:%v:%s:%s", f.Fault, f.ClientRegion, f.Seconds, f.Observed, f.AwayTo, f.Verdict))
	}
	return strings.Join(parts, " ")
}

// failoverHistory: us-east is black-holed from 10 s to 30 s. us-east's client (p1) is sent to
// eu-west from 14.5 s; an eu-west client that GeoDNS had sent to us-east (p3) leaves at 16 s; an
// eu-west client always sent to eu-west (p2) is not watched.
func failoverHistory() *hist {
	h := &hist{}
	h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	for _, s := range []float64{1, 5, 11, 13} {
		h.dns(1, "us-east", s, "us-east")
	}
	h.dns(1, "us-east", 12, "") // a failed lookup is not a failover
	h.dns(1, "us-east", 14.5, "eu-west")
	h.dns(1, "us-east", 16, "eu-west")
	for _, s := range []float64{1, 9, 10.5, 20} {
		h.dns(2, "eu-west", s, "eu-west")
	}
	h.dns(3, "eu-west", 9, "us-east")
	h.dns(3, "eu-west", 12, "us-east")
	h.dns(3, "eu-west", 16, "eu-west")
	return h
}

func TestDNSFailover(t *testing.T) {
	short := &hist{}
	short.fault("freeze:us-east", fault.KindFreeze, "us-east", "", 10, 12)
	short.dns(1, "us-east", 9, "us-east")
	short.dns(1, "us-east", 11, "us-east")
	short.dns(1, "us-east", 13, "eu-west") // after the fault ended: not a failover of it

	unhealed := &hist{}
	unhealed.fault("kill:us-east", fault.KindKill, "us-east", "", 10, never)
	unhealed.dns(1, "us-east", 9, "us-east")
	unhealed.dns(1, "us-east", 25, "us-east")

	twoOutages := failoverHistory()
	twoOutages.fault("partition:eu-west", fault.KindPartition, "eu-west", "", 40, 60)
	twoOutages.dns(2, "eu-west", 39, "eu-west")
	twoOutages.dns(2, "eu-west", 42, "us-east")
	twoOutages.dns(1, "us-east", 45, "us-east") // p1 had been sent to eu-west: watched too

	noLookups := &hist{}
	noLookups.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	noLookups.dns(1, "us-east", 9, "us-east")
	noLookups.dns(2, "eu-west", 20, "eu-west")

	// us-east's clients fail over at +4.5s; p3 of eu-west had been sent to us-east before the
	// fault but makes no lookup during it: listed, neither measured nor judged.
	silentWatched := &hist{}
	silentWatched.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	silentWatched.dns(1, "us-east", 9, "us-east")
	silentWatched.dns(1, "us-east", 14.5, "eu-west")
	silentWatched.dns(3, "eu-west", 8, "us-east")

	for _, tc := range []struct {
		name      string
		h         *hist
		budget    any
		verdict   verdict.Verdict
		measured  float64
		failovers string
	}{
		{"a watched region without lookups does not blur the measure", silentWatched, 5, verdict.Pass, 4.5,
			"blackhole:us-east/eu-west:20:false::unknown blackhole:us-east/us-east:4.5:true:eu-west:pass"},
		{"within budget", failoverHistory(), 10, verdict.Pass, 6,
			"blackhole:us-east/eu-west:6:true:eu-west:pass blackhole:us-east/us-east:4.5:true:eu-west:pass"},
		{"over budget", failoverHistory(), 5, verdict.Fail, 6,
			"blackhole:us-east/eu-west:6:true:eu-west:fail blackhole:us-east/us-east:4.5:true:eu-west:pass"},
		{"no budget", failoverHistory(), nil, verdict.Unknown, 6,
			"blackhole:us-east/eu-west:6:true:eu-west:unknown blackhole:us-east/us-east:4.5:true:eu-west:unknown"},
		{"fault shorter than budget, no failover", short, 5, verdict.Unknown, 2,
			"freeze:us-east/us-east:2:false::unknown"},
		{"fault longer than budget, no failover", short, 1, verdict.Fail, 2,
			"freeze:us-east/us-east:2:false::fail"},
		{"never healed, never failed over", unhealed, 10, verdict.Fail, 15,
			"kill:us-east/us-east:15:false::fail"},
		{"two outages", twoOutages, 10, verdict.Pass, 6,
			"blackhole:us-east/eu-west:6:true:eu-west:pass blackhole:us-east/us-east:4.5:true:eu-west:pass " +
				"partition:eu-west/eu-west:2:true:us-east:pass partition:eu-west/us-east:5:true:us-east:pass"},
		{"no lookups during the fault", noLookups, 10, verdict.Unknown, 0, "blackhole:us-east/us-east:20:false::unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.budget != nil {
				cfg = budgets(BudgetDNSFailover, tc.budget)
			}
			r, ev := DNSFailover(tc.h.build(), cfg)
			if tc.name == "no lookups during the fault" {
				if !r.NoData || r.Verdict != verdict.Unknown || r.Measured != 0 {
					t.Fatalf("want unknown without data, got %+v", r)
				}
			} else {
				expectVerdict(t, r, tc.verdict, tc.measured)
			}
			if got := failoversString(ev); got != tc.failovers {
				t.Fatalf("failovers\n got %s\nwant %s", got, tc.failovers)
			}
		})
	}
}

func TestDNSFailoverUnknown(t *testing.T) {
	latency := &hist{}
	latency.fault("latency:wan", fault.KindLatency, "", "", 10, 20)
	latency.dns(1, "us-east", 11, "us-east")
	nodeKill := &hist{}
	nodeKill.fault("kill:us-east-db-1", fault.KindKill, "us-east", "us-east-db-1", 10, 20)
	nodeKill.dns(1, "us-east", 11, "us-east")
	nobodyThere := &hist{}
	nobodyThere.fault("blackhole:ap-south", fault.KindBlackhole, "ap-south", "", 10, 20)
	nobodyThere.dns(1, "us-east", 9, "us-east")
	nobodyThere.dns(1, "us-east", 11, "us-east")
	for name, tc := range map[string]struct {
		h    *hist
		want string
	}{
		"latency is not an outage":           {latency, "no region outage in the history"},
		"a node kill is not a region outage": {nodeKill, "no region outage in the history"},
		"no client was sent there":           {nobodyThere, "no client was sent to the failed region"},
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := DNSFailover(tc.h.build(), budgets(BudgetDNSFailover, 10))
			if r.Verdict != verdict.Unknown || !strings.Contains(r.Detail, tc.want) {
				t.Fatalf("got %s %q", r.Verdict, r.Detail)
			}
		})
	}
}

func failbackString(ev *DNSFailbackEvidence) string {
	var parts []string
	for _, f := range ev.Failbacks {
		parts = append(parts, fmt.Sprintf("%s:back=%g:caught=%g:early=%v/%g:%s:%s", f.Fault,
			sec(f.FirstBack), sec(f.CaughtUp), f.Early, f.EarlySeconds, f.Verdict, f.Note))
	}
	return strings.Join(parts, " ")
}

func sec(tm time.Time) float64 {
	if tm.IsZero() {
		return -1
	}
	return tm.Sub(t0).Seconds()
}

func TestDNSFailback(t *testing.T) {
	// base: us-east black-holed 10-30 s; its database reports lag 800 ms at 32 s, 200 at 34 s, 0
	// at 36 s. Answers pointing at us-east before the heal, and lag 0 before it, do not count.
	base := func(backAt float64, lag ...[2]float64) *hist {
		h := &hist{}
		h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
		h.dns(1, "us-east", 5, "us-east")
		h.lag("us-east", 5, 0)
		h.dns(1, "us-east", 33, "eu-west")
		if backAt > 0 {
			h.dns(1, "us-east", backAt, "us-east")
		}
		for _, l := range lag {
			h.lag("us-east", l[0], int64(l[1]))
		}
		h.lag("eu-west", 31, 0) // another region's lag says nothing about us-east
		h.dns(2, "eu-west", 40, "eu-west")
		return h
	}
	caughtUp := [][2]float64{{32, 800}, {34, 200}, {36, 0}}
	for _, tc := range []struct {
		name     string
		h        *hist
		verdict  verdict.Verdict
		measured float64
		want     string
	}{
		{"after catch-up", base(37, caughtUp...), verdict.Pass, 0, "blackhole:us-east:back=37:caught=36:early=false/0:pass:"},
		{"at catch-up", base(36, caughtUp...), verdict.Pass, 0, "blackhole:us-east:back=36:caught=36:early=false/0:pass:"},
		{"before catch-up", base(35, caughtUp...), verdict.Fail, 1, "blackhole:us-east:back=35:caught=36:early=true/1:fail:"},
		{"never caught up", base(35, [2]float64{32, 800}, [2]float64{34, 500}), verdict.Fail, 5, "blackhole:us-east:back=35:caught=-1:early=true/5:fail:"},
		{"never pointed back", base(0, caughtUp...), verdict.Unknown, 0, "blackhole:us-east:back=-1:caught=36:early=false/0:unknown:DNS never pointed back at us-east after heal"},
		{"no lag samples", base(35), verdict.Unknown, 0, "blackhole:us-east:back=35:caught=-1:early=false/0:unknown:no lag sample of us-east's database after heal: cannot tell when it caught up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ev := DNSFailback(tc.h.build(), budgets(BudgetDNSFailbackEarly, 0))
			if noData := tc.verdict == verdict.Unknown; noData != r.NoData {
				t.Fatalf("no data %v, want %v", r.NoData, noData)
			}
			if !r.NoData {
				expectVerdict(t, r, tc.verdict, tc.measured)
			} else if r.Verdict != verdict.Unknown || r.Measured != 0 {
				t.Fatalf("want unknown, got %+v", r)
			}
			if got := failbackString(ev); got != tc.want {
				t.Fatalf("failbacks\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	t.Run("not healed", func(t *testing.T) {
		h := &hist{}
		h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, never)
		h.dns(1, "us-east", 35, "us-east")
		r, _ := DNSFailback(h.build(), budgets(BudgetDNSFailbackEarly, 0))
		if r.Verdict != verdict.Unknown || !strings.Contains(r.Detail, "no region outage was healed") {
			t.Fatalf("got %s %q", r.Verdict, r.Detail)
		}
	})
	t.Run("observation ends at the next outage", func(t *testing.T) {
		h := base(0, [2]float64{32, 800})
		h.fault("blackhole:us-east#2", fault.KindBlackhole, "us-east", "", 50, 60)
		h.dns(1, "us-east", 52, "us-east") // during the second outage: not a fail-back of the first
		h.lag("us-east", 61, 0)
		h.dns(1, "us-east", 62, "us-east")
		r, ev := DNSFailback(h.build(), budgets(BudgetDNSFailbackEarly, 0))
		want := "blackhole:us-east:back=-1:caught=-1:early=false/0:unknown:DNS never pointed back at us-east after heal " +
			"blackhole:us-east#2:back=62:caught=61:early=false/0:pass:"
		if got := failbackString(ev); got != want || r.Verdict != verdict.Unknown {
			t.Fatalf("%s\n got %s\nwant %s", r.Verdict, got, want)
		}
	})
}
