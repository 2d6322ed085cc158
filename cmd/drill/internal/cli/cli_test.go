package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}, args)
	return code, out.String(), errOut.String()
}

func TestBadTopologyFilesExitTwoAndStartNothing(t *testing.T) {
	files, err := filepath.Glob("../../../../topology/testdata/bad/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("bad topology fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			state := t.TempDir()
			code, _, stderr := run(t, "up", "--topology", f, "--state-dir", state)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, stderr)
			}
			// file:line:col: field: message
			if !strings.Contains(stderr, f+":") || strings.Count(strings.SplitN(stderr, "\n", 2)[0], ":") < 4 {
				t.Fatalf("error does not name file, line, column and field: %q", stderr)
			}
			entries, _ := os.ReadDir(state)
			if len(entries) != 0 {
				t.Fatalf("state dir not empty after a rejected topology: %v", entries)
			}
		})
	}
}

// TestOversizedInputFilesExitTwo: a topology, drill or game-day plan file over the input limit
// (a wrong path: a log, a generated dump) is refused with exit 2 naming the file, before it is
// parsed and before anything starts.
func TestOversizedInputFilesExitTwo(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "huge.yaml")
	// Valid YAML all the way (a comment), so only the size can be what is refused.
	if err := os.WriteFile(big, append([]byte("# "), bytes.Repeat([]byte("x"), 1<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"up", "--topology", big},
		{"run", big, "--runtime", "local"},
		{"gameday", "run", big},
	} {
		state := t.TempDir()
		code, _, stderr := run(t, append(args, "--state-dir", state)...)
		if code != ExitUsage || !strings.Contains(stderr, big+": ") || !strings.Contains(stderr, "over the 1048576-byte limit") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming the file and the limit", args, code, stderr, ExitUsage)
		}
		if entries, _ := os.ReadDir(state); len(entries) != 0 {
			t.Errorf("%v left state behind: %v", args, entries)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	state := t.TempDir()
	cases := [][]string{
		{"up", "--set", "fencing=maybe", "--state-dir", state},
		{"up", "--set", "nonsense", "--state-dir", state},
		{"up", "--runtime", "mars", "--state-dir", state},
		{"frobnicate"},
		{"up", "--no-such-flag"},
		{"kv", "put", "only-key"},
		{"explore", "--kinds", "meteor", "--state-dir", state},
		{"explore", "--max-faults", "0", "--state-dir", state},
		{"explore", "--set", "fencing=maybe", "--state-dir", state},
	}
	for _, args := range cases {
		code, _, stderr := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, stderr)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Fatalf("usage errors left state behind: %v", entries)
	}
}

func TestStatusWithoutClusterIsHarnessError(t *testing.T) {
	code, _, stderr := run(t, "status", "--state-dir", t.TempDir())
	if code != ExitHarness || !strings.Contains(stderr, "no cluster is up") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "drill ") {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

// TestDNSServeRefusesAPublicAddress: `drill dns serve` binds a reachable address only when told
// to with --public (it would answer anyone, _status included).
func TestDNSServeRefusesAPublicAddress(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:5353", "[::]:5353", "192.0.2.1:5353"} {
		code, _, stderr := run(t, "dns", "serve", "--listen", listen)
		if code != ExitUsage || !strings.Contains(stderr, "--public") {
			t.Errorf("--listen %s: exit %d, stderr %q; want exit %d asking for --public", listen, code, stderr, ExitUsage)
		}
	}
}

// TestCheckRejudgesAHistory: `drill check` judges a saved history with the budgets given: an
// acknowledged write missing from the final read fails a zero budget (exit 1) and passes a budget
// of one (exit 0); a bad budget or a missing file is a usage error.
func TestCheckRejudgesAHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	lines := []string{
		`{"index":0,"type":"invoke","f":"write","process":1,"client_region":"us-east","key":"k1","value":"v1","time":"2026-12-04T10:00:00Z"}`,
		`{"index":1,"type":"ok","f":"write","process":1,"client_region":"us-east","key":"k1","value":"v1","db_node":"us-east-db-1","epoch":1,"lsn":1,"time":"2026-12-04T10:00:00.1Z"}`,
		`{"index":2,"type":"final","key":"k1","time":"2026-12-04T10:00:05Z"}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := run(t, "check", path, "--budget", "lost_acked_writes=0"); code != ExitFailed || !strings.Contains(out, "1 of 1 acknowledged writes lost") {
		t.Fatalf("zero budget: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := run(t, "check", path, "--budget", "lost_acked_writes=1"); code != 0 {
		t.Fatalf("budget of one: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, _ := run(t, "check", path, "--budget", "nonsense=1"); code != ExitUsage {
		t.Fatalf("bad budget: exit %d", code)
	}
	if code, _, _ := run(t, "check", path+".missing"); code != ExitUsage {
		t.Fatalf("missing history: exit %d", code)
	}
}
