package docker

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An ssh:// engine is reached through `ssh ... -- host docker system dial-stdio`: here a stand-in
// ssh (DRILL_SSH) records its arguments and runs the docker CLI's dial-stdio against this
// machine's engine, so every API call of the client really crosses a command's stdio.
func TestSSHEngineThroughDialStdio(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Docker engine")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("SKIPPED: no docker CLI (its dial-stdio carries the connection): ssh:// engines were NOT tested")
	}
	if err := Available(context.Background(), 3*time.Second); err != nil {
		t.Skipf("SKIPPED: no Docker engine answers (%v): ssh:// engines were NOT tested", err)
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	fake := filepath.Join(dir, "ssh")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + "\nunset DOCKER_HOST\nexec docker system dial-stdio\n"
	if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DRILL_SSH", fake)
	eng, err := NewEngineAt("ssh://ops@engine-b.example:2222")
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eng.Ping(ctx); err != nil {
		t.Fatalf("ping through dial-stdio: %v", err)
	}
	id, err := eng.ID(ctx)
	if err != nil || id == "" {
		t.Fatalf("engine id through dial-stdio: %q, %v", id, err)
	}
	if _, err := eng.ContainerList(ctx, map[string]string{LabelTopology: "no-such-topology"}); err != nil {
		t.Fatalf("list through dial-stdio: %v", err)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "-o BatchMode=yes -l ops -p 2222 -- engine-b.example docker system dial-stdio"
	if got := strings.Join(strings.Fields(string(b)), " "); got != want {
		t.Errorf("ssh ran with %q, want %q", got, want)
	}
	// A failing ssh's message reaches the caller.
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'Permission denied (publickey).' >&2\nexit 255\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	bad, err := NewEngineAt("ssh://engine-c.example")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("ping through a failing ssh: %v, want ssh's message", err)
	}
}
