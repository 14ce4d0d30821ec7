// Command mkimage builds the Tachy appliance's kernel and initramfs:
//
//	go run ./image/cmd/mkimage [-tachy bin/tachy] [-config DIR] [-out build/image]
//
// It fetches Debian bookworm's kernel package with apt-get download (cached
// in -cache) and writes OUT/vmlinuz and OUT/initrd.img, and with -disk the
// bootable UEFI disk image OUT/disk.img (the appliance as one EFI program,
// and the persistent data partition). `make image` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
	disk := flag.Bool("disk", false, "also write OUT/disk.img: a GPT disk that UEFI firmware boots, with the persistent data partition")
	params := flag.String("node-params", "", `the node's identity on the data partition, e.g. "tachy.node=n1 tachy.addr=eth0=10.0.0.1/24" (default: none; give it on each disk)`)
	dataMB := flag.Int("data-size", 256, "size of the data partition, MiB")
	flag.Parse()
	if err := run(*bin, *conf, *out, *cache, *pkg, *kdir, *mods); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	if !*disk {
		return
	}
	o := image.DiskOptions{Vmlinuz: filepath.Join(*out, "vmlinuz"), Initrd: filepath.Join(*out, "initrd.img"),
		Cmdline: image.DiskCmdline, BootParams: *params, DataSize: int64(*dataMB) << 20, Out: filepath.Join(*out, "disk.img")}
	if err := image.BuildDisk(o); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	if st, err := os.Stat(o.Out); err == nil {
		fmt.Printf("%-40s %6.1f MB (UEFI; data partition %d MiB)\n", o.Out, float64(st.Size())/1e6, *dataMB)
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
