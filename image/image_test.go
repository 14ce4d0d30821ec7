package image

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseModInfo(t *testing.T) {
	b := []byte("license=GPL\x00\x00\x00alias=virtio:d00000001v*\x00alias=pci:v1AF4\x00depends=virtio_ring,virtio\x00noequals\x00=x\x00vermagic=6.1.0 SMP\x00")
	got := parseModInfo(b)
	want := map[string][]string{"license": {"GPL"}, "alias": {"virtio:d00000001v*", "pci:v1AF4"}, "depends": {"virtio_ring,virtio"}, "vermagic": {"6.1.0 SMP"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if _, err := ModInfo([]byte("not an ELF file")); err == nil {
		t.Fatal("ModInfo accepted garbage")
	}
	if _, err := ModInfo(minimalELF()); err == nil || !strings.Contains(err.Error(), ".modinfo") {
		t.Fatalf("ELF without .modinfo: %v", err)
	}
}

func TestParseModulesDep(t *testing.T) {
	m, err := parseModulesDep(strings.NewReader("kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\nkernel/drivers/block/nbd.ko:\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"virtio_net": {"net_failover", "failover"}, "nbd": nil}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for _, bad := range []string{"no colon here\n", "kernel/a.ko: notamodule\n", "README: kernel/a.ko\n"} {
		if _, err := parseModulesDep(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeTree makes a module tree with a modules.dep (so that the .ko files
// need not be real ELF modules) and a modules.builtin.
func fakeTree(t *testing.T, dep string, builtin ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib/modules/6.1.0-99-amd64")
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, _, _ := strings.Cut(line, ":")
		p := filepath.Join(dir, mod)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("module "+filepath.Base(mod)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	var b strings.Builder
	for _, m := range builtin {
		b.WriteString("kernel/" + m + ".ko\n")
	}
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(b.String()), 0o644)
	return dir
}

const testDep = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko kernel/drivers/net/net_failover.ko
kernel/drivers/block/nbd.ko:
kernel/drivers/watchdog/i6300esb.ko:
`

func names(mods []Module) []string {
	var s []string
	for _, m := range mods {
		s = append(s, m.Name)
	}
	return s
}

func TestResolve(t *testing.T) {
	tree, err := OpenModuleTree(fakeTree(t, testDep, "drivers/net/veth", "drivers/block/virtio_blk"))
	if err != nil {
		t.Fatal(err)
	}
	mods, builtin, err := tree.Resolve([]string{"virtio-net", "virtio_pci", "veth", "nbd", "virtio_blk", "nbd"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_ring", "virtio", "failover", "net_failover", "virtio_net", "virtio_pci", "nbd"}
	if got := names(mods); !reflect.DeepEqual(got, want) {
		t.Errorf("load order %v, want %v", got, want)
	}
	if !reflect.DeepEqual(builtin, []string{"veth", "virtio_blk"}) {
		t.Errorf("built in: %v", builtin)
	}
	if mods[4].Path != "kernel/drivers/net/virtio_net.ko" {
		t.Errorf("virtio_net path %q", mods[4].Path)
	}
	if _, _, err := tree.Resolve([]string{"e1000"}); err == nil || !strings.Contains(err.Error(), "neither built into the kernel nor in") {
		t.Errorf("unknown module: %v", err)
	}

	// A missing dependency and a cycle are errors that name the culprits.
	tree, _ = OpenModuleTree(fakeTree(t, "kernel/a.ko: kernel/b.ko\nkernel/c.ko: kernel/d.ko\nkernel/d.ko: kernel/c.ko\n"))
	os.Remove(filepath.Join(tree.Dir, "kernel/b.ko"))
	tree, _ = OpenModuleTree(tree.Dir)
	if _, _, err := tree.Resolve([]string{"a"}); err == nil || !strings.Contains(err.Error(), "module b (needed by a)") {
		t.Errorf("missing dependency: %v", err)
	}
	if _, _, err := tree.Resolve([]string{"c"}); err == nil || !strings.Contains(err.Error(), "cycle: c -> d -> c") {
		t.Errorf("cycle: %v", err)
	}
}

// TestRealKernelModules checks modinfo-based resolution against a real
// Debian kernel, when one has been fetched into build/cache (make image).
func TestRealKernelModules(t *testing.T) {
	k := cachedKernel(t)
	tree, err := OpenModuleTree(k.ModDir)
	if err != nil {
		t.Fatal(err)
	}
	if tree.dep != nil {
		t.Log("the tree has a modules.dep; .modinfo resolution is not exercised")
	}
	mods, _, err := tree.Resolve(DefaultModules)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	for _, m := range mods {
		for _, d := range m.Depends {
			if p, ok := pos[d]; ok && p > pos[m.Name] {
				t.Errorf("%s comes before its dependency %s", m.Name, d)
			} else if !ok && !tree.Builtin(d) {
				t.Errorf("%s depends on %s, which is neither loaded nor built in", m.Name, d)
			}
		}
	}
	for _, want := range []string{"virtio_net", "nbd", "i6300esb", "net_failover"} {
		if _, ok := pos[want]; !ok {
			t.Errorf("%s missing from %v", want, names(mods))
		}
	}
}

func cachedKernel(t *testing.T) *Kernel {
	t.Helper()
	dir := newestCached(filepath.Join("..", "build", "cache"))
	if dir == "" {
		t.Skip("no kernel in build/cache (make image fetches one)")
	}
	k, err := KernelFromDir(filepath.Join("..", "build", "cache", dir))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// minimalELF is a valid ELF header without program headers: a "static
// binary" as far as Build's check goes.
func minimalELF() []byte {
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: 1, Ehsize: 64}
	copy(h.Ident[:], "\x7fELF\x02\x01\x01")
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, h)
	return b.Bytes()
}

func TestBuild(t *testing.T) {
	modDir := fakeTree(t, testDep, "drivers/net/veth")
	kdir := filepath.Dir(filepath.Dir(filepath.Dir(modDir)))
	os.MkdirAll(filepath.Join(kdir, "boot"), 0o755)
	os.WriteFile(filepath.Join(kdir, "boot/vmlinuz-6.1.0-99-amd64"), []byte("kernel"), 0o644)
	k, err := KernelFromDir(kdir)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "tachy")
	os.WriteFile(bin, minimalELF(), 0o755)
	conf := filepath.Join(tmp, "conf")
	os.MkdirAll(filepath.Join(conf, "sub"), 0o755)
	os.WriteFile(filepath.Join(conf, "tachy.conf"), []byte("[cluster]\n"), 0o644)
	os.WriteFile(filepath.Join(conf, "cluster.key"), []byte("00\n"), 0o600)
	os.WriteFile(filepath.Join(conf, "sub/x"), []byte("x"), 0o640)

	out := filepath.Join(tmp, "out")
	res, err := Build(Options{Binary: bin, Kernel: k, Modules: []string{"virtio_pci", "nbd", "veth"}, ConfigDir: conf, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res.Modules); !reflect.DeepEqual(got, []string{"virtio_ring", "virtio", "virtio_pci", "nbd"}) {
		t.Errorf("modules %v", got)
	}
	if !reflect.DeepEqual(res.Builtin, []string{"veth"}) {
		t.Errorf("built in %v", res.Builtin)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "vmlinuz")); string(b) != "kernel" {
		t.Errorf("vmlinuz holds %q", b)
	}
	f, err := os.Open(filepath.Join(out, "initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]entry{}
	var order []string
	for _, e := range readNewc(t, raw) {
		got[e.name] = e
		order = append(order, e.name)
	}
	check := func(name string, mode uint32, data string) {
		t.Helper()
		e, ok := got[name]
		if !ok {
			t.Errorf("%s missing; archive: %v", name, order)
			return
		}
		if e.mode != mode || (data != "*" && string(e.data) != data) {
			t.Errorf("%s: mode %o data %q, want %o %q", name, e.mode, e.data, mode, data)
		}
	}
	check("init", 0o120777, "bin/tachy")
	check("bin/tachy", 0o100755, string(minimalELF()))
	check("dev/console", 0o20600, "")
	check("tmp", 0o41777, "")
	check("etc/tachy", 0o40700, "")
	check("etc/tachy/tachy.conf", 0o100644, "[cluster]\n")
	check("etc/tachy/cluster.key", 0o100600, "00\n")
	check("etc/tachy/sub", 0o40755, "")
	check("etc/tachy/sub/x", 0o100640, "x")
	check("lib/modules/6.1.0-99-amd64/kernel/drivers/virtio/virtio_pci.ko", 0o100644, "module virtio_pci.ko")
	check("lib/modules/tachy.load", 0o100644, "/lib/modules/6.1.0-99-amd64/kernel/drivers/virtio/virtio_ring.ko\n"+
		"/lib/modules/6.1.0-99-amd64/kernel/drivers/virtio/virtio.ko\n"+
		"/lib/modules/6.1.0-99-amd64/kernel/drivers/virtio/virtio_pci.ko\n"+
		"/lib/modules/6.1.0-99-amd64/kernel/drivers/block/nbd.ko\n")
	check("etc/tachy-release", 0o100644, "*")
	// Every entry's parent directory comes before it.
	seen := map[string]bool{}
	for _, n := range order {
		if d := filepath.Dir(n); d != "." && !seen[d] {
			t.Errorf("%s comes before its directory %s", n, d)
		}
		seen[n] = true
	}

	// A dynamically linked binary is refused.
	dyn := minimalELF()
	binary.LittleEndian.PutUint64(dyn[32:], 64) // phoff
	binary.LittleEndian.PutUint16(dyn[54:], 56) // phentsize
	binary.LittleEndian.PutUint16(dyn[56:], 1)  // phnum
	ph := elf.Prog64{Type: uint32(elf.PT_INTERP)}
	var pb bytes.Buffer
	binary.Write(&pb, binary.LittleEndian, ph)
	os.WriteFile(bin, append(dyn, pb.Bytes()...), 0o755)
	if _, err := Build(Options{Binary: bin, Kernel: k, Modules: []string{}, OutDir: out}); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("dynamic binary: %v", err)
	}
}

func TestParseCmdline(t *testing.T) {
	p, err := ParseCmdline(`BOOT_IMAGE=/vmlinuz console=ttyS0 panic=-1 quiet tachy.node=n1 "tachy.addr=eth0=10.77.0.1/24,eth1=fd00:1::1/64" tachy.addr=eth0=10.77.9.1/16 tachy.test=poweroff-when-ready -- tachy.bogus=1` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Node != "n1" || p.Test != TestPoweroffWhenReady || p.Config != "/etc/tachy/tachy.conf" {
		t.Errorf("%+v", p)
	}
	var addrs []string
	for _, a := range p.Addrs {
		addrs = append(addrs, a.Iface+"="+a.Prefix.String())
	}
	if want := []string{"eth0=10.77.0.1/24", "eth1=fd00:1::1/64", "eth0=10.77.9.1/16"}; !reflect.DeepEqual(addrs, want) {
		t.Errorf("addrs %v", addrs)
	}
	if want := []string{"BOOT_IMAGE=/vmlinuz", "console=ttyS0", "panic=-1", "quiet"}; !reflect.DeepEqual(p.Other, want) {
		t.Errorf("other %v", p.Other)
	}
	p, err = ParseCmdline("tachy.config=/etc/tachy/other.conf")
	if err != nil || p.Config != "/etc/tachy/other.conf" {
		t.Errorf("config: %+v %v", p, err)
	}
	for _, bad := range []string{
		"tachy.node=N1", "tachy.node=", "tachy.node", "tachy.addr=eth0", "tachy.addr=eth0=10.77.0.1",
		"tachy.addr=eth0=10.77.0.300/24", "tachy.addr==10.0.0.1/8", "tachy.config=rel/path",
		"tachy.test=explode", "tachy.nod=n1",
	} {
		if _, err := ParseCmdline("console=ttyS0 " + bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err = ParseCmdline("tachy.nod=n1 tachy.addr=x")
	if err == nil || !strings.Contains(err.Error(), "unknown key") || !strings.Contains(err.Error(), "INTERFACE=ADDRESS/PREFIXLEN") {
		t.Errorf("all problems at once: %v", err)
	}
}
