package docker

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/docker/nft"
)

// Tests that need no engine.

func TestRootfsTarIsReproducible(t *testing.T) {
	a, err := rootfsTar([]byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rootfsTar([]byte("binary"))
	if !bytes.Equal(a, b) {
		t.Fatal("the same binary gave two different tars")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	found := false
	for i := 0; i < 10; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "drill" {
			found = h.Mode == 0o755 && h.Size == int64(len("binary"))
		}
	}
	if !found {
		t.Fatal("no executable /drill in the image tar")
	}
}

func TestIsStaticRejectsDynamicBinaries(t *testing.T) {
	exe, err := os.Executable() // the test binary: with cgo on this machine, usually dynamic
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test binary static: %v", IsStatic(exe))
	if IsStatic("/bin/sh") {
		t.Error("/bin/sh (dynamically linked) reported static")
	}
	if err := checkStatic("/etc/hostname"); err == nil {
		t.Error("a text file passed as a binary")
	}
}

func TestTableNames(t *testing.T) {
	a, b := TableName("blackhole:us-east"), TableName("blackhole_us-east")
	if a == b {
		t.Fatalf("ids that read alike share a table: %s", a)
	}
	long := TableName(strings.Repeat("x", 500))
	for _, n := range []string{a, b, long} {
		if !strings.HasPrefix(n, nft.TablePrefix) || len(n) > 64 || strings.ContainsAny(n, ": /") {
			t.Errorf("bad table name %q", n)
		}
	}
}
