package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gometricsprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/agents/queue"
	"github.com/drillworks/drill/agents/serve"
	"github.com/drillworks/drill/agents/web"
	"github.com/drillworks/drill/dnsgeo"
	"github.com/drillworks/drill/topology"
)

// newRole builds the node's role service; the returned func runs it until ctx is done.
func newRole(o Options, node topology.Node, bindIP string, g *gossip.Node, clk *clock.Clock, faults *disk.Faults, reg *prometheus.Registry, log *slog.Logger) (func(context.Context) error, error) {
	p, t := o.Plan, o.Plan.Topology
	dbAddr := func(name string) (string, error) { return p.DialAddr(node.Site(), name) }
	switch node.Role {
	case topology.RoleWeb:
		aside := webCache(p, node, log)
		jobs := webQueue(p, node, log)
		w, err := web.New(web.Config{
			Name: node.Name, Region: node.Region, Listen: net.JoinHostPort(bindIP, fmt.Sprint(topology.PortWeb)),
			Members: g, DBAddr: dbAddr, ReadYourWrites: t.Design.ReadYourWrites,
			ReadFromPrimary: t.Design.ReadFrom == topology.ReadFromPrimary, Logger: log,
			DBKey: peerauth.Derive(p.Secret, peerauth.PurposeDB),
			// A client whose address the node's gossip fault rules drop is black-holed too.
			Drop:     g.Faults().Blocks,
			Cache:    aside,
			Jobs:     jobs,
			Registry: reg,
		})
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			defer aside.Close()
			if jobs != nil {
				defer jobs.Close()
			}
			go publishLoop(ctx, g, nil, func() func(*gossip.Meta) {
				healthy := w.Healthy()
				return func(m *gossip.Meta) { m.Healthy = healthy }
			})
			return w.Serve(ctx)
		}, nil

	case topology.RoleDB:
		n, err := db.Open(db.Config{
			Name: node.Name, Region: node.Region, DataDir: o.DataDir,
			Listen:        net.JoinHostPort(bindIP, fmt.Sprint(topology.PortDB)),
			Bootstrap:     node.Region == t.PrimaryRegion && node.Index == 1,
			Replication:   t.Design.Replication,
			Fencing:       t.Design.Fencing,
			FailoverAfter: t.Design.FailoverAfter.D(),
			LeaseDuration: t.Design.LeaseDuration.D(),
			Voters:        nodeNames(t.Voters()),
			PeerURL: func(name string) string {
				a, err := dbAddr(name)
				if err != nil {
					return ""
				}
				return "http://" + a
			},
			View:     dbView{g: g},
			Clock:    clk.Now,
			Disk:     faults,
			Logger:   log,
			Registry: reg,
			AuthKey:  peerauth.Derive(p.Secret, peerauth.PurposeDB),
			Peers:    dbRegions(t),
		})
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return func(ctx context.Context) error {
			go publishLoop(ctx, g, n.Changes(), func() func(*gossip.Meta) {
				s := n.State()
				// Healthy in gossip means "fit to serve": a primary unless it lost its lease (cut
				// off from the voters; a new primary awaiting its first grant is fine), a replica only once it has caught up with the
				// primary it follows, so a region returning from an outage gets users back only
				// after its database has caught up.
				healthy := s.Healthy && ((s.Primary && !s.LeaseLost) || (!s.Primary && s.InSync))
				return func(m *gossip.Meta) {
					m.Primary, m.Epoch, m.LSN, m.LastEpoch, m.Healthy, m.Unfit = s.Primary, s.Epoch, s.LSN, s.LastEpoch, healthy, !s.Healthy
				}
			})
			return n.Serve(ctx)
		}, nil

	case topology.RoleCache:
		return func(ctx context.Context) error {
			srv, err := cache.Start(ctx, cache.ServerConfig{
				Host: bindIP, Port: topology.PortCache, Password: peerauth.CachePassword(p.Secret),
				DataDir: filepath.Join(o.DataDir, "redis"), MaxMemory: t.Cache.MaxMemory,
				Eviction: t.Cache.Eviction, Persistence: t.Cache.Persistence, Logger: log,
			})
			if err != nil {
				return err
			}
			defer srv.Stop()
			if err := reg.Register(srv.Collector()); err != nil {
				return fmt.Errorf("cache metrics: %w", err)
			}
			go publishLoop(ctx, g, nil, func() func(*gossip.Meta) {
				healthy := srv.Healthy(ctx, 200*time.Millisecond)
				return func(m *gossip.Meta) { m.Healthy = healthy }
			})
			select {
			case <-ctx.Done():
				return nil
			case <-srv.Done():
				// The node is its redis: without it the agent ends too, as the process would.
				return fmt.Errorf("redis-server exited: %v", srv.Err())
			}
		}, nil

	case topology.RoleQueue:
		return func(ctx context.Context) error {
			srv, err := queue.StartServer(ctx, queue.ServerConfig{
				Name: node.Name, Region: node.Region, Host: bindIP, Port: topology.PortQueue, LeafPort: topology.PortLeaf,
				Password: peerauth.QueuePassword(p.Secret), StoreDir: filepath.Join(o.DataDir, "jetstream"),
				Memory:          t.Design.QueueStorage == topology.QueueStorageMemory,
				DuplicateWindow: t.Queue.DuplicateWindow.D(), AckWait: t.Queue.AckWait.D(), Mirrors: queueMirrors(p, node), Logger: log,
			})
			if err != nil {
				return err
			}
			defer srv.Stop()
			backlogGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "drill_queue_backlog",
				Help: "Jobs in the region's stream not yet acknowledged by a worker, at the last count that succeeded."})
			readyGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "drill_queue_ready",
				Help: "1 while JetStream answers and the mirrors (queue_replication: mirror) exist."})
			if err := errors.Join(reg.Register(backlogGauge), reg.Register(readyGauge)); err != nil {
				return fmt.Errorf("queue metrics: %w", err)
			}
			go publishLoop(ctx, g, nil, func() func(*gossip.Meta) {
				backlog, err := srv.Backlog(ctx)
				if err != nil {
					// Not healthy, and the backlog unknown: the last count stays published, never
					// a zero that would read as drained.
					readyGauge.Set(0)
					return func(m *gossip.Meta) { m.Healthy = false }
				}
				// Healthy once JetStream answers and the mirrors (queue_replication: mirror) exist.
				healthy := srv.Ready()
				backlogGauge.Set(float64(backlog))
				readyGauge.Set(boolFloat(healthy))
				return func(m *gossip.Meta) { m.Healthy, m.Backlog = healthy, backlog }
			})
			<-ctx.Done()
			return nil
		}, nil

	case topology.RoleWorker:
		var mirrors []string
		if t.Design.QueueReplication == topology.QueueReplicationMirror {
			for _, r := range t.Regions {
				if r.Name != node.Region && r.Nodes.Queue > 0 {
					mirrors = append(mirrors, r.Name)
				}
			}
		}
		w, err := queue.NewWorker(queue.WorkerConfig{
			Name: node.Name, Region: node.Region, QueueAddr: regionQueueAddr(t, node.Region),
			Password: peerauth.QueuePassword(p.Secret), Mirrors: mirrors,
			QueueAlive:    func(region string) bool { return queueAlive(g, region) },
			Store:         queue.NewDBStore(g, dbAddr, peerauth.Derive(p.Secret, peerauth.PurposeDB)),
			AckBeforeWork: t.Design.QueueAck == topology.QueueAckBeforeWork,
			AckWait:       t.Queue.AckWait.D(), Concurrency: t.Queue.WorkerConcurrency, Logger: log,
			Registry: reg,
		})
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			go publishLoop(ctx, g, nil, healthyAlways)
			return w.Run(ctx)
		}, nil

	case topology.RoleDNS:
		s, err := dnsgeo.New(dnsgeo.Config{
			Topology: t, Listen: net.JoinHostPort(bindIP, fmt.Sprint(topology.PortDNS)),
			Instance: node.Name, Region: node.Region, Members: g, Logger: log, Registry: reg,
			Drop: g.Faults().Blocks,
		})
		if err != nil {
			return nil, err
		}
		side := serve.Server(net.JoinHostPort(bindIP, fmt.Sprint(topology.PortDNSHTTP)), s.HTTPHandler(reg))
		return func(ctx context.Context) error {
			if err := s.Start(ctx); err != nil {
				return err
			}
			go func() { _ = side.ListenAndServe() }()
			defer side.Close()
			go publishLoop(ctx, g, nil, healthyAlways)
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return s.Shutdown(shut)
		}, nil
	}
	return nil, fmt.Errorf("role %q has no service", node.Role)
}

