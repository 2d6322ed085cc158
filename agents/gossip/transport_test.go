package gossip

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// transportPair starts two fault transports on ipA and ipB (free ports).
func transportPair(t *testing.T, ipA, ipB string) (a, b *faultTransport) {
	t.Helper()
	log := testLogger(nil)
	a, err := newFaultTransport(ipA, 0, &Faults{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	b, err = newFaultTransport(ipB, 0, &Faults{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown() })
	return a, b
}

func transportAddr(tr *faultTransport) string {
	ip, port, _ := tr.FinalAdvertiseAddr("", 0)
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// receive returns the next packet within timeout, or nil.
func receive(tr *faultTransport, timeout time.Duration) *memberlist.Packet {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-timer.C:
		return nil
	}
}

func TestTransportPacketDropBothDirections(t *testing.T) {
	a, b := transportPair(t, testNet+".20.1", testNet+".20.2")
	bAddr := transportAddr(b)

	if _, err := a.WriteTo([]byte("hello"), bAddr); err != nil {
		t.Fatal(err)
	}
	if p := receive(b, 2*time.Second); p == nil || string(p.Buf) != "hello" {
		t.Fatalf("baseline packet not received: %+v", p)
	}

	// Sender-side rule: the write "succeeds" but nothing arrives.
	a.faults.Set(Rules{Drop: []netip.Prefix{netip.MustParsePrefix(testNet + ".20.2/32")}})
	if _, err := a.WriteTo([]byte("dropped-out"), bAddr); err != nil {
		t.Fatalf("black-holed write returned %v, want silent success", err)
	}
	if p := receive(b, 300*time.Millisecond); p != nil {
		t.Fatalf("packet crossed an outgoing drop rule: %q", p.Buf)
	}

	// Receiver-side rule only: the receiver discards it.
	a.faults.Clear()
	b.faults.Set(Rules{Drop: []netip.Prefix{netip.MustParsePrefix(testNet + ".20.0/24")}})
	if _, err := a.WriteTo([]byte("dropped-in"), bAddr); err != nil {
		t.Fatal(err)
	}
	if p := receive(b, 300*time.Millisecond); p != nil {
		t.Fatalf("packet crossed an incoming drop rule: %q", p.Buf)
	}

	b.faults.Clear()
	if _, err := a.WriteTo([]byte("healed"), bAddr); err != nil {
		t.Fatal(err)
	}
	if p := receive(b, 2*time.Second); p == nil || string(p.Buf) != "healed" {
		t.Fatalf("packet after Clear not received: %+v", p)
	}
}

// TestTransportPacketDropOneWay: DropOut on a drops a's packets to b but not b's to a; DropIn on
// a drops b's packets to a but not a's to b.
func TestTransportPacketDropOneWay(t *testing.T) {
	a, b := transportPair(t, testNet+".20.9", testNet+".20.10")
	aAddr, bAddr := transportAddr(a), transportAddr(b)
	toB := netip.MustParsePrefix(testNet + ".20.10/32")
	arrives := func(from, to *faultTransport, toAddr, msg string) bool {
		t.Helper()
		if _, err := from.WriteTo([]byte(msg), toAddr); err != nil {
			t.Fatalf("write %s: %v", msg, err)
		}
		p := receive(to, 500*time.Millisecond)
		return p != nil && string(p.Buf) == msg
	}
	a.faults.Set(Rules{DropOut: []netip.Prefix{toB}})
	if arrives(a, b, bAddr, "a-to-b") {
		t.Error("DropOut: a's packet reached b")
	}
	if !arrives(b, a, aAddr, "b-to-a") {
		t.Error("DropOut: b's packet to a was dropped")
	}
	if !a.faults.Blocks(toB.Addr()) {
		t.Error("DropOut does not cut streams with b")
	}
	a.faults.Set(Rules{DropIn: []netip.Prefix{toB}})
	if !arrives(a, b, bAddr, "a-to-b again") {
		t.Error("DropIn: a's packet to b was dropped")
	}
	if arrives(b, a, aAddr, "b-to-a again") {
		t.Error("DropIn: b's packet reached a")
	}
}

func TestTransportPacketDelay(t *testing.T) {
	a, b := transportPair(t, testNet+".20.3", testNet+".20.4")
	a.faults.Set(Rules{Delays: []Delay{{Prefix: netip.MustParsePrefix(testNet + ".20.4/32"), Latency: 250 * time.Millisecond}}})
	sent := time.Now()
	if _, err := a.WriteTo([]byte("late"), transportAddr(b)); err != nil {
		t.Fatal(err)
	}
	p := receive(b, 3*time.Second)
	if p == nil {
		t.Fatal("delayed packet never arrived")
	}
	if got := p.Timestamp.Sub(sent); got < 250*time.Millisecond || got > 1500*time.Millisecond {
		t.Fatalf("delayed packet took %v, want ≈250ms", got)
	}
	t.Logf("packet with 250ms injected delay arrived after %v", p.Timestamp.Sub(sent))
}

func TestTransportStreamFaults(t *testing.T) {
	a, b := transportPair(t, testNet+".20.5", testNet+".20.6")
	bAddr := transportAddr(b)

	// Echo whatever b accepts, until the test ends.
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			var c net.Conn
			select {
			case c = <-b.StreamCh():
			case <-done:
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				n, err := c.Read(buf)
				if err == nil {
					_, _ = c.Write(buf[:n])
				}
			}()
		}
	}()
	roundTrip := func() (time.Duration, error) {
		start := time.Now()
		c, err := a.DialTimeout(bAddr, 2*time.Second)
		if err != nil {
			return time.Since(start), err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return time.Since(start), err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return time.Since(start), err
		}
		if string(buf) != "ping" {
			return time.Since(start), errors.New("bad echo " + string(buf))
		}
		return time.Since(start), nil
	}
	if _, err := roundTrip(); err != nil {
		t.Fatalf("baseline stream: %v", err)
	}

	// Dialer-side drop: the dial waits out its timeout, then fails with a timeout error.
	a.faults.Set(Rules{Drop: []netip.Prefix{netip.MustParsePrefix(testNet + ".20.6/32")}})
	start := time.Now()
	_, err := a.DialTimeout(bAddr, 400*time.Millisecond)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("black-holed dial: err = %v, want a timeout", err)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("black-holed dial failed after %v, before its 400ms timeout", el)
	}

	// Acceptor-side drop only: the stream is closed, no echo comes back.
	a.faults.Clear()
	b.faults.Set(Rules{Drop: []netip.Prefix{netip.MustParsePrefix(testNet + ".20.5/32")}})
	if _, err := roundTrip(); err == nil {
		t.Fatal("stream crossed an acceptor-side drop rule")
	}

	// Delay on both sides: dial + request + echo each cost ~150 ms.
	b.faults.Set(Rules{Delays: []Delay{{Prefix: netip.MustParsePrefix(testNet + ".20.5/32"), Latency: 150 * time.Millisecond}}})
	a.faults.Set(Rules{Delays: []Delay{{Prefix: netip.MustParsePrefix(testNet + ".20.6/32"), Latency: 150 * time.Millisecond}}})
	rtt, err := roundTrip()
	if err != nil {
		t.Fatalf("delayed stream: %v", err)
	}
	if rtt < 450*time.Millisecond || rtt > 2*time.Second {
		t.Fatalf("delayed stream round trip %v, want ≈450ms (dial 150 + write 150 + echo 150)", rtt)
	}
	t.Logf("stream dial+echo with 150ms one-way delay each side: %v", rtt)

	b.faults.Clear()
	a.faults.Clear()
	if _, err := roundTrip(); err != nil {
		t.Fatalf("stream after Clear: %v", err)
	}
}

