package runtime

import (
	"errors"
	"os"
	"sync"

	"github.com/drillworks/drill/topology"
)

// PlanFile is a runtime's plan in its run directory, read once: status polls ask a runtime for
// endpoints many times a second, and the plan does not change while a cluster runs.
type PlanFile struct {
	// Path is the plan's file.
	Path string

	mu   sync.Mutex
	plan *topology.Plan
}

// Load returns the plan, reading it on first use; ErrNotUp when there is none.
func (f *PlanFile) Load() (*topology.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.plan != nil {
		return f.plan, nil
	}
	p, err := topology.LoadPlan(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotUp
	}
	if err != nil {
		return nil, err
	}
	f.plan = p
	return p, nil
}

// Save writes a new plan (at Up) and keeps it.
func (f *PlanFile) Save(p *topology.Plan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := p.Save(f.Path); err != nil {
		return err
	}
	f.plan = p
	return nil
}
