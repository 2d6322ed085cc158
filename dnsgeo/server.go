// Package dnsgeo is drill's GeoDNS: an authoritative DNS server (UDP and TCP, miekg/dns) for the
// topology's zone whose answer for app.<zone> is the healthy web nodes of the client's nearest
// healthy region. The client's region comes from its EDNS Client Subnet (RFC 7871) or its source
// address, matched against the regions' client subnets; region health comes from gossip
// membership (a region is up while one of its web nodes is alive and healthy, goes down only on
// gossip's dead/left verdict and is re-admitted only after a hold-down). Answers are precomputed
// per region whenever membership changes, so a query only classifies the client and picks a
// ready-made answer. On Linux, UDP is read in batches by a few long-lived readers (udp.go,
// udp_linux.go) that answer the hot queries (app.Z and <region>.app.Z, A and AAAA) straight from
// precomputed wire bytes (fastpath.go), byte for byte as the miekg/dns path would.
//
// Names served (zone Z):
//
//	Z                 SOA, NS (ns-<region>-<i>.Z per DNS instance); ANY → HINFO "RFC8482"
//	ns-<region>-<i>.Z A glue (the instance's topology address)
//	app.Z             A: web nodes of the client's nearest healthy region; AAAA: NODATA
//	<region>.app.Z    A: that region's web nodes while it is admitted, else NODATA (NOERROR, SOA)
//	_status.Z         TXT: one line per region, routing decisions, this instance's fail-static state
//	id.server. / hostname.bind. (class CHAOS) TXT: the instance name
//
// Anything else in Z is NXDOMAIN with the SOA; names outside Z are REFUSED; there is no recursion.
package dnsgeo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/topology"
)

// Membership is the gossip view the server follows (agents/gossip's Node satisfies it).
type Membership interface {
	// Members lists every known member, alive or not (this node included or not: both work).
	Members() []gossip.Member
	// Subscribe returns a channel pinged after every membership or metadata change, and a
	// function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
}

// Config configures a Server.
type Config struct {
	// Topology is the plan: zone, TTLs, hold-down, regions, client subnets and node addresses.
	Topology *topology.Topology
	// Listen is the ip:port to bind for both UDP and TCP. Port 0 picks one free port for both.
	// Empty means the topology address of Instance on topology.PortDNS. Ignored for a transport
	// whose socket is given in PacketConn or Listener.
	Listen string
	// PacketConn is an already bound UDP socket to serve on (optional; the server closes it).
	PacketConn net.PacketConn
	// Listener is an already bound TCP listener to serve on (optional; the server closes it).
	Listener net.Listener
	// Instance is this DNS node's name, e.g. us-east-dns-1; answered to CHAOS id.server. and used
	// to tell "other" members from ourselves for fail-static.
	Instance string
	// Region is this instance's region (shown in _status). Empty means the topology node's region.
	Region string
	// Members is the gossip membership. Nil serves the topology plan statically (every region
	// up, topology node addresses): useful without a cluster.
	Members Membership
	// QueryLog receives one JSON line per query (time, client, ecs, qname, qtype, rcode, region,
	// reason). Nil turns the query log off.
	QueryLog io.Writer
	// Registry receives the server's Prometheus metrics. Nil keeps them private (not exported).
	Registry *prometheus.Registry
	// Logger logs state changes and serving errors. Nil discards.
	Logger *slog.Logger
	// Clock is the time source for health decisions (hold-down, "since"). Nil means time.Now;
	// tests pass a controllable clock to drive hold-down without waiting.
	Clock func() time.Time
	// StartupGrace is how long after New a region that gossip has not yet shown healthy keeps
	// its bootstrap answers (its web nodes' topology addresses, each client to its nearest
	// region) instead of being failed while the cluster is still starting. It ends early for a
	// region once gossip shows it healthy. 0 means DefaultStartupGrace; negative means none.
	StartupGrace time.Duration
	// Drop, when set, is asked about every query's source address before the query is parsed; a
	// dropped source gets no answer at all (UDP: the packet is discarded; TCP: the connection is
	// held silently). drill sets it from the node's gossip fault rules to black-hole a region.
	// It must be fast and safe for concurrent use. Queries handed to Handler() are not checked.
	Drop func(netip.Addr) bool
	// ResponseRate limits UDP answers per second to each client network (IPv4 /24, IPv6 /56),
	// with one second's worth of burst; a query over the rate gets no answer (ratelimit.go). It
	// is what keeps a server on a public address from being used to amplify forged queries. 0
	// means no limit (drill's cluster GeoDNS listens on loopback and private container networks,
	// and all of a drill's clients share one source address there).
	ResponseRate float64
	// MaxTCPConns caps the TCP connections served at once; further connections wait in the
	// listen backlog until one closes (idle connections close after miekg/dns's idle timeout).
	// 0 means DefaultMaxTCPConns; negative means no cap.
	MaxTCPConns int
}

