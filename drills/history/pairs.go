package history

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/fault"
)

// Pair is one client operation: its invoke entry and its completion.
type Pair struct {
	// Invoke is the invoke entry.
	Invoke Op
	// Done is the completion (ok, fail or info); the zero Op when the history ended before the
	// operation completed.
	Done Op
	// Completed is false when the history holds no completion for the invoke.
	Completed bool
}

// Outcome is the completion type; an operation never completed is indeterminate (TypeInfo).
func (p Pair) Outcome() string {
	if !p.Completed {
		return TypeInfo
	}
	return p.Done.Type
}

// Acked reports whether the operation definitely happened (completed "ok").
func (p Pair) Acked() bool { return p.Outcome() == TypeOK }

// Indeterminate reports whether the outcome is unknown ("info" or never completed).
func (p Pair) Indeterminate() bool { return p.Outcome() == TypeInfo }

// Key is the key of the operation (from the invoke, or the completion if the invoke had none).
func (p Pair) Key() string {
	if p.Invoke.Key != "" {
		return p.Invoke.Key
	}
	return p.Done.Key
}

// Value is the value written (from the invoke) or, for a read, the value returned.
func (p Pair) Value() string {
	if p.Invoke.F == FRead {
		return p.Done.Value
	}
	if p.Invoke.Value != "" {
		return p.Invoke.Value
	}
	return p.Done.Value
}

// End is the completion time; the zero time when the operation never completed.
func (p Pair) End() time.Time { return p.Done.Time }

// Pairs matches every client invoke with the next completion of the same process, and returns
// the operations in invoke order. ops need not be sorted (they are ordered by Index).
//
// It is an error (naming the op's Index) for a process to complete an operation it never invoked,
// to invoke while an operation is pending, to complete with a different f than it invoked, or to
// issue anything after an operation of it ended "info" (such a process is crashed for good).
// An invoke left pending at the end of the history gives a Pair with Completed false.
func Pairs(ops []Op) ([]Pair, error) {
	pending := map[int]int{} // process -> index into out of its pending invoke
	crashed := map[int]int64{}
	ops = Sorted(ops)
	invokes := 0
	for i := range ops {
		if ops[i].Type == TypeInvoke {
			invokes++
		}
	}
	out := make([]Pair, 0, invokes)
	for _, op := range ops {
		if !op.IsClient() {
			continue
		}
		if at, ok := crashed[op.Process]; ok {
			return nil, fmt.Errorf("op %d: process %d issued an op after its op %d ended info", op.Index, op.Process, at)
		}
		if op.Type == TypeInvoke {
			if i, busy := pending[op.Process]; busy {
				return nil, fmt.Errorf("op %d: process %d invoked while op %d is pending", op.Index, op.Process, out[i].Invoke.Index)
			}
			if op.F != FWrite && op.F != FRead && op.F != FEnqueue {
				return nil, fmt.Errorf("op %d: client op with f %q (want write, read or enqueue)", op.Index, op.F)
			}
			pending[op.Process] = len(out)
			out = append(out, Pair{Invoke: op})
			continue
		}
		i, busy := pending[op.Process]
		if !busy {
			return nil, fmt.Errorf("op %d: process %d completed (%s) an op it never invoked", op.Index, op.Process, op.Type)
		}
		if op.F != out[i].Invoke.F {
			return nil, fmt.Errorf("op %d: process %d completed %q but invoked %q (op %d)", op.Index, op.Process, op.F, out[i].Invoke.F, out[i].Invoke.Index)
		}
		out[i].Done, out[i].Completed = op, true
		delete(pending, op.Process)
		if op.Type == TypeInfo {
			crashed[op.Process] = op.Index
		}
	}
	return out, nil
}

