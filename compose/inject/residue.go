package inject

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/topology"
)

// ResidueItem is one check that nothing a drill injected is left behind.
type ResidueItem struct {
	// What is checked, e.g. "drill toxics on WAN links".
	What string `json:"what"`
	// Clean is true when nothing is left (or, for a check that could not run, false).
	Clean bool `json:"clean"`
	// Detail names what is left, or why the check could not run.
	Detail string `json:"detail,omitempty"`
}

// Residue checks the cluster for leftovers of faults, by looking at the cluster itself (not at
// the ledger, except for the ledger's own item): drill toxics on the WAN links, disabled links,
// gossip fault rules on running nodes, frozen nodes, nodes not running, faults the ledger still
// holds outstanding, shifted clocks and disk faults on db nodes and, on a runtime with packet faults, drill packet rules in the nodes. A check
// that cannot run counts as not clean.
func (inj *Injector) Residue(ctx context.Context) []ResidueItem {
	items := []ResidueItem{
		{What: "drill toxics on WAN links"},
		{What: "disabled WAN links"},
		{What: "gossip fault rules on running nodes"},
		{What: "frozen nodes"},
		{What: "nodes not running"},
		{What: "outstanding faults in the ledger"},
		{What: "shifted clocks on running db nodes"},
		{What: "disk faults on running db nodes"},
	}
	pf := inj.packetFaulter()
	if pf != nil {
		items = append(items, ResidueItem{What: "packet drop and loss rules in nodes"})
	}
	set := func(i int, left []string, err error) {
		sort.Strings(left)
		switch {
		case err != nil:
			items[i].Detail = "check failed: " + err.Error()
		case len(left) > 0:
			items[i].Detail = strings.Join(left, ", ")
		default:
			items[i].Clean = true
		}
	}

	cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
	proxies, err := inj.toxi.Proxies(cctx)
	cancel()
	var toxics, disabled []string
	for name, p := range proxies {
		for _, tx := range p.Toxics {
			if strings.HasPrefix(tx.Name, fault.ToxicPrefix) {
				toxics = append(toxics, name+"/"+tx.Name)
			}
		}
		if !p.Enabled {
			disabled = append(disabled, name)
		}
	}
	set(0, toxics, err)
	set(1, disabled, err)

	procs, err := inj.nodes(ctx)
	var frozen, stopped, running, dbs []string
	if err == nil {
		for _, n := range inj.plan.Topology.Nodes() {
			switch p := procs[n.Name]; {
			case !p.Running:
				stopped = append(stopped, n.Name)
			case p.Frozen:
				frozen = append(frozen, n.Name)
			case fault.IsGossipMember(n):
				running = append(running, n.Name)
				if n.Role == topology.RoleDB {
					dbs = append(dbs, n.Name)
				}
			}
		}
	}
	set(3, frozen, err)
	set(4, stopped, err)

	if err != nil {
		for _, i := range []int{2, 6, 7} {
			set(i, nil, err)
		}
	} else {
		left, err := faultsLeft(ctx, inj, running, "/v1/gossip/faults", func(r gossip.Rules) string {
			if r.Empty() {
				return ""
			}
			return fmt.Sprintf("%d drop, %d delay, %d loss", len(r.Drop)+len(r.DropIn)+len(r.DropOut), len(r.Delays), len(r.Loss))
		})
		set(2, left, err)
		left, err = faultsLeft(ctx, inj, dbs, "/v1/clock", func(s clock.Shift) string {
			if s.Zero() {
				return ""
			}
			return fmt.Sprintf("%s, %d ppm", s.Offset, s.DriftPPM)
		})
		set(6, left, err)
		left, err = faultsLeft(ctx, inj, dbs, "/v1/disk", func(s disk.State) string {
			if s.Zero() {
				return ""
			}
			return fmt.Sprintf("%+v", s)
		})
		set(7, left, err)
	}

	out, _, err := inj.ledger.outstanding(inj.log)
	var ids []string
	for _, f := range out {
		ids = append(ids, f.ID)
	}
	set(5, ids, err)

	if pf != nil {
		sets, err := pf.PacketRules(ctx)
		var left []string
		for node, names := range sets {
			for _, n := range names {
				left = append(left, node+"/"+n)
			}
		}
		set(8, left, err)
	}
	return items
}

// faultsLeft reads one fault state from each node's control endpoint (path) and names the nodes
// whose state is not clear, with what describe says of it ("" means clear).
func faultsLeft[T any](ctx context.Context, inj *Injector, nodes []string, path string, describe func(T) string) ([]string, error) {
	var (
		mu   sync.Mutex
		left []string
	)
	err := eachParallel(len(nodes), func(i int) error {
		var v T
		if err := inj.controlCall(ctx, nodes[i], http.MethodGet, path, nil, &v); err != nil {
			return err
		}
		if d := describe(v); d != "" {
			mu.Lock()
			left = append(left, nodes[i]+" ("+d+")")
			mu.Unlock()
		}
		return nil
	})
	return left, err
}

// ResidueClean reports whether every item is clean.
func ResidueClean(items []ResidueItem) bool {
	for _, it := range items {
		if !it.Clean {
			return false
		}
	}
	return true
}