// DefaultMaxTCPConns is the default TCP connection cap: far above what drill's clients open, far
// below what exhausts the process's file descriptors.
const DefaultMaxTCPConns = 256

// DefaultStartupGrace bounds how long a starting instance answers a region from the topology
// plan before gossip has shown it healthy: longer than a cluster takes to converge here (a few
// seconds), short enough that a region dead at startup is failed soon after.
const DefaultStartupGrace = 15 * time.Second

// Server is a running (or ready to run) GeoDNS instance.
type Server struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	zone     string // lower-case FQDN with trailing dot
	instance string
	region   string

	regions  []string       // file order
	subnets  []clientSubnet // longest prefix first
	names    map[string]nameEntry
	appName  string
	ttl      uint32 // healthy TTL, seconds
	degraded uint32 // degraded TTL, seconds
	holdDown time.Duration
	// learnUntil ends the startup grace: until then a region not yet seen healthy in gossip is
	// answered from the topology plan.
	learnUntil time.Time
	topoWeb    map[string]topology.Node // web node name → node, for addresses gossip lacks
	topoNodes  map[string]topology.Node // every node by name

	nsRRs   []dns.RR // apex NS RRset
	glue    []dns.RR // A records of the name servers, same order as nsRRs
	hinfo   []dns.RR // RFC 8482 answer to ANY at the apex
	chaosID []dns.RR // CHAOS TXT answer for id.server.
	chaosHB []dns.RR // CHAOS TXT answer for hostname.bind.

	metrics *metrics
	qlog    *queryLog

	// dropUDP says whether a UDP query from an address gets no answer: Config.Drop and the
	// response-rate limit (TCP queries are checked against Config.Drop alone). Nil drops nothing.
	dropUDP func(netip.Addr) bool

	view atomic.Pointer[view]

	hmu    sync.Mutex // serialises recompute; guards health
	health []regionHealth

	mu sync.Mutex // guards the lifecycle fields below

	udp, tcp  *dns.Server
	fastUDP   *batchUDP     // serves UDP instead of udp when the socket allows (see udp.go)
	stopHold  chan struct{} // closed by Shutdown: releases TCP connections held for dropped sources
	udpAddr   net.Addr
	tcpAddr   net.Addr
	started   bool
	stopWatch chan struct{}
	watchDone chan struct{}
}

// clientSubnet maps one configured client network to its region.
type clientSubnet struct {
	prefix netip.Prefix
	region int
	text   string // prefix as configured, for reasons
}

// nameKind is what a name in the zone is.
type nameKind uint8

const (
	kindNone nameKind = iota // in the zone but nonexistent
	kindApex
	kindApp
	kindRegionApp
	kindNS
	kindStatus
)

// nameEntry is one existing name of the zone.
type nameEntry struct {
	kind  nameKind
	index int // region index (kindRegionApp) or name-server index (kindNS)
}

