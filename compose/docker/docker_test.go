package docker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/docker"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/netalloc"
)

// End-to-end tests against the Docker engine of this machine: real containers of an image made
// from a static drill binary, real bridge networks, real nftables rules. They skip, loudly, only
// when no engine answers. Each test has a topology name and docker_base of its own.

var binOnce struct {
	sync.Once
	path string
	err  error
}

// drillBinary builds drill once per test run the way a user does (go build: with cgo on, a
// dynamically linked binary), so the node image packs its loader and libraries: the test binary
// itself cannot be the image's binary.
func drillBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drill-docker-bin-")
		if err != nil {
			binOnce.err = err
			return
		}
		binOnce.path = filepath.Join(dir, "drill")
		out, err := exec.Command("go", "build", "-o", binOnce.path, "github.com/drillworks/drill/cmd/drill").CombinedOutput()
		if err != nil {
			binOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binOnce.path != "" {
		os.RemoveAll(filepath.Dir(binOnce.path))
	}
	os.Exit(code)
}

// needEngine skips the test, loudly, when no Docker engine answers.
func needEngine(t *testing.T) docker.Engine {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs no container")
	}
	if err := docker.Available(context.Background(), 5*time.Second); err != nil {
		t.Skipf("SKIPPED: no Docker engine answers (%v): the Docker runtime is NOT tested here", err)
	}
	e, err := docker.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for i := 0; i < 100000; i++ {
		if cond() {
			t.Logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type cluster struct {
	plan *topology.Plan
	rt   *docker.Runtime
	eng  docker.Engine
	obs  *observe.Observer
}

// startCluster brings the default topology up as containers under its own name and docker_base,
// and tears it down when the test ends, checking no container or network with its label is left.
func startCluster(t *testing.T, name string, rulesFrom string) *cluster {
	t.Helper()
	eng := needEngine(t)
	netalloc.DockerSlot(t) // before the cluster slot, as every Docker cluster test takes them
	netalloc.ClusterSlot(t)
	topo := topology.Default()
	topo.Name = name
	topo.Network.DockerBase = netalloc.Private(t).String()
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	rt, err := docker.New(docker.Config{RunDir: runDir, Binary: drillBinary(t), Engine: eng, PacketRulesFrom: rulesFrom})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := docker.NewPlan(topo, runDir)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{plan: plan, rt: rt, eng: eng, obs: observe.New(plan, rt)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
		if left := c.leftovers(t); len(left) > 0 {
			t.Errorf("left after Down: %v", left)
		}
		if t.Failed() {
			dumpLogs(t, runDir)
		}
	})
	start := time.Now()
	ctx := context.Background()
	if err := rt.Up(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if _, err := c.obs.WaitConverged(ctx, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster %s up and converged in %s", name, time.Since(start).Round(time.Millisecond))
	return c
}

// leftovers lists every container and network that carries the topology's label and this
// owner's.
func (c *cluster) leftovers(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{docker.LabelTopology: c.plan.Topology.Name, docker.LabelOwner: docker.Owner()}
	cs, err := c.eng.ContainerList(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.eng.NetworkList(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range cs {
		out = append(out, "container "+x.Name+" ("+x.Labels[docker.LabelRole]+")")
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	return out
}

func dumpLogs(t *testing.T, runDir string) {
	entries, _ := os.ReadDir(filepath.Join(runDir, "logs"))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(runDir, "logs", e.Name()))
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		t.Logf("--- %s (tail)\n%s", e.Name(), b)
	}
}

func TestImageBuildIsIdempotent(t *testing.T) {
	eng := needEngine(t)
	bin := drillBinary(t)
	ctx := context.Background()
	start := time.Now()
	ref, _, err := docker.EnsureImage(ctx, eng, docker.ImageSpec{Binary: bin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	start = time.Now()
	ref2, built, err := docker.EnsureImage(ctx, eng, docker.ImageSpec{Binary: bin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref2 != ref || built {
		t.Fatalf("second build: ref %s (first %s), built %v: want the same tag and no rebuild", ref2, ref, built)
	}
	if ok, err := eng.ImageExists(ctx, ref); err != nil || !ok {
		t.Fatalf("image %s missing: %v", ref, err)
	}
	if !strings.HasPrefix(ref, docker.ImageRepo+":") {
		t.Fatalf("ref %s", ref)
	}
	t.Logf("image %s: first call %s, second %s", ref, first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func TestUpConvergeDownLeavesNothing(t *testing.T) {
	c := startCluster(t, "dtest-up", docker.PacketRulesFromAuto)
	ctx := context.Background()
	nodes, err := c.rt.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !n.Running || n.Frozen || n.ID == "" {
			t.Errorf("node %+v not running in a container", n)
			continue
		}
		// Hardened and still working (the checks below talk to them).
		if ct, err := c.eng.ContainerInspect(ctx, n.ID); err != nil || !ct.Hardened || ct.Labels[docker.LabelOwner] != docker.Owner() {
			t.Errorf("node %s: hardened %v, owner %q (want cap-drop ALL, no-new-privileges, read-only root; owner %q): %v",
				n.Name, ct.Hardened, ct.Labels[docker.LabelOwner], docker.Owner(), err)
		}
	}
	foreign := foreignObjects(t, c)
	// Every node answers at its plan address, straight from the host.
	for _, n := range c.plan.Topology.NodesOf(topology.RoleWeb, "") {
		addr, _ := c.rt.Endpoint(n.Name, topology.PortWeb)
		base := netip.MustParsePrefix(c.plan.Topology.Network.DockerBase)
		if ap, err := netip.ParseAddrPort(addr); err != nil || !base.Contains(ap.Addr()) {
			t.Errorf("endpoint %s of %s is not a container address in %s", addr, n.Name, base)
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Errorf("web %s: %v", n.Name, err)
			continue
		}
		resp.Body.Close()
	}
	// Freeze, thaw, kill and start go through the engine.
	if err := c.rt.Freeze(ctx, "eu-west-web-2"); err != nil {
		t.Fatal(err)
	}
	if st := nodeState(t, c, "eu-west-web-2"); !st.Frozen {
		t.Fatalf("after freeze: %+v", st)
	}
	if err := c.rt.Thaw(ctx, "eu-west-web-2"); err != nil {
		t.Fatal(err)
	}
	if err := c.rt.Kill(ctx, "eu-west-web-2"); err != nil {
		t.Fatal(err)
	}
	if st := nodeState(t, c, "eu-west-web-2"); st.Running {
		t.Fatalf("after kill: %+v", st)
	}
	if err := c.rt.Start(ctx, "eu-west-web-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.obs.WaitConverged(ctx, 30*time.Second); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Packet rules from this process (root on the engine's host) when it can, else by helpers.
	hole := map[string]fault.PacketRule{"eu-west-web-1": {Drop: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}}
	web, _ := c.rt.Endpoint("eu-west-web-1", topology.PortWeb)
	start := time.Now()
	if err := c.rt.ApplyPacketRules(ctx, "test:one", hole); err != nil {
		t.Fatal(err)
	}
	t.Logf("one node black-holed in %s (root: %v)", time.Since(start).Round(time.Millisecond), os.Geteuid() == 0)
	if got := dialOutcome(web); got != "timeout" {
		t.Fatalf("connect to a black-holed node: %s, want timeout", got)
	}
	if rules, err := c.rt.PacketRules(ctx); err != nil || len(rules["eu-west-web-1"]) != 1 {
		t.Fatalf("rules %v %v", rules, err)
	}
	if err := c.rt.RemovePacketRules(ctx, "test:one", []string{"eu-west-web-1"}); err != nil {
		t.Fatal(err)
	}
	if got := dialOutcome(web); got != "ok" {
		t.Fatalf("connect after healing: %s", got)
	}
	if err := c.rt.Up(ctx, c.plan); !errors.Is(err, runtime.ErrAlreadyUp) {
		t.Fatalf("second Up: %v, want ErrAlreadyUp", err)
	}
	start = time.Now()
	if err := c.rt.Down(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("down in %s", time.Since(start).Round(time.Millisecond))
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("left after Down: %v", left)
	}
	foreign.stillThere(t, "Down of the run")
	// A down with no plan (after a crash) names the topology: it removes this owner's objects of
	// it, never another owner's.
	byName, err := docker.New(docker.Config{RunDir: t.TempDir(), Topology: c.plan.Topology.Name, Engine: c.eng})
	if err != nil {
		t.Fatal(err)
	}
	if err := byName.Down(ctx); err != nil {
		t.Fatal(err)
	}
	foreign.stillThere(t, "Down by topology name")
	// Logs are private: they name keys' users and addresses.
	logs := filepath.Dir(c.rt.LogPath("us-east-db-1"))
	if st, err := os.Stat(logs); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("logs dir %s: %v %v, want 0700", logs, st.Mode(), err)
	}
	if st, err := os.Stat(c.rt.LogPath("us-east-db-1")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("node log not saved as 0600: %v %v", st.Mode(), err)
	}
}

// foreign are a container and a network of the same topology (same labels, same run id) made by
// another owner: drill must never remove them.
type foreign struct {
	eng                docker.Engine
	container, network string
}

func foreignObjects(t *testing.T, c *cluster) foreign {
	t.Helper()
	ctx := context.Background()
	nodes, err := c.rt.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.eng.ContainerInspect(ctx, nodes[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	topo := c.plan.Topology.Name
	labels := map[string]string{docker.LabelTopology: topo, docker.LabelRun: c.plan.RunID, docker.LabelOwner: "uid-4242@elsewhere",
		docker.LabelNode: "eu-west-web-1", docker.LabelRole: string(topology.RoleWeb)}
	f := foreign{eng: c.eng}
	id, err := c.eng.ContainerCreate(ctx, docker.ContainerSpec{Name: "drill-" + topo + "-foreign", Image: node.Image,
		Cmd: []string{"version"}, Labels: labels, Hardened: true})
	if err != nil {
		t.Fatal(err)
	}
	f.container = id
	t.Cleanup(func() {
		if err := c.eng.ContainerRemove(context.Background(), id); err != nil && !docker.IsNotFound(err) {
			t.Error(err)
		}
	})
	b := netalloc.Private(t).Addr().As4()
	nid, err := c.eng.NetworkCreate(ctx, docker.NetworkSpec{Name: "drill-" + topo + "-foreign",
		Subnet: netip.PrefixFrom(netip.AddrFrom4(b), 24), Gateway: netip.AddrFrom4([4]byte{b[0], b[1], b[2], 1}), Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	f.network = nid
	t.Cleanup(func() {
		if err := c.eng.NetworkRemove(context.Background(), nid); err != nil && !docker.IsNotFound(err) {
			t.Error(err)
		}
	})
	return f
}

func (f foreign) stillThere(t *testing.T, after string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.eng.ContainerInspect(ctx, f.container); err != nil {
		t.Fatalf("another owner's container is gone after %s: %v", after, err)
	}
	if _, err := f.eng.NetworkInspect(ctx, f.network); err != nil {
		t.Fatalf("another owner's network is gone after %s: %v", after, err)
	}
}

func nodeState(t *testing.T, c *cluster, name string) runtime.NodeState {
	t.Helper()
	nodes, err := c.rt.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %s", name)
	return runtime.NodeState{}
}

// healthzOn sends one HTTP/1.1 health request on an open connection and reads the status line,
// within 1.5 s.
func healthzOn(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(1500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: drill\r\n\r\n")); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// dialOutcome is what a TCP connect from the host gives: "ok", "refused" or "timeout".
func dialOutcome(addr string) string {
	conn, err := net.DialTimeout("tcp", addr, 1500*time.Millisecond)
	if err == nil {
		conn.Close()
		return "ok"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if strings.Contains(err.Error(), "refused") {
		return "refused"
	}
	return err.Error()
}

func TestBlackholeIsSilentAtThePacketLevel(t *testing.T) {
	c := startCluster(t, "dtest-bh", docker.PacketRulesFromHelper)
	ctx := context.Background()
	web, _ := c.rt.Endpoint("us-east-web-1", topology.PortWeb)
	closed, _ := c.rt.Endpoint("us-east-web-1", 9) // nothing listens: refused while reachable
	if got := dialOutcome(closed); got != "refused" {
		t.Fatalf("connect to a closed port before the black hole: %s, want refused", got)
	}
	aliveIn := func(viewer, member string) bool {
		ms, err := c.obs.Members(ctx, viewer)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.Name == member {
				return m.Alive()
			}
		}
		return false
	}

	// A connection established before the fault, already used once.
	established, err := net.DialTimeout("tcp", web, 2*time.Second)
	if err != nil {
		t.Fatalf("connect before the black hole: %v", err)
	}
	defer established.Close()
	if err := healthzOn(established); err != nil {
		t.Fatalf("request on a fresh connection: %v", err)
	}

	// The packet layer alone (no toxics, no gossip rules): every packet to and from us-east's
	// nodes vanishes, except drill's own control traffic from the host.
	drops := map[string]fault.PacketRule{}
	for _, n := range c.plan.Topology.Nodes() {
		if n.Region == "us-east" {
			drops[n.Name] = fault.PacketRule{Drop: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
		}
	}
	start := time.Now()
	if err := c.rt.ApplyPacketRules(ctx, "test:blackhole", drops); err != nil {
		t.Fatal(err)
	}
	t.Logf("black hole installed by helper containers in %s", time.Since(start).Round(time.Millisecond))
	if got := dialOutcome(web); got != "timeout" {
		t.Fatalf("connect to a black-holed web node: %s, want a timeout (silent drop)", got)
	}
	if got := dialOutcome(closed); got != "timeout" {
		t.Fatalf("connect to a closed port of a black-holed node: %s, want a timeout (no RST)", got)
	}
	// The rules match every packet, not only new flows: the established connection is cut too,
	// silently (no reset, no reply), with no conntrack flush.
	var ne net.Error
	if err := healthzOn(established); err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("request on a connection established before the black hole: %v, want a timeout", err)
	}
	// Gossip (UDP probes and TCP fallbacks) is dropped too: eu-west sees us-east dead.
	waitFor(t, 20*time.Second, "eu-west to see us-east-web-1 dead", func() bool { return !aliveIn("eu-west-web-1", "us-east-web-1") })
	// drill still reaches the control endpoint of a black-holed node.
	if _, err := c.obs.Members(ctx, "us-east-web-1"); err != nil {
		t.Fatalf("control endpoint of a black-holed node: %v", err)
	}
	rules, err := c.rt.PacketRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(drops) || len(rules["us-east-db-1"]) != 1 || rules["us-east-db-1"][0] != docker.TableName("test:blackhole") {
		t.Fatalf("packet rules %v", rules)
	}

	// Healing restores it at once.
	if err := c.rt.RemovePacketRules(ctx, "test:blackhole", slicesKeys(drops)); err != nil {
		t.Fatal(err)
	}
	if got := dialOutcome(web); got != "ok" {
		t.Fatalf("connect after healing: %s", got)
	}
	waitFor(t, 20*time.Second, "eu-west to see us-east-web-1 alive again", func() bool { return aliveIn("eu-west-web-1", "us-east-web-1") })
	if rules, err := c.rt.PacketRules(ctx); err != nil || len(rules) != 0 {
		t.Fatalf("packet rules after healing: %v %v", rules, err)
	}

	// Through the injector, as a drill does it: toxics, gossip rules and packet drops, undone
	// by Recover (which flushes every drill table), leaving no residue.
	inj, err := inject.New(c.plan, c.rt, inject.LedgerPath(c.plan.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inj.Close()
	if err := inj.Apply(ctx, fault.Fault{ID: "partition:test", Kind: fault.KindPartition, Regions: []string{"us-east", "eu-west"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the partition to show in gossip", func() bool { return !aliveIn("eu-west-web-1", "us-east-web-1") })
	if got := dialOutcome(web); got != "ok" {
		t.Fatalf("a partition must not cut users off their region: %s", got)
	}
	dirty := 0
	start = time.Now()
	residue := inj.Residue(ctx)
	t.Logf("residue checked in %s", time.Since(start).Round(time.Millisecond))
	for _, it := range residue {
		if !it.Clean {
			dirty++
		}
	}
	if dirty == 0 {
		t.Fatal("residue is clean while a partition is applied")
	}
	start = time.Now()
	if _, err := inj.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered in %s", time.Since(start).Round(time.Millisecond))
	for _, it := range inj.Residue(ctx) {
		if !it.Clean {
			t.Errorf("residue after recover: %s: %s", it.What, it.Detail)
		}
	}
	waitFor(t, 20*time.Second, "gossip to heal", func() bool { return aliveIn("eu-west-web-1", "us-east-web-1") })

	// No helper container outlives its call.
	cs, err := c.eng.ContainerList(ctx, map[string]string{docker.LabelTopology: c.plan.Topology.Name, docker.LabelRole: docker.RoleHelper})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) > 0 {
		t.Fatalf("nft helper containers left: %d", len(cs))
	}
}

func slicesKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
