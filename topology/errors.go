package topology

import (
	"fmt"
	"strings"
)

// Error is one problem in a topology: where it is and what is wrong.
type Error struct {
	// File is the topology's source (a path, or "<default>"); empty for a programmatic topology.
	File string
	// Line is the 1-based line of the offending YAML node; 0 when there is no file position.
	Line int
	// Column is the 1-based column of the offending YAML node; 0 when there is no file position.
	Column int
	// Field is the dotted path of the offending setting, e.g. regions[1].client_subnets[0] or
	// design.fencing; empty for a YAML syntax error or a problem with the whole file.
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

// ErrorList is every problem found in a topology; Parse sorts it by position in the file.
// errors.As finds an ErrorList, or its first *Error.
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

// err is nil for an empty list, so callers never return a non-nil error holding no problems.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// problems collects validation errors by field, without positions.
type problems struct {
	list ErrorList
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, &Error{Field: field, Msg: fmt.Sprintf(format, args...)})
}
