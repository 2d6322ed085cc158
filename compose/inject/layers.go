package inject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// The network layers: toxics on the WAN links (TCP between sites, named from the fault id so an
// undo after a crash finds them from the ledger alone), rule sets in the nodes' kernels (runtimes
// with a packet layer) and the agents' gossip fault rules (recomputed from the whole active set
// and pushed to the control endpoints, together with the db nodes' clock shifts and disk faults).

// WAN layer.

func (inj *Injector) addToxics(ctx context.Context, txs []fault.LinkToxic) error {
	return eachParallel(len(txs), func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		tx := txs[i]
		err := inj.toxi.AddToxic(cctx, tx.Link, toxi.Toxic{Name: tx.Name, Type: tx.Type, Stream: tx.Stream, Attributes: tx.Attributes})
		var te *toxi.Error
		if errors.As(err, &te) && te.Status == http.StatusConflict {
			return nil // already there (a retried apply): same name, same fault
		}
		if err != nil {
			return fmt.Errorf("link %s: %w", tx.Link, err)
		}
		return nil
	})
}

func (inj *Injector) removeToxics(ctx context.Context, txs []fault.LinkToxic) error {
	return eachParallel(len(txs), func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		if err := inj.toxi.RemoveToxic(cctx, txs[i].Link, txs[i].Name); err != nil && !toxi.NotFound(err) {
			return fmt.Errorf("link %s: %w", txs[i].Link, err)
		}
		return nil
	})
}

// sweepWAN removes every drill toxic from every link and re-enables disabled links, whoever
// added them.
func (inj *Injector) sweepWAN(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
	proxies, err := inj.toxi.Proxies(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("list WAN links: %w", err)
	}
	type call struct {
		proxy, toxic string // toxic "" = enable the proxy
	}
	var calls []call
	for name, p := range proxies {
		for _, tx := range p.Toxics {
			if strings.HasPrefix(tx.Name, fault.ToxicPrefix) {
				calls = append(calls, call{name, tx.Name})
			}
		}
		if !p.Enabled {
			calls = append(calls, call{name, ""})
		}
	}
	return eachParallel(len(calls), func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		c := calls[i]
		if c.toxic == "" {
			return inj.toxi.SetEnabled(cctx, c.proxy, true)
		}
		return inj.toxi.RemoveToxic(cctx, c.proxy, c.toxic)
	})
}

// Packet layer.

// packetFaulter is the runtime's packet layer, nil when it has none.
func (inj *Injector) packetFaulter() runtime.PacketFaulter {
	if !inj.rt.Capabilities().PacketFaults {
		return nil
	}
	pf, _ := inj.rt.(runtime.PacketFaulter)
	return pf
}

// addPackets installs a fault's packet rule sets, if the runtime can and the fault has any.
func (inj *Injector) addPackets(ctx context.Context, id string, rules map[string]fault.PacketRule) error {
	pf := inj.packetFaulter()
	if pf == nil || len(rules) == 0 {
		return nil
	}
	if err := pf.ApplyPacketRules(ctx, id, rules); err != nil {
		return fmt.Errorf("packet rules: %w", err)
	}
	return nil
}

