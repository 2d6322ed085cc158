package check

import (
	"testing"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

func TestOnePrimaryPerEpoch(t *testing.T) {
	ack := func(h *hist, p int, key, db string, epoch uint64, sec float64) {
		h.add(history.Op{Type: history.TypeInvoke, F: history.FWrite, Process: p, Key: key, Value: "v"}, sec)
		h.add(history.Op{Type: history.TypeOK, F: history.FWrite, Process: p, Key: key, Value: "v", DBNode: db, Epoch: epoch, LSN: 1}, sec+0.1)
	}
	h := &hist{}
	ack(h, 1, "a", "us-db", 1, 0)
	h.add(history.Op{Type: history.TypeEpoch, Node: "eu-db", Epoch: 2}, 1)
	ack(h, 2, "b", "eu-db", 2, 2)
	r := runRegistered(t, NameOnePrimaryPerEpoch, h.build(), Config{})
	if r.Verdict != verdict.Pass || r.Measured != 0 {
		t.Fatalf("one primary per epoch: %+v", r)
	}
	// Two nodes acknowledge writes at epoch 2 (what finding 1 allowed): judged against 0 without
	// a budget.
	ack(h, 3, "c", "ap-db", 2, 3)
	r = runRegistered(t, NameOnePrimaryPerEpoch, h.build(), Config{})
	if r.Verdict != verdict.Fail || r.Measured != 1 || r.Detail != "1 of 2 epochs had more than one primary: epoch 2: ap-db+eu-db" {
		t.Fatalf("two primaries at epoch 2: %+v", r)
	}
	if r := runRegistered(t, NameOnePrimaryPerEpoch, nil, Config{}); r.Verdict != verdict.Unknown {
		t.Fatalf("empty history: %+v", r)
	}
}
