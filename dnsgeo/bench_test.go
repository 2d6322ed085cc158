package dnsgeo

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// benchWriter packs replies into a reused buffer, as cheaply as a real socket write allows.
type benchWriter struct {
	fakeWriter
	buf []byte
}

func (w *benchWriter) WriteMsg(m *dns.Msg) error {
	var err error
	w.buf, err = m.PackBuffer(w.buf[:cap(w.buf)])
	return err
}

// BenchmarkAppQueryECS measures the per-packet work of app.Z A with ECS: the ECS code rewrite,
// unpacking the request, the handler and packing the reply (sockets excluded).
func BenchmarkAppQueryECS(b *testing.B) {
	srv := newTestServer(b, allUp)
	q := newQuery("app."+zone, dns.TypeA, 1232, ecs("198.51.100.0/24"))
	wire, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, len(wire))
	w := &benchWriter{fakeWriter: fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(srcUSEast), Port: 40000}}, buf: make([]byte, 0, 512)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		copy(pkt, wire)
		rewriteECSCodes(pkt)
		req := new(dns.Msg)
		if err := req.Unpack(pkt); err != nil {
			b.Fatal(err)
		}
		srv.ServeDNS(w, req)
	}
	b.StopTimer()
	var r dns.Msg
	if err := r.Unpack(w.buf); err != nil || len(r.Answer) != 2 || replyECS(&r).SourceScope != 24 {
		b.Fatalf("unexpected reply %v (%v)", r, err)
	}
}

// BenchmarkAppQueryECSHandler measures the handler alone (request parsing and reply packing
// excluded); each iteration still needs a fresh request because the handler reuses its OPT.
func BenchmarkAppQueryECSHandler(b *testing.B) {
	srv := newTestServer(b, allUp)
	q := newQuery("app."+zone, dns.TypeA, 1232, ecs("198.51.100.0/24"))
	wire, _ := q.Pack()
	rewriteECSCodes(wire)
	reqs := make([]*dns.Msg, 1024)
	w := &nopWriter{remote: &net.UDPAddr{IP: net.ParseIP(srcUSEast), Port: 40000}}
	b.ReportAllocs()
	b.ResetTimer()
	i := len(reqs)
	for b.Loop() {
		if i == len(reqs) {
			b.StopTimer()
			for j := range reqs {
				reqs[j] = new(dns.Msg)
				_ = reqs[j].Unpack(wire)
			}
			i = 0
			b.StartTimer()
		}
		srv.ServeDNS(w, reqs[i])
		i++
	}
}

// nopWriter discards replies.
type nopWriter struct {
	fakeWriter
	remote net.Addr
}

func (w *nopWriter) RemoteAddr() net.Addr      { return w.remote }
func (w *nopWriter) WriteMsg(m *dns.Msg) error { return nil }

// BenchmarkAppQueryECSBatched measures one packet through the batched UDP reader's per-packet
// work (sockets excluded), with the fast path (fastpath.go) and without it (slow: ECS rewrite,
// unpack, handler, pack).
func BenchmarkAppQueryECSBatched(b *testing.B) {
	for _, slowOnly := range []bool{false, true} {
		name := "fast"
		if slowOnly {
			name = "slow"
		}
		b.Run(name, func(b *testing.B) {
			srv := newTestServer(b, allUp)
			wire, err := newQuery("app."+zone, dns.TypeA, 1232, ecs("198.51.100.0/24")).Pack()
			if err != nil {
				b.Fatal(err)
			}
			u := &batchUDP{s: srv, slowOnly: slowOnly}
			w := newBatchWriter(&net.UDPAddr{IP: net.IPv4(127, 92, 0, 1), Port: 53}, 1)
			from := netip.MustParseAddrPort(srcUSEast + ":40000")
			pkt := make([]byte, len(wire))
			b.ReportAllocs()
			for b.Loop() {
				w.replies = w.replies[:0]
				w.answering(0, from)
				copy(pkt, wire)
				u.serveOne(w, pkt)
			}
			var r dns.Msg
			if err := r.Unpack(w.replies[0].buf); err != nil || len(r.Answer) != 2 || replyECS(&r).SourceScope != 24 {
				b.Fatalf("unexpected reply %v (%v)", &r, err)
			}
		})
	}
}
