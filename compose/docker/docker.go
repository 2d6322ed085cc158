// Package docker is the container runtime: every node runs in its own container of one image made
// from the drill binary itself (no registry), each region on a bridge network of its own, and
// every container also on a shared WAN network, where the WAN node (toxiproxy) and the witness
// live. Addresses are the plan's (topology.AddressingDocker): a node binds and advertises its
// WAN-network address; its region's nodes reach the other sites' databases only through the WAN
// node's links on their own region network, exactly as in the local runtime. Faults go through
// the Docker API (kill, pause) and the kernel: packet drops with nftables inside the nodes'
// network namespaces, installed by short-lived helper containers of the same image
// (PacketFaulter). Identity lives in labels (LabelTopology, LabelRun, LabelNode, LabelRole):
// drill lists and removes only objects that carry them.
package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// Config configures the Docker runtime.
type Config struct {
	// RunDir holds plan.json, data/ (bind-mounted into the nodes) and logs/ (saved at Down).
	RunDir string
	// Binary is the drill binary the node image is made from, static or dynamically linked (its
	// loader and libraries are packed with it); empty = this process's executable.
	Binary string
	// Topology is the topology's name, used by Down when the run directory has no plan (so that
	// `drill down` still removes a crashed run's containers); empty = the plan's.
	Topology string
	// PacketRulesFrom says where packet rules are changed from: PacketRulesFromAuto (default),
	// PacketRulesFromHost or PacketRulesFromHelper.
	PacketRulesFrom string
	// Engine is the Docker engine; nil = NewEngine() (DOCKER_HOST or the local socket). It holds
	// the WAN node, the witness and every region without a docker_host.
	Engine Engine
	// DialEngine connects to the engine a region's docker_host names; nil = NewEngineAt.
	DialEngine func(host string) (Engine, error)
	// Logger receives the runtime's logs.
	Logger *slog.Logger
}

// Where packet rules are changed from (Config.PacketRulesFrom).
const (
	// PacketRulesFromAuto enters the node's namespace from this process when it can (root, engine
	// on this host), else runs a helper container.
	PacketRulesFromAuto = "auto"
	// PacketRulesFromHost always enters the namespace from this process (fails when it cannot).
	PacketRulesFromHost = "host"
	// PacketRulesFromHelper always runs a helper container.
	PacketRulesFromHelper = "helper"
)

// Runtime runs nodes as containers.
type Runtime struct {
	cfg Config
	eng Engine // the default engine
	log *slog.Logger

	plan runtime.PlanFile // the running plan, read once from the run directory

	mu      sync.Mutex
	remotes map[string]Engine // the engines of regions' docker_host values, dialled on first use
}

var (
	_ runtime.Runtime       = (*Runtime)(nil)
	_ runtime.PacketFaulter = (*Runtime)(nil)
	_ runtime.ImageBuilder  = (*Runtime)(nil)
)

// New returns a Docker runtime for one run directory. It does not contact the engine.
func New(cfg Config) (*Runtime, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("docker runtime: RunDir is required")
	}
	abs, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	cfg.RunDir = abs
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Engine == nil {
		if cfg.Engine, err = NewEngine(); err != nil {
			return nil, err
		}
	}
	if cfg.DialEngine == nil {
		cfg.DialEngine = NewEngineAt
	}
	return &Runtime{cfg: cfg, eng: cfg.Engine, log: cfg.Logger, plan: runtime.PlanFile{Path: PlanPath(cfg.RunDir)},
		remotes: map[string]Engine{}}, nil
}

