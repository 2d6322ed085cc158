package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its terminal end (the test's stand-in for a user's
// terminal); both ends close when the test ends.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("SKIPPED: no pseudo-terminals here (%v): the terminal detection was NOT tested", err)
	}
	t.Cleanup(func() { _ = ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tty.Close() })
	return tty
}

// TestLiveOutput: progress to a terminal is live and in colour unless NO_COLOR is set
// (https://no-color.org); progress to anything else (a pipe, a file, CI) is plain lines.
func TestLiveOutput(t *testing.T) {
	tty := openPTY(t)
	env := func(noColor string) *globals {
		return &globals{env: Env{Getenv: func(k string) string {
			if k == "NO_COLOR" {
				return noColor
			}
			return ""
		}}}
	}
	for _, tc := range []struct {
		name              string
		w                 io.Writer
		noColor           string
		wantLive, wantCol bool
	}{
		{"a terminal", tty, "", true, true},
		{"a terminal with NO_COLOR", tty, "1", true, false},
		{"a buffer", &bytes.Buffer{}, "", false, false},
	} {
		live, color := env(tc.noColor).liveOutput(tc.w)
		if live != tc.wantLive || color != tc.wantCol {
			t.Errorf("%s: live %v colour %v, want %v %v", tc.name, live, color, tc.wantLive, tc.wantCol)
		}
	}
}
