package junit

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{1234567 * time.Microsecond: "1.235", 0: "0.000", -time.Second: "0.000"} {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestWrite(t *testing.T) {
	doc := Suites{Name: "gameday.x", Tests: 2, Failures: 1, Time: "1.000", Suites: []Suite{{
		Name: "s", Tests: 2, Failures: 1, Time: "1.000",
		Properties: []Property{{Name: "verdict", Value: "fail"}},
		Cases: []Case{
			{Name: "ok", ClassName: "s", Time: "0"},
			{Name: "bad", ClassName: "s", Time: "0", Failure: &Problem{Message: "over", Type: "over-budget", Text: "a < b"}},
		},
	}}}
	var b bytes.Buffer
	if err := Write(&b, doc); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`<?xml version="1.0" encoding="UTF-8"?>` + "\n<testsuites ",
		`  <testsuite name="s" tests="2" failures="1" errors="0" skipped="0" time="1.000">`,
		`<property name="verdict" value="fail"></property>`,
		`<failure message="over" type="over-budget">a &lt; b</failure>`,
		"</testsuites>\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "system-out") {
		t.Errorf("empty system-out written:\n%s", out)
	}
}
