// Package explore looks for the design's bugs with randomized fault schedules, in the manner of
// Jepsen's nemesis generators: it draws schedules from the fault registry by seed (kinds, targets,
// overlaps, durations), runs each as a drill with the workload running on one cluster that is
// reused with a verified reset in between, judges each by what the design promises rather than a
// scripted drill's budgets, shrinks a failing schedule to a minimal one (delta debugging over its
// faults, then over their durations) and writes it out as a drill file that `drill run FILE
// --seed S` replays. It ends with a report of the schedules run, the failures with their minimal
// drills, and the coverage (fault kinds x targets x overlaps).
//
// The package knows drill files, checks and the fault registry; running a drill on a cluster is
// given to it (Options.Run), so it is tested without one.
package explore

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/topology"
)

// TargetClass is what kind of target a fault of a schedule was aimed at, for coverage.
type TargetClass string

// Target classes.
const (
	// TargetNode: one named node (web, db, dns).
	TargetNode TargetClass = "node"
	// TargetPrimary: whichever db node is the primary when the fault is applied.
	TargetPrimary TargetClass = "primary"
	// TargetWitness: the witness node, or a fault between sites that include the witness.
	TargetWitness TargetClass = "witness"
	// TargetRegion: a whole region.
	TargetRegion TargetClass = "region"
	// TargetSites: the links between two sites.
	TargetSites TargetClass = "sites"
	// TargetWAN: every WAN link.
	TargetWAN TargetClass = "wan"
)

// Episode is one fault of a schedule: injected At after the workload has warmed up and healed For
// later (an instant kind has nothing to heal; For is 0). A flapping episode repeats: Flaps times
// on for For, off for Off between.
type Episode struct {
	Fault fault.Fault   `json:"fault"`
	At    time.Duration `json:"at"`
	For   time.Duration `json:"for"`
	// Flaps is how many times the fault is switched on (0 and 1: once); Off is the gap between.
	Flaps int           `json:"flaps,omitempty"`
	Off   time.Duration `json:"off,omitempty"`
	// Target is the class of the fault's target, for coverage.
	Target TargetClass `json:"target"`
}

// times is how many times the fault is switched on.
func (e Episode) times() int { return max(1, e.Flaps) }

// End is when the episode's fault is healed for the last time.
func (e Episode) End() time.Duration {
	n := time.Duration(e.times())
	return e.At + n*e.For + (n-1)*e.Off
}

// String is the episode in words, e.g. "+1.2s freeze primary for 3s".
func (e Episode) String() string {
	target := e.Fault.Target()
	if e.Target == TargetPrimary {
		target = fault.TargetPrimary // kill-primary names no target; it finds the primary
	}
	s := fmt.Sprintf("+%s %s %s", e.At, e.Fault.Kind, target)
	if d := fault.Describe(e.Fault); d != "" {
		s += " (" + d + ")"
	}
	if e.For > 0 {
		s += " for " + e.For.String()
	}
	if e.times() > 1 {
		s += fmt.Sprintf(", %d times %s apart", e.times(), e.Off)
	}
	return s
}

// Schedule is the faults one exploration run injects, drawn from Seed.
type Schedule struct {
	Seed     int64     `json:"seed"`
	Episodes []Episode `json:"episodes"`
}

// Overlapping reports whether episode i is active while another is.
func (s Schedule) Overlapping(i int) bool {
	a := s.Episodes[i]
	for j, b := range s.Episodes {
		if j != i && a.At < b.End() && b.At < a.End() {
			return true
		}
	}
	return false
}

// Span is when the last fault of the schedule is healed.
func (s Schedule) Span() time.Duration {
	var end time.Duration
	for _, e := range s.Episodes {
		end = max(end, e.End())
	}
	return end
}

// Generator settings. The numbers keep one schedule, with its reset, near 30 s on two cores, so
// that an hour runs at least 100 of them, while still spanning the design's timers (failover after
// 2 s, a 3 s lease by default): short faults that heal before anyone reacts and long ones that
// outlast a failover, in Jepsen's manner of mixing both.
const (
	// DefaultMaxFaults is how many faults a schedule has at most.
	DefaultMaxFaults = 3
	// latestStart is the latest time after warm-up a fault starts.
	latestStart = 6 * time.Second
	// short and long faults.
	shortMin, shortMax = 300 * time.Millisecond, 1500 * time.Millisecond
	longMin, longMax   = 2500 * time.Millisecond, 7 * time.Second
	// processGap separates two faults on processes: they never overlap, since one node's kill
	// and freeze at once, or a region kill over a kill-primary, say nothing the first does not.
	processGap = 500 * time.Millisecond
	// resolution is what times and durations are rounded to, so drill files read well.
	resolution = 100 * time.Millisecond
	// A network fault flaps one time in four: on 2 to 4 times, with 0.5 to 2 s off between, so
	// that failovers start and are interrupted (Jepsen's flip-flop generators).
	flapOneIn          = 4
	minFlaps, maxFlaps = 2, 4
	offMin, offMax     = 500 * time.Millisecond, 2 * time.Second
)

