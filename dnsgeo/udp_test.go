package dnsgeo

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hiddenUDPConn hides *net.UDPConn so the server falls back to miekg/dns's UDP server (the
// reference the batched server must match).
type hiddenUDPConn struct{ net.PacketConn }

// startUDPPair starts two servers with the same plan: one on the batched UDP path, one on
// miekg/dns's. Addresses are in benchNet.250.0/24.
func startUDPPair(t *testing.T, drop func(string) bool) (fast, reference *Server) {
	t.Helper()
	for i, hide := range []bool{false, true} {
		ip := fmt.Sprintf(benchNet+".250.%d", 10+i)
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			pc.Close()
			t.Fatal(err)
		}
		cfg := Config{Topology: testTopology(), PacketConn: pc, Listener: ln, Instance: "us-east-dns-1",
			Members: newStaticMembers(allUp.members()...), Clock: newFakeClock().Now}
		if hide {
			cfg.PacketConn = hiddenUDPConn{pc}
		}
		if drop != nil {
			cfg.Drop = func(a netip.Addr) bool { return drop(a.String()) }
		}
		srv, err := New(cfg)
		if err != nil {
			pc.Close()
			ln.Close()
			t.Fatal(err)
		}
		startServer(t, srv)
		if (srv.fastUDP != nil) == hide {
			t.Fatalf("server %d: batched path = %v, want %v", i, srv.fastUDP != nil, !hide)
		}
		if hide {
			reference = srv
		} else {
			fast = srv
		}
	}
	return fast, reference
}

