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

// DefaultDockerSlots is how many of those clusters may be Docker clusters at once: a Docker 20.10
// engine on two cores serves two drills' container starts, fault rules and teardowns in time, while
// three at once made its network removals time out and its fault rules land a second late.
const DefaultDockerSlots = 2

// ClusterSlot waits until fewer than DRILL_TEST_CLUSTERS (default DefaultClusterSlots) clusters
// run on this machine, across every test process, and holds a slot until t ends. Every test that
// brings up a cluster of processes or containers takes one first.
func ClusterSlot(t testing.TB) {
	t.Helper()
	slot(t, "cluster", "DRILL_TEST_CLUSTERS", DefaultClusterSlots)
}

// DockerSlot waits until fewer than DRILL_TEST_DOCKER_CLUSTERS (default DefaultDockerSlots) Docker
// clusters run on this machine and holds a slot until t ends. A test bringing up a Docker cluster
// takes it before its ClusterSlot (always in that order, so that no two tests wait on each other).
func DockerSlot(t testing.TB) {
	t.Helper()
	slot(t, "docker", "DRILL_TEST_DOCKER_CLUSTERS", DefaultDockerSlots)
}

// DockerEngine is DockerSlot for a big Docker cluster (the queue topology's 16 containers): it
// waits until no other Docker cluster runs and holds every Docker slot until t ends.
func DockerEngine(t testing.TB) {
	t.Helper()
	slots(t, "docker", "DRILL_TEST_DOCKER_CLUSTERS", DefaultDockerSlots, true)
}

// DefaultBigSlots is how many clusters of a big topology (the queue topology's 18 processes
// against the default's 9) the tests of one machine run at once: three at once on two cores
// slowed their workers' draining fivefold, past the drills' budgets.
const DefaultBigSlots = 1

// BigSlot waits until fewer than DRILL_TEST_BIG_CLUSTERS (default DefaultBigSlots) clusters of a
// big topology run on this machine and holds a slot until t ends; taken before the cluster slot.
func BigSlot(t testing.TB) {
	t.Helper()
	slot(t, "big", "DRILL_TEST_BIG_CLUSTERS", DefaultBigSlots)
}

// slot holds one of n machine-wide slots of a kind (n from env, else def) until t ends.
func slot(t testing.TB, kind, env string, def int) {
	t.Helper()
	slots(t, kind, env, def, false)
}

// slots holds one of n machine-wide slots of a kind (n from env, else def), or all n of them,
// until t ends. A test that wants all first takes the kind's single "all" lock, then the slots
// one by one as they free up, keeping each: with one such test at a time, and every other test
// holding at most one slot and never waiting on the "all" lock, no two tests wait on each other,
// and the slots it already has are not taken back by tests that want one.
func slots(t testing.TB, kind, env string, def int, all bool) {
	t.Helper()
	n := def
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		n = v
	}
	start := time.Now()
	var held []int
	t.Cleanup(func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	})
	hold := func(name string) bool {
		fd, err := holdFile(name)
		if err != nil {
			t.Fatalf("netalloc: %v", err)
		}
		if fd >= 0 {
			held = append(held, fd)
		}
		return fd >= 0
	}
	want := 1
	if all {
		for !hold(kind + "-all.lock") {
			time.Sleep(200 * time.Millisecond)
		}
		want = n + 1 // the slots and the "all" lock
	}
	have := map[int]bool{}
	for len(held) < want {
		for i := 0; i < n && len(held) < want; i++ {
			if !have[i] && hold(fmt.Sprintf("%s-slot-%d.lock", kind, i)) {
				have[i] = true
			}
		}
		if len(held) < want {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %s for %d of %d %s slots", waited.Round(time.Second), len(have), n, kind)
	}
}
