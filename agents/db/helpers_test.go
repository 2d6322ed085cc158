package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/topology/netalloc"
)

// Test address plan: every test owns testNet.<octet>.0/24 (octets listed next to each test); db
// nodes are .1-.9 port 7000, the witness .250 port 7000, link proxies .100+ port 7000+.

// waitFor polls cond every 10 ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holdsFor checks cond stays true for d (polling), for asserting that something does NOT happen.
func holdsFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testLink is a tiny TCP proxy standing for a cross-region link. Cut closes its live connections
// and black-holes new ones (accepted, never answered) until Heal.
type testLink struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newTestLink(t *testing.T, listen, upstream string) *testLink {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("link listen %s: %v", listen, err)
	}
	l := &testLink{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	t.Cleanup(l.close)
	return l
}

func (l *testLink) URL() string { return "http://" + l.ln.Addr().String() }

func (l *testLink) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		held := l.cut // black hole: keep the connection, never answer
		l.mu.Unlock()
		if !held {
			l.wg.Add(1)
			go l.pipe(c)
		}
	}
}

func (l *testLink) pipe(down net.Conn) {
	defer l.wg.Done()
	up, err := net.DialTimeout("tcp", l.upstream, 2*time.Second)
	if err != nil {
		l.drop(down)
		return
	}
	l.mu.Lock()
	if l.cut || l.closed {
		l.mu.Unlock()
		up.Close()
		l.drop(down)
		return
	}
	l.conns[up] = struct{}{}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		io.Copy(up, down)
		close(done)
	}()
	io.Copy(down, up)
	l.drop(down)
	l.drop(up)
	<-done
}

func (l *testLink) drop(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

func (l *testLink) closeAllLocked() {
	for c := range l.conns {
		c.Close()
		delete(l.conns, c)
	}
}

// Cut breaks the link: live connections close, new ones hang unanswered.
func (l *testLink) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	l.closeAllLocked()
}

// Heal restores the link (held connections are closed so clients retry).
func (l *testLink) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
	l.closeAllLocked()
}

func (l *testLink) close() {
	l.mu.Lock()
	l.closed = true
	l.ln.Close()
	l.closeAllLocked()
	l.mu.Unlock()
	l.wg.Wait()
}

// cluster runs db nodes (and optionally a witness) in-process with a gossip-like view the test
// controls: liveness per node, and "hidden" pairs for gossip partitions.
type cluster struct {
	t      *testing.T
	octet  int
	voters []string

	mu       sync.Mutex
	cfgs     map[string]Config
	nodes    map[string]*Node // running instances
	alive    map[string]bool
	since    map[string]time.Time
	hidden   map[[2]string]time.Time // observer, peer → hidden since
	seen     map[[2]string]State     // observer, peer → last state the observer saw
	links    map[[2]string]*testLink // from, to → proxy
	direct   map[string]string       // name → direct base URL
	nextLink int
}

func newCluster(t *testing.T, octet int) *cluster {
	return &cluster{
		t: t, octet: octet,
		cfgs: map[string]Config{}, nodes: map[string]*Node{}, alive: map[string]bool{},
		since: map[string]time.Time{}, hidden: map[[2]string]time.Time{}, seen: map[[2]string]State{},
		links: map[[2]string]*testLink{}, direct: map[string]string{},
	}
}

func (c *cluster) addr(host int) string { return fmt.Sprintf(testNet+".%d.%d:7000", c.octet, host) }

// startWitness runs a standalone voter named "witness".
func (c *cluster) startWitness() *Voter {
	t := c.t
	v, err := OpenVoter(t.TempDir(), nil, nil, testLogger(t).With("voter", "witness"))
	if err != nil {
		t.Fatalf("open witness: %v", err)
	}
	ln, err := net.Listen("tcp", c.addr(250))
	if err != nil {
		t.Fatalf("witness listen: %v", err)
	}
	srv := &http.Server{Handler: peerauth.Require(testAuthKey, v.Handler())}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c.mu.Lock()
	c.direct["witness"] = "http://" + ln.Addr().String()
	c.mu.Unlock()
	return v
}

// addNode configures a db node at 127.91.<octet>.<host>:7000; mod adjusts the config.
func (c *cluster) addNode(name, region string, host int, bootstrap bool, mod func(*Config)) {
	cfg := Config{
		Name: name, Region: region, DataDir: c.t.TempDir(), Listen: c.addr(host), Bootstrap: bootstrap,
		Replication: ReplicationAsync, Fencing: FencingLease,
		FailoverAfter: 500 * time.Millisecond, LeaseDuration: time.Second,
		Voters: c.voters, PeerURL: c.peerURL(name), View: c.view(name),
		Logger: testLogger(c.t), AuthKey: testAuthKey,
	}
	if mod != nil {
		mod(&cfg)
	}
	c.mu.Lock()
	c.cfgs[name] = cfg
	c.direct[name] = "http://" + cfg.Listen
	c.mu.Unlock()
}

