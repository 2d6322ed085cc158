package inject

import (
	"context"
	"testing"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime/fake"
)

// TestFlappingSwitchesUntilUndone: a flapping partition's toxics and gossip rules come and go in
// the background; an undo in either phase leaves nothing and stops the switching.
func TestFlappingSwitchesUntilUndone(t *testing.T) {
	inj, rt := fakeCluster(t, fake.WithPacketFaults())
	ctx := context.Background()
	f := fault.Fault{ID: "flap", Kind: fault.KindFlapping, Regions: []string{"us-east", "eu-west"},
		Params: fault.Params{fault.ParamOf: string(fault.KindPartition), fault.ParamOn: "200ms", fault.ParamOff: "200ms"}}
	link := inj.plan.LinksBetween("us-east", "eu-west")[0].Name
	on := func() bool { return len(rt.Toxics(link)) > 0 && !rt.Gossip("us-east-web-1").Empty() }
	off := func() bool { return len(rt.Toxics(link)) == 0 && rt.Gossip("us-east-web-1").Empty() }
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, undoWhen := range []string{"on", "off"} {
		if err := inj.Apply(ctx, f); err != nil {
			t.Fatal(err)
		}
		if !on() {
			t.Fatal("a flapping fault starts off")
		}
		poll("switched off", off)
		poll("switched on again", on)
		if undoWhen == "off" {
			poll("switched off again", off)
		}
		if err := inj.Undo(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		if !off() {
			t.Fatalf("undone while %s: toxics %v", undoWhen, rt.Toxics(link))
		}
		// Two periods later it has not come back.
		time.Sleep(500 * time.Millisecond)
		if !off() || len(inj.Active()) != 0 {
			t.Fatalf("undone while %s, it switched on again", undoWhen)
		}
		if items := inj.Residue(ctx); !ResidueClean(items) {
			t.Fatalf("residue: %+v", items)
		}
	}
}
