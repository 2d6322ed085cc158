package check

import (
	"slices"
	"sort"

	"github.com/drillworks/drill/drills/history"
)

// Checker is one check of a drill's history. Each checker is one file that registers itself at
// init (the registry is read-only afterwards): the budget names a drill file may set, the report's
// metrics, its HTML rows, the JUnit cases and the game-day trend all come from the registered
// checkers.
type Checker interface {
	// Name is the check's name, as results and reports give it.
	Name() string
	// Budget is the budget key a drill file sets for it; its unit is part of the name.
	Budget() string
	// Unit is the unit of its measurement and budget.
	Unit() string
	// Metrics are the headline numbers it exports.
	Metrics() []Metric
	// Check judges a history. The result's Metrics hold the values of the checker's Metrics
	// that were measured.
	Check(ops []history.Op, cfg Config) Result
}

// Metric is one headline number in the catalogue: report.json's metrics, the report's HTML rows
// and, for trend metrics, the game-day history's columns and charts.
type Metric struct {
	// Name is the metric's name (the budget's name where it has one), e.g. dns_failover_s.
	Name string
	// Title says what it is, for people.
	Title string
	// Short is a one-word label for terminal lists, e.g. "dns".
	Short string
	// Unit is its unit.
	Unit string
	// PerRegion: one value per client region (a game day follows the largest).
	PerRegion bool
	// Trend: the game-day history follows it across runs and flags regressions.
	Trend bool
	// NoiseFloor is the smallest increase the game-day history counts as a regression.
	NoiseFloor float64
}

// MetricValue is one measured value of a metric: of one region for a per-region metric.
type MetricValue struct {
	Name   string  `json:"name"`
	Region string  `json:"region,omitempty"`
	Value  float64 `json:"value"`
}

// registered holds the checkers in report order, filled at init.
var registered []registration

type registration struct {
	order int
	c     Checker
}

// declared is a Checker made from its declaration: one metric, which is also its budget and
// gives its unit.
type declared struct {
	name   string
	metric Metric
	check  func(ops []history.Op, cfg Config) Result
}

func (d declared) Name() string                              { return d.name }
func (d declared) Budget() string                            { return d.metric.Name }
func (d declared) Unit() string                              { return d.metric.Unit }
func (d declared) Metrics() []Metric                         { return []Metric{d.metric} }
func (d declared) Check(ops []history.Op, cfg Config) Result { return d.check(ops, cfg) }

// registerJudge registers a checker whose judgement's measured value is its metric's value (every
// checker but one): judge is the exported check function, its evidence is kept in the result.
func registerJudge[E any](order int, name string, m Metric, judge func([]history.Op, Config) (Result, E)) {
	register(order, declared{name: name, metric: m, check: func(ops []history.Op, cfg Config) Result {
		r, _ := judge(ops, cfg)
		return measured(r, m.Name)
	}})
}

// registerInvariant registers a checker of an invariant of the design: like registerJudge, but
// judged against 0 when the drill sets no budget for its metric.
func registerInvariant[E any](order int, name string, m Metric, judge func([]history.Op, Config) (Result, E)) {
	registerJudge(order, name, m, func(ops []history.Op, cfg Config) (Result, E) {
		return judge(ops, cfg.invariant(m.Name))
	})
}

// register adds a checker at its place in reports; duplicates are programming errors.
func register(order int, c Checker) {
	for _, r := range registered {
		if r.c.Name() == c.Name() || r.order == order {
			panic("check: checker registered twice: " + c.Name())
		}
	}
	registered = append(registered, registration{order, c})
	sort.Slice(registered, func(i, j int) bool { return registered[i].order < registered[j].order })
}

// Checkers lists the registered checkers in report order.
func Checkers() []Checker {
	out := make([]Checker, len(registered))
	for i, r := range registered {
		out[i] = r.c
	}
	return out
}

// Run runs every registered checker, in report order.
func Run(ops []history.Op, cfg Config) []Result {
	var out []Result
	for _, c := range Checkers() {
		out = append(out, c.Check(ops, cfg))
	}
	return out
}

// Metrics is the catalogue: every registered checker's metrics, in report order.
func Metrics() []Metric {
	var out []Metric
	for _, c := range Checkers() {
		out = append(out, c.Metrics()...)
	}
	return out
}

// TrendMetrics are the catalogue's metrics that game days follow.
func TrendMetrics() []Metric {
	var out []Metric
	for _, m := range Metrics() {
		if m.Trend {
			out = append(out, m)
		}
	}
	return out
}

// BudgetNames lists every budget a drill file may set, sorted.
func BudgetNames() []string {
	var names []string
	for _, c := range Checkers() {
		if b := c.Budget(); b != "" && !slices.Contains(names, b) {
			names = append(names, b)
		}
	}
	sort.Strings(names)
	return names
}

// IsBudgetName reports whether name is one of BudgetNames.
func IsBudgetName(name string) bool { return slices.Contains(BudgetNames(), name) }

// measured sets a result's one metric from its measurement (nothing when there is none).
func measured(r Result, metric string) Result {
	if !r.NoData {
		r.Metrics = append(r.Metrics, MetricValue{Name: metric, Value: r.Measured})
	}
	return r
}
