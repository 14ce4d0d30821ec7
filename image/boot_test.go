package image

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/config"
)

// The boot tests build the appliance and boot it in QEMU (TCG: no KVM
// needed). They take tens of seconds, so they run only with
// TACHY_IMAGE_TEST=1, as root (apt-get download for the kernel):
//
//	TACHY_IMAGE_TEST=1 go test -count=1 -run Boot -v ./image

const bootTimeout = 120 * time.Second

func needBoot(t *testing.T) {
	t.Helper()
	if os.Getenv("TACHY_IMAGE_TEST") != "1" {
		t.Skip("boots QEMU VMs: set TACHY_IMAGE_TEST=1")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("no qemu-system-x86_64 (scripts/deps.sh --image installs it)")
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildImage builds a static tachy from this tree and an image with it,
// holding confDir (if not empty) as /etc/tachy.
func buildImage(t *testing.T, confDir string) *Result {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tachy-image-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tachy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tachy")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	k, err := FetchKernel(filepath.Join("..", "build", "cache"), "", testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(Options{Binary: binPath, Kernel: k, ConfigDir: confDir, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image: kernel %s, vmlinuz %.1f MB, initrd %.1f MB, %d modules", k.Version,
		float64(res.VmlinuzSize)/1e6, float64(res.InitrdSize)/1e6, len(res.Modules))
	return res
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// vm is one QEMU process and its serial console.
type vm struct {
	name    string
	cmd     *exec.Cmd
	start   time.Time
	mu      sync.Mutex
	console []string
	lines   chan string
	exited  chan struct{}
	stdin   io.WriteCloser // the serial console's input
}

func boot(t *testing.T, name string, img *Result, cmdline string, qemuArgs ...string) *vm {
	t.Helper()
	args := []string{"-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
		"-kernel", img.Vmlinuz, "-initrd", img.Initrd,
		"-append", "console=ttyS0 panic=-1 " + cmdline}
	return startQEMU(t, name, append(args, qemuArgs...))
}

// startQEMU runs QEMU with args, the serial console on its stdio.
func startQEMU(t *testing.T, name string, args []string) *vm {
	t.Helper()
	v := &vm{name: name, lines: make(chan string, 10000), exited: make(chan struct{})}
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	pr, pw := io.Pipe()
	v.cmd.Stdout, v.cmd.Stderr = pw, pw
	var err error
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		v.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(v.exited)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), "\r")
			v.mu.Lock()
			v.console = append(v.console, l)
			v.mu.Unlock()
			select {
			case v.lines <- l:
			default:
			}
		}
		close(v.lines)
	}()
	t.Cleanup(func() {
		if v.cmd.ProcessState == nil {
			v.cmd.Process.Kill()
		}
		<-v.exited
		if t.Failed() || testing.Verbose() {
			v.mu.Lock()
			t.Logf("%s console:\n%s", name, strings.Join(v.console, "\n"))
			v.mu.Unlock()
		}
	})
	return v
}

