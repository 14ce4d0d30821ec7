// Command mkimage builds the Tachy appliance's kernel and initramfs:
//
//	go run ./image/cmd/mkimage [-tachy bin/tachy] [-config DIR] [-out build/image]
//
// It fetches Debian bookworm's kernel package with apt-get download (cached
// in -cache) and writes OUT/vmlinuz and OUT/initrd.img. `make image` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tachy-ha/tachy/image"
)

func main() {
	bin := flag.String("tachy", "bin/tachy", "the static tachy binary (make build)")
	conf := flag.String("config", "", "directory to install as /etc/tachy (tachy.conf, cluster.key); none: the appliance boots unconfigured")
	out := flag.String("out", "build/image", "output directory")
	cache := flag.String("cache", "build/cache", "where kernel packages are downloaded and unpacked")
	pkg := flag.String("kernel-package", "", "Debian kernel package (default: the newest linux-image-6.1.0-N-amd64-unsigned)")
	kdir := flag.String("kernel-dir", "", "use a kernel package already unpacked here (dpkg-deb -x) instead of fetching one")
	mods := flag.String("modules", strings.Join(image.DefaultModules, ","), "kernel modules to include (dependencies are added)")
	flag.Parse()
	if err := run(*bin, *conf, *out, *cache, *pkg, *kdir, *mods); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(bin, conf, out, cache, pkg, kdir, mods string) error {
	var k *image.Kernel
	var err error
	if kdir != "" {
		k, err = image.KernelFromDir(kdir)
	} else {
		k, err = image.FetchKernel(cache, pkg, os.Stderr)
	}
	if err != nil {
		return err
	}
	var names []string
	for _, m := range strings.Split(mods, ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, m)
		}
	}
	if names == nil {
		names = []string{}
	}
	res, err := image.Build(image.Options{Binary: bin, Kernel: k, Modules: names, ConfigDir: conf, OutDir: out})
	if err != nil {
		return err
	}
	var loaded []string
	for _, m := range res.Modules {
		loaded = append(loaded, m.Name)
	}
	fmt.Printf("kernel   %s (%s)\n", k.Version, k.Package)
	fmt.Printf("modules  %s\n", strings.Join(loaded, " "))
	if len(res.Builtin) > 0 {
		fmt.Printf("built in %s\n", strings.Join(res.Builtin, " "))
	}
	if conf != "" {
		fmt.Printf("config   %s -> %s\n", conf, image.ConfigDir)
	}
	fmt.Printf("%-40s %6.1f MB\n", res.Vmlinuz, float64(res.VmlinuzSize)/1e6)
	fmt.Printf("%-40s %6.1f MB\n", res.Initrd, float64(res.InitrdSize)/1e6)
	return nil
}
