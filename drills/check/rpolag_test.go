package check

import (
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/verdict"
)

func TestRPOBeyondLag(t *testing.T) {
	// Lost to the lag: acknowledged 0.4 s before a kill while the replica was 0.5 s behind, and
	// one acknowledged 0.2 s after it (the runtime's time to kill): 0.2 s not explained by lag.
	h := &hist{}
	h.lag("eu-west", 9, 500)
	h.fault("kill-primary", fault.KindKillPrimary, "", "", 10, 20)
	h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
	h.write(1, "us-east", "b", 9.5, ok, 9.6, "us-east-db-1", 2)
	h.write(1, "us-east", "c", 10.1, ok, 10.2, "us-east-db-1", 3)
	h.final("a", "v-a", true, 30)
	h.final("b", "", false, 30)
	h.final("c", "", false, 30)
	r, ev := RPOBeyondLag(h.build(), budgets(BudgetRPOBeyondLag, 1))
	expectVerdict(t, r, verdict.Pass, 0.2)
	if ev.LagBefore != 0.5 || ev.Before != 0 || ev.After != 0.2 || ev.Fault != "kill-primary" || ev.Worst != "c" {
		t.Fatalf("evidence %+v", ev)
	}

	// The same losses with a replica that was caught up: the 0.4 s before the fault are not lag.
	h = &hist{}
	h.lag("eu-west", 9, 0)
	h.fault("kill-primary", fault.KindKillPrimary, "", "", 10, 20)
	h.write(1, "us-east", "b", 9.5, ok, 9.6, "us-east-db-1", 2)
	h.final("b", "", false, 30)
	r, _ = RPOBeyondLag(h.build(), budgets(BudgetRPOBeyondLag, 0.3))
	expectVerdict(t, r, verdict.Fail, 0.4)

	// A partitioned primary that kept acknowledging for 5 s: beyond a 3 s lease.
	h = &hist{}
	h.fault("partition:us-east", fault.KindPartition, "us-east", "", 10, 30)
	h.write(1, "us-east", "x", 14.9, ok, 15, "us-east-db-1", 2)
	h.final("x", "", false, 40)
	r, _ = RPOBeyondLag(h.build(), budgets(BudgetRPOBeyondLag, 3))
	expectVerdict(t, r, verdict.Fail, 5)

	// Two kills, each losing the writes just before it, and a fault on a DNS node between them:
	// each loss is explained by its own kill, not lumped with the other.
	h = &hist{}
	h.lag("eu-west", 4, 300)
	h.lag("eu-west", 19, 300)
	h.fault("k1", fault.KindKillPrimary, "", "", 5, 8)
	h.fault("dns", fault.KindKill, "", "us-east-dns-1", 9, 16)
	h.fault("k2", fault.KindKillPrimary, "", "", 20, 24)
	h.write(1, "us-east", "x", 4.8, ok, 4.9, "us-east-db-1", 2)
	h.write(1, "us-east", "y", 19.8, ok, 19.9, "eu-west-db-1", 9)
	h.final("x", "", false, 30)
	h.final("y", "", false, 30)
	r, ev = RPOBeyondLag(h.build(), budgets(BudgetRPOBeyondLag, 1))
	expectVerdict(t, r, verdict.Pass, 0)
	if ev.LagBefore != 0.3 {
		t.Fatalf("evidence %+v", ev)
	}

	// Nothing lost: zero, and not judged without a budget.
	h = &hist{}
	h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
	h.final("a", "v-a", true, 30)
	r, _ = RPOBeyondLag(h.build(), budgets())
	expectVerdict(t, r, verdict.Unknown, 0)
}
