package serve

import (
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
