package fault

import (
	"slices"
	"testing"

	"github.com/drillworks/drill/agents/disk"
)

func TestDiskFaults(t *testing.T) {
	env := testEnv(t, true)
	tp := env.Plan.Topology
	const node = "eu-west-db-1"

	stall := effectsOf(t, env, Fault{ID: "s", Kind: KindDiskStall, Node: node})
	if stall.Disk[node] != (disk.State{Stall: true}) || stall.Process.Action != ActionNone || IsInstant(KindDiskStall) {
		t.Errorf("disk-stall: %+v", stall)
	}
	full := effectsOf(t, env, Fault{ID: "f", Kind: KindDiskFull, Node: node})
	if full.Disk[node] != (disk.State{Full: true}) || full.Process.Action != ActionRestartOnHeal || !slices.Equal(full.Process.Nodes, []string{node}) {
		t.Errorf("disk-full: %+v", full)
	}
	corrupt := effectsOf(t, env, Fault{ID: "c", Kind: KindDiskCorrupt, Node: node})
	if !slices.Equal(corrupt.Corrupt, []string{node}) || corrupt.Process.Action != ActionRestart || !IsInstant(KindDiskCorrupt) || len(corrupt.Disk) != 0 {
		t.Errorf("disk-corrupt: %+v", corrupt)
	}
	for _, k := range []Kind{KindDiskStall, KindDiskFull, KindDiskCorrupt} {
		if f := (Fault{ID: "p", Kind: k, Node: TargetPrimary}); Validate(&f, tp) != nil {
			t.Errorf("%s refuses target: primary", k)
		}
		for _, bad := range []Fault{
			{ID: "x", Kind: k, Node: "us-east-web-1"},
			{ID: "x", Kind: k, Region: "us-east"},
			{ID: "x", Kind: k},
			{ID: "x", Kind: k, Node: node, Params: Params{ParamPercent: "3"}},
		} {
			if err := Validate(&bad, tp); err == nil {
				t.Errorf("validate accepted %+v", bad)
			}
		}
		if Beyond(Fault{Kind: k, Node: node}, tp) != "" {
			t.Errorf("%s breaks a stated assumption", k)
		}
	}
}
