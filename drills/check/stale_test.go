package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drillworks/drill/drills/verdict"
)

func TestStaleReads(t *testing.T) {
	h := &hist{}
	// p1 (us-east): a read of its own write that sees it, one that misses it, one that sees older data.
	h.write(1, "us-east", "k1", 1, ok, 1.1, "us-east-db-1", 10)
	h.read(1, "us-east", "k1", 2, ok, 2.1, true, 10, "v-k1")
	h.read(1, "us-east", "k1", 3, ok, 3.1, false, 0, "")
	h.read(1, "us-east", "k1", 4, ok, 4.1, true, 5, "old")
	// p2 (eu-west): reads before any write and reads of another client's key are not judged.
	h.read(2, "eu-west", "k9", 0.5, ok, 0.6, false, 0, "")
	h.read(2, "eu-west", "k1", 5, ok, 5.1, false, 0, "")
	// Without key_lsn the value decides.
	h.write(2, "eu-west", "k2", 6, ok, 6.1, "us-east-db-1", 20)
	h.read(2, "eu-west", "k2", 7, ok, 7.1, true, 0, "v-k2")
	h.read(2, "eu-west", "k2", 8, ok, 8.1, true, 0, "old")
	// p3: an indeterminate write is not the client's own acknowledged write (and p3 is crashed).
	h.write(3, "eu-west", "k3", 1, info, 2, "", 0)
	// p4: a failed write, then a read that misses it: not judged.
	h.write(4, "eu-west", "k4", 1, fail, 2, "", 0)
	h.read(4, "eu-west", "k4", 3, ok, 3.1, false, 0, "")
	// p5: failed and indeterminate reads are not judged.
	h.write(5, "us-east", "k5", 1, ok, 1.1, "us-east-db-1", 30)
	h.read(5, "us-east", "k5", 2, fail, 2.1, false, 0, "")
	h.read(5, "us-east", "k5", 3, info, 5, false, 0, "")
	// p7: two writes of one key; a read must see the latest.
	h.write(7, "eu-west", "k7", 1, ok, 1.1, "us-east-db-1", 40)
	h.write(7, "eu-west", "k7", 2, ok, 2.1, "us-east-db-1", 50)
	h.read(7, "eu-west", "k7", 3, ok, 3.1, true, 40, "v-k7")

	for _, tc := range []struct {
		budget   float64
		verdict  verdict.Verdict
		measured float64
	}{{0, verdict.Fail, 4}, {4, verdict.Pass, 4}} {
		t.Run(fmt.Sprint("budget ", tc.budget), func(t *testing.T) {
			r, ev := StaleReads(h.build(), budgets(BudgetStaleReads, tc.budget))
			expectVerdict(t, r, tc.verdict, tc.measured)
			if ev.Judged != 6 || ev.Stale != 4 {
				t.Fatalf("judged %d stale %d, want 6 and 4", ev.Judged, ev.Stale)
			}
			if got := fmt.Sprint(ev.ByRegion); got != "map[eu-west:{3 2} us-east:{3 2}]" {
				t.Fatalf("by region %s", got)
			}
			var examples []string
			for _, e := range ev.Examples {
				examples = append(examples, fmt.Sprintf("p%d:%s@%g:%v:%d<%d", e.Process, e.Key, e.ReadInvoked.Sub(t0).Seconds(), e.Found, e.KeyLSN, e.WriteLSN))
			}
			want := "p1:k1@3:false:0<10 p7:k7@3:true:40<50 p1:k1@4:true:5<10 p2:k2@8:true:0<20"
			if strings.Join(examples, " ") != want {
				t.Fatalf("examples %v\nwant     %s", examples, want)
			}
			if !strings.Contains(r.Detail, "4 of 6 reads missed the client's own write (eu-west 2/3, us-east 2/3)") {
				t.Fatalf("detail %q", r.Detail)
			}
		})
	}
	t.Run("max examples", func(t *testing.T) {
		_, ev := StaleReads(h.build(), Config{MaxExamples: 1})
		if len(ev.Examples) != 1 || ev.Stale != 4 {
			t.Fatalf("%d examples, %d stale", len(ev.Examples), ev.Stale)
		}
	})
}

func TestStaleReadsUnknown(t *testing.T) {
	h := &hist{}
	h.read(1, "us-east", "k", 0.5, ok, 0.6, false, 0, "") // before any write
	h.write(1, "us-east", "k", 1, ok, 1.1, "us-east-db-1", 3)
	h.read(2, "us-east", "k", 2, ok, 2.1, false, 0, "") // another client
	r, ev := StaleReads(h.build(), budgets(BudgetStaleReads, 0))
	if r.Verdict != verdict.Unknown || ev.Judged != 0 || !strings.Contains(r.Detail, "no successful read followed") {
		t.Fatalf("got %s %q", r.Verdict, r.Detail)
	}
}
