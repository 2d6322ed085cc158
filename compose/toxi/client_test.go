package toxi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestCallsSurviveADroppedConnection: a call whose connection the server drops without an answer
// (as a loaded toxiproxy did mid-undo: EOF) is tried again; an answer, even an error, is not; and
// adding a toxic an earlier attempt already added counts as added.
func TestCallsSurviveADroppedConnection(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case n == 1: // drop the connection: the client sees EOF
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case r.Method == http.MethodPost && r.URL.Path == "/proxies/p/toxics":
			http.Error(w, "toxic already exists", http.StatusConflict)
		case r.URL.Path == "/proxies/p/toxics/gone":
			http.Error(w, "toxic not found", http.StatusNotFound)
		case r.URL.Path == "/version":
			http.Error(w, "broken", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	ctx := context.Background()

	if err := c.RemoveToxic(ctx, "p", "t"); err != nil || calls.Load() != 2 {
		t.Fatalf("remove after a dropped connection: %v after %d calls", err, calls.Load())
	}
	calls.Store(0)
	if err := c.AddToxic(ctx, "p", Toxic{Name: "t", Type: "timeout"}); err != nil || calls.Load() != 2 {
		t.Fatalf("add whose first answer was lost: %v after %d calls", err, calls.Load())
	}
	calls.Store(1) // no more drops
	if err := c.RemoveToxic(ctx, "p", "gone"); err != nil || calls.Load() != 2 {
		t.Fatalf("remove of a missing toxic: %v after %d calls", err, calls.Load()-1)
	}
	if err := c.Version(ctx); err == nil || calls.Load() != 3 {
		t.Fatalf("an error answer was retried or hidden: %v after %d calls", err, calls.Load()-1)
	}
}