// engineAt is the engine at host: a region's docker_host, "" for the default engine.
func (r *Runtime) engineAt(host string) (Engine, error) {
	if host == "" {
		return r.eng, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.remotes[host]; ok {
		return e, nil
	}
	e, err := r.cfg.DialEngine(host)
	if err != nil {
		return nil, fmt.Errorf("docker engine %s: %w", host, err)
	}
	r.remotes[host] = e
	return e, nil
}

// engineOf is the engine a listed container is on.
func (r *Runtime) engineOf(c Container) (Engine, error) { return r.engineAt(c.Host) }

// nodeHost is the engine a node runs on: its region's docker_host ("" for the WAN node, the
// witness and regions without one).
func nodeHost(t *topology.Topology, n topology.Node) string {
	if r, ok := t.Region(n.Region); ok {
		return r.DockerHost
	}
	return ""
}

// checkEngines makes sure every engine of the topology answers and that no two of its
// addresses are one engine (their networks would then share one host's bridges and clash).
func (r *Runtime) checkEngines(ctx context.Context, t *topology.Topology) error {
	hosts := EngineHosts(t)
	if len(hosts) == 1 {
		return nil
	}
	seen := map[string]string{}
	for _, h := range hosts {
		e, err := r.engineAt(h)
		if err != nil {
			return err
		}
		id, err := e.ID(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", engineLabel(h), err)
		}
		if other, ok := seen[id]; ok {
			return fmt.Errorf("docker runtime: %s is %s: every docker_host must name an engine of its own, not the default one (DOCKER_HOST or the local socket) nor another region's", engineLabel(h), engineLabel(other))
		}
		seen[id] = h
	}
	return nil
}

// closeRemotes closes the engines dialled for docker_host values.
func (r *Runtime) closeRemotes() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, e := range r.remotes {
		_ = e.Close()
		delete(r.remotes, h)
	}
}

// Available reports whether a Docker engine answers within timeout (for --runtime auto).
func Available(ctx context.Context, timeout time.Duration) error {
	e, err := NewEngine()
	if err != nil {
		return err
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return e.Ping(ctx)
}

// Name is the runtime's registered name.
const Name = "docker"

// Name is "docker".
func (r *Runtime) Name() string { return Name }

// capabilities: packet faults with nftables, users on the host carry ECS (their source address
// is the bridge gateway, not their region's subnet), and nodes run from an imported image.
var capabilities = runtime.Capabilities{PacketFaults: true, ClientsNeedECS: true, NodeImages: true}

// Capabilities says what the runtime can do.
func (r *Runtime) Capabilities() runtime.Capabilities { return capabilities }

// Descriptor registers the runtime (compose.Runtimes).
func Descriptor() runtime.Descriptor {
	return runtime.Descriptor{
		Name:         Name,
		Summary:      "one container per node (needs a Docker engine; images made locally, no registry)",
		Capabilities: capabilities,
		New: func(cfg runtime.Config) (runtime.Runtime, error) {
			return New(Config{RunDir: cfg.RunDir, Binary: cfg.Binary, Topology: cfg.Topology, Logger: cfg.Logger})
		},
		NewPlan:   NewPlan,
		PlanPath:  PlanPath,
		Available: Available,
	}
}

// Engine is the engine the runtime talks to.
func (r *Runtime) Engine() Engine { return r.eng }

// PlanPath is where the plan lives in the run directory (the same place as the local runtime's).
func PlanPath(runDir string) string { return runtime.PlanPath(runDir) }

func (r *Runtime) planPath() string { return PlanPath(r.cfg.RunDir) }

// LogPath is where a node's container log is saved at Down.
func (r *Runtime) LogPath(node string) string {
	return filepath.Join(r.cfg.RunDir, "logs", node+".log")
}

func (r *Runtime) dataDir(node string) string { return filepath.Join(r.cfg.RunDir, "data", node) }

// loadPlan returns the running plan, read once from the run directory.
func (r *Runtime) loadPlan() (*topology.Plan, error) { return r.plan.Load() }

// Image makes sure the node image of the configured binary alone exists and returns its ref and
// whether it was built now (`drill image build`, runtime.ImageBuilder).
func (r *Runtime) Image(ctx context.Context) (string, bool, error) {
	return r.TopologyImage(ctx, nil)
}

// TopologyImage makes sure the node image topology t needs exists (with redis-server when it
// has cache nodes; nil t: drill alone) and returns its ref and whether it was built now.
func (r *Runtime) TopologyImage(ctx context.Context, t *topology.Topology) (string, bool, error) {
	im, err := r.nodeImage(t)
	if err != nil {
		return "", false, err
	}
	return im.Ensure(ctx, r.eng, r.log)
}

// nodeImage packs the node image topology t needs, without contacting the engine.
func (r *Runtime) nodeImage(t *topology.Topology) (NodeImage, error) {
	bin := r.cfg.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return NodeImage{}, fmt.Errorf("find drill binary: %w", err)
		}
		bin = exe
	}
	spec, err := ImageSpecFor(t, bin)
	if err != nil {
		return NodeImage{}, fmt.Errorf("docker runtime: %w", err)
	}
	return spec.Image()
}

