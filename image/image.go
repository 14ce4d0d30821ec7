// Package image builds the Tachy appliance: Debian's kernel and an initramfs
// whose /init is the static tachy binary (`tachy init`), with the kernel
// modules the appliance needs and, optionally, its configuration.
//
// disk.go builds the bootable UEFI disk image with the persistent data
// partition.
package image

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Options for Build.
type Options struct {
	Binary    string   // the static tachy binary
	Kernel    *Kernel  // from FetchKernel or KernelFromDir
	Modules   []string // module names; nil means DefaultModules
	ConfigDir string   // copied to /etc/tachy when not empty
	OutDir    string   // receives vmlinuz and initrd.img
}

// Result says what Build made.
type Result struct {
	Vmlinuz, Initrd string
	Modules         []Module // in load order
	Builtin         []string // requested but built into the kernel
	InitrdSize      int64
	VmlinuzSize     int64
}

// Build writes OutDir/vmlinuz (a copy of the kernel) and OutDir/initrd.img
// (a gzip-compressed newc cpio archive).
func Build(o Options) (*Result, error) {
	if o.Kernel == nil {
		return nil, errors.New("image: no kernel")
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("tachy binary: %w (make build makes it)", err)
	}
	if err := checkStatic(bin); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Binary, err)
	}
	tree, err := OpenModuleTree(o.Kernel.ModDir)
	if err != nil {
		return nil, err
	}
	names := o.Modules
	if names == nil {
		names = DefaultModules
	}
	mods, builtin, err := tree.Resolve(names)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{Vmlinuz: filepath.Join(o.OutDir, "vmlinuz"), Initrd: filepath.Join(o.OutDir, "initrd.img"), Modules: mods, Builtin: builtin}

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err := writeInitramfs(zw, bin, o, tree, mods); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(res.Initrd, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	res.InitrdSize = int64(buf.Len())
	k, err := os.ReadFile(o.Kernel.Vmlinuz)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(res.Vmlinuz, k, 0o644); err != nil {
		return nil, err
	}
	res.VmlinuzSize = int64(len(k))
	return res, nil
}

// writeInitramfs writes the uncompressed archive: the directories init
// mounts on, /dev/console (the kernel opens it for init's stdin, stdout and
// stderr before /dev is mounted), /bin/tachy with /init linking to it, the
// modules and their load list, and the configuration.
func writeInitramfs(w io.Writer, bin []byte, o Options, tree *ModuleTree, mods []Module) error {
	c := NewCPIOWriter(w)
	dirs := map[string]fs.FileMode{}
	addDirs := func(p string, perm fs.FileMode) {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = perm
			}
		}
	}
	type file struct {
		data []byte
		perm fs.FileMode
	}
	files := map[string]file{}
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "run", "tmp", "root", "var", "var/lib", "lib", "lib/modules"} {
		dirs[d] = 0o755
	}
	dirs["tmp"], dirs["root"] = 0o777|fs.ModeSticky, 0o700
	files["bin/tachy"] = file{bin, 0o755}
	var load strings.Builder
	for _, m := range mods {
		data, err := ReadModule(filepath.Join(tree.Dir, m.Path))
		if err != nil {
			return err
		}
		rel := m.Path
		for _, ext := range []string{".xz", ".zst", ".gz"} {
			rel = strings.TrimSuffix(rel, ext)
		}
		p := path.Join("lib/modules", filepath.Base(tree.Dir), filepath.ToSlash(rel))
		addDirs(p, 0o755)
		files[p] = file{data, 0o644}
		fmt.Fprintf(&load, "/%s\n", p)
	}
	files[strings.TrimPrefix(ModuleLoadList, "/")] = file{[]byte(load.String()), 0o644}
	release := fmt.Sprintf("kernel=%s\npackage=%s\nmodules=%d\n", filepath.Base(tree.Dir), o.Kernel.Package, len(mods))
	files[strings.TrimPrefix(ReleaseFile, "/")] = file{[]byte(release), 0o644}
	if o.ConfigDir != "" {
		root := strings.TrimPrefix(ConfigDir, "/")
		dirs[root] = 0o700
		err := filepath.WalkDir(o.ConfigDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(o.ConfigDir, p)
			if rel == "." {
				return nil
			}
			dst := path.Join(root, filepath.ToSlash(rel))
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
				dirs[dst] = info.Mode().Perm()
			case info.Mode().IsRegular():
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				// Modes are kept: the daemon refuses a key file others may read.
				files[dst] = file{data, info.Mode().Perm()}
			default:
				return fmt.Errorf("%s: only files and directories can go into the image", p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("configuration directory: %w", err)
		}
	}
	for _, d := range sortedKeys(dirs) {
		if err := c.Dir(d, dirs[d]); err != nil {
			return err
		}
	}
	if err := c.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := c.Symlink("init", "bin/tachy"); err != nil {
		return err
	}
	for _, f := range sortedKeys(files) {
		if err := c.File(f, files[f].perm, files[f].data); err != nil {
			return err
		}
	}
	return c.Close()
}

// checkStatic refuses a binary that needs a dynamic loader: the initramfs
// has no libraries.
func checkStatic(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked; the initramfs has no libraries: build it with CGO_ENABLED=0 (make build)")
		}
	}
	return nil
}

func writeFileAtomic(p string, data []byte, perm fs.FileMode) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
