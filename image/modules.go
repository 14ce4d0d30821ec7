package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultModules are the drivers the appliance loads, by module name: the
// virtio devices QEMU and most clouds give a VM (PCI transport, network,
// disk, console), NBD for replicated volumes, the i6300esb watchdog QEMU
// emulates, veth, and ext4 for the data partition (with crc32c_generic:
// ext4 asks the crypto API for crc32c, which no dependency names).
// Dependencies are added by Resolve; a module built into the kernel is
// skipped.
var DefaultModules = []string{"virtio_pci", "virtio_net", "virtio_blk", "virtio_console", "nbd", "i6300esb", "veth", "ext4", "crc32c_generic"}

// ModuleTree is the /lib/modules/VERSION directory of an unpacked kernel
// package.
type ModuleTree struct {
	Dir     string
	paths   map[string]string // module name -> path relative to Dir
	builtin map[string]bool
	dep     map[string][]string // from modules.dep, when the tree has one
}

// Module is one loadable module to put in the image.
type Module struct {
	Name    string
	Path    string // relative to the tree, as found (may end in .xz, .zst, .gz)
	Depends []string
}

// ModName normalises a module name the way the kernel does: dashes and
// underscores are the same.
func ModName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleName is the module name of a file name: "kernel/x/virtio-net.ko.xz"
// is virtio_net.
func moduleName(p string) (string, bool) {
	base := filepath.Base(p)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(base, ext) {
			return ModName(strings.TrimSuffix(base, ext)), true
		}
	}
	return "", false
}

// OpenModuleTree indexes the modules under dir (/lib/modules/VERSION). It
// reads modules.builtin, to know what needs no loading, and modules.dep if
// depmod has run (Debian's packages do not ship it; it is made at install
// time); without it, dependencies come from each module's own .modinfo.
func OpenModuleTree(dir string) (*ModuleTree, error) {
	t := &ModuleTree{Dir: dir, paths: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if name, ok := moduleName(p); ok {
			rel, _ := filepath.Rel(dir, p)
			t.paths[name] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			if name, ok := moduleName(l); ok {
				t.builtin[name] = true
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if f, err := os.Open(filepath.Join(dir, "modules.dep")); err == nil {
		defer f.Close()
		t.dep, err = parseModulesDep(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	return t, nil
}

// parseModulesDep reads depmod's modules.dep: "path: dep-path dep-path...".
// It returns each module's direct and indirect dependencies by name.
func parseModulesDep(r io.Reader) (map[string][]string, error) {
	m := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		mod, deps, ok := strings.Cut(line, ":")
		name, ok2 := moduleName(mod)
		if !ok || !ok2 {
			return nil, fmt.Errorf("line %d: %q is not \"module: dependencies\"", n, line)
		}
		var names []string
		for _, d := range strings.Fields(deps) {
			dn, ok := moduleName(d)
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not a module", n, d)
			}
			names = append(names, dn)
		}
		m[name] = names
	}
	return m, sc.Err()
}

// Builtin reports whether the kernel has the module built in.
func (t *ModuleTree) Builtin(name string) bool { return t.builtin[ModName(name)] }

// Resolve returns the modules to load for the given names, dependencies
// included, each after everything it depends on, and the names that are
// built into the kernel (nothing to load). A name that is neither a module
// nor built in is an error.
func (t *ModuleTree) Resolve(names []string) (mods []Module, builtin []string, err error) {
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(name string, from []string) error
	visit = func(name string, from []string) error {
		name = ModName(name)
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(from, " -> "), name)
		}
		if t.builtin[name] {
			state[name] = 2
			if len(from) == 0 {
				builtin = append(builtin, name)
			}
			return nil
		}
		rel, ok := t.paths[name]
		if !ok {
			if len(from) > 0 {
				return fmt.Errorf("module %s (needed by %s) is not in %s", name, from[len(from)-1], t.Dir)
			}
			return fmt.Errorf("module %s is neither built into the kernel nor in %s", name, t.Dir)
		}
		state[name] = 1
		deps, err := t.depends(name, rel)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(from, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		mods = append(mods, Module{Name: name, Path: rel, Depends: deps})
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, nil, err
		}
	}
	return mods, builtin, nil
}

func (t *ModuleTree) depends(name, rel string) ([]string, error) {
	if t.dep != nil {
		if d, ok := t.dep[name]; ok {
			return d, nil
		}
	}
	data, err := ReadModule(filepath.Join(t.Dir, rel))
	if err != nil {
		return nil, err
	}
	info, err := ModInfo(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	var deps []string
	for _, d := range info["depends"] {
		for _, n := range strings.Split(d, ",") {
			if n = strings.TrimSpace(n); n != "" {
				deps = append(deps, ModName(n))
			}
		}
	}
	return deps, nil
}

// ModInfo returns the key=value pairs of a module's .modinfo section
// (what modinfo(8) prints): "depends", "alias", "license", "vermagic"...
func ModInfo(ko []byte) (map[string][]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("not a kernel module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("not a kernel module: no .modinfo section")
	}
	b, err := sec.Data()
	if err != nil {
		return nil, err
	}
	return parseModInfo(b), nil
}

// parseModInfo splits a .modinfo section: NUL-separated "key=value" strings,
// possibly with NUL padding between them.
func parseModInfo(b []byte) map[string][]string {
	m := map[string][]string{}
	for _, s := range bytes.Split(b, []byte{0}) {
		k, v, ok := bytes.Cut(s, []byte("="))
		if !ok || len(k) == 0 {
			continue
		}
		m[string(k)] = append(m[string(k)], string(v))
	}
	return m
}

// ReadModule reads a module file, decompressing .ko.gz in Go and .ko.xz and
// .ko.zst with the xz and zstd tools: the appliance's init loads plain .ko
// files with finit_module(2), so decompression happens when the image is
// built.
func ReadModule(path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".xz"):
		return decompressWith(path, "xz", "xz-utils")
	case strings.HasSuffix(path, ".zst"):
		return decompressWith(path, "zstd", "zstd")
	}
	return nil, fmt.Errorf("%s: not a kernel module file name", path)
}

func decompressWith(path, tool, pkg string) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("%s: decompressing it needs %s (apt-get install %s)", path, tool, pkg)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tool, "-dc", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -dc %s: %w: %s", tool, path, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// sortedKeys is for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
