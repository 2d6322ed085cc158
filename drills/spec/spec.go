// Package spec reads drill files: YAML documents that say which design settings a drill runs
// with, what budgets its checks are judged against, what workload the simulated users run and
// which steps (steady-state gates, fault injections, expectations, waits, heals, final
// verification) happen in which order.
//
// A drill file looks like this:
//
//	name: region-outage
//	description: Black-hole us-east; eu-west must take over within budget.
//	topology: default            # the built-in topology it runs on without --topology (default, cache)
//	settings:                    # topology design overrides, as for `drill up --set`
//	  fencing: lease
//	budgets:                     # limits of the checks (package check); the unit is in the name
//	  dns_failover_s: 15
//	  rto_s: 20
//	  lost_acked_writes: 0
//	workload:
//	  clients_per_region: 2      # simulated users near each region
//	  write_rate: 5              # writes per second per client
//	  read_after_write: true     # read every key back after writing it
//	  read_others: false         # also read other regions' latest acknowledged key
//	  hot_keys: 0                # share this many keys, overwritten by every write (cache drills)
//	  reads_per_write: 0         # reads of random hot keys between two writes (with hot_keys)
//	  job_rate: 0                # jobs per second each job client publishes (queue drills)
//	  job_work_ms: 50            # how long each job's work takes a worker
//	  until: stop                # or duration: 60s; or until: end
//	steps:
//	  - steady: {within: 10s, expect: [region_healthy us-east, region_healthy eu-west]}
//	  - workload: start
//	  - wait: 5s
//	  - inject: {fault: blackhole, region: us-east}   # or e.g. {fault: loss, regions: [us-east, eu-west], percent: 30}
//	  - expect: {condition: dns_points_away_from us-east, within: 15s}
//	  - expect: {condition: primary_in eu-west, within: 10s, hold: 3s}
//	  - heal: blackhole:us-east  # a fault id, or all
//	  - expect: {condition: replica_caught_up us-east, within: 30s}
//	  - workload: stop
//	  - verify: {final_read: true}
//
// Parsing is strict: unknown fields, unknown faults and conditions, missing targets, bad
// durations and unknown budget names are errors, each located as FILE:LINE:COL: FIELD: MESSAGE
// (*Error). Parse checks what the file alone can tell; Resolve checks the drill against a
// topology (region and node names, setting values) and applies its settings.
package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/topology/yamlpos"
)

// Pos is a 1-based line and column in a drill file; String formats it as LINE:COL.
type Pos = yamlpos.Pos

// Drill is a parsed drill file.
type Drill struct {
	// Name identifies the drill (lower-case letters, digits and dashes).
	Name string
	// Description says what the drill does, for people.
	Description string
	// Topology names the built-in topology the drill runs on when none is given (--topology);
	// empty means the default topology.
	Topology string
	// Settings are topology design overrides by setting key, as for `drill up --set key=value`
	// (e.g. fencing: none); Resolve applies them.
	Settings map[string]string
	// Budgets are the checks' limits by budget name (check.BudgetNames).
	Budgets check.Budgets
	// Workload is what the simulated users do.
	Workload Workload
	// Steps run in order.
	Steps []Step
	// Source is the file name given to Parse.
	Source string

	// refs are the region and node names the drill mentions, checked by Resolve.
	refs []ref
	// settingPos is where each setting's value is, for Resolve's errors.
	settingPos map[string]Pos
}

// ref is one mention of a region, site or node name.
type ref struct {
	node  bool // a node name
	site  bool // a site name: a region or "witness"
	name  string
	field string
	pos   Pos
}

// Workload until values.
const (
	// UntilStop: the workload runs until a `workload: stop` step.
	UntilStop = "stop"
	// UntilEnd: the workload runs until the last step, but the runner stops it before a verify step.
	UntilEnd = "end"
)

// Workload defaults.
const (
	DefaultClientsPerRegion = 2
	DefaultWriteRate        = 5.0
	DefaultReadAfterWrite   = true
	DefaultJobWorkMS        = 50
)

