package clock

import (
	"testing"
	"time"
)

// fakeReal is a source of real time that tests move by hand.
type fakeReal struct{ t time.Time }

func (f *fakeReal) now() time.Time { return f.t }

func TestClockShiftsAndScales(t *testing.T) {
	real := &fakeReal{t: time.Now()}
	c := NewFrom(real.now)
	start := c.Now()
	real.t = real.t.Add(time.Second)
	if got := c.Now().Sub(start); got != time.Second {
		t.Fatalf("unshifted clock moved %s in a real second", got)
	}

	// 500 ms ahead, then 20 % fast: after 10 real seconds it reads 12 s more.
	c.Set(Shift{Offset: 500 * time.Millisecond, DriftPPM: 200_000})
	if got := c.Now().Sub(real.t); got != 500*time.Millisecond {
		t.Fatalf("offset %s, want 500ms", got)
	}
	before := c.Now()
	real.t = real.t.Add(10 * time.Second)
	if got := c.Now().Sub(before); got != 12*time.Second {
		t.Fatalf("a 20 %% fast clock measured %s over 10 s", got)
	}
	if s := c.Shift(); s.Offset != 500*time.Millisecond || s.DriftPPM != 200_000 {
		t.Fatalf("shift %+v", s)
	}
	// The same shift again keeps the error gathered so far (2 s of drift on top of the offset).
	c.Set(Shift{Offset: 500 * time.Millisecond, DriftPPM: 200_000})
	if got := c.Now().Sub(real.t); got != 2500*time.Millisecond {
		t.Fatalf("after setting the same shift again the clock is %s ahead, want 2.5s", got)
	}

	// Back on real time: a step, and real rate again.
	c.Set(Shift{})
	if got := c.Now().Sub(real.t); got != 0 {
		t.Fatalf("reset clock off by %s", got)
	}
	if !c.Shift().Zero() {
		t.Fatal("reset shift not zero")
	}

	// A clock never stops: the slowest rate is bounded.
	c.Set(Shift{DriftPPM: -2_000_000})
	before = c.Now()
	real.t = real.t.Add(10 * time.Second)
	if got := c.Now().Sub(before); got <= 0 {
		t.Fatalf("a clock stood still or ran back (%s)", got)
	}
}

func TestReadingsKeepTheMonotonicClock(t *testing.T) {
	c := New()
	c.Set(Shift{Offset: -time.Hour})
	a := c.Now()
	b := c.Now()
	if b.Before(a) {
		t.Fatal("two readings in order compare out of order")
	}
	if d := time.Since(a); d < time.Hour-time.Minute {
		t.Fatalf("a reading an hour behind is %s before real time", d)
	}
}

func TestShiftAdd(t *testing.T) {
	s := Shift{Offset: time.Second, DriftPPM: 10}.Add(Shift{Offset: -300 * time.Millisecond, DriftPPM: 5})
	if s.Offset != 700*time.Millisecond || s.DriftPPM != 15 {
		t.Fatalf("%+v", s)
	}
}
