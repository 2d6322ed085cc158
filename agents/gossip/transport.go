package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// maxDelayedPackets bounds the packets waiting out an injected delay; beyond it new packets
	// are dropped, as a full router queue would (and memory stays bounded).
	maxDelayedPackets = 4096
	// delayedWriteQueue is how many delayed stream writes one connection may have in flight
	// before Write blocks (back-pressure, like a full socket buffer).
	delayedWriteQueue = 64
	// maxDiscardedReads bounds the reads a black-holed stream swallows before giving up.
	maxDiscardedReads = 1 << 16
)

// faultTransport is memberlist's UDP/TCP NetTransport with Faults applied to every packet and
// stream. It binds one IP, and dials from that IP too, so peers can recognise its traffic by
// source address (on loopback the kernel would otherwise pick 127.0.0.1).
type faultTransport struct {
	*memberlist.NetTransport

	faults *Faults
	bindIP netip.Addr
	log    *slog.Logger

	// packetCh and streamCh are what memberlist reads: the inner transport's, filtered.
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	// stopping closes when Shutdown starts: forwarders stop handing traffic to memberlist and
	// injected waits end early.
	stopping chan struct{}
	// innerDone closes once the inner transport has stopped: forwarders may then exit (they must
	// keep draining until then, or the inner listeners block on their unbuffered channels).
	innerDone    chan struct{}
	wg           sync.WaitGroup
	shutdownOnce sync.Once

	// delayed counts packets waiting out an injected delay.
	delayed atomic.Int64
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

// newFaultTransport binds UDP and TCP on bindIP:port (0 = any free port).
func newFaultTransport(bindIP string, port int, faults *Faults, log *slog.Logger) (*faultTransport, error) {
	ip, err := netip.ParseAddr(bindIP)
	if err != nil {
		return nil, fmt.Errorf("gossip bind ip %q: %w", bindIP, err)
	}
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{ip.String()},
		BindPort:  port,
		Logger:    newStdLogger(log),
	})
	if err != nil {
		return nil, fmt.Errorf("gossip transport on %s:%d: %w", bindIP, port, err)
	}
	t := &faultTransport{
		NetTransport: inner,
		faults:       faults,
		bindIP:       ip.Unmap(),
		log:          log,
		packetCh:     make(chan *memberlist.Packet),
		streamCh:     make(chan net.Conn),
		stopping:     make(chan struct{}),
		innerDone:    make(chan struct{}),
	}
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t, nil
}

// addrOf extracts the IP of "ip:port"; ok is false for anything else (no rule then applies).
func addrOf(hostPort string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// netAddrIP extracts the IP of a *net.UDPAddr or *net.TCPAddr.
func netAddrIP(a net.Addr) (netip.Addr, bool) {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort().Addr().Unmap(), true
	case *net.TCPAddr:
		return v.AddrPort().Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// PacketCh is the inner transport's packets minus those from black-holed peers.
func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh is the inner transport's accepted streams minus those from black-holed peers, wrapped
// so that Drop and Delay rules also apply to them.
func (t *faultTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// WriteTo sends a packet to "ip:port".
func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet, silently discarding it for a black-holed peer (or when a loss
// rule draws it) and delivering it late for a delayed one. Either way it reports success, as a
// real network would.
func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ip, ok := addrOf(a.Addr)
	if !ok {
		return t.NetTransport.WriteToAddress(b, a)
	}
	if t.faults.BlocksOut(ip) || t.faults.Loses(ip) {
		return time.Now(), nil
	}
	d, delayed := t.faults.DelayFor(ip)
	wait := time.Duration(0)
	if delayed {
		wait = d.sample()
	}
	if wait <= 0 {
		return t.NetTransport.WriteToAddress(b, a)
	}
	if t.delayed.Add(1) > maxDelayedPackets {
		t.delayed.Add(-1)
		return time.Now(), nil // queue overflow: dropped
	}
	buf := slices.Clone(b)
	time.AfterFunc(wait, func() {
		defer t.delayed.Add(-1)
		select {
		case <-t.stopping:
			return
		default:
		}
		// A partition installed while the packet was "on the wire" still cuts it.
		if t.faults.BlocksOut(ip) {
			return
		}
		_, _ = t.NetTransport.WriteToAddress(buf, a)
	})
	return time.Now(), nil
}

// DialTimeout opens a stream to "ip:port".
func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream from our bind IP. A black-holed peer costs the whole timeout
// and then fails, like a SYN into the void; a delayed peer costs the latency first.
func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	ip, known := addrOf(a.Addr)
	start := time.Now()
	if known && t.faults.Blocks(ip) {
		t.wait(timeout)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: blackHoleError{}}
	}
	if known {
		if d, ok := t.faults.DelayFor(ip); ok {
			lat := d.sample()
			if timeout > 0 && lat >= timeout {
				t.wait(timeout)
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: blackHoleError{}}
			}
			t.wait(lat)
		}
	}
	dialer := net.Dialer{}
	if timeout > 0 {
		dialer.Timeout = max(timeout-time.Since(start), time.Millisecond)
	}
	if !t.bindIP.IsUnspecified() {
		dialer.LocalAddr = &net.TCPAddr{IP: t.bindIP.AsSlice()}
	}
	conn, err := dialer.Dial("tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	if !known {
		return conn, nil
	}
	return t.wrapConn(conn, ip), nil
}

// wait blocks for d or until shutdown.
func (t *faultTransport) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.stopping:
	}
}

