// Package schemagen holds the pieces the drill-file and game-day-plan JSON Schemas share (both
// are written by hand from the parsers' vocabularies); topology/schematest holds what their tests share.
package schemagen

import (
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/topology"
)

// Draft is the JSON Schema dialect of every schema drill writes.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// DurationPattern is a Go duration as drill files write it (150ms, 3s, 1m30s).
const DurationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

// Duration is a duration value described by desc.
func Duration(desc string) map[string]any {
	return map[string]any{"type": "string", "pattern": DurationPattern, "description": desc}
}

// String is a string value described by desc.
func String(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

// Object is an object with exactly these properties, the required ones named.
func Object(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// Budgets is the budgets object: every budget name the checkers judge, a non-negative number.
func Budgets() map[string]any {
	budgets := map[string]any{}
	for _, b := range check.BudgetNames() {
		budgets[b] = map[string]any{"type": "number", "minimum": 0}
	}
	return Object(budgets)
}

// Settings is the design-settings object (`settings:` of a drill, `set:` of a game-day step):
// every setting `--set` takes.
func Settings() map[string]any {
	settings := map[string]any{}
	for _, k := range topology.SettingKeys() {
		settings[k] = map[string]any{"type": []string{"string", "number", "boolean"}}
	}
	return Object(settings)
}