// removePackets removes a fault's packet rule sets.
func (inj *Injector) removePackets(ctx context.Context, id string, rules map[string]fault.PacketRule) error {
	pf := inj.packetFaulter()
	if pf == nil || len(rules) == 0 {
		return nil
	}
	nodes := make([]string, 0, len(rules))
	for n := range rules {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	if err := pf.RemovePacketRules(ctx, id, nodes); err != nil {
		return fmt.Errorf("packet rules: %w", err)
	}
	return nil
}

// reapplyPackets puts the packet rules of the active faults back on freshly started nodes: a
// container's rules live in its network namespace, which a restart replaces.
func (inj *Injector) reapplyPackets(ctx context.Context, started []string, active []fault.Fault) error {
	if inj.packetFaulter() == nil || len(started) == 0 {
		return nil
	}
	var errs []error
	for _, f := range active {
		rules := map[string]fault.PacketRule{}
		for n, r := range inj.effects(f).Packets {
			if slices.Contains(started, n) {
				rules[n] = r
			}
		}
		if err := inj.addPackets(ctx, f.ID, rules); err != nil {
			errs = append(errs, fmt.Errorf("re-apply packet rules of %s: %w", f.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Gossip layer.

// rulesFor computes one gossip node's fault rules from an active set. Rules are layered by the
// agent over its steady WAN delays; a fault delay replaces the base delay for its prefix, so it
// carries base + injected latency and gossip sees the same total as the TCP links (which keep
// their base toxics and add the drill ones).
func (inj *Injector) rulesFor(node topology.Node, active []fault.Fault) gossip.Rules {
	t := inj.plan.Topology
	siteOf := map[netip.Prefix]string{}
	for _, s := range t.Sites() {
		siteOf[t.SitePrefix(s)] = s
	}
	var r gossip.Rules
	type added struct{ latency, jitter time.Duration }
	delays := map[netip.Prefix]*added{}
	for _, f := range active {
		g, ok := inj.effects(f).Gossip[node.Name]
		if !ok {
			continue
		}
		r.Drop = union(r.Drop, g.Drop)
		r.DropIn = union(r.DropIn, g.DropIn)
		r.DropOut = union(r.DropOut, g.DropOut)
		for _, d := range g.Delays {
			a := delays[d.Prefix]
			if a == nil {
				a = &added{}
				delays[d.Prefix] = a
			}
			a.latency += d.Latency
			a.jitter += d.Jitter
		}
		// Two loss faults on one prefix stay two rules: two independent draws, as two packet
		// rule sets would be.
		for _, l := range g.Loss {
			r.Loss = append(r.Loss, gossip.Loss{Prefix: l.Prefix, Percent: l.Percent})
		}
	}
	for p, a := range delays {
		lat, jit := t.SiteLatency(node.Site(), siteOf[p])
		r.Delays = append(r.Delays, gossip.Delay{Prefix: p, Latency: lat + a.latency, Jitter: jit + a.jitter})
	}
	sort.Slice(r.Delays, func(i, j int) bool { return r.Delays[i].Prefix.String() < r.Delays[j].Prefix.String() })
	sort.SliceStable(r.Loss, func(i, j int) bool { return r.Loss[i].Prefix.String() < r.Loss[j].Prefix.String() })
	return r
}

// union adds the prefixes of b not in a, sorted.
func union(a, b []netip.Prefix) []netip.Prefix {
	for _, p := range b {
		if !slices.Contains(a, p) {
			a = append(a, p)
		}
	}
	sort.Slice(a, func(i, j int) bool { return a[i].String() < a[j].String() })
	return a
}

// pushGossipRules pushes the rules of the current active set.
func (inj *Injector) pushGossipRules(ctx context.Context) error {
	return inj.pushRulesFor(ctx, inj.active)
}

// pushRulesFor sends every running, unfrozen gossip node its rules under the given active set
// (an empty set clears them). A frozen node cannot answer; it is pushed again when thawed.
func (inj *Injector) pushRulesFor(ctx context.Context, active []fault.Fault) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	var targets []topology.Node
	for _, n := range inj.plan.Topology.Nodes() {
		if p := procs[n.Name]; fault.IsGossipMember(n) && p.Running && !p.Frozen {
			targets = append(targets, n)
		}
	}
	clocks := combine(inj, active, func(e fault.Effects) map[string]clock.Shift { return e.Clock }, clock.Shift.Add)
	disks := combine(inj, active, func(e fault.Effects) map[string]disk.State { return e.Disk }, disk.State.Or)
	return eachParallel(len(targets), func(i int) error {
		n := targets[i]
		err := inj.setGossipRules(ctx, n.Name, inj.rulesFor(n, active))
		if n.Role == topology.RoleDB {
			err = errors.Join(err,
				setState(ctx, inj, n.Name, "/v1/clock", clocks[n.Name], clock.Shift.Zero),
				setState(ctx, inj, n.Name, "/v1/disk", disks[n.Name], disk.State.Zero))
		}
		return err
	})
}

// Clock and disk layers: every db node's clock shift (the sum) and disk faults (combined) over the
// active set, pushed with the gossip rules, so a thawed or restarted node gets them back and an
// undo or a sweep clears them. A damaged log record is written once, when its fault lands.

// combine folds one layer of the active set's effects into a state per node (absent: clear).
func combine[T any](inj *Injector, active []fault.Fault, layer func(fault.Effects) map[string]T, add func(T, T) T) map[string]T {
	out := map[string]T{}
	for _, f := range active {
		for n, v := range layer(inj.effects(f)) {
			out[n] = add(out[n], v)
		}
	}
	return out
}

// setState sets one fault state on a node's control endpoint (a clear state is a DELETE).
func setState[T any](ctx context.Context, inj *Injector, node, path string, v T, clear func(T) bool) error {
	if clear(v) {
		return inj.controlCall(ctx, node, http.MethodDelete, path, nil, nil)
	}
	return inj.controlCall(ctx, node, http.MethodPut, path, v, nil)
}

// corruptLogs damages a record in the middle of each named node's log on disk.
func (inj *Injector) corruptLogs(ctx context.Context, nodes []string) error {
	return eachParallel(len(nodes), func(i int) error {
		return inj.controlCall(ctx, nodes[i], http.MethodPost, "/v1/disk/corrupt", nil, nil)
	})
}

// controlCall makes one authenticated, time-boxed call to a node's control endpoint.
func (inj *Injector) controlCall(ctx context.Context, node, method, path string, in, out any) error {
	addr, err := inj.rt.Endpoint(node, topology.PortControl)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return err
	}
	resp, err := inj.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, node, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s on %s: %s", method, path, node, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s on %s: decode: %w", method, path, node, err)
		}
	}
	return nil
}

func (inj *Injector) setGossipRules(ctx context.Context, node string, r gossip.Rules) error {
	if r.Empty() {
		return inj.controlCall(ctx, node, http.MethodDelete, "/v1/gossip/faults", nil, nil)
	}
	return inj.controlCall(ctx, node, http.MethodPut, "/v1/gossip/faults", r, nil)
}
