package check

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// t0 is the start of every hand-made history.
var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// never marks an operation that never completed, or a fault never healed.
const never = -1.0

// hist builds a hand-made history: ops are added out of order, then sorted by time (ties keep
// the order they were added in) and numbered.
type hist struct {
	ops []history.Op
}

func (h *hist) add(op history.Op, sec float64) {
	op.Time = at(sec)
	h.ops = append(h.ops, op)
}

// write records a write of key (value "v-"+key) by process p; outcome "" means never completed.
func (h *hist) write(p int, region, key string, inv float64, outcome string, done float64, db string, lsn uint64) {
	h.writeValue(p, region, key, "v-"+key, inv, outcome, done, db, lsn)
}

func (h *hist) writeValue(p int, region, key, value string, inv float64, outcome string, done float64, db string, lsn uint64) {
	h.add(history.Op{Type: history.TypeInvoke, F: history.FWrite, Process: p, ClientRegion: region, Key: key, Value: value}, inv)
	if outcome == "" {
		return
	}
	op := history.Op{Type: outcome, F: history.FWrite, Process: p, ClientRegion: region, Key: key, Value: value}
	if outcome == history.TypeOK {
		op.DBNode, op.LSN, op.Epoch = db, lsn, 1
	} else {
		op.Error = "boom"
	}
	h.add(op, done)
}

// writes records one process writing unique keys every step seconds in [from, to], each acked
// by db 0.1 s after its invoke.
func (h *hist) writes(p int, region, db string, from, to, step float64) {
	for i := 0; ; i++ {
		t := from + float64(i)*step
		if t > to+1e-9 {
			return
		}
		h.write(p, region, fmt.Sprintf("%s-p%d-%d", db, p, i), t, history.TypeOK, t+0.1, db, uint64(i+1))
	}
}

func (h *hist) read(p int, region, key string, inv float64, outcome string, done float64, found bool, keyLSN uint64, value string) {
	h.add(history.Op{Type: history.TypeInvoke, F: history.FRead, Process: p, ClientRegion: region, Key: key}, inv)
	if outcome == "" {
		return
	}
	op := history.Op{Type: outcome, F: history.FRead, Process: p, ClientRegion: region, Key: key}
	if outcome == history.TypeOK {
		op.Found, op.KeyLSN, op.Value, op.DBNode = found, keyLSN, value, region+"-db-1"
	}
	h.add(op, done)
}

func (h *hist) fault(id string, kind fault.Kind, region, node string, start, stop float64) {
	h.add(history.Op{Type: history.TypeFault, F: history.FStart, Fault: id, FaultKind: kind, Region: region, Node: node}, start)
	if stop != never {
		h.add(history.Op{Type: history.TypeFault, F: history.FStop, Fault: id, FaultKind: kind, Region: region, Node: node}, stop)
	}
}

func (h *hist) dns(p int, region string, sec float64, to string) {
	op := history.Op{Type: history.TypeDNS, Process: p, ClientRegion: region, DNSRegion: to}
	if to == "" {
		op.Error = "i/o timeout"
	} else {
		op.DNSAnswer = []string{"127.77.x.10"}
	}
	h.add(op, sec)
}

func (h *hist) lag(region string, sec float64, ms int64) {
	h.add(history.Op{Type: history.TypeLag, Region: region, Node: region + "-db-1", LagMS: ms}, sec)
}

func (h *hist) final(key, value string, found bool, sec float64) {
	h.add(history.Op{Type: history.TypeFinal, Key: key, Value: value, Found: found}, sec)
}

func (h *hist) build() []history.Op {
	out := append([]history.Op(nil), h.ops...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	for i := range out {
		out[i].Index = int64(i)
	}
	return out
}

func budgets(kv ...any) Config {
	b := Budgets{}
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case int:
			b[kv[i].(string)] = float64(v)
		case float64:
			b[kv[i].(string)] = v
		}
	}
	return Config{Budgets: b}
}

func keysOf(refs []WriteRef) string {
	return strings.Join(refKeys(refs), ",")
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

func expectVerdict(t *testing.T, r Result, want verdict.Verdict, measured float64) {
	t.Helper()
	if r.Verdict != want || !near(r.Measured, measured) {
		t.Fatalf("%s: verdict %s measured %g, want %s %g (detail: %s)", r.Name, r.Verdict, r.Measured, want, measured, r.Detail)
	}
	if r.NoData {
		t.Fatalf("%s: measured, yet marked no data", r.Name)
	}
	if r.Detail == "" {
		t.Fatalf("%s: empty detail", r.Name)
	}
}
