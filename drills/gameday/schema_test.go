package gameday

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/drillworks/drill/topology/schematest"
)

// The checked-in schema is what the code generates (regenerate with `drill schema gameday >
// drills/gameday/schema/gameday.schema.json`), and it names exactly the fields Parse accepts.
func TestSchemaCheckedIn(t *testing.T) {
	want := schematest.CheckedIn(t, "schema/gameday.schema.json", "gameday", JSONSchema)
	var s struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(want, &s); err != nil {
		t.Fatal(err)
	}
	if props, fields := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(slices.Values(topFields())); !slices.Equal(props, fields) {
		t.Errorf("the schema's fields %v are not the parser's %v", props, fields)
	}
}

// TestPlansValidate: the package doc's example plan (which Parse accepts) validates against the
// schema; broken ones do not.
func TestPlansValidate(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	s := schematest.Compile(t, SchemaID, b)
	doc := func(data string) any { return schematest.YAMLDoc(t, []byte(data)) }
	good := `name: weekly-failover
runtime: local
topology: regions.yaml
mode: stop-on-first-failure
drills:
  - drill: region-outage
    set: {replication: semi-sync}
    budgets: {lost_acked_writes: 0}
  - human: "Page the on-call and wait for ack"
  - drill: drills/my-drill.yaml
    topology: other.yaml
webhook: {url: "https://hooks.example/drill", timeout: 5s, retries: 3, headers: {X-Team: sre}, secret_env: DRILL_HOOK_KEY}
schedule: {cron: "0 10 * * FRI", jitter: 5m}
`
	if _, err := Parse("good.yaml", []byte(good)); err != nil {
		t.Fatalf("the example plan does not parse: %v", err)
	}
	if err := s.Validate(doc(good)); err != nil {
		t.Errorf("the example plan does not validate: %v", err)
	}
	for name, bad := range map[string]string{
		"no drills":        "name: x\n",
		"unknown mode":     "name: x\nmode: yolo\ndrills: [{drill: region-outage}]\n",
		"unknown budget":   "name: x\ndrills: [{drill: region-outage, budgets: {rto: 5}}]\n",
		"unknown setting":  "name: x\ndrills: [{drill: region-outage, set: {quorum: 2}}]\n",
		"drill and human":  "name: x\ndrills: [{drill: region-outage, human: hi}]\n",
		"unknown field":    "name: x\ndrills: [{drill: region-outage}]\nretries: 3\n",
		"webhook sans url": "name: x\ndrills: [{drill: region-outage}]\nwebhook: {timeout: 5s}\n",
	} {
		if err := s.Validate(doc(bad)); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}
