package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/drillworks/drill/drills/history"
)

// Failover is how long the clients of one region kept being sent to a region that was out.
type Failover struct {
	// Fault is the fault id; Region the region it took out.
	Fault  string `json:"fault"`
	Region string `json:"region"`
	// ClientRegion is the region of the clients measured.
	ClientRegion string `json:"client_region"`
	// FaultStart and FaultEnd bound the fault (FaultEnd is zero if it never stopped).
	FaultStart time.Time `json:"fault_start"`
	FaultEnd   time.Time `json:"fault_end"`
	// Observed is true when a client of ClientRegion got an answer pointing away from Region
	// while the fault lasted; FirstAway is then when, and AwayTo where it pointed.
	Observed  bool      `json:"observed"`
	FirstAway time.Time `json:"first_away"`
	AwayTo    string    `json:"away_to,omitempty"`
	// Seconds is FirstAway - FaultStart; when not observed, how long the fault lasted.
	Seconds float64 `json:"seconds"`
	// Lookups counts the watched clients' DNS lookups while the fault lasted (up to FirstAway).
	Lookups int `json:"lookups"`
	// Verdict is this measurement's own verdict against the budget.
	Verdict string `json:"verdict"`
}

// DNSFailoverEvidence is what DNSFailover found.
type DNSFailoverEvidence struct {
	// Failovers are sorted by fault start, then client region.
	Failovers []Failover `json:"failovers"`
}

// DNSFailover measures, for every region outage (a fault start with history.IsRegionOutage)
// taking out region R, how long until GeoDNS sent each affected client region elsewhere. The
// clients watched are every client of R, and every client of another region whose last answer
// before the fault pointed at R (a client that was never sent to R need not fail over). For each
// client region, the failover time runs from the fault start to the first "dns" op of a watched
// client whose DNSRegion is set and is not R, while the fault lasts. Measured is the longest such
// time in seconds, judged against BudgetDNSFailover. A client region whose watched clients looked
// up DNS during the fault but never got an answer away from R fails when the fault outlasted the
// budget, and is unknown when it did not, or when they made no lookup at all. Unknown when the
// history has no region outage.
func DNSFailover(ops []history.Op, cfg Config) (Result, *DNSFailoverEvidence) {
	const unit = "s"
	ops = history.Sorted(ops)
	ev := &DNSFailoverEvidence{}
	_, historyEnd := history.Span(ops)
	var dnsOps []history.Op
	for _, op := range ops {
		if op.Type == history.TypeDNS {
			dnsOps = append(dnsOps, op)
		}
	}
	outages := 0
	for _, fw := range history.FaultWindows(ops) {
		if !fw.IsRegionOutage() {
			continue
		}
		outages++
		searchEnd := historyEnd
		if fw.Stopped {
			searchEnd = fw.End
		}
		watched := watchedClients(ops, dnsOps, fw)
		for _, client := range sortedSet(watched.regions) {
			f := Failover{Fault: fw.ID, Region: fw.Region, ClientRegion: client, FaultStart: fw.Start, FaultEnd: fw.End}
			for _, op := range dnsOps {
				if op.ClientRegion != client || !watched.process(op) || op.Time.Before(fw.Start) || op.Time.After(searchEnd) {
					continue
				}
				f.Lookups++
				if op.DNSRegion != "" && op.DNSRegion != fw.Region {
					f.Observed, f.FirstAway, f.AwayTo = true, op.Time, op.DNSRegion
					break
				}
			}
			if f.Observed {
				f.Seconds = seconds(f.FirstAway.Sub(fw.Start))
			} else {
				f.Seconds = seconds(searchEnd.Sub(fw.Start))
			}
			ev.Failovers = append(ev.Failovers, f)
		}
	}
	if outages == 0 {
		return cfg.unknown(NameDNSFailover, unit, BudgetDNSFailover, "no region outage in the history (no fault took a whole region out)", ev), ev
	}
	if len(ev.Failovers) == 0 {
		return cfg.unknown(NameDNSFailover, unit, BudgetDNSFailover, "no client was sent to the failed region, so none had to fail over", ev), ev
	}

	budget, hasBudget := cfg.Budgets[BudgetDNSFailover]
	r := Result{Name: NameDNSFailover, Unit: unit, Evidence: ev, Budget: budget, HasBudget: hasBudget}
	var parts []string
	anyFail, anyUnknown := false, false
	for i := range ev.Failovers {
		f := &ev.Failovers[i]
		if f.Observed || f.Lookups > 0 {
			// Clients that made no lookup at all tell nothing: they are listed, not measured.
			r.Measured = max(r.Measured, f.Seconds)
		}
		switch {
		case !f.Observed && f.Lookups == 0:
			f.Verdict = Unknown
			parts = append(parts, fmt.Sprintf("%s clients made no DNS lookup during %s (not judged)", f.ClientRegion, f.Fault))
			continue // says nothing either way; does not make the whole check unknown
		case !hasBudget:
			f.Verdict = Unknown
		case f.Seconds > budget:
			f.Verdict = Fail
		case f.Observed:
			f.Verdict = Pass
		default:
			f.Verdict = Unknown
		}
		anyFail = anyFail || f.Verdict == Fail
		anyUnknown = anyUnknown || f.Verdict == Unknown
		switch {
		case f.Observed:
			parts = append(parts, fmt.Sprintf("%s clients sent away from %s after %gs (to %s)", f.ClientRegion, f.Region, f.Seconds, f.AwayTo))
		case f.Lookups == 0:
			parts = append(parts, fmt.Sprintf("%s clients made no DNS lookup during %s (not judged)", f.ClientRegion, f.Fault))
		default:
			parts = append(parts, fmt.Sprintf("%s clients got no answer away from %s in all %gs of %s", f.ClientRegion, f.Region, f.Seconds, f.Fault))
		}
	}
	r.Detail = list(parts, len(parts))
	r.NoData = true
	for _, f := range ev.Failovers {
		r.NoData = r.NoData && !f.Observed && f.Lookups == 0
	}
	switch {
	case r.NoData:
		r.Verdict, r.Measured = Unknown, 0
	case !hasBudget:
		cfg.judge(&r, BudgetDNSFailover)
	case anyFail:
		r.Verdict = Fail
	case anyUnknown:
		r.Verdict = Unknown
		r.Detail += " (no failover observed, but not proven late either: not judged)"
	default:
		r.Verdict = Pass
	}
	return r, ev
}