// start opens and starts a configured node and marks it alive.
func (c *cluster) start(name string) *Node {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[name]
	c.mu.Unlock()
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", name, err)
	}
	if err := n.Start(); err != nil {
		n.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.t.Cleanup(func() { n.Close() })
	c.mu.Lock()
	c.nodes[name] = n
	c.mu.Unlock()
	c.setAlive(name, true)
	return n
}

// kill closes a node and marks it dead in every view.
func (c *cluster) kill(name string) {
	c.mu.Lock()
	n := c.nodes[name]
	delete(c.nodes, name)
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
	c.setAlive(name, false)
}

func (c *cluster) setAlive(name string, alive bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alive[name] != alive {
		c.alive[name] = alive
		c.since[name] = time.Now()
	}
}

// hide makes a and b see each other as dead (a gossip partition), or visible again.
func (c *cluster) hide(a, b string, hidden bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range [][2]string{{a, b}, {b, a}} {
		if hidden {
			c.hidden[k] = time.Now()
		} else if _, ok := c.hidden[k]; ok {
			delete(c.hidden, k)
			c.since[k[1]] = maxTime(c.since[k[1]], time.Now())
		}
	}
}

// link routes from → to through a cuttable proxy.
func (c *cluster) link(from, to string) *testLink {
	c.mu.Lock()
	c.nextLink++
	listen := fmt.Sprintf(testNet+".%d.%d:%d", c.octet, 100+c.nextLink, 7000+c.nextLink)
	upstream := c.direct[to][len("http://"):]
	c.mu.Unlock()
	l := newTestLink(c.t, listen, upstream)
	c.mu.Lock()
	c.links[[2]string{from, to}] = l
	c.mu.Unlock()
	return l
}

func (c *cluster) peerURL(observer string) func(string) string {
	return func(name string) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		if l := c.links[[2]string{observer, name}]; l != nil {
			return l.URL()
		}
		return c.direct[name]
	}
}

func (c *cluster) view(observer string) ClusterView {
	return viewFunc(func() []PeerState { return c.peers(observer) })
}

type viewFunc func() []PeerState

func (f viewFunc) DBPeers() []PeerState { return f() }

func (c *cluster) peers(observer string) []PeerState {
	type peer struct {
		name, region string
		node         *Node
		alive        bool
		since        time.Time
	}
	c.mu.Lock()
	var ps []peer
	for name, cfg := range c.cfgs {
		if name == observer {
			continue
		}
		p := peer{name: name, region: cfg.Region, node: c.nodes[name], alive: c.alive[name], since: c.since[name]}
		if hs, ok := c.hidden[[2]string{observer, name}]; ok {
			p.alive = false
			p.since = maxTime(p.since, hs)
		}
		ps = append(ps, p)
	}
	c.mu.Unlock()
	out := make([]PeerState, 0, len(ps))
	for _, p := range ps {
		key := [2]string{observer, p.name}
		if p.alive && p.node != nil {
			st := p.node.State() // outside c.mu: State takes the peer's lock
			c.mu.Lock()
			c.seen[key] = st
			c.mu.Unlock()
		}
		c.mu.Lock()
		st := c.seen[key]
		c.mu.Unlock()
		out = append(out, PeerState{Name: p.name, Region: p.region, Alive: p.alive, Since: p.since,
			Primary: st.Primary, Epoch: st.Epoch, LSN: st.LSN, LastEpoch: st.LastEpoch, Unfit: !st.Healthy})
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *cluster) node(name string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[name]
}

// client is a direct client of a node (as a client in the node's own region would be).
func (c *cluster) client(name string) *Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Client{BaseURL: c.direct[name], HTTP: peerauth.Client(testAuthKey, 10*time.Second, nil), Node: name}
}

// putRetry writes until it succeeds or timeout passes.
func putRetry(t *testing.T, cl *Client, key, value string, timeout time.Duration) WriteResult {
	t.Helper()
	var res WriteResult
	waitFor(t, timeout, "write "+key+" to succeed", func() bool {
		var err error
		res, err = cl.Put(context.Background(), key, value)
		return err == nil
	})
	return res
}

func isAPIError(err error, status int, msg string) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == status && apiErr.Message == msg
}

// testNet is this test process's own loopback /16 ("127.N"), from netalloc, so that packages
// testing in parallel never share an address.
var testNet = netalloc.LoopbackNet16ForProcess()

// testAuthKey signs every call of the tests' nodes and clients.
var testAuthKey = peerauth.Derive("db-test-secret", peerauth.PurposeDB)
