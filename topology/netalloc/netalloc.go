// Package netalloc hands address ranges (and cluster slots) to tests that run clusters, so that tests in any package
// and any process (go test runs packages in parallel) never share one: each range is held through
// an flock on a file of its own in a per-user directory for as long as the test runs, and a
// holder that crashes releases it with its process.
package netalloc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The ranges handed out: 127.<first..last>.0.0/16 on loopback, 10.<first..last>.0.0/16 for
// container networks. Below first are the embedded default topology's 127.77 and 10.77 and the
// default client subnets (127.10.x); 150 ranges of each kind are far more than one machine runs.
const (
	first = 100
	last  = 249
)

// Loopback returns a /16 inside 127.0.0.0/8 that no other test holds, for a topology's
// loopback_base; it is released when t ends.
func Loopback(t testing.TB) netip.Prefix { return take(t, 127) }

// Private returns a /16 inside 10.0.0.0/8 that no other test holds, for a topology's
// docker_base; it is released when t ends.
func Private(t testing.TB) netip.Prefix { return take(t, 10) }

func take(t testing.TB, firstOctet byte) netip.Prefix {
	t.Helper()
	n := last - first + 1
	start := rand.IntN(n)
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{firstOctet, byte(first + (start+i)%n), 0, 0}), 16)
		fd, err := hold(p)
		if err != nil {
			t.Fatalf("netalloc: %v", err)
		}
		if fd < 0 {
			continue
		}
		t.Cleanup(func() { unix.Close(fd) })
		return p
	}
	t.Fatalf("netalloc: all %d ranges of %d.0.0.0/8 are held by other tests", n, firstOctet)
	return netip.Prefix{}
}

// hold takes p's lock: its descriptor, or -1 when another holder has it.
func hold(p netip.Prefix) (int, error) {
	b := p.Addr().As4()
	return holdFile(fmt.Sprintf("%d.%d.lock", b[0], b[1]))
}

// holdFile takes the lock file name in the per-user lock directory: its descriptor, or -1 when
// another holder has it.
func holdFile(name string) (int, error) {
	dir := os.Getenv("DRILL_NETALLOC_DIR") // a test of this package keeps its locks apart
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("drill-netalloc-%d", os.Getuid()))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return -1, err
	}
	fd, err := unix.Open(filepath.Join(dir, name), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

// LoopbackForProcess is Loopback held for the life of the process, for a test package that
// lays its tests out inside one range (in TestMain, or a package-level helper).
func LoopbackForProcess() (netip.Prefix, error) {
	n := last - first + 1
	start := rand.IntN(n)
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(first + (start+i)%n), 0, 0}), 16)
		fd, err := hold(p)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("netalloc: %w", err)
		}
		if fd >= 0 {
			return p, nil // the descriptor stays open until the process exits
		}
	}
	return netip.Prefix{}, fmt.Errorf("netalloc: all %d loopback ranges are held by other tests", n)
}

// LoopbackNet16ForProcess is LoopbackForProcess as its first two octets ("127.N"), for test
// packages that write their addresses as testNet+".1.2"; it panics when no range is free (at
// package initialisation there is no test to fail).
func LoopbackNet16ForProcess() string {
	p, err := LoopbackForProcess()
	if err != nil {
		panic(err)
	}
	b := p.Addr().As4()
	return fmt.Sprintf("%d.%d", b[0], b[1])
}

// DefaultClusterSlots is how many clusters the tests of one machine run at once unless
// DRILL_TEST_CLUSTERS says otherwise: drills spend most of their time in scripted waits, so a few
// overlap well, while more would starve two cores and their timing budgets.
const DefaultClusterSlots = 3

// ClusterSlot waits until fewer than DRILL_TEST_CLUSTERS (default DefaultClusterSlots) clusters
// run on this machine, across every test process, and holds a slot until t ends. Every test that
// brings up a cluster of processes or containers takes one first.
func ClusterSlot(t testing.TB) {
	t.Helper()
	n := DefaultClusterSlots
	if v, err := strconv.Atoi(os.Getenv("DRILL_TEST_CLUSTERS")); err == nil && v > 0 {
		n = v
	}
	start := time.Now()
	for {
		for i := range n {
			fd, err := holdFile(fmt.Sprintf("cluster-slot-%d.lock", i))
			if err != nil {
				t.Fatalf("netalloc: %v", err)
			}
			if fd >= 0 {
				t.Cleanup(func() { unix.Close(fd) })
				if waited := time.Since(start); waited > time.Second {
					t.Logf("waited %s for a cluster slot (%d at once)", waited.Round(time.Second), n)
				}
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
