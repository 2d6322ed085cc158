package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/verdict"
)

// rtoHistory: us-east is black-holed from 10 s to 30 s. us-east's client writes every second
// until 9 s, then fails from 10 s; eu-west's client writes every second from 0.5 s to 39.5 s.
// usEast decides what us-east's client does from 10 s on.
func rtoHistory(usEast func(h *hist)) *hist {
	h := &hist{}
	h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	h.writes(1, "us-east", "us-east-db-1", 0, 9, 1)
	usEast(h)
	h.writes(2, "eu-west", "eu-west-db-1", 0.5, 39.5, 1)
	return h
}

func failing(h *hist, from, to float64) {
	for i := 0; ; i++ {
		t := from + 1.5*float64(i)
		if t > to {
			return
		}
		h.write(1, "us-east", fmt.Sprintf("fail-%d", i), t, fail, t+1, "", 0)
	}
}

func rtoString(ev *WriteUnavailabilityEvidence) string {
	var parts []string
	for _, r := range ev.Regions {
		if !r.Judged {
			parts = append(parts, r.Region+":unjudged")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s:%g[%g,%g]open=%v,ok=%d,bad=%d", r.Region, r.Seconds,
			r.GapStart.Sub(t0).Seconds(), r.GapEnd.Sub(t0).Seconds(), r.OpenEnded, r.Successes, r.Failures))
	}
	return strings.Join(parts, " ")
}

func TestWriteUnavailability(t *testing.T) {
	recovers := func(h *hist) {
		failing(h, 10, 16)
		h.write(1, "us-east", "first-after", 18, ok, 18.3, "eu-west-db-1", 100)
		h.writes(1, "us-east", "eu-west-db-1", 19, 39, 1)
	}
	for _, tc := range []struct {
		name     string
		h        *hist
		cfg      Config
		verdict  verdict.Verdict
		measured float64
		regions  string
		fault    string
	}{
		{"recovers within budget", rtoHistory(recovers), budgets(BudgetRTO, 10), verdict.Pass, 8.3,
			"eu-west:1[10.6,11.6]open=false,ok=30,bad=0 us-east:8.3[10,18.3]open=false,ok=22,bad=5", "blackhole:us-east"},
		{"recovers over budget", rtoHistory(recovers), budgets(BudgetRTO, 5), verdict.Fail, 8.3,
			"eu-west:1[10.6,11.6]open=false,ok=30,bad=0 us-east:8.3[10,18.3]open=false,ok=22,bad=5", "blackhole:us-east"},
		{"never recovers", rtoHistory(func(h *hist) { failing(h, 10, 38.5) }), budgets(BudgetRTO, 10), verdict.Fail, 29.6,
			"eu-west:1[10.6,11.6]open=false,ok=30,bad=0 us-east:29.6[10,39.6]open=true,ok=0,bad=20", "blackhole:us-east"},
		{"stuck write at the end", rtoHistory(func(h *hist) {
			h.writes(1, "us-east", "eu-west-db-1", 12, 25, 1)
			h.write(1, "us-east", "stuck", 26, "", 0, "", 0)
		}), budgets(BudgetRTO, 10), verdict.Fail, 14.5,
			"eu-west:1[10.6,11.6]open=false,ok=30,bad=0 us-east:14.5[25.1,39.6]open=true,ok=14,bad=1", "blackhole:us-east"},
		{"workload end from config", rtoHistory(recovers), Config{Budgets: Budgets{BudgetRTO: 10}, WorkloadEnd: at(15)}, verdict.Pass, 5,
			"eu-west:1[10.6,11.6]open=false,ok=5,bad=0 us-east:5[10,15]open=true,ok=0,bad=4", "blackhole:us-east"},
		{"no fault", func() *hist {
			h := &hist{}
			h.writes(1, "us-east", "us-east-db-1", 0, 9, 1)
			h.writes(2, "eu-west", "us-east-db-1", 0.5, 9.5, 1)
			return h
		}(), budgets(BudgetRTO, 1), verdict.Pass, 1,
			"eu-west:1[0.6,1.6]open=false,ok=10,bad=0 us-east:1[0.1,1.1]open=false,ok=10,bad=0", ""},
		{"region without writes in the window", func() *hist {
			h := rtoHistory(recovers)
			h.writes(3, "ap-south", "us-east-db-1", 0, 5, 1)
			return h
		}(), budgets(BudgetRTO, 10), verdict.Pass, 8.3,
			"ap-south:unjudged eu-west:1[10.6,11.6]open=false,ok=30,bad=0 us-east:8.3[10,18.3]open=false,ok=22,bad=5", "blackhole:us-east"},
		{"no budget", rtoHistory(recovers), Config{}, verdict.Unknown, 8.3,
			"eu-west:1[10.6,11.6]open=false,ok=30,bad=0 us-east:8.3[10,18.3]open=false,ok=22,bad=5", "blackhole:us-east"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ev := WriteUnavailability(tc.h.build(), tc.cfg)
			expectVerdict(t, r, tc.verdict, tc.measured)
			if got := rtoString(ev); got != tc.regions {
				t.Fatalf("regions\n got %s\nwant %s", got, tc.regions)
			}
			if ev.Fault != tc.fault {
				t.Fatalf("fault %q, want %q", ev.Fault, tc.fault)
			}
		})
	}
}

func TestWriteUnavailabilityEdges(t *testing.T) {
	r, _ := WriteUnavailability((&hist{}).build(), budgets(BudgetRTO, 1))
	if r.Verdict != verdict.Unknown {
		t.Fatalf("empty history: %s %q", r.Verdict, r.Detail)
	}
	// Writes only before the fault: nothing to judge.
	h := &hist{}
	h.writes(1, "us-east", "us-east-db-1", 0, 5, 1)
	h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	h.read(1, "us-east", "x", 35, ok, 35.1, false, 0, "")
	r, ev := WriteUnavailability(h.build(), budgets(BudgetRTO, 1))
	if r.Verdict != verdict.Unknown || !strings.Contains(r.Detail, "no client region attempted a write between +10.000s and +35.100s") {
		t.Fatalf("got %s %q", r.Verdict, r.Detail)
	}
	if got := ev.RTOs(); len(got) != 0 {
		t.Fatalf("RTOs of unjudged regions: %v", got)
	}
	_, ev = WriteUnavailability(rtoHistory(func(h *hist) { failing(h, 10, 38.5) }).build(), Config{})
	if got := fmt.Sprint(ev.RTOs()); got != "map[eu-west:1 us-east:29.6]" {
		t.Fatalf("RTOs %s", got)
	}
}
