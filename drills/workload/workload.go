// Package workload is the drill's simulated users. Each client lives near one region: it sends
// from that region's client subnet, resolves app.<zone> through the GeoDNS instances like a stub
// resolver (its own region's name server first, the others after a timeout; answers cached for
// their TTL), then writes unique keys through the web node the answer named and reads each back
// with the write's LSN (read-your-writes). Every operation is recorded, Jepsen style, as invoke
// then ok / fail / info in the history.
package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/topology"
)

// Config configures the workload.
type Config struct {
	// Topology is the running topology.
	Topology *topology.Topology
	// Endpoint is where a node's port is reached from here (the runtime's answer).
	Endpoint func(node string, port int) (string, error)
	// ClientsPerRegion is how many clients run near each region.
	ClientsPerRegion int
	// WriteRate is writes per second per client.
	WriteRate float64
	// ReadAfterWrite makes each client read every key back after writing it.
	ReadAfterWrite bool
	// ReadOthers makes each client, after its write, read the latest key acknowledged to a client
	// of another region (no min_lsn: what any user would see).
	ReadOthers bool
	// HotKeys, when positive, makes the clients share that many keys instead of writing unique
	// ones: every write overwrites one of them (with a unique value), which is what a cache in
	// front of the database is for.
	HotKeys int
	// ReadsPerWrite is how many reads of random hot keys a client makes after each write when
	// HotKeys is set; a read of a key the client wrote asks for its own last write of it.
	ReadsPerWrite int
	// JobRate, when positive, adds ClientsPerRegion job clients near each region, each publishing
	// that many jobs per second (POST /jobs) through the web tier it resolves.
	JobRate float64
	// JobWorkMS is the work each job asks of a worker, in milliseconds.
	JobWorkMS int
	// Seed makes the clients' choices (which answer address, pacing jitter) repeatable.
	Seed uint64
	// KeyPrefix starts every key written (e.g. "s7-"), so that runs on one cluster (exploration
	// reuses it) never write, read or judge each other's keys.
	KeyPrefix string
	// Recorder receives the history.
	Recorder *history.Recorder
	// RequestTimeout bounds one HTTP request; past it a write's outcome is unknown (info).
	RequestTimeout time.Duration
	// DNSTimeout is how long a client waits for one name server before trying the next.
	DNSTimeout time.Duration
	// MaxOps bounds the operations one client issues (a safety bound; default 100000).
	MaxOps int
	// UseECS makes clients tell GeoDNS where they are with an EDNS Client Subnet option (their
	// region's first non-loopback client subnet) instead of their source address, and send from
	// no fixed source: for runtimes whose nodes a loopback source cannot reach (docker).
	UseECS bool
	// Logger receives the workload's logs.
	Logger *slog.Logger
}

// Workload is a running set of clients.
type Workload struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	nextProc int
	ipRegion map[string]string // web node IP → region
	latest   map[string]string // region → the latest key acknowledged to a client there
}

// Start starts every client; Stop ends them.
func Start(ctx context.Context, cfg Config) (*Workload, error) {
	if cfg.Topology == nil || cfg.Endpoint == nil || cfg.Recorder == nil {
		return nil, errors.New("workload: Topology, Endpoint and Recorder are required")
	}
	if cfg.ClientsPerRegion <= 0 {
		cfg.ClientsPerRegion = 2
	}
	if cfg.WriteRate <= 0 {
		cfg.WriteRate = 5
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 1200 * time.Millisecond
	}
	if cfg.DNSTimeout <= 0 {
		cfg.DNSTimeout = 250 * time.Millisecond
	}
	if cfg.MaxOps <= 0 {
		cfg.MaxOps = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Workload{cfg: cfg, ipRegion: map[string]string{}}
	w.indexWebIPs()
	ctx, w.cancel = context.WithCancel(ctx)
	for ri, r := range cfg.Topology.Regions {
		servers, err := w.nameServers(r.Name)
		if err != nil {
			w.cancel()
			return nil, err
		}
		jobClients := 0
		if cfg.JobRate > 0 {
			jobClients = cfg.ClientsPerRegion
		}
		for i := range cfg.ClientsPerRegion + jobClients {
			c := &client{
				w: w, region: r.Name, servers: servers, jobs: i >= cfg.ClientsPerRegion,
				rng: rand.New(rand.NewPCG(cfg.Seed, uint64(ri*1000+i))),
			}
			if cfg.UseECS {
				c.ecs = r.ECSSubnet()
			} else {
				c.src = r.ClientSource(i)
			}
			c.http = c.newHTTP()
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				c.run(ctx)
			}()
		}
	}
	return w, nil
}

