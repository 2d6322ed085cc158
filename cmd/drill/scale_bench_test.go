package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drillworks/drill/topology/netalloc"
)

// BenchmarkUpScale brings up 10, 40 and 110 nodes on the local runtime (the default topology; 5
// regions of 8; 10 regions of 11) and reports, for each, the wall time of `drill up` until
// converged, and, once up, the nodes' idle CPU and memory: RSS (which counts the pages of the
// drill binary every node maps, shared among them), private RSS and PSS (each node's fair share
// of the shared pages). Run it alone on the machine:
//
//	go test -run '^$' -bench BenchmarkUpScale -benchtime 1x ./cmd/drill/
func BenchmarkUpScale(b *testing.B) {
	for _, size := range []struct {
		name         string
		regions, web int
	}{
		{"nodes=10", 2, 2},
		{"nodes=42", 5, 6},
		{"nodes=112", 10, 9},
	} {
		b.Run(size.name, func(b *testing.B) {
			netalloc.ClusterSlot(b)
			dir := b.TempDir()
			name := "scale-" + strconv.Itoa(size.regions)
			topo := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(topo, []byte(scaleTopology(name, netalloc.Loopback(b).String(), size.regions, size.web)), 0o644); err != nil {
				b.Fatal(err)
			}
			bin, state := drillBin(b), filepath.Join(dir, "state")
			drill := func(args ...string) ([]byte, error) {
				return exec.Command(bin, append(args, "--topology", topo, "--state-dir", state)...).CombinedOutput()
			}
			b.Cleanup(func() { _, _ = drill("down") })
			var up time.Duration
			var idle nodeUsage
			for range b.N {
				start := time.Now()
				if out, err := drill("up", "--runtime", "local", "--over-capacity", "--timeout", "90s"); err != nil {
					b.Fatalf("drill up: %v\n%s", err, out)
				}
				up += time.Since(start)
				idle = measureNodes(b, state, 5*time.Second)
				if out, err := drill("down"); err != nil {
					b.Fatalf("drill down: %v\n%s", err, out)
				}
			}
			b.ReportMetric(up.Seconds()/float64(b.N), "up-s")
			b.ReportMetric(float64(idle.nodes), "nodes")
			b.ReportMetric(idle.cpuPct, "idle-cpu-%core")
			b.ReportMetric(idle.rssAvgMB, "rss-avg-MB")
			b.ReportMetric(idle.rssMaxMB, "rss-max-MB")
			b.ReportMetric(idle.anonAvgMB, "private-avg-MB")
			b.ReportMetric(idle.pssAvgMB, "pss-avg-MB")
			// One op is a whole cluster's bring-up, reported as up-s; ns/op would repeat it.
			b.ReportMetric(0, "ns/op")
		})
	}
}

// scaleTopology is a topology of regions regions, each with web web nodes, a database and a
// GeoDNS, in the loopback range base.
func scaleTopology(name, base string, regions, web int) string {
	var y strings.Builder
	fmt.Fprintf(&y, "name: %s\nnetwork:\n  loopback_base: %s\nregions:\n", name, base)
	for i := range regions {
		fmt.Fprintf(&y, "  - name: region-%d\n    client_subnets: [198.18.%d.0/24, 127.11.%d.0/24]\n    nodes: {web: %d, db: 1, dns: 1}\n", i+1, i+1, i+1, web)
	}
	y.WriteString("primary_region: region-1\n")
	return y.String()
}

// nodeUsage is what a cluster's node processes use while idle.
type nodeUsage struct {
	nodes                                   int
	cpuPct                                  float64 // of one core, all nodes together
	rssAvgMB, rssMaxMB, anonAvgMB, pssAvgMB float64
}

// measureNodes samples every node process under state for window: CPU from /proc/<pid>/stat,
// memory from status (VmRSS, RssAnon) and smaps_rollup (Pss).
func measureNodes(tb testing.TB, state string, window time.Duration) nodeUsage {
	tb.Helper()
	pids := nodePIDs(state)
	if len(pids) == 0 {
		tb.Fatal("no node process found")
	}
	ticks := func() (sum int64) {
		for _, pid := range pids {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			sum += u + s
		}
		return sum
	}
	t0 := ticks()
	// The measurement window itself, not a wait for readiness (the cluster is up already).
	time.Sleep(window)
	// Ticks are USER_HZ, 100 a second on Linux: the share of one core, in percent.
	cpu := float64(ticks()-t0) / window.Seconds()

	u := nodeUsage{nodes: len(pids), cpuPct: cpu}
	for _, pid := range pids {
		rss := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		u.rssAvgMB += rss
		u.rssMaxMB = max(u.rssMaxMB, rss)
		u.anonAvgMB += procField(fmt.Sprintf("/proc/%d/status", pid), "RssAnon:")
		u.pssAvgMB += procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	}
	n := float64(len(pids))
	u.rssAvgMB, u.anonAvgMB, u.pssAvgMB = u.rssAvgMB/n, u.anonAvgMB/n, u.pssAvgMB/n
	return u
}

// nodePIDs lists the node processes whose command line names a plan under state.
func nodePIDs(state string) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), state+string(os.PathSeparator)) && strings.Contains(string(b), "\x00agent\x00") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, pid)
		}
	}
	return out
}

// procField reads a "Name:   123 kB" line of a /proc file, in MB (0 when absent).
func procField(path, name string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
