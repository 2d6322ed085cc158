// Package web is the stateless web tier: an HTTP front that sends writes to the current primary
// (learned from gossip: the alive db node claiming primary with the highest epoch) and reads to the
// local region's database, honouring read-your-writes when the design asks for it. Every response
// names the web node, its region, and the db node, epoch and LSN that served it.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/agents/queue"
	"github.com/drillworks/drill/agents/serve"
	"github.com/drillworks/drill/topology"
)

// Membership is the gossip view the web tier routes by.
type Membership interface {
	Members() []gossip.Member
}

// Config configures a web node.
type Config struct {
	// Name is this web node's name.
	Name string
	// Region is this web node's region.
	Region string
	// Listen is the HTTP listen address, ip:port.
	Listen string
	// Members is the gossip view.
	Members Membership
	// DBAddr returns the address (ip:port) to dial for a db node's API from this node: direct in the
	// same region, a WAN link across regions.
	DBAddr func(node string) (string, error)
	// ReadYourWrites makes reads that carry min_lsn never return older data.
	ReadYourWrites bool
	// ReadFromPrimary sends every read to the primary, which answers only while it holds the
	// lease: reads are then linearizable per key (topology read_from: primary).
	ReadFromPrimary bool
	// Timeout bounds one call to a db node; past it a write's outcome is unknown (504).
	Timeout time.Duration
	// Logger receives the node's logs.
	Logger *slog.Logger
	// Registry receives the metrics; nil creates a private one.
	Registry *prometheus.Registry
	// Drop, when set, is asked about every request's source address; a dropped client gets no
	// answer at all: its connection is held silently (no bytes, no reset) until it gives up or
	// DropHold passes. drill sets it from the node's gossip fault rules, so a black-holed region's
	// users see a dead server, not an error page.
	Drop func(netip.Addr) bool
	// DropHold bounds how long a dropped connection is held; 0 means 60 s.
	DropHold time.Duration
	// DBKey signs the node's calls to the database API (peerauth, the run's db key). Required.
	DBKey peerauth.Key
	// Cache, when its region has cache nodes, serves reads cache-aside and is invalidated by
	// writes; nil or without nodes of the region, every read goes to the database.
	Cache *cache.Aside
	// Jobs publishes POST /jobs to the region's queue; nil where the region has none (404).
	Jobs *queue.Publisher
}

// MaxValueBytes caps a PUT body (the database's own cap); a larger one is refused with 413,
// never stored cut short.
const MaxValueBytes = 1 << 20

// Server is a running web node.
type Server struct {
	cfg      Config
	client   *http.Client
	http     *http.Server
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	stopHold chan struct{} // closed when Serve ends: held connections are let go
	// primaryEpochSeen is the highest epoch at which this node has seen a database claim to be
	// the primary (Healthy): a local database that knows a higher one knows of a primary this
	// node cannot see.
	primaryEpochSeen atomic.Uint64
}

// New builds a web node.
func New(cfg Config) (*Server, error) {
	if cfg.Members == nil || cfg.DBAddr == nil || !cfg.DBKey.Valid() {
		return nil, errors.New("web: Members, DBAddr and DBKey are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.DropHold <= 0 {
		cfg.DropHold = 60 * time.Second
	}
	s := &Server{
		cfg: cfg,
		client: &http.Client{Transport: &peerauth.Transport{Key: cfg.DBKey, Base: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		}}},
		registry: cfg.Registry,
		stopHold: make(chan struct{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drill_web_requests_total", Help: "Requests served by the web tier, by operation and status code.",
		}, []string{"op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "drill_web_request_duration_seconds", Help: "Web request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"op"}),
	}
	cfg.Registry.MustRegister(s.requests, s.latency)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /kv/{key}", s.put)
	mux.HandleFunc("GET /kv/{key}", s.get)
	mux.HandleFunc("POST /jobs", s.postJob)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /status", s.status)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	var h http.Handler = mux
	if cfg.Drop != nil {
		h = s.dropMiddleware(mux)
	}
	s.http = serve.Server(cfg.Listen, h)
	return s, nil
}

