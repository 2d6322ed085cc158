package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/local"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// Shared helpers of the end-to-end tests. These tests run the real system: the drill binary as
// node processes on loopback, real gossip, real toxiproxy links, real WAL files. Nothing is mocked.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// drillBinary builds cmd/drill once per test run.
func drillBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drill-e2e-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "drill")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "github.com/drillworks/drill/cmd/drill")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

type cluster struct {
	t    *testing.T
	plan *topology.Plan
	rt   *local.Runtime
	obs  *observe.Observer
	inj  *inject.Injector
	http *http.Client
}

// startCluster brings up the default topology under its own name and a loopback range of its own
// (netalloc), and tears it down (checking nothing is left) when the test ends.
func startCluster(t *testing.T, sets ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs no cluster")
	}
	netalloc.ClusterSlot(t)
	topo := topology.Default()
	topo.Name = "e2e-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	if len(topo.Name) > 40 {
		topo.Name = topo.Name[:40]
	}
	topo.Network.LoopbackBase = netalloc.Loopback(t).String()
	for _, kv := range sets {
		k, v, err := topology.ParseSet(kv)
		if err != nil {
			t.Fatal(err)
		}
		if err := topo.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	rt, err := local.New(local.Config{RunDir: runDir, Binary: drillBinary(t)})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := local.NewPlan(topo, runDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if err := rt.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		if t.Failed() {
			dumpLogs(t, rt, topo)
		}
	})
	start := time.Now()
	if err := rt.Up(ctx, plan); err != nil {
		t.Fatal(err)
	}
	obs := observe.New(plan, rt)
	if _, err := obs.WaitConverged(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster %s converged in %s", topo.Name, time.Since(start).Round(time.Millisecond))
	inj, err := inject.New(plan, rt, inject.LedgerPath(plan.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inj.Close() })
	return &cluster{t: t, plan: plan, rt: rt, obs: obs, inj: inj, http: &http.Client{Timeout: 3 * time.Second}}
}

func dumpLogs(t *testing.T, rt *local.Runtime, topo *topology.Topology) {
	for _, n := range topo.Nodes() {
		b, err := os.ReadFile(rt.LogPath(n.Name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		// Errors from anywhere in the log (a process that failed to start says why, then the
		// next one's lines follow), then the tail.
		var bad []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "{") || strings.Contains(l, `"level":"ERROR"`) {
				bad = append(bad, l)
			}
		}
		if len(bad) > 20 {
			bad = bad[len(bad)-20:]
		}
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("--- %s log (errors) ---\n%s\n--- %s log (tail) ---\n%s", n.Name, strings.Join(bad, "\n"), n.Name, strings.Join(lines, "\n"))
	}
}

// kvResult is a web tier response.
type kvResult struct {
	Code    int
	Key     string `json:"key"`
	Value   string `json:"value"`
	LSN     uint64 `json:"lsn"`
	Epoch   uint64 `json:"epoch"`
	DBNode  string `json:"db_node"`
	Node    string `json:"node"`
	Error   string `json:"error"`
	Invoked time.Time
	Done    time.Time
}

func (c *cluster) web(region string) string {
	n := c.plan.Topology.NodesOf(topology.RoleWeb, region)[0]
	return n.Addr(topology.PortWeb)
}

func (c *cluster) do(method, region, key, value string) kvResult {
	r := kvResult{Invoked: time.Now()}
	req, _ := http.NewRequest(method, "http://"+c.web(region)+"/kv/"+key, strings.NewReader(value))
	resp, err := c.http.Do(req)
	r.Done = time.Now()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &r)
	r.Code = resp.StatusCode
	return r
}

func (c *cluster) put(region, key, value string) kvResult {
	return c.do(http.MethodPut, region, key, value)
}
func (c *cluster) get(region, key string) kvResult { return c.do(http.MethodGet, region, key, "") }

func (c *cluster) status() *observe.Status {
	st, err := c.obs.Status(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

func (c *cluster) node(st *observe.Status, name string) observe.NodeStatus {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s in status", name)
	return observe.NodeStatus{}
}

// waitFor polls cond until it holds or the timeout passes; it returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// requirePrivate fails unless every directory under runDir/data and runDir/logs is 0700 and
// every file in them 0600 (and there are files).
func requirePrivate(t *testing.T, runDir string) {
	t.Helper()
	files := 0
	for _, top := range []string{"data", "logs"} {
		err := filepath.WalkDir(filepath.Join(runDir, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			want := os.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			} else {
				files++
			}
			if info.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatal("no data or log files to check")
	}
}
