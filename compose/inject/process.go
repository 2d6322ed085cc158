package inject

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/compose/runtime"
	"github.com/drillworks/drill/topology"
)

// The process layer goes through the Runtime, so it works the same for processes and containers.
// Undo is idempotent: a node is started only if it is not running, thawed only if it is frozen,
// and left alone while another active fault holds it.

// currentPrimary asks the cluster which db node is the alive primary (observe.Status.Primary).
func (inj *Injector) currentPrimary(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*inj.callTimeout)
	defer cancel()
	st, err := inj.obs.Status(ctx)
	if err != nil {
		return "", err
	}
	p := st.Primary(inj.plan.Topology, false)
	if p.Name == "" {
		return "", errors.New("no alive db node claims primary")
	}
	return p.Name, nil
}

// applyProcess carries out a fault's process operation.
func (inj *Injector) applyProcess(ctx context.Context, p fault.Process) error {
	switch p.Action {
	case fault.ActionKill:
		return inj.killNodes(ctx, p.Nodes)
	case fault.ActionFreeze:
		return inj.freezeNodes(ctx, p.Nodes)
	case fault.ActionRestart:
		return inj.restartNodes(ctx, p.Nodes)
	}
	return nil
}

// undoProcess undoes a fault's process operation; rest is the active set without the fault.
func (inj *Injector) undoProcess(ctx context.Context, p fault.Process, rest []fault.Fault) error {
	switch p.Action {
	case fault.ActionKill, fault.ActionRestart:
		return inj.startNodes(ctx, p.Nodes, rest)
	case fault.ActionFreeze:
		return inj.thawNodes(ctx, p.Nodes, rest)
	case fault.ActionRestartOnHeal:
		return inj.restartOnHeal(ctx, p.Nodes, rest)
	}
	return nil
}

// restartOnHeal restarts the named nodes that run, unfrozen, and that no fault in rest keeps
// killed or frozen (a node another fault holds is left to that fault's undo).
func (inj *Injector) restartOnHeal(ctx context.Context, names []string, rest []fault.Fault) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	killed, frozen := inj.heldBy(rest, fault.ActionKill), inj.heldBy(rest, fault.ActionFreeze)
	var restart []string
	for _, n := range names {
		if p := procs[n]; p.Running && !p.Frozen && !killed[n] && !frozen[n] {
			restart = append(restart, n)
		}
	}
	if len(restart) == 0 {
		return nil
	}
	return inj.restartNodes(ctx, restart)
}

// nodes is the runtime's process table by name (time-boxed).
func (inj *Injector) nodes(ctx context.Context) (map[string]runtime.NodeState, error) {
	ctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
	defer cancel()
	list, err := inj.rt.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]runtime.NodeState, len(list))
	for _, n := range list {
		out[n.Name] = n
	}
	return out, nil
}

// nodeOp runs one runtime operation on a node, time-boxed.
func (inj *Injector) nodeOp(ctx context.Context, what, node string, op func(context.Context, string) error) error {
	ctx, cancel := context.WithTimeout(ctx, inj.nodeTimeout)
	defer cancel()
	if err := op(ctx, node); err != nil {
		return fmt.Errorf("%s %s: %w", what, node, err)
	}
	return nil
}

func (inj *Injector) killNodes(ctx context.Context, names []string) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if procs[n].Running {
			errs = append(errs, inj.nodeOp(ctx, "kill", n, inj.rt.Kill))
		}
	}
	return errors.Join(errs...)
}

func (inj *Injector) freezeNodes(ctx context.Context, names []string) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		switch p := procs[n]; {
		case !p.Running:
			errs = append(errs, fmt.Errorf("freeze %s: not running", n))
		case !p.Frozen:
			errs = append(errs, inj.nodeOp(ctx, "freeze", n, inj.rt.Freeze))
		}
	}
	return errors.Join(errs...)
}

func (inj *Injector) restartNodes(ctx context.Context, names []string) error {
	if err := inj.killNodes(ctx, names); err != nil {
		return err
	}
	if err := inj.startNodes(ctx, names, nil); err != nil {
		return err
	}
	// A restarted node that another fault cuts off stays cut off.
	return inj.reapplyPackets(ctx, names, inj.active)
}