// watched is the set of clients a region outage concerns.
type watched struct {
	// outage is the failed region.
	outage string
	// regions are the client regions with watched clients.
	regions map[string]bool
	// sentThere are the processes of other regions whose last answer before the fault pointed
	// at the failed region.
	sentThere map[int]bool
}

// process reports whether a dns op comes from a watched client.
func (w watched) process(op history.Op) bool {
	return op.ClientRegion == w.outage || w.sentThere[op.Process]
}

func watchedClients(ops, dnsOps []history.Op, fw history.FaultWindow) watched {
	w := watched{outage: fw.Region, regions: map[string]bool{}, sentThere: map[int]bool{}}
	for _, c := range history.ClientRegions(ops) {
		if c == fw.Region {
			w.regions[c] = true
		}
	}
	lastBefore := map[int]history.Op{}
	for _, op := range dnsOps {
		if op.Time.Before(fw.Start) {
			lastBefore[op.Process] = op
		}
	}
	for process, op := range lastBefore {
		if op.DNSRegion == fw.Region && op.ClientRegion != "" && op.ClientRegion != fw.Region {
			w.regions[op.ClientRegion] = true
			w.sentThere[process] = true
		}
	}
	return w
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
	Verdict string `json:"verdict"`
	Note    string `json:"note,omitempty"`
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
			fb.Verdict = Unknown
		case fb.EarlySeconds > budget:
			fb.Verdict = Fail
		default:
			fb.Verdict = Pass
		}
		anyFail = anyFail || fb.Verdict == Fail
		anyUnknown = anyUnknown || fb.Verdict == Unknown
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
		r.Verdict = Unknown
	case !hasBudget:
		cfg.judge(&r, BudgetDNSFailbackEarly)
	case anyFail:
		r.Verdict = Fail
	case anyUnknown:
		r.Verdict = Unknown
	default:
		r.Verdict = Pass
	}
	return r, ev
}
