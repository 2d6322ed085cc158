package compose

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
)

// Packet faults: a runtime that can drop packets in the kernel (compose/docker does, with nftables
// in each node's network namespace) implements PacketFaulter, and blackhole and partition faults
// then drop packets too, on top of the WAN toxics and the gossip rules (which stay: they are what
// the local runtime has, and they keep the two runtimes' drills alike). A packet drop is what
// makes a black hole real for everything the other layers cannot see: users' HTTP and DNS from
// the host, UDP gossip, any path drill did not think of.

// PacketFaulter drops packets between nodes and address ranges, under rule sets named by fault id.
type PacketFaulter interface {
	// DropPackets makes each node of drops silently drop every packet it exchanges with the given
	// prefixes (0.0.0.0/0 = everyone), both directions, UDP included. Packets within the node's
	// own site and drill's own observation and control traffic from the host are never dropped,
	// so drill can still see and heal what it cut off. Nodes that are not running are skipped
	// (their rules are re-applied when they start). Applying the same id again replaces it.
	DropPackets(ctx context.Context, id string, drops map[string][]netip.Prefix) error
	// LossPackets is DropPackets dropping each matching packet only with probability
	// percent/100 (1 to 99), at random: packet loss. Its rule set is removed by UndropPackets.
	LossPackets(ctx context.Context, id string, drops map[string][]netip.Prefix, percent int) error
	// UndropPackets removes rule set id from the named nodes; absent rules and stopped nodes are
	// fine.
	UndropPackets(ctx context.Context, id string, nodes []string) error
	// PacketRules lists the drill rule sets present on every running node: node → rule set names.
	PacketRules(ctx context.Context) (map[string][]string, error)
	// FlushPacketRules removes every drill rule set from every running node, whoever added it.
	FlushPacketRules(ctx context.Context) error
}

// packetFaulter is the runtime's packet layer, nil when it has none.
func (inj *Injector) packetFaulter() PacketFaulter {
	pf, _ := inj.rt.(PacketFaulter)
	return pf
}

// packetDrops is what a fault drops at the packet level: node → prefixes. A black hole drops
// everything to and from each of its region's nodes; a partition drops, on each side's nodes,
// the other side's node range; a loss fault drops a share of them, on one side (lossDrops).
func (inj *Injector) packetDrops(f Fault) map[string][]netip.Prefix {
	t := inj.plan.Topology
	out := map[string][]netip.Prefix{}
	switch f.Kind {
	case KindBlackhole:
		for _, n := range t.Nodes() {
			if n.Region == f.Region {
				out[n.Name] = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
			}
		}
	case KindLoss:
		return inj.lossDrops(f)
	case KindPartition:
		for _, pair := range inj.sitePairs(f) {
			for _, n := range t.Nodes() {
				if other, ok := otherSite(pair, n.Site()); ok {
					if p := t.SitePrefix(other); !slices.Contains(out[n.Name], p) {
						out[n.Name] = append(out[n.Name], p)
					}
				}
			}
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
	}
	return out
}

// addPacketDrops installs a fault's packet drops, if the runtime can and the fault has any.
func (inj *Injector) addPacketDrops(ctx context.Context, f Fault) error {
	pf := inj.packetFaulter()
	drops := inj.packetDrops(f)
	if pf == nil || len(drops) == 0 {
		return nil
	}
	if err := installPackets(ctx, pf, f, drops); err != nil {
		return fmt.Errorf("packet drops: %w", err)
	}
	return nil
}

// installPackets installs a fault's rule set on the nodes of drops: all packets dropped, or a
// share of them for a loss fault.
func installPackets(ctx context.Context, pf PacketFaulter, f Fault, drops map[string][]netip.Prefix) error {
	if f.Kind == KindLoss {
		return pf.LossPackets(ctx, f.ID, drops, f.LossPercent)
	}
	return pf.DropPackets(ctx, f.ID, drops)
}

// removePacketDrops removes a fault's packet drops.
func (inj *Injector) removePacketDrops(ctx context.Context, f Fault) error {
	pf := inj.packetFaulter()
	drops := inj.packetDrops(f)
	if pf == nil || len(drops) == 0 {
		return nil
	}
	nodes := make([]string, 0, len(drops))
	for n := range drops {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	if err := pf.UndropPackets(ctx, f.ID, nodes); err != nil {
		return fmt.Errorf("packet drops: %w", err)
	}
	return nil
}

// reapplyPacketDrops puts the packet drops of the active faults back on freshly started nodes:
// a container's rules live in its network namespace, which a restart replaces.
func (inj *Injector) reapplyPacketDrops(ctx context.Context, started []string, active []Fault) error {
	pf := inj.packetFaulter()
	if pf == nil || len(started) == 0 {
		return nil
	}
	var errs []error
	for _, f := range active {
		drops := map[string][]netip.Prefix{}
		for n, ps := range inj.packetDrops(f) {
			if slices.Contains(started, n) {
				drops[n] = ps
			}
		}
		if len(drops) > 0 {
			if err := installPackets(ctx, pf, f, drops); err != nil {
				errs = append(errs, fmt.Errorf("re-apply packet drops of %s: %w", f.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
