package explore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
)

// Outcome is what one run of a schedule's drill came to.
type Outcome string

// Outcomes.
const (
	// Passed: every promise held.
	Passed Outcome = "passed"
	// Failed: a promise was broken (a check failed).
	Failed Outcome = "failed"
	// Invalid: the run could not judge the design (the cluster did not reset, a fault could not
	// be applied, residue was left); it is neither a pass nor a failure, and the cluster is
	// rebuilt before the next schedule.
	Invalid Outcome = "invalid"
)

// RunResult is one run of a drill on the cluster.
type RunResult struct {
	Outcome Outcome `json:"outcome"`
	// Failed names the checks that failed.
	Failed []string `json:"failed,omitempty"`
	// Details are the failed checks' details, or why the run was invalid.
	Details []string `json:"details,omitempty"`
}

// Options configure an exploration.
type Options struct {
	// Topology is the running cluster's topology, every design setting applied.
	Topology *topology.Topology
	// Seed is the first schedule's seed; schedule i has seed Seed+i.
	Seed int64
	// Schedules is how many schedules to run (0: until Duration runs out).
	Schedules int
	// Duration bounds the exploration (0: until Schedules have run); a schedule under way when
	// it runs out finishes, and a failure found is still shrunk.
	Duration time.Duration
	// Gen configures the schedules.
	Gen GenConfig
	// Reproduce is how many times a minimal drill is run again to say how often it fails
	// (default 3): timing on real processes varies, so a failure counts once it reproduces.
	Reproduce int
	// MaxShrinkRuns bounds the runs spent shrinking one failure (default 24).
	MaxShrinkRuns int
	// Dir receives the runs' reports, the minimal drills and the exploration's report.
	Dir string
	// Run runs a drill on the cluster with a workload seed, its report going to dir. An error
	// stops the exploration (the harness cannot go on); a run that could not judge the design
	// is a RunResult with Outcome Invalid.
	Run func(ctx context.Context, d *spec.Drill, seed int64, dir string) (RunResult, error)
	// Rebuild brings a fresh cluster up after an invalid run (nil: the exploration stops there).
	Rebuild func(ctx context.Context) error
	// Progress receives a line per run (nil: none).
	Progress io.Writer
}

// Defaults.
const (
	DefaultReproduce     = 3
	DefaultMaxShrinkRuns = 24
)

// Explore runs schedules until Schedules have run or Duration is over (or ctx ends), shrinks
// every failure to a minimal drill, writes report.json and report.html to Dir and returns the
// report. Its error is the harness's; failures found are in the report.
func Explore(ctx context.Context, o Options) (*Report, error) {
	if o.Run == nil || o.Topology == nil {
		return nil, errors.New("explore: Run and Topology are required")
	}
	if o.Schedules <= 0 && o.Duration <= 0 {
		return nil, errors.New("explore: give a number of schedules or a time budget")
	}
	if o.Reproduce <= 0 {
		o.Reproduce = DefaultReproduce
	}
	if o.MaxShrinkRuns <= 0 {
		o.MaxShrinkRuns = DefaultMaxShrinkRuns
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	x := &explorer{o: o, budgets: Promises(o.Topology)}
	rep := &Report{Seed: o.Seed, Started: time.Now(), Settings: designSettings(o.Topology), Budgets: x.budgets}
	cov := newCoverage(o.Gen.Kinds)
	var runErr error
	for i := 0; o.Schedules <= 0 || i < o.Schedules; i++ {
		if ctx.Err() != nil || (o.Duration > 0 && time.Since(rep.Started) >= o.Duration) {
			break
		}
		seed := o.Seed + int64(i)
		s, err := Generate(o.Topology, seed, o.Gen)
		if err != nil {
			runErr = err
			break
		}
		res, err := x.run(ctx, s, fmt.Sprintf("schedule-%d", seed))
		if err != nil {
			runErr = err
			break
		}
		rep.Schedules++
		cov.add(s)
		switch res.Outcome {
		case Passed:
			rep.Passed++
			fmt.Fprintf(o.Progress, "explore: schedule %d passed (%s)\n", seed, episodesText(s))
		case Invalid:
			rep.Invalid++
			fmt.Fprintf(o.Progress, "explore: schedule %d invalid: %s\n", seed, strings.Join(res.Details, "; "))
		case Failed:
			fmt.Fprintf(o.Progress, "explore: schedule %d FAILED %s (%s); shrinking\n", seed, strings.Join(res.Failed, ", "), episodesText(s))
			f, err := x.shrinkAndReproduce(ctx, s, res)
			if err != nil {
				runErr = err
				break
			}
			// A minimal schedule that still needs a fault beyond a stated assumption of the design
			// is that assumption's documented limit, not a bug; one that does not is a bug, even if
			// the schedule drawn had such a fault too.
			if f.Beyond = f.Minimal.Beyond(o.Topology); len(f.Beyond) > 0 {
				rep.Limits = append(rep.Limits, f)
				fmt.Fprintf(o.Progress, "explore: schedule %d minimal: %s, beyond the design's assumption (%s): a documented limit, failed %d of %d replays\n",
					seed, episodesText(f.Minimal), strings.Join(f.Beyond, "; "), f.Reproduced, f.Replays)
				break
			}
			rep.Failures = append(rep.Failures, f)
			fmt.Fprintf(o.Progress, "explore: schedule %d minimal: %s, failed %d of %d replays: %s\n",
				seed, episodesText(f.Minimal), f.Reproduced, f.Replays, f.DrillFile)
		}
		if runErr != nil {
			break
		}
	}
	rep.Ended = time.Now()
	rep.Coverage = cov.cells()
	rep.KindsExercised, rep.KindsTotal = cov.kindCounts()
	if h := rep.Ended.Sub(rep.Started).Hours(); h > 0 {
		rep.SchedulesPerHour = float64(rep.Schedules) / h
	}
	rep.ShrinkRuns, rep.Rebuilds = x.shrinkRuns, x.rebuilds
	if err := rep.write(o.Dir); err != nil && runErr == nil {
		runErr = err
	}
	return rep, runErr
}

// explorer holds one exploration's state.
type explorer struct {
	o          Options
	budgets    check.Budgets
	shrinkRuns int
	rebuilds   int
}

// run renders a schedule as a drill file in dir/name, parses it back (what is run is exactly
// what is written) and runs it.
func (x *explorer) run(ctx context.Context, s Schedule, name string) (RunResult, error) {
	dir := filepath.Join(x.o.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return RunResult{}, fmt.Errorf("explore: %w", err)
	}
	path := filepath.Join(dir, "drill.yaml")
	data := s.DrillFile("explore-"+strings.TrimPrefix(name, "schedule-"), x.o.Topology, x.budgets)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return RunResult{}, fmt.Errorf("explore: %w", err)
	}
	d, err := spec.Parse(path, data)
	if err != nil {
		return RunResult{}, fmt.Errorf("explore: the drill written for schedule %d does not parse (a bug in explore): %w", s.Seed, err)
	}
	if _, err := d.Resolve(x.o.Topology); err != nil {
		return RunResult{}, fmt.Errorf("explore: the drill written for schedule %d does not fit topology %s: %w", s.Seed, x.o.Topology.Name, err)
	}
	res, err := x.o.Run(ctx, d, s.Seed, filepath.Join(dir, "report"))
	if err != nil {
		return res, err
	}
	if res.Outcome == Invalid {
		// The next run, shrinking and replays included, needs a steady cluster.
		if x.o.Rebuild == nil {
			return res, fmt.Errorf("explore: schedule %d could not be judged and the cluster cannot be rebuilt: %s", s.Seed, strings.Join(res.Details, "; "))
		}
		if err := x.o.Rebuild(ctx); err != nil {
			return res, fmt.Errorf("explore: rebuild after schedule %d: %w", s.Seed, err)
		}
		x.rebuilds++
	}
	return res, nil
}