// Workload is what the simulated users do: each resolves app.<zone> through GeoDNS, writes unique
// keys through the web tier and (optionally) reads each back.
type Workload struct {
	// ClientsPerRegion is how many clients run near each region (default 2).
	ClientsPerRegion int
	// WriteRate is writes per second per client (default 5).
	WriteRate float64
	// ReadAfterWrite: each client reads every key back after writing it (default true).
	ReadAfterWrite bool
	// ReadOthers: after each write, a client also reads the latest key acknowledged to a client of
	// another region (default false). It is what makes linearizability observable: a client's
	// own keys are read back with read-your-writes.
	ReadOthers bool
	// HotKeys, when set, makes the clients share that many keys, each write overwriting one with a
	// unique value (what a cache is for); 0 writes unique keys.
	HotKeys int
	// ReadsPerWrite is how many reads of random hot keys a client makes after each write (with
	// HotKeys), spread evenly over the time until its next write.
	ReadsPerWrite int
	// JobRate, when set, adds ClientsPerRegion job clients near each region, each publishing that
	// many jobs per second (POST /jobs) to the region's queue.
	JobRate float64
	// JobWorkMS is how long each job's work takes a worker (default DefaultJobWorkMS).
	JobWorkMS int
	// Duration, when set, stops the workload that long after it started (or earlier, at a
	// `workload: stop` step); Until is then empty.
	Duration time.Duration
	// Until is UntilStop or UntilEnd when Duration is not set. Left out, it is UntilStop when the
	// steps stop the workload and UntilEnd otherwise.
	Until string
}

// StepKind names a step's action.
type StepKind string

// Step kinds.
const (
	StepSteady   StepKind = "steady"
	StepWorkload StepKind = "workload"
	StepInject   StepKind = "inject"
	StepExpect   StepKind = "expect"
	StepWait     StepKind = "wait"
	StepHeal     StepKind = "heal"
	StepVerify   StepKind = "verify"
)

// stepKinds lists the step kinds in the order documented.
func stepKinds() []string {
	return []string{string(StepSteady), string(StepWorkload), string(StepInject), string(StepExpect),
		string(StepWait), string(StepHeal), string(StepVerify)}
}

// Workload step actions.
const (
	WorkloadStart = "start"
	WorkloadStop  = "stop"
)

// HealAll heals every active fault.
const HealAll = "all"

// Step is one step. Exactly one of the action fields, the one Kind names, is set.
type Step struct {
	// Kind is the step's action.
	Kind StepKind
	// Pos is where the step is in the file.
	Pos Pos
	// Steady: a gate; every condition must hold within the time given, or the drill aborts.
	Steady *Steady
	// Workload is WorkloadStart or WorkloadStop.
	Workload string
	// Inject is a fault to inject.
	Inject *Inject
	// Expect is a condition that must become true in time (and stay true for Hold).
	Expect *Expect
	// Wait is how long to wait.
	Wait time.Duration
	// Heal is the id of the fault to heal, or HealAll.
	Heal string
	// Verify is the final verification.
	Verify *Verify
}

// String is a short description of the step, e.g. "inject blackhole:us-east".
func (s Step) String() string {
	switch s.Kind {
	case StepSteady:
		texts := make([]string, len(s.Steady.Expect))
		for i, c := range s.Steady.Expect {
			texts[i] = c.String()
		}
		return fmt.Sprintf("steady within %s: %s", s.Steady.Within, strings.Join(texts, ", "))
	case StepWorkload:
		return "workload " + s.Workload
	case StepInject:
		return "inject " + s.Inject.ID
	case StepExpect:
		out := fmt.Sprintf("expect %s within %s", s.Expect.Condition, s.Expect.Within)
		if s.Expect.Hold > 0 {
			out += fmt.Sprintf(" holding %s", s.Expect.Hold)
		}
		return out
	case StepWait:
		return "wait " + s.Wait.String()
	case StepHeal:
		return "heal " + s.Heal
	case StepVerify:
		return "verify final_read"
	}
	return string(s.Kind)
}

// Steady is a steady-state gate.
type Steady struct {
	// Within is how long the conditions may take to all hold.
	Within time.Duration
	// Expect are the conditions; at least one.
	Expect []Condition
}

// Expect is an expectation about the system.
type Expect struct {
	// Condition must become true...
	Condition Condition
	// ...within this time of the step starting...
	Within time.Duration
	// ...and then stay true this long (0: once is enough).
	Hold time.Duration
}

// Verify is the final verification after heal.
type Verify struct {
	// FinalRead: read every key the workload wrote from the converged database (history "final"
	// ops), for the lost-writes checks.
	FinalRead bool
}

// Inject is a fault to inject: the fault as the injector takes it. Its ID is the file's id, or
// derived as KIND:TARGET (blackhole:us-east, partition:eu-west|us-east, latency:wan,
// kill:us-east-db-1, kill-primary); Region, Regions, Node (the file's target field) and Params
// are the kind's fields, checked against its descriptor (compose/fault).
type Inject struct {
	fault.Fault
}

// Instant reports whether the fault is a one-off event with nothing to heal (restart).
func (i *Inject) Instant() bool { return fault.IsInstant(i.Kind) }
