package workload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// TestHotReadsAreSpreadUntilTheNextWrite: a client's reads of hot keys after a write are spread
// over the time until its next write, not fired in one burst (a cache stampede is many readers of
// one key at once, which bursts of different clients make only by chance). Checked with a lower
// bound only: the last of 4 reads in a 400 ms interval cannot start before 3 gaps of 80 ms.
func TestHotReadsAreSpreadUntilTheNextWrite(t *testing.T) {
	b := netalloc.Loopback(t).Addr().As4()
	ip := net.IPv4(b[0], b[1], 1, 10).String()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(topology.PortWeb)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reads []time.Time
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			reads = append(reads, time.Now())
			mu.Unlock()
		}
		_, _ = io.WriteString(w, `{"found":true,"value":"v","lsn":1,"epoch":1,"node":"web-1"}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	const interval, n = 400 * time.Millisecond, 4
	w := &Workload{cfg: Config{HotKeys: 2, ReadsPerWrite: n, Recorder: history.NewRecorder(io.Discard), Logger: slog.New(slog.DiscardHandler)}}
	c := &client{w: w, region: "us-east", rng: rand.New(rand.NewPCG(1, 2)), http: &http.Client{Timeout: 5 * time.Second},
		answer: []string{ip}, expires: time.Now().Add(time.Hour), interval: interval}
	c.process = w.proc()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.writeAndRead(ctx)

	mu.Lock()
	defer mu.Unlock()
	if len(reads) != n {
		t.Fatalf("%d reads after one write, want %d", len(reads), n)
	}
	gap := interval / (n + 1)
	if span := reads[n-1].Sub(reads[0]); span < (n-1)*gap-gap/2 {
		t.Fatalf("the %d reads spanned %s, want them spread at least %s apart each (a burst)", n, span, gap)
	}
}
