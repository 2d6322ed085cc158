package compose

import (
	"context"
	"log/slog"

	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// Network is the small partition API older callers use: a thin wrapper over an Injector writing
// to the run directory's fault ledger (LedgerPath), so its faults are crash-safe and visible to
// `drill recover` like any other.
type Network struct {
	inj *Injector
}

// NewNetwork returns the partition API for a running plan.
func NewNetwork(p *topology.Plan, rt Runtime) (*Network, error) {
	inj, err := NewInjector(p, rt, LedgerPath(p.RunDir), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return &Network{inj: inj}, nil
}

// Injector is the injector underneath.
func (n *Network) Injector() *Injector { return n.inj }

// Toxi is the WAN API client.
func (n *Network) Toxi() *toxi.Client { return n.inj.Toxi() }

// Partition cuts sites a and b apart (both directions, gossip and TCP), silently: packets vanish,
// live connections hang. Each side still serves its own users. id names the fault for Heal.
func (n *Network) Partition(ctx context.Context, id, a, b string) error {
	return n.inj.Apply(ctx, Fault{ID: id, Kind: KindPartition, Regions: []string{a, b}})
}

// Heal removes one fault (idempotent: healing twice, or a fault never applied, is fine).
func (n *Network) Heal(ctx context.Context, id string) error { return n.inj.Undo(ctx, id) }

// HealAll removes every fault, whoever injected it: Recover.
func (n *Network) HealAll(ctx context.Context) error {
	_, err := n.inj.Recover(ctx)
	return err
}
