package docker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/drillworks/drill/compose/docker/nft"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/topology"
)

// Packet faults: nftables tables inside the nodes' network namespaces, installed either from this
// process, entering the namespace through /proc (root on the engine's host: milliseconds), or by
// a short-lived helper container of the node image (`drill nft ...`) that shares the target's
// network namespace and has NET_ADMIN (any engine; about half a second per node). The nodes
// themselves never get a capability. The
// rules drop every packet, not just new flows, so established connections are cut at once (no
// conntrack flush needed); removing the table heals at once.

// managePorts are the node ports drill itself uses to watch and heal a black-holed node: the db
// status and the control endpoint. Users never use them (they go through web and DNS).
var managePorts = []uint16{topology.PortDB, topology.PortControl}

// TableName is the nftables table of one fault: nft.TablePrefix, a readable form of the id and a
// short hash of the exact id.
func TableName(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	clean := fault.SafeName(id)
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return fmt.Sprintf("%s%s_%08x", nft.TablePrefix, clean, h.Sum32())
}

// ApplyPacketRules installs fault id's table in each named running node: its drops (all packets,
// or a share of them for a loss rule), keeping the node's own site and drill's management traffic
// from the host.
func (r *Runtime) ApplyPacketRules(ctx context.Context, id string, rules map[string]fault.PacketRule) error {
	plan, err := r.loadPlan()
	if err != nil {
		return err
	}
	t := plan.Topology
	cs, err := r.nodeContainers(ctx, EngineHosts(t), runLabels(t.Name, plan.RunID))
	if err != nil {
		return err
	}
	type job struct {
		c    Container
		spec nft.Spec
	}
	manage := managers(t)
	var jobs []job
	for node, rule := range rules {
		n, ok := t.Node(node)
		if !ok {
			return fmt.Errorf("packet rules: unknown node %q", node)
		}
		if rule.LossPercent < 0 || rule.LossPercent > fault.MaxLossPercent {
			return fmt.Errorf("packet rules: loss percent %d out of 0..%d", rule.LossPercent, fault.MaxLossPercent)
		}
		c, ok := cs[node]
		if !ok || !c.Running() {
			continue // its rules come back when it starts (the injector re-applies them)
		}
		jobs = append(jobs, job{c, nft.Spec{
			Table:       TableName(id),
			Drop:        rule.Drop,
			DropIn:      rule.DropIn,
			DropOut:     rule.DropOut,
			Keep:        []netip.Prefix{t.SitePrefix(n.Site())},
			Manage:      manage,
			ManagePorts: managePorts,
			LossPercent: rule.LossPercent,
		}})
	}
	return parallel(ctx, len(jobs), 4, func(i int) error {
		_, err := r.nftOn(ctx, plan, jobs[i].c, nftOp{verb: "apply", spec: jobs[i].spec})
		return err
	})
}

// RemovePacketRules removes fault id's table from the named running nodes.
func (r *Runtime) RemovePacketRules(ctx context.Context, id string, nodes []string) error {
	plan, err := r.loadPlan()
	if err != nil {
		return err
	}
	cs, err := r.nodeContainers(ctx, EngineHosts(plan.Topology), runLabels(plan.Topology.Name, plan.RunID))
	if err != nil {
		return err
	}
	var targets []Container
	for _, n := range nodes {
		if c, ok := cs[n]; ok && c.Running() {
			targets = append(targets, c)
		}
	}
	return parallel(ctx, len(targets), 4, func(i int) error {
		_, err := r.nftOn(ctx, plan, targets[i], nftOp{verb: "delete", arg: TableName(id)})
		return err
	})
}

// PacketRules lists drill's tables in every running node.
func (r *Runtime) PacketRules(ctx context.Context) (map[string][]string, error) {
	plan, err := r.loadPlan()
	if err != nil {
		return nil, err
	}
	targets, err := r.runningNodes(ctx, plan)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	out := map[string][]string{}
	err = parallel(ctx, len(targets), 4, func(i int) error {
		names, err := r.nftOn(ctx, plan, targets[i], nftOp{verb: "list", arg: nft.TablePrefix})
		if err != nil {
			return err
		}
		if len(names) > 0 {
			mu.Lock()
			out[targets[i].Labels[LabelNode]] = names
			mu.Unlock()
		}
		return nil
	})
	return out, err
}

// FlushPacketRules removes every drill table from every running node.
func (r *Runtime) FlushPacketRules(ctx context.Context) error {
	plan, err := r.loadPlan()
	if err != nil {
		return err
	}
	targets, err := r.runningNodes(ctx, plan)
	if err != nil {
		return err
	}
	return parallel(ctx, len(targets), 4, func(i int) error {
		_, err := r.nftOn(ctx, plan, targets[i], nftOp{verb: "flush", arg: nft.TablePrefix})
		return err
	})
}

