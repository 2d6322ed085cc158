package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// sshDialer returns a dialer whose every connection is the stdio of `ssh [-l user] [-p port] --
// host docker system dial-stdio`: an engine on another host reached over ssh, as the docker CLI
// reaches ssh:// engines. ssh's own configuration (keys, agent, known hosts) applies; the remote
// user must be allowed to use the engine. DRILL_SSH names another ssh program (tests).
func sshDialer(host string) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "ssh" || u.Hostname() == "" {
		return nil, fmt.Errorf("docker engine %q: want ssh://[user@]host[:port]", host)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("docker engine %q: an ssh address takes no path", host)
	}
	args := []string{"-o", "BatchMode=yes"} // never a password prompt in a drill run
	if u.User != nil {
		args = append(args, "-l", u.User.Username())
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	args = append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
	prog := "ssh"
	if p := os.Getenv("DRILL_SSH"); p != "" {
		prog = p
	}
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		// Not tied to ctx: the connection outlives the call that opened it (keep-alive).
		cmd := exec.Command(prog, args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stderr := &limitedWriter{n: 4096}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("docker engine %s: start %s: %w", host, prog, err)
		}
		return &cmdConn{cmd: cmd, r: stdout, w: stdin, stderr: stderr, host: host, exited: make(chan struct{})}, nil
	}, nil
}

// cmdConn is a net.Conn over a command's stdout and stdin.
type cmdConn struct {
	cmd    *exec.Cmd
	r      io.ReadCloser
	w      io.WriteCloser
	stderr *limitedWriter
	host   string

	closeOnce, waitOnce sync.Once
	exited              chan struct{} // closed when the command has exited (wait)
}

// wait reaps the command once; its error output is complete after it.
func (c *cmdConn) wait() {
	c.waitOnce.Do(func() {
		_ = c.cmd.Wait()
		close(c.exited)
	})
}

func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && n == 0 {
		// The command ended its output: once it has exited, its error output says why.
		go c.wait()
		select {
		case <-c.exited:
		case <-time.After(2 * time.Second):
		}
		if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
			return 0, fmt.Errorf("docker engine %s: ssh: %s", c.host, msg)
		}
	}
	return n, err
}

func (c *cmdConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close ends the command: its stdin first (dial-stdio then exits), then a kill if it lingers.
func (c *cmdConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.w.Close()
		go c.wait()
		select {
		case <-c.exited:
		case <-time.After(2 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return nil
}

func (c *cmdConn) LocalAddr() net.Addr                { return dummyAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr               { return dummyAddr{} }
func (c *cmdConn) SetDeadline(t time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return nil }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "ssh" }
func (dummyAddr) String() string  { return "ssh" }

// limitedWriter keeps the first n bytes written to it (a command's error output) and drops the
// rest.
type limitedWriter struct {
	mu sync.Mutex
	b  strings.Builder
	n  int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (l *limitedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
