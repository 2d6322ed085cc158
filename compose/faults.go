package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/drillworks/drill/compose/toxi"
	"github.com/drillworks/drill/topology"
)

// Fault kinds: the same names drill files and the history use.
const (
	// KindBlackhole makes a whole region silently unreachable; its processes keep running.
	KindBlackhole = "blackhole"
	// KindPartition cuts the links between regions (or one region and everything else).
	KindPartition = "partition"
	// KindLatency adds latency (and jitter, optionally a bandwidth cap) to WAN links.
	KindLatency = "latency"
	// KindKill kills a node or every node of a region until undone.
	KindKill = "kill"
	// KindFreeze suspends a node or every node of a region until undone.
	KindFreeze = "freeze"
	// KindRestart kills and restarts a node or every node of a region; nothing to undo.
	KindRestart = "restart"
	// KindKillPrimary kills whichever db node is the primary until undone.
	KindKillPrimary = "kill-primary"
	// KindLoss drops a random share of the packets between regions (or one region and everything
	// else); see fault_loss.go.
	KindLoss = "loss"
)

// Fault is one fault to inject. Its JSON form is what the fault ledger records (durations as Go
// duration strings, e.g. "300ms").
type Fault struct {
	// ID names the fault, unique among active faults, e.g. "blackhole:us-east".
	ID string `json:"id"`
	// Kind is one of the Kind* constants.
	Kind string `json:"kind"`
	// Region is the target region: blackhole; partition or loss of one region from everything
	// else (the witness included); latency on every link of a region; kill/freeze/restart of
	// every node of a region.
	Region string `json:"region,omitempty"`
	// Regions are the sites whose links to each other are cut (partition), lossy (loss) or
	// slowed (latency), every pair of them; one site means that site against everything else. A
	// site is a region or "witness".
	Regions []string `json:"regions,omitempty"`
	// Node is the target node (kill, freeze, restart).
	Node string `json:"node,omitempty"`
	// Latency is the added one-way latency (latency).
	Latency time.Duration `json:"-"`
	// Jitter is the added jitter (latency).
	Jitter time.Duration `json:"-"`
	// BandwidthKBps caps each stream of every matching link, in KB/s (latency; 0 = no cap).
	BandwidthKBps int `json:"bandwidth_kbps,omitempty"`
	// LossPercent is the share of packets dropped at random, 1 to 99 (loss).
	LossPercent int `json:"loss_percent,omitempty"`
	// Resolved is what the fault acted on, filled in by Apply before it acts: the node killed by
	// kill-primary, the nodes of a region fault.
	Resolved []string `json:"resolved,omitempty"`
}

// faultJSON is Fault's wire form.
type faultJSON struct {
	faultAlias
	Latency string `json:"latency,omitempty"`
	Jitter  string `json:"jitter,omitempty"`
}

type faultAlias Fault

// MarshalJSON writes durations as strings.
func (f Fault) MarshalJSON() ([]byte, error) {
	w := faultJSON{faultAlias: faultAlias(f)}
	if f.Latency != 0 {
		w.Latency = f.Latency.String()
	}
	if f.Jitter != 0 {
		w.Jitter = f.Jitter.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads durations written as strings.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var w faultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode fault: %w", err)
	}
	*f = Fault(w.faultAlias)
	for _, d := range []struct {
		text string
		out  *time.Duration
	}{{w.Latency, &f.Latency}, {w.Jitter, &f.Jitter}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return fmt.Errorf("decode fault %s: %w", f.ID, err)
		}
		*d.out = v
	}
	return nil
}

// clone is a deep copy (faults are handed out; the injector's copies must not change).
func (f Fault) clone() Fault {
	f.Regions = slices.Clone(f.Regions)
	f.Resolved = slices.Clone(f.Resolved)
	return f
}

// Injector applies and undoes faults on a running plan. Every fault is written to the fault ledger
// (fsync'd) before it is applied and marked undone only once its undo succeeded, so the set of
// outstanding faults survives a crash of drill: an Injector opened later on the same ledger knows
// it, and Recover removes it. Gossip fault rules are recomputed from the whole active set and
// pushed to every running gossip node after every change, so overlapping faults compose.
type Injector struct {
	plan   *topology.Plan
	rt     Runtime
	log    *slog.Logger
	toxi   *toxi.Client
	http   *http.Client
	obs    *Observer
	ledger *ledger

	// callTimeout bounds every single remote call (toxiproxy, control endpoints): a hung control
	// plane must not hang an undo.
	callTimeout time.Duration
	// nodeTimeout bounds one runtime operation on a node (kill, start and wait for it to answer).
	nodeTimeout time.Duration

	mu     sync.Mutex
	active []Fault // outstanding faults, in apply order
}

