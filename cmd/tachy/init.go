package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/image"
	"github.com/tachy-ha/tachy/vip"
)

// initCmd is PID 1 of the appliance: the initramfs's /init links to the
// tachy binary, and the kernel starts it without arguments (see the init
// function below). docs/image.md describes what it does and the kernel
// command line keys it reads.
type initCmd struct{}

// The kernel runs /init with the command line's leftover words as
// arguments, if any, and never with "init": started by the kernel as /init,
// tachy is init. (As PID 1 of a container, `tachy daemon` stays itself.)
func init() {
	if os.Getpid() == 1 && (filepath.Base(os.Args[0]) == "init" || len(os.Args) == 1) {
		os.Args = []string{os.Args[0], "init"}
	}
}

// reapMu is held while init waits for a child it started itself, so the
// zombie reaper does not take that child's exit status.
var reapMu sync.Mutex

func (c *initCmd) Run(g *globals) error {
	if os.Getpid() != 1 {
		return errors.New("tachy init is the appliance's PID 1 (the initramfs's /init), not a command to run by hand")
	}
	go reapZombies()
	err := boot(g)
	fatal(err)
	return nil
}

// say prints a line on the console, where the boot tests look for it.
func say(format string, args ...any) { fmt.Printf("tachy: "+format+"\n", args...) }

// fatal reports err and powers the machine off, so that a failed boot ends
// instead of hanging (the kernel would panic if init exited).
func fatal(err error) {
	if err != nil {
		say("fatal: %v", err)
	}
	say("powering off")
	poweroff()
}

func poweroff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Println("tachy: power off:", err)
	}
	// Not reached unless power-off failed: exiting makes the kernel panic,
	// which panic=-1 turns into a reboot (QEMU -no-reboot: an exit).
	os.Exit(1)
}

func reapZombies() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		reapMu.Lock()
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		reapMu.Unlock()
	}
}

func boot(g *globals) error {
	if err := mountAll(); err != nil {
		return err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	p, err := image.ParseCmdline(string(cmdline))
	if err != nil {
		return err
	}
	if rel, err := os.ReadFile(image.ReleaseFile); err == nil {
		say("appliance %s", strings.Join(strings.Fields(string(rel)), " "))
	}
	if n, err := loadModules(image.ModuleLoadList); err != nil {
		return err
	} else {
		say("loaded %d kernel modules", n)
	}
	if p.Data != "" {
		extra, err := mountData(p.Data)
		if err != nil {
			return err
		}
		// The data partition's boot-params (the node's identity) add to
		// the command line; where both set a key, the file wins.
		if p, err = image.ParseCmdline(string(cmdline) + " " + extra); err != nil {
			return fmt.Errorf("%s on the data partition: %w", image.BootParamsFile, err)
		}
	}
	if p.Node != "" {
		if err := unix.Sethostname([]byte(p.Node)); err != nil {
			return fmt.Errorf("host name: %w", err)
		}
	}
	if err := setupNetwork(p.Addrs); err != nil {
		return err
	}
	if _, err := os.Stat(p.Config); errors.Is(err, os.ErrNotExist) {
		say("ready (no configuration)")
		if p.Test == image.TestPoweroffWhenReady {
			fatal(nil)
		}
		console()
		for {
			time.Sleep(time.Hour) // no console input: keep running
		}
	}
	return runDaemon(g, p)
}

type mount struct {
	src, dir, fstype string
	flags            uintptr
	data             string
}

var mounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0700"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
}

func mountAll() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		err := unix.Mount(m.src, m.dir, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	return nil
}

// dataDir is where the data partition is mounted: the daemon's default
// state_dir.
const dataDir = "/var/lib/tachy"

