package fault

import (
	"fmt"
	"strconv"
	"time"

	"github.com/drillworks/drill/topology"
)

// KindLatency adds one-way latency (and jitter, optionally a bandwidth cap) to WAN links: between
// named regions, on every link of one region, or on the whole WAN.
const KindLatency Kind = "latency"

// Parameter names shared by several kinds.
const (
	ParamLatency   = "latency"
	ParamJitter    = "jitter"
	ParamBandwidth = "bandwidth_kbps"
	ParamPercent   = "percent"
)

func init() { register(latency{}) }

type latency struct{ Base }

func (latency) Kind() Kind { return KindLatency }

func (latency) Summary() string {
	return "add one-way latency (± jitter, optionally a bandwidth cap) to cross-site traffic, gossip included"
}

func (latency) Targets() Targets {
	return Targets{Region: true, Regions: true, Optional: true,
		Help: "a region (every link of it), regions: [a, b] (the links between them), or nothing (the whole WAN)"}
}

func (latency) Params() []Param {
	return []Param{
		// Exploration draws up to half a second: beyond the failover timers' scale, more latency
		// only slows the run down.
		{Name: ParamLatency, Type: TypeDuration, Required: true, Max: int64(time.Minute),
			Help: "the one-way latency to add, e.g. latency: 200ms", Typical: [2]int64{int64(20 * time.Millisecond), int64(500 * time.Millisecond)}},
		{Name: ParamJitter, Type: TypeDuration, Max: int64(time.Minute), Help: "random deviation either way, e.g. jitter: 20ms",
			Typical: [2]int64{int64(5 * time.Millisecond), int64(50 * time.Millisecond)}},
		// The workload writes a few KB/s; a cap of 0.5–8 MB/s still lets replication keep up.
		{Name: ParamBandwidth, Type: TypeInt, Min: 1, Max: 1 << 30, Help: "a cap on each stream of every link, in KB/s",
			Typical: [2]int64{512, 8192}},
	}
}

func (latency) Describe(f Fault) string {
	s := "+" + f.Params.Duration(ParamLatency).String()
	if j := f.Params.Duration(ParamJitter); j > 0 {
		s += " ±" + j.String()
	}
	if bw := f.Params.Int(ParamBandwidth); bw > 0 {
		s += fmt.Sprintf(" ≤%d KB/s", bw)
	}
	return s
}

// Effects: latency (and bandwidth) toxics on both streams of every matching link; in gossip, the
// same delay added towards the other side on each node. Delays add up over faults and on top of
// the base WAN, as the toxics do.
func (latency) Effects(f Fault, env Env) Effects {
	t := env.Plan.Topology
	lat, jit, bw := f.Params.Duration(ParamLatency), f.Params.Duration(ParamJitter), f.Params.Int(ParamBandwidth)
	e := Effects{Gossip: map[string]GossipRule{}}
	for _, pair := range SitePairs(t, f) {
		for _, l := range env.Plan.LinksBetween(pair[0], pair[1]) {
			for _, st := range bothStreams(l.FromSite) {
				if lat > 0 || jit > 0 {
					e.Toxics = append(e.Toxics, LinkToxic{Link: l.Name, Name: ToxicName(f.ID, "lat_"+shortStream(st)), Type: "latency",
						Stream: st, Attributes: map[string]any{"latency": lat.Milliseconds(), "jitter": jit.Milliseconds()}})
				}
				if bw > 0 {
					e.Toxics = append(e.Toxics, LinkToxic{Link: l.Name, Name: ToxicName(f.ID, "bw_"+shortStream(st)), Type: "bandwidth",
						Stream: st, Attributes: map[string]any{"rate": bw}})
				}
			}
		}
		if lat <= 0 && jit <= 0 {
			continue
		}
		for _, n := range t.Nodes() {
			if other, ok := OtherSite(pair, n.Site()); ok && IsGossipMember(n) {
				gossipAdd(e.Gossip, n.Name, GossipRule{Delays: []Delay{{Prefix: t.SitePrefix(other), Latency: lat, Jitter: jit}}})
			}
		}
	}
	return e
}

// itoa is strconv.Itoa (for the kinds' parameter texts).
func itoa(n int) string { return strconv.Itoa(n) }

func (latency) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-latency", Kind: KindLatency, Region: QuietRegion(t), Params: Params{ParamLatency: "100ms", ParamJitter: "10ms"}}
}
