// Package wan is the WAN node: an embedded toxiproxy server carrying every cross-site TCP link of a
// plan. Each link gets the topology's one-way latency as two base toxics (one per direction), so
// replication lag is real; drills add and remove their own toxics through the API, which requires
// the plan's secret.
package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/drillworks/drill/agents/internal/ctlauth"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/agents/serve"
	"github.com/drillworks/drill/topology"
)

// BaseToxicPrefix names the toxics that model the steady WAN; a residue check ignores them.
const BaseToxicPrefix = "wan_base_"

// Config configures the WAN node.
type Config struct {
	// Plan is the running plan: its Links become proxies.
	Plan *topology.Plan
	// APIListen is where the (authenticated) toxiproxy API listens.
	APIListen string
	// Logger receives the node's logs.
	Logger *slog.Logger
}

// Server is a running WAN node.
type Server struct {
	cfg  Config
	api  *toxiproxy.ApiServer
	http *http.Server
}

// New builds the toxiproxy server and starts every link with its base latency.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	zerolog.SetGlobalLevel(zerolog.WarnLevel) // toxics/bandwidth.go logs through zerolog's global logger
	// toxiproxy's own metrics (per proxy: bytes and connections; the runtime's), served at
	// /metrics without a signature (they hold no data), everything else of the API signed.
	metrics := toxiproxy.NewMetricsContainer(prometheus.NewRegistry())
	metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	metrics.RuntimeMetrics = collectors.NewRuntimeMetricCollectors()
	api := toxiproxy.NewServer(metrics, zerolog.Nop())
	s := &Server{cfg: cfg, api: api}
	t := cfg.Plan.Topology
	for _, l := range cfg.Plan.Links {
		p := toxiproxy.NewProxy(api, l.Name, l.Listen, l.Upstream)
		if err := api.Collection.Add(p, true); err != nil {
			s.Close()
			return nil, fmt.Errorf("start WAN link %s (%s -> %s): %w", l.Name, l.Listen, l.Upstream, err)
		}
		lat, jit := t.SiteLatency(l.FromSite, l.ToSite)
		if lat <= 0 {
			continue
		}
		for _, stream := range []string{"upstream", "downstream"} {
			js := fmt.Sprintf(`{"name":%q,"type":"latency","stream":%q,"attributes":{"latency":%d,"jitter":%d}}`,
				BaseToxicPrefix+stream, stream, lat.Milliseconds(), jit.Milliseconds())
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
				s.Close()
				return nil, fmt.Errorf("base latency on %s: %w", l.Name, err)
			}
		}
	}
	routes := api.Routes()
	signed := peerauth.Require(peerauth.Derive(cfg.Plan.Secret, peerauth.PurposeWAN), routes)
	s.http = serve.Server("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
			routes.ServeHTTP(w, r)
			return
		}
		signed.ServeHTTP(w, r)
	}))
	return s, nil
}

// Serve serves the API until ctx is done, then stops every link.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.APIListen)
	if err != nil {
		s.Close()
		return fmt.Errorf("WAN API listen %s: %w", s.cfg.APIListen, err)
	}
	s.cfg.Logger.Info("toxiproxy up", "proxies", len(s.api.Collection.Proxies()), "api", ln.Addr().String())
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.http.Shutdown(shut)
	}()
	err = s.http.Serve(ln)
	s.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("WAN API serve: %w", err)
	}
	return nil
}

// Close stops every proxy.
func (s *Server) Close() {
	_ = s.api.Collection.Clear()
}

// StandaloneConfig configures a plain toxiproxy server with no plan: the same server the WAN node
// embeds, for people who want toxiproxy itself (`drill toxiproxy --listen ADDR --config FILE`).
type StandaloneConfig struct {
	// APIListen is where the API listens: a loopback address unless AllowPublic.
	APIListen string
	// Token is the bearer token every API call must carry ("Authorization: Bearer <token>").
	// Required: the API can change every proxy.
	Token string
	// AllowPublic allows a non-loopback APIListen (the token is then sent over the network in
	// the clear: use it only on a trusted network).
	AllowPublic bool
	// ConfigFile is an optional toxiproxy JSON proxy list ([{"name","listen","upstream"}, ...])
	// created at start.
	ConfigFile string
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// ServeStandalone runs a plain toxiproxy server until ctx is done, then stops every proxy.
func ServeStandalone(ctx context.Context, cfg StandaloneConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Token == "" {
		return errors.New("toxiproxy: a token is required (the API can change every proxy)")
	}
	if err := CheckLoopback(cfg.APIListen, cfg.AllowPublic); err != nil {
		return err
	}
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	if cfg.ConfigFile != "" {
		f, err := os.Open(cfg.ConfigFile)
		if err != nil {
			return fmt.Errorf("toxiproxy config: %w", err)
		}
		_, err = api.Collection.PopulateJson(api, f)
		f.Close()
		if err != nil {
			_ = api.Collection.Clear()
			return fmt.Errorf("toxiproxy config %s: %w", cfg.ConfigFile, err)
		}
	}
	s := &Server{cfg: Config{APIListen: cfg.APIListen, Logger: cfg.Logger}, api: api,
		http: serve.Server("", ctlauth.Require(cfg.Token, api.Routes()))}
	return s.Serve(ctx)
}

// CheckLoopback refuses a listen address that is not on loopback, unless allowed.
func CheckLoopback(listen string, allowPublic bool) error {
	loopback, err := serve.IsLoopback(listen)
	if err != nil && !allowPublic {
		return err
	}
	if allowPublic || loopback {
		return nil
	}
	return fmt.Errorf("listen address %q is not a loopback address: pass --allow-public to serve beyond this host", listen)
}
