package cli

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal (a tty answers the termios query); progress to
// anything else (CI logs, files, pipes) stays plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// liveOutput says how to print progress to w: live (a refreshing status line) on a terminal,
// in colour unless NO_COLOR is set (https://no-color.org).
func (g *globals) liveOutput(w io.Writer) (live, color bool) {
	live = isTerminal(w)
	return live, live && g.env.Getenv("NO_COLOR") == ""
}

// clearingWriter clears the terminal's current line before each write, so that a log line
// printed while the live status line is drawn replaces it (it is redrawn under the log line).
type clearingWriter struct{ w io.Writer }

func (c clearingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(c.w, "\r\033[K"); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