// New checks cfg and prepares a Server; it binds nothing until Start.
func New(cfg Config) (*Server, error) {
	if cfg.Topology == nil {
		return nil, errors.New("dnsgeo: Config.Topology is required")
	}
	t := cfg.Topology
	zone := dns.CanonicalName(t.DNS.Zone)
	if _, ok := dns.IsDomainName(zone); !ok || zone == "." {
		return nil, fmt.Errorf("dnsgeo: invalid zone %q", t.DNS.Zone)
	}
	if len(t.Regions) == 0 {
		return nil, errors.New("dnsgeo: topology has no regions")
	}
	s := &Server{
		cfg:       cfg,
		logger:    cfg.Logger,
		now:       cfg.Clock,
		zone:      zone,
		instance:  cfg.Instance,
		region:    cfg.Region,
		regions:   t.RegionNames(),
		names:     make(map[string]nameEntry),
		appName:   "app." + zone,
		ttl:       seconds(t.DNS.TTL.D()),
		degraded:  seconds(t.DNS.DegradedTTL.D()),
		holdDown:  t.DNS.HoldDown.D(),
		topoWeb:   make(map[string]topology.Node),
		topoNodes: make(map[string]topology.Node),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.ResponseRate < 0 {
		return nil, fmt.Errorf("dnsgeo: ResponseRate %v is negative", cfg.ResponseRate)
	}
	s.dropUDP = cfg.Drop
	if cfg.ResponseRate > 0 {
		// Wall time, not Clock: Clock drives health decisions in tests, rates are real.
		rl := newRateLimiter(cfg.ResponseRate, time.Now)
		if drop := cfg.Drop; drop != nil {
			s.dropUDP = func(a netip.Addr) bool { return drop(a) || !rl.allow(a) }
		} else {
			s.dropUDP = func(a netip.Addr) bool { return !rl.allow(a) }
		}
	}
	if t.DNS.DegradedTTL == 0 {
		s.degraded = s.ttl
	}
	for _, n := range t.Nodes() {
		s.topoNodes[n.Name] = n
		if n.Role == topology.RoleWeb {
			s.topoWeb[n.Name] = n
		}
	}
	if s.region == "" {
		if n, ok := s.topoNodes[s.instance]; ok {
			s.region = n.Region
		}
	}
	for i, r := range t.Regions {
		for _, c := range r.ClientSubnets {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("dnsgeo: region %s: client subnet %q: %w", r.Name, c, err)
			}
			s.subnets = append(s.subnets, clientSubnet{prefix: p.Masked(), region: i, text: p.Masked().String()})
		}
		name := dns.CanonicalName(r.Name + ".app." + zone)
		if _, ok := dns.IsDomainName(name); !ok {
			return nil, fmt.Errorf("dnsgeo: region name %q does not make a domain name", r.Name)
		}
		s.names[name] = nameEntry{kind: kindRegionApp, index: i}
	}
	// Longest prefix first, so the first containing subnet is the most specific one.
	sort.SliceStable(s.subnets, func(a, b int) bool { return s.subnets[a].prefix.Bits() > s.subnets[b].prefix.Bits() })
	s.names[zone] = nameEntry{kind: kindApex}
	s.names[s.appName] = nameEntry{kind: kindApp}
	s.names["_status."+zone] = nameEntry{kind: kindStatus}
	s.buildStaticRecords()

	s.metrics = newMetrics(cfg.Registry, s)
	if cfg.QueryLog != nil {
		s.qlog = &queryLog{w: cfg.QueryLog}
	}

	start := s.now()
	grace := cfg.StartupGrace
	if grace == 0 {
		grace = DefaultStartupGrace
	}
	s.learnUntil = start.Add(max(grace, 0))
	s.health = make([]regionHealth, len(s.regions))
	for i := range s.health {
		s.health[i] = regionHealth{state: stateUp, since: start, reason: "bootstrap: topology plan"}
	}
	boot := s.bootstrapObservation()
	v := s.buildView(start, boot, 1)
	if cfg.Members == nil {
		v.mode = "static" // no membership: the topology plan forever
	}
	v.fast = newFastView(v)
	s.view.Store(v)
	if cfg.Members != nil {
		s.recompute()
	}
	return s, nil
}

// seconds converts a duration to a DNS TTL.
func seconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// buildStaticRecords makes the records that never change: NS, glue, HINFO and CHAOS TXT.
func (s *Server) buildStaticRecords() {
	dnsNodes := s.cfg.Topology.NodesOf(topology.RoleDNS, "")
	for i, n := range dnsNodes {
		nsName := nsNameFor(n, s.zone)
		s.names[nsName] = nameEntry{kind: kindNS, index: i}
		s.nsRRs = append(s.nsRRs, &dns.NS{Hdr: hdr(s.zone, dns.TypeNS, s.ttl), Ns: nsName})
		a := &dns.A{Hdr: hdr(nsName, dns.TypeA, s.ttl), A: n.IP.AsSlice()}
		s.glue = append(s.glue, a)
	}
	// Capped so that appending the OPT record to a reply copies instead of writing into them.
	s.nsRRs = s.nsRRs[:len(s.nsRRs):len(s.nsRRs)]
	s.glue = s.glue[:len(s.glue):len(s.glue)]
	s.hinfo = []dns.RR{&dns.HINFO{Hdr: hdr(s.zone, dns.TypeHINFO, s.ttl), Cpu: "RFC8482", Os: ""}}
	chaos := func(name string) []dns.RR {
		return []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS, Ttl: 0},
			Txt: []string{s.instance},
		}}
	}
	s.chaosID = chaos("id.server.")
	s.chaosHB = chaos("hostname.bind.")
}

