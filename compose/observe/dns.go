package observe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/drillworks/drill/topology"
)

// DNSRoute is where one GeoDNS instance sends the users near one region.
type DNSRoute struct {
	// Instance is the GeoDNS node; Clients the region its users are near.
	Instance, Clients string
	// Region is the region the answer's addresses belong to ("" when they belong to none);
	// Addrs the answer.
	Region string
	Addrs  []string
	// Err is why there is no answer (a timeout, NODATA, ...).
	Err string
}

// dnsTimeout bounds one query: an instance that does not answer within it is not ready.
const dnsTimeout = 500 * time.Millisecond

// DNSRoutes asks every running GeoDNS instance where it sends the users near each region, as
// those users would ask: with an EDNS Client Subnet option naming their region on a runtime whose
// clients need one, else from a source address in their region's loopback client subnet.
func (o *Observer) DNSRoutes(ctx context.Context) ([]DNSRoute, error) {
	t := o.Plan.Topology
	procs, err := o.Runtime.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, p := range procs {
		running[p.Name] = p.Running && !p.Frozen
	}
	webRegion := map[string]string{}
	for _, n := range t.NodesOf(topology.RoleWeb, "") {
		webRegion[n.IP.String()] = n.Region
	}
	useECS := o.Runtime.Capabilities().ClientsNeedECS
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out []DNSRoute
	)
	for _, n := range t.NodesOf(topology.RoleDNS, "") {
		if !running[n.Name] {
			continue
		}
		addr, err := o.Runtime.Endpoint(n.Name, topology.PortDNS)
		if err != nil {
			return nil, err
		}
		for _, r := range t.Regions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				route := DNSRoute{Instance: n.Name, Clients: r.Name}
				src, ecs := r.ClientSource(48), netip.Prefix{}
				if useECS {
					src, ecs = netip.Addr{}, r.ECSSubnet()
				}
				ips, err := queryApp(ctx, addr, t.DNS.Zone, src, ecs)
				if err != nil {
					route.Err = err.Error()
				}
				route.Addrs = ips
				for i, ip := range ips {
					if i == 0 {
						route.Region = webRegion[ip]
					} else if webRegion[ip] != route.Region {
						route.Region = ""
					}
				}
				mu.Lock()
				out = append(out, route)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		return out[i].Instance+"/"+out[i].Clients < out[j].Instance+"/"+out[j].Clients
	})
	return out, nil
}

// DNSReady reports whether every running GeoDNS instance sends the users near each region to
// that region, with every one of its web nodes (at up all are healthy, and a user's first answer
// should show them all); the reason names the first that does not.
func DNSReady(t *topology.Topology, routes []DNSRoute) (bool, string) {
	for _, r := range routes {
		want := len(t.NodesOf(topology.RoleWeb, r.Clients))
		if r.Region != r.Clients || len(r.Addrs) != want {
			why := r.Err
			if why == "" {
				why = fmt.Sprintf("answered %s (%s; %d of its %d web nodes)", strings.Join(r.Addrs, ","), orNone(r.Region), len(r.Addrs), want)
			}
			return false, fmt.Sprintf("GeoDNS %s does not send users near %s to all of that region yet: %s", r.Instance, r.Clients, why)
		}
	}
	return true, ""
}

func orNone(s string) string {
	if s == "" {
		return "no single region"
	}
	return s
}

// queryApp asks server for app.<zone> A, from src (when valid) with the ECS option ecs (when
// valid), and returns the answer's addresses, sorted.
func queryApp(ctx context.Context, server, zone string, src netip.Addr, ecs netip.Prefix) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn("app."+strings.TrimSuffix(zone, ".")), dns.TypeA)
	if ecs.IsValid() {
		q.SetEdns0(1232, false)
		opt := q.IsEdns0()
		family := uint16(1)
		if ecs.Addr().Is6() {
			family = 2
		}
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: family,
			SourceNetmask: uint8(ecs.Bits()), Address: ecs.Addr().AsSlice()})
	}
	c := &dns.Client{Net: "udp", Timeout: dnsTimeout}
	if src.IsValid() {
		c.Dialer = &net.Dialer{Timeout: dnsTimeout, LocalAddr: &net.UDPAddr{IP: src.AsSlice()}}
	}
	resp, _, err := c.ExchangeContext(ctx, q, server)
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	slices.Sort(ips)
	if resp.Rcode != dns.RcodeSuccess || len(ips) == 0 {
		return ips, fmt.Errorf("%s with %d addresses", dns.RcodeToString[resp.Rcode], len(ips))
	}
	return ips, nil
}
