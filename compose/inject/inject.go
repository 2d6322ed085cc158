// Package inject is the fault injector: it applies and undoes faults (compose/fault) on a running
// plan, layer by layer (WAN toxics, kernel packet rules, gossip fault rules, process operations),
// through a write-ahead fault ledger that survives a crash of drill, and it checks a cluster for
// anything a fault left behind (Residue). It knows no fault kind by name: every kind's effects
// come from its descriptor.
package inject

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/drillworks/drill/agents/peerauth"
	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/observe"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// Injector applies and undoes faults on a running plan. Every fault is written to the fault ledger
// (fsync'd) before it is applied and marked undone only once its undo succeeded, so the set of
// outstanding faults survives a crash of drill: an Injector opened later on the same ledger knows
// it, and Recover removes it. Gossip fault rules are recomputed from the whole active set and
// pushed to every running gossip node after every change, so overlapping faults compose.
type Injector struct {
	plan   *topology.Plan
	rt     runtime.Runtime
	log    *slog.Logger
	toxi   *toxi.Client
	http   *http.Client // signs with the run's control key
	dbHTTP *http.Client // signs with the run's db key (the witness's voter)
	obs    *observe.Observer
	ledger *ledger

	// callTimeout bounds every single remote call (toxiproxy, control endpoints): a hung control
	// plane must not hang an undo.
	callTimeout time.Duration
	// nodeTimeout bounds one runtime operation on a node (kill, start and wait for it to answer).
	// 30 s: Docker 20.10 on 2 cores has taken more than 15 s to start one container while two
	// clusters were busy (a cache-stampede run ended in ERROR that way); a longer bound costs
	// nothing when starts are quick, and only delays the error of a start that truly hangs.
	nodeTimeout time.Duration

	mu       sync.Mutex
	active   []fault.Fault // outstanding faults, in apply order
	skipped  []SkippedLine // ledger lines the replay could not use
	flappers map[string]*flapper
	phaseOff map[string]bool // periodic faults now in their off phase
}

// LedgerPath is the default fault ledger of a run directory.
func LedgerPath(runDir string) string { return filepath.Join(runDir, "faults.jsonl") }

// New opens and locks the fault ledger at ledgerPath (creating it if needed) and returns an
// injector whose active set is what the ledger holds outstanding for this plan's run. A ledger
// another process (or another open Injector) holds is ErrLedgerInUse. Close releases it. log may
// be nil.
func New(p *topology.Plan, rt runtime.Runtime, ledgerPath string, log *slog.Logger) (*Injector, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api, err := rt.Endpoint("wan", topology.PortWANAPI)
	if err != nil {
		return nil, fmt.Errorf("fault injector: WAN API: %w", err)
	}
	const callTimeout = 3 * time.Second
	l, err := openLedger(ledgerPath, p.RunID)
	if err != nil {
		return nil, err
	}
	active, skipped, err := l.outstanding(log)
	if err != nil {
		return nil, errors.Join(err, l.close())
	}
	return &Injector{
		plan: p, rt: rt, log: log, ledger: l, active: active, skipped: skipped,
		toxi:        &toxi.Client{BaseURL: "http://" + api, HTTP: peerauth.Client(peerauth.Derive(p.Secret, peerauth.PurposeWAN), callTimeout, nil)},
		http:        peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeControl), callTimeout, p.NodeAt),
		dbHTTP:      peerauth.ClientFor(peerauth.Derive(p.Secret, peerauth.PurposeDB), callTimeout, p.NodeAt),
		obs:         observe.New(p, rt),
		flappers:    map[string]*flapper{},
		phaseOff:    map[string]bool{},
		callTimeout: callTimeout,
		nodeTimeout: 30 * time.Second,
	}, nil
}

// Toxi is the WAN API client.
func (inj *Injector) Toxi() *toxi.Client { return inj.toxi }

// LedgerFile is the path of the fault ledger.
func (inj *Injector) LedgerFile() string { return inj.ledger.path }

// LedgerSkipped are the ledger lines the replay at New could not use (reported by `drill
// recover`).
func (inj *Injector) LedgerSkipped() []SkippedLine { return slices.Clone(inj.skipped) }

// Close releases the ledger's lock; the injector applies and undoes nothing after it. Faults
// still outstanding stay in the ledger for the next Injector.
func (inj *Injector) Close() error {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	for id := range inj.flappers {
		inj.stopFlapping(id)
	}
	return inj.ledger.close()
}

// Active lists the outstanding faults in the order they were applied.
func (inj *Injector) Active() []fault.Fault {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	out := make([]fault.Fault, len(inj.active))
	for i, f := range inj.active {
		out[i] = f.Clone()
	}
	return out
}

