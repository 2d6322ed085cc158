//go:build linux

package dnsgeo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux udpPort: recvmmsg and sendmmsg on a descriptor the Go runtime does not poll.
//
// Waiting for packets in Go's network poller costs, per burst of packets, an epoll wake-up, a
// goroutine hand-over between threads, and (because the process was idle in between) a wake-up of
// the runtime's sysmon thread, which then polls every 20 µs for a millisecond. At a steady 50 k
// queries per second that was about a fifth of the server's CPU time and made its tail latency
// worse than gdnsd's. So the socket is taken out of the runtime: the server keeps a duplicate of
// the descriptor in blocking mode, closes Go's (which removes it from the poller, which would
// otherwise still wake up for every packet), and each reader blocks in recvmmsg (MSG_WAITFORONE:
// at least one packet, then whatever else is queued) on its own thread, the way gdnsd's UDP
// threads do. The kernel then wakes the reader directly.
//
// A blocked recvmmsg returns every udpReadWake (SO_RCVTIMEO) so readers notice shutdown even if
// the shutdown(SHUT_RD) wake-up were missed; replies are sent with MSG_DONTWAIT (a full socket
// buffer drops the reply, as for any UDP datagram).

// udpReadWake bounds how long a reader stays blocked in one recvmmsg.
const udpReadWake = 250 * time.Millisecond

// rawPort is the socket.
type rawPort struct {
	fd int
}

// openUDPPort takes conn over: its descriptor is duplicated, conn is closed, the duplicate is
// switched to blocking mode.
func openUDPPort(conn *net.UDPConn) (udpPort, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("dnsgeo: udp socket: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("dnsgeo: udp socket: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dnsgeo: udp socket: dup: %w", dupErr)
	}
	fail := func(what string, err error) (udpPort, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("dnsgeo: udp socket: %s: %w", what, err)
	}
	// Go's descriptor goes first: closing it takes the socket out of the runtime's poller.
	if err := conn.Close(); err != nil {
		return fail("close the runtime's descriptor", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fail("blocking mode", err)
	}
	tv := unix.NsecToTimeval(udpReadWake.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	return &rawPort{fd: fd}, nil
}

// wake implements udpPort: shutting the socket down for reading wakes every blocked recvmmsg
// (on an unconnected UDP socket the call reports ENOTCONN, but the wake-up happens).
func (p *rawPort) wake() { _ = unix.Shutdown(p.fd, unix.SHUT_RD) }

// close implements udpPort.
func (p *rawPort) close() error {
	if err := unix.Close(p.fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// mmsghdr is struct mmsghdr (Go pads it like C does: 64 octets on 64-bit platforms).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// rawBatch is one reader's buffers. Everything the kernel reads or writes through the headers'
// pointers is allocated here, on the heap, for the reader's lifetime.
type rawBatch struct {
	fd    int
	in    []mmsghdr
	inIov []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6 // source addresses (a sockaddr_in fits in one too)
	out   []mmsghdr
	outIv []unix.Iovec
}

// newBatch implements udpPort.
func (p *rawPort) newBatch(size int) udpBatch {
	b := &rawBatch{
		fd:    p.fd,
		in:    make([]mmsghdr, size),
		inIov: make([]unix.Iovec, size),
		bufs:  make([][]byte, size),
		names: make([]unix.RawSockaddrInet6, size),
		out:   make([]mmsghdr, size),
		outIv: make([]unix.Iovec, size),
	}
	for i := range b.in {
		b.bufs[i] = make([]byte, udpReadSize)
		b.inIov[i].Base = &b.bufs[i][0]
		b.in[i].hdr.Iov = &b.inIov[i]
		b.in[i].hdr.SetIovlen(1)
		b.in[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.out[i].hdr.Iov = &b.outIv[i]
		b.out[i].hdr.SetIovlen(1)
	}
	return b
}

// udpReadSize is the receive buffer per packet, as miekg/dns's server uses (dns.DefaultMsgSize):
// a longer datagram is truncated by the kernel and then fails to parse, as it would there.
const udpReadSize = 4096

// read implements udpBatch.
func (b *rawBatch) read() (int, error) {
	for i := range b.in {
		b.in[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].hdr.Flags = 0
		b.in[i].n = 0
		b.inIov[i].SetLen(len(b.bufs[i]))
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(b.fd), uintptr(unsafe.Pointer(&b.in[0])),
			uintptr(len(b.in)), unix.MSG_WAITFORONE, 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN: // udpReadWake passed without a packet
			return 0, nil
		default:
			return 0, os.NewSyscallError("recvmmsg", errno)
		}
	}
}

// packet implements udpBatch.
func (b *rawBatch) packet(i int) ([]byte, netip.AddrPort) {
	return b.bufs[i][:b.in[i].n], sockaddrAddrPort(&b.names[i], b.in[i].hdr.Namelen)
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 (an invalid AddrPort for anything else).
// The port is in network byte order in memory; the family is in host order.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	port := func(p *uint16) uint16 {
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port))
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(&sa.Port))
	}
	return netip.AddrPort{}
}

// send implements udpBatch: each reply goes to the source address (as received, scope included)
// of the packet it answers.
func (b *rawBatch) send(replies []udpReply) error {
	for k, r := range replies {
		o := &b.out[k]
		o.hdr.Name = (*byte)(unsafe.Pointer(&b.names[r.to]))
		o.hdr.Namelen = b.in[r.to].hdr.Namelen
		o.hdr.Flags = 0
		o.n = 0
		b.outIv[k].Base = unsafe.SliceData(r.buf)
		b.outIv[k].SetLen(len(r.buf))
	}
	var errs []error
	for sent := 0; sent < len(replies); {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(b.fd), uintptr(unsafe.Pointer(&b.out[sent])),
			uintptr(len(replies)-sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			// The reply at sent failed (sendmmsg reports the first failure only): skip it.
			errs = append(errs, os.NewSyscallError("sendmmsg", errno))
			n = 1
		case n == 0:
			n = 1 // cannot happen (sendmmsg sends at least one or fails); never loop forever
		}
		sent += int(n)
	}
	return errors.Join(errs...)
}
