package builtin

import (
	"testing"

	"github.com/drillworks/drill/topology"
)

func TestBuiltinsParseAndResolve(t *testing.T) {
	names := Names()
	want := map[string]bool{"region-outage": true, "primary-kill": true, "wan-latency": true, "region-partition": true,
		"primary-pause": true, "flapping-partition": true, "failover-second-failure": true,
		"cache-failover": true, "cache-stampede": true}
	for _, n := range names {
		delete(want, n)
		d, err := Load(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if d.Name != n {
			t.Fatalf("%s: drill names itself %q", n, d.Name)
		}
		top := topology.Default()
		if d.Topology != "" {
			top, _ = topology.Builtin(d.Topology)
		}
		if _, err := d.Resolve(top); err != nil {
			t.Fatalf("%s against the %s topology: %v", n, top.Name, err)
		}
	}
	if len(want) > 0 {
		t.Fatalf("missing built-in drills: %v", want)
	}
}