// activeWithout is the active set without one fault.
func (inj *Injector) activeWithout(id string) []fault.Fault {
	out := slices.Clone(inj.active)
	if i := inj.indexOf(id); i >= 0 {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

func (inj *Injector) indexOf(id string) int {
	return slices.IndexFunc(inj.active, func(f fault.Fault) bool { return f.ID == id })
}

// env is what fault kinds see of this cluster.
func (inj *Injector) env() fault.Env {
	return fault.Env{Plan: inj.plan, PacketLayer: inj.packetFaulter() != nil, Primary: inj.currentPrimary, Off: inj.off}
}

// effects are a fault's effects here (an unknown kind, from a ledger of a newer drill, has none).
func (inj *Injector) effects(f fault.Fault) fault.Effects {
	d, ok := fault.Lookup(f.Kind)
	if !ok {
		return fault.Effects{}
	}
	return d.Effects(f, inj.env())
}

// Validate checks a fault against the plan as Apply would, without applying it.
func (inj *Injector) Validate(f fault.Fault) error {
	f = f.Clone()
	return fault.Validate(&f, inj.plan.Topology)
}

// Apply injects one fault: it checks it, resolves its targets, records it in the ledger, then
// injects it and pushes the new gossip rules. If injecting fails, Apply undoes what it can; a
// fault whose undo failed too stays outstanding in the ledger for Undo or Recover.
func (inj *Injector) Apply(ctx context.Context, f fault.Fault) error {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	f = f.Clone()
	if err := fault.Validate(&f, inj.plan.Topology); err != nil {
		return err
	}
	if inj.indexOf(f.ID) >= 0 {
		return fmt.Errorf("fault %s is already active", f.ID)
	}
	d, _ := fault.Lookup(f.Kind)
	resolved, err := d.Resolve(ctx, f, inj.env())
	if err != nil {
		return fmt.Errorf("fault %s: %w", f.ID, err)
	}
	f.Resolved = resolved
	if err := inj.ledger.append(ledgerRecord{Op: opApply, ID: f.ID, Fault: &f}); err != nil {
		return fmt.Errorf("fault %s: %w", f.ID, err)
	}
	inj.active = append(inj.active, f)
	start := time.Now()
	applyErr := inj.inject(ctx, f)
	if applyErr == nil {
		applyErr = inj.pushGossipRules(ctx)
	}
	if applyErr == nil && d.Instant() {
		// An instant fault is over once it happened: nothing to undo.
		if err := inj.markUndone(f.ID); err != nil {
			return err
		}
	}
	if applyErr == nil {
		inj.log.Info("fault applied", "id", f.ID, "kind", f.Kind, "resolved", f.Resolved, "took", time.Since(start).Round(time.Millisecond))
		inj.startFlapping(f)
		return nil
	}
	inj.log.Warn("fault apply failed; undoing it", "id", f.ID, "err", applyErr)
	// The rollback runs even if ctx was cancelled mid-apply (every call in it is time-boxed).
	if err := inj.undoLocked(context.WithoutCancel(ctx), f.ID); err != nil {
		return errors.Join(fmt.Errorf("apply %s: %w", f.ID, applyErr), fmt.Errorf("undo %s after failed apply (still outstanding): %w", f.ID, err))
	}
	return fmt.Errorf("apply %s (undone): %w", f.ID, applyErr)
}

// Undo removes one fault. It is idempotent: undoing a fault that is not active does nothing. The
// ledger marks the fault undone only when every part of the undo succeeded.
func (inj *Injector) Undo(ctx context.Context, id string) error {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	return inj.undoLocked(ctx, id)
}

func (inj *Injector) undoLocked(ctx context.Context, id string) error {
	i := inj.indexOf(id)
	if i < 0 {
		return nil
	}
	f := inj.active[i]
	start := time.Now()
	inj.stopFlapping(id)
	// Gossip rules are computed as if the fault were gone; if the undo fails, the next push
	// (every Apply/Undo) puts them back, as the fault is still outstanding.
	rest := inj.activeWithout(id)
	err := errors.Join(inj.remove(ctx, f, rest), inj.pushRulesFor(ctx, rest))
	if err != nil {
		return fmt.Errorf("undo %s: %w", id, err)
	}
	if err := inj.markUndone(id); err != nil {
		return err
	}
	delete(inj.phaseOff, id)
	inj.log.Info("fault undone", "id", id, "kind", f.Kind, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// markUndone records the undo in the ledger and drops the fault from the active set.
func (inj *Injector) markUndone(id string) error {
	if err := inj.ledger.append(ledgerRecord{Op: opUndo, ID: id}); err != nil {
		return fmt.Errorf("undo %s: %w", id, err)
	}
	if i := inj.indexOf(id); i >= 0 {
		inj.active = slices.Delete(inj.active, i, i+1)
	}
	return nil
}

// UndoAll undoes every outstanding fault, newest first; it goes on past failures and reports them
// all.
func (inj *Injector) UndoAll(ctx context.Context) error {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	var errs []error
	ids := make([]string, len(inj.active))
	for i, f := range inj.active {
		ids[i] = f.ID
	}
	for i := len(ids) - 1; i >= 0; i-- {
		errs = append(errs, inj.undoLocked(ctx, ids[i]))
	}
	return errors.Join(errs...)
}

// Recover is `drill recover`: it undoes every fault the ledger holds outstanding, then sweeps the
// cluster independently of the ledger (whatever wrote it may have crashed mid-write): it thaws
// frozen nodes, starts nodes that are not running, clears the gossip fault rules of every gossip
// node, removes every drill_ toxic, re-enables every disabled WAN proxy and, on a runtime with
// packet faults, removes every drill packet rule set from every running node. If the sweep
// succeeded, the ledger is marked clean. undone lists the faults that were outstanding and are
// now gone.
func (inj *Injector) Recover(ctx context.Context) (undone []fault.Fault, err error) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if inj.ledger.closed {
		return nil, fmt.Errorf("recover: fault ledger %s: closed", inj.ledger.path)
	}
	outstanding := slices.Clone(inj.active)
	procs, err := inj.nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(procs)), func(p runtime.NodeState) bool { return p.Running }) {
		// The cluster is down: its faults went with it. Starting every node would be bringing
		// it up, which is not recover's job.
		if err := inj.ledger.append(ledgerRecord{Op: opRecovered}); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		inj.active = nil
		inj.log.Info("recover: no node is running; ledger marked clean", "faults", len(outstanding))
		return outstanding, nil
	}
	for i := len(outstanding) - 1; i >= 0; i-- {
		if err := inj.undoLocked(ctx, outstanding[i].ID); err != nil {
			inj.log.Warn("recover: undo failed; the sweep will clean up", "id", outstanding[i].ID, "err", err)
		}
	}
	if err := inj.sweep(ctx); err != nil {
		for _, f := range outstanding {
			if inj.indexOf(f.ID) < 0 {
				undone = append(undone, f)
			}
		}
		return undone, fmt.Errorf("recover: %w", err)
	}
	if err := inj.ledger.append(ledgerRecord{Op: opRecovered}); err != nil {
		return outstanding, fmt.Errorf("recover: %w", err)
	}
	inj.active = nil
	inj.log.Info("recovered", "faults", len(outstanding))
	return outstanding, nil
}

// sweep is the ledger-independent last resort of Recover.
func (inj *Injector) sweep(ctx context.Context) error {
	var errs []error
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	var started []string
	for _, n := range inj.plan.Topology.Nodes() {
		p := procs[n.Name]
		switch {
		case p.Running && p.Frozen:
			errs = append(errs, inj.nodeOp(ctx, "thaw", n.Name, inj.rt.Thaw))
		case !p.Running:
			if err := inj.nodeOp(ctx, "start", n.Name, inj.rt.Start); err != nil {
				errs = append(errs, err)
			} else {
				started = append(started, n.Name)
			}
		}
	}
	errs = append(errs, inj.waitControl(ctx, started))
	errs = append(errs, inj.pushRulesFor(ctx, nil))
	errs = append(errs, inj.sweepWAN(ctx))
	if pf := inj.packetFaulter(); pf != nil {
		errs = append(errs, pf.FlushPacketRules(ctx))
	}
	return errors.Join(errs...)
}

// inject carries out a fault, every layer at once so it lands as one; the gossip part is the rule
// push that follows.
func (inj *Injector) inject(ctx context.Context, f fault.Fault) error {
	e := inj.effects(f)
	// A damaged log must be on disk before the restart that reads it.
	if err := inj.corruptLogs(ctx, e.Corrupt); err != nil {
		return err
	}
	return eachParallel(3, func(i int) error {
		switch i {
		case 0:
			return inj.addToxics(ctx, e.Toxics)
		case 1:
			return inj.addPackets(ctx, f.ID, e.Packets)
		}
		return inj.applyProcess(ctx, e.Process)
	})
}

// remove undoes the fault's own effects (not its gossip rules); rest is the active set without it,
// so that a node another fault still holds down stays down.
func (inj *Injector) remove(ctx context.Context, f fault.Fault, rest []fault.Fault) error {
	e := inj.effects(f)
	return eachParallel(3, func(i int) error {
		switch i {
		case 0:
			return inj.removeToxics(ctx, e.Toxics)
		case 1:
			return inj.removePackets(ctx, f.ID, e.Packets)
		}
		return inj.undoProcess(ctx, e.Process, rest)
	})
}

// eachParallel runs fn for every index at once and joins the errors (few calls, each time-boxed:
// a hung API costs one timeout, not one per call).
func eachParallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
