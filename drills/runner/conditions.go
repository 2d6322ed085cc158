package runner

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/drills/verdict"
	"github.com/drillworks/drill/topology"
)

// pollEvery is how often conditions are re-evaluated.
const pollEvery = 100 * time.Millisecond

// baseline is the system as a step found it (for no_failover).
type baseline struct {
	primary string
	epoch   uint64
}

func (r *run) baselineNow(ctx context.Context) baseline {
	st, err := r.sys.Status(ctx)
	if err != nil {
		return baseline{}
	}
	p := st.Primary(r.topo, false)
	return baseline{primary: p.Name, epoch: p.Epoch}
}

// holds evaluates one condition now; the string says what was seen.
func (r *run) holds(ctx context.Context, c spec.Condition, base baseline) (bool, string) {
	switch c.Kind {
	case spec.CondDNSPointsAwayFrom:
		for _, region := range r.topo.RegionNames() {
			got, _, err := r.prober.Probe(ctx, region)
			if err != nil {
				return false, fmt.Sprintf("users near %s cannot resolve: %v", region, err)
			}
			if got == c.Region {
				return false, fmt.Sprintf("users near %s are still sent to %s", region, got)
			}
		}
		return true, "no users are sent to " + c.Region
	case spec.CondDNSPointsTo:
		got, _, err := r.prober.Probe(ctx, c.Region)
		if err != nil {
			return false, fmt.Sprintf("users near %s cannot resolve: %v", c.Region, err)
		}
		return got == c.Region, fmt.Sprintf("users near %s are sent to %s", c.Region, got)
	}

	st, err := r.sys.Status(ctx)
	if err != nil {
		return false, "status: " + err.Error()
	}
	switch c.Kind {
	case spec.CondPrimaryIn:
		p := st.Primary(r.topo, true)
		return p.Region == c.Region, fmt.Sprintf("primary is %q (region %q, epoch %d)", p.Name, p.Region, p.Epoch)
	case spec.CondPrimaryOutside:
		p := st.Primary(r.topo, true)
		return p.Name != "" && p.Region != c.Region, fmt.Sprintf("primary is %q (region %q, epoch %d)", p.Name, p.Region, p.Epoch)
	case spec.CondRegionHealthy:
		for _, n := range st.Nodes {
			if n.Region == c.Region && n.State != observe.StateAlive {
				return false, fmt.Sprintf("%s is %s", n.Name, n.State)
			}
		}
		for _, reg := range st.Regions {
			if reg.Name == c.Region {
				return reg.Healthy, fmt.Sprintf("region %s healthy=%v", reg.Name, reg.Healthy)
			}
		}
		return false, "no such region in status"
	case spec.CondRegionUnhealthy:
		return r.unhealthyFromOutside(st, c.Region)
	case spec.CondReplicaCaughtUp:
		p := st.Primary(r.topo, false)
		if p.Name == "" {
			return false, "no primary"
		}
		found := false
		for _, n := range st.Nodes {
			if n.Role != topology.RoleDB || n.Region != c.Region {
				continue
			}
			found = true
			if ok, why := caughtUp(n, p); !ok {
				return false, why
			}
		}
		return found, fmt.Sprintf("replicas of %s caught up with %s (epoch %d, lag 0)", c.Region, p.Name, p.Epoch)
	case spec.CondConverged:
		return r.converged(ctx, st)
	case spec.CondQueueBacklog, spec.CondQueueDrained:
		r.recordQueues(st)
		return queueCondition(st, c)
	case spec.CondNoFailover:
		p := st.Primary(r.topo, false)
		same := p.Name == base.primary && p.Epoch == base.epoch
		return same, fmt.Sprintf("primary %s epoch %d (was %s epoch %d)", p.Name, p.Epoch, base.primary, base.epoch)
	}
	return false, "unknown condition " + c.Kind
}

// converged is CondConverged on a status: cheap checks first, DNS probes last.
func (r *run) converged(ctx context.Context, st *observe.Status) (bool, string) {
	for _, n := range st.Nodes {
		// The WAN node is no gossip member: running is all it can be.
		if n.State != observe.StateAlive && !(n.Role == topology.RoleWAN && n.State == observe.StateRunning) {
			return false, fmt.Sprintf("%s is %s", n.Name, n.State)
		}
		if n.Role == topology.RoleQueue && !n.Ready {
			return false, fmt.Sprintf("%s is not ready (JetStream or its mirrors)", n.Name)
		}
	}
	for _, reg := range st.Regions {
		if !reg.Healthy {
			return false, fmt.Sprintf("region %s is not healthy", reg.Name)
		}
	}
	p := st.Primary(r.topo, true)
	if p.Name == "" {
		return false, "no primary"
	}
	for _, n := range st.Nodes {
		if n.Role != topology.RoleDB || n.Name == p.Name {
			continue
		}
		if ok, why := caughtUp(n, p); !ok {
			return false, why
		}
	}
	for _, region := range r.topo.RegionNames() {
		got, _, err := r.prober.Probe(ctx, region)
		if err != nil {
			return false, fmt.Sprintf("users near %s cannot resolve: %v", region, err)
		}
		if got != region {
			return false, fmt.Sprintf("users near %s are sent to %s", region, got)
		}
	}
	return true, fmt.Sprintf("converged: primary %s (epoch %d), every replica caught up, every region's users at home", p.Name, p.Epoch)
}

