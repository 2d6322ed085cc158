package dnsgeo

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// ECS (EDNS Client Subnet, RFC 7871) handling.
//
// miekg/dns parses option 8 itself and loses information the RFC wants checked: it silently drops
// extra address octets, and a malformed option makes the whole message unparseable, so the server
// answers FORMERR before our handler (and its metrics and query log) ever sees the query. The
// server therefore renames every incoming option 8 to ecsWireCode on the raw bytes (see
// ecsReader) so that miekg keeps the option body verbatim as an EDNS0_LOCAL, and parseECS checks it
// byte by byte. Queries handed to Handler() directly may carry a parsed EDNS0_SUBNET instead; both
// forms are accepted.

const (
	// ecsWireCode is the local-use option code (RFC 6891 §9: 65001-65534) our reader gives
	// incoming ECS options so that miekg/dns keeps their raw bytes.
	ecsWireCode = 65001
	// escapedLocalCode is where a client's own option 65001 is moved so it cannot pose as ECS
	// (65535 is reserved; we never act on it).
	escapedLocalCode = 65535
)

// Reasons an ECS option is rejected with FORMERR.
var (
	errECSShort     = errors.New("ecs option shorter than 4 octets")
	errECSFamily    = errors.New("ecs unknown address family")
	errECSPrefix    = errors.New("ecs source prefix longer than the address family")
	errECSAddrLen   = errors.New("ecs address length does not match the source prefix")
	errECSBits      = errors.New("ecs address has bits set beyond the source prefix")
	errECSDuplicate = errors.New("more than one ecs option")
)

// ecsOption is a validated client subnet option from a query.
type ecsOption struct {
	// family is 1 (IPv4), 2 (IPv6) or 0 (old dig's "+subnet=0": no address at all).
	family uint16
	// source is the SOURCE PREFIX-LENGTH.
	source uint8
	// addr is the address (masked to source bits); invalid when family is 0.
	addr netip.Addr
	// local is the raw option (our reader's form); the reply reuses it with the scope byte set.
	local *dns.EDNS0_LOCAL
	// subnet is the parsed option (Handler() callers' form); the reply reuses it likewise.
	subnet *dns.EDNS0_SUBNET
}

// prefix is the client's network as sent (address/source).
func (e *ecsOption) prefix() netip.Prefix {
	if !e.addr.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(e.addr, int(e.source))
}

// setScope turns the request's option into the reply's: family, source and address unchanged
// (RFC 7871 §7.2.1), scope set. The request is ours to modify: miekg/dns hands every ServeDNS a
// freshly unpacked message.
func (e *ecsOption) setScope(scope uint8) dns.EDNS0 {
	if e.local != nil {
		e.local.Code = dns.EDNS0SUBNET
		e.local.Data[3] = scope
		return e.local
	}
	e.subnet.SourceScope = scope
	return e.subnet
}

// parseECSWire validates a raw ECS option body (RFC 7871 §6) byte by byte.
func parseECSWire(b []byte) (ecsOption, error) {
	if len(b) < 4 {
		return ecsOption{}, errECSShort
	}
	e := ecsOption{family: binary.BigEndian.Uint16(b), source: b[2]}
	addr := b[4:]
	var width int
	switch e.family {
	case 0:
		// Old dig sends FAMILY 0 for "+subnet=0"; with no address it can only mean "don't use
		// my address", so accept it rather than refuse a well-meant query.
		if e.source != 0 || len(addr) != 0 {
			return ecsOption{}, errECSFamily
		}
		return e, nil
	case 1:
		width = 32
	case 2:
		width = 128
	default:
		return ecsOption{}, errECSFamily
	}
	if int(e.source) > width {
		return ecsOption{}, errECSPrefix
	}
	if len(addr) != (int(e.source)+7)/8 {
		return ecsOption{}, errECSAddrLen
	}
	if rem := e.source % 8; rem != 0 && addr[len(addr)-1]&(0xff>>rem) != 0 {
		return ecsOption{}, errECSBits
	}
	var buf [16]byte
	copy(buf[:], addr)
	if width == 32 {
		e.addr = netip.AddrFrom4([4]byte{buf[0], buf[1], buf[2], buf[3]})
	} else {
		e.addr = netip.AddrFrom16(buf)
	}
	return e, nil
}

// parseECSSubnet validates an option miekg/dns has already parsed. It cannot see the address's
// octet count any more, so that check is left to parseECSWire.
func parseECSSubnet(s *dns.EDNS0_SUBNET) (ecsOption, error) {
	e := ecsOption{family: s.Family, source: s.SourceNetmask, subnet: s}
	var width int
	switch s.Family {
	case 0:
		if s.SourceNetmask != 0 {
			return ecsOption{}, errECSFamily
		}
		return e, nil
	case 1:
		width = 32
		ip := s.Address.To4()
		if ip == nil {
			return ecsOption{}, errECSAddrLen
		}
		e.addr = netip.AddrFrom4([4]byte(ip))
	case 2:
		width = 128
		if len(s.Address) != net.IPv6len {
			return ecsOption{}, errECSAddrLen
		}
		e.addr = netip.AddrFrom16([16]byte(s.Address))
	default:
		return ecsOption{}, errECSFamily
	}
	if int(s.SourceNetmask) > width {
		return ecsOption{}, errECSPrefix
	}
	if masked := netip.PrefixFrom(e.addr, int(s.SourceNetmask)).Masked().Addr(); masked != e.addr {
		return ecsOption{}, errECSBits
	}
	return e, nil
}

