package dnsgeo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Batched UDP serving.
//
// miekg/dns's UDP server starts a goroutine per packet (whose stack then grows while the message
// is unpacked), reads and writes each packet with its own syscall carrying IP_PKTINFO control
// messages, and allocates every reply buffer. Profiled under dnsperf on 2 cores, that overhead was
// two thirds of the server's user time. batchUDP serves a socket bound to a specific address with
// a few long-lived goroutines that read every queued packet with one recvmmsg, answer them in
// turn (the hot queries from wire bytes, see fastpath.go) and send all replies with one sendmmsg
// (dnsgeo/bench/README.md has the measurements). TCP stays on miekg/dns.
//
// The socket is read through a udpPort (udp_linux.go): on Linux the readers block in recvmmsg on
// a descriptor of their own rather than in Go's network poller; elsewhere there is no udpPort and
// miekg/dns's UDP server is used.
//
// It does what miekg/dns's server does with a packet, in the same order: the drop check
// (Config.Drop and the response rate), the ECS option rename, the header checks of
// dns.DefaultMsgAcceptFunc (FORMERR / NOTIMP / silence), unpacking (FORMERR and the
// invalid-message hook on failure) and the handler.

const (
	// udpBatchSize is how many packets one recvmmsg/sendmmsg moves at most.
	udpBatchSize = 32
	// udpYieldEvery is how often a busy reader yields (runtime.Gosched). A goroutine that is never
	// rescheduled looks to the runtime's sysmon thread like one running for more than 10 ms (time
	// blocked in syscalls counts), so every 10 ms sysmon took the reader's processor away in the
	// middle of a recvmmsg and then went back to polling every 20 µs: at 52k qps 4.5k sysmon
	// wake-ups a second, 100 with the yield, and 8.4 → 7.0 µs of server CPU per query at 60k qps
	// (dnsgeo/bench/README.md).
	udpYieldEvery = time.Millisecond
	// udpMaxConsecutiveErrors bounds a reader's retries on read errors other than a closed
	// socket, so a broken socket cannot spin a CPU forever.
	udpMaxConsecutiveErrors = 1000
)

// udpPort is a UDP socket that batched readers share.
type udpPort interface {
	// newBatch returns one reader's packet and address buffers for up to size packets.
	newBatch(size int) udpBatch
	// wake makes blocked reads return (after batchUDP.closing is set).
	wake()
	// close releases the socket; no read or send may be running or start afterwards.
	close() error
}

// udpBatch is one reader's buffers.
type udpBatch interface {
	// read waits for packets and returns how many arrived; 0 with a nil error means none yet
	// (a periodic wake-up: check for shutdown and read again).
	read() (int, error)
	// packet is the i-th packet read and its source.
	packet(i int) ([]byte, netip.AddrPort)
	// send sends each reply to the source of the packet it answers.
	send(replies []udpReply) error
}

// batchUDP serves one UDP socket.
type batchUDP struct {
	s       *Server
	port    udpPort
	local   net.Addr
	closing atomic.Bool
	wg      sync.WaitGroup
	// slowOnly turns the fast path off (tests compare both paths on the same packets).
	slowOnly bool
}

// newBatchUDP returns a batched server for pc, or nil when pc needs miekg/dns's server: it is not
// a *net.UDPConn, it is bound to a wildcard address (where a reply's source address must be taken
// from each packet's control messages), or the platform has no udpPort. The batched server takes
// pc over (pc itself is closed; see openUDPPort).
func newBatchUDP(s *Server, pc net.PacketConn) *batchUDP {
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil
	}
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || local.IP.IsUnspecified() {
		return nil
	}
	port, err := openUDPPort(conn)
	if err != nil {
		s.logger.Debug("udp: miekg/dns server instead of batched reads", "err", err)
		return nil
	}
	return &batchUDP{s: s, port: port, local: local}
}

// udpReaders is how many goroutines read the socket: half the usable CPUs, at least one. On the
// 2-core benchmark machine one reader beat two, since the load generator and the kernel's packet
// work need the other core.
func udpReaders() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// start launches the readers.
func (u *batchUDP) start() {
	for range udpReaders() {
		u.wg.Add(1)
		go u.serve()
	}
}

// shutdown stops the readers (they finish their batch) and closes the socket. If ctx ends first,
// the socket is closed once the readers are done.
func (u *batchUDP) shutdown(ctx context.Context) error {
	u.closing.Store(true)
	u.port.wake()
	done := make(chan error, 1)
	go func() {
		u.wg.Wait()
		done <- u.port.close()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("dnsgeo: shutdown udp: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dnsgeo: shutdown udp: %w", ctx.Err())
	}
}

// serve is one reader: read a batch, answer each packet into the reply batch, send the replies.
func (u *batchUDP) serve() {
	defer u.wg.Done()
	b := u.port.newBatch(udpBatchSize)
	w := newBatchWriter(u.local, udpBatchSize)
	errs := 0
	lastYield := time.Now()
	for !u.closing.Load() {
		n, err := b.read()
		if err != nil {
			if u.closing.Load() {
				return
			}
			if errs++; errs >= udpMaxConsecutiveErrors {
				u.s.logger.Error("udp reader stops after repeated read errors", "err", err)
				return
			}
			u.s.logger.Debug("udp read", "err", err)
			continue
		}
		errs = 0
		w.replies = w.replies[:0]
		for i := range n {
			m, from := b.packet(i)
			w.answering(i, from)
			u.serveOne(w, m)
		}
		if len(w.replies) > 0 {
			if err := b.send(w.replies); err != nil {
				// A reply that cannot be sent is lost like any UDP datagram.
				u.s.logger.Debug("udp write", "err", err)
			}
		}
		if now := time.Now(); now.Sub(lastYield) >= udpYieldEvery {
			runtime.Gosched()
			lastYield = now
		}
	}
}

