package check

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/drillworks/drill/drills/history"
)

// NameLinearizable names the check; BudgetNonLinearizableKeys is its budget.
const (
	NameLinearizable = "linearizable"
	// BudgetNonLinearizableKeys: keys whose operations have no linearization as a register.
	BudgetNonLinearizableKeys = "nonlinearizable_keys"
)

// DefaultLinearizabilityTimeout bounds the whole linearizability search of one history: past it the
// check says unknown rather than hold up the report (Config.LinearizabilityTimeout).
const DefaultLinearizabilityTimeout = 20 * time.Second

// FileLinearizability is the report file holding porcupine's visualization of the first key
// found not linearizable.
const FileLinearizability = "linearizability.html"

func init() {
	registerJudge(90, NameLinearizable, Metric{Name: BudgetNonLinearizableKeys, Title: "keys not linearizable (porcupine)", Short: "linear", Unit: "keys"}, Linearizable)
}

// LinearizableEvidence is what Linearizable found.
type LinearizableEvidence struct {
	// Keys is the number of keys checked (those with at least one read or final read).
	Keys int `json:"keys"`
	// Illegal counts the keys with no linearization.
	Illegal int `json:"illegal"`
	// Examples are the first such keys, in key order (at most Config.MaxExamples).
	Examples []string `json:"examples"`
	// TimedOut is set when the search ran out of time before every key was checked.
	TimedOut bool `json:"timed_out"`
	// visualization is porcupine's HTML for the first illegal key.
	visualization []byte
}

// Attachment is porcupine's visualization of the first illegal key, for the report directory
// (nil when every key was linearizable).
func (e *LinearizableEvidence) Attachment() (string, []byte) {
	if e == nil || len(e.visualization) == 0 {
		return "", nil
	}
	return FileLinearizability, e.visualization
}

// regState is the model of one key: a register that starts empty.
type regState struct {
	found bool
	value string
}

// registerOp is a write of Value, or a read (Write false).
type registerOp struct {
	write bool
	value string
}

var registerModel = porcupine.Model{
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(regState), input.(registerOp)
		if in.write {
			return true, regState{found: true, value: in.value}
		}
		out := output.(regState)
		return out == st, st
	},
	Equal: func(a, b any) bool { return a.(regState) == b.(regState) },
	DescribeOperation: func(input, output any) string {
		in := input.(registerOp)
		if in.write {
			return fmt.Sprintf("write %q", in.value)
		}
		if out := output.(regState); out.found {
			return fmt.Sprintf("read → %q", out.value)
		}
		return "read → not found"
	},
	DescribeState: func(state any) string {
		if st := state.(regState); st.found {
			return fmt.Sprintf("%q", st.value)
		}
		return "(empty)"
	},
}

// Linearizable checks every key's operations against a register with porcupine. Indeterminate
// writes (info, or never completed) are treated as Jepsen does: they may take effect at any point
// after their invocation, or never; failed writes never took effect; reads that did not return
// constrain nothing. Final reads are reads at their point in the history. Times are the history's
// indexes, its authoritative order. Measured is the number of keys with no linearization, judged
// against BudgetNonLinearizableKeys; unknown when no key was read, or when the search ran out of
// Config.LinearizabilityTimeout.
func Linearizable(ops []history.Op, cfg Config) (Result, *LinearizableEvidence) {
	const unit = "keys"
	pairs, err := history.Pairs(ops)
	if err != nil {
		return cfg.unknown(NameLinearizable, unit, BudgetNonLinearizableKeys, "malformed history: "+err.Error(), nil), nil
	}
	byKey := map[string][]porcupine.Operation{}
	read := map[string]bool{}
	clients := map[int]int{} // process → dense client id (porcupine's visualization wants them)
	client := func(p int) int {
		if id, ok := clients[p]; ok {
			return id
		}
		clients[p] = len(clients)
		return clients[p]
	}
	for _, p := range pairs {
		key := p.Key()
		op := porcupine.Operation{ClientId: client(p.Invoke.Process), Call: p.Invoke.Index, Return: p.Done.Index}
		switch {
		case p.Invoke.F == history.FWrite && p.Outcome() == history.TypeFail:
			continue // definitely never happened
		case p.Invoke.F == history.FWrite:
			op.Input, op.Output = registerOp{write: true, value: p.Invoke.Value}, regState{}
			if p.Outcome() != history.TypeOK {
				op.Return = math.MaxInt64 // may take effect at any time, or never
			}
		case p.Outcome() == history.TypeOK:
			op.Input, op.Output = registerOp{}, regState{found: p.Done.Found, value: p.Done.Value}
			read[key] = true
		default:
			continue // a read that did not return says nothing
		}
		byKey[key] = append(byKey[key], op)
	}
	finalClient := len(clients)
	for _, op := range ops {
		if op.Type != history.TypeFinal {
			continue
		}
		byKey[op.Key] = append(byKey[op.Key], porcupine.Operation{ClientId: finalClient, Input: registerOp{},
			Output: regState{found: op.Found, value: op.Value}, Call: op.Index, Return: op.Index})
		read[op.Key] = true
	}
	keys := make([]string, 0, len(read))
	for k := range read {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return cfg.unknown(NameLinearizable, unit, BudgetNonLinearizableKeys, "no key was read: nothing to linearize", nil), nil
	}
	timeout := cfg.LinearizabilityTimeout
	if timeout <= 0 {
		timeout = DefaultLinearizabilityTimeout
	}
	deadline := time.Now().Add(timeout)
	ev := &LinearizableEvidence{}
	for _, k := range keys {
		left := time.Until(deadline)
		if left <= 0 {
			ev.TimedOut = true
			break
		}
		res, info := porcupine.CheckOperationsVerbose(registerModel, byKey[k], left)
		switch res {
		case porcupine.Unknown:
			ev.TimedOut = true
		case porcupine.Illegal:
			ev.Illegal++
			if len(ev.Examples) < cfg.maxExamples() {
				ev.Examples = append(ev.Examples, k)
			}
			if ev.visualization == nil {
				var buf bytes.Buffer
				if err := porcupine.Visualize(registerModel, info, &buf); err == nil {
					ev.visualization = buf.Bytes()
				}
			}
		}
		if ev.TimedOut {
			break
		}
		ev.Keys++
	}
	if ev.TimedOut && ev.Illegal == 0 {
		return cfg.unknown(NameLinearizable, unit, BudgetNonLinearizableKeys,
			fmt.Sprintf("search ran out of its %s after %d of %d keys (none illegal so far)", timeout, ev.Keys, len(keys)), ev), ev
	}
	r := Result{Name: NameLinearizable, Unit: unit, Measured: float64(ev.Illegal), Evidence: ev}
	r.Detail = fmt.Sprintf("%d of %d read keys not linearizable", ev.Illegal, ev.Keys)
	if ev.Illegal > 0 {
		r.Detail += fmt.Sprintf(": %s (porcupine's view of the first in %s)", list(ev.Examples, len(ev.Examples)), FileLinearizability)
	}
	if ev.TimedOut {
		r.Detail += fmt.Sprintf("; search stopped after %s, %d keys unchecked", timeout, len(keys)-ev.Keys)
	}
	cfg.judge(&r, BudgetNonLinearizableKeys)
	return r, ev
}
