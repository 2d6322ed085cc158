package docker

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drillworks/drill/topology/netalloc"
)

// Creating a network is idempotent and safe against concurrent creates: every caller succeeds and
// exactly one network exists; a network of that name that is not the topology's is refused.
func TestEnsureNetworkIsRaceSafe(t *testing.T) {
	if testing.Short() {
		t.Skip("-short creates no Docker object")
	}
	ctx := context.Background()
	if err := Available(ctx, 5*time.Second); err != nil {
		t.Skipf("SKIPPED: no Docker engine answers (%v): the Docker runtime is NOT tested here", err)
	}
	eng, err := NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r := &Runtime{eng: eng}
	labels := objectLabels("dtest-net", "run-1", RoleNetwork, "")
	b := netalloc.Private(t).Addr().As4()
	spec := NetworkSpec{Name: "drill-dtest-net-wan", Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], 128, 0}), 17),
		Gateway: netip.AddrFrom4([4]byte{b[0], b[1], 255, 254}), Labels: labels}
	t.Cleanup(func() {
		ns, err := eng.NetworkList(context.Background(), map[string]string{LabelTopology: "dtest-net"})
		if err != nil {
			t.Error(err)
		}
		for _, n := range ns {
			if err := eng.NetworkRemove(context.Background(), n.ID); err != nil {
				t.Error(err)
			}
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ensureNetwork(ctx, r.eng, spec)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	ns, err := eng.NetworkList(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Subnet != spec.Subnet {
		t.Fatalf("networks after concurrent creates: %+v", ns)
	}
	other := spec
	other.Labels = map[string]string{LabelTopology: "someone-else"}
	if err := ensureNetwork(ctx, r.eng, other); err == nil || !strings.Contains(err.Error(), "not this topology's") {
		t.Fatalf("taking over another topology's network: %v", err)
	}
	// The same topology's network made by another owner is not taken over either.
	other.Labels = objectLabels("dtest-net", "run-1", RoleNetwork, "")
	other.Labels[LabelOwner] = "uid-4242@elsewhere"
	if err := ensureNetwork(ctx, r.eng, other); err == nil || !strings.Contains(err.Error(), "not this owner's") {
		t.Fatalf("taking over another owner's network: %v", err)
	}
}
