package compose

import (
	"net"
	"strings"
)

func splitHostPort(addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return h, p
}

// SafeName is a fault id with every character but letters, digits, '-' and '_' replaced by '_':
// readable in the names of the objects a fault creates (toxics, nftables tables), which accept
// only those. Callers add a hash of the exact id, since two ids may read alike.
func SafeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
}
