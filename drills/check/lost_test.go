package check

import (
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

const (
	ok   = history.TypeOK
	fail = history.TypeFail
	info = history.TypeInfo
)

// outageHistory: us-east is black-holed at 10 s and healed at 30 s. Acknowledged writes b and c
// had not replicated (lost), n was acknowledged by the cut-off old primary (fencing: none) and
// discarded later (lost), d and g were indeterminate but survived (recovered), e was
// indeterminate and is gone (fine), f failed and is gone (fine), h "failed" yet is present.
func outageHistory() *hist {
	h := &hist{}
	h.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
	h.write(1, "us-east", "b", 9.8, ok, 9.9, "us-east-db-1", 5)
	h.write(1, "us-east", "c", 9.95, ok, 9.97, "us-east-db-1", 6)
	h.write(2, "eu-west", "d", 10.0, info, 12, "", 0)
	h.write(3, "eu-west", "e", 10.1, info, 12, "", 0)
	h.write(4, "eu-west", "f", 11, fail, 11.5, "", 0)
	h.write(5, "eu-west", "g", 12, "", 0, "", 0)
	h.write(6, "eu-west", "h", 13, fail, 13.2, "", 0)
	h.write(9, "us-east", "n", 14.9, ok, 15, "us-east-db-1", 7)
	h.final("a", "v-a", true, 50)
	h.final("b", "", false, 50)
	h.final("c", "other", true, 50)
	h.final("d", "v-d", true, 50)
	h.final("e", "", false, 50)
	h.final("f", "", false, 50)
	h.final("g", "v-g", true, 50)
	h.final("h", "v-h", true, 50)
	h.final("n", "", false, 50)
	return h
}

func TestLostWrites(t *testing.T) {
	type want struct {
		verdict                                                verdict.Verdict
		lost, recovered, failedPresent, unverified, unexpected string
		measured, rpo                                          float64
		rpoFault                                               string
		indeterminateMissing                                   int
	}
	overwrites := func() *hist {
		h := &hist{}
		// k: two concurrent writes; the final k2 may be the later one, so k1 is not lost.
		h.writeValue(7, "us-east", "k", "k1", 2, ok, 2.1, "us-east-db-1", 1)
		h.writeValue(8, "us-east", "k", "k2", 2.05, ok, 2.2, "us-east-db-1", 2)
		// m: m1 completed before m2 began, yet m1 is what survived: m2 is lost.
		h.writeValue(7, "us-east", "m", "m1", 3, ok, 3.1, "us-east-db-1", 3)
		h.writeValue(8, "us-east", "m", "m2", 3.5, ok, 3.6, "us-east-db-1", 4)
		h.final("k", "k2", true, 9)
		h.final("m", "m1", true, 9)
		return h
	}
	for _, tc := range []struct {
		name string
		h    *hist
		cfg  Config
		want want
	}{
		{"outage with budget 0", outageHistory(), budgets(BudgetLostAckedWrites, 0, BudgetRPO, 5), want{
			verdict: verdict.Fail, measured: 3, lost: "b,c,n", recovered: "d,g", failedPresent: "h", unexpected: "c=other",
			rpo: 5.1, rpoFault: "blackhole:us-east", indeterminateMissing: 1,
		}},
		{"outage within budget", outageHistory(), budgets(BudgetLostAckedWrites, 3), want{
			verdict: verdict.Pass, measured: 3, lost: "b,c,n", recovered: "d,g", failedPresent: "h", unexpected: "c=other",
			rpo: 5.1, rpoFault: "blackhole:us-east", indeterminateMissing: 1,
		}},
		{"outage without budget", outageHistory(), Config{}, want{
			verdict: verdict.Unknown, measured: 3, lost: "b,c,n", recovered: "d,g", failedPresent: "h", unexpected: "c=other",
			rpo: 5.1, rpoFault: "blackhole:us-east", indeterminateMissing: 1,
		}},
		{"overwrites", overwrites(), budgets(BudgetLostAckedWrites, 0), want{verdict: verdict.Fail, measured: 1, lost: "m"}},
		{"clean", func() *hist {
			h := &hist{}
			h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
			h.write(1, "us-east", "b", 2, info, 3, "", 0) // unacknowledged and missing: fine
			h.final("a", "v-a", true, 9)
			h.final("b", "", false, 9)
			return h
		}(), budgets(BudgetLostAckedWrites, 0), want{verdict: verdict.Pass, indeterminateMissing: 1}},
		{"acked write without final read", func() *hist {
			h := &hist{}
			h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
			h.write(1, "us-east", "b", 2, ok, 2.1, "us-east-db-1", 2)
			h.final("a", "v-a", true, 9)
			return h
		}(), budgets(BudgetLostAckedWrites, 0), want{verdict: verdict.Unknown, unverified: "b"}},
		{"unverified does not hide a failure", func() *hist {
			h := &hist{}
			h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
			h.write(1, "us-east", "b", 2, ok, 2.1, "us-east-db-1", 2)
			h.final("a", "", false, 9)
			return h
		}(), budgets(BudgetLostAckedWrites, 0), want{verdict: verdict.Fail, measured: 1, lost: "a", unverified: "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := tc.h.build()
			r, ev := LostWrites(ops, tc.cfg)
			expectVerdict(t, r, tc.want.verdict, tc.want.measured)
			got := want{
				verdict: r.Verdict, measured: r.Measured, lost: keysOf(ev.Lost), recovered: keysOf(ev.Recovered),
				failedPresent: keysOf(ev.FailedButPresent), unverified: keysOf(ev.Unverified),
				unexpected: strings.Join(ev.Unexpected, ","), rpo: ev.RPOSeconds, rpoFault: ev.RPOFault,
				indeterminateMissing: ev.IndeterminateMissing,
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v\ndetail: %s", got, tc.want, r.Detail)
			}
			if r.Evidence != ev {
				t.Fatal("Result.Evidence must be the returned evidence")
			}
		})
	}
}

func TestLostWritesUnknown(t *testing.T) {
	noFinal := &hist{}
	noFinal.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
	noAck := &hist{}
	noAck.write(1, "us-east", "a", 1, fail, 1.1, "", 0)
	noAck.write(2, "us-east", "b", 1, info, 1.1, "", 0)
	noAck.final("a", "", false, 9)
	malformed := &hist{}
	malformed.add(history.Op{Type: ok, F: history.FWrite, Process: 1, Key: "a"}, 1)
	malformed.final("a", "", false, 9)
	for name, tc := range map[string]struct {
		h    *hist
		want string
	}{
		"no final read":        {noFinal, "no final read"},
		"never acknowledged":   {noAck, "no acknowledged write in the history (2 writes attempted)"},
		"malformed history":    {malformed, "malformed history: op 0: process 1 completed (ok) an op it never invoked"},
		"empty history at all": {&hist{}, "no final read"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, check := range []func([]history.Op, Config) (Result, *LostWritesEvidence){LostWrites, RPO} {
				r, _ := check(tc.h.build(), budgets(BudgetLostAckedWrites, 0, BudgetRPO, 0))
				if r.Verdict != verdict.Unknown || !r.NoData || !strings.Contains(r.Detail, tc.want) {
					t.Fatalf("%s: %s (no data %v) %q, want unknown without data containing %q", r.Name, r.Verdict, r.NoData, r.Detail, tc.want)
				}
			}
		})
	}
}

