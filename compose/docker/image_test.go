package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/topology"
)

// Node image tests that need no engine. /bin/sh stands in for a dynamically linked drill: it
// shares libc and the loader with redis-server.

// TestImageWithoutExtrasIsUnchanged: a spec without extra binaries (a topology without cache
// nodes) gives the image drill always made: Pack's files in Pack's order, the same sum, the same
// LD_LIBRARY_PATH (every packed file but the binary).
func TestImageWithoutExtrasIsUnchanged(t *testing.T) {
	const bin = "/bin/sh"
	files, err := Pack(bin, "/drill", HostLibrarySearch())
	if err != nil {
		t.Fatal(err)
	}
	// The sum as it was computed before images could hold more than drill.
	all := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f.Source)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(all, "%s\x00%o\x00%d\x00", f.Path, f.Mode, len(b))
		all.Write(b)
	}
	wantSum := hex.EncodeToString(all.Sum(nil))
	var wantDirs []string
	for _, f := range files[1:] {
		if d := filepath.Dir(f.Path); !slices.Contains(wantDirs, d) {
			wantDirs = append(wantDirs, d)
		}
	}

	spec, err := ImageSpecFor(topology.Default(), bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Extra) != 0 {
		t.Fatalf("the default topology (no cache nodes) packs extra binaries: %+v", spec.Extra)
	}
	for name, mk := range map[string]func() (NodeImage, error){
		"ImageFor":              func() (NodeImage, error) { return ImageFor(bin) },
		"ImageSpecFor(default)": spec.Image,
	} {
		im, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(im.Files, files) {
			t.Errorf("%s: files %v, want Pack's %v", name, im.Files, files)
		}
		if im.Sum != wantSum {
			t.Errorf("%s: sum %s, want %s (the tag of a drill-only image changed)", name, im.Sum, wantSum)
		}
		if got := libraryDirs(im.Files, im.Binaries); !slices.Equal(got, wantDirs) {
			t.Errorf("%s: library dirs %v, want %v", name, got, wantDirs)
		}
		if !slices.Equal(im.Binaries, []string{"/drill"}) {
			t.Errorf("%s: binaries %v", name, im.Binaries)
		}
	}
}