// LedgerPath is the default fault ledger of a run directory.
func LedgerPath(runDir string) string { return filepath.Join(runDir, "faults.jsonl") }

// NewInjector opens the fault ledger at ledgerPath (creating it if needed) and returns an injector
// whose active set is what the ledger holds outstanding for this plan's run. log may be nil.
func NewInjector(p *topology.Plan, rt Runtime, ledgerPath string, log *slog.Logger) (*Injector, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api, err := rt.Endpoint("wan", topology.PortWANAPI)
	if err != nil {
		return nil, fmt.Errorf("fault injector: WAN API: %w", err)
	}
	const callTimeout = 3 * time.Second
	hc := &http.Client{Timeout: callTimeout}
	l := &ledger{path: ledgerPath, runID: p.RunID}
	active, err := l.outstanding(log)
	if err != nil {
		return nil, err
	}
	return &Injector{
		plan: p, rt: rt, log: log, ledger: l, active: active,
		toxi:        &toxi.Client{BaseURL: "http://" + api, Secret: p.Secret, HTTP: hc},
		http:        hc,
		obs:         NewObserver(p, rt),
		callTimeout: callTimeout,
		nodeTimeout: 15 * time.Second,
	}, nil
}

// Toxi is the WAN API client.
func (inj *Injector) Toxi() *toxi.Client { return inj.toxi }

// LedgerFile is the path of the fault ledger.
func (inj *Injector) LedgerFile() string { return inj.ledger.path }

// Active lists the outstanding faults in the order they were applied.
func (inj *Injector) Active() []Fault {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	out := make([]Fault, len(inj.active))
	for i, f := range inj.active {
		out[i] = f.clone()
	}
	return out
}

func (inj *Injector) indexOf(id string) int {
	return slices.IndexFunc(inj.active, func(f Fault) bool { return f.ID == id })
}

