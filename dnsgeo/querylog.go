package dnsgeo

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// queryLog writes one JSON object per line per query:
//
//	{"time":"2026-11-27T10:00:00.123Z","client":"127.0.0.1:5353","ecs":"203.0.113.0/24/24",
//	 "qname":"app.drill.test.","qtype":"A","rcode":"NOERROR","region":"us-east",
//	 "reason":"ecs 203.0.113.0/24 → us-east (nearest)","proto":"udp"}
//
// ecs is address/source/scope as dig shows it ("" without the option), region is "" when no
// region answered. Lines are built by hand into a reused buffer: the log is meant to stay on in
// drills, so it must not cost a JSON encoder per query.
type queryLog struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// write logs one query.
func (l *queryLog) write(s *Server, w dns.ResponseWriter, r *dns.Msg, v *view, q *queryInfo) {
	var qname string
	var qtype uint16
	if len(r.Question) > 0 {
		qname, qtype = r.Question[0].Name, r.Question[0].Qtype
	}
	reason := q.note
	if q.group >= 0 {
		reason = s.routeReason(v, q)
	}
	region := ""
	if q.region >= 0 && q.region < len(v.regions) {
		region = v.regions[q.region].name
	}
	proto := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		proto = "tcp"
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	b = append(b, `{"time":"`...)
	b = s.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","client":`...)
	b = appendJSONString(b, addrString(w.RemoteAddr()))
	b = append(b, `,"ecs":"`...)
	if q.hasECS {
		b = appendECS(b, q)
	}
	b = append(b, `","qname":`...)
	b = appendJSONString(b, qname)
	b = append(b, `,"qtype":`...)
	b = appendJSONString(b, dns.Type(qtype).String())
	b = append(b, `,"rcode":`...)
	b = appendJSONString(b, rcodeName(q.rcode))
	b = append(b, `,"region":`...)
	b = appendJSONString(b, region)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, reason)
	b = append(b, `,"proto":"`...)
	b = append(b, proto...)
	b = append(b, "\"}\n"...)
	l.buf = b
	if _, err := l.w.Write(b); err != nil {
		s.logger.Debug("query log write", "err", err)
	}
}

// routeReason explains a routing decision: where the client's address came from, the subnet it
// matched and the group's decision, e.g. "ecs 203.0.113.0/24 → us-east down → eu-west".
func (s *Server) routeReason(v *view, q *queryInfo) string {
	var src string
	switch q.how {
	case howECS:
		src = "ecs "
	case howECSPrivate:
		src = "ecs private (ignored), source "
	case howECSZero:
		src = "ecs source /0 (don't use), source "
	default:
		src = "source "
	}
	if q.subnet >= 0 {
		src += s.subnets[q.subnet].text
	} else if q.how == howECS {
		src += q.ecs.prefix().String() + " (no known subnet)"
	} else {
		src += q.client.String() + " (no known subnet)"
	}
	return src + " → " + v.groups[q.group].reason
}

// appendECS writes address/source/scope.
func appendECS(b []byte, q *queryInfo) []byte {
	if q.ecs.addr.IsValid() {
		b = q.ecs.addr.AppendTo(b)
	} else {
		b = append(b, "0"...)
	}
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(q.ecs.source), 10)
	b = append(b, '/')
	return strconv.AppendUint(b, uint64(q.scope), 10)
}

// rcodeName is the rcode's mnemonic, or its number.
func rcodeName(rc int) string {
	if n, ok := dns.RcodeToString[rc]; ok {
		return n
	}
	return strconv.Itoa(rc)
}

// addrString formats a net.Addr ("" for nil).
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// appendJSONString appends s as a JSON string, escaping what JSON requires and replacing invalid
// UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
