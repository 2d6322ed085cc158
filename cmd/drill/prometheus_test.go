package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestPrometheusScrapesTheCluster runs a real Prometheus (Debian's package; CI installs it) against
// a running cluster of every component (the cache topology with a queue and a worker added to
// each region), with the target list `drill status --prometheus-sd` writes: every web,
// database, GeoDNS, WAN, cache, queue and worker node is scraped, and a query returns each
// component's own series and the Go runtime's. The cluster is the one a short drill left up
// (`run --keep`): Debian's node exporter serves that run's results (metrics.prom in its report
// directory) through its textfile collector, as the README suggests, and Prometheus scrapes them
// too, so that the dashboard's result panels are checked like the others.
func TestPrometheusScrapesTheCluster(t *testing.T) {
	need := func(tool string) string {
		t.Helper()
		p, err := exec.LookPath(tool)
		if err != nil {
			if os.Getenv("DRILL_CI") != "" {
				t.Fatalf("%s is required in CI (.ci/run installs it)", tool)
			}
			t.Skipf("SKIPPED: no %s on PATH: the scrape of a running cluster and its results was NOT tested", tool)
		}
		return p
	}
	prom, nodeExporter := need("prometheus"), need("prometheus-node-exporter")
	needRedis(t)
	parallelDrill(t)
	e := newEnvOf(t, "prom", "cache")
	dir := filepath.Dir(e.topo)
	raw, err := os.ReadFile(e.topo)
	if err != nil {
		t.Fatal(err)
	}
	every := strings.ReplaceAll(string(raw), "cache: 1}", "cache: 1, queue: 1, worker: 1}")
	if strings.Count(every, "worker: 1}") != 2 {
		t.Fatalf("could not add a queue and a worker to each region of:\n%s", raw)
	}
	if err := os.WriteFile(e.topo, []byte(every), 0o600); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(dir, "results")
	short := filepath.Join(dir, "prom-results.yaml")
	if err := os.WriteFile(short, []byte(promResultsDrill), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := e.cmd("run", short, "--runtime", "local", "--keep", "--report-dir", results).CombinedOutput(); err != nil {
		t.Fatalf("run --keep: %v\n%s", err, out)
	}
	// Requests through each region's web tier, so that the web nodes' request counters exist and
	// the caches count a miss and a hit.
	for _, region := range []string{"us-east", "eu-west"} {
		if out, err := e.cmd("kv", "put", "k-"+region, "v", "--via", region).CombinedOutput(); err != nil {
			t.Fatalf("kv put: %v\n%s", err, out)
		}
		for range 2 {
			if out, err := e.cmd("kv", "get", "k-"+region, "--via", region).CombinedOutput(); err != nil {
				t.Fatalf("kv get: %v\n%s", err, out)
			}
		}
	}
	sd := filepath.Join(dir, "targets.json")
	if out, err := e.cmd("status", "--prometheus-sd", sd).CombinedOutput(); err != nil {
		t.Fatalf("status --prometheus-sd: %v\n%s", err, out)
	}
	exporter := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var exporterLogs strings.Builder
	ne := exec.CommandContext(ctx, nodeExporter, "--web.listen-address="+exporter, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory="+results)
	ne.Stdout, ne.Stderr = &exporterLogs, &exporterLogs
	if err := ne.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = ne.Wait()
	})
	config := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 900ms}\nscrape_configs:\n"+
		"  - job_name: drill\n    file_sd_configs: [{files: [%q], refresh_interval: 1s}]\n"+
		"  - job_name: drill_results\n    static_configs: [{targets: [%q]}]\n", sd, exporter)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freeLoopbackAddr(t)
	cmd := exec.CommandContext(ctx, prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+listen, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	query := func(q string) []map[string]any {
		resp, err := http.Get("http://" + listen + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []map[string]any `json:"result"`
			} `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return r.Data.Result
	}
	// The dashboard loads as JSON; every metric its queries (the panels' and the fault
	// annotations') name must be scraped.
	raw, err = os.ReadFile("../../compose/observe/grafana/drill-cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || len(dash.Panels) == 0 || len(dash.Annotations.List) == 0 {
		t.Fatalf("dashboard JSON: %v (%d panels, %d annotations)", err, len(dash.Panels), len(dash.Annotations.List))
	}
	dashNames := map[string]string{} // metric name -> where the dashboard names it
	names := regexp.MustCompile(`\b((?:drill|go|process)_[a-z0-9_]+)\b`)
	addNames := func(where, expr string) {
		for _, m := range names.FindAllStringSubmatch(expr, -1) {
			dashNames[m[1]] = where
		}
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			addNames("panel "+p.Title, tg.Expr)
		}
	}
	for _, a := range dash.Annotations.List {
		addNames("annotation "+a.Name, a.Expr)
	}
	scraped := func() map[string]bool {
		out := map[string]bool{}
		resp, err := http.Get("http://" + listen + "/api/v1/label/__name__/values")
		if err != nil {
			return out
		}
		defer resp.Body.Close()
		var r struct {
			Data []string `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		for _, n := range r.Data {
			out[n] = true
		}
		return out
	}

	// The jobs come from the target file's labels; each must be up on every node. Some series
	// appear only after their first event (a lease renewal, a request), so the dashboard's names
	// are polled for too, until the deadline.
	want := map[string]string{
		"drill_web": `drill_web_requests_total`, "drill_db": `drill_db_applied_lsn`, "drill_dns": `drill_dns_region_admitted`,
		// toxiproxy's per-link byte counters appear as connections close: the kept drill's
		// partition closed them.
		"drill_wan":   `toxiproxy_proxy_received_bytes_total`,
		"drill_cache": `drill_cache_up`, "drill_queue": `drill_queue_ready`, "drill_worker": `drill_worker_jobs_total`,
		"drill_results": `drill_run_verdict`, // the kept run's metrics.prom, through the node exporter
	}
	var unscraped []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := []string{}
		for job, metric := range want {
			up := query(fmt.Sprintf(`min(up{job=%q})`, job))
			series := query(fmt.Sprintf(`count(%s{job=%q})`, metric, job))
			if len(up) == 0 || up[0]["value"].([]any)[1] != "1" || len(series) == 0 {
				missing = append(missing, job)
			}
		}
		if len(missing) > 0 && time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape %v within 60 s\nlogs:\n%s\nnode exporter:\n%s", missing, logs.String(), exporterLogs.String())
		}
		have := scraped()
		unscraped = unscraped[:0]
		for name := range dashNames {
			if !have[name] {
				unscraped = append(unscraped, name)
			}
		}
		if len(missing) == 0 && len(unscraped) == 0 && len(query(`go_goroutines{job="drill_db"}`)) > 0 &&
			len(query(`process_resident_memory_bytes{job="drill_web"}`)) > 0 &&
			len(query(`drill_memberlist_node_instances{job="drill_dns",node_state="alive"}`)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for job, metric := range want {
		if len(query(fmt.Sprintf(`%s{job=%q}`, metric, job))) == 0 {
			t.Errorf("no %s series from %s", metric, job)
		}
	}
	// drill's own metrics follow the Prometheus naming conventions (promlint: units in names,
	// _total on counters, base units); the libraries' (memberlist, toxiproxy, Go) keep theirs.
	lintNodeMetrics(t, sd)
	// Both caches' redis-servers answered the scrape's INFO.
	if up := query(`drill_cache_up == 1`); len(up) != 2 {
		t.Errorf("drill_cache_up == 1 on %d cache nodes, want 2: %v", len(up), up)
	}
	slices.Sort(unscraped)
	for _, name := range unscraped {
		t.Errorf("dashboard %s names %s, which Prometheus did not scrape within 60 s", dashNames[name], name)
	}
	if out, err := e.cmd("down").CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
}

