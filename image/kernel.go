package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Kernel is an unpacked Debian kernel package.
type Kernel struct {
	Package string // e.g. linux-image-6.1.0-56-amd64-unsigned
	Version string // e.g. 6.1.0-56-amd64
	Vmlinuz string // path of the kernel image
	ModDir  string // path of lib/modules/VERSION
}

// kernelPackages matches Debian bookworm's generic 6.1 kernels. The generic
// flavour, not the cloud one: only it has the i6300esb watchdog driver.
// (-unsigned: the same kernel without the Secure Boot signature, which a
// direct -kernel boot does not need.)
var kernelPackages = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^linux-image-6\.1\.0-([0-9]+)-amd64-unsigned$`) })

// KernelFromDir describes a kernel package already unpacked in dir (with
// dpkg-deb -x): dir/boot/vmlinuz-VERSION and dir/lib/modules/VERSION.
func KernelFromDir(dir string) (*Kernel, error) {
	vms, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(vms) != 1 {
		return nil, fmt.Errorf("%s: want exactly one boot/vmlinuz-*, found %d", dir, len(vms))
	}
	ver := strings.TrimPrefix(filepath.Base(vms[0]), "vmlinuz-")
	k := &Kernel{Package: filepath.Base(dir), Version: ver, Vmlinuz: vms[0], ModDir: filepath.Join(dir, "lib", "modules", ver)}
	if _, err := os.Stat(k.ModDir); err != nil {
		return nil, fmt.Errorf("%s: no modules for %s: %w", dir, ver, err)
	}
	return k, nil
}

// FetchKernel returns the kernel package pkg, unpacked under cacheDir,
// downloading it with apt-get download and unpacking it with dpkg-deb -x the
// first time. With pkg empty it picks the newest linux-image-6.1.0-N-amd64
// the apt sources offer (running apt-get update if they offer none), or,
// when apt knows of none (offline), the newest one already in the cache.
// Progress goes to log.
func FetchKernel(cacheDir, pkg string, log io.Writer) (*Kernel, error) {
	// apt-get and dpkg-deb run in a directory of their own: paths
	// handed to them must not be relative.
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	if pkg == "" {
		var err error
		pkg, err = newestKernelPackage(log)
		if err != nil {
			if cached := newestCached(cacheDir); cached != "" {
				fmt.Fprintf(log, "mkimage: %v; using %s from the cache\n", err, cached)
				pkg = cached
			} else {
				return nil, err
			}
		}
	}
	dir := filepath.Join(cacheDir, pkg)
	if k, err := KernelFromDir(dir); err == nil {
		return k, nil
	}
	fmt.Fprintf(log, "mkimage: downloading %s into %s\n", pkg, cacheDir)
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := run(tmp, "apt-get", "download", "-q", pkg); err != nil {
		return nil, fmt.Errorf("%w (is %s in the apt sources? try apt-get update)", err, pkg)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	unpacked := filepath.Join(tmp, "root")
	if err := run(tmp, "dpkg-deb", "-x", debs[0], unpacked); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(unpacked, dir); err != nil {
		return nil, err
	}
	return KernelFromDir(dir)
}

func newestKernelPackage(log io.Writer) (string, error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", errors.New("no apt-cache: the kernel comes from Debian's archive (or give -kernel-dir)")
	}
	search := func() (string, error) {
		out, err := exec.Command("apt-cache", "search", "--names-only", `^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$`).Output()
		if err != nil {
			return "", fmt.Errorf("apt-cache search: %w", err)
		}
		best, bestN := "", -1
		for _, l := range strings.Split(string(out), "\n") {
			name, _, _ := strings.Cut(l, " ")
			if m := kernelPackages().FindStringSubmatch(name); m != nil {
				if n, _ := strconv.Atoi(m[1]); n > bestN {
					best, bestN = name, n
				}
			}
		}
		return best, nil
	}
	pkg, err := search()
	if err != nil {
		return "", err
	}
	if pkg == "" {
		fmt.Fprintln(log, "mkimage: no linux-image-6.1.0-N-amd64-unsigned known to apt; running apt-get update")
		if err := run("", "apt-get", "update", "-q"); err != nil {
			return "", err
		}
		if pkg, err = search(); err != nil {
			return "", err
		}
	}
	if pkg == "" {
		return "", errors.New("the apt sources have no linux-image-6.1.0-N-amd64-unsigned (Debian bookworm's kernel)")
	}
	return pkg, nil
}

func newestCached(cacheDir string) string {
	ents, _ := os.ReadDir(cacheDir)
	var names []string
	for _, e := range ents {
		if kernelPackages().MatchString(e.Name()) {
			if _, err := KernelFromDir(filepath.Join(cacheDir, e.Name())); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := strconv.Atoi(kernelPackages().FindStringSubmatch(names[i])[1])
		b, _ := strconv.Atoi(kernelPackages().FindStringSubmatch(names[j])[1])
		return a < b
	})
	if len(names) == 0 {
		return ""
	}
	return names[len(names)-1]
}

func run(dir, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