// Stop ends every client and waits for their last operation to complete.
func (w *Workload) Stop() {
	w.cancel()
	w.wg.Wait()
}

// proc hands out process ids; a client whose operation ended "info" takes a new one.
func (w *Workload) proc() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextProc++
	return w.nextProc
}

// nameServers lists the GeoDNS instances in the order a client near region asks them.
func (w *Workload) nameServers(region string) ([]string, error) {
	var own, others []string
	for _, n := range w.cfg.Topology.NodesOf(topology.RoleDNS, "") {
		addr, err := w.cfg.Endpoint(n.Name, topology.PortDNS)
		if err != nil {
			return nil, fmt.Errorf("workload: dns endpoint of %s: %w", n.Name, err)
		}
		if n.Region == region {
			own = append(own, addr)
		} else {
			others = append(others, addr)
		}
	}
	if len(own)+len(others) == 0 {
		return nil, errors.New("workload: the topology has no GeoDNS instance")
	}
	return append(own, others...), nil
}

// client is one simulated user.
type client struct {
	w       *Workload
	region  string
	servers []string
	src     netip.Addr   // fixed source address (loopback runtimes), or none
	ecs     netip.Prefix // EDNS Client Subnet to send (UseECS), or none
	rng     *rand.Rand
	http    *http.Client

	// jobs: the client publishes jobs (JobRate) instead of writing and reading keys.
	jobs bool

	process int
	answer  []string
	expires time.Time
	seq     int
	// written holds the LSN and epoch of the client's last acknowledged write of each hot key, so
	// that its reads of a key it wrote ask for that write (read-your-writes per key).
	written map[string][2]uint64
	// interval is the time between two of the client's steps (writes or job publications).
	interval time.Duration
}

// key is the client's current key: its region, process and sequence number after the run's
// prefix, or a random hot key.
func (c *client) key() string {
	if c.w.cfg.HotKeys > 0 {
		return c.hotKey()
	}
	return fmt.Sprintf("%s%s-p%d-%d", c.w.cfg.KeyPrefix, c.region, c.process, c.seq)
}

// hotKey is one of the shared hot keys, at random.
func (c *client) hotKey() string {
	return fmt.Sprintf("%shot-%d", c.w.cfg.KeyPrefix, c.rng.IntN(c.w.cfg.HotKeys))
}

// value is the value of the client's current write: unique in the run, so that a read's value
// names the write that produced it.
func (c *client) value() string {
	if c.w.cfg.HotKeys > 0 {
		return fmt.Sprintf("%s-p%d-v%d", c.region, c.process, c.seq)
	}
	return fmt.Sprintf("v%d", c.seq)
}

func (c *client) newHTTP() *http.Client {
	d := &net.Dialer{Timeout: c.w.cfg.RequestTimeout}
	if c.src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.src.AsSlice()}
	}
	return &http.Client{
		Timeout: c.w.cfg.RequestTimeout,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     5 * time.Second,
		},
	}
}

func (c *client) run(ctx context.Context) {
	c.process = c.w.proc()
	rate, step := c.w.cfg.WriteRate, c.writeAndRead
	if c.jobs {
		rate, step = c.w.cfg.JobRate, c.publishJob
	}
	interval := time.Duration(float64(time.Second) / rate)
	c.interval = interval
	// Spread clients over the first interval so their writes do not march in lock step.
	next := time.Now().Add(time.Duration(c.rng.Int64N(int64(interval) + 1)))
	for n := 0; n < c.w.cfg.MaxOps; n++ {
		if !sleepUntil(ctx, next) {
			return
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now // never queue up a backlog: a slow system gets fewer writes, not a burst
		}
		step(ctx)
	}
}