// dropMiddleware swallows requests from dropped sources: it takes the connection over and holds
// it without writing a byte, as a black-holed network would, until the client closes it, the hold
// bound passes or the server stops.
func (s *Server) dropMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !s.cfg.Drop(ap.Addr().Unmap()) {
			next.ServeHTTP(w, r)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// Cannot take the connection over (HTTP/2): abort without a response.
			panic(http.ErrAbortHandler)
		}
		defer conn.Close()
		held := make(chan struct{})
		defer close(held)
		go func() {
			select {
			case <-s.stopHold: // server shutting down
				_ = conn.SetReadDeadline(time.Unix(1, 0))
			case <-held:
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(s.cfg.DropHold))
		// Read and discard whatever the client sends; returns on close, deadline or error.
		_, _ = io.Copy(io.Discard, conn)
	})
}

// Handler is the HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve listens and serves until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web listen %s: %w", s.cfg.Listen, err)
	}
	go func() {
		<-ctx.Done()
		close(s.stopHold) // release connections held for dropped clients
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.http.Shutdown(shut)
	}()
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web serve: %w", err)
	}
	return nil
}

// Healthy reports whether this web node is fit to receive users: a primary is known and the
// region's own database can serve fresh reads. While the primary is gone (a failover in progress)
// a lagging local replica is the best there is and counts; once a primary is alive again, a
// local replica counts only when caught up with it (so a region returning from an outage is sent
// users only after its database has caught up). A region whose gossip has not yet healed after
// an outage sees no primary either, but its database knows a newer epoch than any primary seen
// (its old primary was deposed while it was cut off): it does not count until the new primary
// is in view and the database has caught up with it.
func (s *Server) Healthy() bool {
	members := s.cfg.Members.Members() // one view for both questions (and one copy: it is per call)
	primary, epoch := gossip.PrimaryOf(members)
	seen := s.notePrimaryEpochs(members)
	var local *gossip.Member
	for _, m := range members {
		if m.Meta.Role == topology.RoleDB && m.Alive() && m.Meta.Region == s.cfg.Region {
			if local == nil || m.Name == primary {
				m := m
				local = &m
			}
		}
	}
	switch {
	case local == nil:
		return primary != "" // no local database: reads and writes go to the primary
	case local.Name == primary:
		return local.Meta.Healthy // the primary may write (it holds its lease)
	case primary == "":
		return local.Meta.Epoch <= seen
	default:
		return local.Meta.Healthy && !local.Meta.Primary && local.Meta.Epoch == epoch
	}
}

// notePrimaryEpochs raises primaryEpochSeen to the highest epoch a database in members claims
// to be the primary at (alive or not: a dead primary's claim still names its epoch) and returns it.
func (s *Server) notePrimaryEpochs(members []gossip.Member) uint64 {
	for {
		seen := s.primaryEpochSeen.Load()
		next := seen
		for _, m := range members {
			if m.Meta.Role == topology.RoleDB && m.Meta.Primary {
				next = max(next, m.Meta.Epoch)
			}
		}
		if next == seen || s.primaryEpochSeen.CompareAndSwap(seen, next) {
			return next
		}
	}
}

// Primary is the alive db node claiming primary with the highest epoch ("" if none).
func (s *Server) Primary() (name string, epoch uint64) {
	return gossip.PrimaryOf(s.cfg.Members.Members())
}

// newestEpoch is the highest epoch an alive db node reports (0 if none).
func (s *Server) newestEpoch() uint64 {
	var e uint64
	for _, m := range s.cfg.Members.Members() {
		if m.Meta.Role == topology.RoleDB && m.Alive() {
			e = max(e, m.Meta.Epoch)
		}
	}
	return e
}

