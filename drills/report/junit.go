package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/drillworks/drill/drills/check"
)

// JUnit XML, as read by CI systems: one testsuite, one testcase per check.

type junitSuite struct {
	XMLName    xml.Name        `xml:"testsuite"`
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes the report as JUnit XML: one testsuite named drill.<name>, one testcase per
// check (<failure> for fail, <skipped> for unknown), plus a testcase "drill" with <error> when
// the drill errored or was aborted. Properties carry verdict, runtime, seed, topology and settings.
func WriteJUnit(w io.Writer, r *Report) error {
	class := "drill." + r.Drill
	suite := junitSuite{
		Name: class,
		Time: seconds(r.End.Sub(r.Start)),
		Properties: []junitProperty{
			{"verdict", r.Verdict}, {"runtime", r.Runtime}, {"seed", strconv.FormatInt(r.Seed, 10)}, {"topology", r.Topology},
		},
	}
	if !r.Start.IsZero() {
		suite.Timestamp = r.Start.UTC().Format(time.RFC3339)
	}
	for _, k := range sortedKeys(r.Settings) {
		suite.Properties = append(suite.Properties, junitProperty{"setting." + k, r.Settings[k]})
	}
	for _, c := range r.Checks {
		tc := junitCase{Name: c.Name, ClassName: class, Time: "0", SystemOut: c.Detail}
		summary := fmt.Sprintf("measured %s, budget %s", fmtValue(c.Measured, c.Unit), fmtValue(c.Budget, c.Unit))
		switch c.Verdict {
		case check.Fail:
			tc.Failure = &junitProblem{Message: summary + ": " + c.Detail, Type: "over-budget", Text: c.Detail}
			suite.Failures++
		case check.Pass:
		default:
			tc.Skipped = &junitSkipped{Message: "not judged: " + c.Detail}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	if r.Verdict == VerdictError || r.Verdict == VerdictAborted {
		suite.Cases = append(suite.Cases, junitCase{
			Name: "drill", ClassName: class, Time: suite.Time,
			Error: &junitProblem{Message: r.Error, Type: r.Verdict, Text: r.Error},
		})
		suite.Errors++
	}
	suite.Tests = len(suite.Cases)
	var out bytes.Buffer
	if err := WriteSummary(&out, r); err != nil {
		return err
	}
	suite.SystemOut = out.String()

	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suite); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// seconds formats a duration as JUnit seconds with millisecond precision.
func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