// nodeRegistry is a node's metrics registry, with the Go runtime's and the process's collectors
// and memberlist's metrics beside the role's own. memberlist reports through go-metrics' global
// sink, so the sink is the process's: one node per agent process.
func nodeRegistry(log *slog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: reg, Expiration: time.Minute, Name: "memberlist"})
	if err == nil {
		cfg := gometrics.DefaultConfig("drill")
		cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableServiceLabel = false, false, false
		_, err = gometrics.NewGlobal(cfg, sink)
	}
	if err != nil {
		log.Warn("memberlist metrics not exported", "err", err)
	}
	return reg
}

// regionQueueAddr is the client address of region's queue node ("" without one): within the
// region, so never through the WAN.
func regionQueueAddr(t *topology.Topology, region string) string {
	for _, q := range t.NodesOf(topology.RoleQueue, region) {
		return q.Addr(topology.PortQueue)
	}
	return ""
}

// queueMirrors are the other regions' queues a queue node mirrors (queue_replication: mirror),
// over leafnode links through the WAN; of each pair the later region in the file dials.
func queueMirrors(p *topology.Plan, node topology.Node) []queue.Remote {
	t := p.Topology
	if t.Design.QueueReplication != topology.QueueReplicationMirror {
		return nil
	}
	var out []queue.Remote
	for _, q := range t.NodesOf(topology.RoleQueue, "") {
		if q.Region == node.Region {
			continue
		}
		addr, err := p.DialAddr(node.Site(), q.Name)
		if err != nil {
			continue // no link to it (NewPlan makes one per mirrored queue)
		}
		out = append(out, queue.Remote{Region: q.Region, LeafAddr: addr,
			Dial: t.RegionIndex(q.Region) < t.RegionIndex(node.Region)})
	}
	return out
}

