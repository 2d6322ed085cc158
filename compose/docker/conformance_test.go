package docker_test

import (
	"testing"

	"github.com/drillworks/drill/compose/docker"
	"github.com/drillworks/drill/compose/inject"
	"github.com/drillworks/drill/compose/runtime/runtimetest"
)

// TestEveryFaultKind runs the runtime conformance suite on containers: every registered fault
// kind's example applies, shows in gossip, on the WAN links, in the nodes' packet rules and in the
// containers' states, heals, and the cluster converges again with nothing left behind.
func TestEveryFaultKind(t *testing.T) {
	c := startCluster(t, "dtest-kinds", docker.PacketRulesFromAuto)
	inj, err := inject.New(c.plan, c.rt, inject.LedgerPath(c.plan.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inj.Close()
	runtimetest.FaultKinds(t, runtimetest.Cluster{Plan: c.plan, Runtime: c.rt, Injector: inj, Observer: c.obs})
}
