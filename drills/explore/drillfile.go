package explore

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// The frame around a schedule's faults. The reset gate and the final convergence poll, they do
// not wait out fixed times: a cluster that is already steady passes the gate at once.
const (
	// resetWithin bounds the gate before a schedule: the previous schedule's faults are undone,
	// so a cluster that does not converge in this time counts as not reset.
	resetWithin = 60 * time.Second
	// warmUp is how long the workload runs before the first fault, so that every client has
	// written and replication has a steady lag to measure.
	warmUp = 2 * time.Second
	// convergeWithin bounds the return to a steady state after the last heal: the design must
	// find one primary, catch every replica up and send users home again (failover after 2 s,
	// a 3 s lease and DNS TTLs by default take well under half of it).
	convergeWithin = 30 * time.Second
	// settle keeps the workload running briefly after convergence, so writes reach the new
	// steady state before the final read.
	settle = time.Second
	// rpoMargin is the time a runtime takes to act on a fault beyond the design's lease: up to
	// about 1.5 s for Docker's kill through the engine on a loaded host (measured in CI).
	rpoMargin = 1500 * time.Millisecond
)

// Promises are the budgets a schedule is judged against: what the design promises whatever the
// faults, not what a scripted drill tolerates. Every run judges one primary per epoch, log
// matching (equal entries wherever two logs hold the same LSN at the end), no split
// brain and (with read-your-writes) no stale read of a client's own write. Semi-synchronous
// replication promises no acknowledged write lost; asynchronous replication with lease fencing
// promises that a lost write was acknowledged within the replication lag before the fault or
// within the lease after it (rpo_beyond_lag_s). Reads from the primary with semi-sync and fencing
// promise linearizability per key. A known-bad setting (fencing: none) is judged by the same
// promises, which is how exploration finds what it breaks.
func Promises(t *topology.Topology) check.Budgets {
	b := check.Budgets{
		check.BudgetEpochsWithTwoPrimaries: 0,
		check.BudgetLogMismatches:          0,
		check.BudgetSplitBrain:             0,
	}
	d := t.Design
	if d.ReadYourWrites {
		b[check.BudgetStaleReads] = 0
	}
	if d.Replication == topology.ReplicationSemiSync {
		b[check.BudgetLostAckedWrites] = 0
	} else {
		b[check.BudgetRPOBeyondLag] = (d.LeaseDuration.D() + rpoMargin).Seconds()
	}
	if d.ReadFrom == topology.ReadFromPrimary && d.Replication == topology.ReplicationSemiSync && d.Fencing == topology.FencingLease {
		b[check.BudgetNonLinearizableKeys] = 0
	}
	return b
}

// designSettings are the settings a schedule's drill file carries, so that it replays on the
// same design whatever the default topology says.
func designSettings(t *topology.Topology) map[string]string {
	d := t.Design
	return map[string]string{
		"fencing":          d.Fencing,
		"replication":      d.Replication,
		"read_from":        d.ReadFrom,
		"read_your_writes": strconv.FormatBool(d.ReadYourWrites),
		"failover_after":   d.FailoverAfter.D().String(),
		"lease_duration":   d.LeaseDuration.D().String(),
	}
}

// DrillFile writes the schedule as a drill file: a reset gate, the workload warming up, the
// faults and heals at their times, a convergence check, and a final read. The drill is judged
// by Promises and replays with `drill run FILE --seed S`.
func (s Schedule) DrillFile(name string, t *topology.Topology, budgets check.Budgets) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by drill explore from schedule seed %d; replay with: drill run FILE --seed %d\n", s.Seed, s.Seed)
	fmt.Fprintf(&b, "name: %s\n", name)
	b.WriteString("description: >-\n")
	for _, e := range s.Episodes {
		fmt.Fprintf(&b, "  %s;\n", e)
	}
	b.WriteString("  judged by what the design promises.\n")
	b.WriteString("settings:\n")
	settings := designSettings(t)
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "  %s: %s\n", k, settings[k])
	}
	b.WriteString("budgets:\n")
	for _, k := range slices.Sorted(maps.Keys(budgets)) {
		fmt.Fprintf(&b, "  %s: %s\n", k, strconv.FormatFloat(budgets[k], 'f', -1, 64))
	}
	b.WriteString("workload:\n  clients_per_region: 2\n  write_rate: 10\n  read_after_write: true\n  read_others: true\n")
	b.WriteString("steps:\n")
	fmt.Fprintf(&b, "  - steady: {within: %s, expect: [%s]}\n", resetWithin, spec.CondConverged)
	b.WriteString("  - workload: start\n")
	type event struct {
		at   time.Duration
		heal bool
		e    Episode
	}
	var events []event // times from the workload's start
	for _, e := range s.Episodes {
		base := e.Fault.ID
		for k := range e.times() {
			on := e
			if e.times() > 1 {
				on.Fault.ID = fmt.Sprintf("%s-%d", base, k+1) // each switch-on is a fault of its own
			}
			at := warmUp + e.At + time.Duration(k)*(e.For+e.Off)
			events = append(events, event{at: at, e: on})
			if e.For > 0 {
				events = append(events, event{at: at + e.For, heal: true, e: on})
			}
		}
	}
	// In time order; at one instant heals go first, so a target is never faulted twice at once.
	sort.SliceStable(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].heal && !events[j].heal
	})
	var now time.Duration
	for _, ev := range events {
		if ev.at > now {
			fmt.Fprintf(&b, "  - wait: %s\n", ev.at-now)
			now = ev.at
		}
		if ev.heal {
			fmt.Fprintf(&b, "  - heal: %s\n", ev.e.Fault.ID)
			continue
		}
		fmt.Fprintf(&b, "  - inject: {%s}\n", injectFields(ev.e))
	}
	fmt.Fprintf(&b, "  - expect: {condition: %s, within: %s}\n", spec.CondConverged, convergeWithin)
	fmt.Fprintf(&b, "  - wait: %s\n", settle)
	b.WriteString("  - workload: stop\n")
	b.WriteString("  - verify: {final_read: true}\n")
	return []byte(b.String())
}

// injectFields is an inject step's fields in flow style.
func injectFields(e Episode) string {
	f := e.Fault
	fields := []string{"fault: " + string(f.Kind), "id: " + f.ID}
	switch {
	case f.Node != "":
		fields = append(fields, "target: "+f.Node)
	case f.Region != "":
		fields = append(fields, "region: "+f.Region)
	case len(f.Regions) > 0:
		fields = append(fields, "regions: ["+strings.Join(f.Regions, ", ")+"]")
	}
	for _, k := range slices.Sorted(maps.Keys(f.Params)) {
		fields = append(fields, k+": "+f.Params[k])
	}
	return strings.Join(fields, ", ")
}
