package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/drillworks/drill/drills/history"
	"github.com/drillworks/drill/drills/verdict"
)

// NameDNSFailback names the check; BudgetDNSFailbackEarly is its budget.
const (
	NameDNSFailback = "dns_failback"
	// BudgetDNSFailbackEarly: seconds by which DNS pointed back at a healed region before its
	// database caught up (0 = never before).
	BudgetDNSFailbackEarly = "dns_failback_early_s"
)

func init() {
	registerJudge(80, NameDNSFailback, Metric{Name: BudgetDNSFailbackEarly, Title: "how early DNS failed back before the region caught up", Short: "failback", Unit: "s"}, DNSFailback)
}

// Failback is one healed region's return to DNS.
type Failback struct {
	// Fault is the healed fault; Region the region it had taken out.
	Fault  string    `json:"fault"`
	Region string    `json:"region"`
	Healed time.Time `json:"healed"`
	// FirstBack is the first DNS answer after heal pointing at Region (zero: none), seen by a
	// client of BackClientRegion.
	FirstBack        time.Time `json:"first_back"`
	BackClientRegion string    `json:"back_client_region,omitempty"`
	// CaughtUp is the first lag sample of 0 ms of Region's database after heal (zero: none);
	// LagSamples counts Region's lag samples after heal.
	CaughtUp   time.Time `json:"caught_up"`
	LagSamples int       `json:"lag_samples"`
	// Early is true when DNS pointed back before Region caught up; EarlySeconds by how much
	// (up to the end of the observation when it never caught up).
	Early        bool    `json:"early"`
	EarlySeconds float64 `json:"early_seconds"`
	// Verdict is this fail-back's own verdict; Note says why when unknown.
	Verdict verdict.Verdict `json:"verdict"`
	Note    string          `json:"note,omitempty"`
}

// DNSFailbackEvidence is what DNSFailback found.
type DNSFailbackEvidence struct {
	// Failbacks are sorted by heal time.
	Failbacks []Failback `json:"failbacks"`
}

// DNSFailback checks that, after a region outage on R is healed, GeoDNS does not send clients back
// to R before R's database has caught up: the first "dns" op after the fault's stop whose
// DNSRegion is R must not come before the first "lag" sample of R (Op.Region) with LagMS 0.
// Observation runs until R's next outage or the end of the history. Measured is the most seconds
// any fail-back came early, judged against BudgetDNSFailbackEarly (normally 0). A healed region
// DNS never pointed back at, or one without lag samples after heal, is unknown; so is the check
// when no region outage was healed.
func DNSFailback(ops []history.Op, cfg Config) (Result, *DNSFailbackEvidence) {
	const unit = "s"
	ops = history.Sorted(ops)
	_, historyEnd := history.Span(ops)
	windows := history.FaultWindows(ops)
	ev := &DNSFailbackEvidence{}
	for i, fw := range windows {
		if !fw.IsRegionOutage() || !fw.Stopped {
			continue
		}
		until := historyEnd
		for _, next := range windows[i+1:] {
			if next.IsRegionOutage() && next.Region == fw.Region && next.Start.After(fw.End) {
				until = earlier(until, next.Start)
			}
		}
		fb := Failback{Fault: fw.ID, Region: fw.Region, Healed: fw.End}
		for _, op := range ops {
			if op.Time.Before(fw.End) || op.Time.After(until) {
				continue
			}
			switch {
			case op.Type == history.TypeDNS && op.DNSRegion == fw.Region && fb.FirstBack.IsZero():
				fb.FirstBack, fb.BackClientRegion = op.Time, op.ClientRegion
			case op.Type == history.TypeLag && op.Region == fw.Region:
				fb.LagSamples++
				if op.LagMS == 0 && fb.CaughtUp.IsZero() {
					fb.CaughtUp = op.Time
				}
			}
		}
		switch {
		case fb.FirstBack.IsZero():
			fb.Note = "DNS never pointed back at " + fw.Region + " after heal"
		case fb.LagSamples == 0:
			fb.Note = "no lag sample of " + fw.Region + "'s database after heal: cannot tell when it caught up"
		case fb.CaughtUp.IsZero():
			fb.Early, fb.EarlySeconds = true, seconds(until.Sub(fb.FirstBack))
		case fb.FirstBack.Before(fb.CaughtUp):
			fb.Early, fb.EarlySeconds = true, seconds(fb.CaughtUp.Sub(fb.FirstBack))
		}
		ev.Failbacks = append(ev.Failbacks, fb)
	}
	sort.SliceStable(ev.Failbacks, func(i, j int) bool { return ev.Failbacks[i].Healed.Before(ev.Failbacks[j].Healed) })
	if len(ev.Failbacks) == 0 {
		return cfg.unknown(NameDNSFailback, unit, BudgetDNSFailbackEarly, "no region outage was healed in the history", ev), ev
	}

	budget, hasBudget := cfg.Budgets[BudgetDNSFailbackEarly]
	r := Result{Name: NameDNSFailback, Unit: unit, Evidence: ev, Budget: budget, HasBudget: hasBudget}
	clk := newClock(ops)
	var parts []string
	anyFail, anyUnknown := false, false
	for i := range ev.Failbacks {
		fb := &ev.Failbacks[i]
		r.Measured = max(r.Measured, fb.EarlySeconds)
		switch {
		case fb.Note != "" || !hasBudget:
			fb.Verdict = verdict.Unknown
		case fb.EarlySeconds > budget:
			fb.Verdict = verdict.Fail
		default:
			fb.Verdict = verdict.Pass
		}
		anyFail = anyFail || fb.Verdict == verdict.Fail
		anyUnknown = anyUnknown || fb.Verdict == verdict.Unknown
		switch {
		case fb.Note != "":
			parts = append(parts, fb.Note)
		case fb.Early && fb.CaughtUp.IsZero():
			parts = append(parts, fmt.Sprintf("DNS pointed back at %s at %s but it never caught up", fb.Region, clk.at(fb.FirstBack)))
		case fb.Early:
			parts = append(parts, fmt.Sprintf("DNS pointed back at %s at %s, %gs before it caught up at %s", fb.Region, clk.at(fb.FirstBack), fb.EarlySeconds, clk.at(fb.CaughtUp)))
		default:
			parts = append(parts, fmt.Sprintf("%s caught up at %s, DNS pointed back at %s", fb.Region, clk.at(fb.CaughtUp), clk.at(fb.FirstBack)))
		}
	}
	r.Detail = list(parts, len(parts))
	r.NoData = true
	for _, fb := range ev.Failbacks {
		r.NoData = r.NoData && fb.Note != ""
	}
	switch {
	case r.NoData:
		r.Verdict = verdict.Unknown
	case !hasBudget:
		cfg.judge(&r, BudgetDNSFailbackEarly)
	case anyFail:
		r.Verdict = verdict.Fail
	case anyUnknown:
		r.Verdict = verdict.Unknown
	default:
		r.Verdict = verdict.Pass
	}
	return r, ev
}
