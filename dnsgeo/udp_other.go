//go:build !linux

package dnsgeo

import (
	"errors"
	"net"
)

// openUDPPort: batched UDP reads are implemented for Linux only (udp_linux.go); elsewhere the
// server uses miekg/dns's UDP server.
func openUDPPort(*net.UDPConn) (udpPort, error) {
	return nil, errors.New("dnsgeo: batched UDP needs Linux (recvmmsg)")
}
