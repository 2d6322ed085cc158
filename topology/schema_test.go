package topology

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/drillworks/drill/topology/schematest"
)

// The checked-in schemas are what the code generates (regenerate with `drill schema topology >
// topology/schema/topology.schema.json`, and plan likewise).
func TestSchemasCheckedIn(t *testing.T) {
	schematest.CheckedIn(t, "schema/topology.schema.json", "topology", TopologySchema)
	schematest.CheckedIn(t, "schema/plan.schema.json", "plan", PlanSchema)
}

// compileSchema compiles a generated schema.
func compileSchema(t *testing.T, gen func() ([]byte, error), id string) *jsonschema.Schema {
	t.Helper()
	b, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	return schematest.Compile(t, id, b)
}

// yamlDoc reads a YAML file as the JSON value a schema validates.
func yamlDoc(t *testing.T, data []byte) any { return schematest.YAMLDoc(t, data) }

func TestBuiltinTopologiesAndPlansValidate(t *testing.T) {
	s := compileSchema(t, TopologySchema, TopologySchemaID)
	files, _ := filepath.Glob("testdata/good/*.yaml")
	for _, f := range append([]string{"default.yaml", "cache.yaml", "queue.yaml"}, files...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlDoc(t, data)); err != nil {
			t.Errorf("%s does not validate: %v", f, err)
		}
	}
	for name, bad := range map[string]string{
		"unknown field": "name: t\nregions: [{name: a}]\nregionz: []\n",
		"bad eviction":  "name: t\nregions: [{name: a}]\ncache: {eviction: lru}\n",
		"bad duration":  "name: t\nregions: [{name: a}]\nwan: {latency: fast}\n",
		"no regions":    "name: t\n",
	} {
		if err := s.Validate(yamlDoc(t, []byte(bad))); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
	ps := compileSchema(t, PlanSchema, PlanSchemaID)
	top, _ := Builtin("cache")
	p, err := NewPlan(top, PlanOptions{Runtime: "local", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := ps.Validate(doc); err != nil {
		t.Errorf("a plan NewPlan made does not validate: %v", err)
	}
}
