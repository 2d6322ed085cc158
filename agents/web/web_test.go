package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
)

// view is a fixed gossip view (the web tier only reads members).
type view struct {
	mu sync.Mutex
	ms []gossip.Member
}

func (v *view) Members() []gossip.Member {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]gossip.Member(nil), v.ms...)
}

func db(name, region string, alive, primary, healthy bool, epoch uint64) gossip.Member {
	st := gossip.StateAlive
	if !alive {
		st = gossip.StateDead
	}
	return gossip.Member{Name: name, State: st, Meta: gossip.Meta{Role: "db", Region: region, Primary: primary, Healthy: healthy, Epoch: epoch}}
}

func TestHealthyAndPrimary(t *testing.T) {
	cases := []struct {
		name        string
		members     []gossip.Member
		wantHealthy bool
		wantPrimary string
	}{
		{"local replica caught up", []gossip.Member{db("us-1", "us", true, true, true, 1), db("eu-1", "eu", true, false, true, 1)}, true, "us-1"},
		{"local replica lagging while primary alive", []gossip.Member{db("us-1", "us", true, true, true, 1), db("eu-1", "eu", true, false, false, 1)}, false, "us-1"},
		{"primary dead: lagging replica is what we have", []gossip.Member{db("us-1", "us", false, true, true, 1), db("eu-1", "eu", true, false, false, 1)}, true, ""},
		{"local db is the primary", []gossip.Member{db("us-1", "us", true, false, true, 2), db("eu-1", "eu", true, true, true, 2)}, true, "eu-1"},
		{"stale old primary next to a newer one", []gossip.Member{db("us-1", "us", true, true, true, 1), db("eu-1", "eu", true, true, true, 2)}, true, "eu-1"},
		{"no database at all", nil, false, ""},
		{"no local db, remote primary", []gossip.Member{db("us-1", "us", true, true, true, 1)}, true, "us-1"},
		{"deposed local primary knows a newer epoch than any primary in view", []gossip.Member{db("us-1", "us", false, false, false, 1), db("eu-1", "eu", true, false, false, 2)}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(Config{Name: "eu-web-1", Region: "eu", Members: &view{ms: c.members}, DBKey: testDBKey,
				DBAddr: func(string) (string, error) { return "", nil }})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Healthy(); got != c.wantHealthy {
				t.Errorf("Healthy = %v, want %v", got, c.wantHealthy)
			}
			if got, _ := s.Primary(); got != c.wantPrimary {
				t.Errorf("Primary = %q, want %q", got, c.wantPrimary)
			}
		})
	}
}

// TestHealthyAfterOutageWaitsForTheNewPrimary replays what a web node of a region returning from
// an outage saw (region-outage on the local runtime, seed 202): its own database was the primary
// at epoch 1; while the region was cut off the other region's database was promoted at epoch 2,
// and the witness made the old primary step down to epoch 2, following no one. After the heal
// the region's gossip still showed the other region dead for 4 s, so no primary was in view: the
// web node called itself healthy and GeoDNS sent users back before the database had even
// truncated its 79 divergent writes. It must stay unhealthy until the new primary is in view and
// the database has caught up with it.
func TestHealthyAfterOutageWaitsForTheNewPrimary(t *testing.T) {
	v := &view{}
	s, err := New(Config{Name: "eu-web-1", Region: "eu", Members: v, DBKey: testDBKey,
		DBAddr: func(string) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		members []gossip.Member
		want    bool
	}{
		{"before: the local database is the primary", []gossip.Member{db("eu-1", "eu", true, true, true, 1), db("us-1", "us", true, false, true, 1)}, true},
		{"cut off: the other region looks dead", []gossip.Member{db("eu-1", "eu", true, true, true, 1), db("us-1", "us", false, false, true, 1)}, true},
		{"deposed while cut off: no primary in view, a newer epoch known", []gossip.Member{db("eu-1", "eu", true, false, false, 2), db("us-1", "us", false, false, true, 1)}, false},
		{"healed: the new primary in view, not caught up yet", []gossip.Member{db("eu-1", "eu", true, false, false, 2), db("us-1", "us", true, true, true, 2)}, false},
		{"caught up with the new primary", []gossip.Member{db("eu-1", "eu", true, false, true, 2), db("us-1", "us", true, true, true, 2)}, true},
		{"then the new primary dies: a failover in progress, the replica counts", []gossip.Member{db("eu-1", "eu", true, false, false, 2), db("us-1", "us", false, true, true, 2)}, true},
	}
	for _, st := range steps {
		v.ms = st.members
		if got := s.Healthy(); got != st.want {
			t.Errorf("%s: Healthy = %v, want %v", st.name, got, st.want)
		}
	}
}

// TestRouting checks writes go to the primary, reads to the local db, and a read-your-writes
// read the local replica cannot serve falls back to the primary.
func TestRouting(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	fakeDB := func(name string, behind bool) *httptest.Server {
		return httptest.NewServer(peerauth.Require(testDBKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits = append(hits, name+" "+r.Method+" "+r.URL.RequestURI())
			mu.Unlock()
			if behind && r.URL.Query().Get("min_lsn") != "" {
				w.WriteHeader(http.StatusConflict)
				_ = json.NewEncoder(w).Encode(map[string]any{"error": "behind", "node": name})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"node": name, "region": "x", "lsn": 7, "epoch": 1, "value": "v"})
		})))
	}
	primary, replica := fakeDB("us-1", false), fakeDB("eu-1", true)
	defer primary.Close()
	defer replica.Close()
	addr := map[string]string{"us-1": primary.Listener.Addr().String(), "eu-1": replica.Listener.Addr().String()}
	members := &view{ms: []gossip.Member{db("us-1", "us", true, true, true, 1), db("eu-1", "eu", true, false, true, 1)}}
	for _, ryw := range []bool{true, false} {
		hits = nil
		s, err := New(Config{Name: "eu-web-1", Region: "eu", Members: members, ReadYourWrites: ryw,
			DBAddr: func(n string) (string, error) { return addr[n], nil }, DBKey: testDBKey})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.Handler())
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/kv/k", strings.NewReader("v"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out["db_node"] != "us-1" || out["node"] != "eu-web-1" || out["region"] != "eu" {
			t.Fatalf("put response %v", out)
		}
		resp, err = http.Get(srv.URL + "/kv/k?min_lsn=7")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		want := []string{"us-1 PUT /v1/kv/k", "eu-1 GET /v1/kv/k?min_lsn=7&wait_ms=300", "us-1 GET /v1/kv/k?min_lsn=7&wait_ms=300"}
		if !ryw {
			want = []string{"us-1 PUT /v1/kv/k", "eu-1 GET /v1/kv/k"}
		}
		if strings.Join(hits, "|") != strings.Join(want, "|") {
			t.Fatalf("read_your_writes=%v: calls %q, want %q", ryw, hits, want)
		}
	}
}