// waitFor reads the console until a line contains want, and returns the
// time since the VM started.
func (v *vm) waitFor(t *testing.T, ctx context.Context, want string) time.Duration {
	t.Helper()
	for {
		select {
		case l, ok := <-v.lines:
			if !ok {
				t.Fatalf("%s: the VM ended before printing %q", v.name, want)
			}
			if strings.Contains(l, want) {
				return time.Since(v.start)
			}
			if strings.Contains(l, "tachy: fatal:") || strings.Contains(l, "Kernel panic") {
				t.Fatalf("%s: %s", v.name, l)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %q on the console within %v", v.name, want, bootTimeout)
		}
	}
}

// waitExit waits for the VM to power itself off.
func (v *vm) waitExit(t *testing.T, ctx context.Context) {
	t.Helper()
	for range v.lines {
	}
	select {
	case <-v.exited:
	case <-ctx.Done():
		t.Fatalf("%s: did not power off", v.name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if last := v.console[len(v.console)-1]; !strings.Contains(last, "reboot: Power down") {
		t.Errorf("%s: last console line %q, want the kernel's power-down", v.name, last)
	}
}

func TestBootUnconfigured(t *testing.T) {
	needBoot(t)
	img := buildImage(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	v := boot(t, "vm", img, "quiet tachy.node=n1 tachy.test=poweroff-when-ready", "-nic", "none")
	v.waitFor(t, ctx, fmt.Sprintf("tachy: loaded %d kernel modules", len(img.Modules)))
	d := v.waitFor(t, ctx, "tachy: ready (no configuration)")
	t.Logf("ready %.1f s after QEMU started", d.Seconds())
	v.waitExit(t, ctx)
}

// twoNodeConfig writes a two-node, two-link cluster's configuration. The
// heartbeat is slower than the default: QEMU without KVM emulates every
// instruction, and a 2ms x 4 detection time would see false failures.
func twoNodeConfig(t *testing.T) string {
	dir := t.TempDir()
	key, err := config.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteKey(filepath.Join(dir, "cluster.key"), key); err != nil {
		t.Fatal(err)
	}
	conf := `[cluster]
name = "vmlab"
id = 7717
key_file = "cluster.key"

[heartbeat]
interval = "20ms"
miss_count = 10

[quorum]
two_node = true

[[node]]
name = "n1"
id = 1
addresses = ["10.77.0.1", "10.77.1.1"]

[[node]]
name = "n2"
id = 2
addresses = ["10.77.0.2", "10.77.1.2"]
`
	p := filepath.Join(dir, "tachy.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The CIB's CA and node certificates, as tachy cluster init makes
	// them (in /etc/tachy/pki, the default cib.pki_dir).
	if err := replica.InitPKI(filepath.Join(dir, "pki"), "vmlab", []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(p); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freeUDPPorts returns n distinct UDP ports free on 127.0.0.1 right now.
func freeUDPPorts(t *testing.T, n int) []int {
	var ports []int
	var conns []net.PacketConn
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

// nics gives node i (1 or 2) one virtio NIC per link, each a UDP tunnel
// to the same link of the other node: -netdev socket,udp=PEER,localaddr=SELF.
func nics(i int, ports []int) []string {
	var a []string
	for link := range 2 {
		self, peer := ports[2*link+i-1], ports[2*link+2-i]
		a = append(a,
			"-netdev", fmt.Sprintf("socket,id=l%d,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", link, peer, self),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=l%d,mac=52:54:00:77:%02x:%02x,romfile=", link, link, i))
	}
	return a
}

func addrs(i int) string {
	return fmt.Sprintf("tachy.node=n%d tachy.addr=eth0=10.77.0.%d/24,eth1=10.77.1.%d/24", i, i, i)
}

// TestBootNode boots one configured node (its peer absent): the daemon
// starts, its control socket answers, and `status` typed on the console
// shows it; `poweroff` ends it.
func TestBootNode(t *testing.T) {
	needBoot(t)
	img := buildImage(t, twoNodeConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	v := boot(t, "n1", img, addrs(1)+" quiet", nics(1, freeUDPPorts(t, 4))...)
	d := v.waitFor(t, ctx, "tachy: node n1 ready")
	t.Logf("node n1 ready %.1f s after QEMU started", d.Seconds())
	fmt.Fprintf(v.stdin, "status\n")
	v.waitFor(t, ctx, "Cluster vmlab (id 7717), node n1 (id 1)")
	v.waitFor(t, ctx, "Quorum: NOT quorate: waiting for all 2 configured nodes")
	fmt.Fprintf(v.stdin, "poweroff\n")
	v.waitExit(t, ctx)
}

// TestBootTwoNodes boots two nodes connected on two links: each must see
// the other up, then both power off.
func TestBootTwoNodes(t *testing.T) {
	needBoot(t)
	img := buildImage(t, twoNodeConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	ports := freeUDPPorts(t, 4)
	vms := []*vm{
		boot(t, "n1", img, addrs(1)+" quiet tachy.test=poweroff-when-peers-up", nics(1, ports)...),
		boot(t, "n2", img, addrs(2)+" quiet tachy.test=poweroff-when-peers-up", nics(2, ports)...),
	}
	// Consoles are buffered: waiting on one VM loses nothing of the other's.
	for i, v := range vms {
		v.waitFor(t, ctx, fmt.Sprintf("tachy: node n%d ready", i+1))
	}
	for i, v := range vms {
		peer := fmt.Sprintf("n%d", 2-i)
		d := v.waitFor(t, ctx, "tachy: peer "+peer+" up")
		t.Logf("%s: peer %s up %.1f s after QEMU started", v.name, peer, d.Seconds())
	}
	for _, v := range vms {
		v.waitExit(t, ctx)
	}
}

// TestBootWatchdogSelfFence boots two nodes that need each other for
// quorum, with the i6300esb watchdog (QEMU powers the VM off when it
// fires). While both run, n1 feeds its watchdog (it outlives several
// timeouts); once n2 is gone, n1 has lost quorum, stops feeding it, and is
// reset by the hardware, the daemon having no say in it.
func TestBootWatchdogSelfFence(t *testing.T) {
	needBoot(t)
	dir := twoNodeConfig(t)
	conf := filepath.Join(dir, "tachy.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "two_node = true", "two_node = false", 1)
	s = strings.Replace(s, "[heartbeat]", "[local]\nwatchdog = \"/dev/watchdog\"\nwatchdog_timeout = \"3s\"\n\n[heartbeat]", 1)
	if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(conf); err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*bootTimeout)
	defer cancel()
	ports := freeUDPPorts(t, 4)
	wd := []string{"-device", "i6300esb", "-action", "watchdog=poweroff"}
	n1 := boot(t, "n1", img, addrs(1), append(nics(1, ports), wd...)...)
	n2 := boot(t, "n2", img, addrs(2), append(nics(2, ports), wd...)...)
	n1.waitFor(t, ctx, "watchdog armed")
	n1.waitFor(t, ctx, "tachy: peer n2 up")
	// Fed: n1 lives through three watchdog timeouts with quorum.
	select {
	case <-n1.exited:
		t.Fatal("n1 was reset while quorate: its watchdog was not fed")
	case <-time.After(9 * time.Second):
	}
	n2.cmd.Process.Kill()
	lost := time.Now()
	n1.waitFor(t, ctx, "self-fencing")
	select {
	case <-n1.exited:
		t.Logf("n1 reset by its watchdog %.1f s after n2 was killed", time.Since(lost).Seconds())
	case <-ctx.Done():
		t.Fatal("n1 lost quorum but its watchdog did not reset it")
	}
}

// TestBootDisk builds the UEFI disk image (the appliance as one EFI
// program, and the data partition holding the node's identity) and boots
// it with OVMF: the node comes up ready; a CIB change made before a
// reboot is still there after it, read from the data partition.
func TestBootDisk(t *testing.T) {
	needBoot(t)
	const ovmf = "/usr/share/OVMF/OVMF_CODE.fd"
	if _, err := os.Stat(ovmf); err != nil {
		t.Skip("no OVMF (scripts/deps.sh --image installs it)")
	}
	dir := t.TempDir()
	key, _ := config.GenerateKey()
	config.WriteKey(filepath.Join(dir, "cluster.key"), key)
	conf := "[cluster]\nname = \"one\"\nid = 9\nkey_file = \"cluster.key\"\n\n[[node]]\nname = \"n1\"\nid = 1\naddresses = [\"10.77.0.1\"]\n"
	os.WriteFile(filepath.Join(dir, "tachy.conf"), []byte(conf), 0o644)
	if err := replica.InitPKI(filepath.Join(dir, "pki"), "one", []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, dir)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := BuildDisk(DiskOptions{Vmlinuz: img.Vmlinuz, Initrd: img.Initrd, Cmdline: DiskCmdline,
		BootParams: "tachy.node=n1 tachy.addr=eth0=10.77.0.1/24", Out: disk}); err != nil {
		t.Fatal(err)
	}
	names, err := readGPTNames(disk)
	if err != nil || len(names) != 2 || names[1] != DataPartitionName {
		t.Fatalf("the disk's partitions: %v %v", names, err)
	}
	vars := filepath.Join(t.TempDir(), "vars.fd")
	b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS.fd")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(vars, b, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 3*bootTimeout)
	defer cancel()
	v := startQEMU(t, "n1", []string{"-accel", "tcg", "-m", "512", "-nographic",
		"-drive", "if=pflash,format=raw,readonly=on,file=" + ovmf, "-drive", "if=pflash,format=raw,file=" + vars,
		"-drive", "file=" + disk + ",if=virtio,format=raw", "-nic", "user,model=virtio-net-pci"})
	v.waitFor(t, ctx, "data partition "+DataPartitionName)
	d := v.waitFor(t, ctx, "tachy: node n1 ready")
	t.Logf("UEFI boot to a ready node: %.1f s after QEMU started", d.Seconds())
	fmt.Fprintf(v.stdin, "property set persisted=yes\n")
	v.waitFor(t, ctx, "persisted")
	fmt.Fprintf(v.stdin, "reboot\n")
	start := time.Now()
	v.waitFor(t, ctx, "tachy: node n1 ready")
	t.Logf("ready again %.1f s after the reboot", time.Since(start).Seconds())
	for i := 0; ; i++ {
		fmt.Fprintf(v.stdin, "property list\n")
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		found := v.waitForOK(lctx, "persisted: yes")
		lcancel()
		if found {
			break
		}
		if i == 10 {
			t.Fatal("after the reboot, the CIB lost the property set before it")
		}
	}
	fmt.Fprintf(v.stdin, "poweroff\n")
	v.waitExit(t, ctx)
}

// waitForOK is waitFor that reports a timeout instead of failing.
func (v *vm) waitForOK(ctx context.Context, want string) bool {
	for {
		select {
		case l, ok := <-v.lines:
			if !ok {
				return false
			}
			if strings.Contains(l, want) {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}
