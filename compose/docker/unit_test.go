package docker

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drillworks/drill/compose/docker/nft"
)

// Tests that need no engine.

func TestRootfsTarIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := []PackedFile{{Path: "/drill", Source: bin, Mode: 0o755}, {Path: "/lib/x86_64-linux-gnu/libc.so.6", Source: bin, Mode: 0o755}}
	a, err := rootfsTar(files)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rootfsTar(files)
	if !bytes.Equal(a, b) {
		t.Fatal("the same files gave two different tars")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	got := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	if h := got["drill"]; h == nil || h.Mode != 0o755 || h.Size != int64(len("binary")) {
		t.Fatalf("no executable /drill in the image tar: %+v", got)
	}
	for _, d := range []string{"lib/", "lib/x86_64-linux-gnu/", "data/", "tmp/"} {
		if h := got[d]; h == nil || h.Typeflag != tar.TypeDir {
			t.Errorf("directory %s missing", d)
		}
	}
	if got["lib/x86_64-linux-gnu/libc.so.6"] == nil {
		t.Error("library missing")
	}
}

// TestPackDynamicBinary: a dynamically linked host binary packs with its interpreter and the
// closure of its libraries, each from a real file; a static binary packs alone; a library the
// search cannot find is an error naming it.
func TestPackDynamicBinary(t *testing.T) {
	files, err := Pack("/bin/sh", "/drill", HostLibrarySearch())
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Path != "/drill" || files[0].Source != "/bin/sh" {
		t.Fatalf("first file %+v, want the binary at /drill", files[0])
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		if _, err := os.Stat(f.Source); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
	}
	libc := slices.ContainsFunc(paths, func(p string) bool { return strings.HasSuffix(p, "/libc.so.6") })
	interp := slices.ContainsFunc(paths, func(p string) bool { return strings.Contains(p, "/ld-linux") })
	if !libc || !interp {
		t.Fatalf("packed %v: want libc and the loader", paths)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(paths)))) != len(paths) {
		t.Errorf("a file packed twice: %v", paths)
	}
	if _, err := Pack("/bin/sh", "/drill", LibrarySearch{}); err == nil || !strings.Contains(err.Error(), "libc.so.6") {
		t.Fatalf("with nowhere to search: %v, want an error naming libc.so.6", err)
	}
	if _, err := Pack("/etc/hostname", "/drill", HostLibrarySearch()); err == nil {
		t.Error("a text file packed as a binary")
	}
}

func TestLdSoConfIncludes(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "ld.so.conf"), []byte("# comment\n/opt/a\ninclude conf.d/*.conf\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "conf.d", "b.conf"), []byte("/opt/b # trailing\n\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "conf.d", "c.conf"), []byte("/opt/c\n"), 0o644))
	if got := readLdSoConf(filepath.Join(dir, "ld.so.conf"), 0); !slices.Equal(got, []string{"/opt/a", "/opt/b", "/opt/c"}) {
		t.Fatalf("directories %v", got)
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
