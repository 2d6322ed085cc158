// Package local is the embedded default runtime: every node is a child process of the drill binary
// (`drill agent`), bound to its own loopback address, with its data and log under the run
// directory. It needs no Docker and no root. Processes are found again by their command line, so
// `drill down` stops every node of a plan even if the state file was lost.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
	"github.com/google/renameio/v2"
)

// Config configures the local runtime.
type Config struct {
	// RunDir holds plan.json, nodes.json, data/ and logs/.
	RunDir string
	// Binary is the drill binary the nodes run; empty = this process's executable.
	Binary string
	// Logger receives the runtime's logs.
	Logger *slog.Logger
}

// Runtime runs nodes as local processes.
type Runtime struct {
	cfg Config
	mu  sync.Mutex

	plan runtime.PlanFile // the plan of the cluster this runtime runs
}

// New returns a local runtime for one run directory.
func New(cfg Config) (*Runtime, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("local runtime: RunDir is required")
	}
	abs, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	cfg.RunDir = abs
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find drill binary: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runtime{cfg: cfg, plan: runtime.PlanFile{Path: PlanPath(cfg.RunDir)}}, nil
}

// Name is the runtime's registered name.
const Name = "local"

// Name is "local".
func (r *Runtime) Name() string { return Name }

// Capabilities: no packet layer (faults act on the WAN links and the gossip transport), users
// send from their region's own loopback subnet (no ECS needed), no images.
func (r *Runtime) Capabilities() runtime.Capabilities { return runtime.Capabilities{} }

// Descriptor registers the runtime (compose.Runtimes).
func Descriptor() runtime.Descriptor {
	return runtime.Descriptor{
		Name:    Name,
		Summary: "child processes on loopback (no Docker, no root)",
		New: func(cfg runtime.Config) (runtime.Runtime, error) {
			return New(Config{RunDir: cfg.RunDir, Binary: cfg.Binary, Logger: cfg.Logger})
		},
		NewPlan:  NewPlan,
		PlanPath: PlanPath,
		Capacity: func() (int, string) { return Capacity(goruntime.NumCPU()) },
	}
}

// NodesPerCore is how many node processes one core holds with the cluster converging in time.
// Measured on a 2-core machine with the fast gossip profile: 112 nodes (10 regions of 11, the
// WAN node and the witness) converged in 13.5–18 s and then idled at 0.6–0.8 % of a core each;
// 167 nodes (15 regions of 11) did not converge in 90 s (a node's probes and the witness's
// answers came too late on the starved cores).
const NodesPerCore = 60

// Capacity is how many nodes the local runtime runs on a machine of cpus cores, and why.
func Capacity(cpus int) (int, string) {
	return max(cpus, 1) * NodesPerCore, fmt.Sprintf("%d per core on %d cores: measured, 112 nodes converged in 13.5-18 s on 2 cores and 167 did not in 90 s", NodesPerCore, max(cpus, 1))
}

// NewPlan makes a plan in the loopback layout: every node on its own address of the topology's
// loopback_base.
func NewPlan(t *topology.Topology, runDir string) (*topology.Plan, error) {
	for i, r := range t.Regions {
		// Here users are told apart by their source address alone (no EDNS Client Subnet on
		// loopback): without a loopback subnet, a region's users could never be sent to it.
		if !r.ClientSource(0).IsValid() {
			return nil, fmt.Errorf("regions[%d] (%s): client_subnets has no loopback subnet (a /24 or wider inside 127.0.0.0/8) "+
				"for the region's simulated users, which the local runtime needs", i, r.Name)
		}
	}
	return topology.NewPlan(t, topology.PlanOptions{Runtime: Name, RunDir: runDir})
}

// PlanPath is where the plan lives in the run directory.
func PlanPath(runDir string) string { return runtime.PlanPath(runDir) }

func (r *Runtime) planPath() string  { return PlanPath(r.cfg.RunDir) }
func (r *Runtime) statePath() string { return filepath.Join(r.cfg.RunDir, "nodes.json") }

// LogPath is a node's log file.
func (r *Runtime) LogPath(node string) string {
	return filepath.Join(r.cfg.RunDir, "logs", node+".log")
}

type state struct {
	Plan  string         `json:"plan"`
	Nodes map[string]int `json:"nodes"` // name → pid
}

