// Package yamlpos decodes YAML files strictly while keeping every node's position, so that a
// problem is reported as FILE:LINE:COL: FIELD: MSG. It holds the positioned error types that the
// topology, drill and game-day plan files share, and the goccy/go-yaml AST helpers their
// decoders are built from.
package yamlpos

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Pos is a 1-based line and column in a YAML file.
type Pos struct {
	Line   int
	Column int
}

// String formats the position as LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// Error is one problem in a YAML file: where it is and what is wrong. The CLI maps it (and
// ErrorList) to exit code 2: a file that does not decode means nothing was started.
type Error struct {
	// File is the file's name as given to the parser (a path, or e.g. "<default>"); empty when
	// there is no file (a programmatic value).
	File string
	// Line is the 1-based line of the offending YAML node; 0 when there is no file position.
	Line int
	// Column is the 1-based column of the offending YAML node; 0 when there is no file position.
	Column int
	// Field is the path of the offending setting, e.g. steps[3].inject.region or design.fencing;
	// empty for a YAML syntax error or a problem with the whole file.
	Field string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, when there is one (a file that cannot be read: errors.Is
	// finds os.ErrNotExist through it).
	Err error
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf is a problem at position at of file, with a formatted message.
func Errorf(file string, at Pos, field, format string, args ...any) *Error {
	return &Error{File: file, Line: at.Line, Column: at.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
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

// ErrorList is every problem found in a file, sorted by position (Sort). errors.As finds an
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

// Sort orders the problems by position, keeping the order of problems at the same place.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
}

// Err is nil for an empty list, so callers never return a non-nil error holding no problems.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Messages is the messages of err's problems without their positions and fields, joined by "; "
// (for quoting a problem of one file in another's error); for any other error, its text.
func Messages(err error) string {
	var list ErrorList
	if !errors.As(err, &list) {
		return err.Error()
	}
	msgs := make([]string, len(list))
	for i, e := range list {
		msgs[i] = e.Msg
	}
	return strings.Join(msgs, "; ")
}

// SyntaxError turns a YAML parser error into an *Error at the offending token.
func SyntaxError(source string, err error) *Error {
	e := &Error{File: source, Msg: err.Error()}
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		e.Msg = yerr.GetMessage()
		if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}
