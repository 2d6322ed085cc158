package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// NameLostWrites names the check; BudgetLostAckedWrites is its budget.
const (
	NameLostWrites = "lost_acked_writes"
	// BudgetLostAckedWrites: acknowledged writes missing from the final read.
	BudgetLostAckedWrites = "lost_acked_writes"
)

func init() {
	registerJudge(30, NameLostWrites, Metric{Name: BudgetLostAckedWrites, Title: "acknowledged writes lost", Short: "lost", Unit: "writes", Trend: true, NoiseFloor: 0.5}, LostWrites)
}

// WriteRef names one write and what the final read saw of its key.
type WriteRef struct {
	Key          string `json:"key"`
	Value        string `json:"value"`
	Process      int    `json:"process"`
	ClientRegion string `json:"client_region"`
	// Outcome is the write's completion type (ok, fail, info; info also when never completed).
	Outcome string `json:"outcome"`
	// DBNode is the primary that acknowledged the write, if any.
	DBNode string `json:"db_node,omitempty"`
	// LSN is the acknowledged write's LSN, if any.
	LSN uint64 `json:"lsn,omitempty"`
	// Invoked is the invoke time; Completed the completion time (zero if never completed).
	Invoked   time.Time `json:"invoked"`
	Completed time.Time `json:"completed"`
	// InvokeIndex is the invoke op's Index in the history.
	InvokeIndex int64 `json:"invoke_index"`
	// Final is what the final read of the key returned: its value, "<missing>" or "<no final read>".
	Final string `json:"final"`
}

// LostWritesEvidence is what LostWrites and RPO found.
type LostWritesEvidence struct {
	// Acked is the number of acknowledged writes.
	Acked int `json:"acked"`
	// Lost are acknowledged writes whose key is missing from the final read or holds a value no
	// later (or concurrent) write of that key wrote, or that no node's final log holds; sorted by
	// invoke index.
	Lost []WriteRef `json:"lost"`
	// Unverified are acknowledged writes whose key has no final read at all.
	Unverified []WriteRef `json:"unverified"`
	// Recovered are indeterminate writes (info, or never completed) that are present.
	Recovered []WriteRef `json:"recovered"`
	// IndeterminateMissing counts indeterminate writes that are absent: allowed, they may never
	// have happened.
	IndeterminateMissing int `json:"indeterminate_missing"`
	// FailedButPresent are writes the client was told failed, yet their value is present: the
	// "fail" was wrong (it should have been "info"). Not lost; reported as a client bug.
	FailedButPresent []WriteRef `json:"failed_but_present"`
	// Unexpected are final values ("key=value") that no write of that key ever carried.
	Unexpected []string `json:"unexpected"`
	// FirstLostAck and LastLostAck bound the acknowledgements of the lost writes (zero if none).
	FirstLostAck time.Time `json:"first_lost_ack"`
	LastLostAck  time.Time `json:"last_lost_ack"`
	// RPOFault is the fault behind the loss: the latest fault that started at or before the last
	// lost ack or, failing that, the first fault after it (writes acknowledged but not yet
	// replicated when the fault hit). Empty when the history has no fault.
	RPOFault string `json:"rpo_fault,omitempty"`
	// RPOFrom and RPOTo bound the RPO window: from the earlier of the first lost ack and the
	// fault's start, to the later of the last lost ack and the fault's start (without a fault,
	// the span of the lost acks).
	RPOFrom time.Time `json:"rpo_from"`
	RPOTo   time.Time `json:"rpo_to"`
	// RPOSeconds is RPOTo - RPOFrom; 0 when nothing was lost.
	RPOSeconds float64 `json:"rpo_seconds"`
}

// LostWrites counts acknowledged ("ok") writes that the final read after heal does not show, in
// the manner of Jepsen's set checker. A write whose key reads back another value counts as lost
// unless another write of the same key that may have followed it (it had not completed before
// this one was invoked) wrote that value. Where the history holds the database nodes' final logs,
// an acknowledged write that no log holds at its LSN and epoch is lost too, which catches the
// writes of a key overwritten since (a later value hides them from the final read). Indeterminate writes that appear are "recovered", never
// lost; indeterminate or failed writes that are missing are fine. Measured is the number of lost
// writes, judged against BudgetLostAckedWrites.
//
// verdict.Unknown when the history has no final reads, no acknowledged writes, or when some acknowledged
// writes have no final read of their key and the lost ones alone are within budget.
func LostWrites(ops []history.Op, cfg Config) (Result, *LostWritesEvidence) {
	const unit = "writes"
	ev, err := analyseLost(ops)
	if err != "" {
		return cfg.unknown(NameLostWrites, unit, BudgetLostAckedWrites, err, ev), ev
	}
	clk := newClock(ops)
	r := Result{Name: NameLostWrites, Unit: unit, Measured: float64(len(ev.Lost)), Evidence: ev}
	if len(ev.Lost) == 0 {
		r.Detail = fmt.Sprintf("all %d acknowledged writes present in the final read", ev.Acked-len(ev.Unverified))
	} else {
		r.Detail = fmt.Sprintf("%d of %d acknowledged writes lost (acked %s..%s): %s", len(ev.Lost), ev.Acked,
			clk.at(ev.FirstLostAck), clk.at(ev.LastLostAck), list(refKeys(ev.Lost), cfg.maxExamples()))
	}
	if n := len(ev.Recovered); n > 0 {
		r.Detail += fmt.Sprintf("; %d indeterminate writes recovered", n)
	}
	if n := len(ev.FailedButPresent); n > 0 {
		r.Detail += fmt.Sprintf("; %d writes reported failed are present", n)
	}
	cfg.judge(&r, BudgetLostAckedWrites)
	if n := len(ev.Unverified); n > 0 && r.Verdict == verdict.Pass {
		r.Verdict = verdict.Unknown
		r.Detail += fmt.Sprintf("; %d acknowledged writes have no final read (%s), so loss cannot be ruled out",
			n, list(refKeys(ev.Unverified), cfg.maxExamples()))
	}
	return r, ev
}