// serveOne handles one packet (from w's current peer) the way miekg/dns's server would.
func (u *batchUDP) serveOne(w *batchWriter, m []byte) {
	src := w.peer.Addr().Unmap()
	if drop := u.s.dropUDP; drop != nil && drop(src) {
		return
	}
	const headerLen = 12
	if len(m) < headerLen {
		u.s.invalidMsg(m, dns.ErrShortRead)
		return
	}
	if !u.slowOnly {
		// The hot queries are answered from wire bytes (fastpath.go); the rest go on below.
		if slot, ok := w.slot(); ok {
			if reply, region, ok := u.s.fastReply(m, src, slot.buf[:cap(slot.buf)]); ok {
				w.commit(slot, reply)
				u.s.metrics.count(dns.RcodeSuccess, region)
				return
			}
		}
	}
	rewriteECSCodes(m)
	dh := dns.Header{
		Id:      binary.BigEndian.Uint16(m[0:]),
		Bits:    binary.BigEndian.Uint16(m[2:]),
		Qdcount: binary.BigEndian.Uint16(m[4:]),
		Ancount: binary.BigEndian.Uint16(m[6:]),
		Nscount: binary.BigEndian.Uint16(m[8:]),
		Arcount: binary.BigEndian.Uint16(m[10:]),
	}
	req := new(dns.Msg)
	action := dns.DefaultMsgAcceptFunc(dh)
	switch action {
	case dns.MsgAccept:
		err := req.Unpack(m)
		if err == nil {
			u.s.ServeDNS(w, req)
			return
		}
		u.s.invalidMsg(m, err)
	case dns.MsgReject, dns.MsgRejectNotImplemented:
		// Like miekg/dns: the reply carries the header only (no question).
		var hdr [headerLen]byte
		copy(hdr[:4], m) // id and flags; every count zero
		_ = req.Unpack(hdr[:])
	default: // MsgIgnore: a response, never answered
		return
	}
	// miekg/dns's rejection: FORMERR (or NOTIMP) echoing the id and opcode, nothing else.
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	_ = w.WriteMsg(req)
}

// udpReply is one reply of a batch.
type udpReply struct {
	buf []byte // the reply (the slot's buffer, reused batch after batch, or a larger one)
	to  int    // index in the batch of the packet it answers
}

// batchWriter is the dns.ResponseWriter of a batch: each reply is packed into the next reply
// slot (reusing its buffer) and sent with the rest of the batch.
type batchWriter struct {
	local   net.Addr
	peer    netip.AddrPort // source of the packet being answered
	cur     int            // its index in the batch
	remote  net.Addr       // peer as a net.Addr, made when the slow path first asks for it
	replies []udpReply     // the batch's replies so far; cap is the batch size
}

// newBatchWriter returns a writer with size reply slots.
func newBatchWriter(local net.Addr, size int) *batchWriter {
	w := &batchWriter{local: local, replies: make([]udpReply, size)}
	for i := range w.replies {
		w.replies[i].buf = make([]byte, 0, dns.DefaultMsgSize)
	}
	w.replies = w.replies[:0]
	return w
}

// answering makes packet i (from peer) the one being answered.
func (w *batchWriter) answering(i int, peer netip.AddrPort) {
	w.cur, w.peer, w.remote = i, peer, nil
}

// LocalAddr implements dns.ResponseWriter.
func (w *batchWriter) LocalAddr() net.Addr { return w.local }

// RemoteAddr implements dns.ResponseWriter.
func (w *batchWriter) RemoteAddr() net.Addr {
	if w.remote == nil {
		w.remote = net.UDPAddrFromAddrPort(netip.AddrPortFrom(w.peer.Addr().Unmap(), w.peer.Port()))
	}
	return w.remote
}

// WriteMsg implements dns.ResponseWriter.
func (w *batchWriter) WriteMsg(m *dns.Msg) error {
	slot, ok := w.slot()
	if !ok {
		return errNoReplySlot
	}
	b, err := m.PackBuffer(slot.buf[:cap(slot.buf)])
	if err != nil {
		return fmt.Errorf("dnsgeo: pack reply: %w", err)
	}
	w.commit(slot, b)
	return nil
}

// Write implements dns.ResponseWriter.
func (w *batchWriter) Write(b []byte) (int, error) {
	if len(b) > dns.MaxMsgSize {
		return 0, errors.New("dnsgeo: reply too large")
	}
	slot, ok := w.slot()
	if !ok {
		return 0, errNoReplySlot
	}
	w.commit(slot, append(slot.buf[:0], b...))
	return len(b), nil
}

// errNoReplySlot: every reply slot of the batch is taken (one per packet read), so some handler
// answered more than once.
var errNoReplySlot = errors.New("dnsgeo: no reply slot left in the udp batch")

// slot is the next free reply slot.
func (w *batchWriter) slot() (*udpReply, bool) {
	i := len(w.replies)
	if i == cap(w.replies) {
		return nil, false
	}
	return &w.replies[:i+1][i], true
}

// commit adds the reply b (in the slot's buffer, or a larger one that replaces it) for the packet
// being answered.
func (w *batchWriter) commit(slot *udpReply, b []byte) {
	slot.buf = b
	slot.to = w.cur
	w.replies = w.replies[:len(w.replies)+1]
}

// Close implements dns.ResponseWriter (nothing to close per query on UDP).
func (w *batchWriter) Close() error { return nil }

// TsigStatus implements dns.ResponseWriter (TSIG is not used).
func (w *batchWriter) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (w *batchWriter) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (w *batchWriter) Hijack() {}