// TestTransportPacketLoss: a loss rule on one side drops about its share of the packets in both
// directions (sent and received), and leaves streams alone.
func TestTransportPacketLoss(t *testing.T) {
	a, b := transportPair(t, testNet+".20.7", testNet+".20.8")
	aAddr, bAddr := transportAddr(a), transportAddr(b)
	const n = 200
	// received counts what to gets of n packets from from, draining while they are sent so that
	// no socket buffer overflows (that would be loss of our own making).
	received := func(from, to *faultTransport, toAddr string) int {
		got := make(chan int)
		go func() {
			count := 0
			for receive(to, time.Second) != nil {
				count++
			}
			got <- count
		}()
		for i := range n {
			if _, err := from.WriteTo([]byte("p"+strconv.Itoa(i)), toAddr); err != nil {
				t.Errorf("lossy write returned %v, want silent success", err)
			}
		}
		return <-got
	}
	if got := received(a, b, bAddr); got != n {
		t.Fatalf("baseline: %d of %d packets arrived", got, n)
	}
	a.faults.Set(Rules{Loss: []Loss{{Prefix: netip.MustParsePrefix(testNet + ".20.8/32"), Percent: 50}}})
	// 50 % of 200: mean 100, standard deviation 7; 50..150 is far outside chance.
	out, in := received(a, b, bAddr), received(b, a, aAddr)
	t.Logf("50%% loss on a: a→b %d of %d arrived, b→a %d of %d", out, n, in, n)
	if out < 50 || out > 150 {
		t.Fatalf("sent through a 50%% loss rule: %d of %d arrived", out, n)
	}
	if in < 50 || in > 150 {
		t.Fatalf("received through a 50%% loss rule: %d of %d arrived", in, n)
	}
	// Streams are not subject to loss (TCP would retransmit): a dial and an echo-less write work.
	a.faults.Set(Rules{Loss: []Loss{{Prefix: netip.MustParsePrefix(testNet + ".20.8/32"), Percent: 100}}})
	c, err := a.DialTimeout(bAddr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial through a 100%% packet loss rule: %v", err)
	}
	c.Close()
	select {
	case sc := <-b.StreamCh():
		sc.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("stream through a packet loss rule never arrived")
	}
	a.faults.Clear()
	if got := received(a, b, bAddr); got != n {
		t.Fatalf("after Clear: %d of %d packets arrived", got, n)
	}
}
