package docker

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/drillworks/drill/topology"
)

func TestExportCompose(t *testing.T) {
	plan, err := NewPlan(topology.Default(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ExportCompose(&buf, plan, "drill-node:0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(buf.Bytes(), &f); err != nil {
		t.Fatalf("export is not valid YAML: %v\n%s", err, buf.String())
	}
	nodes := plan.Topology.Nodes()
	if len(f.Services) != len(nodes) || len(f.Networks) != 1+len(plan.Topology.Regions) {
		t.Fatalf("%d services, %d networks; want %d and %d", len(f.Services), len(f.Networks), len(nodes), 1+len(plan.Topology.Regions))
	}
	seen := map[string]string{}
	for _, n := range nodes {
		s, ok := f.Services[n.Name]
		if !ok {
			t.Fatalf("no service for %s", n.Name)
		}
		if s.Image != "drill-node:0123456789abcdef" || s.Labels[LabelNode] != n.Name || s.Labels[LabelTopology] != "default" {
			t.Errorf("%s: image %q labels %v", n.Name, s.Image, s.Labels)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Equal(s.SecurityOpt, []string{"no-new-privileges"}) || !s.ReadOnly {
			t.Errorf("%s not hardened: cap_drop %v security_opt %v read_only %v", n.Name, s.CapDrop, s.SecurityOpt, s.ReadOnly)
		}
		if got := s.Networks[wanNetwork].IPv4Address; got != n.IP.String() {
			t.Errorf("%s on wan at %s, want %s", n.Name, got, n.IP)
		}
		for net, ep := range s.Networks {
			key := net + "/" + ep.IPv4Address
			if other, dup := seen[key]; dup {
				t.Errorf("%s and %s share %s", n.Name, other, key)
			}
			seen[key] = n.Name
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q beyond loopback", n.Name, p)
			}
		}
	}
}

// TestExportComposeValidates asks Docker Compose itself to validate the export.
func TestExportComposeValidates(t *testing.T) {
	tool, args := "docker-compose", []string{"config", "-q"}
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("DRILL_CI") != "" {
			t.Fatal("docker-compose is required in CI (.ci/run installs it): the export could not be validated by Compose itself")
		}
		t.Skip("SKIPPED: docker-compose is not installed, so the compose file could not be validated by Compose itself")
	}
	dir := t.TempDir()
	plan, err := NewPlan(topology.Default(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ExportCompose(&buf, plan, "drill-node:0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "version:") {
		t.Errorf("the export has a top-level version, obsolete in the Compose Specification:\n%s", buf.String())
	}
	cmd := exec.Command(tool, append([]string{"-f", filepath.Join(dir, "compose.yaml")}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s rejects the export: %v\n%s", tool, err, out)
	}
	// Read back as Compose reads it: the static addresses survive without a version.
	out, err := exec.Command(tool, "-f", filepath.Join(dir, "compose.yaml"), "config").Output()
	if err != nil || strings.Count(string(out), "ipv4_address") < len(plan.Topology.Nodes()) {
		t.Fatalf("%s config lost static addresses: %v\n%s", tool, err, out)
	}
}