func (r *Runtime) loadState() (*state, error) {
	b, err := os.ReadFile(r.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return &state{Plan: r.planPath(), Nodes: map[string]int{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read runtime state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode runtime state %s: %w", r.statePath(), err)
	}
	if s.Nodes == nil {
		s.Nodes = map[string]int{}
	}
	return &s, nil
}

func (r *Runtime) saveState(s *state) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	// fsync before the rename: after a crash the state names the processes or is the old one.
	if err := renameio.WriteFile(r.statePath(), b, 0o600); err != nil {
		return fmt.Errorf("write runtime state: %w", err)
	}
	return nil
}

// Up starts every node: the WAN node first (every cross-site link needs it), then the rest.
func (r *Runtime) Up(ctx context.Context, plan *topology.Plan) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pids := r.agentPIDs(); len(pids) > 0 {
		return runtime.ErrAlreadyUp
	}
	for _, reg := range plan.Topology.Regions {
		if reg.DockerHost != "" {
			// Processes on this host cannot honour a region placed on another engine.
			return fmt.Errorf("local runtime: region %s names docker_host %s, which only the docker runtime can place (--runtime docker)", reg.Name, reg.DockerHost)
		}
	}
	if plan.Topology.HasCache() {
		// Cache nodes run the host's redis-server: refused before anything starts without one.
		if _, err := cache.FindBinary(); err != nil {
			return err
		}
	}
	// A fresh cluster every time: old data would carry an old epoch and divergent history.
	for _, d := range []string{"data", "logs"} {
		if err := os.RemoveAll(filepath.Join(r.cfg.RunDir, d)); err != nil {
			return fmt.Errorf("clean run dir: %w", err)
		}
		// Private: the nodes' data is the run's dataset, their logs name keys and addresses.
		if err := os.MkdirAll(filepath.Join(r.cfg.RunDir, d), 0o700); err != nil {
			return fmt.Errorf("create run dir: %w", err)
		}
	}
	plan.RunDir = r.cfg.RunDir
	plan.Runtime = r.Name()
	if err := r.plan.Save(plan); err != nil {
		return err
	}
	st := &state{Plan: r.planPath(), Nodes: map[string]int{}}
	for _, n := range plan.Topology.Nodes() {
		pid, err := r.spawn(n.Name)
		if err != nil {
			_ = r.saveState(st)
			return err
		}
		st.Nodes[n.Name] = pid
	}
	return r.saveState(st)
}

// spawn starts one node process in its own process group, detached from drill's terminal.
func (r *Runtime) spawn(node string) (int, error) {
	logf, err := os.OpenFile(r.LogPath(node), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open log for %s: %w", node, err)
	}
	defer logf.Close()
	cmd := exec.Command(r.cfg.Binary, "agent", "--plan", r.planPath(), "--node", node)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = r.cfg.RunDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start node %s: %w", node, err)
	}
	// Reap the child if this process outlives it; after drill exits, init adopts it.
	go func() { _ = cmd.Wait() }()
	r.cfg.Logger.Debug("node started", "node", node, "pid", cmd.Process.Pid)
	return cmd.Process.Pid, nil
}

// agentPIDs finds this run directory's node processes, this user's processes whose command line
// names its plan: name → pid.
func (r *Runtime) agentPIDs() map[string]int {
	out := map[string]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	want := []byte("\x00--plan\x00" + r.planPath() + "\x00--node\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Only this user's processes: another user's process with the same arguments is not
		// ours to signal (and a root drill must not kill it).
		if !ownedByMe(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		i := bytes.Index(cmdline, want)
		if i < 0 || zombie(pid) {
			continue
		}
		rest := cmdline[i+len(want):]
		name, _, _ := bytes.Cut(rest, []byte{0})
		out[string(name)] = pid
	}
	return out
}

// ownedByMe reports whether process pid runs as this process's real uid.
func ownedByMe(pid int) bool {
	st, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Getuid()
}

// statFields are the fields of /proc/<pid>/stat after the command (state, ppid, pgrp, ...); nil
// when the process is gone.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procState is the state letter in /proc/<pid>/stat (R, S, T for stopped, Z for zombie...), 0 when
// the process is gone.
func procState(pid int) byte {
	if f := statFields(pid); len(f) > 0 && f[0] != "" {
		return f[0][0]
	}
	return 0
}

func zombie(pid int) bool { s := procState(pid); return s == 'Z' || s == 'X' || s == 0 }

// groupMembers lists the live (not zombie) processes of each process group in pgids (statFields:
// state, ppid, pgrp).
func groupMembers(pgids []int) map[int][]int {
	want := map[int]bool{}
	for _, g := range pgids {
		want[g] = true
	}
	out := map[int][]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && want[g] {
			out[g] = append(out[g], pid)
		}
	}
	return out
}

// Nodes reports every planned node with its process state.
func (r *Runtime) Nodes(ctx context.Context) ([]runtime.NodeState, error) {
	plan, err := r.loadPlan()
	if err != nil {
		return nil, err
	}
	pids := r.agentPIDs()
	var out []runtime.NodeState
	for _, n := range plan.Topology.Nodes() {
		ns := runtime.NodeState{Name: n.Name}
		if pid, ok := pids[n.Name]; ok {
			ns.Running, ns.PID = true, pid
			ns.Frozen = procState(pid) == 'T'
		}
		out = append(out, ns)
	}
	return out, nil
}

