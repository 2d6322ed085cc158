package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/drillworks/drill/drills/history"
)

// NameOnePrimaryPerEpoch names the check; BudgetEpochsWithTwoPrimaries is its budget.
const (
	NameOnePrimaryPerEpoch = "one_primary_per_epoch"
	// BudgetEpochsWithTwoPrimaries: epochs in which more than one node acted as primary. An
	// invariant of the design: judged against 0 when a drill sets no budget.
	BudgetEpochsWithTwoPrimaries = "epochs_with_two_primaries"
)

func init() {
	registerInvariant(95, NameOnePrimaryPerEpoch,
		Metric{Name: BudgetEpochsWithTwoPrimaries, Title: "epochs with two primaries", Short: "epochs", Unit: "epochs"}, OnePrimaryPerEpoch)
}

// EpochPrimaries is one epoch and the nodes seen acting as its primary.
type EpochPrimaries struct {
	Epoch uint64   `json:"epoch"`
	Nodes []string `json:"nodes"`
}

// OnePrimaryPerEpochEvidence is what OnePrimaryPerEpoch found.
type OnePrimaryPerEpochEvidence struct {
	// Epochs is the number of epochs seen.
	Epochs int `json:"epochs"`
	// Shared are the epochs more than one node acted in, in epoch order.
	Shared []EpochPrimaries `json:"shared"`
}

// OnePrimaryPerEpoch checks that an epoch names one primary: the node that acknowledged a write
// at an epoch (the write's DBNode and Epoch) and the primary the observer sampled at an epoch
// (epoch ops) must be the same node for every epoch. Two nodes in one epoch would let a replica
// append one's entries after the other's without seeing the divergence. Measured is the number of
// epochs shared; unknown when no epoch was seen.
func OnePrimaryPerEpoch(ops []history.Op, cfg Config) (Result, *OnePrimaryPerEpochEvidence) {
	const unit = "epochs"
	seen := map[uint64]map[string]bool{}
	note := func(epoch uint64, node string) {
		if epoch == 0 || node == "" {
			return
		}
		if seen[epoch] == nil {
			seen[epoch] = map[string]bool{}
		}
		seen[epoch][node] = true
	}
	for _, op := range ops {
		switch {
		case op.Type == history.TypeEpoch:
			note(op.Epoch, op.Node)
		case op.Type == history.TypeOK && op.F == history.FWrite:
			note(op.Epoch, op.DBNode)
		}
	}
	if len(seen) == 0 {
		return cfg.unknown(NameOnePrimaryPerEpoch, unit, BudgetEpochsWithTwoPrimaries, "no primary and no acknowledged write seen", nil), nil
	}
	ev := &OnePrimaryPerEpochEvidence{Epochs: len(seen)}
	for _, e := range slices.Sorted(maps.Keys(seen)) {
		if len(seen[e]) > 1 {
			ev.Shared = append(ev.Shared, EpochPrimaries{Epoch: e, Nodes: slices.Sorted(maps.Keys(seen[e]))})
		}
	}
	r := Result{Name: NameOnePrimaryPerEpoch, Unit: unit, Measured: float64(len(ev.Shared)), Evidence: ev}
	r.Detail = fmt.Sprintf("%d of %d epochs had more than one primary", len(ev.Shared), ev.Epochs)
	if len(ev.Shared) > 0 {
		var parts []string
		for _, s := range ev.Shared[:min(len(ev.Shared), cfg.maxExamples())] {
			parts = append(parts, fmt.Sprintf("epoch %d: %s", s.Epoch, strings.Join(s.Nodes, "+")))
		}
		r.Detail += ": " + strings.Join(parts, "; ")
	}
	cfg.judge(&r, BudgetEpochsWithTwoPrimaries)
	return r, ev
}
