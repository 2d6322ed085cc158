package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/drillworks/drill/drills/history"
)

// NameLogMatching names the check; BudgetLogMismatches is its budget.
const (
	NameLogMatching = "log_matching"
	// BudgetLogMismatches: LSNs at which two database nodes' logs hold different entries at the
	// end of the run. An invariant of the design (Raft's log matching): judged against 0 when a
	// drill sets no budget.
	BudgetLogMismatches = "log_mismatches"
)

func init() {
	registerInvariant(96, NameLogMatching,
		Metric{Name: BudgetLogMismatches, Title: "log entries that differ between nodes", Short: "mismatches", Unit: "entries"}, LogMatching)
}

// LogMismatch is one LSN at which two nodes hold different entries.
type LogMismatch struct {
	LSN uint64 `json:"lsn"`
	// Text names the two nodes and what each holds at LSN.
	Text string `json:"text"`
}

// LogMatchingEvidence is what LogMatching found.
type LogMatchingEvidence struct {
	// Nodes are the nodes whose logs were compared, with their lengths.
	Nodes map[string]int `json:"nodes"`
	// Mismatches are the LSNs where two logs differ, the first ones (MaxExamples).
	Mismatches []LogMismatch `json:"mismatches"`
}

// LogMatching checks the logs the database nodes hold at the end of the run (log ops, recorded
// after the final read, when every replica has caught up): wherever two nodes hold an entry at the
// same LSN it must be the same entry, by epoch and by write (key). A mixed log (entries of two
// primaries of one epoch, or a divergent suffix never truncated) shows here even when the final
// reads happen to agree. Measured is the number of LSNs at which some two nodes differ; unknown
// when fewer than two logs were recorded.
func LogMatching(ops []history.Op, cfg Config) (Result, *LogMatchingEvidence) {
	const unit = "entries"
	logs := map[string][]history.LogEntry{}
	for _, op := range ops {
		if op.Type == history.TypeLog {
			logs[op.Node] = append(logs[op.Node], op.Log...) // a long log comes in chunks, in order
		}
	}
	if len(logs) < 2 {
		return cfg.unknown(NameLogMatching, unit, BudgetLogMismatches,
			fmt.Sprintf("%d database logs recorded; two are needed (a drill without a final read records none)", len(logs)), nil), nil
	}
	nodes := slices.Sorted(maps.Keys(logs))
	ev := &LogMatchingEvidence{Nodes: map[string]int{}}
	// Each log against the first node's, LSN by LSN; a node's entries are indexed by LSN so a
	// chunk boundary or a gap cannot shift the comparison.
	byLSN := func(l []history.LogEntry) map[uint64]history.LogEntry {
		m := make(map[uint64]history.LogEntry, len(l))
		for _, e := range l {
			m[e.LSN] = e
		}
		return m
	}
	indexed := map[string]map[uint64]history.LogEntry{}
	for _, n := range nodes {
		indexed[n] = byLSN(logs[n])
		ev.Nodes[n] = len(logs[n])
	}
	mismatched := map[uint64]bool{}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			for lsn, ea := range indexed[a] {
				eb, ok := indexed[b][lsn]
				if !ok || eb == ea || mismatched[lsn] {
					continue
				}
				mismatched[lsn] = true
				ev.Mismatches = append(ev.Mismatches, LogMismatch{LSN: lsn,
					Text: fmt.Sprintf("LSN %d: %s has %s (epoch %d), %s has %s (epoch %d)", lsn, a, ea.Key, ea.Epoch, b, eb.Key, eb.Epoch)})
			}
		}
	}
	slices.SortFunc(ev.Mismatches, func(x, y LogMismatch) int { return cmp.Compare(x.LSN, y.LSN) })
	all := len(ev.Mismatches)
	ev.Mismatches = ev.Mismatches[:min(all, cfg.maxExamples())]
	var lens []string
	for _, n := range nodes {
		lens = append(lens, fmt.Sprintf("%s %d", n, ev.Nodes[n]))
	}
	r := Result{Name: NameLogMatching, Unit: unit, Measured: float64(all), Evidence: ev}
	r.Detail = fmt.Sprintf("%d LSNs where two logs differ (entries: %s)", all, strings.Join(lens, ", "))
	if all > 0 {
		r.Detail += ": " + ev.Mismatches[0].Text
	}
	cfg.judge(&r, BudgetLogMismatches)
	return r, ev
}
