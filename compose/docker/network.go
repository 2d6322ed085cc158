package docker

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/drillworks/drill/topology"
)

// ensureNetworks creates, on every engine of the topology, its WAN network and the networks of
// its regions, or reuses ones this topology already has (created concurrently, or left from a
// crash).
func (r *Runtime) ensureNetworks(ctx context.Context, plan *topology.Plan) error {
	t := plan.Topology
	for k, h := range EngineHosts(t) {
		eng, err := r.engineAt(h)
		if err != nil {
			return err
		}
		specs := []NetworkSpec{{Name: networkName(t.Name, wanNetwork), Subnet: wanNetworkPrefix(t, k), Gateway: wanGateway(t, k)}}
		for _, reg := range t.RegionNames() {
			if siteEngine(t, reg) != k {
				continue
			}
			p := regionNetwork(t, reg)
			gw := p.Addr().As4()
			gw[3] = 1
			specs = append(specs, NetworkSpec{Name: networkName(t.Name, reg), Subnet: p, Gateway: netip.AddrFrom4(gw)})
		}
		if len(EngineHosts(t)) > 1 {
			// What the hosts must do for packets to cross engines (README, "Regions on
			// several engines"); when they do not, the cluster does not converge.
			var ranges []netip.Prefix
			for _, s := range specs {
				ranges = append(ranges, s.Subnet)
			}
			r.log.Info("engine networks: route these ranges to this engine's host from the other engines' hosts, and let every host forward "+
				netip.PrefixFrom(netip.AddrFrom4(dockerBase(t)), 16).String()+" between its bridges", "engine", engineLabel(h), "ranges", ranges)
		}
		for _, s := range specs {
			s.Labels = objectLabels(t.Name, plan.RunID, RoleNetwork, "")
			if err := ensureNetwork(ctx, eng, s); err != nil {
				if h != "" {
					return fmt.Errorf("%s: %w", engineLabel(h), err)
				}
				return err
			}
		}
	}
	return nil
}

// ensureNetwork creates one network; if the name exists already, it is reused when it is this
// topology's with the same subnet (a concurrent or earlier create), and an error otherwise: drill
// never takes over a network it did not make. A concurrent create may fail with a conflict on the
// name or, when the engine allocated the other caller's address pool first, with a pool overlap:
// either way the name is looked up until the other create finishes.
func ensureNetwork(ctx context.Context, eng Engine, s NetworkSpec) error {
	_, err := eng.NetworkCreate(ctx, s)
	if err == nil {
		return nil
	}
	// A loaded engine can take seconds to finish the other caller's create, so the name is
	// polled until a deadline rather than a fixed number of times.
	var ierr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		var n Network
		n, ierr = eng.NetworkInspect(ctx, s.Name)
		if ierr == nil {
			if n.Labels[LabelTopology] != s.Labels[LabelTopology] || n.Labels[LabelOwner] != s.Labels[LabelOwner] || n.Subnet != s.Subnet {
				return fmt.Errorf("network %s exists and is not this topology's or not this owner's (labels %v, subnet %s)", s.Name, n.Labels, n.Subnet)
			}
			return nil
		}
		if !IsNotFound(ierr) || IsConflict(err) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("create network %s (%s): %w (is network.docker_base free on this engine?)", s.Name, s.Subnet, err)
}
