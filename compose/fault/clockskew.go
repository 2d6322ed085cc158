package fault

import (
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/topology"
)

// KindClockSkew steps a db node's clock ahead or behind until healed, e.g.
// `inject: {fault: clock-skew, target: primary, offset: -500ms}`. A primary whose clock steps back
// thinks its lease runs longer; a voter whose clock steps ahead thinks a lease ran out sooner.
const KindClockSkew Kind = "clock-skew"

// ParamOffset is how far a skewed clock is ahead (positive) or behind (negative).
const ParamOffset = "offset"

func init() {
	register(clockSkew{clockKind{dbNodeKind: dbNodeKind{kind: KindClockSkew},
		summary: "step a db node's clock ahead or behind (its leases are measured on it) until healed",
		shift:   func(p Params) clock.Shift { return clock.Shift{Offset: p.Duration(ParamOffset)} }}})
}

type clockSkew struct{ clockKind }

func (clockSkew) Params() []Param {
	return []Param{{Name: ParamOffset, Type: TypeDuration, Required: true,
		Min: int64(-time.Minute), Max: int64(time.Minute),
		Help: "how far the clock is ahead (or, negative, behind), e.g. offset: -500ms",
		// Either side of a 300 ms lease margin, both ways.
		Typical: [2]int64{int64(-800 * time.Millisecond), int64(800 * time.Millisecond)}}}
}

func (clockSkew) Describe(f Fault) string {
	if d := f.Params.Duration(ParamOffset); d < 0 {
		return (-d).String() + " behind"
	}
	return f.Params.Duration(ParamOffset).String() + " ahead"
}

func (clockSkew) Beyond(f Fault, t *topology.Topology) string {
	if d := f.Params.Duration(ParamOffset); d > LeaseMargin(t) || -d > LeaseMargin(t) {
		return clockAssumption(t)
	}
	return ""
}

func (clockSkew) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-clock-skew", Kind: KindClockSkew, Node: exampleDBNode(t), Params: Params{ParamOffset: "200ms"}}
}