// GenConfig configures Generate.
type GenConfig struct {
	// Kinds are the fault kinds to draw from (default: DefaultKinds).
	Kinds []fault.Kind
	// MaxFaults is how many faults a schedule has at most (default DefaultMaxFaults).
	MaxFaults int
}

// DefaultKinds are every registered kind but the periodic ones (flapping): exploration flaps
// network faults itself, each switch-on a fault of its own in the drill, so that shrinking can
// drop single flaps. A periodic kind can still be asked for by name.
func DefaultKinds() []fault.Kind {
	var out []fault.Kind
	for _, k := range fault.Kinds() {
		if d, _ := fault.Lookup(k); !isPeriodic(d) {
			out = append(out, k)
		}
	}
	return out
}

func isPeriodic(d fault.Descriptor) bool {
	_, ok := d.(fault.Periodic)
	return ok
}

// Generate draws a schedule from seed: the same seed, topology and configuration give the same
// schedule. Every fault is valid for t (fault.Validate).
func Generate(t *topology.Topology, seed int64, cfg GenConfig) (Schedule, error) {
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = DefaultKinds()
	}
	maxFaults := cfg.MaxFaults
	if maxFaults <= 0 {
		maxFaults = DefaultMaxFaults
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	s := Schedule{Seed: seed}
	n := 1 + rng.IntN(maxFaults)
	var processFree time.Duration // when the last fault on processes is healed, plus processGap
	var primaryFree time.Duration // when a primary is again sure to exist after it
	// failover_after, a lease and a margin for gossip's detection and the election.
	settle := t.Design.FailoverAfter.D() + t.Design.LeaseDuration.D() + 2*time.Second
	for range n {
		kind := kinds[rng.IntN(len(kinds))]
		d, ok := fault.Lookup(kind)
		if !ok {
			return Schedule{}, fmt.Errorf("explore: unknown fault kind %q (valid: %s)", kind, strings.Join(fault.KindNames(), ", "))
		}
		var e Episode
		var err error
		// A draw the kind refuses (a one-way partition to itself, a flapping partition with a
		// latency setting) is redrawn.
		for range 500 {
			e.Fault, e.Target = draw(rng, t, d)
			e.Fault.ID = "draw" // numbered below
			if err = fault.Validate(&e.Fault, t); err == nil {
				break
			}
		}
		if err != nil {
			return Schedule{}, fmt.Errorf("explore: no valid %s fault for topology %s: %w", kind, t.Name, err)
		}
		e.At = round(time.Duration(rng.Int64N(int64(latestStart))))
		if !d.Instant() {
			if rng.IntN(2) == 0 {
				e.For = round(between(rng, shortMin, shortMax))
			} else {
				e.For = round(between(rng, longMin, longMax))
			}
		}
		if !actsOnProcesses(d) && !d.Instant() && rng.IntN(flapOneIn) == 0 {
			e.Flaps = minFlaps + rng.IntN(maxFlaps-minFlaps+1)
			e.Off = round(between(rng, offMin, offMax))
		}
		if actsOnProcesses(d) {
			e.At = max(e.At, processFree)
			if e.Target == TargetPrimary {
				// The primary must exist again: a fault aimed at it right after another fault on
				// processes would find none, and the run could not judge anything.
				e.At = max(e.At, primaryFree)
			}
			processFree = e.End() + processGap
			primaryFree = e.End() + settle
		}
		s.Episodes = append(s.Episodes, e)
	}
	// Numbered in the order they start, so a drill file reads f1, f2, f3.
	sort.SliceStable(s.Episodes, func(i, j int) bool { return s.Episodes[i].At < s.Episodes[j].At })
	for i := range s.Episodes {
		s.Episodes[i].Fault.ID = fmt.Sprintf("f%d-%s", i+1, s.Episodes[i].Fault.Kind)
	}
	return s, nil
}

// actsOnProcesses: kinds that take a node, or no target at all (kill-primary), act on processes.
// (kill and freeze of a region are process faults too; they take a node as well.)
func actsOnProcesses(d fault.Descriptor) bool {
	tg := d.Targets()
	return tg.Node || !(tg.Region || tg.Regions || tg.Optional)
}

