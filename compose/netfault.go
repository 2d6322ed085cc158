package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// FaultToxicPrefix names every toxic drill adds for a fault (base WAN toxics are named otherwise),
// so a residue check can tell leftovers from the steady WAN.
const FaultToxicPrefix = "drill_"

// Network injects network faults between sites through the two paths a cross-site packet can take
// in drill: the WAN links (toxiproxy, TCP) and the agents' gossip transport (UDP and TCP gossip).
// It keeps the set of active gossip cuts so that overlapping faults compose.
type Network struct {
	plan *topology.Plan
	rt   Runtime
	toxi *toxi.Client
	http *http.Client

	mu   sync.Mutex
	cuts map[string][2]string // fault id → the two sites cut apart
}

// NewNetwork returns the fault injector for a running plan.
func NewNetwork(p *topology.Plan, rt Runtime) (*Network, error) {
	api, err := rt.Endpoint("wan", topology.PortWANAPI)
	if err != nil {
		return nil, err
	}
	return &Network{
		plan: p, rt: rt,
		toxi: &toxi.Client{BaseURL: "http://" + api, Secret: p.Secret},
		http: &http.Client{Timeout: 3 * time.Second},
		cuts: map[string][2]string{},
	}, nil
}

// Toxi is the WAN API client.
func (n *Network) Toxi() *toxi.Client { return n.toxi }

// Partition cuts sites a and b apart (both directions, gossip and TCP), silently: packets vanish,
// live connections hang. Each side still serves its own users. id names the fault for Heal.
func (n *Network) Partition(ctx context.Context, id, a, b string) error {
	t := n.plan.Topology
	for _, s := range []string{a, b} {
		if !t.SitePrefix(s).IsValid() || (s != "witness" && t.RegionIndex(s) == 0) {
			return fmt.Errorf("partition: unknown site %q", s)
		}
	}
	n.mu.Lock()
	n.cuts[id] = [2]string{a, b}
	n.mu.Unlock()
	var errs []error
	for _, l := range n.plan.LinksBetween(a, b) {
		for _, stream := range []string{"upstream", "downstream"} {
			err := n.toxi.AddToxic(ctx, l.Name, toxi.Toxic{
				Name: FaultToxicPrefix + id + "_" + stream, Type: "timeout", Stream: stream,
				Attributes: map[string]any{"timeout": 0}, // 0 = hold the data forever: a black hole
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("link %s: %w", l.Name, err))
			}
		}
	}
	errs = append(errs, n.pushGossipRules(ctx))
	return errors.Join(errs...)
}

// Heal removes one partition (idempotent: healing twice, or a fault never applied, is fine).
func (n *Network) Heal(ctx context.Context, id string) error {
	n.mu.Lock()
	ab, ok := n.cuts[id]
	delete(n.cuts, id)
	n.mu.Unlock()
	var errs []error
	if ok {
		for _, l := range n.plan.LinksBetween(ab[0], ab[1]) {
			for _, stream := range []string{"upstream", "downstream"} {
				if err := n.toxi.RemoveToxic(ctx, l.Name, FaultToxicPrefix+id+"_"+stream); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	errs = append(errs, n.pushGossipRules(ctx))
	return errors.Join(errs...)
}

// HealAll removes every fault toxic on every link and every gossip fault rule on every node,
// whether or not this Network injected it: the undo of last resort.
func (n *Network) HealAll(ctx context.Context) error {
	n.mu.Lock()
	n.cuts = map[string][2]string{}
	n.mu.Unlock()
	var errs []error
	proxies, err := n.toxi.Proxies(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for name, p := range proxies {
		for _, tx := range p.Toxics {
			if len(tx.Name) >= len(FaultToxicPrefix) && tx.Name[:len(FaultToxicPrefix)] == FaultToxicPrefix {
				errs = append(errs, n.toxi.RemoveToxic(ctx, name, tx.Name))
			}
		}
		if !p.Enabled {
			errs = append(errs, n.toxi.SetEnabled(ctx, name, true))
		}
	}
	errs = append(errs, n.pushGossipRules(ctx))
	return errors.Join(errs...)
}

// rulesFor computes one node's gossip drop rules from the active cuts.
func (n *Network) rulesFor(node topology.Node) gossip.Rules {
	t := n.plan.Topology
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[netip.Prefix]bool{}
	var r gossip.Rules
	for _, ab := range n.cuts {
		other := ""
		switch node.Site() {
		case ab[0]:
			other = ab[1]
		case ab[1]:
			other = ab[0]
		default:
			continue
		}
		if p := t.SitePrefix(other); !seen[p] {
			seen[p] = true
			r.Drop = append(r.Drop, p)
		}
	}
	sort.Slice(r.Drop, func(i, j int) bool { return r.Drop[i].String() < r.Drop[j].String() })
	return r
}

// pushGossipRules sends every running gossip member its current fault rules.
func (n *Network) pushGossipRules(ctx context.Context) error {
	procs, err := n.rt.Nodes(ctx)
	if err != nil {
		return err
	}
	running := map[string]bool{}
	for _, p := range procs {
		running[p.Name] = p.Running && !p.Frozen
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, node := range n.plan.Topology.Nodes() {
		if node.Role == topology.RoleWAN || node.Role == topology.RoleWitness || !running[node.Name] {
			continue
		}
		wg.Add(1)
		go func(node topology.Node) {
			defer wg.Done()
			if err := n.setGossipRules(ctx, node.Name, n.rulesFor(node)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(node)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) setGossipRules(ctx context.Context, node string, r gossip.Rules) error {
	addr, err := n.rt.Endpoint(node, topology.PortControl)
	if err != nil {
		return err
	}
	method, body := http.MethodPut, []byte(nil)
	if len(r.Drop) == 0 && len(r.Delays) == 0 {
		method = http.MethodDelete
	} else if body, err = json.Marshal(r); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/v1/gossip/faults", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+n.plan.Secret)
	resp, err := n.http.Do(req)
	if err != nil {
		return fmt.Errorf("gossip rules on %s: %w", node, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gossip rules on %s: %s", node, resp.Status)
	}
	return nil
}
