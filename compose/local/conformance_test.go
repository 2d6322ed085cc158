package local_test

import (
	"testing"

	"github.com/drillworks/drill/compose/runtime/runtimetest"
)

// TestEveryFaultKind runs the runtime conformance suite on real processes: every registered fault
// kind's example applies, shows in gossip, on the WAN links and in the process table, heals, and
// the cluster converges again with nothing left behind.
func TestEveryFaultKind(t *testing.T) {
	c := startCluster(t)
	runtimetest.FaultKinds(t, runtimetest.Cluster{Plan: c.plan, Runtime: c.rt, Injector: c.inj, Observer: c.obs})
}