// networkName is a network's name: drill-<topology>-<region>, or drill-<topology>-wan.
func networkName(topo, site string) string { return "drill-" + topo + "-" + site }

// wanNetwork is the name of the WAN network's site part (no region may be called this).
const wanNetwork = "wan"

// containerName is a node container's name.
func containerName(topo, node string) string { return "drill-" + topo + "-" + node }

// listContainers lists the containers carrying the labels on every engine in hosts, each tagged
// with its engine.
func (r *Runtime) listContainers(ctx context.Context, hosts []string, labels map[string]string) ([]Container, error) {
	var out []Container
	for _, h := range hosts {
		e, err := r.engineAt(h)
		if err != nil {
			return nil, err
		}
		cs, err := e.ContainerList(ctx, labels)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", engineLabel(h), err)
		}
		for _, c := range cs {
			c.Host = h
			out = append(out, c)
		}
	}
	return out, nil
}

// nodeContainers lists the node containers carrying the labels on every engine in hosts, by
// node name (helpers excluded).
func (r *Runtime) nodeContainers(ctx context.Context, hosts []string, labels map[string]string) (map[string]Container, error) {
	cs, err := r.listContainers(ctx, hosts, labels)
	if err != nil {
		return nil, err
	}
	out := map[string]Container{}
	for _, c := range cs {
		if c.Labels[LabelRole] == RoleHelper || c.Labels[LabelNode] == "" {
			continue
		}
		out[c.Labels[LabelNode]] = c
	}
	return out, nil
}