// heldBy lists the nodes that faults with the given process action in an active set keep down.
func (inj *Injector) heldBy(active []fault.Fault, action fault.Action) map[string]bool {
	held := map[string]bool{}
	for _, f := range active {
		if p := inj.effects(f).Process; p.Action == action {
			for _, n := range p.Nodes {
				held[n] = true
			}
		}
	}
	return held
}

// startNodes starts the named nodes that are not running and that no fault in rest keeps killed,
// and waits until they answer.
func (inj *Injector) startNodes(ctx context.Context, names []string, rest []fault.Fault) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	held := inj.heldBy(rest, fault.ActionKill)
	var errs []error
	var started []string
	for _, n := range names {
		if procs[n].Running || held[n] {
			continue
		}
		if err := inj.nodeOp(ctx, "start", n, inj.rt.Start); err != nil {
			errs = append(errs, err)
			continue
		}
		started = append(started, n)
	}
	errs = append(errs, inj.waitControl(ctx, started))
	errs = append(errs, inj.reapplyPackets(ctx, started, rest))
	return errors.Join(errs...)
}

// thawNodes resumes the named frozen nodes that no fault in rest keeps frozen.
func (inj *Injector) thawNodes(ctx context.Context, names []string, rest []fault.Fault) error {
	procs, err := inj.nodes(ctx)
	if err != nil {
		return err
	}
	held := inj.heldBy(rest, fault.ActionFreeze)
	var errs []error
	for _, n := range names {
		if p := procs[n]; p.Running && p.Frozen && !held[n] {
			errs = append(errs, inj.nodeOp(ctx, "thaw", n, inj.rt.Thaw))
		}
	}
	return errors.Join(errs...)
}

// waitControl waits (bounded by nodeTimeout) until freshly started nodes answer, so the gossip
// rules pushed next reach them: the control endpoint for gossip members, the voter for the
// witness, the API for the WAN node.
func (inj *Injector) waitControl(ctx context.Context, names []string) error {
	return eachParallel(len(names), func(i int) error {
		name := names[i]
		n, ok := inj.plan.Topology.Node(name)
		if !ok {
			return fmt.Errorf("unknown node %q", name)
		}
		deadline := time.Now().Add(inj.nodeTimeout)
		nextLook := time.Now().Add(time.Second)
		var last error
		for attempt := 0; attempt < 10000; attempt++ {
			if last = inj.ping(ctx, n); last == nil {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			// A node that failed at start (its log says why) is reported as such at once,
			// rather than as a node that did not answer in time.
			if time.Now().After(nextLook) {
				nextLook = time.Now().Add(time.Second)
				if procs, err := inj.nodes(ctx); err == nil && !procs[name].Running {
					return fmt.Errorf("node %s exited after start (its log says why): %w", name, last)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		return fmt.Errorf("node %s did not answer within %s after start: %w", name, inj.nodeTimeout, last)
	})
}

// ping checks one node answers.
func (inj *Injector) ping(ctx context.Context, n topology.Node) error {
	switch n.Role {
	case topology.RoleWAN:
		ctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		return inj.toxi.Version(ctx)
	case topology.RoleWitness:
		addr, err := inj.rt.Endpoint(n.Name, topology.PortDB)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, inj.callTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/lease", nil)
		if err != nil {
			return err
		}
		resp, err := inj.dbHTTP.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("witness voter: %s", resp.Status)
		}
		return nil
	}
	// The answer is signed with the run's key; the node must also say it belongs to this run.
	var info struct {
		Node  string `json:"node"`
		RunID string `json:"run_id"`
	}
	if err := inj.controlCall(ctx, n.Name, http.MethodGet, "/v1/info", nil, &info); err != nil {
		return err
	}
	if info.RunID != inj.plan.RunID || info.Node != n.Name {
		return fmt.Errorf("%s answers as node %q of run %q, not of run %s", n.Name, info.Node, info.RunID, inj.plan.RunID)
	}
	return nil
}