// localDB is an alive db node of this region (most advanced first), "" if none.
func (s *Server) localDB() string {
	var cands []gossip.Member
	for _, m := range s.cfg.Members.Members() {
		if m.Meta.Role == topology.RoleDB && m.Alive() && m.Meta.Region == s.cfg.Region {
			cands = append(cands, m)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].Meta.LSN != cands[j].Meta.LSN {
			return cands[i].Meta.LSN > cands[j].Meta.LSN
		}
		return cands[i].Name < cands[j].Name
	})
	if len(cands) == 0 {
		return ""
	}
	return cands[0].Name
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key := r.PathValue("key")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxValueBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.reply(w, "put", start, http.StatusRequestEntityTooLarge,
			map[string]any{"error": fmt.Sprintf("value over %d bytes", MaxValueBytes), "outcome": "fail"})
		return
	}
	if err != nil {
		s.reply(w, "put", start, http.StatusBadRequest, map[string]any{"error": "read body: " + err.Error()})
		return
	}
	primary, _ := s.Primary()
	if primary == "" {
		s.reply(w, "put", start, http.StatusServiceUnavailable, map[string]any{"error": "no primary known", "outcome": "fail"})
		return
	}
	code, out := s.call(r.Context(), http.MethodPut, primary, "/v1/kv/"+url.PathEscape(key), body)
	if code == http.StatusOK && s.cfg.Cache.Enabled() {
		// After the write, so that a read filling the cache from then on sees it; a failed
		// delete leaves the old value until its TTL (or, with all-regions, the next epoch).
		out["cache_invalidated"] = s.cfg.Cache.Invalidate(r.Context(), key) == nil
	}
	s.reply(w, "put", start, code, out)
}