// TestImageWithRedis: a topology with cache nodes packs the host's redis-server at
// /usr/bin/redis-server with every library it needs, each file once, and gets another tag.
func TestImageWithRedis(t *testing.T) {
	const bin = "/bin/sh"
	redis, err := cache.FindBinary()
	if errors.Is(err, cache.ErrNoRedis) {
		t.Skipf("SKIPPED: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	topo, ok := topology.Builtin("cache")
	if !ok || !topo.HasCache() {
		t.Fatal("no built-in topology with cache nodes")
	}
	spec, err := ImageSpecFor(topo, bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := []HostBinary{{Source: redis, Path: RedisImagePath}}; !slices.Equal(spec.Extra, want) {
		t.Fatalf("extra binaries %+v, want %+v", spec.Extra, want)
	}
	im, err := spec.Image()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, f := range im.Files {
		if src, dup := paths[f.Path]; dup {
			t.Errorf("%s packed twice (from %s and %s)", f.Path, src, f.Source)
		}
		paths[f.Path] = f.Source
	}
	if im.Files[0].Path != "/drill" || im.Files[0].Source != bin {
		t.Errorf("first file %+v, want drill at /drill", im.Files[0])
	}
	if paths[RedisImagePath] != redis {
		t.Fatalf("%s in the image is %q, want the host's %s", RedisImagePath, paths[RedisImagePath], redis)
	}
	if !slices.Equal(im.Binaries, []string{"/drill", RedisImagePath}) {
		t.Errorf("binaries %v", im.Binaries)
	}
	// Everything redis-server needs is there, at the path its own packing gives.
	alone, err := Pack(redis, RedisImagePath, HostLibrarySearch())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range alone {
		if paths[f.Path] != f.Source {
			t.Errorf("redis-server needs %s (from %s): image has %q", f.Path, f.Source, paths[f.Path])
		}
	}
	// drill's files come first, unchanged.
	drillOnly, err := ImageFor(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(im.Files[:len(drillOnly.Files)], drillOnly.Files) {
		t.Error("drill's files are not first and unchanged")
	}
	if im.Sum == drillOnly.Sum || im.Ref() == drillOnly.Ref() {
		t.Errorf("the image with redis has drill's tag %s", im.Ref())
	}
	if im.BinarySum != drillOnly.BinarySum {
		t.Errorf("drill's binary sum changed with redis: %s, want %s", im.BinarySum, drillOnly.BinarySum)
	}
	dirs := libraryDirs(im.Files, im.Binaries)
	if slices.Contains(dirs, "/usr/bin") || slices.Contains(dirs, "/") {
		t.Errorf("LD_LIBRARY_PATH names a binary's directory: %v", dirs)
	}
	for _, f := range alone[1:] {
		if !slices.Contains(dirs, filepath.Dir(f.Path)) {
			t.Errorf("LD_LIBRARY_PATH %v misses %s", dirs, filepath.Dir(f.Path))
		}
	}
	again, err := spec.Image()
	if err != nil || again.Sum != im.Sum {
		t.Errorf("packing twice gave sum %s then %s (%v)", im.Sum, again.Sum, err)
	}
}

// TestImageSpecCollisions: an extra binary cannot take a path the image has already.
func TestImageSpecCollisions(t *testing.T) {
	for _, path := range []string{"/drill", "relative/sh"} {
		_, err := ImageSpec{Binary: "/bin/sh", Extra: []HostBinary{{Source: "/bin/sh", Path: path}}}.Image()
		if err == nil {
			t.Errorf("an extra binary at %q was packed", path)
		}
	}
	files, err := Pack("/bin/sh", "/drill", HostLibrarySearch())
	if err != nil || len(files) < 2 {
		t.Skipf("/bin/sh is not dynamically linked here (%v)", err)
	}
	lib := files[len(files)-1].Path
	if _, err := (ImageSpec{Binary: "/bin/sh", Extra: []HostBinary{{Source: "/bin/sh", Path: lib}}}).Image(); err == nil {
		t.Errorf("an extra binary replaced the library %s", lib)
	}
}

// recordingEngine fails every call, recording it: Up must not reach the engine at all when the
// image cannot be packed. Calls it does not implement panic (the embedded Engine is nil).
type recordingEngine struct {
	Engine
	mu    sync.Mutex
	calls []string
}

var errEngineReached = errors.New("engine reached")

func (e *recordingEngine) record(call string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
	return errEngineReached
}

func (e *recordingEngine) ContainerList(context.Context, map[string]string) ([]Container, error) {
	return nil, e.record("ContainerList")
}

func (e *recordingEngine) NetworkList(context.Context, map[string]string) ([]Network, error) {
	return nil, e.record("NetworkList")
}

func (e *recordingEngine) ImageExists(context.Context, string) (bool, error) {
	return false, e.record("ImageExists")
}

// TestUpWithoutRedisTouchesNothing: a topology with cache nodes and no usable redis-server fails
// Up before the engine is called (no leftovers swept, no network, no container) and before the
// run directory is cleaned; a topology without cache nodes does not look for redis.
func TestUpWithoutRedisTouchesNothing(t *testing.T) {
	t.Setenv(cache.BinaryEnv, filepath.Join(t.TempDir(), "no-redis-server"))
	for _, tc := range []struct {
		name      string
		topo      func() *topology.Topology
		wantEarly bool
	}{
		{"cache", func() *topology.Topology { c, _ := topology.Builtin("cache"); return c }, true},
		{"default", topology.Default, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &recordingEngine{}
			runDir := t.TempDir()
			sentinel := filepath.Join(runDir, "data", "keep")
			if err := os.MkdirAll(filepath.Dir(sentinel), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sentinel, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := New(Config{RunDir: runDir, Binary: "/bin/sh", Engine: eng})
			if err != nil {
				t.Fatal(err)
			}
			plan, err := NewPlan(tc.topo(), runDir)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Up(context.Background(), plan)
			if err == nil {
				t.Fatal("Up succeeded against an engine that fails every call")
			}
			if !tc.wantEarly {
				if !errors.Is(err, errEngineReached) {
					t.Fatalf("Up: %v, want the engine reached (no redis needed)", err)
				}
				return
			}
			if errors.Is(err, errEngineReached) || len(eng.calls) > 0 {
				t.Fatalf("Up reached the engine (%v) before failing: %v", eng.calls, err)
			}
			if !strings.Contains(err.Error(), "cache nodes") || !strings.Contains(err.Error(), cache.BinaryEnv) {
				t.Errorf("error %q does not say cache nodes need redis-server", err)
			}
			if _, serr := os.Stat(sentinel); serr != nil {
				t.Errorf("the run directory was cleaned before failing: %v", serr)
			}
		})
	}
}

// The node image carries the OCI annotations image tools read, beside drill's own labels.
func TestNodeImageLabels(t *testing.T) {
	changes := strings.Join(NodeImage{BinarySum: "abc"}.changes(), "\n")
	for _, want := range []string{"LABEL " + LabelImage + "=node", "LABEL " + LabelBinarySHA + "=abc",
		`LABEL org.opencontainers.image.title="drill-node"`, `LABEL org.opencontainers.image.source="https://github.com/drillworks/drill"`,
		"LABEL org.opencontainers.image.description="} {
		if !strings.Contains(changes, want) {
			t.Errorf("image changes lack %q:\n%s", want, changes)
		}
	}
}
