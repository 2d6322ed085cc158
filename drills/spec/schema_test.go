package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drillworks/drill/topology/schematest"
)

// The checked-in schema is what the code generates (regenerate with `drill schema drill >
// drills/spec/schema/drill.schema.json`): a new fault kind, parameter, budget or setting changes it.
func TestSchemaCheckedIn(t *testing.T) {
	schematest.CheckedIn(t, "schema/drill.schema.json", "drill", JSONSchema)
}

func TestBuiltinDrillsValidate(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	s := schematest.Compile(t, SchemaID, b)
	doc := func(data []byte) any { return schematest.YAMLDoc(t, data) }
	files, _ := filepath.Glob("../builtin/*.yaml")
	if len(files) < 9 {
		t.Fatalf("found %d built-in drills", len(files))
	}
	for _, f := range append(files, "testdata/region-outage.yaml") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(doc(data)); err != nil {
			t.Errorf("%s does not validate: %v", f, err)
		}
	}
	for name, bad := range map[string]string{
		"unknown fault":    "name: x\nsteps:\n  - inject: {fault: nuke}\n",
		"unknown budget":   "name: x\nbudgets: {rto: 5}\nsteps: [{wait: 1s}]\n",
		"unknown setting":  "name: x\nsettings: {quorum: 2}\nsteps: [{wait: 1s}]\n",
		"two actions":      "name: x\nsteps:\n  - {wait: 1s, heal: all}\n",
		"bad duration":     "name: x\nsteps: [{wait: soon}]\n",
		"unknown topology": "name: x\ntopology: big\nsteps: [{wait: 1s}]\n",
	} {
		if err := s.Validate(doc([]byte(bad))); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}
