package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/queue"
)

// TestPostJobs: POST /jobs answers 200 once a real JetStream stored the job (a second publish of
// the id is stored once), 400 for what is not a job, 404 in a region without a queue, and 503
// (outcome fail) once the queue is gone.
func TestPostJobs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	q, err := queue.StartServer(context.Background(), queue.ServerConfig{Name: "q", Region: "us", Host: "127.0.0.1", Port: port,
		Password: "pw", StoreDir: t.TempDir(), DuplicateWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			q.Stop()
		}
	}()
	pub, err := queue.NewPublisher("us-web-1", "us", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "pw", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	members := &view{ms: []gossip.Member{db("us-1", "us", true, true, true, 1)}}
	newWeb := func(jobs *queue.Publisher) *httptest.Server {
		s, err := New(Config{Name: "us-web-1", Region: "us", Members: members, DBKey: testDBKey, Jobs: jobs,
			DBAddr: func(string) (string, error) { return "127.0.0.1:1", nil }})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(srv.Close)
		return srv
	}
	withQueue, without := newWeb(pub), newWeb(nil)
	post := func(srv *httptest.Server, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/jobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	// The publisher connects in the background.
	deadline := time.Now().Add(5 * time.Second)
	code, out := post(withQueue, `{"id":"j1","work_ms":5}`)
	for code != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		code, out = post(withQueue, `{"id":"j1","work_ms":5}`)
	}
	if code != http.StatusOK || out["stream"] != queue.Stream("us") || out["seq"] != 1.0 {
		t.Fatalf("first publish: %d %v", code, out)
	}
	if code, out := post(withQueue, `{"id":"j1","work_ms":5}`); code != http.StatusOK || out["duplicate"] != true || out["seq"] != 1.0 {
		t.Fatalf("second publish of the id: %d %v, want the first job's sequence, marked duplicate", code, out)
	}
	for _, bad := range []string{`not json`, `{"id":""}`, `{"id":"a b"}`, `{"id":"j","work_ms":-1}`, `{"id":"j","extra":1}`} {
		if code, out := post(withQueue, bad); code != http.StatusBadRequest || out["outcome"] != "fail" {
			t.Errorf("%s: %d %v, want 400 outcome fail", bad, code, out)
		}
	}
	if code, out := post(without, `{"id":"j2"}`); code != http.StatusNotFound {
		t.Fatalf("a region without a queue: %d %v", code, out)
	}
	q.Stop()
	stopped = true
	deadline = time.Now().Add(5 * time.Second)
	code, out = post(withQueue, `{"id":"j3"}`)
	for code == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		code, out = post(withQueue, `{"id":"j3"}`)
	}
	if code != http.StatusServiceUnavailable || out["outcome"] != "fail" {
		t.Fatalf("with the queue gone: %d %v, want 503 outcome fail", code, out)
	}
}
