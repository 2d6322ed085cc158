package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/drillworks/drill/agents/cache"
	"github.com/drillworks/drill/topology"
)

// The node image is made without a registry: ImageImport of a root-filesystem tar holding the
// drill binary at /drill and, when it is dynamically linked, its loader and libraries (Pack), with
// a JSON-form ENTRYPOINT (the image has no shell to run a string form). A topology with cache
// nodes also needs the host's redis-server, packed the same way at /usr/bin/redis-server (its
// libraries merged with drill's). The tag is the hash of the whole filesystem, so the image is
// rebuilt only when a binary (or a library it packs) changes, and nodes of every topology that
// needs the same binaries share it. Any drill binary works, installed or built anywhere, with no
// toolchain.

// ImageRepo is the repository of node images; the tag is a short SHA-256 of the image's files.
const ImageRepo = "drill-node"

// RedisImagePath is where a node image carries redis-server (where the cache agent looks for it
// in a container: agents/cache.FindBinary).
const RedisImagePath = "/usr/bin/redis-server"

// ImageRef is the image tag for a filesystem with the given SHA-256 (hex).
func ImageRef(sum string) string { return ImageRepo + ":" + sum[:16] }

// HostBinary is a host binary a node image carries besides drill.
type HostBinary struct {
	// Source is the binary on the host (a symbolic link is followed).
	Source string
	// Path is its absolute path in the image.
	Path string
}

// ImageSpec says what a node image holds.
type ImageSpec struct {
	// Binary is the drill binary, at /drill.
	Binary string
	// Extra are other host binaries (e.g. redis-server), each with its loader and libraries;
	// files drill's packing has already (libc, the loader) are packed once.
	Extra []HostBinary
}

// ImageSpecFor is the node image a topology needs: the drill binary and, when the topology has
// cache nodes, the host's redis-server (cache.FindBinary; an error wrapping cache.ErrNoRedis
// when there is none).
func ImageSpecFor(t *topology.Topology, binary string) (ImageSpec, error) {
	spec := ImageSpec{Binary: binary}
	if t != nil && t.HasCache() {
		redis, err := cache.FindBinary()
		if err != nil {
			return ImageSpec{}, fmt.Errorf("node image: topology %s has cache nodes: %w", t.Name, err)
		}
		spec.Extra = append(spec.Extra, HostBinary{Source: redis, Path: RedisImagePath})
	}
	return spec, nil
}

// NodeImage is the node image of one spec: its files and its reference.
type NodeImage struct {
	// Files are the image's files, the drill binary first.
	Files []PackedFile
	// Binaries are the image paths of the binaries (drill's first), not libraries.
	Binaries []string
	// Sum is the SHA-256 (hex) of every file's path, mode and content.
	Sum string
	// BinarySum is the SHA-256 (hex) of the drill binary alone.
	BinarySum string
}

// Ref is the image's tag.
func (im NodeImage) Ref() string { return ImageRef(im.Sum) }

// ImageFor packs a drill binary alone into a node image (nothing is sent to an engine).
func ImageFor(binary string) (NodeImage, error) { return ImageSpec{Binary: binary}.Image() }

// Image packs the spec's binaries into a node image (nothing is sent to an engine): drill's
// files first, in Pack's order, then each extra binary's files that are not in the image yet.
// Without extras it is exactly ImageFor's image.
func (s ImageSpec) Image() (NodeImage, error) {
	search := HostLibrarySearch()
	files, err := Pack(s.Binary, "/drill", search)
	if err != nil {
		return NodeImage{}, fmt.Errorf("node image: %w", err)
	}
	im := NodeImage{Binaries: []string{"/drill"}}
	source := map[string]string{}
	for _, f := range files {
		source[f.Path] = f.Source
	}
	for _, x := range s.Extra {
		if !filepath.IsAbs(x.Path) {
			return NodeImage{}, fmt.Errorf("node image: %s: image path %q is not absolute", x.Source, x.Path)
		}
		if _, ok := source[x.Path]; ok {
			return NodeImage{}, fmt.Errorf("node image: %s: the image has %s already", x.Source, x.Path)
		}
		more, err := Pack(x.Source, x.Path, search)
		if err != nil {
			return NodeImage{}, fmt.Errorf("node image: %w", err)
		}
		for _, f := range more {
			if src, ok := source[f.Path]; ok {
				if src != f.Source {
					return NodeImage{}, fmt.Errorf("node image: %s would be both %s and %s", f.Path, src, f.Source)
				}
				continue // shared with a binary packed before (libc, the loader)
			}
			source[f.Path] = f.Source
			files = append(files, f)
		}
		im.Binaries = append(im.Binaries, x.Path)
	}
	im.Files = files
	all := sha256.New()
	for i, f := range files {
		b, err := os.ReadFile(f.Source)
		if err != nil {
			return NodeImage{}, fmt.Errorf("node image: %w", err)
		}
		fmt.Fprintf(all, "%s\x00%o\x00%d\x00", f.Path, f.Mode, len(b))
		all.Write(b)
		if i == 0 {
			im.BinarySum = shaHex(b)
		}
	}
	im.Sum = hex.EncodeToString(all.Sum(nil))
	return im, nil
}

