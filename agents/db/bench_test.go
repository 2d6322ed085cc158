package db

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
)

// BenchmarkPut measures acknowledged writes over HTTP on a lone primary (lease held, async), with
// one writer (one fsync per write) and with many concurrent writers (group commit shares fsyncs).
// It reports writes per fsync. Octet 200.
func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name    string
		writers int // goroutines per GOMAXPROCS
	}{{"serial", 0}, {"parallel-32", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			n, err := Open(Config{Name: "bench", Region: "a", DataDir: dir, Listen: testNet + ".200.1:7000", Bootstrap: true, AuthKey: testAuthKey})
			if err != nil {
				b.Fatal(err)
			}
			if err := n.Start(); err != nil {
				n.Close()
				b.Fatal(err)
			}
			b.Cleanup(func() { n.Close() })
			deadline := time.Now().Add(5 * time.Second)
			for !n.State().HasLease {
				if time.Now().After(deadline) {
					b.Fatal("no lease")
				}
				time.Sleep(10 * time.Millisecond)
			}
			hc := &http.Client{Transport: &peerauth.Transport{Key: testAuthKey, Base: &http.Transport{MaxIdleConnsPerHost: 128}, Audience: func(string) string { return "bench" }}}
			cl := &Client{BaseURL: "http://" + testNet + ".200.1:7000", HTTP: hc}
			fsyncsBefore := scrapeCounter(b, hc, "drill_db_wal_fsyncs_total")
			var seq atomic.Int64
			put := func() {
				i := seq.Add(1)
				if _, err := cl.Put(context.Background(), "k"+strconv.FormatInt(i%1000, 10), "value"); err != nil {
					b.Error(err)
				}
			}
			b.ResetTimer()
			if bc.writers == 0 {
				for b.Loop() {
					put()
				}
			} else {
				b.SetParallelism(bc.writers)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						put()
					}
				})
			}
			b.StopTimer()
			fsyncs := scrapeCounter(b, hc, "drill_db_wal_fsyncs_total") - fsyncsBefore
			if fsyncs > 0 {
				b.ReportMetric(float64(seq.Load())/fsyncs, "writes/fsync")
			}
			b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// scrapeCounter reads one metric's value from the node's /metrics.
func scrapeCounter(b *testing.B, hc *http.Client, name string) float64 {
	b.Helper()
	res, err := hc.Get("http://" + testNet + ".200.1:7000/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Fatal(fmt.Errorf("metric %s not found", name))
	return 0
}
