package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/peerauth"
)

// The witness as the agent runs it (serveWitness): unsigned calls, calls signed with another
// purpose's key, leases for a node the plan does not have and epochs far ahead are all refused,
// and its highest epoch does not move.
func TestWitnessRefusesForgedCalls(t *testing.T) {
	p := testPlan(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWitness(ctx, p, "witness", t.TempDir(), addr, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	forWitness := func(string) string { return "witness" }
	signed := peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeDB), 2*time.Second, forWitness)
	wrongPurpose := peerauth.Client(peerauth.Derive(p.Secret, peerauth.PurposeControl), 2*time.Second, nil)
	vote := func(c *http.Client, candidate string, epoch uint64) (int, db.LeaseResponse) {
		t.Helper()
		b, _ := json.Marshal(db.LeaseRequest{Candidate: candidate, Epoch: epoch, DurationMS: 60_000})
		var resp *http.Response
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err = c.Post("http://"+addr+"/v1/lease", "application/json", bytes.NewReader(b))
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // the witness is still starting to listen
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out db.LeaseResponse
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := vote(http.DefaultClient, "us-east-db-1", 5); code != http.StatusUnauthorized {
		t.Errorf("unsigned lease request: HTTP %d, want 401", code)
	}
	// A client with the control key cannot verify the witness's answer either: its 401 comes
	// back as an error.
	b, _ := json.Marshal(db.LeaseRequest{Candidate: "us-east-db-1", Epoch: 5, DurationMS: 60_000})
	if _, err := wrongPurpose.Post("http://"+addr+"/v1/lease", "application/json", bytes.NewReader(b)); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Errorf("lease request signed with the control key: %v, want refused with 401", err)
	}
	// Signed with the db key, but for another voter: a vote request captured on its way to a db
	// node and replayed here is refused.
	forDB := peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeDB), 2*time.Second, func(string) string { return "us-east-db-1" })
	if _, err := forDB.Post("http://"+addr+"/v1/lease", "application/json", bytes.NewReader(b)); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Errorf("lease request signed for another node: %v, want refused with 401", err)
	}
	if code, _ := vote(signed, "mallory", 2); code != http.StatusBadRequest {
		t.Errorf("lease for a node the plan does not have: HTTP %d, want 400", code)
	}
	if code, _ := vote(signed, "us-east-db-1", 18446744073709551615); code != http.StatusBadRequest {
		t.Errorf("lease at epoch 2^64-1: HTTP %d, want 400", code)
	}
	if code, _ := vote(signed, "us-east-db-1", db.MaxEpochLead+2); code != http.StatusBadRequest {
		t.Errorf("lease far above the highest epoch: HTTP %d, want 400", code)
	}
	code, st := vote(signed, "us-east-db-1", 1)
	if code != http.StatusOK || !st.Granted || st.Epoch != 1 {
		t.Errorf("the plan's node at epoch 1: HTTP %d %+v, want granted at epoch 1 (the refusals moved nothing)", code, st)
	}
}