// rawExchange sends packet from src to server and returns the reply, or nil when none came.
// Silence is established without a long wait: the server serves a socket in order (both the
// batched path and miekg/dns's reader, which discards before dispatching), so once two probe
// queries sent afterwards (from probeSrc) are answered, any reply would have been sent.
func rawExchange(t *testing.T, server, src string, packet []byte, expectSilence bool) []byte {
	t.Helper()
	probeSrc := benchNet + ".251.5"
	dial := func(src string) *net.UDPConn {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(server)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	conn := dial(src)
	if _, err := conn.Write(packet); err != nil {
		t.Fatal(err)
	}
	wait := 3 * time.Second
	if expectSilence {
		probe := dial(probeSrc)
		for id := range 2 {
			q := newQuery("app."+zone, dns.TypeA, 0)
			q.Id = uint16(0xbee0 + id)
			wire, _ := q.Pack()
			if _, err := probe.Write(wire); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			_ = probe.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := probe.Read(buf); err != nil {
				t.Fatalf("probe %d unanswered: %v", id, err)
			}
		}
		wait = 100 * time.Millisecond
	}
	buf := make([]byte, 65535)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// TestBatchedUDPMatchesMiekg sends the same raw packets to the batched UDP server and to
// miekg/dns's server and requires byte-identical replies (or the same silence), including the
// rejection paths miekg/dns handles before the handler.
func TestBatchedUDPMatchesMiekg(t *testing.T) {
	fast, ref := startUDPPair(t, func(a string) bool { return a == benchNet+".251.9" })
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withID := func(b []byte) []byte { b[0], b[1] = 0x12, 0x34; return b }
	query := pack(newQuery("app."+zone, dns.TypeA, 0, ecs("203.0.113.0/24")))
	twoQuestions := newQuery("app."+zone, dns.TypeA, 0)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	update := newQuery(zone, dns.TypeSOA, 0)
	update.Opcode = dns.OpcodeUpdate
	response := newQuery("app."+zone, dns.TypeA, 0)
	response.Response = true
	cases := []struct {
		name   string
		src    string
		packet []byte
		silent bool
	}{
		{"app A with ECS", benchNet + ".251.5", withID(query), false},
		{"app A, source routed", benchNet + ".251.5", withID(pack(newQuery("app."+zone, dns.TypeA, 1232))), false},
		{"bad ECS family → FORMERR", benchNet + ".251.5", withID(pack(newQuery("app."+zone, dns.TypeA, 0, rawECS(3, 24, 0, 203, 0, 113)))), false},
		{"status TXT", benchNet + ".251.5", withID(pack(newQuery("_status."+zone, dns.TypeTXT, 0))), false},
		{"NXDOMAIN", benchNet + ".251.5", withID(pack(newQuery("nothing."+zone, dns.TypeA, 0))), false},
		{"two questions → FORMERR, header only", benchNet + ".251.5", withID(pack(twoQuestions)), false},
		{"update → NOTIMP", benchNet + ".251.5", withID(pack(update)), false},
		{"truncated body → FORMERR", benchNet + ".251.5", withID(query[:len(query)-5]), false},
		{"response → silence", benchNet + ".251.5", withID(pack(response)), true},
		{"short packet → silence", benchNet + ".251.5", []byte{1, 2, 3}, true},
		{"dropped source → silence", benchNet + ".251.9", withID(query), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The fast server rewrites the packet in place; give each its own copy.
			got := rawExchange(t, fast.Addr(), tc.src, bytes.Clone(tc.packet), tc.silent)
			want := rawExchange(t, ref.Addr(), tc.src, bytes.Clone(tc.packet), tc.silent)
			if !bytes.Equal(got, want) {
				t.Fatalf("batched reply differs from miekg/dns's:\n got %x\nwant %x", got, want)
			}
			if tc.silent != (got == nil) {
				t.Fatalf("reply %x, want silence: %v", got, tc.silent)
			}
			var m dns.Msg
			if got != nil && (m.Unpack(got) != nil || m.Id != 0x1234) {
				t.Fatalf("reply %x does not unpack or has the wrong id", got)
			}
		})
	}
}

// TestBatchedUDPBurst: bursts of queries from many sockets (up to 80 queued at once, so reads
// return several packets) are answered completely, each reply to its own query.
func TestBatchedUDPBurst(t *testing.T) {
	fast, _ := startUDPPair(t, nil)
	const clients, window, perClient = 8, 10, 50
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			errs <- func() error {
				conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(benchNet + ".251.6")}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(fast.Addr())))
				if err != nil {
					return err
				}
				defer conn.Close()
				seen := map[uint16]bool{}
				buf := make([]byte, 4096)
				for sent := 0; sent < perClient; sent += window {
					for i := sent; i < sent+window; i++ {
						q := newQuery("app."+zone, dns.TypeA, 0, ecs("198.51.100.0/24"))
						q.Id = uint16(c*1000 + i)
						wire, _ := q.Pack()
						if _, err := conn.Write(wire); err != nil {
							return err
						}
					}
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					for len(seen) < sent+window {
						n, err := conn.Read(buf)
						if err != nil {
							return fmt.Errorf("client %d: %d of %d replies: %w", c, len(seen), sent+window, err)
						}
						var r dns.Msg
						if err := r.Unpack(buf[:n]); err != nil {
							return err
						}
						if got := aIPs(r.Answer); len(got) != 2 || got[0] != euWebs[0] || int(r.Id)/1000 != c || seen[r.Id] {
							return fmt.Errorf("client %d: reply %d answered %v (or twice)", c, r.Id, got)
						}
						seen[r.Id] = true
					}
				}
				return nil
			}()
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchedUDPShutdown: Shutdown stops the readers promptly and the address stops answering.
func TestBatchedUDPShutdown(t *testing.T) {
	srv, err := New(Config{Topology: testTopology(), Listen: benchNet + ".250.20:0", Instance: "us-east-dns-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if srv.fastUDP == nil {
		t.Fatal("a specific loopback address should use the batched path")
	}
	exchange(t, addr, benchNet+".251.7", "udp", newQuery("app."+zone, dns.TypeA, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if _, _, err := c.Exchange(newQuery("app."+zone, dns.TypeA, 0), addr); err == nil {
		t.Fatal("answered after Shutdown")
	}
}
