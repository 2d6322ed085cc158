package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/drillworks/drill/agents/serve"
	"github.com/drillworks/drill/dnsgeo"
	"github.com/drillworks/drill/topology"
)

func newDNSCmd(g *globals) *cobra.Command {
	dnsCmd := &cobra.Command{Use: "dns", Short: "The GeoDNS"}
	var listen, instance, httpListen, queryLog string
	var public bool
	var responseRate float64
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the topology's zone alone (static health: every region up), for trying answers with dig",
		Example: `  drill dns serve --listen 127.0.0.1:5353
  dig @127.0.0.1 -p 5353 app.drill.test. +subnet=198.51.100.0/24`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.loadTopology(nil)
			if err != nil {
				return err
			}
			if instance == "" {
				if ns := t.NodesOf(topology.RoleDNS, ""); len(ns) > 0 {
					instance = ns[0].Name
				}
			}
			n, ok := t.Node(instance)
			if !ok || n.Role != topology.RoleDNS {
				return usageErr(fmt.Errorf("--instance %q: not a dns node of topology %s", instance, t.Name))
			}
			loopback, err := serve.IsLoopback(listen)
			if err != nil {
				return usageErr(err)
			}
			if !loopback && !public {
				return usageErr(fmt.Errorf("--listen %s is not a loopback address: an authoritative server on a reachable address answers anyone (and _status shows the routing state); add --public to serve there", listen))
			}
			if httpListen != "" {
				httpLoopback, err := serve.IsLoopback(httpListen)
				if err != nil {
					return usageErr(fmt.Errorf("--http: %w", err))
				}
				if !httpLoopback && !public {
					return usageErr(fmt.Errorf("--http %s is not a loopback address: /status and /metrics show the routing state to anyone who can reach it; add --public to serve there", httpListen))
				}
			}
			if responseRate < 0 { // auto: limit where forged sources can reach the server
				responseRate = 0
				if !loopback {
					responseRate = publicResponseRate
				}
			}
			cfg := dnsgeo.Config{Topology: t, Listen: listen, Instance: n.Name, Region: n.Region,
				Logger: g.logger(), Registry: prometheus.NewRegistry(), ResponseRate: responseRate}
			if queryLog != "" {
				f, err := os.OpenFile(queryLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return usageErr(fmt.Errorf("--query-log: %w", err))
				}
				defer f.Close()
				cfg.QueryLog = f
			}
			srv, err := dnsgeo.New(cfg)
			if err != nil {
				return usageErr(err)
			}
			if err := srv.Start(cmd.Context()); err != nil {
				return harnessErr(err)
			}
			stopHTTP, err := serveDNSHTTP(httpListen, srv, cfg.Registry)
			if err != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				return harnessErr(errors.Join(err, srv.Shutdown(sctx)))
			}
			defer stopHTTP()
			fmt.Fprintf(g.env.Stdout, "drill: GeoDNS %s serving %s on %s (udp+tcp)\n", n.Name, t.DNS.Zone, srv.Addr())
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:5353", "UDP and TCP address (loopback unless --public)")
	serve.Flags().BoolVar(&public, "public", false, "allow a --listen address other hosts can reach")
	serve.Flags().Float64Var(&responseRate, "response-rate", -1,
		fmt.Sprintf("UDP answers per second per client /24 (IPv6 /56), 0 = unlimited (default: unlimited on loopback, %d elsewhere)", publicResponseRate))
	serve.Flags().StringVar(&instance, "instance", "", "which dns node of the topology to be (default: the first)")
	serve.Flags().StringVar(&httpListen, "http", "", "serve /metrics and /status on this address (off by default)")
	serve.Flags().StringVar(&queryLog, "query-log", "", "append a JSON line per query to this file")
	dnsCmd.AddCommand(serve)
	return dnsCmd
}

// publicResponseRate is the default UDP answer rate per client network on a reachable address:
// a resolver of a whole network asks far less often than this for one zone (answers are cached
// for the TTL), an amplification flood far more.
const publicResponseRate = 100

// serveDNSHTTP serves a GeoDNS instance's metrics and _status lines over HTTP; "" = off.
func serveDNSHTTP(addr string, srv *dnsgeo.Server, reg *prometheus.Registry) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	hs := serve.Server("", srv.HTTPHandler(reg))
	go func() { _ = hs.Serve(ln) }()
	return func() { _ = hs.Close() }, nil
}
