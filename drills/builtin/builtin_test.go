package builtin

import (
	"testing"

	"github.com/drillworks/drill/topology"
)

func TestBuiltinsParseAndResolve(t *testing.T) {
	names := Names()
	want := map[string]bool{"region-outage": true, "primary-kill": true, "wan-latency": true, "region-partition": true,
		"primary-pause": true, "flapping-partition": true, "failover-second-failure": true}
	for _, n := range names {
		delete(want, n)
		d, err := Load(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if d.Name != n {
			t.Fatalf("%s: drill names itself %q", n, d.Name)
		}
		if _, err := d.Resolve(topology.Default()); err != nil {
			t.Fatalf("%s against the default topology: %v", n, err)
		}
	}
	if len(want) > 0 {
		t.Fatalf("missing built-in drills: %v", want)
	}
}
