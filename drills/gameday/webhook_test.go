package gameday

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drillworks/drill/drills/report"
	"github.com/drillworks/drill/drills/verdict"
)

// receiver is a webhook receiver on loopback that answers with the statuses given, in turn
// (the last one repeats), and records every body.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	statuses []int
	hits     atomic.Int32
	// hang, when set, makes the receiver never answer (until the client gives up).
	hang bool
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := int(r.hits.Add(1))
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		if r.hang {
			<-req.Context().Done()
			return
		}
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status = r.statuses[min(n, len(r.statuses))-1]
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) posts() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func TestNotifierRetriesThenDelivers(t *testing.T) {
	r := newReceiver(t, 500, 503, 200)
	n := &Notifier{URL: r.srv.URL, Timeout: time.Second, Retries: 3, Backoff: 10 * time.Millisecond}
	d := n.Send(context.Background(), map[string]string{"hello": "world"})
	if !d.Delivered || d.Attempts != 3 || d.Status != 200 || r.hits.Load() != 3 {
		t.Fatalf("delivery %+v, hits %d; want delivered on the third attempt", d, r.hits.Load())
	}
	var body map[string]string
	if err := json.Unmarshal(r.posts()[2], &body); err != nil || body["hello"] != "world" {
		t.Fatalf("body %q: %v", r.posts()[2], err)
	}
}

func TestNotifierGivesUpAfterRetries(t *testing.T) {
	r := newReceiver(t, 500)
	n := &Notifier{URL: r.srv.URL, Timeout: time.Second, Retries: 2, Backoff: 10 * time.Millisecond}
	d := n.Send(context.Background(), struct{}{})
	if d.Delivered || d.Attempts != 3 || r.hits.Load() != 3 || d.Status != 500 {
		t.Fatalf("delivery %+v, hits %d; want 3 failed attempts", d, r.hits.Load())
	}
}

func TestNotifierDoesNotRetryClientErrors(t *testing.T) {
	r := newReceiver(t, 404)
	n := &Notifier{URL: r.srv.URL, Timeout: time.Second, Retries: 5, Backoff: 10 * time.Millisecond}
	d := n.Send(context.Background(), struct{}{})
	if d.Delivered || d.Attempts != 1 || r.hits.Load() != 1 || !strings.Contains(d.Error, "not retried") {
		t.Fatalf("delivery %+v; a 404 is final", d)
	}
}

func TestNotifierTimesOutEachAttempt(t *testing.T) {
	r := newReceiver(t)
	r.hang = true
	n := &Notifier{URL: r.srv.URL, Timeout: 150 * time.Millisecond, Retries: 2, Backoff: 20 * time.Millisecond}
	start := time.Now()
	d := n.Send(context.Background(), struct{}{})
	took := time.Since(start)
	if d.Delivered || d.Attempts != 3 || r.hits.Load() != 3 {
		t.Fatalf("delivery %+v, hits %d; want 3 timed-out attempts", d, r.hits.Load())
	}
	if took > n.Bound()+time.Second {
		t.Fatalf("Send took %s, bound %s", took, n.Bound())
	}
	if took < 3*150*time.Millisecond {
		t.Fatalf("Send took %s: attempts did not wait for their timeout", took)
	}
}

func TestNotifierUnreachableReceiver(t *testing.T) {
	// A port on loopback nobody listens on: connection refused, retried, then given up.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	n := &Notifier{URL: "http://" + addr + "/hook", Timeout: time.Second, Retries: 2, Backoff: 10 * time.Millisecond}
	d := n.Send(context.Background(), struct{}{})
	if d.Delivered || d.Attempts != 3 || d.Error == "" {
		t.Fatalf("delivery %+v", d)
	}
}

// TestWebhookNeverBlocksTheGameDay: a receiver that never answers delays the end of a run by
// WebhookWait at most, and does not change its verdict; the outcome lands in webhook.json.
func TestWebhookNeverBlocksTheGameDay(t *testing.T) {
	r := newReceiver(t)
	r.hang = true
	dir := t.TempDir()
	p := testPlan(t, dir, "webhook: {url: '"+r.srv.URL+"/hook', timeout: 300ms, retries: 1}\n")
	fr := &fakeRunner{}
	start := time.Now()
	s, err := Run(context.Background(), Config{Plan: p, History: newHistory(t), RunDrill: fr.run, WebhookWait: 100 * time.Millisecond,
		WebhookBackoff: 10 * time.Millisecond})
	took := time.Since(start)
	if err != nil || s.Verdict != verdict.Pass {
		t.Fatalf("verdict %v, err %v: the webhook must not change the game day", s, err)
	}
	if took > 2*time.Second {
		t.Fatalf("run took %s with a hanging webhook (wait 100ms)", took)
	}
	// The delivery goes on in the background and records its outcome.
	waitFor(t, 5*time.Second, "webhook.json", func() bool {
		_, err := os.Stat(filepath.Join(s.Dir, FileWebhook))
		return err == nil
	})
	data, _ := os.ReadFile(filepath.Join(s.Dir, FileWebhook))
	var d Delivery
	if err := json.Unmarshal(data, &d); err != nil || d.Delivered || d.Attempts != 2 {
		t.Fatalf("webhook.json %s: %v", data, err)
	}
}

