package db

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestConsistentReadNeedsTheLease: a consistent read (read_from: primary) is served only by the
// primary while it holds the lease; a replica refuses it, naming the primary. Octet 35.
func TestConsistentReadNeedsTheLease(t *testing.T) {
	c := newCluster(t, 35)
	c.voters = []string{"p", "witness"}
	c.startWitness()
	c.addNode("p", "a", 1, true, nil)
	c.addNode("r", "b", 2, false, nil)
	c.start("p")
	r := c.start("r")
	w := putRetry(t, c.client("p"), "k", "v", 5*time.Second)
	waitFor(t, 5*time.Second, "replica caught up", func() bool { return r.State().LSN == w.LSN })
	consistent := func(node string) (ReadResult, error) {
		var res ReadResult
		err := c.client(node).do(context.Background(), http.MethodGet, "/v1/kv/k?consistent=1", nil, &res, http.StatusOK, http.StatusNotFound)
		return res, err
	}
	if got, err := consistent("p"); err != nil || !got.Found || got.Value != "v" {
		t.Fatalf("consistent read on the primary: %+v, %v", got, err)
	}
	if _, err := consistent("r"); !isAPIError(err, http.StatusServiceUnavailable, "not primary") {
		t.Fatalf("consistent read on a replica: %v, want 503 not primary", err)
	}
	if got, err := c.client("r").Get(context.Background(), "k", 0); err != nil || !got.Found {
		t.Fatalf("a local read on the replica: %+v, %v", got, err)
	}
}
