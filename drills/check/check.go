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
)

// Verdicts.
const (
	// Pass: measured within budget.
	Pass = "pass"
	// Fail: measured over budget.
	Fail = "fail"
	// Unknown: not judged (no data, no budget, or a malformed history); Detail says why.
	Unknown = "unknown"
)

// Check names (Result.Name).
const (
	NameDNSFailover         = "dns_failover"
	NameWriteUnavailability = "write_unavailability"
	NameLostWrites          = "lost_acked_writes"
	NameRPO                 = "rpo"
	NameSplitBrain          = "split_brain"
	NameStaleReads          = "stale_reads"
	NameReplicationLag      = "replication_lag"
	NameDNSFailback         = "dns_failback"
)

// Budget names, as written in a drill file's budgets; the unit is part of the name.
const (
	// BudgetDNSFailover: seconds from a region outage to the first DNS answer pointing away.
	BudgetDNSFailover = "dns_failover_s"
	// BudgetRTO: longest write unavailability of any client region, in seconds.
	BudgetRTO = "rto_s"
	// BudgetLostAckedWrites: acknowledged writes missing from the final read.
	BudgetLostAckedWrites = "lost_acked_writes"
	// BudgetRPO: the time span of lost acknowledged writes, in seconds.
	BudgetRPO = "rpo_s"
	// BudgetSplitBrain: seconds during which two primaries both acknowledged writes.
	BudgetSplitBrain = "split_brain_s"
	// BudgetStaleReads: reads that missed the reading client's own acknowledged write.
	BudgetStaleReads = "stale_reads"
	// BudgetReplicationLagP99: p99 replication lag while no fault is active, in milliseconds.
	BudgetReplicationLagP99 = "replication_lag_p99_ms"
	// BudgetDNSFailbackEarly: seconds by which DNS pointed back at a healed region before its
	// database caught up (0 = never before).
	BudgetDNSFailbackEarly = "dns_failback_early_s"
)

// BudgetNames lists every budget a drill file may set, sorted.
func BudgetNames() []string {
	names := []string{BudgetDNSFailover, BudgetRTO, BudgetLostAckedWrites, BudgetRPO, BudgetSplitBrain,
		BudgetStaleReads, BudgetReplicationLagP99, BudgetDNSFailbackEarly}
	sort.Strings(names)
	return names
}

// IsBudgetName reports whether name is one of BudgetNames.
func IsBudgetName(name string) bool {
	for _, n := range BudgetNames() {
		if n == name {
			return true
		}
	}
	return false
}

// Budgets maps a budget name (BudgetNames) to its limit; a measured value passes when <= limit.
type Budgets map[string]float64

// Defaults of Config.
const (
	DefaultRunGap      = time.Second
	DefaultMaxExamples = 10
)

// Config is what the checkers need besides the history.
type Config struct {
	// Budgets are the drill file's budgets; a check whose budget is absent reports Unknown.
	Budgets Budgets
	// RunGap splits a primary's acknowledged writes into runs for SplitBrain: a gap longer than
	// this between two of its writes starts a new run. Zero means DefaultRunGap.
	RunGap time.Duration
	// WorkloadEnd is the end of the workload, where WriteUnavailability's window ends. Zero means
	// the time of the last client op in the history.
	WorkloadEnd time.Time
	// MaxExamples bounds the examples listed in details and evidence. Zero means DefaultMaxExamples.
	MaxExamples int
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
	// Name is the check's name (Name* constants).
	Name string `json:"name"`
	// Verdict is Pass, Fail or Unknown.
	Verdict string `json:"verdict"`
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
	// NoData is true when nothing could be measured (Verdict is then Unknown and Measured 0).
	NoData bool `json:"no_data,omitempty"`
	// Evidence is the checker's typed evidence (*LostWritesEvidence, ...); nil when the history
	// could not be analysed at all.
	Evidence any `json:"evidence,omitempty"`
}

// Run runs every checker, in a fixed order: dns_failover, write_unavailability,
// lost_acked_writes, rpo, split_brain, stale_reads, replication_lag, dns_failback.
func Run(ops []history.Op, cfg Config) []Result {
	dnsFailover, _ := DNSFailover(ops, cfg)
	rto, _ := WriteUnavailability(ops, cfg)
	lost, _ := LostWrites(ops, cfg)
	rpo, _ := RPO(ops, cfg)
	split, _ := SplitBrain(ops, cfg)
	stale, _ := StaleReads(ops, cfg)
	lag, _ := ReplicationLag(ops, cfg)
	failback, _ := DNSFailback(ops, cfg)
	return []Result{dnsFailover, rto, lost, rpo, split, stale, lag, failback}
}

// judge sets the verdict of a measured result from its budget.
func (c Config) judge(r *Result, budgetName string) {
	b, ok := c.Budgets[budgetName]
	r.Budget, r.HasBudget = b, ok
	switch {
	case !ok:
		r.Verdict = Unknown
		r.Detail += fmt.Sprintf(" (not judged: no %s budget in the drill)", budgetName)
	case r.Measured <= b:
		r.Verdict = Pass
	default:
		r.Verdict = Fail
	}
}

// unknown is a result that could not be measured.
func (c Config) unknown(name, unit, budgetName, detail string, evidence any) Result {
	b, ok := c.Budgets[budgetName]
	return Result{Name: name, Verdict: Unknown, Budget: b, HasBudget: ok, Unit: unit, Detail: detail, NoData: true, Evidence: evidence}
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
