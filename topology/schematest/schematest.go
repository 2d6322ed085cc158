// Package schematest is what the schema tests of topology, drill files and game-day plans share:
// check a checked-in schema against the code, compile a schema, and read a YAML document as the
// validator sees it. Only tests import it.
package schematest

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Compile compiles a schema under its id, failing the test if it does not compile.
func Compile(t testing.TB, id string, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
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

// YAMLDoc reads a YAML document as the validator sees it (through JSON, as an editor would).
func YAMLDoc(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// CheckedIn fails the test unless the checked-in schema file holds what gen generates now (kind
// is the `drill schema` argument that regenerates it); it returns the generated schema.
func CheckedIn(t testing.TB, file, kind string, gen func() ([]byte, error)) []byte {
	t.Helper()
	want, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("%s is not what the code generates: regenerate it with drill schema %s > %s", file, kind, file)
	}
	return want
}
