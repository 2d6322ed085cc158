package runner

import (
	"strings"
	"testing"
	"time"
)

// TestStatusLineColour: the live status line shows the elapsed time, the step and the faults in
// force, painted when colour is on and plain (no escape sequence at all) when it is off.
func TestStatusLineColour(t *testing.T) {
	for _, color := range []bool{true, false} {
		r := &run{o: Options{Color: color}, start: time.Now(), liveStep: "step 4/9 wait 8s", liveFaults: []string{"blackhole:us-east"}}
		line := r.statusLine()
		if !strings.Contains(line, "step 4/9 wait 8s") || !strings.Contains(line, "faults: ") || !strings.Contains(line, "blackhole:us-east") {
			t.Errorf("colour %v: status line %q lacks the step or the faults", color, line)
		}
		painted := strings.Contains(line, boldCyan) && strings.Contains(line, yellow+"blackhole:us-east"+reset)
		if color != painted || (!color && strings.Contains(line, "\033")) {
			t.Errorf("colour %v: status line %q", color, line)
		}
	}
}
