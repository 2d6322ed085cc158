package db

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
)

// TestAPIRefusesUnsignedCalls: without the run's db key nobody reads the dataset, writes, takes a
// lease or pulls the log; /metrics stays open. Octet 20.
func TestAPIRefusesUnsignedCalls(t *testing.T) {
	c := newCluster(t, 20)
	c.voters = []string{"p"}
	c.addNode("p", "a", 1, true, func(cfg *Config) { cfg.Peers = map[string]string{"p": "a", "r": "b"} })
	p := c.start("p")
	if _, err := putWithRetry(c.client("p"), "secret-key", "secret-value"); err != nil {
		t.Fatal(err)
	}
	base := c.direct["p"]
	for _, call := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/wal?from=1", ""},
		{http.MethodGet, "/v1/kv/secret-key", ""},
		{http.MethodPut, "/v1/kv/secret-key", "overwritten"},
		{http.MethodPost, "/v1/lease", `{"candidate":"p","epoch":18446744073709551615,"duration_ms":60000}`},
		{http.MethodGet, "/v1/status", ""},
	} {
		req, _ := http.NewRequest(call.method, base+call.path, strings.NewReader(call.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || bytes.Contains(b, []byte("secret-value")) {
			t.Errorf("unsigned %s %s: %s %q", call.method, call.path, resp.Status, b)
		}
	}
	// Signed with the run's key but for another node (captured on its way to r and replayed to
	// p), or for no node: refused too.
	for _, to := range []string{"r", ""} {
		cl := &Client{BaseURL: base, HTTP: peerauth.ClientFor(testAuthKey, 2*time.Second, func(string) string { return to })}
		if _, err := cl.Put(t.Context(), "secret-key", "replayed"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("a write signed for node %q, sent to p: %v, want refused with 401", to, err)
		}
	}
	if got, err := c.client("p").Get(t.Context(), "secret-key", 0); err != nil || got.Value != "secret-value" {
		t.Fatalf("the value changed: %+v %v", got, err)
	}
	if p.State().Epoch != 1 {
		t.Fatalf("epoch %d after the refused lease request", p.State().Epoch)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestSignedButForgedRequestsRefused: a holder of the key (a compromised container) still cannot
// take a lease under a made-up name, push the epoch out of reach, or fake a semi-sync
// acknowledgement for a replica the plan does not have. Octet 21.
func TestSignedButForgedRequestsRefused(t *testing.T) {
	c := newCluster(t, 21)
	c.voters = []string{"p"}
	peers := map[string]string{"p": "a", "r": "b"}
	c.addNode("p", "a", 1, true, func(cfg *Config) {
		cfg.Peers, cfg.Replication = peers, ReplicationSemiSync
		cfg.SemiSyncTimeout = 300 * time.Millisecond
	})
	p := c.start("p")
	hc := peerauth.ClientFor(testAuthKey, 2*time.Second, func(string) string { return "p" })
	vote := func(candidate string, epoch uint64) (int, LeaseResponse) {
		t.Helper()
		b, _ := json.Marshal(LeaseRequest{Candidate: candidate, Epoch: epoch, DurationMS: 60_000})
		resp, err := hc.Post(c.direct["p"]+"/v1/lease", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out LeaseResponse
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := vote("mallory", 2); code != http.StatusBadRequest {
		t.Errorf("lease for a made-up candidate: HTTP %d", code)
	}
	if code, _ := vote("r", 18446744073709551615); code != http.StatusBadRequest {
		t.Errorf("lease at epoch 2^64-1: HTTP %d", code)
	}
	if code, _ := vote("r", 1+MaxEpochLead+1); code != http.StatusBadRequest {
		t.Errorf("lease far above the highest epoch: HTTP %d", code)
	}
	if _, st := vote("p", 1); st.Epoch != 1 {
		t.Fatalf("the voter's highest epoch moved to %d on refused requests", st.Epoch)
	}
	// A pull posing as a replica the plan does not have (or from the wrong region) is refused,
	// so it cannot acknowledge semi-sync writes.
	for _, q := range []string{"replica=mallory&region=b", "replica=r&region=a", "replica=p&region=a"} {
		resp, err := hc.Get(c.direct["p"] + "/v1/wal?from=1&wait_ms=0&" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("pull as %s: HTTP %d, want 403", q, resp.StatusCode)
		}
	}
	// So a semi-sync write, with no real replica, is not acknowledged: it times out waiting.
	waitFor(t, 5*time.Second, "p to hold its lease", func() bool { return p.State().HasLease })
	_, err := c.client("p").Put(t.Context(), "k", "v")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("semi-sync write with only forged replicas: %v, want a semi-sync timeout", err)
	}
}