// EnsureImage makes the node image of a spec unless it exists already, and returns its ref and
// whether it was built now.
func EnsureImage(ctx context.Context, e Engine, spec ImageSpec, log *slog.Logger) (ref string, built bool, err error) {
	im, err := spec.Image()
	if err != nil {
		return "", false, err
	}
	return im.Ensure(ctx, e, log)
}

// Ensure imports the image unless the engine has it already, and returns its ref and whether it
// was built now.
func (im NodeImage) Ensure(ctx context.Context, e Engine, log *slog.Logger) (ref string, built bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ref = im.Ref()
	if ok, err := e.ImageExists(ctx, ref); err != nil {
		return "", false, err
	} else if ok {
		return ref, false, nil
	}
	start := time.Now()
	rootfs, err := rootfsTar(im.Files)
	if err != nil {
		return "", false, err
	}
	if err := e.ImageImport(ctx, bytes.NewReader(rootfs), ref, im.changes()); err != nil {
		return "", false, fmt.Errorf("node image: %w", err)
	}
	log.Info("node image built", "ref", ref, "binaries", im.Binaries, "files", len(im.Files), "bytes", len(rootfs), "took", time.Since(start).Round(time.Millisecond))
	return ref, true, nil
}

// changes are the image's Dockerfile-style settings.
func (im NodeImage) changes() []string {
	changes := []string{
		`ENTRYPOINT ["/drill"]`,
		"LABEL " + LabelImage + "=node",
		"LABEL " + LabelBinarySHA + "=" + im.BinarySum,
		// The OCI image annotations, as image tools read them.
		`LABEL org.opencontainers.image.title="drill-node"`,
		`LABEL org.opencontainers.image.description="drill's node image: the drill binary (agents, WAN node) and the host binaries its nodes run, packed with their libraries"`,
		`LABEL org.opencontainers.image.source="https://github.com/drillworks/drill"`,
		"WORKDIR /",
	}
	if dirs := libraryDirs(im.Files, im.Binaries); len(dirs) > 0 {
		// The image has no loader cache: the loader finds the libraries where they were packed.
		changes = append(changes, "ENV LD_LIBRARY_PATH="+strings.Join(dirs, ":"))
	}
	return changes
}

// rootfsTar is the image's whole filesystem: the packed files (with their parent directories),
// and empty /data and /tmp. Headers have a fixed time so the same files always give the same tar.
func rootfsTar(files []PackedFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	headers := []*tar.Header{
		// /data is where a node's data directory is mounted. A bind mount (the default engine)
		// covers it; a named volume (another engine's node) starts as a copy of it: private to
		// the user such a node runs as.
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: volumeNodeUID, Gid: volumeNodeUID, ModTime: epoch},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
	}
	for _, h := range headers {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("node image tar: %w", err)
		}
	}
	for _, f := range files {
		name := strings.TrimPrefix(f.Path, "/")
		var parents []string
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Name: parents[i] + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, fmt.Errorf("node image tar: %w", err)
			}
		}
		b, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("node image tar: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: int64(f.Mode), Size: int64(len(b)), ModTime: epoch}); err != nil {
			return nil, fmt.Errorf("node image tar: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return nil, fmt.Errorf("node image tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("node image tar: %w", err)
	}
	return buf.Bytes(), nil
}

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
