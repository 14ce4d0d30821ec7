package vmtests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/image"
)

// The QEMU lab: N appliance VMs (n1..nN) on two switched links, ring 0
// (10.77.0.0/24: heartbeats, the CIB, services) and ring 1 (10.77.1.0/24:
// heartbeats), and the host on ring 0 as 10.77.0.254 through a TAP device:
// it serves each VM's power switch there (HostAddr:PowerPort(i)) and can
// reach the services. The lab's names are fixed, so it runs in a private
// network namespace (make vmtest runs it under scripts/isolated.sh).

// HostAddr is the harness's address on ring 0.
const HostAddr = "10.77.0.254"

// PowerPort is the TCP port of node i's power switch on HostAddr.
func PowerPort(i int) int { return 4400 + i }

// Options describe a lab.
type Options struct {
	Nodes int
	// Config is appended to every node's tachy.conf (e.g. a [local]
	// watchdog); Files are put in /etc/tachy (e.g. a CIB to import).
	Config string
	Files  map[string]string
	// MemoryMB per VM (default 384).
	MemoryMB int
	// Log receives progress lines (t.Logf).
	Log func(format string, args ...any)
}

// Lab is a running QEMU lab.
type Lab struct {
	Dir      string
	VMs      []*VM
	Switches [2]*Switch
	Power    []*PowerSwitch
	log      func(string, ...any)
	tap      *os.File
	consMu   map[*VM]*sync.Mutex
}

var (
	imageOnce sync.Once
	imageRes  *image.Result
	imageErr  error
	imageDir  string
)