// postJob publishes a job ({"id": ..., "work_ms": ...}) to the region's queue and answers once
// JetStream acknowledged it: 200, 503 when it definitely was not stored (outcome fail), 504 when
// it may have been (outcome unknown; a retry with the same id is stored once).
func (s *Server) postJob(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.cfg.Jobs == nil {
		s.reply(w, "job", start, http.StatusNotFound, map[string]any{"error": "this region has no queue", "outcome": "fail"})
		return
	}
	var job queue.Job
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&job); err != nil {
		s.reply(w, "job", start, http.StatusBadRequest, map[string]any{"error": "decode job: " + err.Error(), "outcome": "fail"})
		return
	}
	if err := job.Validate(); err != nil {
		s.reply(w, "job", start, http.StatusBadRequest, map[string]any{"error": err.Error(), "outcome": "fail"})
		return
	}
	pub, err := s.cfg.Jobs.Publish(r.Context(), job)
	switch {
	case errors.Is(err, queue.ErrUnknown):
		s.reply(w, "job", start, http.StatusGatewayTimeout, map[string]any{"id": job.ID, "error": err.Error(), "outcome": "unknown"})
	case err != nil:
		s.reply(w, "job", start, http.StatusServiceUnavailable, map[string]any{"id": job.ID, "error": err.Error(), "outcome": "fail"})
	default:
		s.reply(w, "job", start, http.StatusOK, map[string]any{"id": job.ID, "stream": pub.Stream, "seq": pub.Seq, "duplicate": pub.Duplicate})
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key := r.PathValue("key")
	minLSN, err := queryUint(r, "min_lsn")
	if err != nil {
		s.reply(w, "get", start, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	minEpoch, err := queryUint(r, "min_epoch")
	if err != nil {
		s.reply(w, "get", start, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	if !s.cfg.ReadYourWrites {
		minLSN, minEpoch = 0, 0 // the known-bad design: the client's last write is ignored
	}
	if !s.cfg.Cache.Enabled() {
		code, out := s.load(r.Context(), key, minLSN, minEpoch)
		s.reply(w, "get", start, code, out)
		return
	}
	// The newest epoch any database node reports, not only the primary's: a node that rejoined
	// under a new primary knows the new epoch before this node has heard from that primary.
	// Without a primary in view, or unhealthy, the view is in doubt.
	primary, _ := s.Primary()
	want := cache.Want{MinLSN: minLSN, MinEpoch: minEpoch, Epoch: s.newestEpoch(), Unsettled: primary == "" || !s.Healthy()}
	// A client's Cache-Control: no-cache asks for the database's answer, as HTTP caches honour
	// it; the answer refills the cache.
	want.Refresh = strings.Contains(strings.ToLower(r.Header.Get("Cache-Control")), "no-cache")
	l, source := s.cfg.Cache.Get(r.Context(), key, want,
		func(ctx context.Context) cache.Loaded {
			code, out := s.load(ctx, key, minLSN, minEpoch)
			return loaded(code, out)
		})
	l.Body["cache"] = string(source)
	l.Body["cache_ttl_ms"] = s.cfg.Cache.TTL().Milliseconds()
	s.reply(w, "get", start, l.Code, l.Body)
}

// loaded turns a database answer into what the cache keeps.
func loaded(code int, out map[string]any) cache.Loaded {
	num := func(k string) uint64 {
		f, _ := out[k].(float64)
		return uint64(f)
	}
	found, _ := out["found"].(bool)
	value, _ := out["value"].(string)
	dbNode, _ := out["db_node"].(string)
	return cache.Loaded{Code: code, Body: out, Found: found, Entry: cache.Entry{
		Value: value, Absent: code == http.StatusNotFound && !found, LSN: num("lsn"), KeyLSN: num("key_lsn"),
		Epoch: num("epoch"), DBNode: dbNode}}
}

// load reads key from the database: the region's own, or the primary (read_from: primary, or no
// local database), honouring the client's last write.
func (s *Server) load(ctx context.Context, key string, minLSN, minEpoch uint64) (int, map[string]any) {
	target := s.localDB()
	if target == "" || s.cfg.ReadFromPrimary {
		target, _ = s.Primary()
	}
	if target == "" {
		return http.StatusServiceUnavailable, map[string]any{"error": "no database reachable"}
	}
	q := url.Values{}
	if minLSN > 0 {
		q.Set("min_lsn", strconv.FormatUint(minLSN, 10))
		q.Set("wait_ms", "300")
		if minEpoch > 0 {
			q.Set("min_epoch", strconv.FormatUint(minEpoch, 10))
		}
	}
	if s.cfg.ReadFromPrimary {
		q.Set("consistent", "1")
	}
	path := "/v1/kv/" + url.PathEscape(key)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	code, out := s.call(ctx, http.MethodGet, target, path, nil)
	if code == http.StatusConflict && minLSN > 0 {
		// The local replica is behind the client's last write: read from the primary instead.
		if primary, _ := s.Primary(); primary != "" && primary != target {
			code, out = s.call(ctx, http.MethodGet, primary, path, nil)
			out["fallback"] = "primary"
		}
	}
	return code, out
}

// queryUint is an optional whole-number query parameter (0 when absent).
func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// call sends one request to a db node and returns its status and JSON body (or an error body).
func (s *Server) call(ctx context.Context, method, node, path string, body []byte) (int, map[string]any) {
	addr, err := s.cfg.DBAddr(node)
	if err != nil {
		return http.StatusBadGateway, map[string]any{"error": err.Error(), "db_node": node}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError, map[string]any{"error": err.Error()}
	}
	peerauth.For(req, node)
	resp, err := s.client.Do(req)
	if err != nil {
		out := map[string]any{"error": "db " + node + ": " + err.Error(), "db_node": node}
		if method == http.MethodPut {
			// The request may have reached the primary: the outcome is unknown, not failed.
			out["outcome"] = "unknown"
		}
		return http.StatusGatewayTimeout, out
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		out = map[string]any{"error": fmt.Sprintf("db %s: bad response (%d): %v", node, resp.StatusCode, err)}
	}
	// The db names itself as node/region; the web tier's own names take those keys.
	if v, ok := out["node"]; ok {
		out["db_node"] = v
	}
	if v, ok := out["region"]; ok {
		out["db_region"] = v
	}
	if _, ok := out["db_node"]; !ok {
		out["db_node"] = node
	}
	return resp.StatusCode, out
}

func (s *Server) reply(w http.ResponseWriter, op string, start time.Time, code int, out map[string]any) {
	out["node"] = s.cfg.Name
	out["region"] = s.cfg.Region
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Drill-Node", s.cfg.Name)
	w.Header().Set("X-Drill-Region", s.cfg.Region)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(out)
	s.requests.WithLabelValues(op, strconv.Itoa(code)).Inc()
	s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.Healthy() {
		http.Error(w, "no database known\n", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// Status is the web node's view, served at /status.
type Status struct {
	Node           string `json:"node"`
	Region         string `json:"region"`
	Healthy        bool   `json:"healthy"`
	Primary        string `json:"primary"`
	Epoch          uint64 `json:"epoch"`
	LocalDB        string `json:"local_db"`
	ReadYourWrites bool   `json:"read_your_writes"`
}

// Status reports what the node would route to now.
func (s *Server) Status() Status {
	p, e := s.Primary()
	return Status{Node: s.cfg.Name, Region: s.cfg.Region, Healthy: s.Healthy(), Primary: p, Epoch: e,
		LocalDB: s.localDB(), ReadYourWrites: s.cfg.ReadYourWrites}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Status())
}
