package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/verdict"
)

func runsString(runs []PrimaryRun) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s[%g,%g]x%d", r.Primary, r.Start.Sub(t0).Seconds(), r.End.Sub(t0).Seconds(), r.Writes))
	}
	return strings.Join(parts, " ")
}

func overlapsString(os []Overlap) string {
	var parts []string
	for _, o := range os {
		parts = append(parts, fmt.Sprintf("%s+%s[%g,%g]", o.A, o.B, o.Start.Sub(t0).Seconds(), o.End.Sub(t0).Seconds()))
	}
	return strings.Join(parts, " ")
}

func TestSplitBrain(t *testing.T) {
	for _, tc := range []struct {
		name              string
		h                 func(h *hist)
		budget            float64
		verdict           verdict.Verdict
		measured          float64
		runs, overlaps    string
		unattributedCount int
	}{
		{"single primary", func(h *hist) {
			h.writes(1, "us-east", "A", 0, 10, 0.5)
		}, 0, verdict.Pass, 0, "A[0,10.1]x21", "", 0},
		{"clean failover", func(h *hist) {
			h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
			h.writes(1, "us-east", "A", 0, 9.5, 0.5)
			h.write(2, "eu-west", "failed-at-B", 9, fail, 9.2, "", 0) // failed writes prove nothing
			h.write(3, "eu-west", "lost-at-B", 9, info, 11, "", 0)    // nor do indeterminate ones
			h.writes(4, "eu-west", "B", 12.5, 20, 0.5)
		}, 0, verdict.Pass, 0, "A[0,9.6]x20 B[12.5,20.1]x16", "", 0},
		{"split brain", func(h *hist) {
			h.fault("partition:us-east", fault.KindPartition, "us-east", "", 7, 35)
			h.writes(1, "us-east", "A", 0, 10, 0.5)
			h.writes(2, "us-east", "A", 20, 30, 0.5) // 9.9 s after the last: a new run
			h.writes(3, "eu-west", "B", 8, 25, 0.5)
		}, 5, verdict.Fail, 7.2, "A[0,10.1]x21 B[8,25.1]x35 A[20,30.1]x21", "A+B[8,10.1] A+B[20,25.1]", 0},
		{"split brain within budget", func(h *hist) {
			h.writes(1, "us-east", "A", 0, 10, 0.5)
			h.writes(3, "eu-west", "B", 9, 15, 0.5)
		}, 2, verdict.Pass, 1.1, "A[0,10.1]x21 B[9,15.1]x13", "A+B[9,10.1]", 0},
		{"gaps of exactly the run gap merge", func(h *hist) {
			h.write(1, "us-east", "a", 0, ok, 0.1, "A", 1)
			h.write(1, "us-east", "b", 1.1, ok, 1.2, "A", 2) // 1.0 s after the run's end: same run
			h.write(1, "us-east", "c", 2.2, ok, 2.3, "A", 3) // 1.0 s again
			h.write(1, "us-east", "d", 3.4, ok, 3.5, "A", 4) // 1.1 s: new run
		}, 0, verdict.Pass, 0, "A[0,2.3]x3 A[3.4,3.5]x1", "", 0},
		{"three primaries counted once", func(h *hist) {
			h.writes(1, "r1", "A", 0, 9.9, 0.5)
			h.writes(2, "r2", "B", 5, 14.9, 0.5)
			h.writes(3, "r3", "C", 6, 7.9, 0.5)
		}, 0, verdict.Fail, 4.6, "A[0,9.6]x20 B[5,14.6]x20 C[6,7.6]x4", "A+B[5,9.6] A+C[6,7.6] B+C[6,7.6]", 0},
		{"unattributed acks are counted, not judged", func(h *hist) {
			h.writes(1, "us-east", "A", 0, 1, 0.5)
			h.write(2, "us-east", "x", 0.2, ok, 0.3, "", 9)
		}, 0, verdict.Pass, 0, "A[0,1.1]x3", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &hist{}
			tc.h(h)
			r, ev := SplitBrain(h.build(), budgets(BudgetSplitBrain, tc.budget))
			expectVerdict(t, r, tc.verdict, tc.measured)
			if got := runsString(ev.Runs); got != tc.runs {
				t.Errorf("runs %s, want %s", got, tc.runs)
			}
			if got := overlapsString(ev.Overlaps); got != tc.overlaps {
				t.Errorf("overlaps %s, want %s", got, tc.overlaps)
			}
			if ev.Unattributed != tc.unattributedCount {
				t.Errorf("unattributed %d, want %d", ev.Unattributed, tc.unattributedCount)
			}
		})
	}
}

func TestSplitBrainUnknown(t *testing.T) {
	none := &hist{}
	none.write(1, "us-east", "a", 0, fail, 0.1, "", 0)
	none.read(2, "us-east", "a", 0, ok, 0.1, false, 0, "")
	r, _ := SplitBrain(none.build(), budgets(BudgetSplitBrain, 0))
	if r.Verdict != verdict.Unknown || r.Detail != "no acknowledged write in the history" {
		t.Fatalf("got %s %q", r.Verdict, r.Detail)
	}
	anon := &hist{}
	anon.write(1, "us-east", "a", 0, ok, 0.1, "", 1)
	r, _ = SplitBrain(anon.build(), budgets(BudgetSplitBrain, 0))
	if r.Verdict != verdict.Unknown || !strings.Contains(r.Detail, "none of the 1 acknowledged writes named the db node") {
		t.Fatalf("got %s %q", r.Verdict, r.Detail)
	}
	// A configured run gap changes what counts as one run.
	h := &hist{}
	h.write(1, "us-east", "a", 0, ok, 0.1, "A", 1)
	h.write(1, "us-east", "b", 3, ok, 3.1, "A", 2)
	h.write(2, "eu-west", "c", 1, ok, 1.1, "B", 1)
	r, _ = SplitBrain(h.build(), Config{Budgets: Budgets{BudgetSplitBrain: 0}, RunGap: 5e9})
	expectVerdict(t, r, verdict.Fail, 0.1)
}