// buildImage builds the static tachy binary once per test binary, and an
// image with the lab's /etc/tachy per lab (QEMU takes one initrd; the
// kernel download is cached in build/cache).
func buildImage(confDir, out string, log func(string, ...any)) (*image.Result, error) {
	imageOnce.Do(func() {
		imageDir, imageErr = os.MkdirTemp("", "tachy-vmtest-")
		if imageErr != nil {
			return
		}
		bin := filepath.Join(imageDir, "tachy")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/tachy")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			imageErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	if imageErr != nil {
		return nil, imageErr
	}
	k, err := image.FetchKernel(filepath.Join("..", "build", "cache"), "", logWriter(log))
	if err != nil {
		return nil, err
	}
	return image.Build(image.Options{Binary: filepath.Join(imageDir, "tachy"), Kernel: k, ConfigDir: confDir, OutDir: out})
}

type logWriter func(string, ...any)

func (w logWriter) Write(p []byte) (int, error) {
	w("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// Start builds the image with the lab's configuration, starts the
// switches, the TAP port and the power switches, and boots every VM; it
// returns once every node's daemon is ready.
func Start(ctx context.Context, dir string, o Options) (*Lab, error) {
	if err := haveQEMU(); err != nil {
		return nil, err
	}
	if o.Nodes < 1 || o.Nodes > 9 {
		return nil, fmt.Errorf("vmtests: %d nodes; the lab has 1 to 9", o.Nodes)
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 384
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	l := &Lab{Dir: dir, log: o.Log, consMu: map[*VM]*sync.Mutex{}}
	confDir := filepath.Join(dir, "etc")
	if err := writeConfig(confDir, o); err != nil {
		return nil, err
	}
	start := time.Now()
	img, err := buildImage(confDir, filepath.Join(dir, "image"), o.Log)
	if err != nil {
		return nil, err
	}
	o.Log("image built in %.1f s", time.Since(start).Seconds())
	for i := range l.Switches {
		l.Switches[i] = NewSwitch(fmt.Sprintf("ring%d", i), dir)
	}
	if l.tap, err = openTAP("tvm0"); err != nil {
		l.Close()
		return nil, err
	}
	for _, c := range [][]string{{"addr", "add", HostAddr + "/24", "dev", "tvm0"}, {"link", "set", "tvm0", "up"}} {
		if b, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			l.Close()
			return nil, fmt.Errorf("ip %s: %v: %s (run the QEMU lab in a private network namespace: make vmtest)", strings.Join(c, " "), err, b)
		}
	}
	l.Switches[0].AddHostPort("host", l.tap)
	for i := 1; i <= o.Nodes; i++ {
		name := fmt.Sprintf("n%d", i)
		args := []string{"-accel", "tcg", "-m", fmt.Sprint(o.MemoryMB), "-smp", "1", "-nographic",
			"-kernel", img.Vmlinuz, "-initrd", img.Initrd,
			"-append", fmt.Sprintf("console=ttyS0 panic=-1 quiet tachy.node=%s tachy.addr=eth0=10.77.0.%d/24,eth1=10.77.1.%d/24", name, i, i),
			"-device", "i6300esb", "-action", "watchdog=reset"}
		for link, sw := range l.Switches {
			sock, err := sw.AddPort(name)
			if err != nil {
				l.Close()
				return nil, err
			}
			args = append(args, "-netdev", fmt.Sprintf("stream,id=l%d,server=off,addr.type=unix,addr.path=%s", link, sock),
				"-device", fmt.Sprintf("virtio-net-pci,netdev=l%d,mac=52:54:00:77:%02x:%02x,romfile=", link, link, i))
		}
		v := &VM{Name: name, Index: i, args: args, dir: dir}
		l.VMs = append(l.VMs, v)
		l.consMu[v] = &sync.Mutex{}
		ps, err := ServePower(fmt.Sprintf("%s:%d", HostAddr, PowerPort(i)), v)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.Power = append(l.Power, ps)
	}
	start = time.Now()
	var ready []func(context.Context) (string, error)
	for _, v := range l.VMs {
		ready = append(ready, v.Expect("tachy: node "+v.Name+" ready"))
		if err := v.PowerOn(); err != nil {
			l.Close()
			return nil, err
		}
	}
	for i, v := range l.VMs {
		if _, err := ready[i](ctx); err != nil {
			l.Close()
			return nil, fmt.Errorf("%w; its console ends with:\n%s", err, v.tail(40))
		}
	}
	o.Log("%d VMs booted, daemons ready in %.1f s", o.Nodes, time.Since(start).Seconds())
	return l, nil
}

// VM returns the VM named name.
func (l *Lab) VM(name string) *VM {
	for _, v := range l.VMs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Close powers every VM off and stops the lab.
func (l *Lab) Close() {
	for _, v := range l.VMs {
		v.stop()
	}
	for _, p := range l.Power {
		p.Close()
	}
	for _, s := range l.Switches {
		if s != nil {
			s.Close()
		}
	}
	if l.tap != nil {
		l.tap.Close()
	}
}

// Run types a tachy command on a VM's console and returns what it printed
// up to the next prompt, without the daemon's log lines and the kernel's
// messages that interleave with it.
// initNotice matches the appliance init's membership notices (cmd/tachy
// init.go), which reach the console whenever a peer comes or goes, in the
// middle of a command's output too: they are not the command's (a "tachy:"
// line of its own is its error).
var initNotice = regexp.MustCompile(`^tachy: (peer \S+ (up|down)|quorum: .*|all \d+ peers up|event stream: .*)$`)

func (l *Lab) Run(ctx context.Context, node, command string) (string, error) {
	v := l.VM(node)
	if v == nil {
		return "", fmt.Errorf("no VM %s", node)
	}
	mu := l.consMu[v]
	mu.Lock()
	defer mu.Unlock()
	var out []string
	done := make(chan struct{})
	// The console echoes nothing: the output starts after the prompt
	// printed before the command and ends at the next one.
	w := &waiter{ch: make(chan string, 1), match: func(line string) bool {
		if strings.HasPrefix(line, "tachy> ") || line == "tachy>" {
			rest := strings.TrimPrefix(strings.TrimPrefix(line, "tachy>"), " ")
			if rest != "" && len(out) == 0 {
				out = append(out, rest) // output on the prompt's line
				return false
			}
			close(done)
			return true
		}
		// The daemon's log, the kernel's and the lab writer's (a
		// resource whose output is the console) are not the command's.
		if strings.HasPrefix(line, "time=") || strings.HasPrefix(line, "[") || strings.Contains(line, "writer: ") || initNotice.MatchString(line) {
			return false
		}
		out = append(out, line)
		return false
	}}
	v.mu.Lock()
	v.waiters = append(v.waiters, w)
	v.mu.Unlock()
	if err := v.Type(command); err != nil {
		return "", err
	}
	select {
	case <-done:
		return strings.Join(out, "\n"), nil
	case <-ctx.Done():
		return strings.Join(out, "\n"), fmt.Errorf("%s: %q did not finish: %w", node, command, ctx.Err())
	}
}

// ClusterStatus is the part of tachy status --json the scenarios read.
type ClusterStatus struct {
	Node string `json:"node"`
	CIB  *struct {
		DC string `json:"dc"`
	} `json:"cib"`
	Quorum struct {
		Quorate bool `json:"quorate"`
	} `json:"quorum"`
	Resources []struct {
		ID    string   `json:"id"`
		Role  string   `json:"role"`
		Nodes []string `json:"nodes"`
	} `json:"resources"`
	Fencing []struct {
		Target string `json:"target"`
		Action string `json:"action"`
		OK     bool   `json:"ok"`
		Device string `json:"device"`
	} `json:"fencing_history"`
}

// Status runs tachy status --json on a node.
func (l *Lab) Status(ctx context.Context, node string) (*ClusterStatus, error) {
	out, err := l.Run(ctx, node, "status --json")
	if err != nil {
		return nil, err
	}
	i := strings.Index(out, "{")
	if i < 0 {
		return nil, fmt.Errorf("%s: status --json printed no JSON: %s", node, out)
	}
	var st ClusterStatus
	if err := json.Unmarshal([]byte(out[i:]), &st); err != nil {
		return nil, fmt.Errorf("%s: status --json: %v: %s", node, err, out)
	}
	return &st, nil
}

// Where reports the nodes a resource is active on, as node sees it.
func (st *ClusterStatus) Where(rsc string) []string {
	for _, r := range st.Resources {
		if r.ID == rsc {
			return r.Nodes
		}
	}
	return nil
}

// Eventually polls check every 500 ms until it returns nil or ctx ends.
func Eventually(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// writeConfig writes /etc/tachy for every node: tachy.conf (no
// local.node: the kernel command line names the node), the cluster key,
// the CIB's certificates and the extra files.
func writeConfig(dir string, o Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	key, err := config.GenerateKey()
	if err != nil {
		return err
	}
	if err := config.WriteKey(filepath.Join(dir, "cluster.key"), key); err != nil {
		return err
	}
	var b strings.Builder
	// TCG emulates every instruction: a slower heartbeat than the
	// default 2 ms x 4 keeps a busy host from seeing false failures.
	fmt.Fprintf(&b, "[cluster]\nname = \"vmlab\"\nid = 7718\nkey_file = \"cluster.key\"\n\n[heartbeat]\ninterval = \"20ms\"\nmiss_count = 10\n\n")
	var names []string
	for i := 1; i <= o.Nodes; i++ {
		name := fmt.Sprintf("n%d", i)
		names = append(names, name)
		fmt.Fprintf(&b, "[[node]]\nname = %q\nid = %d\naddresses = [\"10.77.0.%d\", \"10.77.1.%d\"]\n\n", name, i, i, i)
	}
	b.WriteString(o.Config)
	p := filepath.Join(dir, "tachy.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if _, err := config.Load(p); err != nil {
		return fmt.Errorf("vmtests: the lab's configuration: %w", err)
	}
	if err := replica.InitPKI(filepath.Join(dir, "pki"), "vmlab", names); err != nil {
		return err
	}
	for name, content := range o.Files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// openTAP creates a TAP device (no packet information header) and returns
// its file: each read or write is one Ethernet frame.
func openTAP(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap: %w", err)
	}
	var ifr [unix.IFNAMSIZ + 64]byte
	copy(ifr[:], name)
	*(*uint16)(unsafe.Pointer(&ifr[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, errno)
	}
	// Non-blocking, so that the runtime polls it and Close ends a read
	// in progress (else the device stays busy for the next lab).
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}
