package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/topology/netalloc"
)

// testKey is the cluster key of every test node.
var testKey = []byte("drill-gossip-test-key-0123456789")[:32]

// testPort is the gossip port of every test node; each test uses its own IPs in testNet.
const testPort = 17946

// waitFor polls cond every 20 ms until it holds or timeout passes; it reports whether it held.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdsFor polls cond every 20 ms for the whole window and reports the first violation.
func holdsFor(t *testing.T, window time.Duration, cond func() error) error {
	t.Helper()
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// suspicions records memberlist's "Suspect X has failed" log lines across test nodes: how many,
// and when each member was first suspected (the end of the first failed probe of it).
type suspicions struct {
	mu    sync.Mutex
	count int
	first map[string]time.Time
}

func newSuspicions() *suspicions { return &suspicions{first: map[string]time.Time{}} }

func (s *suspicions) observe(r slog.Record) {
	rest, ok := strings.CutPrefix(r.Message, "Suspect ")
	if !ok || !strings.Contains(rest, " has failed") {
		return
	}
	name, _, _ := strings.Cut(rest, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if _, seen := s.first[name]; !seen {
		s.first[name] = r.Time
	}
}

// Count is how many suspicions were raised.
func (s *suspicions) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Reset forgets everything.
func (s *suspicions) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count, s.first = 0, map[string]time.Time{}
}

// First is when name was first suspected.
func (s *suspicions) First(name string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.first[name]
	return t, ok
}

// recordingHandler feeds suspicions (if set) and echoes logs to stderr when GOSSIP_TEST_LOG is set.
type recordingHandler struct {
	rec  *suspicions
	echo slog.Handler
}

func (h recordingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.rec != nil || (h.echo != nil && h.echo.Enabled(ctx, l))
}
func (h recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.rec != nil {
		h.rec.observe(r)
	}
	if h.echo != nil {
		return h.echo.Handle(ctx, r)
	}
	return nil
}
func (h recordingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	if h.echo != nil {
		h.echo = h.echo.WithAttrs(a)
	}
	return h
}
func (h recordingHandler) WithGroup(g string) slog.Handler {
	if h.echo != nil {
		h.echo = h.echo.WithGroup(g)
	}
	return h
}

// testLogger is a node logger feeding rec (may be nil).
func testLogger(rec *suspicions) *slog.Logger {
	h := recordingHandler{rec: rec}
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		h.echo = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(h)
}

// addr is a test node's gossip address.
func addr(ip string) string { return fmt.Sprintf("%s:%d", ip, testPort) }

// startCluster starts one node per IP, each seeded with every address, and waits until every
// node sees all of them alive. mutate may adjust each node's config.
func startCluster(t *testing.T, ips []string, mutate func(*Config)) []*Node {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs no multi-node gossip cluster")
	}
	var seeds []string
	for _, ip := range ips {
		seeds = append(seeds, addr(ip))
	}
	nodes := make([]*Node, 0, len(ips))
	for i, ip := range ips {
		cfg := Config{
			Name:    ip,
			BindIP:  ip,
			Port:    testPort,
			Profile: ProfileFast,
			Key:     testKey,
			Label:   "gossip-test",
			Seeds:   seeds,
			Logger:  testLogger(nil),
		}
		if mutate != nil {
			mutate(&cfg)
		}
		n, err := Start(cfg, Meta{Role: "web", Region: fmt.Sprintf("r%d", i%2)})
		if err != nil {
			t.Fatalf("start %s: %v", ip, err)
		}
		t.Cleanup(func() { _ = n.Shutdown() })
		nodes = append(nodes, n)
	}
	if !waitFor(t, 10*time.Second, func() bool { return allSeeAlive(nodes, nodes) }) {
		t.Fatalf("cluster of %d did not form: %s", len(nodes), views(nodes))
	}
	return nodes
}

// allSeeAlive reports whether every observer sees every target alive.
func allSeeAlive(observers, targets []*Node) bool {
	for _, o := range observers {
		for _, tg := range targets {
			if st, _ := stateOf(o, tg.Name()); st != StateAlive {
				return false
			}
		}
	}
	return true
}

// stateOf is the state and since of name as o sees it ("" if unknown).
func stateOf(o *Node, name string) (State, time.Time) {
	for _, m := range o.Members() {
		if m.Name == name {
			return m.State, m.Since
		}
	}
	return "", time.Time{}
}

// views summarises every node's view, for failure messages.
func views(nodes []*Node) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "\n  %s:", n.Name())
		for _, m := range n.Members() {
			fmt.Fprintf(&b, " %s=%s", m.Name, m.State)
		}
	}
	return b.String()
}

// testNet is this test process's own loopback /16 ("127.N"), from netalloc, so that packages
// testing in parallel never share an address.
var testNet = netalloc.LoopbackNet16ForProcess()
