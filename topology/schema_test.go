package topology

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The checked-in schemas are what the code generates (regenerate with `drill schema topology >
// topology/schema/topology.schema.json`, and plan likewise).
func TestSchemasCheckedIn(t *testing.T) {
	for file, gen := range map[string]func() ([]byte, error){"schema/topology.schema.json": TopologySchema, "schema/plan.schema.json": PlanSchema} {
		want, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Errorf("%s is not what the code generates: regenerate it with drill schema", file)
		}
	}
}

// compileSchema compiles a generated schema.
func compileSchema(t *testing.T, gen func() ([]byte, error), id string) *jsonschema.Schema {
	t.Helper()
	b, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlDoc reads a YAML file as the JSON value a schema validates.
func yamlDoc(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

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