func TestRPO(t *testing.T) {
	r, ev := RPO(outageHistory().build(), budgets(BudgetRPO, 5))
	expectVerdict(t, r, verdict.Fail, 5.1)
	if !ev.RPOFrom.Equal(at(9.9)) || !ev.FirstLostAck.Equal(at(9.9)) || !ev.LastLostAck.Equal(at(15)) {
		t.Fatalf("RPO window %v..%v from %v", ev.FirstLostAck, ev.LastLostAck, ev.RPOFrom)
	}
	// Lost acks all after the fault began: the window starts at the fault.
	h := &hist{}
	h.fault("partition:us-east", fault.KindPartition, "us-east", "", 10, 30)
	h.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
	h.write(1, "us-east", "x", 12, ok, 12.1, "us-east-db-1", 2)
	h.write(1, "us-east", "y", 17, ok, 17.5, "us-east-db-1", 3)
	h.final("a", "v-a", true, 40)
	h.final("x", "", false, 40)
	h.final("y", "", false, 40)
	r, ev = RPO(h.build(), budgets(BudgetRPO, 10))
	expectVerdict(t, r, verdict.Pass, 7.5)
	if ev.RPOFault != "partition:us-east" || !ev.RPOFrom.Equal(at(10)) {
		t.Fatalf("fault %q from %v", ev.RPOFault, ev.RPOFrom)
	}
	// Acks lost to replication lag just before the fault: the window runs to the fault.
	lag := &hist{}
	lag.fault("blackhole:us-east", fault.KindBlackhole, "us-east", "", 10, 30)
	lag.write(1, "us-east", "a", 9, ok, 9.2, "us-east-db-1", 1)
	lag.write(1, "us-east", "b", 9.5, ok, 9.6, "us-east-db-1", 2)
	lag.final("a", "", false, 40)
	lag.final("b", "", false, 40)
	r, ev = RPO(lag.build(), budgets(BudgetRPO, 1))
	expectVerdict(t, r, verdict.Pass, 0.8)
	if ev.RPOFault != "blackhole:us-east" || !ev.RPOFrom.Equal(at(9.2)) || !ev.RPOTo.Equal(at(10)) {
		t.Fatalf("fault %q window %v..%v", ev.RPOFault, ev.RPOFrom, ev.RPOTo)
	}
	// Nothing lost: RPO 0.
	clean := &hist{}
	clean.write(1, "us-east", "a", 1, ok, 1.1, "us-east-db-1", 1)
	clean.final("a", "v-a", true, 40)
	r, _ = RPO(clean.build(), budgets(BudgetRPO, 0))
	expectVerdict(t, r, verdict.Pass, 0)
}

