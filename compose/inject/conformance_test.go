package inject_test

import (
	"testing"

	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime/fake"
	"github.com/drillworks/drill/compose/runtime/runtimetest"
	"github.com/drillworks/drill/topology"
)

// TestEveryFaultKindOnTheFakeRuntime runs the runtime conformance suite over the in-memory
// runtime: every kind's example applies, shows and heals, with and without a packet layer.
func TestEveryFaultKindOnTheFakeRuntime(t *testing.T) {
	for _, packets := range []bool{true, false} {
		t.Run(map[bool]string{true: "packet layer", false: "no packet layer"}[packets], func(t *testing.T) {
			p, err := topology.NewPlan(topology.Default(), topology.PlanOptions{Runtime: "fake", RunDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			opts := []fake.Option{fake.WithAutoFailover()}
			if packets {
				opts = append(opts, fake.WithPacketFaults())
			}
			rt, err := fake.New(p, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rt.Close)
			inj, err := inject.New(p, rt, inject.LedgerPath(p.RunDir), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer inj.Close()
			runtimetest.FaultKinds(t, runtimetest.Cluster{Plan: p, Runtime: rt, Injector: inj, Observer: observe.New(p, rt)})
		})
	}
}
