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

	var (
		mu      sync.Mutex
		withFlt []string
	)
	gerr := err
	if err == nil {
		gerr = eachParallel(len(running), func(i int) error {
			var r gossip.Rules
			if err := inj.controlCall(ctx, running[i], http.MethodGet, "/v1/gossip/faults", nil, &r); err != nil {
				return err
			}
			if !r.Empty() {
				mu.Lock()
				withFlt = append(withFlt, fmt.Sprintf("%s (%d drop, %d delay, %d loss)", running[i],
					len(r.Drop)+len(r.DropIn)+len(r.DropOut), len(r.Delays), len(r.Loss)))
				mu.Unlock()
			}
			return nil
		})
	}
	set(2, withFlt, gerr)

	var shifted []string
	cerr := err
	if err == nil {
		cerr = eachParallel(len(dbs), func(i int) error {
			var s clock.Shift
			if err := inj.controlCall(ctx, dbs[i], http.MethodGet, "/v1/clock", nil, &s); err != nil {
				return err
			}
			if !s.Zero() {
				mu.Lock()
				shifted = append(shifted, fmt.Sprintf("%s (%s, %d ppm)", dbs[i], s.Offset, s.DriftPPM))
				mu.Unlock()
			}
			return nil
		})
	}
	set(6, shifted, cerr)

	var faulty []string
	derr := err
	if err == nil {
		derr = eachParallel(len(dbs), func(i int) error {
			var s disk.State
			if err := inj.controlCall(ctx, dbs[i], http.MethodGet, "/v1/disk", nil, &s); err != nil {
				return err
			}
			if !s.Zero() {
				mu.Lock()
				faulty = append(faulty, fmt.Sprintf("%s (%+v)", dbs[i], s))
				mu.Unlock()
			}
			return nil
		})
	}
	set(7, faulty, derr)

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

// ResidueClean reports whether every item is clean.
func ResidueClean(items []ResidueItem) bool {
	for _, it := range items {
		if !it.Clean {
			return false
		}
	}
	return true
}
