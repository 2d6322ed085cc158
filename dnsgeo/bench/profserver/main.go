// Command profserver runs the GeoDNS (default topology, static health, like `drill dns serve`)
// under a CPU profile so that dnsgeo/bench/profile.sh can load it with dnsperf and see where the
// time goes. It is a benchmark tool, not part of drill. It can vary the socket layout without
// changing the server: several SO_REUSEPORT UDP sockets (one dnsgeo.Server each), or the socket
// hidden behind a plain net.PacketConn, which makes dnsgeo fall back to miekg/dns's UDP server
// (reading without control messages): the in-binary reference for dnsgeo's batched UDP path.
//
// On exit (SIGINT/SIGTERM or -duration) it prints one line of server-side cost per query: CPU
// time (user+sys, from getrusage), heap allocations and GC cycles. CPU per query is far less
// sensitive to the noisy shared machine than queries per second.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillworks/drill/dnsgeo"
	"github.com/drillworks/drill/topology"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profserver:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.71:5300", "UDP and TCP address (loopback only)")
	sockets := flag.Int("sockets", 1, "UDP sockets sharing the address with SO_REUSEPORT (one dnsgeo.Server each)")
	noOOB := flag.Bool("no-oob", false, "hide the *net.UDPConn: dnsgeo falls back to miekg/dns's UDP server, which then reads without control messages")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here")
	duration := flag.Duration("duration", 2*time.Minute, "exit after this long at most")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	topo := topology.Default()
	dnsNode := topo.NodesOf(topology.RoleDNS, "")[0]

	var servers []*dnsgeo.Server
	var registries []*prometheus.Registry
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(ctx)
		}
	}()
	for i := 0; i < max(*sockets, 1); i++ {
		cfg := dnsgeo.Config{Topology: topo, Instance: dnsNode.Name, Logger: logger, Registry: prometheus.NewRegistry()}
		if *sockets > 1 || *noOOB {
			pc, ln, err := bindReusePort(*listen)
			if err != nil {
				return err
			}
			cfg.PacketConn, cfg.Listener = pc, ln
			if *noOOB {
				cfg.PacketConn = plainPacketConn{pc}
			}
		} else {
			cfg.Listen = *listen
		}
		srv, err := dnsgeo.New(cfg)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			return err
		}
		servers = append(servers, srv)
		registries = append(registries, cfg.Registry)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("profserver: serving on %s (sockets=%d no-oob=%v GOMAXPROCS=%d)\n", *listen, max(*sockets, 1), *noOOB, runtime.GOMAXPROCS(0))

	before := snapshot(registries)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(*duration):
	}
	after := snapshot(registries)
	q := after.queries - before.queries
	if q <= 0 {
		fmt.Println("profserver: no queries answered")
		return nil
	}
	fmt.Printf("profserver: queries=%.0f cpu_us_per_query=%.2f (user %.2f sys %.2f) allocs_per_query=%.1f bytes_per_query=%.0f gc_cycles=%d\n",
		q, (after.user+after.sys-before.user-before.sys).Seconds()*1e6/q,
		(after.user-before.user).Seconds()*1e6/q, (after.sys-before.sys).Seconds()*1e6/q,
		float64(after.mallocs-before.mallocs)/q, float64(after.bytes-before.bytes)/q, after.gc-before.gc)
	return nil
}

// costs is a point-in-time reading of the process's cumulative costs.
type costs struct {
	queries   float64
	user, sys time.Duration
	mallocs   uint64
	bytes     uint64
	gc        uint32
}

func snapshot(regs []*prometheus.Registry) costs {
	var c costs
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			if mf.GetName() != "drill_dns_queries_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				c.queries += m.GetCounter().GetValue()
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.user = time.Duration(ru.Utime.Nano())
		c.sys = time.Duration(ru.Stime.Nano())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.mallocs, c.bytes, c.gc = ms.Mallocs, ms.TotalAlloc, ms.NumGC
	return c
}

// bindReusePort binds UDP and TCP on addr with SO_REUSEPORT, so several servers can share it.
func bindReusePort(addr string) (net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var sockErr error
		err := c.Control(func(fd uintptr) {
			sockErr = setReusePort(fd)
		})
		return errors.Join(err, sockErr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	return pc, ln, nil
}

// plainPacketConn hides *net.UDPConn, so miekg/dns uses ReadFrom/WriteTo instead of
// ReadMsgUDP/WriteMsgUDP with IP_PKTINFO control messages (only needed on wildcard binds).
type plainPacketConn struct{ net.PacketConn }
