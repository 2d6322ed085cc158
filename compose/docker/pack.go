package docker

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// A node image holds host binaries (drill itself and, for cache nodes, redis-server) and, for a
// dynamically linked one, everything the dynamic loader needs to start it: its ELF interpreter
// (PT_INTERP) and the closure of its DT_NEEDED libraries, each found as the loader finds it and
// placed in the image at the path where it was found. No toolchain, no source tree, no registry.

// PackedFile is one file of a node image.
type PackedFile struct {
	// Path is its absolute path in the image.
	Path string
	// Source is the host file its content comes from.
	Source string
	// Mode is its permission bits.
	Mode os.FileMode
}

// LibrarySearch is where a dynamically linked binary's libraries are looked for, in the order
// ld.so(8) gives: DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the
// directories of ld.so.conf (what the loader's cache is built from) and the default directories.
type LibrarySearch struct {
	// LibraryPath is LD_LIBRARY_PATH's directories.
	LibraryPath []string
	// ConfDirs are the ld.so.conf directories.
	ConfDirs []string
	// Defaults are the loader's built-in directories.
	Defaults []string
}

// HostLibrarySearch reads this host's search path: LD_LIBRARY_PATH, /etc/ld.so.conf (with its
// include lines) and the default directories.
func HostLibrarySearch() LibrarySearch {
	s := LibrarySearch{Defaults: []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}}
	if v := os.Getenv("LD_LIBRARY_PATH"); v != "" {
		s.LibraryPath = filepath.SplitList(v)
	}
	s.ConfDirs = readLdSoConf("/etc/ld.so.conf", 0)
	return s
}

// readLdSoConf reads the directories of an ld.so.conf file, following include lines (globs).
func readLdSoConf(path string, depth int) []string {
	f, err := os.Open(path)
	if err != nil || depth > 8 {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "include "):
			pattern := strings.TrimSpace(strings.TrimPrefix(line, "include "))
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(path), pattern)
			}
			matches, _ := filepath.Glob(pattern)
			sort.Strings(matches)
			for _, m := range matches {
				out = append(out, readLdSoConf(m, depth+1)...)
			}
		default:
			out = append(out, line)
		}
	}
	return out
}

// Pack lists the files a binary needs in an image: the binary itself at as, and, when it is
// dynamically linked, its interpreter and every library it needs (transitively) at the paths the
// host's loader would load them from. An error names the library that cannot be found.
func Pack(binary, as string, search LibrarySearch) ([]PackedFile, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF binary: %w", binary, err)
	}
	defer f.Close()
	out := []PackedFile{{Path: as, Source: binary, Mode: 0o755}}
	interp := ""
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return nil, fmt.Errorf("%s: read its interpreter: %w", binary, err)
		}
		interp = strings.TrimRight(string(b), "\x00")
	}
	if interp == "" {
		return out, nil // static: the binary is all
	}
	if _, err := os.Stat(interp); err != nil {
		return nil, fmt.Errorf("%s: its interpreter %s: %w", binary, interp, err)
	}
	out = append(out, PackedFile{Path: interp, Source: interp, Mode: 0o755})
	seen := map[string]bool{interp: true}
	if err := addNeeded(f, binary, search, seen, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// addNeeded adds, depth first, the libraries obj needs that are not in seen.
func addNeeded(obj *elf.File, objPath string, search LibrarySearch, seen map[string]bool, out *[]PackedFile) error {
	needed, err := obj.DynString(elf.DT_NEEDED)
	if err != nil {
		return fmt.Errorf("%s: read DT_NEEDED: %w", objPath, err)
	}
	rpath, _ := obj.DynString(elf.DT_RPATH)
	runpath, _ := obj.DynString(elf.DT_RUNPATH)
	origin := filepath.Dir(objPath)
	expand := func(list []string) []string {
		var dirs []string
		for _, l := range list {
			for _, d := range strings.Split(l, ":") {
				d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
				if d != "" {
					dirs = append(dirs, d)
				}
			}
		}
		return dirs
	}
	var dirs []string
	if len(runpath) == 0 {
		dirs = append(dirs, expand(rpath)...)
	}
	dirs = append(dirs, search.LibraryPath...)
	dirs = append(dirs, expand(runpath)...)
	dirs = append(dirs, search.ConfDirs...)
	dirs = append(dirs, search.Defaults...)
	for _, name := range needed {
		path, lib, err := findLibrary(name, dirs, obj)
		if err != nil {
			return fmt.Errorf("%s needs %s: %w", objPath, name, err)
		}
		if seen[path] {
			lib.Close()
			continue
		}
		seen[path] = true
		*out = append(*out, PackedFile{Path: path, Source: path, Mode: 0o755})
		err = addNeeded(lib, path, search, seen, out)
		lib.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// findLibrary is the first file called name in dirs that is an ELF object of the same class and
// machine as obj (the loader skips others, e.g. 32-bit libraries of the same name).
func findLibrary(name string, dirs []string, obj *elf.File) (string, *elf.File, error) {
	if strings.ContainsRune(name, '/') {
		dirs = []string{""}
	}
	var tried []string
	for _, d := range slices.Compact(dirs) {
		path := filepath.Join(d, name)
		if d == "" {
			path = name
		}
		lib, err := elf.Open(path)
		if err != nil {
			continue
		}
		if lib.Class != obj.Class || lib.Machine != obj.Machine {
			lib.Close()
			tried = append(tried, path+" (wrong class or machine)")
			continue
		}
		return path, lib, nil
	}
	if len(tried) > 0 {
		return "", nil, fmt.Errorf("not found (skipped %s)", strings.Join(tried, ", "))
	}
	return "", nil, errors.New("not found in " + strings.Join(slices.Compact(dirs), ":"))
}

// libraryDirs are the directories of the libraries packed (every file but the binaries), in
// order, for LD_LIBRARY_PATH in the image (it has no loader cache).
func libraryDirs(files []PackedFile, binaries []string) []string {
	var dirs []string
	for _, f := range files {
		if slices.Contains(binaries, f.Path) {
			continue
		}
		if d := filepath.Dir(f.Path); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
