package topology

import (
	"fmt"

	"github.com/drillworks/drill/topology/yamlpos"
)

// Error is one problem in a topology: where it is and what is wrong. File is the topology's
// source (a path, or "<default>"), empty for a programmatic topology; Line and Column are 0 when
// there is no file position; Field is the dotted path of the offending setting, e.g.
// regions[1].client_subnets[0] or design.fencing. It is the same type as the drill and plan
// files' errors, so one errors.As finds any of them.
type Error = yamlpos.Error

// ErrorList is every problem found in a topology; Parse sorts it by position in the file.
// errors.As finds an ErrorList, or its first *Error.
type ErrorList = yamlpos.ErrorList

// problems collects validation errors by field, without positions.
type problems struct {
	list ErrorList
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, &Error{Field: field, Msg: fmt.Sprintf(format, args...)})
}