// nsNameFor names a DNS node's name server: us-east-dns-1 → ns-us-east-1.<zone>.
func nsNameFor(n topology.Node, zone string) string {
	return dns.CanonicalName("ns-" + n.Region + "-" + strconv.Itoa(n.Index) + "." + zone)
}

// hdr is an IN-class RR header.
func hdr(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// Handler returns the DNS handler (for tests with their own ResponseWriter, or another server).
func (s *Server) Handler() dns.Handler { return dns.HandlerFunc(s.ServeDNS) }

// Start binds (unless sockets were given), starts the UDP and TCP servers and the membership
// watcher, and returns once both listeners are serving. ctx bounds only the start-up; the server
// runs until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("dnsgeo: server already started")
	}
	pc, ln, err := s.bind()
	if err != nil {
		return err
	}
	s.udpAddr, s.tcpAddr = pc.LocalAddr(), ln.Addr()
	if limit := s.cfg.MaxTCPConns; limit >= 0 {
		if limit == 0 {
			limit = DefaultMaxTCPConns
		}
		ln = netutil.LimitListener(ln, limit)
	}

	ready := make(chan *dns.Server, 2)
	failed := make(chan error, 2)
	s.stopHold = make(chan struct{})
	decorate := s.decorator(s.stopHold)
	s.udp = &dns.Server{
		PacketConn:     pc,
		Net:            "udp",
		Handler:        s.Handler(),
		UDPSize:        dns.DefaultMsgSize,
		DecorateReader: decorate,
		MsgInvalidFunc: s.invalidMsg,
	}
	s.tcp = &dns.Server{
		Listener:       ln,
		Net:            "tcp",
		Handler:        s.Handler(),
		DecorateReader: decorate,
		MsgInvalidFunc: s.invalidMsg,
		MaxTCPQueries:  -1, // pipelined clients may send any number of queries per connection
	}
	servers := []*dns.Server{s.tcp}
	if s.fastUDP = newBatchUDP(s, pc); s.fastUDP != nil {
		s.udp = nil
	} else {
		servers = append(servers, s.udp)
	}
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() { ready <- srv }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				failed <- fmt.Errorf("dnsgeo: serve %s: %w", srv.Net, err)
			}
		}()
	}
	// Collect both outcomes even if ctx ends, so that no server starts after we gave up on it;
	// both report within moments (nothing blocks before NotifyStartedFunc), the timer is a bound.
	var startErr error
	var running []*dns.Server
	bound := time.NewTimer(10 * time.Second)
	defer bound.Stop()
	for outcomes := 0; outcomes < len(servers); {
		select {
		case srv := <-ready:
			running = append(running, srv)
			outcomes++
		case err := <-failed:
			startErr = errors.Join(startErr, err)
			outcomes++
		case <-ctx.Done():
			if startErr == nil {
				startErr = fmt.Errorf("dnsgeo: start: %w", ctx.Err())
			}
			ctx = context.Background() // stop selecting on it; keep collecting outcomes
		case <-bound.C:
			startErr = errors.Join(startErr, errors.New("dnsgeo: start: listeners did not report ready within 10s"))
			outcomes = len(servers)
		}
	}
	if startErr != nil {
		for _, srv := range running {
			_ = srv.Shutdown() // closes its socket; the error is secondary to startErr
		}
		_ = pc.Close() // no-ops if the server closed them already
		_ = ln.Close()
		if s.fastUDP != nil {
			_ = s.fastUDP.port.close() // its readers never started
		}
		s.udp, s.tcp, s.fastUDP = nil, nil, nil
		return startErr
	}
	if s.fastUDP != nil {
		s.fastUDP.start()
	}
	s.started = true
	if s.cfg.Members != nil {
		s.stopWatch = make(chan struct{})
		s.watchDone = make(chan struct{})
		go s.watch(s.stopWatch, s.watchDone)
	}
	s.logger.Info("dns server started", "instance", s.instance, "udp", s.udpAddr.String(), "tcp", s.tcpAddr.String(), "zone", s.zone)
	return nil
}