func (r *Runtime) pidOf(node string) (int, error) {
	pid, ok := r.agentPIDs()[node]
	if !ok {
		return 0, fmt.Errorf("node %s is not running", node)
	}
	return pid, nil
}

func (r *Runtime) signal(node string, sig syscall.Signal) error {
	pid, err := r.pidOf(node)
	if err != nil {
		return err
	}
	// The node is its own process-group leader: signal the group.
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("signal %v to %s (pid %d): %w", sig, node, pid, err)
	}
	return nil
}

// Kill sends SIGKILL to the node's process group and waits until every process of it is gone.
func (r *Runtime) Kill(ctx context.Context, node string) error {
	pid, err := r.pidOf(node)
	if err != nil {
		return err
	}
	if err := r.signal(node, syscall.SIGKILL); err != nil {
		return err
	}
	return waitGone(ctx, []int{pid}, 5*time.Second)
}

// Freeze sends SIGSTOP and waits until the process is stopped: the signal is delivered when the
// process next runs, and until then Nodes would still report it running, so a caller pushing
// rules to every unfrozen node right after would wait on a node that stops mid-call.
func (r *Runtime) Freeze(ctx context.Context, node string) error {
	return r.signalAndWait(ctx, node, syscall.SIGSTOP, true)
}

// Thaw sends SIGCONT and waits until the process runs again.
func (r *Runtime) Thaw(ctx context.Context, node string) error {
	return r.signalAndWait(ctx, node, syscall.SIGCONT, false)
}

// signalAndWait signals a node and polls its state (up to 5 s) until it is stopped or not.
func (r *Runtime) signalAndWait(ctx context.Context, node string, sig syscall.Signal, stopped bool) error {
	pid, err := r.pidOf(node)
	if err != nil {
		return err
	}
	if err := r.signal(node, sig); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for (procState(pid) == 'T') != stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) not %s 5s after %v", node, pid, map[bool]string{true: "stopped", false: "running"}[stopped], sig)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Start starts a node that is not running, with its existing data.
func (r *Runtime) Start(ctx context.Context, node string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, running := r.agentPIDs()[node]; running {
		return fmt.Errorf("node %s is already running", node)
	}
	pid, err := r.spawn(node)
	if err != nil {
		return err
	}
	st, err := r.loadState()
	if err != nil {
		return err
	}
	st.Nodes[node] = pid
	return r.saveState(st)
}

// Endpoint is the node's own loopback address.
func (r *Runtime) Endpoint(node string, port int) (string, error) {
	plan, err := r.loadPlan()
	if err != nil {
		return "", err
	}
	return plan.NodeAddr(node, port)
}

func (r *Runtime) loadPlan() (*topology.Plan, error) { return r.plan.Load() }

// Down stops every node of the plan (SIGCONT first, so frozen nodes can die), SIGTERM, then SIGKILL
// whatever is left after a grace period, and removes the node data. Logs stay for post-mortems.
func (r *Runtime) Down(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pids := r.agentPIDs()
	var all []int
	for _, pid := range pids {
		all = append(all, pid)
		_ = syscall.Kill(-pid, syscall.SIGCONT)
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	sort.Ints(all)
	if err := waitGone(ctx, all, 5*time.Second); err != nil {
		for _, pid := range all {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		if err := waitGone(ctx, all, 5*time.Second); err != nil {
			return fmt.Errorf("stop nodes: %w", err)
		}
	}
	if left := r.agentPIDs(); len(left) > 0 {
		return fmt.Errorf("stop nodes: still running: %v", left)
	}
	_ = os.Remove(r.statePath())
	if err := os.RemoveAll(filepath.Join(r.cfg.RunDir, "data")); err != nil {
		return fmt.Errorf("remove node data: %w", err)
	}
	return nil
}

// waitGone polls until none of the node processes pids is alive, nor any other process of their
// process groups (a cache node's redis-server): a restarted node must find its ports free, and a
// node's processes hold them until they have died. Zombies count as gone: their parent reaps
// them, and they hold no sockets.
func waitGone(ctx context.Context, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		groups := groupMembers(pids)
		var alive []string
		for _, pid := range pids {
			if !zombie(pid) {
				alive = append(alive, strconv.Itoa(pid))
			}
			for _, m := range groups[pid] {
				if m != pid {
					alive = append(alive, fmt.Sprintf("%d (group %d)", m, pid))
				}
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still alive after %s: %s", timeout, strings.Join(alive, ","))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
