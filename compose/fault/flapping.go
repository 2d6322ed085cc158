package fault

import (
	"fmt"
	"slices"
	"time"

	"github.com/drillworks/drill/topology"
)

// KindFlapping switches a network fault on and off until healed, e.g.
// `inject: {fault: flapping, of: partition, regions: [us-east, eu-west], on: 2s, off: 1s}`: the
// fault is on for `on`, off for `off`, on again, and so on. It takes the targets and settings of
// the network fault it flaps (any kind that acts on links rather than on nodes). The injector runs
// the switching (Periodic); the history records one fault from the start to the heal.
const KindFlapping Kind = "flapping"

// Parameter names of the flapping kind.
const (
	ParamOf  = "of"
	ParamOn  = "on"
	ParamOff = "off"
)

func init() { register(flapping{}) }

type flapping struct{ Base }

// Periodic is a kind whose effects come and go while it is active: the injector switches them off
// after On and on again after Off, until the fault is healed. Its Effects hold only while on
// (Env.Off says when a fault is in its off phase).
type Periodic interface {
	Period(f Fault) (on, off time.Duration)
}

func (flapping) Kind() Kind { return KindFlapping }

func (flapping) Summary() string {
	return "switch a network fault (of: partition, blackhole, ...) on and off until healed"
}

// flappable are the kinds a flapping fault can switch: those that act on links, not on nodes.
func flappable() []string {
	var out []string
	for _, k := range Kinds() {
		d, _ := Lookup(k)
		tg := d.Targets()
		if k != KindFlapping && !tg.Node && (tg.Region || tg.Regions || tg.Optional) && !d.Instant() {
			out = append(out, string(k))
		}
	}
	return out
}

func (flapping) Targets() Targets {
	return Targets{Region: true, Regions: true, Optional: true,
		Help: "the targets of the fault it flaps: a region, regions: [a, b], or nothing (the whole WAN)"}
}

// Params are of, on and off, then every setting of every flappable kind (the one named by of
// checks its own).
func (flapping) Params() []Param {
	ps := []Param{
		{Name: ParamOf, Type: TypeChoice, Required: true, Choices: flappable(),
			Help: "the network fault to switch on and off, e.g. of: partition"},
		{Name: ParamOn, Type: TypeDuration, Required: true, Min: int64(100 * time.Millisecond), Max: int64(time.Hour),
			Help: "how long it stays on each time, e.g. on: 2s", Typical: [2]int64{int64(300 * time.Millisecond), int64(3 * time.Second)}},
		{Name: ParamOff, Type: TypeDuration, Required: true, Min: int64(100 * time.Millisecond), Max: int64(time.Hour),
			Help: "how long it stays off between, e.g. off: 1s", Typical: [2]int64{int64(300 * time.Millisecond), int64(2 * time.Second)}},
	}
	for _, k := range flappable() {
		d, _ := Lookup(Kind(k))
		for _, p := range d.Params() {
			if !slices.ContainsFunc(ps, func(q Param) bool { return q.Name == p.Name }) {
				p.Required = false // required by its own kind, which checks it
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// inner is the fault a flapping fault switches: same id, targets and resolved nodes, its kind
// and its own settings.
func inner(f Fault) Fault {
	in := f.Clone()
	in.Kind = Kind(f.Params[ParamOf])
	delete(in.Params, ParamOf)
	delete(in.Params, ParamOn)
	delete(in.Params, ParamOff)
	return in
}

func (flapping) Check(f Fault, t *topology.Topology) error {
	in := inner(f)
	if err := Validate(&in, t); err != nil {
		return fmt.Errorf("flapping: %w", err)
	}
	return nil
}

func (flapping) Period(f Fault) (on, off time.Duration) {
	return f.Params.Duration(ParamOn), f.Params.Duration(ParamOff)
}

func (flapping) TakesRegionOut(f Fault) bool { return TakesRegionOut(inner(f)) }

func (flapping) Describe(f Fault) string {
	in := inner(f)
	what := string(in.Kind)
	if d := Describe(in); d != "" {
		what += " " + d
	}
	return fmt.Sprintf("%s, on %s / off %s", what, f.Params.Duration(ParamOn), f.Params.Duration(ParamOff))
}

func (flapping) Beyond(f Fault, t *topology.Topology) string { return Beyond(inner(f), t) }

// Effects are the inner fault's while on, none while off.
func (flapping) Effects(f Fault, env Env) Effects {
	if env.Off != nil && env.Off(f.ID) {
		return Effects{}
	}
	in := inner(f)
	d, ok := Lookup(in.Kind)
	if !ok {
		return Effects{}
	}
	return d.Effects(in, env)
}

// Example flaps a partition of the quiet region from the others, on for long enough that a
// conformance check sees it on.
func (flapping) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-flapping", Kind: KindFlapping, Region: QuietRegion(t),
		Params: Params{ParamOf: string(KindPartition), ParamOn: "1m0s", ParamOff: "1s"}}
}