// FaultWindow is one fault from its start to its stop.
type FaultWindow struct {
	// ID is the fault id, e.g. blackhole:us-east.
	ID string `json:"id"`
	// Kind is the fault kind.
	Kind fault.Kind `json:"kind"`
	// Region is the target region, if any.
	Region string `json:"region,omitempty"`
	// Node is the target node, if any.
	Node string `json:"node,omitempty"`
	// Params are the fault's settings in words (Op.FaultParams), if any.
	Params string `json:"params,omitempty"`
	// Start is when the fault started.
	Start time.Time `json:"start"`
	// End is when it stopped; the zero time while it never stopped.
	End time.Time `json:"end"`
	// Stopped reports whether the history holds the fault's stop.
	Stopped bool `json:"stopped"`
}

// Target is what the fault was aimed at: the node, else the region, else "".
func (w FaultWindow) Target() string {
	if w.Node != "" {
		return w.Node
	}
	return w.Region
}

// Contains reports whether t is inside the window (a window never stopped runs forever).
func (w FaultWindow) Contains(t time.Time) bool {
	return !t.Before(w.Start) && (!w.Stopped || t.Before(w.End))
}

// IsRegionOutage reports whether the fault takes a whole region away from its users, so GeoDNS is
// expected to send them elsewhere (its kind's descriptor says, for its target).
func (w FaultWindow) IsRegionOutage() bool {
	return w.Region != "" && w.Node == "" && fault.TakesRegionOut(fault.Fault{ID: w.ID, Kind: w.Kind, Region: w.Region})
}

// FaultWindows pairs every fault start with the next stop of the same fault id, in start order.
// A start of an id that is already active, and a stop of an id that is not, are ignored: the
// first start and the first stop win.
func FaultWindows(ops []Op) []FaultWindow {
	var out []FaultWindow
	active := map[string]int{}
	for _, op := range Sorted(ops) {
		if op.Type != TypeFault {
			continue
		}
		i, isActive := active[op.Fault]
		switch {
		case op.F == FStart && !isActive:
			active[op.Fault] = len(out)
			out = append(out, FaultWindow{ID: op.Fault, Kind: op.FaultKind, Region: op.Region, Node: op.Node, Params: op.FaultParams, Start: op.Time})
		case op.F == FStop && isActive:
			out[i].End, out[i].Stopped = op.Time, true
			delete(active, op.Fault)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Logged is the set of writes the database nodes' final logs hold (the log ops), each named by its
// LSN, epoch and key: a write acknowledged at (LSN, epoch) survived iff some node's final log holds
// that entry for its key, however often the key was overwritten since.
type Logged struct {
	entries map[LogEntry]bool
	perKey  map[string]int // distinct entries per key
	nodes   int
}

// FinalLogs collects the log ops of a history.
func FinalLogs(ops []Op) Logged {
	l := Logged{entries: map[LogEntry]bool{}, perKey: map[string]int{}}
	for _, op := range ops {
		if op.Type != TypeLog {
			continue
		}
		l.nodes++
		for _, e := range op.Log {
			if !l.entries[e] {
				l.entries[e] = true
				l.perKey[e.Key]++
			}
		}
	}
	return l
}

// Writes is how many distinct writes of key the final logs hold (each its own LSN).
func (l Logged) Writes(key string) int { return l.perKey[key] }

// KeysWithPrefix calls fn with every key the final logs hold that starts with prefix and how
// many distinct writes of it they hold.
func (l Logged) KeysWithPrefix(prefix string, fn func(key string, writes int)) {
	for k, n := range l.perKey {
		if strings.HasPrefix(k, prefix) {
			fn(k, n)
		}
	}
}

// Known reports whether the history holds any node's final log.
func (l Logged) Known() bool { return l.nodes > 0 }

// Holds reports whether some final log holds the write of key acknowledged at lsn in epoch.
func (l Logged) Holds(lsn, epoch uint64, key string) bool {
	return l.entries[LogEntry{LSN: lsn, Epoch: epoch, Key: key}]
}

// Discarded reports whether an acknowledged write (a write pair completed ok) is missing from
// every final log: the logs are known and hold no entry at its LSN and epoch for its key.
func (l Logged) Discarded(w Pair) bool {
	return l.Known() && w.Acked() && w.Done.LSN > 0 && !l.Holds(w.Done.LSN, w.Done.Epoch, w.Key())
}