// resolve returns the web addresses to use, asking the name servers when the cached answer has
// expired. A failed lookup keeps the last answer (the user retries what they had).
func (c *client) resolve(ctx context.Context) []string {
	if time.Now().Before(c.expires) && len(c.answer) > 0 {
		return c.answer
	}
	ips, ttl, err := lookup(ctx, c.servers, c.src, c.ecs, c.w.cfg.Topology.DNS.Zone, c.w.cfg.DNSTimeout)
	if err != nil {
		c.expires = time.Now().Add(c.w.cfg.DNSTimeout) // do not hammer dead name servers
		c.record(history.Op{Type: history.TypeDNS, Error: err.Error()})
		return c.answer
	}
	c.answer, c.expires = ips, time.Now().Add(ttl)
	c.record(history.Op{Type: history.TypeDNS, DNSAnswer: ips, DNSRegion: c.w.regionOf(ips)})
	return c.answer
}

// lookup resolves app.<zone> like a stub resolver: each name server in turn until one answers
// with addresses. It sends from src when valid and carries ecs in an EDNS Client Subnet option
// when valid. It returns the addresses and their TTL.
func lookup(ctx context.Context, servers []string, src netip.Addr, ecs netip.Prefix, zone string, timeout time.Duration) ([]string, time.Duration, error) {
	q := new(dns.Msg)
	q.SetQuestion("app."+zone, dns.TypeA)
	q.RecursionDesired = false
	if ecs.IsValid() {
		family := uint16(1)
		if ecs.Addr().Is6() {
			family = 2
		}
		q.SetEdns0(1232, false)
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family,
			SourceNetmask: uint8(ecs.Bits()), Address: ecs.Addr().AsSlice()})
	}
	var errs []string
	for _, server := range servers {
		dc := &dns.Client{Net: "udp", Timeout: timeout}
		if src.IsValid() {
			dc.Dialer = &net.Dialer{Timeout: timeout, LocalAddr: &net.UDPAddr{IP: src.AsSlice()}}
		}
		resp, _, err := dc.ExchangeContext(ctx, q, server)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", server, err))
			continue // a stub resolver tries the next name server
		}
		var ips []string
		ttl := uint32(0)
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok {
				ips = append(ips, a.A.String())
				ttl = a.Hdr.Ttl
			}
		}
		if resp.Rcode != dns.RcodeSuccess || len(ips) == 0 {
			errs = append(errs, fmt.Sprintf("%s: %s with %d addresses", server, dns.RcodeToString[resp.Rcode], len(ips)))
			continue
		}
		return ips, time.Duration(ttl) * time.Second, nil
	}
	return nil, 0, errors.New(strings.Join(errs, "; "))
}

// Prober asks GeoDNS where a user near a region is sent, exactly as the workload's clients do
// (same source address or ECS option, same name-server order), for the runner's conditions.
type Prober struct{ w *Workload }

// NewProber builds a prober for the topology; useECS is Config.UseECS.
func NewProber(t *topology.Topology, endpoint func(string, int) (string, error), useECS bool) *Prober {
	w := &Workload{cfg: Config{Topology: t, Endpoint: endpoint, DNSTimeout: 300 * time.Millisecond, UseECS: useECS}, ipRegion: map[string]string{}}
	w.indexWebIPs()
	return &Prober{w: w}
}

// probeClient is the canary's client number, past the workload's own clients.
const probeClient = 49

// Probe returns the region a user near region is sent to now, and the addresses.
func (p *Prober) Probe(ctx context.Context, region string) (string, []string, error) {
	r, ok := p.w.cfg.Topology.Region(region)
	if !ok {
		return "", nil, fmt.Errorf("unknown region %q", region)
	}
	servers, err := p.w.nameServers(region)
	if err != nil {
		return "", nil, err
	}
	src, ecs := r.ClientSource(probeClient), netip.Prefix{}
	if p.w.cfg.UseECS {
		src, ecs = netip.Addr{}, r.ECSSubnet()
	}
	ips, _, err := lookup(ctx, servers, src, ecs, p.w.cfg.Topology.DNS.Zone, p.w.cfg.DNSTimeout)
	if err != nil {
		return "", nil, err
	}
	return p.w.regionOf(ips), ips, nil
}

func (w *Workload) indexWebIPs() {
	for _, n := range w.cfg.Topology.NodesOf(topology.RoleWeb, "") {
		if addr, err := w.cfg.Endpoint(n.Name, topology.PortWeb); err == nil {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				w.ipRegion[host] = n.Region
			}
		}
	}
}

