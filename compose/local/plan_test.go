package local_test

import (
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/local"
	"github.com/drillworks/drill/topology"
)

// TestNewPlanNeedsLoopbackClients: a region whose client subnets hold no loopback /24 cannot have
// its users told apart on loopback, so the local runtime refuses the topology, naming the region.
func TestNewPlanNeedsLoopbackClients(t *testing.T) {
	topo := topology.Default()
	if _, err := local.NewPlan(topo, t.TempDir()); err != nil {
		t.Fatalf("the default topology: %v", err)
	}
	topo.Regions[1].ClientSubnets = []string{"198.51.100.0/24"}
	_, err := local.NewPlan(topo, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "regions[1] (eu-west): client_subnets has no loopback subnet") {
		t.Fatalf("NewPlan = %v, want the region without a loopback client subnet named", err)
	}
}