// runningNodes are the running node containers, in a stable order.
func (r *Runtime) runningNodes(ctx context.Context, plan *topology.Plan) ([]Container, error) {
	cs, err := r.nodeContainers(ctx, EngineHosts(plan.Topology), runLabels(plan.Topology.Name, plan.RunID))
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, c := range cs {
		if c.Running() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// nftOp is one change or query of a node's tables: apply (spec), delete (arg: table), list and
// flush (arg: name prefix).
type nftOp struct {
	verb string
	spec nft.Spec
	arg  string
}

// nftOn runs op in the target's network namespace: from this process when it can enter it
// (PacketRulesFrom), else in a helper container. It returns the table names list and flush
// report.
func (r *Runtime) nftOn(ctx context.Context, plan *topology.Plan, target Container, op nftOp) ([]string, error) {
	if r.cfg.PacketRulesFrom != PacketRulesFromHelper {
		fd, err := r.hostNetNS(ctx, target)
		switch {
		case err == nil:
			defer unix.Close(fd)
			return nftHere(op, nftables.WithNetNSFd(fd))
		case r.cfg.PacketRulesFrom == PacketRulesFromHost:
			return nil, fmt.Errorf("packet rules for %s from the host: %w", target.Labels[LabelNode], err)
		}
	}
	args := []string{op.verb}
	switch op.verb {
	case "apply":
		b, err := json.Marshal(op.spec)
		if err != nil {
			return nil, err
		}
		args = append(args, "--spec", string(b))
	case "delete":
		args = append(args, "--table", op.arg)
	default:
		args = append(args, "--prefix", op.arg)
	}
	stdout, err := r.runHelper(ctx, plan, target, args...)
	var names []string
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			names = append(names, line)
		}
	}
	return names, err
}

// nftHere runs op with the given netlink options (the target's namespace).
func nftHere(op nftOp, opts ...nftables.ConnOption) ([]string, error) {
	switch op.verb {
	case "apply":
		return nil, nft.Apply(op.spec, opts...)
	case "delete":
		return nil, nft.Delete(op.arg, opts...)
	case "list":
		return nft.List(op.arg, opts...)
	case "flush":
		return nft.Flush(op.arg, opts...)
	}
	return nil, fmt.Errorf("nft: unknown operation %q", op.verb)
}

// hostNetNS opens the target's network namespace from this process: possible only as root on the
// engine's own host. The container's main process must be the node's agent (its command line names
// the node), so a pid that does not belong to the container (another host's engine, a reused pid)
// is never entered.
func (r *Runtime) hostNetNS(ctx context.Context, target Container) (int, error) {
	if os.Geteuid() != 0 {
		return -1, errors.New("not root")
	}
	eng, err := r.engineOf(target)
	if err != nil {
		return -1, err
	}
	c, err := eng.ContainerInspect(ctx, target.ID)
	if err != nil {
		return -1, err
	}
	if c.Pid <= 0 {
		return -1, fmt.Errorf("container %s has no process", c.Name)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", c.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the network namespace of pid %d: %w", c.Pid, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.Pid))
	if err != nil || !strings.Contains(string(cmdline), "\x00--node\x00"+target.Labels[LabelNode]+"\x00") {
		unix.Close(fd)
		return -1, fmt.Errorf("pid %d is not node %s's agent here (engine on another host?)", c.Pid, target.Labels[LabelNode])
	}
	return fd, nil
}

// runHelper runs `drill nft <args>` in a helper container sharing target's network namespace,
// with NET_ADMIN, waits for it, and removes it (whatever happened). It returns the helper's
// stdout; a non-zero exit is an error carrying its stderr.
func (r *Runtime) runHelper(ctx context.Context, plan *topology.Plan, target Container, args ...string) (string, error) {
	node := target.Labels[LabelNode]
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	spec := ContainerSpec{
		Name:        fmt.Sprintf("drill-%s-nft-%s-%s", plan.Topology.Name, node, hex.EncodeToString(suffix)),
		Image:       target.Image,
		Cmd:         append([]string{"nft"}, args...),
		Labels:      objectLabels(plan.Topology.Name, plan.RunID, RoleHelper, node),
		NetworkMode: "container:" + target.ID,
		// Only what nft needs to change the node's rules: every other capability is dropped.
		Hardened: true,
		CapAdd:   []string{"NET_ADMIN"},
	}
	eng, err := r.engineOf(target)
	if err != nil {
		return "", err
	}
	id, err := eng.ContainerCreate(ctx, spec)
	if id != "" {
		defer func() {
			// Removed even if ctx was cancelled: a helper must never outlive its call.
			if err := eng.ContainerRemove(context.WithoutCancel(ctx), id); err != nil && !IsNotFound(err) {
				r.log.Warn("remove nft helper", "node", node, "err", err)
			}
		}()
	}
	if err != nil {
		return "", fmt.Errorf("nft helper for %s: create: %w", node, err)
	}
	if err := eng.ContainerStart(ctx, id); err != nil {
		return "", fmt.Errorf("nft helper for %s: start: %w", node, err)
	}
	code, err := eng.ContainerWait(ctx, id)
	if err != nil {
		return "", fmt.Errorf("nft helper for %s: wait: %w", node, err)
	}
	var stdout, stderr strings.Builder
	if err := eng.ContainerLogs(ctx, id, &stdout, &stderr); err != nil {
		return "", fmt.Errorf("nft helper for %s: logs: %w", node, err)
	}
	if code != 0 {
		return stdout.String(), fmt.Errorf("nft helper for %s: nft %s: exit %d: %s", node, args[0], code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