func (w *Workload) regionOf(ips []string) string {
	for _, ip := range ips {
		if r, ok := w.ipRegion[ip]; ok {
			return r
		}
	}
	return ""
}

func (c *client) record(op history.Op) history.Op {
	op.Process, op.ClientRegion = c.process, c.region
	op, err := c.w.cfg.Recorder.Append(op)
	if err != nil {
		c.w.cfg.Logger.Warn("record history", "err", err)
	}
	return op
}

// response is what the web tier answers.
type response struct {
	Value   string              `json:"value"`
	Found   bool                `json:"found"`
	LSN     uint64              `json:"lsn"`
	KeyLSN  uint64              `json:"key_lsn"`
	Epoch   uint64              `json:"epoch"`
	DBNode  string              `json:"db_node"`
	Node    string              `json:"node"`
	Region  string              `json:"region"`
	Error   string              `json:"error"`
	Outcome string              `json:"outcome"`
	Cache   history.CacheSource `json:"cache"`
	TTLMS   int64               `json:"cache_ttl_ms"`
}

func (c *client) writeAndRead(ctx context.Context) {
	answer := c.resolve(ctx)
	if len(answer) == 0 {
		// No address at all: the user cannot even try; nothing reaches the system.
		c.seq++
		key := c.key()
		c.record(history.Op{Type: history.TypeInvoke, F: history.FWrite, Key: key, Value: "v"})
		c.record(history.Op{Type: history.TypeFail, F: history.FWrite, Key: key, Value: "v", Error: "no address for app"})
		return
	}
	ip := answer[c.rng.IntN(len(answer))]
	c.seq++
	key := c.key()
	value := c.value()
	base := "http://" + net.JoinHostPort(ip, fmt.Sprint(topology.PortWeb))
	c.record(history.Op{Type: history.TypeInvoke, F: history.FWrite, Key: key, Value: value, DNSAnswer: answer})
	typ, resp, err := c.do(ctx, http.MethodPut, base+"/kv/"+key, value, true)
	op := history.Op{Type: typ, F: history.FWrite, Key: key, Value: value, DNSAnswer: answer,
		WebNode: resp.Node, DBNode: resp.DBNode, Epoch: resp.Epoch, LSN: resp.LSN, Error: errText(err, resp)}
	c.record(op)
	if typ == history.TypeInfo {
		c.process = c.w.proc() // Jepsen: a process with an indeterminate op never issues again
		c.written = nil        // the new process has written nothing yet
		c.expires = time.Time{}
		return
	}
	if typ != history.TypeOK {
		c.expires = time.Time{} // a failing region: look the name up again next time
		return
	}
	c.w.acked(c.region, key)
	if c.w.cfg.ReadAfterWrite && ctx.Err() == nil {
		c.read(ctx, base, key, resp.LSN, resp.Epoch, answer)
	}
	if c.w.cfg.HotKeys > 0 {
		if c.written == nil {
			c.written = map[string][2]uint64{}
		}
		c.written[key] = [2]uint64{resp.LSN, resp.Epoch}
	}
	// The hot reads are spread over the time until the next write, as users who read all the
	// time would make them, not fired in one burst after it: bursts overlap only by chance, and a
	// cache stampede is many readers of one key at the moment its entry goes.
	gap := c.interval / time.Duration(c.w.cfg.ReadsPerWrite+1)
	started := time.Now()
	for i := 0; c.w.cfg.HotKeys > 0 && i < c.w.cfg.ReadsPerWrite && ctx.Err() == nil; i++ {
		if !sleepUntil(ctx, started.Add(time.Duration(i)*gap)) {
			break
		}
		k := c.hotKey()
		own := c.written[k]
		c.read(ctx, base, k, own[0], own[1], answer)
	}
	if c.w.cfg.ReadOthers && ctx.Err() == nil {
		// Another region's latest acknowledged key, as any user might read it (no min_lsn).
		if other := c.w.otherKey(c.region); other != "" {
			c.read(ctx, base, other, 0, 0, answer)
		}
	}
}

