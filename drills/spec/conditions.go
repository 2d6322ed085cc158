package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Condition kinds.
const (
	// CondDNSPointsTo: GeoDNS answers for the region's clients point at REGION.
	CondDNSPointsTo = "dns_points_to"
	// CondDNSPointsAwayFrom: no client region is sent to REGION any more.
	CondDNSPointsAwayFrom = "dns_points_away_from"
	// CondPrimaryIn: the database primary (highest epoch, alive) is in REGION.
	CondPrimaryIn = "primary_in"
	// CondPrimaryOutside: there is a primary and it is not in REGION (a drill that takes REGION
	// out need not say where the primary goes: any other region of the topology will do).
	CondPrimaryOutside = "primary_outside"
	// CondRegionHealthy: every node of REGION is alive and healthy in gossip.
	CondRegionHealthy = "region_healthy"
	// CondRegionUnhealthy: gossip sees REGION as down.
	CondRegionUnhealthy = "region_unhealthy"
	// CondReplicaCaughtUp: REGION's database is a replica with zero lag.
	CondReplicaCaughtUp = "replica_caught_up"
	// CondNoFailover: the primary and epoch are what they were when the step began.
	CondNoFailover = "no_failover"
	// CondConverged: the whole cluster is back to a steady state, wherever its primary is now:
	// every node alive, every region healthy, one primary, every other database a caught-up
	// replica of its epoch, and every region's users sent to their own region. Drills that
	// must work on any topology, and exploration between schedules, wait for it.
	CondConverged = "converged"
	// CondQueueBacklog: REGION's queue is alive and holds at least one job no worker has
	// acknowledged (a backlog to lose).
	CondQueueBacklog = "queue_backlog"
	// CondQueueDrained: every region's queue is alive and holds no job: every published job
	// has been worked and acknowledged.
	CondQueueDrained = "queue_drained"
)

// conditionArgs is how many arguments (a region) each condition takes.
func conditionArgs() map[string]int {
	return map[string]int{
		CondDNSPointsTo:       1,
		CondDNSPointsAwayFrom: 1,
		CondPrimaryIn:         1,
		CondPrimaryOutside:    1,
		CondRegionHealthy:     1,
		CondRegionUnhealthy:   1,
		CondReplicaCaughtUp:   1,
		CondNoFailover:        0,
		CondConverged:         0,
		CondQueueBacklog:      1,
		CondQueueDrained:      0,
	}
}

// ConditionKinds lists the condition kinds with their arguments, sorted, e.g.
// "dns_points_away_from REGION".
func ConditionKinds() []string {
	var out []string
	for kind, n := range conditionArgs() {
		if n == 1 {
			kind += " REGION"
		}
		out = append(out, kind)
	}
	sort.Strings(out)
	return out
}

// Condition is a parsed condition such as "dns_points_away_from us-east".
type Condition struct {
	// Kind is one of the Cond* constants.
	Kind string
	// Region is the condition's region; empty for no_failover.
	Region string
	// Pos is where the condition is in the file.
	Pos Pos
}

// String is the condition as written canonically.
func (c Condition) String() string {
	if c.Region == "" {
		return c.Kind
	}
	return c.Kind + " " + c.Region
}

// namePattern is what region, node and drill names look like.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ParseCondition parses a condition string strictly: a known kind followed by exactly the
// arguments it takes, separated by blanks.
func ParseCondition(text string) (Condition, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Condition{}, fmt.Errorf("empty condition (valid: %s)", strings.Join(ConditionKinds(), ", "))
	}
	kind, args := fields[0], fields[1:]
	n, known := conditionArgs()[kind]
	switch {
	case !known:
		return Condition{}, fmt.Errorf("unknown condition %q (valid: %s)", kind, strings.Join(ConditionKinds(), ", "))
	case n == 0 && len(args) > 0:
		return Condition{}, fmt.Errorf("%s takes no argument, got %q", kind, strings.Join(args, " "))
	case n == 1 && len(args) == 0:
		return Condition{}, fmt.Errorf("%s needs a region, e.g. %q", kind, kind+" us-east")
	case n == 1 && len(args) > 1:
		return Condition{}, fmt.Errorf("%s takes one region, got %q", kind, strings.Join(args, " "))
	}
	c := Condition{Kind: kind}
	if n == 1 {
		if !namePattern.MatchString(args[0]) {
			return Condition{}, fmt.Errorf("%q is not a region name (lower-case letters, digits and dashes)", args[0])
		}
		c.Region = args[0]
	}
	return c, nil
}