// Shutdown stops the inner transport and the forwarders.
func (t *faultTransport) Shutdown() error {
	var err error
	t.shutdownOnce.Do(func() {
		close(t.stopping)
		err = t.NetTransport.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return err
}

// forwardPackets hands the inner transport's packets to memberlist, dropping black-holed ones and
// those a loss rule draws.
func (t *faultTransport) forwardPackets() {
	defer t.wg.Done()
	in := t.NetTransport.PacketCh()
	for {
		select {
		case p := <-in:
			if ip, ok := netAddrIP(p.From); ok && (t.faults.BlocksIn(ip) || t.faults.Loses(ip)) {
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.stopping:
			}
		case <-t.innerDone:
			return
		}
	}
}

// forwardStreams hands accepted streams to memberlist, closing black-holed ones at once.
func (t *faultTransport) forwardStreams() {
	defer t.wg.Done()
	in := t.NetTransport.StreamCh()
	for {
		select {
		case c := <-in:
			ip, ok := netAddrIP(c.RemoteAddr())
			if ok && t.faults.Blocks(ip) {
				_ = c.Close()
				continue
			}
			if ok {
				c = t.wrapConn(c, ip)
			}
			select {
			case t.streamCh <- c:
			case <-t.stopping:
				_ = c.Close()
			}
		case <-t.innerDone:
			return
		}
	}
}

// blackHoleError is the dial error for a black-holed or hopelessly slow peer: a timeout.
type blackHoleError struct{}

func (blackHoleError) Error() string   { return "i/o timeout (gossip fault injection)" }
func (blackHoleError) Timeout() bool   { return true }
func (blackHoleError) Temporary() bool { return true }

// wrapConn applies the rules for remote to a stream. Black-holing is checked on every read and
// write (a partition cuts live streams too); a delay is fixed when the stream opens, because
// memberlist streams are short-lived (push/pull, TCP fallback pings).
func (t *faultTransport) wrapConn(c net.Conn, remote netip.Addr) net.Conn {
	fc := &faultConn{Conn: c, remote: remote, faults: t.faults}
	if _, ok := t.faults.DelayFor(remote); ok {
		fc.queue = make(chan delayedWrite, delayedWriteQueue)
		fc.closing = make(chan struct{})
		fc.abort = t.stopping
		go fc.writeLoop()
	}
	return fc
}

// faultConn is a stream with Faults applied.
type faultConn struct {
	net.Conn
	remote netip.Addr
	faults *Faults

	// The fields below are set only for a delayed stream: writes are queued and a writer
	// goroutine sends each one when its delivery time comes, so latency is added once per write
	// without serialising the caller behind it.
	queue     chan delayedWrite
	closing   chan struct{}
	abort     <-chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	lastAt    time.Time
	writeErr  atomic.Pointer[error]
}

// delayedWrite is one queued write and when to deliver it.
type delayedWrite struct {
	at  time.Time
	buf []byte
}

// Read discards data while the peer is black-holed, until the caller's deadline or EOF ends it.
func (c *faultConn) Read(b []byte) (int, error) {
	for range maxDiscardedReads {
		n, err := c.Conn.Read(b)
		if n > 0 && c.faults.Blocks(c.remote) {
			if err != nil {
				return 0, err
			}
			continue
		}
		return n, err
	}
	return 0, errors.New("gossip fault injection: black-holed stream discarded too much data")
}

// Write sends b, or pretends to while the peer is black-holed, or queues it for delayed delivery.
func (c *faultConn) Write(b []byte) (int, error) {
	if c.queue == nil {
		if c.faults.Blocks(c.remote) {
			return len(b), nil
		}
		return c.Conn.Write(b)
	}
	if errp := c.writeErr.Load(); errp != nil {
		return 0, *errp
	}
	var lat time.Duration
	if d, ok := c.faults.DelayFor(c.remote); ok {
		lat = d.sample()
	}
	c.mu.Lock()
	at := time.Now().Add(lat)
	if at.Before(c.lastAt) { // jitter must not reorder a byte stream
		at = c.lastAt
	}
	c.lastAt = at
	c.mu.Unlock()
	select {
	case <-c.closing:
		return 0, net.ErrClosed
	default:
	}
	select {
	case c.queue <- delayedWrite{at: at, buf: slices.Clone(b)}:
		return len(b), nil
	case <-c.closing:
		return 0, net.ErrClosed
	}
}

// Close closes a plain stream at once; a delayed stream closes after its queued writes are
// delivered (a FIN travels behind the data).
func (c *faultConn) Close() error {
	if c.queue == nil {
		return c.Conn.Close()
	}
	c.closeOnce.Do(func() { close(c.closing) })
	return nil
}

// writeLoop delivers queued writes in order, each at its time, then closes the stream.
func (c *faultConn) writeLoop() {
	defer func() { _ = c.Conn.Close() }()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	deliver := func(w delayedWrite) bool {
		if wait := time.Until(w.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-c.abort:
				return false
			}
		}
		if c.faults.Blocks(c.remote) || c.writeErr.Load() != nil {
			return true
		}
		if _, err := c.Conn.Write(w.buf); err != nil {
			c.writeErr.Store(&err)
		}
		return true
	}
	for {
		select {
		case w := <-c.queue:
			if !deliver(w) {
				return
			}
		case <-c.closing:
			for range delayedWriteQueue + 1 { // flush what is queued, then close
				select {
				case w := <-c.queue:
					if !deliver(w) {
						return
					}
				default:
					return
				}
			}
			return
		case <-c.abort:
			return
		}
	}
}
