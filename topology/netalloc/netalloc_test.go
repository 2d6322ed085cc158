package netalloc

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRangesAreDistinctAndReleased(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	t.Run("hold", func(t *testing.T) {
		for range 20 {
			for _, p := range []netip.Prefix{Loopback(t), Private(t)} {
				if seen[p] || p.Bits() != 16 {
					t.Fatalf("%s handed out twice, or not a /16", p)
				}
				seen[p] = true
				if fd, err := hold(p); err != nil || fd >= 0 {
					t.Fatalf("%s could be taken again while held (%v)", p, err)
				}
			}
		}
	})
	for p := range seen {
		fd, err := hold(p)
		if err != nil || fd < 0 {
			t.Fatalf("%s not released when its test ended (%v)", p, err)
		}
		unix.Close(fd)
	}
}

// TestHeldAcrossProcesses: a range another process holds is never handed out here, even when
// every other range is taken.
func TestHeldAcrossProcesses(t *testing.T) {
	if os.Getenv("NETALLOC_HOLDER") == "1" {
		fmt.Println(Loopback(t))
		_, _ = io.ReadAll(os.Stdin) // hold until the parent closes stdin
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHeldAcrossProcesses$")
	cmd.Env = append(os.Environ(), "NETALLOC_HOLDER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("holder: %v", err)
	}
	held := netip.MustParsePrefix(strings.TrimSpace(line))
	if fd, err := hold(held); err != nil || fd >= 0 {
		t.Fatalf("%s is held by process %d but could be taken here (%v)", held, cmd.Process.Pid, err)
	}
}

// TestClusterSlotsBound: with one slot, a second taker waits until the first holder's test ends.
func TestClusterSlotsBound(t *testing.T) {
	t.Setenv("DRILL_TEST_CLUSTERS", "1")
	t.Setenv("DRILL_NETALLOC_DIR", t.TempDir()) // not the slots real cluster tests hold now
	secondWaitsForFirst(t, "group", ClusterSlot, ClusterSlot)
}

// TestDockerEngineHoldsEverySlot: DockerEngine waits while another test holds a Docker slot,
// and, while it holds them all, a test that wants one waits until it ends.
func TestDockerEngineHoldsEverySlot(t *testing.T) {
	t.Setenv("DRILL_TEST_DOCKER_CLUSTERS", "2")
	t.Setenv("DRILL_NETALLOC_DIR", t.TempDir())
	secondWaitsForFirst(t, "engine waits for a slot", DockerSlot, DockerEngine)
	secondWaitsForFirst(t, "a slot waits for the engine", DockerEngine, DockerSlot)
}

// secondWaitsForFirst runs two tests at once (the default -parallel of a 2-core machine): first
// takes its slots and holds them a while; second takes its own and must get them only after
// first has ended.
func secondWaitsForFirst(t *testing.T, name string, first, second func(testing.TB)) {
	held, release := make(chan struct{}), make(chan struct{})
	var releasedAt atomic.Int64 // unix nanoseconds; set just before the first holder's test ends
	t.Run(name, func(t *testing.T) {
		t.Run("first", func(t *testing.T) {
			t.Parallel()
			first(t)
			close(held)
			<-release
			releasedAt.Store(time.Now().UnixNano())
		})
		t.Run("second", func(t *testing.T) {
			t.Parallel()
			<-held
			go func() {
				time.Sleep(300 * time.Millisecond) // the first holder's work
				close(release)
			}()
			second(t)
			if at := releasedAt.Load(); at == 0 || time.Now().UnixNano() < at {
				t.Error("took a slot while the first test held it")
			}
		})
	})
}
