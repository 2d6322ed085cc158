package nft

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// TestOneWayDrops: two network namespaces joined by a veth pair; a table with DropOut towards B
// in A drops what A sends to B and lets what B sends to A through, and DropIn from B drops the
// other direction only. Packets are real UDP datagrams through the kernel.
func TestOneWayDrops(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): needs root for network namespaces and nftables")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP (loud): needs the ip command (iproute2)")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	nsA, nsB := "drilltest-a-"+hex.EncodeToString(suffix), "drilltest-b-"+hex.EncodeToString(suffix)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", nsA)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nsA).Run() })
	run("netns", "add", nsB)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nsB).Run() })
	vethA, vethB := "dta"+hex.EncodeToString(suffix), "dtb"+hex.EncodeToString(suffix)
	run("link", "add", vethA, "netns", nsA, "type", "veth", "peer", "name", vethB, "netns", nsB)
	run("-n", nsA, "addr", "add", "10.254.0.1/24", "dev", vethA)
	run("-n", nsB, "addr", "add", "10.254.0.2/24", "dev", vethB)
	run("-n", nsA, "link", "set", vethA, "up")
	run("-n", nsB, "link", "set", vethB, "up")
	a, b := netip.MustParseAddr("10.254.0.1"), netip.MustParseAddr("10.254.0.2")

	fdA := nsFD(t, nsA)
	table := TablePrefix + "oneway"
	// delivered sends a datagram from src's namespace to dst's and reports whether it arrived.
	delivered := func(fromNS, toNS string, from, to netip.Addr) bool {
		t.Helper()
		got := make(chan bool, 1)
		inNS(t, toNS, func() {
			conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, 9999)))
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				buf := make([]byte, 16)
				_, _, err := conn.ReadFromUDP(buf)
				got <- err == nil
			}()
		})
		inNS(t, fromNS, func() {
			conn, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, 9999)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for range 3 {
				_, _ = conn.Write([]byte("x"))
			}
		})
		return <-got
	}
	// A delivery that must happen is retried until a deadline: on a loaded machine the new link
	// (and its ARP) can take longer than one 500 ms read. A drop is checked once: a rule that
	// drops never delivers.
	eventually := func(ok func() bool) bool {
		for deadline := time.Now().Add(10 * time.Second); ; {
			if ok() {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
		}
	}
	if !eventually(func() bool { return delivered(nsA, nsB, a, b) && delivered(nsB, nsA, b, a) }) {
		t.Fatal("the veth pair does not carry UDP both ways before any rule")
	}
	if err := Apply(Spec{Table: table, DropOut: []netip.Prefix{netip.PrefixFrom(b, 32)}}, nftables.WithNetNSFd(fdA)); err != nil {
		t.Fatal(err)
	}
	if delivered(nsA, nsB, a, b) {
		t.Error("DropOut: A's packet to B arrived")
	}
	if !eventually(func() bool { return delivered(nsB, nsA, b, a) }) {
		t.Error("DropOut: B's packet to A was dropped too")
	}
	if err := Apply(Spec{Table: table, DropIn: []netip.Prefix{netip.PrefixFrom(b, 32)}}, nftables.WithNetNSFd(fdA)); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return delivered(nsA, nsB, a, b) }) {
		t.Error("DropIn: A's packet to B was dropped")
	}
	if delivered(nsB, nsA, b, a) {
		t.Error("DropIn: B's packet to A arrived")
	}
	if err := Delete(table, nftables.WithNetNSFd(fdA)); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return delivered(nsA, nsB, a, b) && delivered(nsB, nsA, b, a) }) {
		t.Error("not healed by deleting the table")
	}
}

// nsFD opens a named network namespace.
func nsFD(t *testing.T, name string) int {
	t.Helper()
	fd, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// inNS runs fn on a thread moved into the named namespace; sockets fn opens stay in it. The
// thread is locked and never unlocked, so the runtime retires it afterwards.
func inNS(t *testing.T, name string, fn func()) {
	t.Helper()
	fd := nsFD(t, name)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
