// Package serve makes the HTTP servers of drill's nodes with every timeout set, so a slow or
// stuck client (or one that never finishes its headers or body) cannot hold a connection, a
// goroutine and its memory for ever.
package serve

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Limits of every node's HTTP server. The slowest legitimate request is a replica's long poll
// or a read waiting for its LSN (at most 5 s) behind a WAN delay and a semi-sync wait; the bounds
// leave room for that many times over.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// Limits are an HTTP server's timeouts and header cap.
type Limits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
}

// NodeLimits are the limits of every node's HTTP server (the constants above).
func NodeLimits() Limits {
	return Limits{ReadHeader: ReadHeaderTimeout, Read: ReadTimeout, Write: WriteTimeout, Idle: IdleTimeout,
		MaxHeaderBytes: MaxHeaderBytes}
}

// Server is an http.Server for h with NodeLimits.
func Server(addr string, h http.Handler) *http.Server { return NodeLimits().Server(addr, h) }

// Server is an http.Server for h with these limits.
func (l Limits) Server(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: l.ReadHeader, ReadTimeout: l.Read,
		WriteTimeout: l.Write, IdleTimeout: l.Idle, MaxHeaderBytes: l.MaxHeaderBytes}
}

// IsLoopback reports whether a listen address ("host:port") binds loopback only ("localhost"
// included), for the commands that refuse a reachable address unless told otherwise.
func IsLoopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, fmt.Errorf("listen address %q: %q is not an IP address", listen, host)
	}
	return ip.Unmap().IsLoopback(), nil
}