// queueAlive reports whether region's queue node is alive in gossip.
func queueAlive(g *gossip.Node, region string) bool {
	for _, m := range g.Members() {
		if m.Meta.Role == topology.RoleQueue && m.Meta.Region == region && m.Alive() {
			return true
		}
	}
	return false
}

// webQueue is a web node's publisher to its region's queue (nil without one).
func webQueue(p *topology.Plan, node topology.Node, log *slog.Logger) *queue.Publisher {
	addr := regionQueueAddr(p.Topology, node.Region)
	if addr == "" {
		return nil
	}
	pub, err := queue.NewPublisher(node.Name, node.Region, addr, peerauth.QueuePassword(p.Secret), 2*time.Second)
	if err != nil {
		log.Warn("no queue publisher", "err", err)
		return nil
	}
	return pub
}

// webCache is a web node's cache-aside client over every region's cache nodes (nil without
// caches in the node's region).
func webCache(p *topology.Plan, node topology.Node, log *slog.Logger) *cache.Aside {
	t := p.Topology
	if len(t.NodesOf(topology.RoleCache, node.Region)) == 0 {
		return nil
	}
	var nodes []cache.Node
	for _, c := range t.NodesOf(topology.RoleCache, "") {
		addr, err := p.DialAddr(node.Site(), c.Name)
		if err != nil {
			continue // no link to it: never invalidated from here (NewPlan makes one per cache)
		}
		nodes = append(nodes, cache.Node{Name: c.Name, Region: c.Region, Addr: addr})
	}
	return cache.NewAside(cache.AsideConfig{
		Region: node.Region, Nodes: nodes, Password: peerauth.CachePassword(p.Secret),
		TTL: t.Design.CacheTTL.D(), Coalesce: t.Design.CacheCoalescing,
		AllRegions: t.Design.CacheInvalidation == topology.InvalidateAll, Logger: log,
	})
}

// publishLoop copies the role's state into gossip metadata whenever it changes (and every 250 ms,
// for states without a change signal). read runs outside gossip's lock (it may read members); the
// update it returns runs inside.
func publishLoop(ctx context.Context, g *gossip.Node, changes <-chan struct{}, read func() func(*gossip.Meta)) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		g.SetMeta(read())
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// dbView is the db node's view of its peers, read from gossip.
type dbView struct{ g *gossip.Node }

func (v dbView) DBPeers() []db.PeerState {
	var out []db.PeerState
	for _, m := range v.g.Members() {
		if m.Meta.Role != topology.RoleDB || m.Name == v.g.Name() {
			continue
		}
		out = append(out, db.PeerState{Name: m.Name, Region: m.Meta.Region, Alive: m.Alive(), Since: m.Since,
			Primary: m.Meta.Primary, Epoch: m.Meta.Epoch, LSN: m.Meta.LSN, LastEpoch: m.Meta.LastEpoch, Unfit: m.Meta.Unfit})
	}
	return out
}

func nodeNames(ns []topology.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

func healthyAlways() func(*gossip.Meta) { return func(m *gossip.Meta) { m.Healthy = true } }

// dbRegions names every db node of the topology with its region.
func dbRegions(t *topology.Topology) map[string]string {
	out := map[string]string{}
	for _, n := range t.NodesOf(topology.RoleDB, "") {
		out[n.Name] = n.Region
	}
	return out
}

// serveWitness runs the witness: one lease voter over HTTP, for the plan's db nodes only, every
// call signed with the run's db key.
func serveWitness(ctx context.Context, p *topology.Plan, name, dataDir, listen string, log *slog.Logger) error {
	v, err := db.OpenVoter(dataDir, slices.Sorted(maps.Keys(dbRegions(p.Topology))), nil, log)
	if err != nil {
		return fmt.Errorf("open witness voter: %w", err)
	}
	srv := serve.Server(listen, peerauth.RequireNode(peerauth.Derive(p.Secret, peerauth.PurposeDB), name, v.Handler()))
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("witness voter up", "addr", listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("witness: %w", err)
	}
	return nil
}

// boolFloat is a gauge's value for a condition: 1 or 0.
func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
