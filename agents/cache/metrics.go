package cache

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the INFO call of one scrape: a frozen redis must not hold the node's
// /metrics (it reports drill_cache_up 0 instead).
const scrapeTimeout = 500 * time.Millisecond

// infoMetric is one number of redis's INFO exported as a metric.
type infoMetric struct {
	field string // INFO field
	desc  *prometheus.Desc
	kind  prometheus.ValueType
}

var (
	upDesc   = prometheus.NewDesc("drill_cache_up", "1 when the node's redis-server answered INFO at this scrape.", nil, nil)
	keysDesc = prometheus.NewDesc("drill_cache_keys", "Keys in the cache (INFO keyspace, db0).", nil, nil)

	infoMetrics = []infoMetric{
		{"keyspace_hits", prometheus.NewDesc("drill_cache_hits_total", "Reads that found their key (INFO keyspace_hits).", nil, nil), prometheus.CounterValue},
		{"keyspace_misses", prometheus.NewDesc("drill_cache_misses_total", "Reads that did not find their key (INFO keyspace_misses).", nil, nil), prometheus.CounterValue},
		{"evicted_keys", prometheus.NewDesc("drill_cache_evicted_keys_total", "Keys evicted under maxmemory (INFO evicted_keys).", nil, nil), prometheus.CounterValue},
		{"expired_keys", prometheus.NewDesc("drill_cache_expired_keys_total", "Keys removed when their TTL ran out (INFO expired_keys).", nil, nil), prometheus.CounterValue},
		{"used_memory", prometheus.NewDesc("drill_cache_used_memory_bytes", "Memory redis has allocated (INFO used_memory).", nil, nil), prometheus.GaugeValue},
		{"maxmemory", prometheus.NewDesc("drill_cache_max_memory_bytes", "The memory limit (INFO maxmemory; 0 = none).", nil, nil), prometheus.GaugeValue},
		{"connected_clients", prometheus.NewDesc("drill_cache_connected_clients", "Client connections (INFO connected_clients).", nil, nil), prometheus.GaugeValue},
	}
)

// collector reads the cache node's redis-server at each scrape.
type collector struct{ s *Server }

// Collector exports the node's redis-server to Prometheus: whether it answers, its keys, hits,
// misses, evictions, expirations, memory and clients, read with INFO at each scrape (the
// numbers are redis's own, so they survive the agent but not a redis restart).
func (s *Server) Collector() prometheus.Collector { return collector{s: s} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- keysDesc
	for _, m := range infoMetrics {
		ch <- m.desc
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	// INFO's default sections (stats, memory, clients and keyspace among them): asking for several
	// sections by name needs redis 7, the default works on every version.
	text, err := c.s.client.Info(ctx).Result()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	info := parseInfo(text)
	ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, keyspaceKeys(info["db0"]))
	for _, m := range infoMetrics {
		if v, err := strconv.ParseFloat(info[m.field], 64); err == nil {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, v)
		}
	}
}

// parseInfo reads INFO's "field:value" lines (sections and comments start with '#').
func parseInfo(text string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// keyspaceKeys is the keys count of a keyspace line's value ("keys=12,expires=12,avg_ttl=0");
// 0 when the database has no keys (redis then omits its line).
func keyspaceKeys(v string) float64 {
	for _, kv := range strings.Split(v, ",") {
		if k, n, ok := strings.Cut(kv, "="); ok && k == "keys" {
			if f, err := strconv.ParseFloat(n, 64); err == nil {
				return f
			}
		}
	}
	return 0
}
