package fault

import (
	"fmt"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/topology"
)

// KindClockDrift makes a db node's clock run fast or slow until healed, e.g.
// `inject: {fault: clock-drift, target: primary, percent: -20}`: a primary whose clock runs slow
// holds its lease longer than the voters grant it.
const KindClockDrift Kind = "clock-drift"

// MaxDriftWithin is the largest drift, in percent either way, the lease margin absorbs: a primary
// running 10 % slow makes its 0.9-lease last one whole lease of real time.
const MaxDriftWithin = 10

func init() {
	register(clockDrift{clockKind{dbNodeKind: dbNodeKind{kind: KindClockDrift},
		summary: "make a db node's clock run fast or slow (its leases are measured on it) until healed",
		shift:   func(p Params) clock.Shift { return clock.Shift{DriftPPM: int64(p.Int(ParamPercent)) * 10_000} }}})
}

type clockDrift struct{ clockKind }

func (clockDrift) Params() []Param {
	return []Param{{Name: ParamPercent, Type: TypeInt, Required: true, Min: -90, Max: 400,
		Help: "how much faster the clock runs, in percent (negative: slower), e.g. percent: -20",
		// Either side of the 10 % the lease margin absorbs, both ways.
		Typical: [2]int64{-30, 30}}}
}

func (c clockDrift) Check(f Fault, t *topology.Topology) error {
	if f.Params.Int(ParamPercent) == 0 {
		return fmt.Errorf("fault %s: a drift of 0 %% changes nothing", f.ID)
	}
	return c.dbNodeKind.Check(f, t)
}

func (clockDrift) Describe(f Fault) string {
	if p := f.Params.Int(ParamPercent); p < 0 {
		return fmt.Sprintf("clock %d %% slow", -p)
	}
	return fmt.Sprintf("clock %d %% fast", f.Params.Int(ParamPercent))
}

func (clockDrift) Beyond(f Fault, t *topology.Topology) string {
	if p := f.Params.Int(ParamPercent); p > MaxDriftWithin || -p > MaxDriftWithin {
		return clockAssumption(t)
	}
	return ""
}

func (clockDrift) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-clock-drift", Kind: KindClockDrift, Node: exampleDBNode(t), Params: Params{ParamPercent: "5"}}
}