// Up creates the networks and one container per node, and starts them.
func (r *Runtime) Up(ctx context.Context, plan *topology.Plan) error {
	t := plan.Topology
	if !isDockerPlan(plan) {
		return errors.New("docker runtime: the plan has no Docker addresses (make it with docker.NewPlan)")
	}
	if _, ok := t.Region(wanNetwork); ok {
		return fmt.Errorf("docker runtime: a region may not be called %q (the WAN network's name)", wanNetwork)
	}
	// The image's files first, before the engine is touched: a topology with cache nodes and no
	// redis-server on this host (or a binary that cannot be packed) fails here, having removed
	// and created nothing.
	im, err := r.nodeImage(t)
	if err != nil {
		return err
	}
	if err := r.checkEngines(ctx, t); err != nil {
		return err
	}
	hosts := EngineHosts(t)
	// This owner's containers of the topology, whatever their run: one of them running means
	// the topology is up already. Another owner's container of the same name makes the create
	// below fail with a conflict; it is never removed.
	existing, err := r.nodeContainers(ctx, hosts, ownLabels(t.Name))
	if err != nil {
		return fmt.Errorf("docker runtime: %w", err)
	}
	for _, c := range existing {
		if c.Running() {
			return runtime.ErrAlreadyUp
		}
	}
	// This owner's leftovers of a crashed run (stopped containers, networks) go first.
	if err := r.removeAll(ctx, hosts, ownLabels(t.Name), false); err != nil {
		return fmt.Errorf("docker runtime: remove leftovers: %w", err)
	}
	var ref string
	for _, h := range hosts {
		start := time.Now()
		e, err := r.engineAt(h)
		if err != nil {
			return err
		}
		var built bool
		if ref, built, err = im.Ensure(ctx, e, r.log); err != nil {
			return fmt.Errorf("%s: %w", engineLabel(h), err)
		}
		r.log.Info("node image ready", "engine", engineLabel(h), "ref", ref, "built", built, "took", time.Since(start).Round(time.Millisecond))
	}

	// A fresh cluster every time: old data would carry an old epoch and divergent history.
	for _, d := range []string{"data", "logs"} {
		if err := os.RemoveAll(filepath.Join(r.cfg.RunDir, d)); err != nil {
			return fmt.Errorf("clean run dir: %w", err)
		}
	}
	// Private: the data is the run's dataset and its secrets' users.
	for _, n := range t.Nodes() {
		if err := os.MkdirAll(r.dataDir(n.Name), 0o700); err != nil {
			return fmt.Errorf("create run dir: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(r.cfg.RunDir, "logs"), 0o700); err != nil {
		return fmt.Errorf("create run dir: %w", err)
	}
	plan.RunDir = r.cfg.RunDir
	plan.Runtime = r.Name()
	if err := r.plan.Save(plan); err != nil {
		return err
	}

	step := time.Now()
	if err := r.ensureNetworks(ctx, plan); err != nil {
		return err
	}
	r.log.Debug("networks ready", "took", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	var planTar []byte // for the nodes on other engines, made once
	if len(hosts) > 1 {
		if planTar, err = planArchive(r.planPath()); err != nil {
			return err
		}
	}
	nodes := t.Nodes()
	ids := make([]string, len(nodes))
	engs := make([]Engine, len(nodes))
	for i, n := range nodes {
		if engs[i], err = r.engineAt(nodeHost(t, n)); err != nil {
			return err
		}
	}
	if err := parallel(ctx, len(nodes), 4, func(i int) error {
		id, err := r.createNode(ctx, engs[i], plan, ref, nodes[i], planTar)
		ids[i] = id
		return err
	}); err != nil {
		return err
	}
	r.log.Debug("containers created", "took", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	// The WAN node first: every cross-site link goes through it.
	if err := engs[0].ContainerStart(ctx, ids[0]); err != nil {
		return fmt.Errorf("start node %s: %w", nodes[0].Name, err)
	}
	// The engine serializes much of a start (about 0.8 s each here, mostly network setup), so
	// starts are all issued at once and it orders them: 4 at a time took 8-9 s for the default
	// topology, all at once 6-7 s. Bounded so that a big topology does not open hundreds of calls.
	err = parallel(ctx, len(nodes)-1, 16, func(i int) error {
		t0 := time.Now()
		if err := engs[i+1].ContainerStart(ctx, ids[i+1]); err != nil {
			return fmt.Errorf("start node %s: %w", nodes[i+1].Name, err)
		}
		r.log.Debug("node started", "node", nodes[i+1].Name, "took", time.Since(t0).Round(time.Millisecond))
		return nil
	})
	r.log.Debug("containers started", "took", time.Since(step).Round(time.Millisecond))
	return err
}

// nodeCommand is what a node's container runs, reading the plan at planPath in its container: the
// WAN node is the embedded toxiproxy, every other node the agent.
func nodeCommand(n topology.Node, planPath string) []string {
	if n.Role == topology.RoleWAN {
		return []string{"toxiproxy", "--plan", planPath, "--data-dir", "/data"}
	}
	return []string{"agent", "--plan", planPath, "--node", n.Name, "--data-dir", "/data"}
}

// Where a node's plan is in its container: bind-mounted read-only from the run directory on the
// default engine; copied into its data volume on another engine, whose host does not have the run
// directory.
const (
	boundPlanPath  = "/plan.json"
	volumePlanPath = "/data/plan.json"
)

// volumeNodeUID is the user a node on another engine runs as, and owns its data volume: the
// invoking user's id means nothing on another host, and root is not needed. It is the uid
// distroless images call nonroot.
const volumeNodeUID = 65532

// dataVolume is the name of the named volume holding the data of a node on another engine.
func dataVolume(topo, node string) string { return "drill-" + topo + "-" + node + "-data" }

// createNode creates one node's container on its engine: on the WAN network at the node's address
// first (its default route and published ports go through it), then on its region's network (the
// WAN node: on the network of every region of its engine, at its link address there). A node on
// another engine than the default gets planTar (planArchive) copied into its data volume.
func (r *Runtime) createNode(ctx context.Context, eng Engine, plan *topology.Plan, ref string, n topology.Node, planTar []byte) (string, error) {
	t := plan.Topology
	eps := []Endpoint{{Network: networkName(t.Name, wanNetwork), IP: n.IP, Aliases: []string{n.Name}}}
	switch n.Role {
	case topology.RoleWAN:
		for _, reg := range t.RegionNames() {
			if siteEngine(t, reg) == 0 {
				eps = append(eps, Endpoint{Network: networkName(t.Name, reg), IP: regionAddr(t, reg, n)})
			}
		}
	case topology.RoleWitness:
	default:
		eps = append(eps, Endpoint{Network: networkName(t.Name, n.Region), IP: regionAddr(t, n.Region, n), Aliases: []string{n.Name}})
	}
	var ports []PortBinding
	switch n.Role {
	case topology.RoleDNS:
		ports = []PortBinding{{Port: topology.PortDNS, Proto: "udp", HostIP: "127.0.0.1"}, {Port: topology.PortDNS, Proto: "tcp", HostIP: "127.0.0.1"}}
	case topology.RoleWAN:
		ports = []PortBinding{{Port: topology.PortWANAPI, Proto: "tcp", HostIP: "127.0.0.1"}}
	}
	// On the default engine the node writes its data as the invoking user into the run
	// directory, so `drill down` can remove it, and reads the plan from there.
	planPath, user := boundPlanPath, fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	binds := []string{r.planPath() + ":" + boundPlanPath + ":ro", r.dataDir(n.Name) + ":/data"}
	remote := nodeHost(t, n) != ""
	if remote {
		// The run directory is on this host only: the node's data is a volume of its engine,
		// made private to the node's user by the image's /data, and its plan is copied in.
		vol := dataVolume(t.Name, n.Name)
		if err := eng.VolumeCreate(ctx, vol, objectLabels(t.Name, plan.RunID, RoleVolume, n.Name)); err != nil {
			return "", fmt.Errorf("create node %s: %w", n.Name, err)
		}
		planPath, user = volumePlanPath, fmt.Sprintf("%d:%d", volumeNodeUID, volumeNodeUID)
		binds = []string{vol + ":/data"}
	}
	spec := ContainerSpec{
		Name:     containerName(t.Name, n.Name),
		Image:    ref,
		Cmd:      nodeCommand(n, planPath),
		Hostname: n.Name,
		Labels:   objectLabels(t.Name, plan.RunID, string(n.Role), n.Name),
		User:     user,
		Init:     true,
		Binds:    binds,
		Ports:    ports,
		Networks: eps,
		// A node needs no capability (its ports are above 1024, it runs as an unprivileged
		// user) and writes only to /data. A cache node's redis-server too: its config, working
		// directory and any persistence files are in /data/redis, it logs to stdout, and it
		// writes no pid file (daemonize no, no pidfile).
		Hardened: true,
	}
	id, err := eng.ContainerCreate(ctx, spec)
	if err != nil {
		return id, fmt.Errorf("create node %s: %w", n.Name, err)
	}
	if remote {
		if err := eng.CopyToContainer(ctx, id, "/data", bytes.NewReader(planTar)); err != nil {
			return id, fmt.Errorf("create node %s: copy its plan: %w", n.Name, err)
		}
	}
	return id, nil
}

// planArchive is a tar of the saved plan file as plan.json (the same bytes the default engine's
// nodes read), for the data volumes of nodes on other engines. Its entry is owned by root and
// readable by all: only the node's user can enter the volume's directory (0700), so that is the
// node alone.
func planArchive(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan archive: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "plan.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
		return nil, fmt.Errorf("plan archive: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return nil, fmt.Errorf("plan archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("plan archive: %w", err)
	}
	return buf.Bytes(), nil
}

// containerOf finds a node's container and its engine.
func (r *Runtime) containerOf(ctx context.Context, node string) (Container, Engine, error) {
	plan, err := r.loadPlan()
	if err != nil {
		return Container{}, nil, err
	}
	labels := runLabels(plan.Topology.Name, plan.RunID)
	labels[LabelNode] = node
	n, ok := plan.Topology.Node(node)
	if !ok {
		return Container{}, nil, fmt.Errorf("unknown node %q", node)
	}
	cs, err := r.listContainers(ctx, []string{nodeHost(plan.Topology, n)}, labels)
	if err != nil {
		return Container{}, nil, err
	}
	for _, c := range cs {
		if c.Labels[LabelRole] != RoleHelper {
			e, err := r.engineOf(c)
			return c, e, err
		}
	}
	return Container{}, nil, fmt.Errorf("node %s has no container", node)
}

// Nodes reports every planned node with its container's state.
func (r *Runtime) Nodes(ctx context.Context) ([]runtime.NodeState, error) {
	plan, err := r.loadPlan()
	if err != nil {
		return nil, err
	}
	cs, err := r.nodeContainers(ctx, EngineHosts(plan.Topology), runLabels(plan.Topology.Name, plan.RunID))
	if err != nil {
		return nil, err
	}
	var out []runtime.NodeState
	for _, n := range plan.Topology.Nodes() {
		ns := runtime.NodeState{Name: n.Name}
		if c, ok := cs[n.Name]; ok {
			ns.ID = c.ID
			ns.Running, ns.Frozen = c.Running(), c.State == "paused"
		}
		out = append(out, ns)
	}
	return out, nil
}

// Kill sends SIGKILL to the node's container and waits until it stopped.
func (r *Runtime) Kill(ctx context.Context, node string) error {
	c, eng, err := r.containerOf(ctx, node)
	if err != nil {
		return err
	}
	if !c.Running() {
		return fmt.Errorf("node %s is not running", node)
	}
	if c.State == "paused" {
		// The engine refuses to kill a paused container; a frozen process dies as soon as it thaws.
		if err := eng.ContainerUnpause(ctx, c.ID); err != nil {
			return fmt.Errorf("kill %s: unpause first: %w", node, err)
		}
	}
	if err := eng.ContainerKill(ctx, c.ID, "SIGKILL"); err != nil {
		return fmt.Errorf("kill %s: %w", node, err)
	}
	if _, err := eng.ContainerWait(ctx, c.ID); err != nil {
		return fmt.Errorf("kill %s: wait: %w", node, err)
	}
	return nil
}

// Freeze pauses the node's container (cgroup freezer).
func (r *Runtime) Freeze(ctx context.Context, node string) error {
	c, eng, err := r.containerOf(ctx, node)
	if err != nil {
		return err
	}
	if err := eng.ContainerPause(ctx, c.ID); err != nil {
		return fmt.Errorf("freeze %s: %w", node, err)
	}
	return nil
}

// Thaw unpauses the node's container.
func (r *Runtime) Thaw(ctx context.Context, node string) error {
	c, eng, err := r.containerOf(ctx, node)
	if err != nil {
		return err
	}
	if err := eng.ContainerUnpause(ctx, c.ID); err != nil {
		return fmt.Errorf("thaw %s: %w", node, err)
	}
	return nil
}

// Start starts the node's stopped container again, with its data (the bind-mounted data dir).
// Its network namespace is new: packet rules must be re-applied (the injector does).
func (r *Runtime) Start(ctx context.Context, node string) error {
	c, eng, err := r.containerOf(ctx, node)
	if err != nil {
		return err
	}
	if c.Running() {
		return fmt.Errorf("node %s is already running", node)
	}
	if err := eng.ContainerStart(ctx, c.ID); err != nil {
		return fmt.Errorf("start %s: %w", node, err)
	}
	return nil
}

// Endpoint is the node's address on the WAN network: the host reaches container addresses
// directly (it is every bridge's gateway).
func (r *Runtime) Endpoint(node string, port int) (string, error) {
	plan, err := r.loadPlan()
	if err != nil {
		return "", err
	}
	return plan.NodeAddr(node, port)
}

// Down saves every node container's log into the run directory's logs/, then removes every
// container (helpers included) and network of this run and this owner, and the node data.
// Nothing without those labels is touched: not another run's, not another user's. With no plan
// in the run directory, Config.Topology names what to remove: this owner's objects of that
// topology (nothing is done without it), on the default engine only: the engines of regions'
// docker_host values are known from the plan.
func (r *Runtime) Down(ctx context.Context) error {
	defer r.closeRemotes()
	var labels map[string]string
	hosts := []string{""} // the default engine: only a plan names the others
	plan, err := r.loadPlan()
	switch {
	case err == nil:
		labels, hosts = runLabels(plan.Topology.Name, plan.RunID), EngineHosts(plan.Topology)
	case !errors.Is(err, runtime.ErrNotUp):
		return err
	case r.cfg.Topology != "":
		labels = ownLabels(r.cfg.Topology)
	default:
		return nil
	}
	if err := r.removeAll(ctx, hosts, labels, true); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(r.cfg.RunDir, "data")); err != nil {
		return fmt.Errorf("remove node data: %w", err)
	}
	return nil
}

// removeAll removes the containers carrying the labels (saving node logs first if saveLogs) and
// networks on every engine in hosts, then checks nothing with those labels is left on any; objects
// of drill's legacy label keys are removed alike.
func (r *Runtime) removeAll(ctx context.Context, hosts []string, labels map[string]string, saveLogs bool) error {
	var errs []error
	for _, h := range hosts {
		e, err := r.engineAt(h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, sel := range selectors(labels) {
			if err := r.removeSelected(ctx, e, sel, saveLogs); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", engineLabel(h), err))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.checkNothingLeft(ctx, hosts, labels)
}

// removeSelected removes the containers and networks one selector finds on one engine.
func (r *Runtime) removeSelected(ctx context.Context, eng Engine, labels map[string]string, saveLogs bool) error {
	cs, err := eng.ContainerList(ctx, labels)
	if err != nil {
		return err
	}
	if saveLogs {
		if err := os.MkdirAll(filepath.Join(r.cfg.RunDir, "logs"), 0o700); err != nil {
			return fmt.Errorf("create logs dir: %w", err)
		}
		for _, c := range cs {
			// The label becomes a file name: only a plain node name is used.
			if node := label(c.Labels, LabelNode); nodeNamePattern.MatchString(node) && label(c.Labels, LabelRole) != RoleHelper {
				if err := r.saveLog(ctx, eng, c.ID, node); err != nil {
					r.log.Warn("save node log", "node", node, "err", err)
				}
			}
		}
	}
	// One at a time: Docker 20.10 engines before 20.10.27 can deadlock libnetwork when several
	// containers on one network release their endpoints at once (moby/moby#46661; seen here on
	// 20.10.24: every network call hung until dockerd was restarted).
	for _, c := range cs {
		if err := eng.ContainerRemove(ctx, c.ID); err != nil && !IsNotFound(err) {
			return fmt.Errorf("remove container %s: %w", c.Name, err)
		}
	}
	nets, err := eng.NetworkList(ctx, labels)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nets {
		errs = append(errs, removeNetwork(ctx, eng, n))
	}
	vols, err := eng.VolumeList(ctx, labels)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, v := range vols {
		if err := eng.VolumeRemove(ctx, v); err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v, err))
		}
	}
	return errors.Join(errs...)
}

// removeNetwork removes one network, retrying while the engine still sees endpoints of
// containers being removed.
func removeNetwork(ctx context.Context, eng Engine, n Network) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		err = eng.NetworkRemove(ctx, n.ID)
		if err == nil || IsNotFound(err) {
			return nil
		}
		if !IsConflict(err) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("remove network %s: %w", n.Name, err)
}

// checkNothingLeft fails if a container or network with the labels remains on an engine in hosts.
func (r *Runtime) checkNothingLeft(ctx context.Context, hosts []string, labels map[string]string) error {
	var left []string
	for _, h := range hosts {
		e, err := r.engineAt(h)
		if err != nil {
			return err
		}
		where := ""
		if h != "" {
			where = " on " + engineLabel(h)
		}
		for _, sel := range selectors(labels) {
			cs, err := e.ContainerList(ctx, sel)
			if err != nil {
				return err
			}
			nets, err := e.NetworkList(ctx, sel)
			if err != nil {
				return err
			}
			for _, c := range cs {
				left = append(left, "container "+c.Name+where)
			}
			for _, n := range nets {
				left = append(left, "network "+n.Name+where)
			}
			vols, err := e.VolumeList(ctx, sel)
			if err != nil {
				return err
			}
			for _, v := range vols {
				left = append(left, "volume "+v+where)
			}
		}
	}
	if len(left) == 0 {
		return nil
	}
	slices.Sort(left)
	return fmt.Errorf("still there after removal: %v", left)
}

// nodeNamePattern is what a node name label must look like to become a log file's name (the
// topology's own name rule, and never a path).
var nodeNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// saveLog writes a container's whole log (stdout and stderr) to the node's log file (0600: logs
// name keys and addresses).
func (r *Runtime) saveLog(ctx context.Context, eng Engine, id, node string) error {
	f, err := os.OpenFile(r.LogPath(node), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	lerr := eng.ContainerLogs(ctx, id, f, f)
	return errors.Join(lerr, f.Close())
}

// parallel runs fn(0..n-1) with at most width at once and joins the errors.
func parallel(ctx context.Context, n, width int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