// publishJob publishes one job with a unique id through the web tier (POST /jobs) and records
// it: ok once the region's queue acknowledged it, info when it may have been stored.
func (c *client) publishJob(ctx context.Context) {
	c.seq++
	id := fmt.Sprintf("%sjob-%s-p%d-%d", c.w.cfg.KeyPrefix, c.region, c.process, c.seq)
	answer := c.resolve(ctx)
	if len(answer) == 0 {
		c.record(history.Op{Type: history.TypeInvoke, F: history.FEnqueue, Key: id})
		c.record(history.Op{Type: history.TypeFail, F: history.FEnqueue, Key: id, Error: "no address for app"})
		return
	}
	ip := answer[c.rng.IntN(len(answer))]
	body := fmt.Sprintf(`{"id":%q,"work_ms":%d}`, id, c.w.cfg.JobWorkMS)
	url := "http://" + net.JoinHostPort(ip, fmt.Sprint(topology.PortWeb)) + "/jobs"
	c.record(history.Op{Type: history.TypeInvoke, F: history.FEnqueue, Key: id, DNSAnswer: answer})
	typ, resp, err := c.do(ctx, http.MethodPost, url, body, true)
	c.record(history.Op{Type: typ, F: history.FEnqueue, Key: id, DNSAnswer: answer, WebNode: resp.Node, Region: resp.Region,
		Error: errText(err, resp)})
	switch typ {
	case history.TypeInfo:
		c.process = c.w.proc()
		c.expires = time.Time{}
	case history.TypeFail:
		c.expires = time.Time{}
	}
}

// read reads key through base and records it; minLSN > 0 asks for read-your-writes of the write
// acknowledged at minLSN in epoch minEpoch. A read never ends info: one that failed changed nothing.
func (c *client) read(ctx context.Context, base, key string, minLSN, minEpoch uint64, answer []string) {
	url := base + "/kv/" + key
	if minLSN > 0 {
		url += fmt.Sprintf("?min_lsn=%d&min_epoch=%d", minLSN, minEpoch)
	}
	c.record(history.Op{Type: history.TypeInvoke, F: history.FRead, Key: key, MinLSN: minLSN, DNSAnswer: answer})
	typ, r, err := c.do(ctx, http.MethodGet, url, "", false)
	c.record(history.Op{Type: typ, F: history.FRead, Key: key, MinLSN: minLSN, Value: r.Value, Found: r.Found,
		WebNode: r.Node, DBNode: r.DBNode, Epoch: r.Epoch, LSN: r.LSN, KeyLSN: r.KeyLSN, Region: r.Region, Cache: r.Cache,
		CacheTTLMS: r.TTLMS, DNSAnswer: answer, Error: errText(err, r)})
}

// acked remembers key as the latest acknowledged to a client of region.
func (w *Workload) acked(region, key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest == nil {
		w.latest = map[string]string{}
	}
	w.latest[region] = key
}

// otherKey is the latest key acknowledged to a client outside region ("" if none yet).
func (w *Workload) otherKey(region string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.cfg.Topology.RegionNames() {
		if r != region && w.latest[r] != "" {
			return w.latest[r]
		}
	}
	return ""
}

func errText(err error, r response) string {
	if err != nil {
		return err.Error()
	}
	return r.Error
}

// do sends one request and classifies its outcome: ok (2xx, or 404 for a read: the key is
// definitely absent), fail (the request definitely had no effect), info (it may have).
func (c *client) do(ctx context.Context, method, url, body string, write bool) (string, response, error) {
	var r response
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return history.TypeFail, r, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return history.TypeFail, r, err // never connected: the request did not happen
		}
		if write {
			return history.TypeInfo, r, err
		}
		return history.TypeFail, r, err // a read that failed changed nothing
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(raw, &r)
	switch {
	case resp.StatusCode == http.StatusOK:
		return history.TypeOK, r, nil
	case !write && resp.StatusCode == http.StatusNotFound:
		return history.TypeOK, r, nil
	case write && (resp.StatusCode == http.StatusGatewayTimeout || r.Outcome == "unknown"):
		return history.TypeInfo, r, fmt.Errorf("%d %s", resp.StatusCode, r.Error)
	default:
		return history.TypeFail, r, fmt.Errorf("%d %s", resp.StatusCode, r.Error)
	}
}

// sleepUntil waits until t (at once when it has passed); false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
