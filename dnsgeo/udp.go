package dnsgeo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Batched UDP serving.
//
// miekg/dns's UDP server starts a goroutine per packet (whose stack then grows while the message
// is unpacked), reads and writes each packet with its own syscall carrying IP_PKTINFO control
// messages, and allocates every reply buffer. Profiled under dnsperf on 2 cores, that overhead was
// two thirds of the server's user time. batchUDP serves a socket bound to a specific address with
// a few long-lived goroutines that read every queued packet with one recvmmsg, answer them in
// turn, and send all replies with one sendmmsg (golang.org/x/net falls back to one packet per
// syscall where those do not exist); measured: ~23 → ~8 µs of server CPU per query and about
// twice the queries per second (dnsgeo/bench/README.md). TCP stays on miekg/dns.
//
// It does what miekg/dns's server does with a packet, in the same order: Config.Drop, the ECS
// option rename, the header checks of dns.DefaultMsgAcceptFunc (FORMERR / NOTIMP / silence),
// unpacking (FORMERR and the invalid-message hook on failure) and the handler.

const (
	// udpBatchSize is how many packets one recvmmsg/sendmmsg moves at most.
	udpBatchSize = 32
	// udpMaxConsecutiveErrors bounds a reader's retries on read errors other than a closed
	// socket, so a broken socket cannot spin a CPU forever.
	udpMaxConsecutiveErrors = 1000
)

// batchConn is what ipv4.PacketConn and ipv6.PacketConn both offer (their Message types are the
// same type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchUDP serves one UDP socket.
type batchUDP struct {
	s       *Server
	conn    *net.UDPConn
	batch   batchConn
	closing atomic.Bool
	wg      sync.WaitGroup
	// slowOnly turns the fast path off (tests compare both paths on the same packets).
	slowOnly bool
}

// newBatchUDP returns a batched server for pc, or nil when pc needs miekg/dns's server: it is not
// a *net.UDPConn, or it is bound to a wildcard address, where a reply's source address must be
// taken from each packet's control messages.
func newBatchUDP(s *Server, pc net.PacketConn) *batchUDP {
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil
	}
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || local.IP.IsUnspecified() {
		return nil
	}
	u := &batchUDP{s: s, conn: conn}
	if local.IP.To4() != nil {
		u.batch = ipv4.NewPacketConn(conn)
	} else {
		u.batch = ipv6.NewPacketConn(conn)
	}
	return u
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

// shutdown closes the socket and waits (until ctx ends) for the readers to finish their batch.
func (u *batchUDP) shutdown(ctx context.Context) error {
	u.closing.Store(true)
	err := u.conn.Close()
	done := make(chan struct{})
	go func() {
		u.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("dnsgeo: shutdown udp: %w", ctx.Err())
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("dnsgeo: shutdown udp: %w", err)
	}
	return nil
}

// serve is one reader: read a batch, answer each packet into the reply batch, send the replies.
func (u *batchUDP) serve() {
	defer u.wg.Done()
	in := make([]ipv4.Message, udpBatchSize)
	out := make([]ipv4.Message, udpBatchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, dns.DefaultMsgSize)}
		out[i].Buffers = [][]byte{make([]byte, 0, dns.DefaultMsgSize)}
	}
	w := &batchWriter{local: u.conn.LocalAddr()}
	errs := 0
	for {
		n, err := u.batch.ReadBatch(in, 0)
		if err != nil {
			if u.closing.Load() || errors.Is(err, net.ErrClosed) {
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
		w.out = out[:0]
		for i := range n {
			u.serveOne(w, in[i].Buffers[0][:in[i].N], in[i].Addr)
		}
		for sent := 0; sent < len(w.out); {
			k, err := u.batch.WriteBatch(w.out[sent:], 0)
			if err != nil {
				// A reply that cannot be sent is lost like any UDP datagram; skip it.
				u.s.logger.Debug("udp write", "err", err)
				k = max(k, 1)
			}
			sent += k
		}
		for i := range w.out {
			w.out[i].Addr = nil // do not keep client addresses alive between batches
		}
	}
}

// serveOne handles one packet the way miekg/dns's server would.
func (u *batchUDP) serveOne(w *batchWriter, m []byte, from net.Addr) {
	if drop := u.s.cfg.Drop; drop != nil && drop(remoteIP(from)) {
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
			if reply, region, ok := u.s.fastReply(m, remoteIP(from), slot.Buffers[0][:cap(slot.Buffers[0])]); ok {
				w.remote = from
				w.commit(slot, reply)
				u.s.metrics.count(dns.RcodeSuccess, region)
				return
			}
		}
	}
	rewriteECSCodes(m)
	w.remote = from
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

// batchWriter is the dns.ResponseWriter of a batch: each reply is packed into the next slot of
// out (reusing its buffer) and sent with the rest of the batch.
type batchWriter struct {
	local  net.Addr
	remote net.Addr // the packet being answered
	out    []ipv4.Message
}

// LocalAddr implements dns.ResponseWriter.
func (w *batchWriter) LocalAddr() net.Addr { return w.local }

// RemoteAddr implements dns.ResponseWriter.
func (w *batchWriter) RemoteAddr() net.Addr { return w.remote }

// WriteMsg implements dns.ResponseWriter.
func (w *batchWriter) WriteMsg(m *dns.Msg) error {
	slot, ok := w.slot()
	if !ok {
		return errNoReplySlot
	}
	b, err := m.PackBuffer(slot.Buffers[0][:cap(slot.Buffers[0])])
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
	w.commit(slot, append(slot.Buffers[0][:0], b...))
	return len(b), nil
}

// errNoReplySlot: every reply slot of the batch is taken (one per packet read), so some handler
// answered more than once.
var errNoReplySlot = errors.New("dnsgeo: no reply slot left in the udp batch")

// slot is the next free reply slot.
func (w *batchWriter) slot() (*ipv4.Message, bool) {
	i := len(w.out)
	if i == cap(w.out) {
		return nil, false
	}
	return &w.out[:i+1][i], true
}

// commit adds the packed reply b (in the slot's buffer, or a larger one that replaces it).
func (w *batchWriter) commit(slot *ipv4.Message, b []byte) {
	slot.Buffers[0] = b
	slot.Addr = w.remote
	w.out = w.out[:len(w.out)+1]
}

// Close implements dns.ResponseWriter (nothing to close per query on UDP).
func (w *batchWriter) Close() error { return nil }

// TsigStatus implements dns.ResponseWriter (TSIG is not used).
func (w *batchWriter) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (w *batchWriter) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (w *batchWriter) Hijack() {}
