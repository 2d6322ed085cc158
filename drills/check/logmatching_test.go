package check

import (
	"strings"
	"testing"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// runRegistered runs a checker as check.Run does, through the registry (an invariant's budget of 0
// is applied there).
func runRegistered(t *testing.T, name string, ops []history.Op, cfg Config) Result {
	t.Helper()
	for _, c := range Checkers() {
		if c.Name() == name {
			return c.Check(ops, cfg)
		}
	}
	t.Fatalf("no checker %s", name)
	return Result{}
}

func logOp(node string, entries ...history.LogEntry) history.Op {
	return history.Op{Type: history.TypeLog, Node: node, Log: entries}
}

func TestLogMatching(t *testing.T) {
	e := func(lsn, epoch uint64, key string) history.LogEntry {
		return history.LogEntry{LSN: lsn, Epoch: epoch, Key: key}
	}
	common := []history.LogEntry{e(1, 1, "a"), e(2, 1, "b"), e(3, 2, "c")}
	for _, tc := range []struct {
		name     string
		ops      []history.Op
		verdict  verdict.Verdict
		measured float64
		detail   string
	}{
		{"equal logs, one longer and in chunks", []history.Op{
			logOp("us-east-db-1", common...),
			logOp("eu-west-db-1", common[:2]...), logOp("eu-west-db-1", common[2], e(4, 2, "d")),
		}, verdict.Pass, 0, "0 LSNs"},
		{"same LSN, another primary's entry of the same epoch", []history.Op{
			logOp("us-east-db-1", common...),
			logOp("eu-west-db-1", e(1, 1, "a"), e(2, 1, "x"), e(3, 2, "c")),
		}, verdict.Fail, 1, "LSN 2: eu-west-db-1 has x (epoch 1), us-east-db-1 has b (epoch 1)"},
		{"a divergent suffix never truncated", []history.Op{
			logOp("us-east-db-1", common...),
			logOp("eu-west-db-1", e(1, 1, "a"), e(2, 1, "b"), e(3, 1, "old"), e(4, 1, "old2")),
			logOp("ap-db-1", common...),
		}, verdict.Fail, 1, "LSN 3"},
		{"one log", []history.Op{logOp("us-east-db-1", common...)}, verdict.Unknown, 0, "1 database logs recorded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runRegistered(t, NameLogMatching, tc.ops, Config{})
			if r.Verdict != tc.verdict || r.Measured != tc.measured || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("%s %.0f %q", r.Verdict, r.Measured, r.Detail)
			}
		})
	}
	// A drill may allow mismatches (a known-bad variant's budget).
	r := runRegistered(t, NameLogMatching, []history.Op{logOp("a", e(1, 1, "x")), logOp("b", e(1, 1, "y"))}, Config{Budgets: Budgets{BudgetLogMismatches: 1}})
	if r.Verdict != verdict.Pass {
		t.Fatalf("budget 1: %s %q", r.Verdict, r.Detail)
	}
}
