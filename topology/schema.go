package topology

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// Schema ids: schema/topology.schema.json and schema/plan.schema.json hold the schemas, generated
// by TopologySchema and PlanSchema (`drill schema topology|plan`) and checked in for editors.
const (
	TopologySchemaID = "https://github.com/drillworks/drill/raw/main/topology/schema/topology.schema.json"
	PlanSchemaID     = "https://github.com/drillworks/drill/raw/main/topology/schema/plan.schema.json"
)

// TopologySchema is the JSON Schema (draft 2020-12) of a topology file, generated from the
// Topology type's YAML fields and the validator's vocabularies. It checks shape and vocabulary;
// Parse checks the rest (ranges, overlaps, references) with positions.
func TopologySchema() ([]byte, error) {
	s := schemaOf(reflect.TypeFor[Topology](), "yaml", "", topologyEnums())
	s["$schema"], s["$id"], s["title"] = "https://json-schema.org/draft/2020-12/schema", TopologySchemaID, "drill topology"
	s["required"] = []string{"name", "regions"}
	return json.MarshalIndent(s, "", "  ")
}

// PlanSchema is the JSON Schema of a run's plan.json (the runtime writes it; every agent reads it).
func PlanSchema() ([]byte, error) {
	s := schemaOf(reflect.TypeFor[Plan](), "json", "", topologyEnums())
	s["$schema"], s["$id"], s["title"] = "https://json-schema.org/draft/2020-12/schema", PlanSchemaID, "drill run plan"
	s["required"] = []string{"topology", "run_id", "runtime", "links"}
	return json.MarshalIndent(s, "", "  ")
}

// topologyEnums are the values the validator accepts, by field path.
func topologyEnums() map[string][]string {
	return map[string][]string{
		"design.replication":        {ReplicationAsync, ReplicationSemiSync},
		"design.fencing":            {FencingLease, FencingNone},
		"design.read_from":          {ReadFromLocal, ReadFromPrimary},
		"design.cache_invalidation": {InvalidateAll, InvalidateLocal},
		"gossip.profile":            {ProfileFast, ProfileLAN, ProfileWAN},
		"cache.eviction":            cacheEvictions,
		"cache.persistence":         {PersistenceNone, PersistenceRDB, PersistenceAOF},
	}
}

// schemaOf describes type t as its tag (yaml or json) names the fields; path is the field path
// of t (for enums).
func schemaOf(t reflect.Type, tag, path string, enums map[string][]string) map[string]any {
	if vals, ok := enums[path]; ok {
		return map[string]any{"enum": vals}
	}
	switch t {
	case reflect.TypeFor[Duration]():
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "description": "a duration, e.g. 40ms, 3s"}
	case reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case reflect.TypeFor[netip.Addr](), reflect.TypeFor[[]byte]():
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), tag, path, enums)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), tag, path, enums)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), tag, path, enums)}
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get(tag), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			child := name
			if path != "" {
				child = path + "." + name
			}
			props[name] = schemaOf(f.Type, tag, child, enums)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	return map[string]any{}
}
