// Package disk is the fault layer between a database node and its disk: drill stalls the node's
// fsyncs (a hung device) or makes its writes fail with ENOSPC (a full disk) through the node's
// control endpoint, at the boundary where the database writes its log. The write-ahead log calls
// Write and Sync through it; with no fault set they are the plain file operations.
//
// A full disk is emulated here on both runtimes rather than made real: a size-limited tmpfs would
// fill for real, but it loses its content when a container stops, and drill's kill faults rely on
// a database keeping its data across a restart.
package disk

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// State is the disk's fault state.
type State struct {
	// Stall holds every fsync until cleared, as a hung device would.
	Stall bool `json:"stall"`
	// Full fails every write with ENOSPC until cleared.
	Full bool `json:"full"`
}

// Zero reports whether no fault is set.
func (s State) Zero() bool { return s == State{} }

// Or combines two faults' states (two faults on one disk).
func (s State) Or(o State) State { return State{Stall: s.Stall || o.Stall, Full: s.Full || o.Full} }

// Faults is one node's disk fault state. The zero value is a healthy disk. Safe for concurrent use.
type Faults struct {
	mu      sync.Mutex
	state   State
	unstall chan struct{} // closed when a stall is cleared; nil while not stalled
}

// Set sets the fault state; clearing a stall releases every fsync it held.
func (f *Faults) Set(s State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case s.Stall && f.unstall == nil:
		f.unstall = make(chan struct{})
	case !s.Stall && f.unstall != nil:
		close(f.unstall)
		f.unstall = nil
	}
	f.state = s
}

// State is the fault state.
func (f *Faults) State() State {
	if f == nil {
		return State{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// Write writes b to file, or fails with ENOSPC while the disk is full.
func (f *Faults) Write(file *os.File, b []byte) (int, error) {
	if f.State().Full {
		return 0, syscall.ENOSPC
	}
	return file.Write(b)
}

// Sync fsyncs file, after waiting out a stall.
func (f *Faults) Sync(file *os.File) error {
	if f != nil {
		f.mu.Lock()
		wait := f.unstall
		f.mu.Unlock()
		if wait != nil {
			<-wait
		}
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", file.Name(), err)
	}
	return nil
}
