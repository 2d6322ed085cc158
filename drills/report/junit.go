package report

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/drillworks/drill/drills/report/junit"
	"github.com/drillworks/drill/drills/verdict"
)

// WriteJUnit writes the report as JUnit XML: one testsuite named drill.<name>, one testcase per
// check (<failure> for fail, <skipped> for unknown), plus a testcase "drill" with <error> when
// the drill errored or was aborted. Properties carry verdict, runtime, seed, topology and settings.
func WriteJUnit(w io.Writer, r *Report) error {
	class := "drill." + r.Drill
	suite := junit.Suite{
		Name: class,
		Time: junit.Seconds(r.End.Sub(r.Start)),
		Properties: []junit.Property{
			{Name: "verdict", Value: string(r.Verdict)}, {Name: "runtime", Value: r.Runtime},
			{Name: "seed", Value: strconv.FormatInt(r.Seed, 10)}, {Name: "topology", Value: r.Topology},
		},
	}
	if !r.Start.IsZero() {
		suite.Timestamp = r.Start.UTC().Format(time.RFC3339)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Settings)) {
		suite.Properties = append(suite.Properties, junit.Property{Name: "setting." + k, Value: r.Settings[k]})
	}
	AddJUnitChecks(&suite, r.Checks, fmtValue)
	if r.Verdict == verdict.Error || r.Verdict == verdict.Aborted {
		suite.Cases = append(suite.Cases, junit.Case{
			Name: "drill", ClassName: class, Time: suite.Time,
			Error: &junit.Problem{Message: r.Error, Type: string(r.Verdict), Text: r.Error},
		})
		suite.Errors++
	}
	suite.Tests = len(suite.Cases)
	var out bytes.Buffer
	if err := WriteSummary(&out, r); err != nil {
		return err
	}
	suite.SystemOut = out.String()

	return junit.Write(w, suite)
}

// AddJUnitChecks adds a testcase per check to suite, classed by the suite's name: <failure> for
// fail, <skipped> for not judged, the detail as its output. format writes the measured value and
// the budget in a failure's message.
func AddJUnitChecks(suite *junit.Suite, checks []Check, format func(v *float64, unit string) string) {
	for _, c := range checks {
		tc := junit.Case{Name: c.Name, ClassName: suite.Name, Time: "0", SystemOut: c.Detail}
		summary := fmt.Sprintf("measured %s, budget %s", format(c.Measured, c.Unit), format(c.Budget, c.Unit))
		switch c.Verdict {
		case verdict.Fail:
			tc.Failure = &junit.Problem{Message: summary + ": " + c.Detail, Type: "over-budget", Text: c.Detail}
			suite.Failures++
		case verdict.Pass:
		default:
			tc.Skipped = &junit.Skipped{Message: "not judged: " + c.Detail}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, tc)
	}
}