// caughtUp reports whether db node n is a replica caught up with primary p. Writes keep flowing,
// so LSNs rarely match at one instant: a replica is caught up when it follows the current epoch
// and its own last pull showed it had everything.
func caughtUp(n, p observe.NodeStatus) (bool, string) {
	if n.Primary || n.State != observe.StateAlive || n.Epoch != p.Epoch || n.LagMS != 0 {
		return false, fmt.Sprintf("%s: primary=%v state=%s epoch=%d lsn=%d lag=%dms; primary %s epoch=%d lsn=%d",
			n.Name, n.Primary, n.State, n.Epoch, n.LSN, n.LagMS, p.Name, p.Epoch, p.LSN)
	}
	return true, ""
}

// unhealthyFromOutside judges a region down from the gossip views of the nodes outside it: its
// own nodes may well still see themselves alive.
func (r *run) unhealthyFromOutside(st *observe.Status, region string) (bool, string) {
	observers, sayUp := 0, 0
	for name, view := range st.Views {
		n, ok := r.topo.Node(name)
		if !ok || n.Region == region {
			continue
		}
		observers++
		for _, m := range view {
			if m.Meta.Region == region && m.Meta.Role == topology.RoleWeb && m.Alive() && m.Meta.Healthy {
				sayUp++
				break
			}
		}
	}
	if observers == 0 {
		return false, "no observer outside " + region
	}
	return sayUp*2 < observers, fmt.Sprintf("%d of %d observers outside %s still see a healthy web node", sayUp, observers, region)
}

func (r *run) steady(ctx context.Context, s *spec.Steady) error {
	deadline := time.Now().Add(s.Within)
	base := r.baselineNow(ctx)
	for {
		allOK, why := true, ""
		for _, c := range s.Expect {
			if ok, w := r.holds(ctx, c, base); !ok {
				allOK, why = false, c.String()+": "+w
				break
			}
		}
		if allOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %s: %s", ErrSteady, s.Within, why)
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
}

// expect waits for a condition and records the result as a check.
func (r *run) expect(ctx context.Context, e *spec.Expect) {
	start := time.Now()
	base := r.baselineNow(ctx)
	res := check.Result{Name: "expect " + e.Condition.String(), Unit: "s", Budget: e.Within.Seconds(), HasBudget: true}
	var why string
	became := false
	for {
		ok, w := r.holds(ctx, e.Condition, base)
		why = w
		if ok {
			became = true
			break
		}
		if time.Since(start) > e.Within || ctx.Err() != nil {
			break
		}
		_ = sleep(ctx, pollEvery)
	}
	res.Measured = math.Round(time.Since(start).Seconds()*1000) / 1000
	if became && res.Measured > e.Within.Seconds() {
		became, why = false, fmt.Sprintf("became true only after %.1fs: %s", res.Measured, why)
	}
	if !became {
		res.Verdict = verdict.Fail
		res.Detail = fmt.Sprintf("not true within %s: %s", e.Within, why)
		r.expects = append(r.expects, res)
		r.progress("FAIL %s", res.Detail)
		return
	}
	if e.Hold > 0 {
		holdUntil := time.Now().Add(e.Hold)
		for time.Now().Before(holdUntil) && ctx.Err() == nil {
			_ = sleep(ctx, pollEvery)
			if ok, w := r.holds(ctx, e.Condition, base); !ok {
				res.Verdict = verdict.Fail
				res.Detail = fmt.Sprintf("true after %.1fs but broke while it had to hold for %s: %s", res.Measured, e.Hold, w)
				r.expects = append(r.expects, res)
				r.progress("FAIL %s", res.Detail)
				return
			}
		}
		res.Detail = fmt.Sprintf("true after %.1fs and held for %s: %s", res.Measured, e.Hold, why)
	} else {
		res.Detail = fmt.Sprintf("true after %.1fs: %s", res.Measured, why)
	}
	res.Verdict = verdict.Pass
	r.expects = append(r.expects, res)
	r.progress("ok   %s", res.Detail)
}

// queueCondition is CondQueueBacklog or CondQueueDrained on a status: the queues' backlogs as
// they publish them in gossip.
func queueCondition(st *observe.Status, c spec.Condition) (bool, string) {
	var parts []string
	found := false
	for _, n := range st.Nodes {
		if n.Role != topology.RoleQueue || (c.Region != "" && n.Region != c.Region) {
			continue
		}
		found = true
		if n.State != observe.StateAlive {
			return false, fmt.Sprintf("%s is %s", n.Name, n.State)
		}
		if !n.Ready {
			// Its JetStream did not answer (or its mirrors are not made yet): the backlog it
			// published last may be old.
			return false, fmt.Sprintf("%s is not ready: its backlog is unknown", n.Name)
		}
		parts = append(parts, fmt.Sprintf("%s %d", n.Name, n.Backlog))
		if c.Kind == spec.CondQueueDrained && n.Backlog > 0 {
			return false, fmt.Sprintf("%s holds %d jobs", n.Name, n.Backlog)
		}
		if c.Kind == spec.CondQueueBacklog && n.Backlog == 0 {
			return false, fmt.Sprintf("%s holds no job", n.Name)
		}
	}
	if !found {
		return false, "no queue node (the topology has none there)"
	}
	return true, "backlog: " + strings.Join(parts, ", ")
}
