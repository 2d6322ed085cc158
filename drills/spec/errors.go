package spec

import "github.com/drillworks/drill/topology/yamlpos"

// Error is one problem in a drill file: where it is and what is wrong. File is the drill file's
// name as given to Parse; Line and Column are 0 when there is no position (e.g. an unreadable
// file); Field is the path of the offending setting, e.g. steps[3].inject.region. The CLI maps it
// (and ErrorList) to exit code 2. It is the same type as topology.Error.
type Error = yamlpos.Error

// ErrorList is every problem found in a drill file, sorted by position. errors.As finds an
// ErrorList, or any *Error in it.
type ErrorList = yamlpos.ErrorList
