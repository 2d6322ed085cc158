package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/agents/serve"
	"github.com/drillworks/drill/topology"
)

// Info is what the control endpoint says about the node.
type Info struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Region string `json:"region"`
	RunID  string `json:"run_id"`
	PID    int    `json:"pid"`
}

// control is the node's fault-injection endpoint. Only drill may use it: every call is signed with
// the run's control key (peerauth), and it listens only on the node's own address.
type control struct {
	plan  *topology.Plan
	node  topology.Node
	g     *gossip.Node
	clock *clock.Clock
	disk  *disk.Faults
	// dataDir is the node's data directory (a db node's log, which disk-corrupt damages).
	dataDir string
	// reg is the node's metrics registry, served on GET /metrics (nil: not served).
	reg   *prometheus.Registry
	log   *slog.Logger
	base  gossip.Rules
	mu    sync.Mutex
	fault gossip.Rules
}

func newControl(p *topology.Plan, n topology.Node, g *gossip.Node, clk *clock.Clock, faults *disk.Faults, dataDir string, reg *prometheus.Registry, log *slog.Logger) *control {
	return &control{plan: p, node: n, g: g, clock: clk, disk: faults, dataDir: dataDir, reg: reg, log: log, base: baseRules(p.Topology, n.Site())}
}

func (c *control) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Info{Node: c.node.Name, Role: string(c.node.Role), Region: c.node.Region,
			RunID: c.plan.RunID, PID: os.Getpid()})
	})
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.g.Members())
	})
	faultState(mux, "/v1/gossip/faults", 1<<20, func() gossip.Rules {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.fault
	}, c.setFault)
	faultState(mux, "/v1/clock", 4096, c.clock.Shift, c.setClock)
	faultState(mux, "/v1/disk", 4096, c.disk.State, c.setDisk)
	mux.HandleFunc("POST /v1/disk/corrupt", func(w http.ResponseWriter, r *http.Request) {
		if c.node.Role != topology.RoleDB {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "only a db node has a log to damage"})
			return
		}
		lsn, err := db.CorruptWALRecord(c.dataDir)
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		c.log.Warn("disk fault: a record of the write-ahead log damaged on disk", "lsn", lsn)
		writeJSON(w, http.StatusOK, map[string]uint64{"lsn": lsn})
	})
	signed := peerauth.RequireNode(peerauth.Derive(c.plan.Secret, peerauth.PurposeControl), c.node.Name, mux)
	if c.reg == nil {
		return signed
	}
	// GET /metrics is open, as on the web, database and GeoDNS ports (operational numbers, no
	// data): it is where nodes without an HTTP port of their own (cache, queue, worker) are
	// scraped. Everything else needs the control key.
	metrics := promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r)
			return
		}
		signed.ServeHTTP(w, r)
	})
}

// registerMetrics exports whether drill has set faults on this node, one series per layer
// (drill_node_fault_active{layer="network|clock|disk"}, 1 while set): a dashboard marks them.
// Faults a node cannot report itself (killed, frozen, cut off) show as its failed scrapes.
func (c *control) registerMetrics(reg prometheus.Registerer) {
	layers := map[string]func() bool{
		"network": func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return !c.fault.Empty()
		},
		"clock": func() bool { return c.clock.Shift() != (clock.Shift{}) },
		"disk":  func() bool { return c.disk.State() != (disk.State{}) },
	}
	for layer, active := range layers {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "drill_node_fault_active",
			Help:        "1 while drill has set a fault of the layer on this node (network: its gossip rules; clock; disk).",
			ConstLabels: prometheus.Labels{"layer": layer},
		}, func() float64 { return boolFloat(active()) }))
	}
}

// faultState serves one of the node's fault states at path: GET reads it, PUT sets it from a JSON
// body of at most limit bytes, DELETE clears it (the zero value); PUT and DELETE answer with the
// state as it then is.
func faultState[T any](mux *http.ServeMux, path string, limit int64, get func() T, set func(T)) {
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, get()) })
	mux.HandleFunc("PUT "+path, func(w http.ResponseWriter, r *http.Request) {
		var v T
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(&v); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decode " + path + ": " + err.Error()})
			return
		}
		set(v)
		writeJSON(w, http.StatusOK, get())
	})
	mux.HandleFunc("DELETE "+path, func(w http.ResponseWriter, _ *http.Request) {
		var zero T
		set(zero)
		writeJSON(w, http.StatusOK, get())
	})
}

// setFault layers drill's fault rules over the steady WAN rules. A fault delay for a prefix replaces
// the base delay for it.
func (c *control) setFault(f gossip.Rules) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault = f
	merged := gossip.Rules{Drop: slices.Clone(f.Drop), DropIn: slices.Clone(f.DropIn), DropOut: slices.Clone(f.DropOut),
		Loss: slices.Clone(f.Loss)}
	merged.Delays = append(merged.Delays, f.Delays...)
	for _, b := range c.base.Delays {
		overridden := false
		for _, d := range f.Delays {
			if d.Prefix == b.Prefix {
				overridden = true
			}
		}
		if !overridden {
			merged.Delays = append(merged.Delays, b)
		}
	}
	c.g.Faults().Set(merged)
	c.log.Info("gossip fault rules set", "drop", len(f.Drop), "drop_in", len(f.DropIn), "drop_out", len(f.DropOut),
		"delays", len(f.Delays), "loss", len(f.Loss))
}

// setClock shifts the node's clock (a zero shift puts it back on real time; the shift it has
// already changes nothing).
func (c *control) setClock(s clock.Shift) {
	if c.clock.Shift() == s {
		return
	}
	c.clock.Set(s)
	c.log.Info("clock shift set", "offset", s.Offset.String(), "drift_ppm", s.DriftPPM)
}

// setDisk sets the node's disk faults (the state it has already changes nothing).
func (c *control) setDisk(s disk.State) {
	if c.disk.State() == s {
		return
	}
	c.disk.Set(s)
	c.log.Info("disk faults set", "stall", s.Stall, "full", s.Full)
}

func (c *control) Serve(ctx context.Context, bindIP string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(bindIP, fmt.Sprint(topology.PortControl)))
	if err != nil {
		return fmt.Errorf("control listen: %w", err)
	}
	srv := serve.Server("", c.handler())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
