package inject

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/drillworks/drill/agents/clock"
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime/fake"
)

// TestClockFaultLifecycle: shifts of two faults on one node add up; a restarted node gets its shift
// back; an undo leaves the rest; the residue check sees a shifted clock; recover puts
// every clock back on real time.
func TestClockFaultLifecycle(t *testing.T) {
	inj, rt := fakeCluster(t, fake.WithPacketFaults())
	ctx := context.Background()
	const node = "eu-west-db-1"
	skew := fault.Fault{ID: "skew", Kind: fault.KindClockSkew, Node: node, Params: fault.Params{fault.ParamOffset: "-400ms"}}
	drift := fault.Fault{ID: "drift", Kind: fault.KindClockDrift, Node: node, Params: fault.Params{fault.ParamPercent: "15"}}
	for _, f := range []fault.Fault{skew, drift} {
		if err := inj.Apply(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	both := clock.Shift{Offset: -400 * time.Millisecond, DriftPPM: 150_000}
	if got := rt.Clock(node); got != both {
		t.Fatalf("shift %+v, want the two faults' sum %+v", got, both)
	}
	if clean, detail := residueDetail(inj.Residue(ctx), "shifted clocks on running db nodes"); clean || detail == "" {
		t.Errorf("residue clean (%q) with a shifted clock", detail)
	}

	// A kill loses the process's shift; the start that undoes it puts the shift back.
	kill := fault.Fault{ID: "kill", Kind: fault.KindKill, Node: node}
	if err := inj.Apply(ctx, kill); err != nil {
		t.Fatal(err)
	}
	if got := rt.Clock(node); !got.Zero() {
		t.Fatalf("a killed node keeps a shift %+v", got)
	}
	if err := inj.Undo(ctx, kill.ID); err != nil {
		t.Fatal(err)
	}
	if got := rt.Clock(node); got != both {
		t.Fatalf("after the restart the shift is %+v, want %+v", got, both)
	}

	if err := inj.Undo(ctx, skew.ID); err != nil {
		t.Fatal(err)
	}
	if got := rt.Clock(node); got != (clock.Shift{DriftPPM: 150_000}) {
		t.Fatalf("after the skew's undo the shift is %+v, want the drift alone", got)
	}
	// Recover: the ledger's drift is undone and the sweep clears every clock.
	if _, err := inj.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rt.Clock(node); !got.Zero() {
		t.Fatalf("after recover the shift is %+v", got)
	}
	if items := inj.Residue(ctx); !ResidueClean(items) {
		t.Fatalf("residue after recover: %+v", items)
	}

	// Aimed at the primary: the node that is primary when it lands.
	primary, _ := rt.Primary()
	onPrimary := fault.Fault{ID: "p", Kind: fault.KindClockSkew, Node: fault.TargetPrimary, Params: fault.Params{fault.ParamOffset: "1s"}}
	if err := inj.Apply(ctx, onPrimary); err != nil {
		t.Fatal(err)
	}
	if got := rt.Clock(primary); got.Offset != time.Second {
		t.Fatalf("the primary %s is shifted %+v", primary, got)
	}
	if err := inj.UndoAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rt.Clock(primary); !got.Zero() {
		t.Fatalf("after undo the primary is shifted %+v", got)
	}
}

// TestDiskFaultLifecycle: disk faults show on the node and in the residue check; healing a full
// disk restarts the node (an operator frees it and restarts the database); a damaged record is
// written before the restart that reads it.
func TestDiskFaultLifecycle(t *testing.T) {
	inj, rt := fakeCluster(t, fake.WithPacketFaults())
	ctx := context.Background()
	const node = "eu-west-db-1"
	stall := fault.Fault{ID: "stall", Kind: fault.KindDiskStall, Node: node}
	full := fault.Fault{ID: "full", Kind: fault.KindDiskFull, Node: node}
	for _, f := range []fault.Fault{stall, full} {
		if err := inj.Apply(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if got := rt.Disk(node); got != (disk.State{Stall: true, Full: true}) {
		t.Fatalf("disk %+v, want both faults", got)
	}
	if clean, detail := residueDetail(inj.Residue(ctx), "disk faults on running db nodes"); clean || detail == "" {
		t.Errorf("residue clean (%q) with disk faults", detail)
	}
	before := len(rt.Ops())
	if err := inj.Undo(ctx, stall.ID); err != nil {
		t.Fatal(err)
	}
	if got := rt.Disk(node); got != (disk.State{Full: true}) || len(rt.Ops()) != before {
		t.Fatalf("after the stall's undo: disk %+v, ops %v", got, rt.Ops()[before:])
	}
	if err := inj.Undo(ctx, full.ID); err != nil {
		t.Fatal(err)
	}
	if got := rt.Disk(node); !got.Zero() {
		t.Fatalf("after the full disk's undo: disk %+v", got)
	}
	if ops := rt.Ops()[before:]; !slices.Equal(ops, []string{"kill " + node, "start " + node}) {
		t.Fatalf("healing a full disk did %v, want a restart", ops)
	}

	before = len(rt.Ops())
	corrupt := fault.Fault{ID: "corrupt", Kind: fault.KindDiskCorrupt, Node: node}
	if err := inj.Apply(ctx, corrupt); err != nil {
		t.Fatal(err)
	}
	if ops := rt.Ops()[before:]; !slices.Equal(ops, []string{"corrupt " + node, "kill " + node, "start " + node}) {
		t.Fatalf("disk-corrupt did %v, want the damage, then a restart", ops)
	}
	if len(inj.Active()) != 0 {
		t.Fatalf("an instant fault stays active: %+v", inj.Active())
	}
	if items := inj.Residue(ctx); !ResidueClean(items) {
		t.Fatalf("residue: %+v", items)
	}
}
