package inject

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime/fake"
	"github.com/drillworks/drill/topology"
)

// These tests drive the whole injector (ledger, every layer, undo, recover, residue) over the
// in-memory runtime, whose endpoints are real HTTP servers answering from a model.

func fakeCluster(t *testing.T, opts ...fake.Option) (*Injector, *fake.Runtime) {
	t.Helper()
	topo := topology.Default()
	p, err := topology.NewPlan(topo, topology.PlanOptions{Runtime: "fake", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := fake.New(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	inj, err := New(p, rt, LedgerPath(p.RunDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inj.Close() })
	return inj, rt
}

func residueDetail(items []ResidueItem, what string) (clean bool, detail string) {
	for _, it := range items {
		if it.What == what {
			return it.Clean, it.Detail
		}
	}
	return false, "no residue item " + what
}

const (
	whatToxics  = "drill toxics on WAN links"
	whatGossip  = "gossip fault rules on running nodes"
	whatPackets = "packet drop and loss rules in nodes"
	whatStopped = "nodes not running"
	whatFrozen  = "frozen nodes"
	whatLedger  = "outstanding faults in the ledger"
)

func TestNetworkFaultLifecycle(t *testing.T) {
	for _, packets := range []bool{true, false} {
		name := map[bool]string{true: "packet layer", false: "no packet layer"}[packets]
		t.Run(name, func(t *testing.T) {
			var opts []fake.Option
			if packets {
				opts = append(opts, fake.WithPacketFaults())
			}
			inj, rt := fakeCluster(t, opts...)
			ctx := context.Background()
			if items := inj.Residue(ctx); !ResidueClean(items) {
				t.Fatalf("residue before any fault: %+v", items)
			}
			f := fault.Fault{ID: "blackhole:us-east", Kind: fault.KindBlackhole, Region: "us-east"}
			if err := inj.Apply(ctx, f); err != nil {
				t.Fatal(err)
			}
			if err := inj.Apply(ctx, f); err == nil {
				t.Fatal("the same fault applied twice")
			}
			if n := len(rt.Toxics("us-east--eu-west-db-1")); n != 2 {
				t.Errorf("%d toxics on us-east--eu-west-db-1, want both streams cut", n)
			}
			if n := len(rt.Toxics("eu-west--witness")); n != 0 {
				t.Errorf("toxics on a link the black hole does not touch: %d", n)
			}
			if r := rt.Gossip("eu-west-web-1"); len(r.Drop) != 1 {
				t.Errorf("gossip rules outside the hole: %+v", r)
			}
			_, hasPackets := rt.PacketRule("us-east-db-1", f.ID)
			if hasPackets != packets {
				t.Errorf("packet rules present = %v with packet layer %v", hasPackets, packets)
			}
			items := inj.Residue(ctx)
			for _, what := range []string{whatToxics, whatGossip, whatLedger} {
				if clean, _ := residueDetail(items, what); clean {
					t.Errorf("residue %q clean while a black hole is active", what)
				}
			}
			if clean, _ := residueDetail(items, whatPackets); packets && clean {
				t.Error("packet residue clean while a black hole is active")
			}
			if err := inj.Undo(ctx, f.ID); err != nil {
				t.Fatal(err)
			}
			if items := inj.Residue(ctx); !ResidueClean(items) {
				t.Fatalf("residue after undo: %+v", items)
			}
			if err := inj.Undo(ctx, f.ID); err != nil {
				t.Fatalf("a second undo: %v", err)
			}

			// Applied again, then recovered from the ledger alone by a new injector; a link
			// disabled behind drill's back is re-enabled by the sweep.
			if err := inj.Apply(ctx, f); err != nil {
				t.Fatal(err)
			}
			rt.DisableLink("eu-west--witness")
			// As if drill had died: the lock goes with the process.
			if err := inj.Close(); err != nil {
				t.Fatal(err)
			}
			again, err := New(inj.plan, rt, inj.LedgerFile(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if a := again.Active(); len(a) != 1 || a[0].ID != f.ID || len(a[0].Resolved) != 4 {
				t.Fatalf("the ledger holds %+v", a)
			}
			undone, err := again.Recover(ctx)
			if err != nil || len(undone) != 1 {
				t.Fatalf("recover: %v %v", undone, err)
			}
			if items := again.Residue(ctx); !ResidueClean(items) {
				t.Fatalf("residue after recover: %+v", items)
			}
			if packets && rt.Flushes() == 0 {
				t.Error("recover did not flush the packet rules")
			}
		})
	}
}

func TestLossFault(t *testing.T) {
	for _, packets := range []bool{true, false} {
		t.Run(map[bool]string{true: "packet layer", false: "gossip only"}[packets], func(t *testing.T) {
			var opts []fake.Option
			if packets {
				opts = append(opts, fake.WithPacketFaults())
			}
			inj, rt := fakeCluster(t, opts...)
			ctx := context.Background()
			bad := fault.Fault{ID: "bad", Kind: fault.KindLoss, Region: "us-east", Params: fault.Params{fault.ParamPercent: "100"}}
			if err := inj.Apply(ctx, bad); err == nil {
				t.Fatal("a loss of 100 % was applied")
			}
			if a := inj.Active(); len(a) != 0 {
				t.Fatalf("a rejected fault is outstanding: %+v", a)
			}
			f := fault.Fault{ID: "loss:eu-west|us-east", Kind: fault.KindLoss, Regions: []string{"eu-west", "us-east"},
				Params: fault.Params{fault.ParamPercent: "30"}}
			if err := inj.Apply(ctx, f); err != nil {
				t.Fatal(err)
			}
			if rt.HasToxicPrefix(fault.ToxicPrefix) {
				t.Error("a loss fault put toxics on the WAN links")
			}
			for _, n := range []string{"eu-west-db-1", "eu-west-web-1"} {
				rule, ok := rt.PacketRule(n, f.ID)
				g := rt.Gossip(n)
				if packets && (!ok || rule.LossPercent != 30 || len(g.Loss) != 0) {
					t.Errorf("%s: packet rule %+v %v, gossip %+v", n, rule, ok, g)
				}
				if !packets && (ok || len(g.Loss) != 1 || g.Loss[0].Percent != 30) {
					t.Errorf("%s: gossip %+v, packet rule present %v", n, g, ok)
				}
			}
			if _, ok := rt.PacketRule("us-east-db-1", f.ID); ok {
				t.Error("loss rules on both sides: packets would meet two draws")
			}
			if clean, detail := residueDetail(inj.Residue(ctx), whatLedger); clean || detail != f.ID {
				t.Fatalf("ledger residue %v %q", clean, detail)
			}
			if err := inj.Undo(ctx, f.ID); err != nil {
				t.Fatal(err)
			}
			if items := inj.Residue(ctx); !ResidueClean(items) {
				t.Fatalf("residue after undo: %+v", items)
			}
		})
	}
}

// TestProcessFaults: kill, freeze, restart and kill-primary through the runtime; a node two
// faults hold stays down until both are undone.
func TestProcessFaults(t *testing.T) {
	inj, rt := fakeCluster(t, fake.WithPacketFaults())
	ctx := context.Background()
	running := func(node string) (bool, bool) {
		nodes, _ := rt.Nodes(ctx)
		for _, n := range nodes {
			if n.Name == node {
				return n.Running, n.Frozen
			}
		}
		t.Fatalf("no node %s", node)
		return false, false
	}
	one := fault.Fault{ID: "kill:us-east-web-1", Kind: fault.KindKill, Node: "us-east-web-1"}
	region := fault.Fault{ID: "kill:us-east", Kind: fault.KindKill, Region: "us-east"}
	for _, f := range []fault.Fault{one, region} {
		if err := inj.Apply(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if clean, detail := residueDetail(inj.Residue(ctx), whatStopped); clean || !strings.Contains(detail, "us-east-db-1") {
		t.Errorf("stopped residue %v %q", clean, detail)
	}
	if err := inj.Undo(ctx, one.ID); err != nil {
		t.Fatal(err)
	}
	if up, _ := running("us-east-web-1"); up {
		t.Error("a node the region kill still holds was started")
	}
	if err := inj.Undo(ctx, region.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range fault.RegionNodes(inj.plan.Topology, "us-east") {
		if up, _ := running(n); !up {
			t.Errorf("%s not running after every kill was undone", n)
		}
	}

	freeze := fault.Fault{ID: "freeze:eu-west-db-1", Kind: fault.KindFreeze, Node: "eu-west-db-1"}
	if err := inj.Apply(ctx, freeze); err != nil {
		t.Fatal(err)
	}
	if _, frozen := running("eu-west-db-1"); !frozen {
		t.Fatal("freeze did not freeze")
	}
	if clean, _ := residueDetail(inj.Residue(ctx), whatFrozen); clean {
		t.Error("frozen residue clean while a node is frozen")
	}
	if err := inj.Undo(ctx, freeze.ID); err != nil {
		t.Fatal(err)
	}

	// A restart is over at once: nothing outstanding, and a node another fault cuts off keeps
	// its packet rules across the restart.
	bh := fault.Fault{ID: "blackhole:eu-west", Kind: fault.KindBlackhole, Region: "eu-west"}
	if err := inj.Apply(ctx, bh); err != nil {
		t.Fatal(err)
	}
	restart := fault.Fault{ID: "restart:eu-west-web-1", Kind: fault.KindRestart, Node: "eu-west-web-1"}
	if err := inj.Apply(ctx, restart); err != nil {
		t.Fatal(err)
	}
	if a := inj.Active(); len(a) != 1 || a[0].ID != bh.ID {
		t.Fatalf("active after a restart: %+v", a)
	}
	if _, ok := rt.PacketRule("eu-west-web-1", bh.ID); !ok {
		t.Error("the restarted node lost the black hole's packet rules")
	}
	if r := rt.Gossip("eu-west-web-1"); len(r.Drop) == 0 {
		t.Error("the restarted node lost the black hole's gossip rules")
	}
	if err := inj.UndoAll(ctx); err != nil {
		t.Fatal(err)
	}

	// kill-primary finds the primary by asking the cluster.
	primary, _ := rt.Primary()
	kp := fault.Fault{ID: "kill-primary", Kind: fault.KindKillPrimary}
	if err := inj.Apply(ctx, kp); err != nil {
		t.Fatal(err)
	}
	if a := inj.Active(); len(a) != 1 || !slices.Equal(a[0].Resolved, []string{primary}) {
		t.Fatalf("kill-primary resolved to %+v, want %s", a, primary)
	}
	if up, _ := running(primary); up {
		t.Error("kill-primary left the primary running")
	}
	if err := inj.UndoAll(ctx); err != nil {
		t.Fatal(err)
	}
	if items := inj.Residue(ctx); !ResidueClean(items) {
		t.Fatalf("residue at the end: %+v", items)
	}
	want := []string{"kill us-east-web-1", "kill us-east-web-2", "kill us-east-db-1", "kill us-east-dns-1"}
	if ops := rt.Ops(); !slices.Equal(ops[:4], want) {
		t.Errorf("first operations %v, want %v", ops[:4], want)
	}
}

// TestNodeOfAnotherRunRefused: after a start, a node must answer as this run's node; one that
// answers as another run's (another bring-up at the same address) is not taken for it, and the
// fault stays outstanding for a later undo or recover.
func TestNodeOfAnotherRunRefused(t *testing.T) {
	inj, _ := fakeCluster(t, fake.WithForeignRun("us-east-web-1"))
	inj.nodeTimeout = 500 * time.Millisecond
	ctx := context.Background()
	f := fault.Fault{ID: "kill:us-east-web-1", Kind: fault.KindKill, Node: "us-east-web-1"}
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	err := inj.Undo(ctx, f.ID)
	if err == nil || !strings.Contains(err.Error(), `of run "another-run"`) {
		t.Fatalf("undo with a node of another run answering: %v, want it refused", err)
	}
	if a := inj.Active(); len(a) != 1 || a[0].ID != f.ID {
		t.Fatalf("active after the refused undo: %+v, want the kill outstanding", a)
	}
}

// TestNodeThatExitsAtStartIsReported: a node that dies right after its start (its agent failed:
// a port taken, say) is reported as having exited, not as slow to answer.
func TestNodeThatExitsAtStartIsReported(t *testing.T) {
	inj, _ := fakeCluster(t, fake.WithCrashAtStart("us-east-web-1"))
	inj.nodeTimeout = time.Minute // the report must not wait for it
	ctx := context.Background()
	f := fault.Fault{ID: "kill:us-east-web-1", Kind: fault.KindKill, Node: "us-east-web-1"}
	if err := inj.Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	err := inj.Undo(ctx, f.ID)
	if err == nil || !strings.Contains(err.Error(), "node us-east-web-1 exited after start") {
		t.Fatalf("undo with the node dying at start: %v, want it reported as exited", err)
	}
}
