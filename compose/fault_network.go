package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/gossip"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// Network faults (blackhole, partition, latency) act on both paths a cross-site packet takes: the
// WAN links (toxiproxy toxics, TCP) and the agents' gossip transport (fault rules pushed to the
// control endpoints). Toxics are named from the fault id, so an undo after a crash finds them
// again from the ledger alone. Loss (fault_loss.go) has no toxic: its gossip rules are here.

// FaultToxicPrefix names every toxic drill adds for a fault (base WAN toxics are named otherwise),
// so a residue check can tell leftovers from the steady WAN.
const FaultToxicPrefix = "drill_"

// toxicName is the name of one of a fault's toxics: prefix, a readable form of the id, a short
// hash of the exact id (two ids that read alike must not share toxics) and a suffix.
func toxicName(id, suffix string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return fmt.Sprintf("%s%s_%04x_%s", FaultToxicPrefix, SafeName(id), h.Sum32()&0xffff, suffix)
}

// sitePairs are the unordered pairs of sites a network fault acts between.
func (inj *Injector) sitePairs(f Fault) [][2]string {
	sites := inj.plan.Topology.Sites()
	var out [][2]string
	seen := map[[2]string]bool{}
	add := func(a, b string) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if !seen[[2]string{a, b}] {
			seen[[2]string{a, b}] = true
			out = append(out, [2]string{a, b})
		}
	}
	against := func(r string) {
		for _, s := range sites {
			add(r, s)
		}
	}
	among := func(ss []string) {
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				add(ss[i], ss[j])
			}
		}
	}
	switch f.Kind {
	case KindBlackhole:
		against(f.Region)
	case KindPartition, KindLatency, KindLoss:
		switch {
		case len(f.Regions) >= 2:
			among(f.Regions)
		case len(f.Regions) == 1:
			against(f.Regions[0])
		case f.Region != "":
			against(f.Region)
		case f.Kind == KindLatency:
			among(sites)
		}
	}
	return out
}

// linkToxic is one toxic on one WAN link.
type linkToxic struct {
	link  string
	toxic toxi.Toxic
}

// toxics lists the toxics a network fault puts on the WAN links.
func (inj *Injector) toxics(f Fault) []linkToxic {
	var out []linkToxic
	streams := []struct{ name, short string }{{"upstream", "up"}, {"downstream", "down"}}
	for _, pair := range inj.sitePairs(f) {
		for _, l := range inj.plan.LinksBetween(pair[0], pair[1]) {
			for _, st := range streams {
				switch f.Kind {
				case KindBlackhole, KindPartition:
					out = append(out, linkToxic{l.Name, toxi.Toxic{
						Name: toxicName(f.ID, "cut_"+st.short), Type: "timeout", Stream: st.name,
						Attributes: map[string]any{"timeout": 0}, // 0 = hold the data forever: a black hole
					}})
				case KindLatency:
					if f.Latency > 0 || f.Jitter > 0 {
						out = append(out, linkToxic{l.Name, toxi.Toxic{
							Name: toxicName(f.ID, "lat_"+st.short), Type: "latency", Stream: st.name,
							Attributes: map[string]any{"latency": f.Latency.Milliseconds(), "jitter": f.Jitter.Milliseconds()},
						}})
					}
					if f.BandwidthKBps > 0 {
						out = append(out, linkToxic{l.Name, toxi.Toxic{
							Name: toxicName(f.ID, "bw_"+st.short), Type: "bandwidth", Stream: st.name,
							Attributes: map[string]any{"rate": f.BandwidthKBps},
						}})
					}
				}
			}
		}
	}
	return out
}

// eachParallel runs fn for every index at once and joins the errors (few calls, each time-boxed:
// a hung API costs one timeout, not one per call).
func eachParallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (inj *Injector) addToxics(ctx context.Context, f Fault) error {
	txs := inj.toxics(f)
	return eachParallel(len(txs), func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		err := inj.toxi.AddToxic(cctx, txs[i].link, txs[i].toxic)
		var te *toxi.Error
		if errors.As(err, &te) && te.Status == http.StatusConflict {
			return nil // already there (a retried apply): same name, same fault
		}
		if err != nil {
			return fmt.Errorf("link %s: %w", txs[i].link, err)
		}
		return nil
	})
}

