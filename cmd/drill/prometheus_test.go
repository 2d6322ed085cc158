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
	"strings"
	"testing"
	"time"
)

// TestPrometheusScrapesTheCluster runs a real Prometheus (Debian's package; CI installs it) against
// a running cluster, with the target list `drill status --prometheus-sd` writes: every web,
// database and GeoDNS node is scraped, and a query returns each component's own series and the
// Go runtime's.
func TestPrometheusScrapesTheCluster(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("DRILL_CI") != "" {
			t.Fatal("prometheus is required in CI (.ci/run installs it)")
		}
		t.Skip("SKIPPED: no prometheus on PATH: the scrape of a running cluster was NOT tested")
	}
	parallelDrill(t)
	e := newEnv(t, "prom")
	dir := filepath.Dir(e.topo)
	if out, err := e.cmd("up", "--runtime", "local").CombinedOutput(); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	// A request through each region's web tier, so that the web nodes' request counters exist.
	for _, region := range []string{"us-east", "eu-west"} {
		if out, err := e.cmd("kv", "put", "k-"+region, "v", "--via", region).CombinedOutput(); err != nil {
			t.Fatalf("kv put: %v\n%s", err, out)
		}
	}
	sd := filepath.Join(dir, "targets.json")
	if out, err := e.cmd("status", "--prometheus-sd", sd).CombinedOutput(); err != nil {
		t.Fatalf("status --prometheus-sd: %v\n%s", err, out)
	}
	config := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 900ms}\nscrape_configs:\n"+
		"  - job_name: drill\n    file_sd_configs: [{files: [%q], refresh_interval: 1s}]\n", sd)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
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
	// The jobs come from the target file's labels; each must be up on every node.
	want := map[string]string{
		"drill_web": `drill_web_requests_total`, "drill_db": `drill_db_applied_lsn`, "drill_dns": `drill_dns_region_admitted`,
		"drill_wan": `process_resident_memory_bytes`, // toxiproxy's per-link byte counters appear as connections close
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := []string{}
		for job, metric := range want {
			up := query(fmt.Sprintf(`min(up{job=%q})`, job))
			series := query(fmt.Sprintf(`count(%s{job=%q}) or count(go_goroutines{job=%q})`, metric, job, job))
			if len(up) == 0 || up[0]["value"].([]any)[1] != "1" || len(series) == 0 {
				missing = append(missing, job)
			}
		}
		if len(missing) == 0 && len(query(`go_goroutines{job="drill_db"}`)) > 0 && len(query(`process_resident_memory_bytes{job="drill_web"}`)) > 0 &&
			len(query(`drill_memberlist_node_instances{job="drill_dns",node_state="alive"}`)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape %v within 60 s\nlogs:\n%s", missing, logs.String())
		}
		time.Sleep(time.Second)
	}
	for job, metric := range want {
		if len(query(fmt.Sprintf(`%s{job=%q}`, metric, job))) == 0 {
			t.Errorf("no %s series from %s", metric, job)
		}
	}
	// The dashboard loads as JSON and names only metrics this Prometheus scraped.
	scraped := map[string]bool{}
	if resp, err := http.Get("http://" + listen + "/api/v1/label/__name__/values"); err == nil {
		var r struct {
			Data []string `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		for _, n := range r.Data {
			scraped[n] = true
		}
	}
	raw, err := os.ReadFile("../../compose/observe/grafana/drill-cluster.json")
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
	// Every query, the panels' and the fault annotations', names only scraped metrics.
	type dashQuery struct{ where, expr string }
	var queries []dashQuery
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, dashQuery{"panel " + p.Title, tg.Expr})
		}
	}
	for _, a := range dash.Annotations.List {
		queries = append(queries, dashQuery{"annotation " + a.Name, a.Expr})
	}
	names := regexp.MustCompile(`\b((?:drill|go|process)_[a-z0-9_]+)\b`)
	for _, q := range queries {
		for _, m := range names.FindAllStringSubmatch(q.expr, -1) {
			if !scraped[m[1]] {
				t.Errorf("dashboard %s names %s, which Prometheus did not scrape", q.where, m[1])
			}
		}
	}
	if out, err := e.cmd("down").CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
}
