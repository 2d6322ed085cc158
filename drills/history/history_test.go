package history

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func TestRecorderConcurrentAndReadBack(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("k-%d-%d", w, i)
				if _, err := rec.Append(Op{Type: TypeInvoke, F: FWrite, Process: w, ClientRegion: "us-east", Key: key, Value: "v", Time: at(float64(i))}); err != nil {
					t.Errorf("append: %v", err)
				}
				if _, err := rec.Append(Op{Type: TypeOK, F: FWrite, Process: w, ClientRegion: "us-east", Key: key, Value: "v", Time: at(float64(i) + 0.5), DBNode: "us-east-db-1", LSN: uint64(i + 1), Epoch: 1}); err != nil {
					t.Errorf("append: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	mem := rec.Ops()
	if len(mem) != 2*workers*each {
		t.Fatalf("in memory: %d ops, want %d", len(mem), 2*workers*each)
	}
	for i, op := range mem {
		if op.Index != int64(i) {
			t.Fatalf("op %d has index %d", i, op.Index)
		}
	}
	if got := strings.Count(buf.String(), "\n"); got != len(mem) {
		t.Fatalf("%d lines written, want %d", got, len(mem))
	}
	read, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != len(mem) {
		t.Fatalf("read %d ops, want %d", len(read), len(mem))
	}
	for i := range read {
		if !read[i].Time.Equal(mem[i].Time) || read[i].Key != mem[i].Key || read[i].Index != mem[i].Index || read[i].LSN != mem[i].LSN {
			t.Fatalf("op %d differs after round trip: %+v vs %+v", i, read[i], mem[i])
		}
	}
	pairs, err := Pairs(read)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != workers*each {
		t.Fatalf("%d pairs, want %d", len(pairs), workers*each)
	}
	for _, p := range pairs {
		if !p.Acked() || p.Done.Key != p.Invoke.Key {
			t.Fatalf("bad pair %+v", p)
		}
	}
}

func TestRecorderStampsTimeAndKeepsOpsOnWriteError(t *testing.T) {
	rec := NewRecorder(failingWriter{})
	before := time.Now()
	op, err := rec.Append(Op{Type: TypeLag, Node: "eu-west-db-1", LagMS: 12})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want the write error, got %v", err)
	}
	if op.Time.Before(before) {
		t.Fatalf("time not stamped: %v", op.Time)
	}
	if rec.Err() == nil || len(rec.Ops()) != 1 {
		t.Fatalf("Err=%v ops=%d, want the error remembered and the op kept", rec.Err(), len(rec.Ops()))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"syntax", `{"index":0,"type":"ok"` + "\n", "history line 1"},
		{"unknown field", `{"index":0,"type":"ok","bogus":1}`, `history line 1: json: unknown field "bogus"`},
		{"unknown type", "\n" + `{"index":0,"type":"maybe"}`, `history line 2: unknown op type "maybe"`},
		{"two values", `{"index":0,"type":"ok"} {"index":1,"type":"ok"}`, "history line 1: more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReadSortsByIndexAndSkipsBlankLines(t *testing.T) {
	in := `{"index":2,"type":"lag","time":"2026-11-02T10:00:02Z","lag_ms":0}` + "\n\n" +
		`{"index":1,"type":"dns","process":3,"time":"2026-11-02T10:00:01Z","dns_answer":["127.77.2.10"],"dns_region":"eu-west"}` + "\n"
	ops, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].Index != 1 || ops[1].Index != 2 || ops[0].DNSAnswer[0] != "127.77.2.10" {
		t.Fatalf("got %+v", ops)
	}
}

func TestPairs(t *testing.T) {
	w := func(idx int64, typ string, p int, key string) Op {
		return Op{Index: idx, Type: typ, F: FWrite, Process: p, Key: key, Value: "v-" + key, Time: at(float64(idx))}
	}
	t.Run("outcomes", func(t *testing.T) {
		ops := []Op{
			w(0, TypeInvoke, 1, "a"), w(1, TypeInvoke, 2, "b"),
			{Index: 2, Type: TypeFault, F: FStart, Fault: "blackhole:us-east"}, // not a client op
			w(3, TypeOK, 2, "b"), w(4, TypeFail, 1, "a"),
			w(5, TypeInvoke, 1, "c"), w(6, TypeInfo, 1, "c"),
			w(7, TypeInvoke, 3, "d"), // never completed
		}
		pairs, err := Pairs(ops)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range pairs {
			got = append(got, fmt.Sprintf("%s:%s:%v", p.Key(), p.Outcome(), p.Completed))
		}
		want := "a:fail:true b:ok:true c:info:true d:info:false"
		if strings.Join(got, " ") != want {
			t.Fatalf("got %v, want %s", got, want)
		}
		if !pairs[3].Indeterminate() || !pairs[3].End().IsZero() || pairs[1].Value() != "v-b" {
			t.Fatalf("pair helpers wrong: %+v", pairs)
		}
	})
	for _, tc := range []struct {
		name string
		ops  []Op
		want string
	}{
		{"completion without invoke", []Op{w(0, TypeOK, 1, "a")}, "op 0: process 1 completed (ok) an op it never invoked"},
		{"double invoke", []Op{w(0, TypeInvoke, 1, "a"), w(1, TypeInvoke, 1, "b")}, "op 1: process 1 invoked while op 0 is pending"},
		{"op after info", []Op{w(0, TypeInvoke, 1, "a"), w(1, TypeInfo, 1, "a"), w(2, TypeInvoke, 1, "b")}, "op 2: process 1 issued an op after its op 1 ended info"},
		{"f mismatch", []Op{w(0, TypeInvoke, 1, "a"), {Index: 1, Type: TypeOK, F: FRead, Process: 1}}, `op 1: process 1 completed "read" but invoked "write" (op 0)`},
		{"bad f", []Op{{Index: 0, Type: TypeInvoke, F: "cas", Process: 1}}, `op 0: client op with f "cas"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Pairs(tc.ops)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFaultWindows(t *testing.T) {
	ops := []Op{
		{Index: 0, Type: TypeFault, F: FStart, Fault: "blackhole:us-east", FaultKind: fault.KindBlackhole, Region: "us-east", Time: at(10)},
		{Index: 1, Type: TypeFault, F: FStart, Fault: "latency:wan", FaultKind: fault.KindLatency, Time: at(12)},
		{Index: 2, Type: TypeFault, F: FStart, Fault: "blackhole:us-east", FaultKind: fault.KindBlackhole, Region: "us-east", Time: at(13)}, // already active: ignored
		{Index: 3, Type: TypeFault, F: FStop, Fault: "kill:x", Time: at(14)},                                                                // never started: ignored
		{Index: 4, Type: TypeFault, F: FStop, Fault: "blackhole:us-east", Time: at(40)},
		{Index: 5, Type: TypeFault, F: FStart, Fault: "kill:us-east-db-1", FaultKind: fault.KindKill, Region: "us-east", Node: "us-east-db-1", Time: at(50)},
	}
	ws := FaultWindows(ops)
	if len(ws) != 3 {
		t.Fatalf("got %d windows: %+v", len(ws), ws)
	}
	bh, lat, kill := ws[0], ws[1], ws[2]
	if bh.ID != "blackhole:us-east" || !bh.Stopped || !bh.End.Equal(at(40)) || !bh.IsRegionOutage() || bh.Target() != "us-east" {
		t.Fatalf("blackhole window wrong: %+v", bh)
	}
	if lat.Stopped || lat.IsRegionOutage() || !lat.Contains(at(1e6)) || lat.Contains(at(11)) {
		t.Fatalf("latency window wrong: %+v", lat)
	}
	if kill.IsRegionOutage() || kill.Target() != "us-east-db-1" {
		t.Fatalf("node kill is not a region outage: %+v", kill)
	}
	if bh.Contains(at(40)) || !bh.Contains(at(10)) {
		t.Fatal("window bounds are [start, end)")
	}
}

func TestClientRegionsAndSpan(t *testing.T) {
	ops := []Op{
		{Type: TypeInvoke, F: FWrite, ClientRegion: "us-east", Time: at(3)},
		{Type: TypeDNS, ClientRegion: "eu-west", Time: at(1)},
		{Type: TypeLag, Region: "ap-south", Time: at(9)},
	}
	if got := strings.Join(ClientRegions(ops), ","); got != "eu-west,us-east" {
		t.Fatalf("ClientRegions = %s", got)
	}
	first, last := Span(ops)
	if !first.Equal(at(1)) || !last.Equal(at(9)) {
		t.Fatalf("Span = %v %v", first, last)
	}
}

// TestLossFaultRecorded: a loss fault is a known kind, reads back from a history file and is
// paired into a window, but is not a region outage (GeoDNS is not expected to move users).
func TestLossFaultRecorded(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	for _, op := range []Op{
		{Type: TypeFault, F: FStart, Fault: "loss:us-east", FaultKind: fault.KindLoss, Region: "us-east", Time: at(5)},
		{Type: TypeFault, F: FStop, Fault: "loss:us-east", FaultKind: fault.KindLoss, Region: "us-east", Time: at(25)},
	} {
		if _, err := rec.Append(op); err != nil {
			t.Fatal(err)
		}
	}
	ops, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ws := FaultWindows(ops)
	if len(ws) != 1 || ws[0].Kind != fault.KindLoss || !ws[0].Stopped || ws[0].Target() != "us-east" {
		t.Fatalf("loss windows %+v", ws)
	}
	if ws[0].IsRegionOutage() || fault.TakesRegionOut(fault.Fault{Kind: fault.KindLoss, Region: "us-east"}) {
		t.Fatal("packet loss on a region is not a region outage")
	}
}
