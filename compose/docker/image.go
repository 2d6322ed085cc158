package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// The node image is made without a registry: ImageImport of a root-filesystem tar that holds one
// file, a static drill binary at /drill, with a JSON-form ENTRYPOINT (scratch has no shell to run
// a string form). Its tag is the binary's content hash, so it is rebuilt only when the binary
// changes, and nodes of every topology share it.

// ImageRepo is the repository of node images; the tag is the binary's short SHA-256.
const ImageRepo = "drill-node"

// ImageRef is the image tag for a binary with the given SHA-256 (hex).
func ImageRef(sum string) string { return ImageRepo + ":" + sum[:16] }

// EnsureImage makes the node image from a static binary unless it exists already, and returns its
// ref and whether it was built now.
func EnsureImage(ctx context.Context, e Engine, binary string, log *slog.Logger) (ref string, built bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return "", false, fmt.Errorf("node image: read binary: %w", err)
	}
	if err := checkStatic(binary); err != nil {
		return "", false, fmt.Errorf("node image: %w", err)
	}
	hexSum := shaHex(bin)
	ref = ImageRef(hexSum)
	if ok, err := e.ImageExists(ctx, ref); err != nil {
		return "", false, err
	} else if ok {
		return ref, false, nil
	}
	start := time.Now()
	rootfs, err := rootfsTar(bin)
	if err != nil {
		return "", false, err
	}
	changes := []string{
		`ENTRYPOINT ["/drill"]`,
		"LABEL " + LabelImage + "=node",
		"LABEL " + LabelBinarySHA + "=" + hexSum,
		"WORKDIR /",
	}
	if err := e.ImageImport(ctx, bytes.NewReader(rootfs), ref, changes); err != nil {
		return "", false, fmt.Errorf("node image: %w", err)
	}
	log.Info("node image built", "ref", ref, "bytes", len(bin), "took", time.Since(start).Round(time.Millisecond))
	return ref, true, nil
}

// rootfsTar is the image's whole filesystem: /drill, and empty /data and /tmp. Headers have a fixed
// time so the same binary always gives the same tar.
func rootfsTar(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, h := range []*tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o777, ModTime: epoch},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
		{Name: "drill", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("node image tar: %w", err)
		}
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, fmt.Errorf("node image tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("node image tar: %w", err)
	}
	return buf.Bytes(), nil
}

// checkStatic fails for a binary that needs a dynamic loader: the image holds nothing else.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF binary: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (built with cgo); the node image needs a static binary: "+
				"build it with CGO_ENABLED=0 go build ./cmd/drill, or pass --agent-binary", path)
		}
	}
	return nil
}

// IsStatic reports whether the binary at path needs no dynamic loader.
func IsStatic(path string) bool { return checkStatic(path) == nil }

// StaticBinary returns a static drill binary for the node image: exe itself when it is static,
// otherwise one built with CGO_ENABLED=0 from the module source the running binary was built from
// (found from the working directory; needs the go tool), cached in cacheDir (empty: the user cache dir) by exe's content hash.
func StaticBinary(ctx context.Context, exe, cacheDir string, log *slog.Logger) (string, error) {
	if IsStatic(exe) {
		return exe, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cacheDir = filepath.Join(base, "drill")
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", exe, err)
	}
	sum := sha256.Sum256(bin)
	out := filepath.Join(cacheDir, "drill-static-"+hex.EncodeToString(sum[:8]))
	if IsStatic(out) {
		return out, nil
	}
	hint := fmt.Sprintf("%s is dynamically linked and no static drill could be built", exe)
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path == "" {
		return "", fmt.Errorf("%s: no build info; build drill with CGO_ENABLED=0 or pass --agent-binary", hint)
	}
	start := time.Now()
	log.Info("building a static drill for the node image (once per binary)", "into", out)
	if err := BuildStatic(ctx, bi.Main.Path+"/cmd/drill", "", out); err != nil {
		return "", fmt.Errorf("%s: %w; build drill with CGO_ENABLED=0 or pass --agent-binary", hint, err)
	}
	log.Info("static drill built", "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// BuildStatic runs `go build` with CGO_ENABLED=0 for pkg (run in dir, "" = the working
// directory, which must be inside the module) into out.
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

// BinarySHA is the hex SHA-256 of a binary: the node image built from it is ImageRef(BinarySHA).
func BinarySHA(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return shaHex(b), nil
}
