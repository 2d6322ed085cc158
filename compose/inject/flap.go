package inject

import (
	"context"
	"errors"
	"time"

	"github.com/drillworks/drill/compose/fault"
)

// Periodic faults (flapping): the injector that applied one switches its effects off and on again
// in the background until it is undone. While off, its kind's Effects are empty (fault.Env.Off),
// so the gossip rules pushed then and an undo in that phase leave its effects out.

// flapper switches one periodic fault; stopped is set, under the injector's lock, by its undo.
type flapper struct {
	stop    chan struct{}
	stopped bool
}

// off reports whether a periodic fault is in its off phase (the injector's lock is held).
func (inj *Injector) off(id string) bool { return inj.phaseOff[id] }

// startFlapping starts switching f if its kind is periodic (the injector's lock is held).
func (inj *Injector) startFlapping(f fault.Fault) {
	d, _ := fault.Lookup(f.Kind)
	p, ok := d.(fault.Periodic)
	if !ok {
		return
	}
	on, off := p.Period(f)
	fl := &flapper{stop: make(chan struct{})}
	inj.flappers[f.ID] = fl
	go inj.flap(f, fl, on, off)
}

// stopFlapping stops switching a fault (the injector's lock is held). Its phase stays as it is, so
// its undo removes what is in place: its effects when on, nothing when off.
func (inj *Injector) stopFlapping(id string) {
	if fl := inj.flappers[id]; fl != nil {
		fl.stopped = true
		close(fl.stop)
		delete(inj.flappers, id)
	}
}

// flap switches f off after on, on again after off, until stopped. Each switch holds the
// injector's lock, like an Apply or Undo, and is time-boxed by the calls it makes.
func (inj *Injector) flap(f fault.Fault, fl *flapper, on, off time.Duration) {
	for phaseOff := false; ; phaseOff = !phaseOff {
		wait := on
		if phaseOff {
			wait = off
		}
		select {
		case <-fl.stop:
			return
		case <-time.After(wait):
		}
		inj.mu.Lock()
		if fl.stopped {
			inj.mu.Unlock()
			return
		}
		ctx := context.Background()
		var err error
		if phaseOff {
			delete(inj.phaseOff, f.ID) // back on
			err = errors.Join(inj.inject(ctx, f), inj.pushGossipRules(ctx))
		} else {
			rest := inj.activeWithout(f.ID)
			err = inj.remove(ctx, f, rest)
			inj.phaseOff[f.ID] = true
			err = errors.Join(err, inj.pushGossipRules(ctx))
		}
		inj.mu.Unlock()
		if err != nil {
			inj.log.Warn("flapping fault: switch failed", "id", f.ID, "to_on", phaseOff, "err", err)
		}
	}
}
