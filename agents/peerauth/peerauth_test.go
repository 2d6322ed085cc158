package peerauth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echo answers with what it got, counting the calls that reached it.
func echo(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(append([]byte("got:"), b...))
	})
}

// recording is a transport that keeps a copy of the last request it carried.
type recording struct {
	last *http.Request
	body []byte
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	r.body, r.last = b, req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultTransport.RoundTrip(req)
}

func TestSignedRoundTrip(t *testing.T) {
	key := Derive("run-secret", PurposeDB)
	var calls atomic.Int64
	srv := httptest.NewServer(Require(key, echo(&calls)))
	defer srv.Close()
	c := Client(key, 2*time.Second, nil)
	resp, err := c.Post(srv.URL+"/v1/kv/k?x=1", "text/plain", strings.NewReader("value"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || string(b) != "got:value" || resp.Header.Get("X-Seen") != "POST" {
		t.Fatalf("answer %s %q %v", resp.Status, b, resp.Header)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls reached the handler", calls.Load())
	}
}

func TestRefused(t *testing.T) {
	key := Derive("run-secret", PurposeDB)
	var calls atomic.Int64
	srv := httptest.NewServer(Require(key, echo(&calls)))
	defer srv.Close()

	// Unsigned, and signed with another purpose's or another run's key.
	for name, c := range map[string]*http.Client{
		"unsigned":      http.DefaultClient,
		"other purpose": Client(Derive("run-secret", PurposeControl), time.Second, nil),
		"other run":     Client(Derive("other-secret", PurposeDB), time.Second, nil),
	} {
		resp, err := c.Get(srv.URL + "/v1/wal?from=1")
		if err == nil {
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %s", name, resp.Status)
			}
			resp.Body.Close()
		}
	}
	// A captured request replayed as is.
	rec := &recording{}
	c := &http.Client{Transport: &Transport{Key: key, Base: rec}}
	resp, err := c.Get(srv.URL + "/v1/wal?from=1")
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first request: %v %v", resp, err)
	}
	replay, _ := http.NewRequest(rec.last.Method, srv.URL+rec.last.URL.RequestURI(), nil)
	replay.Header = rec.last.Header.Clone()
	if resp, err := http.DefaultClient.Do(replay); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replay: %v %v", resp, err)
	}
	// The same signature on another URI, or with another body.
	for _, mut := range []func(*http.Request){
		func(r *http.Request) { r.URL.RawQuery = "from=0" },
		func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("forged")); r.Method = http.MethodPut },
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/wal?from=1", nil)
		signed := &Transport{Key: key, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mut(r)
			return http.DefaultTransport.RoundTrip(r)
		})}
		if _, err := signed.RoundTrip(req); !errors.Is(err, ErrUnsigned) {
			t.Errorf("altered request: %v, want a refusal (unsigned 401)", err)
		}
	}
	// Stale.
	stale := &Transport{Key: key, now: func() time.Time { return time.Now().Add(-2 * MaxSkew) }}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/status", nil)
	if _, err := stale.RoundTrip(req); !errors.Is(err, ErrUnsigned) {
		t.Errorf("stale request: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d refused calls reached the handler, want only the first good one", calls.Load()-1)
	}
}

// TestImpostorAnswerRefused: whoever answers without the key (another user who bound the node's
// address first) is not believed, and never sees the secret.
func TestImpostorAnswerRefused(t *testing.T) {
	key := Derive("run-secret", PurposeControl)
	var seen atomic.Value
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		_, _ = w.Write([]byte(`{"node":"us-east-db-1","run_id":"the-run"}`))
	}))
	defer impostor.Close()
	_, err := Client(key, time.Second, nil).Get(impostor.URL + "/v1/info")
	if !errors.Is(err, ErrUnsigned) {
		t.Fatalf("answer of an impostor accepted: %v", err)
	}
	h := seen.Load().(http.Header)
	if strings.Contains(h.Get(RequestHeader), "run-secret") || h.Get("Authorization") != "" {
		t.Fatalf("the impostor saw a credential: %v", h)
	}
	// An impostor that signs with another run's key is refused too.
	other := httptest.NewServer(Require(Derive("other", PurposeControl), http.NotFoundHandler()))
	defer other.Close()
	if _, err := Client(key, time.Second, nil).Get(other.URL + "/v1/info"); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("another run's answer accepted: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRequestBoundToItsNode: a node that requires its name refuses a request signed for another
// node (captured on its way there and replayed here), one signed for no node, and one whose
// node header was rewritten after signing; it answers one signed for it.
func TestRequestBoundToItsNode(t *testing.T) {
	key := Derive("run-secret", PurposeControl)
	srv := httptest.NewServer(RequireNode(key, "us-east-db-1", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})))
	defer srv.Close()
	for _, tc := range []struct {
		to      string
		rewrite string // ToHeader set on the wire after signing ("" = left as signed)
		ok      bool
	}{
		{to: "us-east-db-1", ok: true},
		{to: "eu-west-db-1"},
		{to: ""},
		{to: "eu-west-db-1", rewrite: "us-east-db-1"},
	} {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if tc.rewrite != "" {
				r.Header.Set(ToHeader, tc.rewrite)
			}
			return http.DefaultTransport.RoundTrip(r)
		})
		hc := &http.Client{Timeout: time.Second, Transport: &Transport{Key: key, Base: base, Audience: func(string) string { return tc.to }}}
		resp, err := hc.Get(srv.URL + "/v1/info")
		if tc.ok {
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("signed for the node: %v %v", resp, err)
			}
			resp.Body.Close()
			continue
		}
		if err == nil {
			resp.Body.Close()
			t.Fatalf("signed for %q (rewritten to %q) answered %s, want refused", tc.to, tc.rewrite, resp.Status)
		}
	}
}
