package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The node image is made without a registry: ImageImport of a root-filesystem tar holding the
// drill binary at /drill and, when it is dynamically linked, its loader and libraries (Pack), with
// a JSON-form ENTRYPOINT (the image has no shell to run a string form). Its tag is the hash of the
// whole filesystem, so it is rebuilt only when the binary (or a library it packs) changes, and
// nodes of every topology share it. Any drill binary works, installed or built anywhere, with no
// toolchain.

// ImageRepo is the repository of node images; the tag is a short SHA-256 of the image's files.
const ImageRepo = "drill-node"

// ImageRef is the image tag for a filesystem with the given SHA-256 (hex).
func ImageRef(sum string) string { return ImageRepo + ":" + sum[:16] }

// NodeImage is the node image of one binary: its files and its reference.
type NodeImage struct {
	// Files are the image's files, the binary first.
	Files []PackedFile
	// Sum is the SHA-256 (hex) of every file's path, mode and content.
	Sum string
	// BinarySum is the SHA-256 (hex) of the drill binary alone.
	BinarySum string
}

// Ref is the image's tag.
func (im NodeImage) Ref() string { return ImageRef(im.Sum) }

// ImageFor packs a drill binary into a node image (nothing is sent to an engine).
func ImageFor(binary string) (NodeImage, error) {
	files, err := Pack(binary, "/drill", HostLibrarySearch())
	if err != nil {
		return NodeImage{}, fmt.Errorf("node image: %w", err)
	}
	im := NodeImage{Files: files}
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

// EnsureImage makes the node image of a drill binary unless it exists already, and returns its
// ref and whether it was built now.
func EnsureImage(ctx context.Context, e Engine, binary string, log *slog.Logger) (ref string, built bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	im, err := ImageFor(binary)
	if err != nil {
		return "", false, err
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
	changes := []string{
		`ENTRYPOINT ["/drill"]`,
		"LABEL " + LabelImage + "=node",
		"LABEL " + LabelBinarySHA + "=" + im.BinarySum,
		"WORKDIR /",
	}
	if dirs := libraryDirs(im.Files); len(dirs) > 0 {
		// The image has no loader cache: the loader finds the libraries where they were packed.
		changes = append(changes, "ENV LD_LIBRARY_PATH="+strings.Join(dirs, ":"))
	}
	if err := e.ImageImport(ctx, bytes.NewReader(rootfs), ref, changes); err != nil {
		return "", false, fmt.Errorf("node image: %w", err)
	}
	log.Info("node image built", "ref", ref, "files", len(im.Files), "bytes", len(rootfs), "took", time.Since(start).Round(time.Millisecond))
	return ref, true, nil
}

// rootfsTar is the image's whole filesystem: the packed files (with their parent directories),
// and empty /data and /tmp. Headers have a fixed time so the same files always give the same tar.
func rootfsTar(files []PackedFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	headers := []*tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o777, ModTime: epoch},
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

// BuildStatic runs `go build` with CGO_ENABLED=0 for pkg (run in dir, "" = the working
// directory, which must be inside the module) into out. Nothing needs it to run drill; it is
// for comparing a static node image with a packed one.
func BuildStatic(ctx context.Context, pkg, dir, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build static drill: %w", err)
	}
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("go build %s: %s", pkg, strings.TrimSpace(stderr.String()))
		}
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return os.Rename(tmp, out)
}

func shaHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
