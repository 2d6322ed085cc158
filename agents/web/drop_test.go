package web

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/drillworks/drill/topology/netalloc"
)

// TestDropHoldsConnectionsSilently: a request from a dropped source is taken over and held with no
// bytes written (no response, no reset) while other sources are served, and stopping the server
// lets the held connection go.
func TestDropHoldsConnectionsSilently(t *testing.T) {
	dropped := netip.MustParseAddr(testNet + ".9.12")
	ln, err := net.Listen("tcp", testNet+".9.11:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // Serve binds it again: the address is ours (127.84/16 is this test's range)
	s, err := New(Config{DBKey: testDBKey,
		Name: "w", Region: "us-east", Listen: addr, Members: &view{},
		DBAddr: func(string) (string, error) { return "", nil },
		Drop:   func(a netip.Addr) bool { return a == dropped },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("web server did not stop")
		}
	})

	client := func(src string) *http.Client {
		return &http.Client{Timeout: time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client(testNet + ".9.13").Get("http://" + addr + "/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("undropped source: %s", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web node never served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: dropped.AsSlice()}, Timeout: time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dropped source could not connect: %v", err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /status HTTP/1.1\r\nHost: w\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	n, err := conn.Read(make([]byte, 512))
	if ne, ok := err.(net.Error); n != 0 || !ok || !ne.Timeout() {
		t.Fatalf("dropped source got %d bytes, err %v; want nothing and a read timeout", n, err)
	}
	cancel()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("held connection still open after the server stopped")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("held connection not released when the server stopped")
	}
}

// testNet is this test process's own loopback /16 ("127.N"), from netalloc, so that packages
// testing in parallel never share an address.
var testNet = netalloc.LoopbackNet16ForProcess()
