package spec

import (
	"fmt"
	"strings"
)

// Error is one problem in a drill file: where it is and what is wrong. The CLI maps it (and
// ErrorList) to exit code 2.
type Error struct {
	// File is the drill file's name as given to Parse.
	File string
	// Line and Column are 1-based; 0 when there is no position (e.g. an unreadable file).
	Line   int
	Column int
	// Field is the path of the offending setting, e.g. steps[3].inject.region; empty for a YAML
	// syntax error.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error formats the problem as FILE:LINE:COL: FIELD: MSG, leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Line > 0 && e.File != "":
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.Line > 0:
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a drill file, sorted by position. errors.As finds an
// ErrorList, or any *Error in it.
type ErrorList []*Error

// Error is one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the single problems to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}
