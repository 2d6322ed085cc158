// Package verdict is the one vocabulary of outcomes every part of drill reports: a check's, a
// drill's, a game day's step and run.
package verdict

// Verdict is an outcome.
type Verdict string

// Verdicts.
const (
	// Pass: a check measured within budget; a drill whose checks all passed or were not judged,
	// at least one passing.
	Pass Verdict = "pass"
	// Fail: a check measured over budget; a drill with a failing check.
	Fail Verdict = "fail"
	// Unknown: a check that could not judge (no data, no budget, a malformed history); its
	// detail says why. Never a pass by default.
	Unknown Verdict = "unknown"
	// Error: the harness failed, no check could be judged, or cleanup left residue.
	Error Verdict = "error"
	// Aborted: the drill was stopped before it finished (operator, steady-state gate).
	Aborted Verdict = "aborted"
	// Skipped: a game-day step that did not run (after a failure in stop-on-first-failure mode,
	// or a human step in unattended mode).
	Skipped Verdict = "skipped"
	// Acknowledged: a human game-day step the operator confirmed.
	Acknowledged Verdict = "acknowledged"
)

// Judged reports whether the verdict came from a judgement (pass or fail), not from a run that
// could not judge.
func (v Verdict) Judged() bool { return v == Pass || v == Fail }