// mountData finds the GPT partition named name (waiting up to 10 s for
// the disk driver to find it), mounts it (ext4) on dataDir, and returns its
// boot-params file's contents ("" if it has none).
func mountData(name string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	var dev string
	for dev == "" {
		ents, _ := os.ReadDir("/sys/class/block")
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/sys/class/block", e.Name(), "uevent"))
			if err == nil && strings.Contains("\n"+string(b), "\nPARTNAME="+name+"\n") {
				dev = "/dev/" + e.Name()
			}
		}
		if dev == "" {
			if time.Now().After(deadline) {
				return "", fmt.Errorf("tachy.data=%s: no partition of that name (block devices: %s)", name, blockNames())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	// devtmpfs makes the node a moment after sysfs shows the partition.
	if err := ensureBlockNode(dev); err != nil {
		return "", err
	}
	if err := unix.Mount(dev, dataDir, "ext4", unix.MS_NOATIME, ""); err != nil {
		return "", fmt.Errorf("mounting the data partition %s (%s) on %s: %w", name, dev, dataDir, err)
	}
	say("data partition %s (%s) on %s", name, dev, dataDir)
	b, err := os.ReadFile(filepath.Join(dataDir, image.BootParamsFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// ensureBlockNode makes /dev/NAME from sysfs's major:minor if it is not
// there yet.
func ensureBlockNode(dev string) error {
	if _, err := os.Stat(dev); err == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "dev"))
	if err != nil {
		return err
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("%s: sysfs dev %q: %w", dev, b, err)
	}
	if err := unix.Mknod(dev, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mknod %s: %w", dev, err)
	}
	return nil
}

func blockNames() string {
	ents, _ := os.ReadDir("/sys/class/block")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}

// loadModules loads the listed modules in order; the image builder wrote
// them dependencies first.
func loadModules(list string) (int, error) {
	b, err := os.ReadFile(list)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n := 0
	for _, path := range strings.Fields(string(b)) {
		f, err := os.Open(path)
		if err != nil {
			return n, err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return n, fmt.Errorf("loading %s: %w", filepath.Base(path), err)
		}
		n++
	}
	return n, nil
}

// setupNetwork brings up lo and every interface, waiting up to 10 s for the
// ones tachy.addr names, and adds the addresses.
func setupNetwork(addrs []image.IfaceAddr) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			if _, err := net.InterfaceByName(a.Iface); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("tachy.addr: no interface %s (the VM has: %s)", a.Iface, ifaceNames())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, ifi := range ifs {
		ifr, err := unix.NewIfreq(ifi.Name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("%s: %w", ifi.Name, err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("setting %s up: %w", ifi.Name, err)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	nl, err := vip.OpenAddresses()
	if err != nil {
		return err
	}
	defer nl.Close()
	for _, a := range addrs {
		ifi, err := net.InterfaceByName(a.Iface)
		if err != nil {
			return err
		}
		if err := nl.Add(ifi.Index, a.Prefix); err != nil {
			return err
		}
		say("%s %s (%s)", a.Iface, a.Prefix, ifi.HardwareAddr)
	}
	return nil
}

func ifaceNames() string {
	ifs, _ := net.Interfaces()
	var s []string
	for _, i := range ifs {
		s = append(s, i.Name)
	}
	return strings.Join(s, " ")
}

// runDaemon runs the daemon as `tachy daemon` does, reports when its control
// socket answers and when peers come and go, and powers off if it stops.
func runDaemon(g *globals, p image.BootParams) error {
	cfg, err := config.Load(p.Config)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		errc <- (&daemonCmd{Config: p.Config, Node: p.Node}).Run(g)
	}()
	cl := controller.Client{Socket: cfg.Local.Socket}
	var st controller.Status
	for {
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("the daemon stopped")
			}
			return fmt.Errorf("daemon: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
		if st, err = cl.Status(); err == nil {
			break
		}
	}
	say("node %s ready", st.Node)
	go watchPeers(cl, p.Test)
	if p.Test == image.TestPoweroffWhenReady {
		fatal(nil)
	}
	go console()
	err = <-errc
	if err == nil {
		err = errors.New("the daemon stopped")
	}
	return fmt.Errorf("daemon: %w", err)
}

// watchPeers prints a line when a peer comes up or goes down. With
// tachy.test=poweroff-when-peers-up it powers off a second after every
// configured peer has been seen up.
func watchPeers(cl controller.Client, test string) {
	peers := map[string]bool{} // name -> up
	check := func() {
		if test != image.TestPoweroffWhenPeersUp || len(peers) == 0 {
			return
		}
		for _, up := range peers {
			if !up {
				return
			}
		}
		say("all %d peers up", len(peers))
		time.Sleep(time.Second)
		fatal(nil)
	}
	err := cl.Events(context.Background(), func(st controller.Status) {
		var names []string
		for _, m := range st.Members {
			if !m.Local {
				peers[m.Name] = m.State == "up"
				names = append(names, m.Name)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if peers[n] {
				say("peer %s up", n)
			}
		}
		say("quorum: %s", st.Quorum.Reason)
		check()
	}, func(e controller.Event) bool {
		switch e.Type {
		case "node-up", "node-restart":
			peers[e.NodeName] = true
			say("peer %s up", e.NodeName)
			check()
		case "node-down":
			peers[e.NodeName] = false
			say("peer %s down", e.NodeName)
		case "quorum-gained", "quorum-lost", "quorum-changed":
			if e.Quorum != nil {
				say("quorum: %s", e.Quorum.Reason)
			}
		}
		return true
	})
	if err != nil {
		say("event stream: %v", err)
	}
}

// console reads commands from the console and runs them as tachy
// subcommands ("status", "version", "config check FILE"), plus
// "poweroff" and "reboot". There is no shell.
func console() {
	self, err := os.Executable()
	if err != nil {
		self = "/bin/tachy"
	}
	sc := bufio.NewScanner(os.Stdin)
	for {
		fmt.Print("tachy> ")
		if !sc.Scan() {
			return // no console input: keep running without it
		}
		args := strings.Fields(sc.Text())
		if len(args) == 0 {
			continue
		}
		switch args[0] {
		case "poweroff", "halt":
			fatal(nil)
		case "reboot":
			unix.Sync()
			unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		case "init", "daemon", "lab", "bench", "events", "keygen", "sh":
			// events never ends, and ^C on /dev/console interrupts nothing.
			fmt.Printf("%s: not available on the console; try status, status --json, version, config check FILE, poweroff, reboot\n", args[0])
			continue
		case "help":
			args = []string{"--help"}
		}
		cmd := exec.Command(self, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		reapMu.Lock()
		err := cmd.Run()
		reapMu.Unlock()
		if err != nil {
			fmt.Println("tachy:", err)
		}
	}
}
