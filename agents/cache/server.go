// Package cache is the cache tier: a cache node runs a real redis-server, configured from the
// topology and supervised by drill's agent beside it (which makes the node a gossip member), and
// web nodes read through their region's cache with Aside (cache-aside: a miss reads the database
// and fills the cache with the TTL; a write invalidates the key).
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// BinaryEnv names the environment variable that overrides where redis-server is found.
const BinaryEnv = "DRILL_REDIS_SERVER"

// ErrNoRedis is returned (wrapped) by FindBinary when no redis-server is installed.
var ErrNoRedis = errors.New("redis-server not found: cache nodes run a real redis-server; install Debian's redis-server package (apt-get install redis-server) or name the binary in " + BinaryEnv)

// imageBinary is where node images carry redis-server (packed from the host's).
const imageBinary = "/usr/bin/redis-server"

// FindBinary finds redis-server: $DRILL_REDIS_SERVER, else on PATH, else /usr/bin/redis-server
// (where node images carry it).
func FindBinary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %v: %w", BinaryEnv, p, err, ErrNoRedis)
		}
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(imageBinary); err == nil {
		return imageBinary, nil
	}
	return "", ErrNoRedis
}

// ServerConfig configures one cache node's redis-server.
type ServerConfig struct {
	// Binary is the redis-server to run; empty means FindBinary.
	Binary string
	// Host and Port are where redis listens (the node's own address).
	Host string
	Port int
	// Password is required of every client (requirepass); it is written to the config file in
	// DataDir, never on the command line, where other local users could read it.
	Password string
	// DataDir holds the config file (0600) and, with persistence, redis's data.
	DataDir string
	// MaxMemory, Eviction and Persistence are the topology's cache section.
	MaxMemory, Eviction, Persistence string
	// Logger receives supervision logs; redis's own log goes to the agent's stderr.
	Logger *slog.Logger
}

// Server is a running redis-server.
type Server struct {
	cfg    ServerConfig
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	client *redis.Client
}

// config is the redis.conf for cfg. Every directive is one of redis 7's; `save ""` with
// `appendonly no` turns persistence off, so a restarted cache comes back empty.
func (cfg ServerConfig) config() string {
	lines := []string{
		"bind " + cfg.Host,
		fmt.Sprintf("port %d", cfg.Port),
		"protected-mode yes",
		"requirepass " + cfg.Password,
		"dir " + cfg.DataDir,
		"daemonize no",
		"loglevel warning",
		`logfile ""`,
		"maxmemory " + cfg.MaxMemory,
		"maxmemory-policy " + cfg.Eviction,
	}
	switch cfg.Persistence {
	case "rdb":
		lines = append(lines, "save 60 1", "appendonly no")
	case "aof":
		lines = append(lines, `save ""`, "appendonly yes", "appendfsync everysec")
	default:
		lines = append(lines, `save ""`, "appendonly no")
	}
	return strings.Join(lines, "\n") + "\n"
}

// Start writes the config and starts redis-server, returning once it answers PING (or failing
// when it exits or does not answer within 10 s). redis dies with the agent (SIGKILL on the
// parent's death), and on the local runtime it is in the agent's process group, so a kill or a
// freeze of the node reaches it too.
func Start(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Binary == "" {
		b, err := FindBinary()
		if err != nil {
			return nil, err
		}
		cfg.Binary = b
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cache data dir: %w", err)
	}
	conf := filepath.Join(cfg.DataDir, "redis.conf")
	if err := os.WriteFile(conf, []byte(cfg.config()), 0o600); err != nil {
		return nil, fmt.Errorf("write redis config: %w", err)
	}
	cmd := exec.Command(cfg.Binary, conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Binary, err)
	}
	s := &Server{cfg: cfg, cmd: cmd, done: make(chan struct{}), client: NewClient(fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), cfg.Password)}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := s.client.Ping(pctx).Err()
		cancel()
		if err == nil {
			cfg.Logger.Info("redis up", "addr", fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), "pid", cmd.Process.Pid)
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server exited at start: %v", s.err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server did not answer PING within 10 s: %w", err)
		}
	}
}

// Healthy reports whether redis answers PING within timeout.
func (s *Server) Healthy(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.client.Ping(ctx).Err() == nil
}

// Done is closed when redis-server has exited; Err then says why.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is how redis-server ended (after Done).
func (s *Server) Err() error { return s.err }

// Stop terminates redis-server (SIGTERM, then SIGKILL after 2 s) and waits for it.
func (s *Server) Stop() {
	_ = s.client.Close()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// NewClient is a client of one cache node. It never retries a command (a retried SET could land
// after a newer DEL) and bounds every call: a dead or frozen cache costs a read at most
// callTimeout before it falls back to the database.
func NewClient(addr, password string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		Password:              password,
		Protocol:              2,
		MaxRetries:            -1,
		DialTimeout:           callTimeout,
		ReadTimeout:           callTimeout,
		WriteTimeout:          callTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              64,
		DisableIdentity:       true,
	})
}

// callTimeout bounds one cache call: a cache hit takes well under a millisecond on a healthy
// node, and a read must not wait longer than this for a cache that stopped answering.
const callTimeout = 250 * time.Millisecond
