package check

import (
	"fmt"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// NameStaleReads names the check; BudgetStaleReads is its budget.
const (
	NameStaleReads = "stale_reads"
	// BudgetStaleReads: reads that missed the reading client's own acknowledged write.
	BudgetStaleReads = "stale_reads"
)

func init() {
	registerJudge(60, NameStaleReads, Metric{Name: BudgetStaleReads, Title: "stale reads (read-your-writes violations)", Short: "stale", Unit: "reads"}, StaleReads)
}

// StaleRead is a read that missed the reading process's own acknowledged write.
type StaleRead struct {
	Process      int    `json:"process"`
	ClientRegion string `json:"client_region"`
	Key          string `json:"key"`
	// WriteLSN is the LSN of the process's last acknowledged write of the key before the read.
	WriteLSN uint64 `json:"write_lsn"`
	// Found, KeyLSN and Value are what the read returned.
	Found  bool   `json:"found"`
	KeyLSN uint64 `json:"key_lsn"`
	Value  string `json:"value,omitempty"`
	// DBNode is the database node that served the read.
	DBNode string `json:"db_node,omitempty"`
	// WriteAcked is when the write was acknowledged; ReadInvoked when the read began.
	WriteAcked  time.Time `json:"write_acked"`
	ReadInvoked time.Time `json:"read_invoked"`
	// ReadIndex is the read's invoke Index.
	ReadIndex int64 `json:"read_index"`
}

// ReadCounts are the judged and stale reads of one client region.
type ReadCounts struct {
	Judged int `json:"judged"`
	Stale  int `json:"stale"`
}

// StaleReadsEvidence is what StaleReads found.
type StaleReadsEvidence struct {
	// Judged is the number of reads that followed an acknowledged write of the same process and key.
	Judged int `json:"judged"`
	// Stale is the number of those that missed the write.
	Stale int `json:"stale"`
	// OfLostWrites counts the reads not judged because the client's write they followed was
	// discarded by a failover (absent from every final log).
	OfLostWrites int `json:"of_lost_writes,omitempty"`
	// ByRegion counts per client region (JSON sorts the keys).
	ByRegion map[string]ReadCounts `json:"by_region"`
	// Examples are the first stale reads, in history order (at most Config.MaxExamples).
	Examples []StaleRead `json:"examples"`
}

// StaleReads checks read-your-writes: a successful read by process p of key k that began after
// p's own write of k was acknowledged (with LSN L) is stale when it returned not-found, or a value
// written at KeyLSN < L (when the read reports no KeyLSN, a value other than the one written).
// Reads that failed or are indeterminate, reads of keys the process did not successfully write,
// reads before any write, and reads after a write that a failover discarded (no node's final log
// holds it: that is a lost write, which lost_acked_writes judges) are not judged. Measured is the number of stale reads, judged
// against BudgetStaleReads; unknown when no read could be judged.
func StaleReads(ops []history.Op, cfg Config) (Result, *StaleReadsEvidence) {
	const unit = "reads"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameStaleReads, unit, BudgetStaleReads, "malformed history: "+err.Error(), nil), nil
	}
	type ackedWrite struct {
		lsn   uint64
		value string
		acked time.Time
		index int64 // completion index
		// discarded: no node's final log holds the write (history.Logged.Discarded)
		discarded bool
	}
	// own[process][key] is the process's latest acknowledged write of key, by completion index.
	own := map[int]map[string]ackedWrite{}
	// Pairs are in invoke order, and a process has one op at a time, so by the time a process's
	// read is visited its earlier writes are known; the index comparison makes "began after the
	// acknowledgement" exact.
	ev := &StaleReadsEvidence{ByRegion: map[string]ReadCounts{}}
	logged := history.FinalLogs(ops)
	for _, p := range pairs {
		key := p.Key()
		switch p.Invoke.F {
		case history.FWrite:
			if !p.Acked() {
				continue
			}
			if own[p.Invoke.Process] == nil {
				own[p.Invoke.Process] = map[string]ackedWrite{}
			}
			own[p.Invoke.Process][key] = ackedWrite{lsn: p.Done.LSN, value: p.Value(), acked: p.End(), index: p.Done.Index,
				discarded: logged.Discarded(p)}
		case history.FRead:
			w, wrote := own[p.Invoke.Process][key]
			if !wrote || !p.Acked() || w.index > p.Invoke.Index {
				continue
			}
			if w.discarded {
				// A failover discarded the write: no read can return it any more. It is a lost
				// write (lost_acked_writes, rpo), not a stale read.
				ev.OfLostWrites++
				continue
			}
			region := p.Invoke.ClientRegion
			counts := ev.ByRegion[region]
			counts.Judged++
			ev.Judged++
			got := p.Done
			stale := !got.Found
			if got.Found {
				if got.KeyLSN != 0 {
					stale = got.KeyLSN < w.lsn
				} else {
					stale = got.Value != w.value
				}
			}
			if stale {
				counts.Stale++
				ev.Stale++
				if len(ev.Examples) < cfg.maxExamples() {
					ev.Examples = append(ev.Examples, StaleRead{
						Process: p.Invoke.Process, ClientRegion: region, Key: key, WriteLSN: w.lsn,
						Found: got.Found, KeyLSN: got.KeyLSN, Value: got.Value, DBNode: got.DBNode,
						WriteAcked: w.acked, ReadInvoked: p.Invoke.Time, ReadIndex: p.Invoke.Index,
					})
				}
			}
			ev.ByRegion[region] = counts
		}
	}
	if ev.Judged == 0 {
		return cfg.unknown(NameStaleReads, unit, BudgetStaleReads,
			"no successful read followed an acknowledged write of the same client and key", ev), ev
	}
	r := Result{Name: NameStaleReads, Unit: unit, Measured: float64(ev.Stale), Evidence: ev}
	var parts []string
	for _, region := range sortedCountKeys(ev.ByRegion) {
		c := ev.ByRegion[region]
		parts = append(parts, fmt.Sprintf("%s %d/%d", region, c.Stale, c.Judged))
	}
	r.Detail = fmt.Sprintf("%d of %d reads missed the client's own write (%s)", ev.Stale, ev.Judged, list(parts, len(parts)))
	if len(ev.Examples) > 0 {
		e := ev.Examples[0]
		got := "not found"
		switch {
		case e.Found && e.KeyLSN != 0:
			got = fmt.Sprintf("key_lsn %d < write lsn %d", e.KeyLSN, e.WriteLSN)
		case e.Found:
			got = fmt.Sprintf("value %q, not the one written", e.Value)
		}
		r.Detail += fmt.Sprintf("; first: process %d key %s from %s (%s)", e.Process, e.Key, orNone(e.DBNode), got)
	}
	cfg.judge(&r, BudgetStaleReads)
	return r, ev
}

func orNone(s string) string {
	if s == "" {
		return "<unknown node>"
	}
	return s
}

func sortedCountKeys(m map[string]ReadCounts) []string {
	seen := map[string]bool{}
	for k := range m {
		seen[k] = true
	}
	return sortedSet(seen)
}
