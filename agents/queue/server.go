// Package queue is the regions' durable job queue: a NATS server with JetStream embedded in a
// queue node's agent (its stream in the node's data directory), the web tier's publisher, and
// the workers that drain it and record each job's completion in the database.
//
// Each region has one stream, "jobs-<region>" on the subject "jobs.<region>", with work-queue
// retention: a job leaves it when a worker acknowledges it. Publishes carry the job id as
// JetStream's message id, so a retried publish inside the duplicate window is stored once.
// With queue_replication: mirror, every queue node also holds a read-only mirror of every other
// region's stream, copied asynchronously over a NATS leafnode link (one JetStream domain per
// region), which its workers drain while that region's queue is dead; a mirrored stream keeps a
// job until both its workers and the mirror had it (interest retention).
//
// What JetStream promises on a crash: with its default sync settings a file-stored message is
// written to the operating system before the publish is acknowledged (a single-replica stream
// flushes in place) and fsynced every two minutes (sync_interval). An acknowledged job therefore
// survives a crash of the queue process (kill -9), which is what drill tests, but not a crash of
// the machine or a power loss within those two minutes. Memory storage survives neither.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// User is the NATS user of every client and leafnode link (the password is the run's).
const User = "drill"

// Stream is the name of region's job stream (and of its mirrors elsewhere).
func Stream(region string) string { return "jobs-" + region }

// Subject is the subject region's jobs are published on.
func Subject(region string) string { return "jobs." + region }

// Remote is another region's queue node, reached over a leafnode link.
type Remote struct {
	// Region is the other region.
	Region string
	// LeafAddr is where this node dials the other's leafnode port (a WAN link).
	LeafAddr string
	// Dial: only one side of a pair dials, or the two links would form a loop.
	Dial bool
}

// ServerConfig configures a queue node's server.
type ServerConfig struct {
	// Name is the node's name (the NATS server name).
	Name string
	// Region is the node's region: its stream's and its JetStream domain's name.
	Region string
	// Host, Port and LeafPort are where the server listens for clients and leafnode links.
	Host     string
	Port     int
	LeafPort int
	// Password is required of every client and leafnode link.
	Password string
	// StoreDir holds the stream's files (file storage).
	StoreDir string
	// Memory keeps the stream in memory only (queue_storage: memory): lost with the process.
	Memory bool
	// DuplicateWindow is how long a job id is remembered for de-duplication.
	DuplicateWindow time.Duration
	// AckWait is the workers' consumer's redelivery timeout (the consumer is made with the
	// stream, so that a job published before any worker started has a consumer to wait for).
	AckWait time.Duration
	// Mirrors are the other regions' queues to mirror (queue_replication: mirror); none without.
	Mirrors []Remote
	// Logger receives the node's logs.
	Logger *slog.Logger
}

// Server is a running queue node.
type Server struct {
	cfg ServerConfig
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream

	stop         chan struct{} // closed by Stop
	mirrorsDone  chan struct{} // closed when createMirrors returns (nil: never started)
	mirrorsReady atomic.Bool
}