// TestWebhookPayload: a failing game day posts its verdict, failed checks and report path.
func TestWebhookPayload(t *testing.T) {
	r := newReceiver(t, 502, 200)
	p := testPlan(t, t.TempDir(), "mode: run-all\nwebhook: {url: '"+r.srv.URL+"/hook', retries: 2}\n")
	fr := &fakeRunner{verdicts: map[string]verdict.Verdict{"beta": verdict.Fail}}
	s, err := Run(context.Background(), Config{Plan: p, History: newHistory(t), RunDrill: fr.run, WebhookBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	posts := r.posts()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want 2 (one 502, one retry)", len(posts))
	}
	var got Payload
	if err := json.Unmarshal(posts[1], &got); err != nil {
		t.Fatal(err)
	}
	if got.SchemaVersion != report.SchemaVersion || got.DrillVersion == "" || got.Event != EventFinished || got.Verdict != verdict.Fail || got.RunID != s.ID || got.Plan != "test-plan" ||
		got.ReportPath != filepath.Join(s.Dir, FileIndex) || len(got.FailedChecks) != 1 || got.FailedChecks[0].Drill != "beta" ||
		len(got.Drills) != 3 || got.Drills[1].ReportDir != filepath.Join(s.Dir, "02-beta") {
		t.Fatalf("payload: %+v", got)
	}
	if _, err := os.Stat(got.ReportPath); err != nil {
		t.Fatalf("report path does not exist: %v", err)
	}
}

// A signed POST carries the plan's headers, a timestamp and the HMAC the receiver can check; a
// 503 with Retry-After is retried after the wait the receiver asked for, not the backoff.
func TestWebhookSignedWithHeadersAndRetryAfter(t *testing.T) {
	secret := []byte("webhook-secret")
	var mu sync.Mutex
	var got []http.Header
	var at []time.Time
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		got, at, bodies = append(got, req.Header.Clone()), append(at, time.Now()), append(bodies, body)
		n := len(got)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	n := &Notifier{URL: srv.URL, Retries: 2, Backoff: 10 * time.Millisecond, Secret: secret,
		Headers: map[string]string{"X-Team": "sre"}}
	d := n.Send(context.Background(), map[string]string{"hello": "world"})
	if !d.Delivered || d.Attempts != 2 {
		t.Fatalf("delivery %+v, want delivered on the second attempt", d)
	}
	if wait := at[1].Sub(at[0]); wait < 900*time.Millisecond {
		t.Errorf("retried after %s, want the 1 s the receiver asked for (backoff 10 ms)", wait)
	}
	for i, h := range got {
		ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
		if err != nil || h.Get("X-Team") != "sre" || h.Get(HeaderSignature) != Sign(secret, ts, bodies[i]) {
			t.Errorf("request %d: headers %v; want X-Team and a signature over its timestamp and body", i, h)
		}
		if Sign([]byte("other"), ts, bodies[i]) == h.Get(HeaderSignature) {
			t.Errorf("request %d: another key gives the same signature", i)
		}
	}
	if parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", time.Now()) != 0 || parseRetryAfter("soon", time.Now()) != 0 {
		t.Error("a past date or junk must mean no wait")
	}
	now := time.Now()
	if w := parseRetryAfter(now.Add(3*time.Second).UTC().Format(http.TimeFormat), now); w < 2*time.Second || w > 3*time.Second {
		t.Errorf("an HTTP date 3 s ahead: %s", w)
	}
}

func TestWebhookPlanFields(t *testing.T) {
	plan := "name: p\ndrills: [{drill: region-outage}]\nwebhook:\n  url: http://127.0.0.1:1/hook\n" +
		"  headers: {X-Team: sre}\n  secret_env: DRILL_TEST_WEBHOOK_KEY\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	opts := LoadOptions{Getenv: func(k string) string { return env[k] }}
	if _, err := Load(path, opts); err == nil || !strings.Contains(err.Error(), "plan.yaml:6:15: webhook.secret_env: environment variable DRILL_TEST_WEBHOOK_KEY is not set") {
		t.Fatalf("unset secret: %v", err)
	}
	env["DRILL_TEST_WEBHOOK_KEY"] = "k"
	p, err := Load(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Webhook.Secret) != "k" || p.Webhook.Headers["X-Team"] != "sre" {
		t.Fatalf("webhook %+v", p.Webhook)
	}
	bad := strings.Replace(plan, "X-Team: sre", "X-Drill-Signature: forged", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, opts); err == nil || !strings.Contains(err.Error(), "X-Drill-Signature is set by drill itself") {
		t.Fatalf("reserved header: %v", err)
	}
}
