// Package check judges a recorded drill history (package history) against the budgets of a drill
// file, the way Jepsen checkers judge a history: each checker reads the whole history after the
// run and returns a Result (pass, fail or unknown, the measured value against its budget, a
// one-line detail) and typed evidence naming the operations behind the verdict.
//
// The checkers measure what a multi-region failover costs its users: lost acknowledged writes and
// the RPO, write unavailability per client region (RTO), writes accepted by two primaries at once
// (split brain), stale reads after a client's own write, GeoDNS failover and fail-back timing, and
// replication lag. A checker without data, or without a budget, says "unknown" and why; it never
// passes by default.
package check

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// Budgets maps a budget name (BudgetNames) to its limit; a measured value passes when <= limit.
type Budgets map[string]float64

// Defaults of Config.
const (
	DefaultRunGap      = time.Second
	DefaultMaxExamples = 10
)

// Config is what the checkers need besides the history.
type Config struct {
	// Budgets are the drill file's budgets; a check whose budget is absent reports verdict.Unknown.
	Budgets Budgets
	// RunGap splits a primary's acknowledged writes into runs for SplitBrain: a gap longer than
	// this between two of its writes starts a new run. Zero means DefaultRunGap.
	RunGap time.Duration
	// WorkloadEnd is the end of the workload, where WriteUnavailability's window ends. Zero means
	// the time of the last client op in the history.
	WorkloadEnd time.Time
	// MaxExamples bounds the examples listed in details and evidence. Zero means DefaultMaxExamples.
	MaxExamples int
	// LinearizabilityTimeout bounds the linearizability search of one history. Zero means
	// DefaultLinearizabilityTimeout.
	LinearizabilityTimeout time.Duration
}

// Attachment is evidence that comes with a file for the report directory (a visualization).
type Attachment interface {
	// Attachment is the file's name and content; an empty name means none.
	Attachment() (name string, content []byte)
}

func (c Config) runGap() time.Duration {
	if c.RunGap > 0 {
		return c.RunGap
	}
	return DefaultRunGap
}

func (c Config) maxExamples() int {
	if c.MaxExamples > 0 {
		return c.MaxExamples
	}
	return DefaultMaxExamples
}

// Result is one checker's verdict.
type Result struct {
	// Name is the check's name (its Checker's Name).
	Name string `json:"name"`
	// Verdict is verdict.Pass, verdict.Fail or verdict.Unknown.
	Verdict verdict.Verdict `json:"verdict"`
	// Measured is the measured value, in Unit.
	Measured float64 `json:"measured"`
	// Budget is the limit Measured was judged against, in Unit; meaningful only if HasBudget.
	Budget float64 `json:"budget"`
	// HasBudget is false when the drill file set no budget for this check.
	HasBudget bool `json:"has_budget"`
	// Unit is the unit of Measured and Budget: s, ms, writes or reads.
	Unit string `json:"unit"`
	// Detail is one line saying what was found, or why the check is unknown.
	Detail string `json:"detail"`
	// NoData is true when nothing could be measured (Verdict is then verdict.Unknown and Measured 0).
	NoData bool `json:"no_data,omitempty"`
	// Evidence is the checker's typed evidence (*LostWritesEvidence, ...); nil when the history
	// could not be analysed at all.
	Evidence any `json:"evidence,omitempty"`
	// Metrics are the headline numbers the check measured (its Checker's Metrics); empty when
	// it measured nothing.
	Metrics []MetricValue `json:"metrics,omitempty"`
}

// judge sets the verdict of a measured result from its budget.
func (c Config) judge(r *Result, budgetName string) {
	b, ok := c.Budgets[budgetName]
	r.Budget, r.HasBudget = b, ok
	switch {
	case !ok:
		r.Verdict = verdict.Unknown
		r.Detail += fmt.Sprintf(" (not judged: no %s budget in the drill)", budgetName)
	case r.Measured <= b:
		r.Verdict = verdict.Pass
	default:
		r.Verdict = verdict.Fail
	}
}

// invariant is c with budget set to 0 unless the drill set it: an invariant of the design is
// judged on every run.
func (c Config) invariant(budget string) Config {
	if _, ok := c.Budgets[budget]; ok {
		return c
	}
	b := make(Budgets, len(c.Budgets)+1)
	for k, v := range c.Budgets {
		b[k] = v
	}
	b[budget] = 0
	c.Budgets = b
	return c
}

// unknown is a result that could not be measured.
func (c Config) unknown(name, unit, budgetName, detail string, evidence any) Result {
	b, ok := c.Budgets[budgetName]
	return Result{Name: name, Verdict: verdict.Unknown, Budget: b, HasBudget: ok, Unit: unit, Detail: detail, NoData: true, Evidence: evidence}
}

// seconds is a duration in seconds, rounded to the millisecond.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// clock formats times relative to the start of the history, e.g. +12.345s.
type clock time.Time

func newClock(ops []history.Op) clock {
	first, _ := history.Span(ops)
	return clock(first)
}

func (c clock) at(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("+%.3fs", t.Sub(time.Time(c)).Seconds())
}

// list joins up to max items, noting how many were left out.
func list(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}

// sortedSet lists a set's members, sorted.
func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
