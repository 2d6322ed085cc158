package runner

import (
	"fmt"
	"strings"
	"time"

	"github.com/drillworks/drill/drills/spec"
)

// The live status line: when Progress is a terminal (Options.Live), one line under the progress
// lines is redrawn twice a second with the step, the elapsed time, the workload's counters and
// the faults in force; progress lines are printed above it. Elsewhere (CI, a file) only the plain
// progress lines are written.

// liveEvery is how often the status line is redrawn.
const liveEvery = 500 * time.Millisecond

// ANSI sequences: return to the line's start and clear it; colours.
const (
	clearLine = "\r\033[K"
	boldCyan  = "\033[1;36m"
	yellow    = "\033[33m"
	reset     = "\033[0m"
)

// setStep records the step now running, for the status line.
func (r *run) setStep(i int, st spec.Step) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	r.liveStep = fmt.Sprintf("step %d/%d %s", i+1, len(r.o.Drill.Steps), st)
}

// statusLine is the live line's text (progMu held).
func (r *run) statusLine() string {
	var b strings.Builder
	paint := func(colour, s string) string {
		if !r.o.Color {
			return s
		}
		return colour + s + reset
	}
	fmt.Fprintf(&b, "%s %s", paint(boldCyan, fmt.Sprintf("[%6.1fs]", time.Since(r.start).Seconds())), r.liveStep)
	if r.wl != nil {
		fmt.Fprintf(&b, " | %s", counters(r.rec.Ops(), r.topo.RegionNames()))
	}
	if len(r.liveFaults) > 0 {
		fmt.Fprintf(&b, " | faults: %s", paint(yellow, strings.Join(r.liveFaults, ", ")))
	}
	return b.String()
}

// live redraws the status line until done is closed, then clears it.
func (r *run) live(done <-chan struct{}) {
	tick := time.NewTicker(liveEvery)
	defer tick.Stop()
	for {
		// Asked outside progMu: the injector holds its own lock for as long as a fault takes to
		// apply, and progress lines must not wait for that.
		var ids []string
		for _, f := range r.sys.Active() {
			ids = append(ids, f.ID)
		}
		r.progMu.Lock()
		r.liveFaults = ids
		fmt.Fprint(r.o.Progress, clearLine+r.statusLine())
		r.progMu.Unlock()
		select {
		case <-done:
			r.progMu.Lock()
			fmt.Fprint(r.o.Progress, clearLine)
			r.liveStep = ""
			r.progMu.Unlock()
			return
		case <-tick.C:
		}
	}
}