// bind returns the UDP and TCP sockets, binding what the config did not supply.
func (s *Server) bind() (net.PacketConn, net.Listener, error) {
	pc, ln := s.cfg.PacketConn, s.cfg.Listener
	if pc != nil && ln != nil {
		return pc, ln, nil
	}
	addr := s.cfg.Listen
	if addr == "" {
		n, ok := s.topoNodes[s.instance]
		if !ok {
			return nil, nil, fmt.Errorf("dnsgeo: no Listen address and %q is not a topology node", s.instance)
		}
		addr = n.Addr(topology.PortDNS)
	}
	if pc == nil && ln == nil {
		return bindPair(addr)
	}
	var err error
	if pc == nil {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsgeo: listen udp %s: %w", addr, err)
		}
	}
	if ln == nil {
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsgeo: listen tcp %s: %w", addr, err)
		}
	}
	return pc, ln, nil
}

// bindPair binds UDP and TCP on the same address; with port 0 it retries (a bounded number of
// times) until one free port is free for both.
func bindPair(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsgeo: listen udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("dnsgeo: listen tcp %s: %w", addr, lastErr)
}

// Addr is the UDP address the server listens on (ip:port); TCP uses the same port unless
// separate sockets were given (see TCPAddr). Empty before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udpAddr == nil {
		return ""
	}
	return s.udpAddr.String()
}

// TCPAddr is the TCP address the server listens on. Empty before Start.
func (s *Server) TCPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcpAddr == nil {
		return ""
	}
	return s.tcpAddr.String()
}

// Shutdown stops the listeners (waiting for in-flight queries until ctx ends) and the watcher.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	stop, done := s.stopWatch, s.watchDone
	s.stopWatch, s.watchDone = nil, nil
	if s.stopHold != nil {
		close(s.stopHold)
		s.stopHold = nil
	}
	err := s.shutdownServers(ctx)
	s.started = false
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("dnsgeo: shutdown: %w", ctx.Err())
		}
	}
	return err
}

// shutdownServers stops both dns.Servers; s.mu is held.
func (s *Server) shutdownServers(ctx context.Context) error {
	var errs []error
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv == nil {
			continue
		}
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("dnsgeo: shutdown %s: %w", srv.Net, err))
		}
	}
	if s.fastUDP != nil {
		if err := s.fastUDP.shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.udp, s.tcp, s.fastUDP = nil, nil, nil
	return errors.Join(errs...)
}

// invalidMsg counts messages miekg/dns could not parse (it answers those FORMERR or not at all).
func (s *Server) invalidMsg(_ []byte, err error) {
	s.metrics.invalid.Inc()
	s.logger.Debug("unparseable dns message", "err", err)
}

// watch recomputes the view on every membership ping, and periodically while a region is in
// hold-down or still starting (so re-admission, and the end of the startup grace, happen even if
// gossip is quiet).
func (s *Server) watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ping, cancel := s.cfg.Members.Subscribe()
	defer cancel()
	tick := time.NewTicker(holdDownPoll(s.holdDown))
	defer tick.Stop()
	s.recompute() // catch changes between New and the subscription
	for {
		select {
		case <-stop:
			return
		case _, ok := <-ping:
			if !ok {
				ping = nil // membership ended; keep serving the last view
				continue
			}
			s.recompute()
		case <-tick.C:
			if v := s.view.Load(); v.anyHoldDown || v.learning {
				s.recompute()
			}
		}
	}
}

// holdDownPoll is how often a region in hold-down is re-checked: a tenth of the hold-down,
// between 10 ms and 250 ms.
func holdDownPoll(h time.Duration) time.Duration {
	return min(max(h/10, 10*time.Millisecond), 250*time.Millisecond)
}

// Status is the _status text (one line per region, the routing decisions and this instance's
// state), for an HTTP status page or a CLI.
func (s *Server) Status() []string {
	return s.statusLines(s.view.Load(), s.now(), "")
}

// Refresh recomputes the view from the membership now (the watcher does this on every ping; this
// is for callers that changed the clock or want a synchronous update).
func (s *Server) Refresh() {
	if s.cfg.Members != nil {
		s.recompute()
	}
}
