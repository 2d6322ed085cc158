package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/db"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/agents/serve"
	"github.com/drillworks/drill/agents/web"
	"github.com/drillworks/drill/dnsgeo"
	"github.com/drillworks/drill/topology"
)

// newRole builds the node's role service; the returned func runs it until ctx is done.
func newRole(o Options, node topology.Node, bindIP string, g *gossip.Node, clk *clock.Clock, faults *disk.Faults, log *slog.Logger) (func(context.Context) error, error) {
	p, t := o.Plan, o.Plan.Topology
	dbAddr := func(name string) (string, error) { return p.DBAddr(node.Site(), name) }
	switch node.Role {
	case topology.RoleWeb:
		w, err := web.New(web.Config{
			Name: node.Name, Region: node.Region, Listen: net.JoinHostPort(bindIP, fmt.Sprint(topology.PortWeb)),
			Members: g, DBAddr: dbAddr, ReadYourWrites: t.Design.ReadYourWrites,
			ReadFromPrimary: t.Design.ReadFrom == topology.ReadFromPrimary, Logger: log,
			DBKey: peerauth.Derive(p.Secret, peerauth.PurposeDB),
			// A client whose address the node's gossip fault rules drop is black-holed too.
			Drop: g.Faults().Blocks,
		})
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
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
			Registry: prometheus.NewRegistry(),
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

	case topology.RoleDNS:
		reg := prometheus.NewRegistry()
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
func serveWitness(ctx context.Context, p *topology.Plan, dataDir, listen string, log *slog.Logger) error {
	v, err := db.OpenVoter(dataDir, slices.Sorted(maps.Keys(dbRegions(p.Topology))), nil, log)
	if err != nil {
		return fmt.Errorf("open witness voter: %w", err)
	}
	srv := serve.Server(listen, peerauth.Require(peerauth.Derive(p.Secret, peerauth.PurposeDB), v.Handler()))
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