// promResultsDrill is a short drill whose results the Prometheus test scrapes: users write and
// read while the regions are cut apart for a moment.
const promResultsDrill = `name: prom-results
workload: {clients_per_region: 2, write_rate: 5}
steps:
  - steady: {within: 30s, expect: [converged]}
  - workload: start
  - wait: 1s
  - inject: {fault: partition, id: cut, regions: [us-east, eu-west]}
  - wait: 1s
  - heal: cut
  - wait: 1s
  - workload: stop
`

// freeLoopbackAddr is a loopback address with a port free now (for a server the test starts).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lintNodeMetrics reads every node's /metrics from the file_sd target list and fails the test on
// a naming problem promlint finds in a drill_ metric.
func lintNodeMetrics(t *testing.T, sdFile string) {
	t.Helper()
	raw, err := os.ReadFile(sdFile)
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(raw, &groups); err != nil {
		t.Fatal(err)
	}
	linted := map[string]bool{} // one node of each job is enough: nodes of a role export the same names
	for _, g := range groups {
		job := g.Labels["job"]
		if linted[job] {
			continue
		}
		linted[job] = true
		resp, err := http.Get("http://" + g.Targets[0] + "/metrics")
		if err != nil {
			t.Errorf("%s: %v", g.Targets[0], err)
			continue
		}
		problems, err := promlint.New(resp.Body).Lint()
		resp.Body.Close()
		if err != nil {
			t.Errorf("%s (%s): %v", g.Targets[0], job, err)
			continue
		}
		for _, p := range problems {
			// drill_memberlist_* are memberlist's own names (go-metrics' sink), under drill's prefix.
			if strings.HasPrefix(p.Metric, "drill_") && !strings.HasPrefix(p.Metric, "drill_memberlist_") {
				t.Errorf("%s (%s): %s: %s", g.Targets[0], job, p.Metric, p.Text)
			}
		}
	}
	if len(linted) < 7 {
		t.Errorf("linted the metrics of %d jobs, want every role's (7)", len(linted))
	}
}
