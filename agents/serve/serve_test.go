package serve

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSlowClientIsCut: a client that never finishes its headers (slowloris) is disconnected once
// ReadHeaderTimeout passes, instead of holding a connection and a goroutine for ever.
func TestSlowClientIsCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the header timeout (5 s); skipped in -short mode")
	}
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server("", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	for _, f := range []func(*http.Server) time.Duration{
		func(s *http.Server) time.Duration { return s.ReadTimeout },
		func(s *http.Server) time.Duration { return s.WriteTimeout },
		func(s *http.Server) time.Duration { return s.IdleTimeout },
	} {
		if f(srv) <= 0 {
			t.Fatalf("a timeout is unset: %+v", srv)
		}
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: drill\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	// Bounded wait: the server must close the connection well before this.
	_ = c.SetReadDeadline(time.Now().Add(ReadHeaderTimeout + 10*time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client that never finished its headers was still connected after %s", time.Since(start).Round(time.Millisecond))
	}
	t.Logf("slow client cut after %s (ReadHeaderTimeout %s)", time.Since(start).Round(time.Millisecond), ReadHeaderTimeout)
}

func TestIsLoopback(t *testing.T) {
	for listen, want := range map[string]bool{"127.0.0.1:53": true, "127.9.9.9:0": true, "[::1]:53": true, "localhost:53": true,
		"[::ffff:127.0.0.1]:53": true, "0.0.0.0:53": false, "[::]:53": false, "10.1.2.3:53": false} {
		if got, err := IsLoopback(listen); err != nil || got != want {
			t.Errorf("IsLoopback(%s) = %v, %v; want %v", listen, got, err, want)
		}
	}
	for _, bad := range []string{"no-port", "example.com:53"} {
		if _, err := IsLoopback(bad); err == nil {
			t.Errorf("IsLoopback(%s) accepted", bad)
		}
	}
}

// A client that sends its headers and then its body a byte at a time is cut at the read timeout,
// and one that never reads a large answer at the write timeout. Short limits of the same
// construction as NodeLimits keep the test fast; TestSlowClientIsCut checks NodeLimits are set.
func TestSlowBodyAndSlowReaderAreCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a read and a write timeout (2 s each); skipped in -short mode")
	}
	t.Parallel()
	lim := Limits{ReadHeader: time.Second, Read: 2 * time.Second, Write: 2 * time.Second, Idle: 2 * time.Second, MaxHeaderBytes: 1 << 10}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 64<<20)
	srv := lim.Server("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.Copy(io.Discard, r.Body)
			return
		}
		_, _ = w.Write(big)
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: drill\r\nContent-Length: 1000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// One byte every 100 ms, for at most 10 s: the server must cut it long before.
		for i := 0; i < 100; i++ {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Logf("cut after %s", time.Since(start).Round(time.Millisecond))
				return
			}
			time.Sleep(100 * time.Millisecond)
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				t.Logf("cut after %s", time.Since(start).Round(time.Millisecond))
				return
			}
		}
		t.Fatalf("a body sent a byte every 100 ms was still accepted after %s (read timeout %s)", time.Since(start).Round(time.Millisecond), lim.Read)
	})
	t.Run("slow reader", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: drill\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lim.Write + time.Second) // never read while the server writes 64 MiB
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		if n >= int64(len(big)) {
			t.Fatalf("the whole %d-byte answer reached a client that did not read for %s (write timeout %s)", n, lim.Write+time.Second, lim.Write)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