func (inj *Injector) removeToxics(ctx context.Context, f Fault) error {
	txs := inj.toxics(f)
	return eachParallel(len(txs), func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		if err := inj.toxi.RemoveToxic(cctx, txs[i].link, txs[i].toxic.Name); err != nil && !toxi.NotFound(err) {
			return fmt.Errorf("link %s: %w", txs[i].link, err)
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
			if strings.HasPrefix(tx.Name, FaultToxicPrefix) {
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

// rulesFor computes one gossip node's fault rules from an active set. Rules are layered by the
// agent over its steady WAN delays; a fault delay replaces the base delay for its prefix, so it
// carries base + injected latency and gossip sees the same total as the TCP links (which keep
// their base toxics and add the drill ones).
func (inj *Injector) rulesFor(node topology.Node, active []Fault) gossip.Rules {
	t := inj.plan.Topology
	site := node.Site()
	drop := map[netip.Prefix]bool{}
	type added struct{ latency, jitter time.Duration }
	delays := map[string]*added{} // other site → injected delay
	var loss []gossip.Loss
	for _, f := range active {
		switch f.Kind {
		case KindPartition:
			for _, p := range inj.sitePairs(f) {
				if other, ok := otherSite(p, site); ok {
					drop[t.SitePrefix(other)] = true
				}
			}
		case KindBlackhole:
			if site != f.Region {
				drop[t.SitePrefix(f.Region)] = true
				continue
			}
			// Inside the black hole: nothing from any other site, nor from any user.
			for _, s := range t.Sites() {
				if s != site {
					drop[t.SitePrefix(s)] = true
				}
			}
			for _, r := range t.Regions {
				for _, c := range r.ClientSubnets {
					if p, err := netip.ParsePrefix(c); err == nil {
						drop[p.Masked()] = true
					}
				}
			}
		case KindLoss:
			loss = append(loss, inj.gossipLoss(node, f)...)
		case KindLatency:
			if f.Latency <= 0 && f.Jitter <= 0 {
				continue
			}
			for _, p := range inj.sitePairs(f) {
				if other, ok := otherSite(p, site); ok {
					a := delays[other]
					if a == nil {
						a = &added{}
						delays[other] = a
					}
					a.latency += f.Latency
					a.jitter += f.Jitter
				}
			}
		}
	}
	var r gossip.Rules
	for p := range drop {
		r.Drop = append(r.Drop, p)
	}
	sort.Slice(r.Drop, func(i, j int) bool { return r.Drop[i].String() < r.Drop[j].String() })
	for other, a := range delays {
		lat, jit := t.SiteLatency(site, other)
		r.Delays = append(r.Delays, gossip.Delay{Prefix: t.SitePrefix(other), Latency: lat + a.latency, Jitter: jit + a.jitter})
	}
	sort.Slice(r.Delays, func(i, j int) bool { return r.Delays[i].Prefix.String() < r.Delays[j].Prefix.String() })
	// Two loss faults on one prefix stay two rules: two independent draws, as two packet rule
	// sets would be.
	r.Loss = loss
	sort.SliceStable(r.Loss, func(i, j int) bool { return r.Loss[i].Prefix.String() < r.Loss[j].Prefix.String() })
	return r
}

// otherSite is the far end of pair seen from site.
func otherSite(pair [2]string, site string) (string, bool) {
	switch site {
	case pair[0]:
		return pair[1], true
	case pair[1]:
		return pair[0], true
	}
	return "", false
}

// gossipMember reports whether a node runs gossip (and so has a control endpoint).
func gossipMember(n topology.Node) bool {
	return n.Role != topology.RoleWAN && n.Role != topology.RoleWitness
}

// pushGossipRules pushes the rules of the current active set.
func (inj *Injector) pushGossipRules(ctx context.Context) error {
	return inj.pushRulesFor(ctx, inj.active)
}

// pushRulesFor sends every running, unfrozen gossip node its rules under the given active set
// (an empty set clears them). A frozen node cannot answer; it is pushed again when thawed.
func (inj *Injector) pushRulesFor(ctx context.Context, active []Fault) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	var targets []topology.Node
	for _, n := range inj.plan.Topology.Nodes() {
		if p := procs[n.Name]; gossipMember(n) && p.Running && !p.Frozen {
			targets = append(targets, n)
		}
	}
	return eachParallel(len(targets), func(i int) error {
		return inj.setGossipRules(ctx, targets[i].Name, inj.rulesFor(targets[i], active))
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
	req.Header.Set("Authorization", "Bearer "+inj.plan.Secret)
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
	if len(r.Drop) == 0 && len(r.Delays) == 0 && len(r.Loss) == 0 {
		return inj.controlCall(ctx, node, http.MethodDelete, "/v1/gossip/faults", nil, nil)
	}
	return inj.controlCall(ctx, node, http.MethodPut, "/v1/gossip/faults", r, nil)
}
