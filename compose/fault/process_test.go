package fault

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestProcessKinds(t *testing.T) {
	env := testEnv(t, true)
	for _, c := range []struct {
		kind    Kind
		action  Action
		instant bool
	}{{KindKill, ActionKill, false}, {KindFreeze, ActionFreeze, false}, {KindRestart, ActionRestart, true}} {
		one := effectsOf(t, env, Fault{ID: "x", Kind: c.kind, Node: "us-east-db-1"})
		if one.Process.Action != c.action || !slices.Equal(one.Process.Nodes, []string{"us-east-db-1"}) {
			t.Errorf("%s of a node: %+v", c.kind, one.Process)
		}
		if len(one.Toxics)+len(one.Packets)+len(one.Gossip) != 0 {
			t.Errorf("%s has network effects: %+v", c.kind, one)
		}
		region := effectsOf(t, env, Fault{ID: "y", Kind: c.kind, Region: "eu-west"})
		if want := []string{"eu-west-web-1", "eu-west-web-2", "eu-west-db-1", "eu-west-dns-1"}; !slices.Equal(region.Process.Nodes, want) {
			t.Errorf("%s of a region acts on %v, want %v", c.kind, region.Process.Nodes, want)
		}
		if IsInstant(c.kind) != c.instant {
			t.Errorf("%s instant = %v", c.kind, !c.instant)
		}
		if got := TakesRegionOut(Fault{Kind: c.kind, Region: "eu-west"}); got != !c.instant {
			t.Errorf("%s of a region takes it out: %v", c.kind, got)
		}
		if TakesRegionOut(Fault{Kind: c.kind, Node: "eu-west-db-1"}) {
			t.Errorf("%s of one node takes a region out", c.kind)
		}
	}
}

func TestKillPrimaryAsksTheCluster(t *testing.T) {
	env := testEnv(t, false)
	d, _ := Lookup(KindKillPrimary)
	if _, err := d.Resolve(context.Background(), Fault{ID: "kill-primary", Kind: KindKillPrimary}, env); err == nil {
		t.Fatal("kill-primary resolved with no way to ask for the primary")
	}
	env.Primary = func(context.Context) (string, error) { return "eu-west-db-1", nil }
	e := effectsOf(t, env, Fault{ID: "kill-primary", Kind: KindKillPrimary})
	if e.Process.Action != ActionKill || !slices.Equal(e.Process.Nodes, []string{"eu-west-db-1"}) {
		t.Fatalf("kill-primary: %+v", e.Process)
	}
	env.Primary = func(context.Context) (string, error) { return "", errors.New("no primary") }
	if _, err := d.Resolve(context.Background(), Fault{ID: "kill-primary", Kind: KindKillPrimary}, env); err == nil {
		t.Fatal("kill-primary resolved without a primary")
	}
}

// target: primary is whichever db node is the primary when the fault is applied, for every kind
// that takes a node; it passes validation without naming a node of the topology.
func TestProcessFaultOnThePrimary(t *testing.T) {
	env := testEnv(t, false)
	env.Primary = func(context.Context) (string, error) { return "eu-west-db-1", nil }
	for _, k := range []Kind{KindKill, KindFreeze, KindRestart} {
		f := Fault{ID: "p", Kind: k, Node: TargetPrimary}
		if err := Validate(&f, env.Plan.Topology); err != nil {
			t.Fatalf("%s on the primary: %v", k, err)
		}
		if e := effectsOf(t, env, f); !slices.Equal(e.Process.Nodes, []string{"eu-west-db-1"}) {
			t.Errorf("%s on the primary acts on %v", k, e.Process.Nodes)
		}
	}
	f := Fault{ID: "p", Kind: KindBlackhole, Node: TargetPrimary}
	if err := Validate(&f, env.Plan.Topology); err == nil {
		t.Error("a region-only kind took target: primary")
	}
}
