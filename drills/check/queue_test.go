package check

import (
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
	"github.com/drillworks/drill/topology"
)

// enqueue records one publish of job id by process p.
func (h *hist) enqueue(p int, id string, inv float64, outcome string, done float64) {
	h.add(history.Op{Type: history.TypeInvoke, F: history.FEnqueue, Process: p, ClientRegion: "us-east", Key: id}, inv)
	h.add(history.Op{Type: outcome, F: history.FEnqueue, Process: p, ClientRegion: "us-east", Key: id}, done)
}

// logOf records a final log holding one completion write per id listed (an id twice: two).
func (h *hist) logOf(node string, sec float64, ids ...string) {
	var log []history.LogEntry
	for i, id := range ids {
		log = append(log, history.LogEntry{LSN: uint64(i + 1), Epoch: 1, Key: topology.JobDoneKey(id)})
	}
	h.add(history.Op{Type: history.TypeLog, Node: node, Log: log}, sec)
}

func (h *hist) backlog(region string, sec float64, n uint64) {
	h.add(history.Op{Type: history.TypeQueue, Region: region, Node: region + "-queue-1", Backlog: n}, sec)
}

func TestLostJobs(t *testing.T) {
	h := &hist{}
	h.enqueue(1, "a", 1, history.TypeOK, 1.1)
	h.enqueue(1, "b", 2, history.TypeOK, 2.1)
	h.enqueue(1, "c", 3, history.TypeFail, 3.1)
	h.enqueue(1, "d", 4, history.TypeInfo, 4.1)
	h.enqueue(2, "e", 5, history.TypeOK, 5.1)
	h.logOf("us-east-db-1", 9, "a", "d", "e")
	r, ev := LostJobs(h.build(), Config{}.invariant(BudgetLostJobs))
	if r.Verdict != verdict.Fail || r.Measured != 1 || strings.Join(ev.Lost, ",") != "b" || ev.Recovered != 1 || ev.Acked != 3 {
		t.Fatalf("got %s %v %+v: %s", r.Verdict, r.Measured, ev, r.Detail)
	}

	h = &hist{}
	h.enqueue(1, "a", 1, history.TypeOK, 1.1)
	if r, _ := LostJobs(h.build(), Config{}.invariant(BudgetLostJobs)); r.Verdict != verdict.Unknown {
		t.Fatalf("without final logs: %s %s", r.Verdict, r.Detail)
	}
	if r, _ := LostJobs(nil, Config{}.invariant(BudgetLostJobs)); r.Verdict != verdict.Unknown {
		t.Fatalf("without jobs: %s %s", r.Verdict, r.Detail)
	}
}

func TestDuplicateJobs(t *testing.T) {
	h := &hist{}
	h.enqueue(1, "a", 1, history.TypeOK, 1.1)
	h.enqueue(1, "b", 2, history.TypeOK, 2.1)
	h.logOf("us-east-db-1", 9, "a", "b", "b", "b")
	r, ev := DuplicateJobs(h.build(), budgets(BudgetDuplicateJobs, 1))
	if r.Verdict != verdict.Fail || r.Measured != 2 || ev.Duplicated["b"] != 3 || ev.Jobs != 2 {
		t.Fatalf("got %s %v %+v: %s", r.Verdict, r.Measured, ev, r.Detail)
	}
}

func TestBacklogDrain(t *testing.T) {
	h := &hist{}
	h.fault("blackhole:eu-west", fault.KindBlackhole, "eu-west", "", 2, 10)
	h.backlog("us-east", 1, 0)
	h.backlog("eu-west", 1, 40)
	h.backlog("us-east", 11, 0)
	h.backlog("eu-west", 11, 30) // after the heal, still queued
	h.backlog("eu-west", 13.5, 0)
	h.backlog("us-east", 14, 3) // a new job came and went
	r, ev := BacklogDrain(h.build(), budgets(BudgetBacklogDrain, 5))
	if r.Verdict != verdict.Pass || r.Measured != 3.5 || ev.Peak != 40 || ev.PeakRegion != "eu-west" {
		t.Fatalf("got %s %v %+v: %s", r.Verdict, r.Measured, ev, r.Detail)
	}

	h = &hist{}
	h.fault("blackhole:eu-west", fault.KindBlackhole, "eu-west", "", 2, 10)
	h.backlog("eu-west", 11, 30)
	h.backlog("eu-west", 20, 5)
	r, _ = BacklogDrain(h.build(), budgets(BudgetBacklogDrain, 60))
	if r.Verdict != verdict.Fail || r.Measured != 10 || !strings.Contains(r.Detail, "not drained") {
		t.Fatalf("never drained: %s %v %s", r.Verdict, r.Measured, r.Detail)
	}
	if r, _ := BacklogDrain(nil, budgets(BudgetBacklogDrain, 5)); r.Verdict != verdict.Unknown {
		t.Fatalf("no samples: %s", r.Verdict)
	}
}

func TestPublishLatency(t *testing.T) {
	h := &hist{}
	for i := range 100 {
		h.enqueue(1, "j"+string(rune('a'+i%26))+string(rune('a'+i/26)), float64(i), history.TypeOK, float64(i)+0.01)
	}
	h.enqueue(1, "slow", 200, history.TypeOK, 200.5)
	r, ev := PublishLatency(h.build(), budgets(BudgetPublishLatencyP99, 50))
	if r.Verdict != verdict.Pass || ev.Reads != 101 || ev.P99 != 10 || ev.Max != 500 {
		t.Fatalf("got %s %+v: %s", r.Verdict, ev, r.Detail)
	}
}
