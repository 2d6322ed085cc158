package gameday

import "github.com/drillworks/drill/topology/yamlpos"

// Pos is a 1-based line and column in a plan file; String formats it as LINE:COL.
type Pos = yamlpos.Pos

// Error is one problem in a plan file: where it is and what is wrong. File is the plan file's
// name as given to Parse or Load; Line and Column are 0 when there is no position (e.g. an
// unreadable file); Field is the path of the offending setting, e.g. drills[2].set.fencing. The
// CLI maps it (and ErrorList) to exit code 2: nothing has started when a plan is rejected. It is
// the same type as topology.Error and spec.Error.
type Error = yamlpos.Error

// ErrorList is every problem found in a plan, sorted by position. errors.As finds an ErrorList,
// or any *Error in it.
type ErrorList = yamlpos.ErrorList

// decoder walks the YAML AST of a plan file, collecting every problem with its position.
type decoder struct {
	*yamlpos.Decoder
}

// entry is one key/value pair of a mapping, or one list item.
type entry = yamlpos.Entry

// validName reports whether s looks like a plan, region or drill name: lower-case letters,
// digits and dashes, starting and ending with a letter or digit.
func validName(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
