package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/drillworks/drill/topology"
)

// TestNodeProcessesAreThisUsers: a process of another user whose command line names this run's
// plan is not taken for a node (drill would signal it at Down), while this user's is.
func TestNodeProcessesAreThisUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("SKIPPED: starting a process as another user needs root; the uid check is NOT tested here")
	}
	r, err := New(Config{RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func(node string, cred *syscall.Credential) *exec.Cmd {
		t.Helper()
		// sh gets the agent's arguments as $0.. and ignores them.
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "sleep 30", "drill", "agent", "--plan", r.planPath(), "--node", node)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	mine := start("us-east-web-1", nil)
	theirs := start("us-east-web-2", &syscall.Credential{Uid: 65534, Gid: 65534})
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := r.agentPIDs()
		if pids["us-east-web-1"] == mine.Process.Pid {
			if pid, ok := pids["us-east-web-2"]; ok {
				t.Fatalf("another user's process %d (pid %d) taken for a node", pid, theirs.Process.Pid)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("this user's node process %d not found: %v", mine.Process.Pid, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunFilesArePrivate: the plan (the run's secret) and the runtime state are readable by their
// owner only, in a private run directory (a running cluster's data and logs: TestFilesArePrivate).
func TestRunFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r, err := New(Config{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	topo := topology.Default()
	p, err := topology.NewPlan(topo, topology.PlanOptions{Runtime: Name, RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.plan.Save(p); err != nil {
		t.Fatal(err)
	}
	if err := r.saveState(&state{Plan: r.planPath(), Nodes: map[string]int{}}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{r.planPath(): 0o600, r.statePath(): 0o600, dir: 0o700} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
}

// TestWaitGoneWaitsForTheNodesGroup: a node is gone only when every process of its group is (a
// cache node's redis-server holds the node's cache port until it has died, and the node's next
// start binds it). The leader here exits at once and leaves a child in its group.
func TestWaitGoneWaitsForTheNodesGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The child reads from a pipe nobody writes to, so it lives until the test closes the pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	cmd := exec.Command("/bin/sh", "-c", "(read x <&3) & exit 0")
	cmd.ExtraFiles = []*os.File{pr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leader := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-leader, syscall.SIGKILL) })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("leader: %v", err)
	}
	if members := groupMembers([]int{leader})[leader]; len(members) != 1 {
		t.Fatalf("the group should hold the child alone after the leader exited, has %v", members)
	}
	if err := waitGone(ctx, []int{leader}, 300*time.Millisecond); err == nil {
		t.Fatal("waitGone returned while a process of the group was alive")
	}
	pw.Close() // the child's read ends: it exits
	if err := waitGone(ctx, []int{leader}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if members := groupMembers([]int{leader})[leader]; len(members) != 0 {
		t.Fatalf("waitGone returned with %v alive in the group", members)
	}
}