// isPrivate reports addresses RFC 7871 §10 says to ignore in ECS (RFC 1918 and RFC 4193), and the
// prefix length of the private range, which is what an answer based on the resolver's own
// address may be scoped to. Loopback is deliberately not private here: the local runtime's
// simulated users live in configured 127/8 client subnets.
func isPrivate(a netip.Addr) (bool, uint8) {
	if a.Is4() {
		b := a.As4()
		switch {
		case b[0] == 10:
			return true, 8
		case b[0] == 172 && b[1]&0xf0 == 16:
			return true, 12
		case b[0] == 192 && b[1] == 168:
			return true, 16
		}
		return false, 0
	}
	if a.As16()[0]&0xfe == 0xfc {
		return true, 7
	}
	return false, 0
}

// rewriteECSCodes renames option codes inside the OPT record of a raw DNS message, in place and
// without changing its length: 8 (ECS) becomes ecsWireCode and a client's own ecsWireCode becomes
// escapedLocalCode. Any message it cannot walk is left untouched for miekg/dns to judge. Every
// loop is bounded by the message length.
func rewriteECSCodes(m []byte) {
	const headerLen = 12
	if len(m) < headerLen {
		return
	}
	qd := int(binary.BigEndian.Uint16(m[4:]))
	rrs := int(binary.BigEndian.Uint16(m[6:])) + int(binary.BigEndian.Uint16(m[8:]))
	ar := int(binary.BigEndian.Uint16(m[10:]))
	off := headerLen
	for i := 0; i < qd; i++ {
		off = skipName(m, off)
		if off < 0 || off+4 > len(m) {
			return
		}
		off += 4
	}
	for i := 0; i < rrs+ar; i++ {
		off = skipName(m, off)
		if off < 0 || off+10 > len(m) {
			return
		}
		rrtype := binary.BigEndian.Uint16(m[off:])
		rdlen := int(binary.BigEndian.Uint16(m[off+8:]))
		off += 10
		if off+rdlen > len(m) {
			return
		}
		if i >= rrs && rrtype == dns.TypeOPT {
			rewriteOptionCodes(m[off : off+rdlen])
		}
		off += rdlen
	}
}

// rewriteOptionCodes renames ECS options inside one OPT record's RDATA.
func rewriteOptionCodes(rdata []byte) {
	for off := 0; off+4 <= len(rdata); {
		code := binary.BigEndian.Uint16(rdata[off:])
		optlen := int(binary.BigEndian.Uint16(rdata[off+2:]))
		switch code {
		case dns.EDNS0SUBNET:
			binary.BigEndian.PutUint16(rdata[off:], ecsWireCode)
		case ecsWireCode:
			binary.BigEndian.PutUint16(rdata[off:], escapedLocalCode)
		}
		off += 4 + optlen
	}
}

// skipName returns the offset just past the (possibly compressed) domain name at off, or -1.
func skipName(m []byte, off int) int {
	for hops := 0; hops < 128; hops++ {
		if off >= len(m) {
			return -1
		}
		c := int(m[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				return off + 1
			}
			off += 1 + c
		case 0xc0:
			// A pointer ends the name as far as the following fields are concerned.
			if off+2 > len(m) {
				return -1
			}
			return off + 2
		default:
			return -1
		}
	}
	return -1
}

// ecsReader wraps the server's reader so every message goes through rewriteECSCodes.
//
// miekg/dns asks decorated readers not to mutate what they read. The rewrite is in place on
// purpose: the buffer belongs to this read (UDP buffers go back to the server's pool only after
// parsing), the length never changes, and the server is configured without TSIG, which is the only
// later user of the raw bytes. Copying instead would cost a UDP buffer per query.
type ecsReader struct {
	next dns.Reader
}

// decorateECS is the dns.DecorateReader installed on both servers.
func decorateECS(r dns.Reader) dns.Reader { return ecsReader{next: r} }

// ReadTCP implements dns.Reader.
func (r ecsReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	m, err := r.next.ReadTCP(conn, timeout)
	if err == nil {
		rewriteECSCodes(m)
	}
	return m, err
}

// ReadUDP implements dns.Reader.
func (r ecsReader) ReadUDP(conn *net.UDPConn, timeout time.Duration) ([]byte, *dns.SessionUDP, error) {
	m, s, err := r.next.ReadUDP(conn, timeout)
	if err == nil {
		rewriteECSCodes(m)
	}
	return m, s, err
}

// ReadPacketConn implements dns.PacketConnReader.
func (r ecsReader) ReadPacketConn(conn net.PacketConn, timeout time.Duration) ([]byte, net.Addr, error) {
	pr, ok := r.next.(dns.PacketConnReader)
	if !ok {
		return nil, nil, errors.New("dnsgeo: wrapped reader cannot read a net.PacketConn")
	}
	m, a, err := pr.ReadPacketConn(conn, timeout)
	if err == nil {
		rewriteECSCodes(m)
	}
	return m, a, err
}