// draw picks a target among those the kind takes, and its parameters.
func draw(rng *rand.Rand, t *topology.Topology, d fault.Descriptor) (fault.Fault, TargetClass) {
	f := fault.Fault{Kind: d.Kind(), Params: fault.Params{}}
	tg := d.Targets()
	var classes []TargetClass
	if tg.Node {
		classes = append(classes, TargetNode, TargetPrimary, TargetWitness)
	}
	if tg.Region {
		classes = append(classes, TargetRegion)
	}
	if tg.Regions {
		classes = append(classes, TargetSites)
	}
	if tg.Optional {
		classes = append(classes, TargetWAN)
	}
	if len(classes) == 0 {
		// The one kind without a target field, kill-primary, finds its target itself: the primary.
		return drawParams(rng, t, d, f), TargetPrimary
	}
	class := classes[rng.IntN(len(classes))]
	regions := t.RegionNames()
	switch class {
	case TargetNode:
		var nodes []string
		for _, n := range t.Nodes() {
			if n.Region != "" && n.Role != topology.RoleWAN {
				nodes = append(nodes, n.Name)
			}
		}
		f.Node = nodes[rng.IntN(len(nodes))]
	case TargetPrimary:
		f.Node = fault.TargetPrimary
	case TargetWitness:
		for _, n := range t.Nodes() {
			if n.Role == topology.RoleWitness {
				f.Node = n.Name
			}
		}
	case TargetRegion:
		f.Region = regions[rng.IntN(len(regions))]
	case TargetSites:
		sites := t.Sites()
		a := rng.IntN(len(sites))
		b := (a + 1 + rng.IntN(len(sites)-1)) % len(sites)
		f.Regions = []string{sites[a], sites[b]}
		slices.Sort(f.Regions)
		if slices.Contains(f.Regions, topology.WitnessSite) {
			class = TargetWitness
		}
	}
	return drawParams(rng, t, d, f), class
}

// drawParams draws the kind's parameters for a fault whose target is set.
func drawParams(rng *rand.Rand, t *topology.Topology, d fault.Descriptor, f fault.Fault) fault.Fault {
	for _, p := range d.Params() {
		if v, ok := drawParam(rng, t, p, f); ok {
			f.Params[p.Name] = v
		}
	}
	if len(f.Params) == 0 {
		f.Params = nil
	}
	return f
}

// drawParam draws a parameter's value: a required one always, an optional one when it has a
// typical range, and an optional site or choice half the time.
func drawParam(rng *rand.Rand, t *topology.Topology, p fault.Param, f fault.Fault) (string, bool) {
	lo, hi := p.Typical[0], p.Typical[1]
	if hi == 0 {
		if !p.Required && p.Type != fault.TypeSite && p.Type != fault.TypeChoice {
			return "", false
		}
		lo, hi = p.Min, p.Max
	}
	if !p.Required && rng.IntN(2) == 0 {
		return "", false
	}
	switch p.Type {
	case fault.TypeDuration:
		if hi == 0 {
			hi = max(10*lo, int64(time.Second))
		}
		sign := time.Duration(1)
		if lo < 0 {
			// Either way (a clock ahead or behind): a side, then a size up to that side's bound.
			if rng.IntN(2) == 0 {
				sign, hi = -1, -lo
			}
			lo = int64(10 * time.Millisecond)
		}
		// Log-uniform: 20 ms and 200 ms are as different as 200 ms and 2 s.
		l, h := math.Log(float64(max(lo, int64(time.Millisecond)))), math.Log(float64(hi))
		v := sign * time.Duration(math.Exp(l+rng.Float64()*(h-l))).Round(time.Millisecond)
		return v.String(), true
	case fault.TypeInt:
		if hi == 0 {
			hi = lo + 100
		}
		return fmt.Sprint(lo + rng.Int64N(hi-lo+1)), true
	case fault.TypeChoice:
		return p.Choices[rng.IntN(len(p.Choices))], true
	case fault.TypeSite:
		var sites []string
		for _, s := range t.Sites() {
			if s != f.Region && !slices.Contains(f.Regions, s) {
				sites = append(sites, s)
			}
		}
		if len(sites) == 0 {
			return "", false
		}
		return sites[rng.IntN(len(sites))], true
	}
	return "", false
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

func round(d time.Duration) time.Duration { return d.Round(resolution) }

// Beyond names, once each, the design assumptions the schedule's faults break (none: the design
// claims to survive every fault in it).
func (s Schedule) Beyond(t *topology.Topology) []string {
	var out []string
	for _, e := range s.Episodes {
		if a := fault.Beyond(e.Fault, t); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