// testDBKey signs the web node's calls to the (fake) databases.
var testDBKey = peerauth.Derive("web-test-secret", peerauth.PurposeDB)

// TestOversizedValueRefused: a PUT body over MaxValueBytes gets 413 and nothing reaches the
// database (before, the first 1 MiB was stored and 200 returned).
func TestOversizedValueRefused(t *testing.T) {
	var calls atomic.Int32
	fakeDB := httptest.NewServer(peerauth.Require(testDBKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"node": "us-1", "region": "us", "lsn": 1, "epoch": 1})
	})))
	defer fakeDB.Close()
	members := &view{ms: []gossip.Member{db("us-1", "us", true, true, true, 1)}}
	s, err := New(Config{Name: "us-web-1", Region: "us", Members: members, DBKey: testDBKey,
		DBAddr: func(string) (string, error) { return fakeDB.Listener.Addr().String(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, c := range []struct {
		size int
		want int
	}{{MaxValueBytes + 1, http.StatusRequestEntityTooLarge}, {MaxValueBytes, http.StatusOK}} {
		before := calls.Load()
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/kv/k", strings.NewReader(strings.Repeat("x", c.size)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("PUT of %d bytes: %s, want %d", c.size, resp.Status, c.want)
		}
		if reached := calls.Load() - before; (c.want == http.StatusOK) != (reached == 1) {
			t.Fatalf("PUT of %d bytes: %d database calls", c.size, reached)
		}
	}
}

// TestReadFromPrimary: with read_from: primary every read goes to the primary and asks for a
// consistent (lease-held) read, even when the region has its own replica.
func TestReadFromPrimary(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	fakeDB := func(name string) *httptest.Server {
		return httptest.NewServer(peerauth.Require(testDBKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits = append(hits, name+" "+r.Method+" "+r.URL.RequestURI())
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"node": name, "region": "x", "lsn": 7, "epoch": 1, "value": "v", "found": true})
		})))
	}
	primary, replica := fakeDB("us-1"), fakeDB("eu-1")
	defer primary.Close()
	defer replica.Close()
	addr := map[string]string{"us-1": primary.Listener.Addr().String(), "eu-1": replica.Listener.Addr().String()}
	members := &view{ms: []gossip.Member{db("us-1", "us", true, true, true, 1), db("eu-1", "eu", true, false, true, 1)}}
	s, err := New(Config{Name: "eu-web-1", Region: "eu", Members: members, ReadYourWrites: true, ReadFromPrimary: true,
		DBAddr: func(n string) (string, error) { return addr[n], nil }, DBKey: testDBKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/kv/k", "/kv/k?min_lsn=7"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{"us-1 GET /v1/kv/k?consistent=1", "us-1 GET /v1/kv/k?consistent=1&min_lsn=7&wait_ms=300"}
	if strings.Join(hits, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", hits, want)
	}
}