// StartServer starts the embedded NATS server, waits until it takes connections and creates (or,
// after a restart, finds again) the region's stream and its mirrors.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Password == "" || cfg.StoreDir == "" || cfg.Region == "" {
		return nil, errors.New("queue: Region, Password and StoreDir are required")
	}
	opts := &server.Options{
		ServerName:      cfg.Name,
		Host:            cfg.Host,
		Port:            cfg.Port,
		NoSigs:          true, // the agent owns the process's signals
		NoLog:           true,
		JetStream:       true,
		JetStreamDomain: cfg.Region,
		StoreDir:        cfg.StoreDir,
		Users:           []*server.User{{Username: User, Password: cfg.Password}},
		// The server answers within the WAN's worst latency; a client gone for longer is dropped.
		PingInterval: 2 * time.Second,
		MaxPingsOut:  3,
	}
	if len(cfg.Mirrors) > 0 {
		opts.LeafNode = server.LeafNodeOpts{Host: cfg.Host, Port: cfg.LeafPort, Username: User, Password: cfg.Password,
			ReconnectInterval: time.Second}
		for _, m := range cfg.Mirrors {
			if !m.Dial {
				continue
			}
			u := &url.URL{Scheme: "nats-leaf", Host: m.LeafAddr, User: url.UserPassword(User, cfg.Password)}
			opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, &server.RemoteLeafOpts{URLs: []*url.URL{u}})
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("queue: the NATS server on %s:%d did not start within 10s", cfg.Host, cfg.Port)
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.InProcessServer(srv), nats.UserInfo(User, cfg.Password), nats.Name(cfg.Name+"-self"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("queue: connect to own server: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, fmt.Errorf("queue: %w", err)
	}
	s := &Server{cfg: cfg, srv: srv, nc: nc, js: js, stop: make(chan struct{})}
	if err := s.createStreams(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	cfg.Logger.Info("queue up", "stream", Stream(cfg.Region), "storage", s.storage(), "mirrors", len(cfg.Mirrors))
	return s, nil
}

func (s *Server) storage() jetstream.StorageType {
	if s.cfg.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// createStreams creates the region's stream and the mirrors of the other regions' streams; a
// stream the store already holds (a restart) is kept as it is.
func (s *Server) createStreams(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Work-queue retention deletes a job on the workers' ack. A mirrored stream cannot have it:
	// a mirror copies through a consumer of its own on the origin, which on a work queue removes
	// every job it copies and keeps the workers' consumer from being created (nats-server#4310,
	// ADR-60). Interest retention keeps a job until the workers and the mirror both had it.
	retention := jetstream.WorkQueuePolicy
	if len(s.cfg.Mirrors) > 0 {
		retention = jetstream.InterestPolicy
	}
	own := jetstream.StreamConfig{
		Name:       Stream(s.cfg.Region),
		Subjects:   []string{Subject(s.cfg.Region)},
		Retention:  retention,
		Storage:    s.storage(),
		Replicas:   1,
		Duplicates: s.cfg.DuplicateWindow,
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, own); err != nil {
		return fmt.Errorf("queue: create stream %s: %w", own.Name, err)
	}
	if _, err := s.js.CreateOrUpdateConsumer(ctx, own.Name, consumerConfig(s.cfg.AckWait)); err != nil {
		return fmt.Errorf("queue: create the workers' consumer on %s: %w", own.Name, err)
	}
	if len(s.cfg.Mirrors) > 0 {
		s.mirrorsDone = make(chan struct{})
		go s.createMirrors(context.WithoutCancel(ctx))
	}
	return nil
}

// createMirrors creates the mirrors of the other regions' streams once a leafnode link is up
// (JetStream retries a mirror that found no link only every 10 to 20 s, longer than a drill's
// steady phase), then marks the node ready. A try that fails (a loaded server answering late)
// is tried again a second later; it gives up when the server stops.
func (s *Server) createMirrors(ctx context.Context) {
	defer close(s.mirrorsDone)
	wait := func(d time.Duration) bool {
		select {
		case <-s.stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		for s.srv.Running() && s.srv.NumLeafNodes() < len(s.cfg.Mirrors) {
			if !wait(100 * time.Millisecond) {
				return
			}
		}
		err := s.tryCreateMirrors(ctx)
		if err == nil {
			break
		}
		s.cfg.Logger.Warn("mirrors not created yet; trying again", "err", err)
		if !wait(time.Second) {
			return
		}
	}
	s.cfg.Logger.Info("mirrors created", "regions", len(s.cfg.Mirrors))
	s.mirrorsReady.Store(true)
}

// tryCreateMirrors creates (or, after a restart, keeps) every mirror once.
func (s *Server) tryCreateMirrors(ctx context.Context) error {
	for _, m := range s.cfg.Mirrors {
		// A mirror keeps what it copied (limits retention): a worker here acknowledges a job on
		// its own consumer, while the job stays in its region's stream for when it returns.
		mc := jetstream.StreamConfig{
			Name:    Stream(m.Region),
			Storage: s.storage(),
			MaxAge:  time.Hour, // a copy for outages, not an archive
			Mirror:  &jetstream.StreamSource{Name: Stream(m.Region), Domain: m.Region},
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.js.CreateOrUpdateStream(cctx, mc)
		cancel()
		if err != nil {
			return fmt.Errorf("mirror of %s: %w", m.Region, err)
		}
	}
	return nil
}

// Backlog is how many jobs of the region's stream the workers have not acknowledged: waiting
// (pending on their consumer) or being worked on (delivered, not yet acknowledged). Taken from
// the workers' consumer, not the stream: a mirrored stream also keeps jobs the workers are done
// with until the mirror has copied them.
func (s *Server) Backlog(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := s.js.Consumer(ctx, Stream(s.cfg.Region), ConsumerName)
	if err != nil {
		return 0, err
	}
	info := c.CachedInfo() // fetched by the lookup just now: a second request would ask again
	return info.NumPending + uint64(info.NumAckPending), nil
}

// Ready reports whether the node's mirrors exist (always, without mirrors).
func (s *Server) Ready() bool { return len(s.cfg.Mirrors) == 0 || s.mirrorsReady.Load() }

// Stop shuts the server down (its file store is flushed and closed).
func (s *Server) Stop() {
	close(s.stop)
	if s.mirrorsDone != nil {
		<-s.mirrorsDone
	}
	s.nc.Close()
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// connect dials a region's queue as a client: it keeps retrying (the queue may be down or cut
// off) until ctx ends or Close.
func connect(url, password, name string, extra ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{
		nats.UserInfo(User, password),
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(time.Second),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
	}, extra...)...)
}

// natsURL is the client URL of a queue node's address (ip:port).
func natsURL(addr string) string { return "nats://" + addr }