// Failure is one failing schedule and its minimal drill.
type Failure struct {
	// Seed is the schedule's seed; Schedule what it injected.
	Seed     int64    `json:"seed"`
	Schedule Schedule `json:"schedule"`
	// Failed names the promises (checks) the schedule broke; Details say how.
	Failed  []string `json:"failed"`
	Details []string `json:"details"`
	// Minimal is the smallest schedule found that still breaks one of them, written to DrillFile.
	Minimal   Schedule `json:"minimal"`
	DrillFile string   `json:"drill_file"`
	// Reproduced is how many of Replays runs of the minimal drill failed again.
	Reproduced int `json:"reproduced"`
	Replays    int `json:"replays"`
	// ShrinkRuns is how many runs shrinking took.
	ShrinkRuns int `json:"shrink_runs"`
	// Beyond names the design assumptions the minimal schedule's faults break (a documented
	// limit when not empty).
	Beyond []string `json:"beyond,omitempty"`
}

// shrinkAndReproduce shrinks a failing schedule, writes its minimal drill next to the
// exploration's report and replays it.
func (x *explorer) shrinkAndReproduce(ctx context.Context, s Schedule, first RunResult) (Failure, error) {
	f := Failure{Seed: s.Seed, Schedule: s, Failed: first.Failed, Details: first.Details}
	step := 0
	var harnessErr error
	stillFails := func(c Schedule) bool {
		if harnessErr != nil || f.ShrinkRuns >= x.o.MaxShrinkRuns || ctx.Err() != nil {
			return false
		}
		step++
		f.ShrinkRuns++
		x.shrinkRuns++
		res, err := x.run(ctx, c, fmt.Sprintf("schedule-%d-shrink-%d", s.Seed, step))
		if err != nil {
			harnessErr = err
			return false
		}
		fails := res.Outcome == Failed && intersects(res.Failed, first.Failed)
		fmt.Fprintf(x.o.Progress, "explore:   shrink %d: %s -> %s\n", step, episodesText(c), map[bool]string{true: "fails", false: "passes"}[fails])
		return fails
	}
	f.Minimal = Shrink(s, stillFails)
	if harnessErr != nil {
		return f, harnessErr
	}
	name := fmt.Sprintf("explore-%d-minimal", s.Seed)
	f.DrillFile = filepath.Join(x.o.Dir, name+".yaml")
	if err := os.WriteFile(f.DrillFile, f.Minimal.DrillFile(name, x.o.Topology, x.budgets), 0o644); err != nil {
		return f, fmt.Errorf("explore: %w", err)
	}
	for i := range x.o.Reproduce {
		if ctx.Err() != nil {
			break
		}
		res, err := x.run(ctx, f.Minimal, fmt.Sprintf("schedule-%d-replay-%d", s.Seed, i+1))
		if err != nil {
			return f, err
		}
		f.Replays++
		if res.Outcome == Failed && intersects(res.Failed, first.Failed) {
			f.Reproduced++
		}
	}
	return f, nil
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// episodesText is a schedule's faults in words, "; "-separated.
func episodesText(s Schedule) string {
	parts := make([]string, len(s.Episodes))
	for i, e := range s.Episodes {
		parts[i] = e.String()
	}
	return strings.Join(parts, "; ")
}
