// Package clock is a node's clock: real time, shifted and scaled when drill injects a clock fault
// through the node's control endpoint. The database's leases are measured on it, so a clock that
// jumps or runs at the wrong rate does to them what it would do on a real machine.
//
// Readings keep Go's monotonic component, so the durations between them are the clock's own: a
// jump shows as a jump, and a drifting clock measures every interval too long or too short.
package clock

import (
	"sync"
	"time"
)

// Shift is how a clock is off from real time: Offset is its error at the moment the shift is set,
// and from then on it gains DriftPPM millionths of a second per second (negative: it loses).
type Shift struct {
	// Offset is the clock's error when the shift is set, e.g. 500ms ahead or -500ms behind.
	Offset time.Duration `json:"offset_ns"`
	// DriftPPM is the rate error in parts per million: 100000 runs 10 % fast.
	DriftPPM int64 `json:"drift_ppm"`
}

// Zero reports whether s leaves the clock on real time.
func (s Shift) Zero() bool { return s.Offset == 0 && s.DriftPPM == 0 }

// Add combines two shifts (two faults on one clock): offsets and rates add.
func (s Shift) Add(o Shift) Shift {
	return Shift{Offset: s.Offset + o.Offset, DriftPPM: s.DriftPPM + o.DriftPPM}
}

// MinRatePPM bounds how slow a clock may run: a clock that stopped or ran backwards would let a
// lease never end, which no real clock does.
const MinRatePPM = -900_000

// Clock is a node's clock. The zero value is not usable: call New. Safe for concurrent use.
type Clock struct {
	real func() time.Time

	mu         sync.Mutex
	shift      Shift
	anchorReal time.Time // real time when the shift was set
	anchorRead time.Time // the clock's reading then
}

// New is a clock on real time.
func New() *Clock { return NewFrom(time.Now) }

// NewFrom is a clock over the given source of real time (tests pass a fake).
func NewFrom(real func() time.Time) *Clock {
	now := real()
	return &Clock{real: real, anchorReal: now, anchorRead: now}
}

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readLocked(c.real())
}

func (c *Clock) readLocked(real time.Time) time.Time {
	elapsed := real.Sub(c.anchorReal)
	if c.shift.DriftPPM != 0 {
		elapsed += time.Duration(float64(elapsed) * float64(c.shift.DriftPPM) / 1e6)
	}
	return c.anchorRead.Add(elapsed)
}

// Set shifts the clock: from now it reads real time plus s.Offset, and runs at the rate s.DriftPPM
// says. A zero shift puts it back on real time (a step, as a clock corrected by NTP would take).
// Setting the shift the clock already has changes nothing: a drifting clock keeps the error it
// has gathered (drill pushes every node's shift again whenever any fault comes or goes).
func (c *Clock) Set(s Shift) {
	if s.DriftPPM < MinRatePPM {
		s.DriftPPM = MinRatePPM
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == c.shift {
		return
	}
	now := c.real()
	c.shift, c.anchorReal, c.anchorRead = s, now, now.Add(s.Offset)
}

// Shift is the shift last set.
func (c *Clock) Shift() Shift {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shift
}
