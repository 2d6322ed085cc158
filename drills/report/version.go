package report

import "runtime/debug"

// SchemaVersion is the version of the JSON drill writes about a run (report.json, a game day's
// summary.json and webhook payload); it changes when a field changes meaning or goes away.
const SchemaVersion = 1

// DrillVersion is the version of the running drill binary, from its build info: the module
// version ("(devel)" for a source build) and the VCS revision when known.
func DrillVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return v + " " + s.Value[:12]
		}
	}
	return v
}