// Apply injects one fault: it checks it, resolves its targets, records it in the ledger, then
// injects it and pushes the new gossip rules. If injecting fails, Apply undoes what it can; a
// fault whose undo failed too stays outstanding in the ledger for Undo or Recover.
func (inj *Injector) Apply(ctx context.Context, f Fault) error {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	f = f.clone()
	if err := inj.validate(f); err != nil {
		return err
	}
	if inj.indexOf(f.ID) >= 0 {
		return fmt.Errorf("fault %s is already active", f.ID)
	}
	resolved, err := inj.resolve(ctx, f)
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
	if applyErr == nil && f.Kind == KindRestart {
		// A restart is over once it happened: nothing to undo.
		if err := inj.markUndone(f.ID); err != nil {
			return err
		}
	}
	if applyErr == nil {
		inj.log.Info("fault applied", "id", f.ID, "kind", f.Kind, "resolved", f.Resolved, "took", time.Since(start).Round(time.Millisecond))
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
	// Gossip rules are computed as if the fault were gone; if the undo fails, the next push
	// (every Apply/Undo) puts them back, as the fault is still outstanding.
	rest := slices.Delete(slices.Clone(inj.active), i, i+1)
	err := errors.Join(inj.remove(ctx, f, rest), inj.pushRulesFor(ctx, rest))
	if err != nil {
		return fmt.Errorf("undo %s: %w", id, err)
	}
	if err := inj.markUndone(id); err != nil {
		return err
	}
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
func (inj *Injector) Recover(ctx context.Context) (undone []Fault, err error) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	// Re-read the ledger: another injector may have written to it since this one was opened.
	if active, err := inj.ledger.outstanding(inj.log); err == nil {
		inj.active = active
	}
	outstanding := slices.Clone(inj.active)
	procs, err := inj.nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(procs)), func(p NodeState) bool { return p.Running }) {
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

// validate checks a fault against the plan before anything is recorded.
func (inj *Injector) validate(f Fault) error {
	t := inj.plan.Topology
	if f.ID == "" {
		return errors.New("fault has no id")
	}
	isRegion := func(r string) bool { _, ok := t.Region(r); return ok }
	isSite := func(s string) bool { return s == "witness" || isRegion(s) }
	for _, s := range f.Regions {
		if !isSite(s) {
			return fmt.Errorf("fault %s: unknown site %q", f.ID, s)
		}
	}
	if f.Region != "" && !isRegion(f.Region) {
		return fmt.Errorf("fault %s: unknown region %q", f.ID, f.Region)
	}
	if f.Node != "" {
		n, ok := t.Node(f.Node)
		if !ok {
			return fmt.Errorf("fault %s: unknown node %q", f.ID, f.Node)
		}
		if n.Role == topology.RoleWAN {
			return fmt.Errorf("fault %s: the WAN node carries the faults themselves and cannot be a target", f.ID)
		}
	}
	switch f.Kind {
	case KindBlackhole:
		if f.Region == "" {
			return fmt.Errorf("fault %s: blackhole needs a region", f.ID)
		}
	case KindPartition:
		if f.Region == "" && len(f.Regions) == 0 {
			return fmt.Errorf("fault %s: partition needs a region or regions", f.ID)
		}
	case KindLatency:
		if f.Latency < 0 || f.Jitter < 0 || f.BandwidthKBps < 0 {
			return fmt.Errorf("fault %s: negative latency, jitter or bandwidth", f.ID)
		}
		if f.Latency == 0 && f.Jitter == 0 && f.BandwidthKBps == 0 {
			return fmt.Errorf("fault %s: latency needs a latency, jitter or bandwidth", f.ID)
		}
	case KindKill, KindFreeze, KindRestart:
		if (f.Node == "") == (f.Region == "") {
			return fmt.Errorf("fault %s: %s needs a node or a region (one of them)", f.ID, f.Kind)
		}
	case KindLoss:
		return validateLoss(f)
	case KindKillPrimary:
	default:
		return fmt.Errorf("fault %s: unknown kind %q", f.ID, f.Kind)
	}
	return nil
}

// resolve names what a fault will act on, before it is recorded: the nodes of a process fault
// (for kill-primary, the current primary, asked of the cluster).
func (inj *Injector) resolve(ctx context.Context, f Fault) ([]string, error) {
	switch f.Kind {
	case KindKill, KindFreeze, KindRestart:
		return inj.targetNodes(f), nil
	case KindKillPrimary:
		p, err := inj.currentPrimary(ctx)
		if err != nil {
			return nil, err
		}
		return []string{p}, nil
	case KindBlackhole:
		var names []string
		for _, n := range inj.plan.Topology.Nodes() {
			if n.Region == f.Region {
				names = append(names, n.Name)
			}
		}
		return names, nil
	}
	return nil, nil
}

// inject carries out the fault.
func (inj *Injector) inject(ctx context.Context, f Fault) error {
	switch f.Kind {
	case KindBlackhole, KindPartition, KindLatency:
		// Both layers at once, so the fault lands as one; the gossip part is the rule push that
		// follows.
		return eachParallel(2, func(i int) error {
			if i == 0 {
				return inj.addToxics(ctx, f)
			}
			return inj.addPacketDrops(ctx, f)
		})
	case KindLoss:
		// Packets only (no toxics: TCP over the WAN links is not lossy); the gossip part, on a
		// runtime without a packet layer, is the rule push that follows.
		return inj.addPacketDrops(ctx, f)
	case KindKill, KindKillPrimary:
		return inj.killNodes(ctx, f.Resolved)
	case KindFreeze:
		return inj.freezeNodes(ctx, f.Resolved)
	case KindRestart:
		return inj.restartNodes(ctx, f.Resolved)
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

// remove undoes the fault's own effects (not its gossip rules); rest is the active set without it,
// so that a node another fault still holds down stays down.
func (inj *Injector) remove(ctx context.Context, f Fault, rest []Fault) error {
	switch f.Kind {
	case KindBlackhole, KindPartition, KindLatency:
		return eachParallel(2, func(i int) error {
			if i == 0 {
				return inj.removeToxics(ctx, f)
			}
			return inj.removePacketDrops(ctx, f)
		})
	case KindLoss:
		return inj.removePacketDrops(ctx, f)
	case KindKill, KindKillPrimary, KindRestart:
		return inj.startNodes(ctx, f.Resolved, rest)
	case KindFreeze:
		return inj.thawNodes(ctx, f.Resolved, rest)
	}
	return nil
}