// A hot key written at LSN 2 in epoch 1, discarded by a failover, then overwritten at epoch 2:
// the final read shows the later value, the final logs show the loss.
func TestLostWriteHiddenByAnOverwriteIsFoundInTheLogs(t *testing.T) {
	var h hist
	h.writeValue(1, "us-east", "k", "a", 0, history.TypeOK, 0.1, "us-east-db-1", 1)
	h.writeValue(1, "us-east", "k", "b", 1, history.TypeOK, 1.1, "us-east-db-1", 2)
	h.add(history.Op{Type: history.TypeInvoke, F: history.FWrite, Process: 2, ClientRegion: "eu-west", Key: "k", Value: "c"}, 5)
	h.add(history.Op{Type: history.TypeOK, F: history.FWrite, Process: 2, ClientRegion: "eu-west", Key: "k", Value: "c",
		DBNode: "eu-west-db-1", LSN: 2, Epoch: 2}, 5.1)
	h.final("k", "c", true, 9)
	withoutLogs := h.build()
	if r, _ := LostWrites(withoutLogs, budgets(BudgetLostAckedWrites, 0)); r.Verdict != verdict.Pass {
		t.Fatalf("without logs the overwrite hides the loss: %+v", r)
	}
	h.add(history.Op{Type: history.TypeLog, Node: "eu-west-db-1", Log: []history.LogEntry{{LSN: 1, Epoch: 1, Key: "k"}, {LSN: 2, Epoch: 2, Key: "k"}}}, 10)
	r, ev := LostWrites(h.build(), budgets(BudgetLostAckedWrites, 0))
	expectVerdict(t, r, verdict.Fail, 1)
	if len(ev.Lost) != 1 || ev.Lost[0].Value != "b" {
		t.Errorf("lost %+v, want the write of b", ev.Lost)
	}
	// Its writer's later read of k, which can no longer return b, is a lost write, not a stale read.
	h.read(1, "us-east", "k", 6, history.TypeOK, 6.1, true, 2, "c")
	sr, sev := StaleReads(h.build(), budgets(BudgetStaleReads, 0))
	if sr.Verdict != verdict.Unknown || sev.OfLostWrites != 1 {
		t.Errorf("stale reads %+v (%+v), want the read not judged, counted as after a lost write", sr, sev)
	}
}