// analyseLost computes the evidence, or says why it cannot.
func analyseLost(ops []history.Op) (*LostWritesEvidence, string) {
	pairs, err := history.Pairs(ops)
	if err != nil {
		return nil, "malformed history: " + err.Error()
	}
	final := map[string]history.Op{}
	for _, op := range history.Sorted(ops) {
		if op.Type == history.TypeFinal {
			final[op.Key] = op // the last final read of a key wins
		}
	}
	writesByKey := map[string][]history.Pair{}
	var writes []history.Pair
	for _, p := range pairs {
		if p.Invoke.F == history.FWrite {
			writes = append(writes, p)
			writesByKey[p.Key()] = append(writesByKey[p.Key()], p)
		}
	}
	ev := &LostWritesEvidence{}
	for _, w := range writes {
		if w.Acked() {
			ev.Acked++
		}
	}
	if len(final) == 0 {
		return ev, "no final read in the history: cannot tell which writes survived"
	}
	if ev.Acked == 0 {
		return ev, fmt.Sprintf("no acknowledged write in the history (%d writes attempted)", len(writes))
	}

	logged := history.FinalLogs(ops)
	for _, w := range writes {
		ref := writeRef(w)
		f, read := final[ref.Key]
		switch {
		case !read:
			ref.Final = "<no final read>"
		case !f.Found:
			ref.Final = "<missing>"
		default:
			ref.Final = f.Value
		}
		present := read && f.Found && f.Value == ref.Value
		switch w.Outcome() {
		case history.TypeOK:
			switch {
			case logged.Discarded(w):
				// No node's log holds it: lost, even where a later overwrite hides that from the
				// final read of a key written many times.
				ev.Lost = append(ev.Lost, ref)
			case !read:
				ev.Unverified = append(ev.Unverified, ref)
			case present:
			case f.Found && overwrittenLater(w, f.Value, writesByKey[ref.Key]):
			default:
				ev.Lost = append(ev.Lost, ref)
			}
		case history.TypeInfo:
			if present {
				ev.Recovered = append(ev.Recovered, ref)
			} else {
				ev.IndeterminateMissing++
			}
		case history.TypeFail:
			if present {
				ev.FailedButPresent = append(ev.FailedButPresent, ref)
			}
		}
	}
	for _, key := range sortedFinalKeys(final) {
		f := final[key]
		if !f.Found {
			continue
		}
		attempted := false
		for _, w := range writesByKey[key] {
			attempted = attempted || w.Value() == f.Value
		}
		if !attempted {
			ev.Unexpected = append(ev.Unexpected, key+"="+f.Value)
		}
	}

	for i, l := range ev.Lost {
		if i == 0 || l.Completed.Before(ev.FirstLostAck) {
			ev.FirstLostAck = l.Completed
		}
		if i == 0 || l.Completed.After(ev.LastLostAck) {
			ev.LastLostAck = l.Completed
		}
	}
	if len(ev.Lost) > 0 {
		ev.RPOFrom, ev.RPOTo = ev.FirstLostAck, ev.LastLostAck
		var cause *history.FaultWindow
		for _, fw := range history.FaultWindows(ops) {
			if !fw.Start.After(ev.LastLostAck) || cause == nil {
				cause = &fw
			}
		}
		if cause != nil {
			ev.RPOFault = cause.ID
			ev.RPOFrom, ev.RPOTo = earlier(ev.RPOFrom, cause.Start), later(ev.RPOTo, cause.Start)
		}
		ev.RPOSeconds = seconds(ev.RPOTo.Sub(ev.RPOFrom))
	}
	return ev, ""
}

// overwrittenLater reports whether value was written to w's key by another write that may have
// taken effect after w: one that had not completed before w was invoked.
func overwrittenLater(w history.Pair, value string, sameKey []history.Pair) bool {
	for _, o := range sameKey {
		if o.Invoke.Index == w.Invoke.Index || o.Value() != value {
			continue
		}
		if !o.Completed || !o.End().Before(w.Invoke.Time) {
			return true
		}
	}
	return false
}

func writeRef(w history.Pair) WriteRef {
	return WriteRef{
		Key: w.Key(), Value: w.Value(), Process: w.Invoke.Process, ClientRegion: w.Invoke.ClientRegion,
		Outcome: w.Outcome(), DBNode: w.Done.DBNode, LSN: w.Done.LSN,
		Invoked: w.Invoke.Time, Completed: w.End(), InvokeIndex: w.Invoke.Index,
	}
}

func refKeys(refs []WriteRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Key
	}
	return out
}

func sortedFinalKeys(m map[string]history.Op) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
