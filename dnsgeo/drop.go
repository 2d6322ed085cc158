package dnsgeo

import (
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Dropped sources (Config.Drop): a black-holed region's DNS must look dead to its users, so a
// query from a dropped address gets no answer at all, not even an error. The check sits in the
// server's reader, before anything is unpacked, so a dropped packet costs one address match and an
// undropped one a nil check and that match.

// dropHold bounds how long a TCP connection from a dropped source is held open in silence.
const dropHold = 60 * time.Second

// errDropped is returned by the reader for a dropped UDP packet. It is a temporary net.Error, so
// miekg/dns reads the next packet without treating the message as invalid.
type errDropped struct{}

func (errDropped) Error() string   { return "dnsgeo: query from a dropped source" }
func (errDropped) Timeout() bool   { return false }
func (errDropped) Temporary() bool { return true }

// dropReader discards queries from dropped sources (and, on UDP, over the response rate) and
// hands the rest to next.
type dropReader struct {
	next             dns.Reader
	dropUDP, dropTCP func(netip.Addr) bool // nil: none
	stop             <-chan struct{}       // closed on Shutdown: held TCP connections are let go
}

// decorator returns the server's dns.DecorateReader: ECS rewriting, behind the drop check when
// Config.Drop or a response rate is set. stop ends held connections.
func (s *Server) decorator(stop <-chan struct{}) func(dns.Reader) dns.Reader {
	if s.dropUDP == nil && s.cfg.Drop == nil {
		return decorateECS
	}
	return func(r dns.Reader) dns.Reader {
		return dropReader{next: decorateECS(r), dropUDP: s.dropUDP, dropTCP: s.cfg.Drop, stop: stop}
	}
}

// ReadUDP implements dns.Reader.
func (r dropReader) ReadUDP(conn *net.UDPConn, timeout time.Duration) ([]byte, *dns.SessionUDP, error) {
	m, sess, err := r.next.ReadUDP(conn, timeout)
	if err == nil && r.dropUDP != nil && r.dropUDP(remoteIP(sess.RemoteAddr())) {
		return nil, nil, errDropped{}
	}
	return m, sess, err
}

// ReadPacketConn implements dns.PacketConnReader.
func (r dropReader) ReadPacketConn(conn net.PacketConn, timeout time.Duration) ([]byte, net.Addr, error) {
	m, addr, err := r.next.(dns.PacketConnReader).ReadPacketConn(conn, timeout)
	if err == nil && r.dropUDP != nil && r.dropUDP(remoteIP(addr)) {
		return nil, nil, errDropped{}
	}
	return m, addr, err
}

// ReadTCP implements dns.Reader. A dropped client's connection is read and discarded until it
// closes, dropHold passes or the server stops; then the server closes it without having answered.
func (r dropReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	if r.dropTCP == nil || !r.dropTCP(remoteIP(conn.RemoteAddr())) {
		return r.next.ReadTCP(conn, timeout)
	}
	held := make(chan struct{})
	defer close(held)
	_ = conn.SetReadDeadline(time.Now().Add(dropHold))
	go func() {
		select {
		case <-r.stop:
			_ = conn.SetReadDeadline(time.Unix(1, 0))
		case <-held:
		}
	}()
	_, _ = io.Copy(io.Discard, conn)
	return nil, errDropped{}
}
