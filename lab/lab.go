// Package lab builds and drives the network-namespace lab: N cluster nodes
// as network namespaces tachy-n1..tachy-nN, each with two heartbeat rings
// and a service network, plus a client namespace tachy-client, all joined by
// three bridges in the root namespace.
//
// The lab is a fixed, documented topology (docs/lab.md) that tests, the
// benchmarks and people at a shell script against:
//
//	bridge     node interface  node address            host-side port
//	tachy-r0   ring0           10.77.0.N/24            tnNr0
//	tachy-r1   ring1           10.77.1.N/24            tnNr1
//	tachy-svc  svc             10.77.2.N/24            tnNsv
//	                           fd77:0:0:2::N/64 (N in hex)
//	tachy-svc  svc (client)    10.77.2.254/24          tclsv
//	                           fd77:0:0:2::fe/64
//
// Up creates it and starts one daemon per node; Open finds the running lab
// again from its state file (DIR/lab.json) in another process; Down and
// DownAll remove it, and DownAll also removes the leftovers of a lab whose
// state file is gone. Faults are injected from outside the nodes: Kill,
// Pause and Resume act on every process in a node's namespace; CutLinks
// and RestoreLinks set the host-side veth ports down and up; Partition
// drops frames between the bridge ports of different groups with an
// nftables bridge-family table, which works even when the nodes receive
// with XDP (XDP runs before any netfilter hook inside a namespace, so a
// partition must happen on the bridge).
//
// Everything here needs root, iproute2 (ip) and, for partitions, nftables
// (nft). Namespace and interface names are global: one lab per machine.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tachy-ha/tachy/cib/replica"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Names and limits of the topology.
const (
	DefaultDir = "/run/tachy-lab" // the state directory unless UpOptions.Dir says otherwise
	MaxNodes   = 16

	ClusterName = "lab"
	ClusterID   = 7707

	ClientNode      = "client"       // the node name Exec, Kill, ... accept for the client
	ClientNamespace = "tachy-client" // the client's namespace

	PartitionTable = "tachy_lab" // nftables table (family bridge) holding a partition

	nsPrefix = "tachy-n"
)

// Links of a node, as numbered by Address, HostInterface, CutLinks and
// RestoreLinks.
const (
	Ring0    = 0 // heartbeat ring 0: bridge tachy-r0, interface ring0
	Ring1    = 1 // heartbeat ring 1: bridge tachy-r1, interface ring1
	Service  = 2 // service network: bridge tachy-svc, interface svc
	numLinks = 3
)

// Bridges are the root-namespace bridges, indexed by link.
var Bridges = [numLinks]string{"tachy-r0", "tachy-r1", "tachy-svc"}

// nodeIfaces are the interface names inside a node's namespace, by link.
var nodeIfaces = [numLinks]string{"ring0", "ring1", "svc"}

// hostSuffix makes the host-side port names: tn<N><suffix>.
var hostSuffix = [numLinks]string{"r0", "r1", "sv"}

const clientHostIface = "tclsv"

// UpOptions configure Up. The zero value (apart from Nodes) gives the
// defaults.
type UpOptions struct {
	Nodes     int           // 1..16 nodes, n1..nN
	Dir       string        // state directory; default /run/tachy-lab
	Binary    string        // tachy binary the daemons run; default os.Executable()
	Interval  time.Duration // heartbeat.interval; default 1ms
	MissCount int           // heartbeat.miss_count; default 4
	Receiver  string        // heartbeat.receiver: auto (default), xdp or udp
	// GrantWindow is heartbeat.grant_window; 0 leaves it out (the
	// daemon's default).
	GrantWindow time.Duration

	// Command, if set, replaces the daemon command line of node N (1..Nodes):
	// for tests, e.g. {"sleep", "1000"}. It runs in the node's namespace
	// like the daemon would, with its output in the node's daemon.log.
	Command func(node int) []string

	// NoDaemons builds the network and writes the files but starts nothing;
	// Start starts a node's daemon later.
	NoDaemons bool
}

// Lab is a running lab. Its methods may be used from several goroutines,
// and several processes may act on the same lab (the state file is locked
// while it changes).
type Lab struct {
	dir string

	mu    sync.Mutex
	st    state
	exits map[int]chan struct{} // daemons this process started: closed when reaped
}

// state is the content of lab.json.
type state struct {
	Nodes       int                   `json:"nodes"`
	Dir         string                `json:"dir"`
	Binary      string                `json:"binary"`
	Interval    string                `json:"interval"`
	MissCount   int                   `json:"miss_count"`
	Receiver    string                `json:"receiver"`
	GrantWindow string                `json:"grant_window,omitempty"`
	NoDaemons   bool                  `json:"no_daemons"`
	Commands    map[string][]string   `json:"commands"` // node -> command run in its namespace
	Daemons     map[string]daemonInfo `json:"daemons"`  // node -> the last daemon started
	Partition   [][]string            `json:"partition,omitempty"`
	Created     time.Time             `json:"created"`
}

type daemonInfo struct {
	PID       int       `json:"pid"`
	StartTime uint64    `json:"start_time"` // /proc/PID/stat field 22, against PID reuse
	Started   time.Time `json:"started"`
}

var errNoLab = errors.New("no lab is running; start one with `tachy lab up --nodes 3`")

func defaultDir(dir string) string {
	if dir == "" {
		return DefaultDir
	}
	return filepath.Clean(dir)
}

// Up builds a lab of o.Nodes nodes and starts their daemons. It refuses
// when a lab (or what is left of one) exists, and removes whatever it made
// when it fails part way.
func Up(ctx context.Context, o UpOptions) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the namespace lab needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("the namespace lab needs iproute2's ip command (apt-get install iproute2)")
	}
	if o.Nodes < 1 || o.Nodes > MaxNodes {
		return nil, fmt.Errorf("%d nodes: the lab has 1 to %d nodes", o.Nodes, MaxNodes)
	}
	if o.Interval == 0 {
		o.Interval = 2 * time.Millisecond
	}
	if o.Interval < time.Millisecond || o.Interval > 10*time.Second {
		return nil, fmt.Errorf("heartbeat interval %s: use 1ms to 10s", o.Interval)
	}
	if o.MissCount == 0 {
		o.MissCount = 4
	}
	if o.MissCount < 2 || o.MissCount > 1000 {
		return nil, fmt.Errorf("miss count %d: use 2 to 1000", o.MissCount)
	}
	if o.Receiver == "" {
		o.Receiver = "auto"
	}
	if o.GrantWindow != 0 && (o.GrantWindow <= o.Interval || o.GrantWindow > o.Interval*time.Duration(o.MissCount)) {
		return nil, fmt.Errorf("grant window %s: use more than the interval (%s), at most the detection time (%s)", o.GrantWindow, o.Interval, o.Interval*time.Duration(o.MissCount))
	}
	if o.Receiver != "auto" && o.Receiver != "xdp" && o.Receiver != "udp" {
		return nil, fmt.Errorf("receiver %q: use auto, xdp or udp", o.Receiver)
	}
	dir, err := filepath.Abs(defaultDir(o.Dir))
	if err != nil {
		return nil, err
	}
	if n := len(socketPath(dir, nodeName(MaxNodes))); n > 107 {
		return nil, fmt.Errorf("lab directory %s is too long: the daemons' control sockets would have %d-byte paths, and a unix socket path has at most 107", dir, n)
	}
	if o.Binary == "" && o.Command == nil {
		if o.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the tachy binary: %w", err)
		}
	}
	if o.Binary != "" {
		if o.Binary, err = filepath.Abs(o.Binary); err != nil {
			return nil, err
		}
	}

	st := state{
		Nodes: o.Nodes, Dir: dir, Binary: o.Binary, Interval: o.Interval.String(), MissCount: o.MissCount,
		Receiver: o.Receiver, NoDaemons: o.NoDaemons, Commands: map[string][]string{}, Daemons: map[string]daemonInfo{},
		Created: time.Now().UTC().Truncate(time.Second),
	}
	if o.GrantWindow != 0 {
		st.GrantWindow = o.GrantWindow.String()
	}
	for i := 1; i <= o.Nodes; i++ {
		n := nodeName(i)
		argv := []string{o.Binary, "daemon", "--config", configPath(dir, n)}
		if o.Command != nil {
			argv = o.Command(i)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("UpOptions.Command gave node %s an empty command", n)
		}
		if _, err := exec.LookPath(argv[0]); err != nil {
			return nil, fmt.Errorf("node %s's command: %w", n, err)
		}
		st.Commands[n] = argv
	}

	if err := checkNoLab(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Between the check and the lock another Up may have won.
	if _, err := os.Stat(filepath.Join(dir, "lab.json")); err == nil {
		return nil, alreadyRunning(dir)
	}
	defer func() {
		if err != nil {
			unlock()
			if derr := DownAll(dir); derr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, derr)
			}
		}
	}()
	l = &Lab{dir: dir, st: st, exits: map[int]chan struct{}{}}
	// lab.json comes first, so that a crash during Up leaves a lab that
	// `tachy lab down` knows about.
	if err := l.save(); err != nil {
		return nil, err
	}
	if err := writeFiles(dir, &st); err != nil {
		return nil, err
	}
	if err := buildNetwork(ctx, o.Nodes); err != nil {
		return nil, err
	}
	if !o.NoDaemons {
		for _, n := range l.Nodes() {
			if err := l.startLocked(n); err != nil {
				return nil, err
			}
		}
		if err := l.save(); err != nil {
			return nil, err
		}
		// A daemon that cannot start (bad config, missing binary) exits at
		// once: say so here rather than leave a lab of dead nodes. Watch
		// until every daemon has its control socket, or for a second (a
		// custom command has none); a busy machine may take that long.
		for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
			ready := true
			for _, n := range l.Nodes() {
				if st, pid := l.daemonState(n); st != DaemonRunning && st != DaemonPaused {
					return nil, fmt.Errorf("node %s's daemon (pid %d) exited at once%s", n, pid, logTail(l.LogPath(n)))
				}
				if _, err := os.Stat(l.Socket(n)); err != nil {
					ready = false
				}
			}
			if ready || time.Now().After(deadline) {
				break
			}
		}
	}
	return l, nil
}

func alreadyRunning(dir string) error {
	return fmt.Errorf("a lab is already running (%s); remove it first with `tachy lab down`", filepath.Join(dir, "lab.json"))
}

// checkNoLab fails when a lab's state file or any of the lab's namespaces
// and bridges exist.
func checkNoLab(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "lab.json")); err == nil {
		return alreadyRunning(dir)
	}
	var left []string
	nss, _ := labNamespaces()
	left = append(left, nss...)
	links, _ := labHostLinks()
	left = append(left, links...)
	if len(left) > 0 {
		return fmt.Errorf("a lab's namespaces or interfaces already exist (%s); remove them first with `tachy lab down`", strings.Join(left, " "))
	}
	return nil
}

// Open returns the lab running with state directory dir (DefaultDir if
// empty).
func Open(dir string) (*Lab, error) {
	dir, err := filepath.Abs(defaultDir(dir))
	if err != nil {
		return nil, err
	}
	l := &Lab{dir: dir, exits: map[int]chan struct{}{}}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lab) load() error {
	b, err := os.ReadFile(filepath.Join(l.dir, "lab.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return errNoLab
	}
	if err != nil {
		return err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("%s: %w; `tachy lab down` removes the lab", filepath.Join(l.dir, "lab.json"), err)
	}
	if st.Nodes < 1 || st.Nodes > MaxNodes {
		return fmt.Errorf("%s: %d nodes; `tachy lab down` removes the lab", filepath.Join(l.dir, "lab.json"), st.Nodes)
	}
	if st.Commands == nil {
		st.Commands = map[string][]string{}
	}
	if st.Daemons == nil {
		st.Daemons = map[string]daemonInfo{}
	}
	l.st = st
	return nil
}

// save writes lab.json atomically. The caller holds l.mu or owns l alone.
func (l *Lab) save() error {
	b, err := json.MarshalIndent(&l.st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(l.dir, "lab.json"), append(b, '\n'), 0o644)
}

// update runs fn on the freshest state, under the process mutex and the
// directory lock, and saves it if fn succeeds.
func (l *Lab) update(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := lockDir(l.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.load(); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	return l.save()
}

// refresh rereads lab.json, so that what another process changed (a
// daemon restarted by `tachy lab start`) is seen. Errors keep the old state.
func (l *Lab) refresh() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.load()
}

func lockDir(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lab directory %s: %w", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	var once sync.Once
	return func() { once.Do(func() { unix.Close(fd) }) }, nil
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeFiles writes the cluster key, and each node's directory and config.
func writeFiles(dir string, st *state) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := writeAtomic(keyPath(dir), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	// The CIB's CA and node certificates, as tachy cluster init makes them.
	var names []string
	for i := 1; i <= st.Nodes; i++ {
		names = append(names, nodeName(i))
	}
	os.RemoveAll(pkiPath(dir))
	if err := replica.InitPKI(pkiPath(dir), ClusterName, names); err != nil {
		return err
	}
	for i := 1; i <= st.Nodes; i++ {
		n := nodeName(i)
		if err := os.MkdirAll(filepath.Join(dir, n, "state"), 0o755); err != nil {
			return err
		}
		interval, _ := time.ParseDuration(st.Interval)
		var window time.Duration
		if st.GrantWindow != "" {
			window, _ = time.ParseDuration(st.GrantWindow)
		}
		cfg, err := renderConfig(dir, i, st.Nodes, interval, st.MissCount, st.Receiver, window)
		if err != nil {
			return err
		}
		if err := writeAtomic(configPath(dir, n), cfg, 0o644); err != nil {
			return err
		}
		if err := writeAtomic(filepath.Join(dir, n, BootAddressesFile), bootAddresses(i), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// BootAddressesFile, in a node's directory, lists the addresses its
// namespace has from the lab ("IFACE ADDR/LEN" per line): what the node
// would have after a reboot. fence_tachy_lab removes every other global
// address (a VIP the fenced node held must not keep answering).
const BootAddressesFile = "boot-addresses"

func bootAddresses(i int) []byte {
	var b strings.Builder
	for link := range numLinks {
		fmt.Fprintf(&b, "%s %s/24\n", nodeIfaces[link], addr4(i, link))
		if link == Service {
			fmt.Fprintf(&b, "%s %s/64\n", nodeIfaces[link], addr6(i))
		}
	}
	return []byte(b.String())
}

// Down stops the daemons and removes the lab: namespaces, bridges, the
// partition table and the state directory. It is idempotent.
func (l *Lab) Down() error { return DownAll(l.dir) }

// DownAll removes the lab with state directory dir (DefaultDir if empty)
// and anything left of a crashed one, state file or not: every namespace
// tachy-n* and tachy-client with its processes, the bridges, the host-side
// ports and the nftables table. Removing nothing is not an error.
func DownAll(dir string) error {
	dir, err := filepath.Abs(defaultDir(dir))
	if err != nil {
		return err
	}
	var errs []error
	// Daemons recorded in lab.json first: they may have left their
	// namespace's process list (they cannot, but a command could).
	if b, err := os.ReadFile(filepath.Join(dir, "lab.json")); err == nil {
		var st state
		if json.Unmarshal(b, &st) == nil {
			for _, d := range st.Daemons {
				if alive(d) {
					_ = unix.Kill(d.PID, unix.SIGKILL)
				}
			}
		}
	}
	nss, err := labNamespaces()
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if err := killNamespace(ns, unix.SIGKILL); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteNetwork(nss); err != nil {
		errs = append(errs, err)
	}
	if err := deletePartitionTable(); err != nil {
		errs = append(errs, err)
	}
	if err := removeStateDir(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeStateDir removes what the lab put in dir, and dir if that leaves it
// empty; it does not remove files it did not make.
func removeStateDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		ours := name == "lab.json" || name == "lab.json.tmp" || name == "cluster.key" || name == "cluster.key.tmp" || (name == "pki" && e.IsDir())
		if e.IsDir() && len(name) > 1 && name[0] == 'n' {
			if _, err := strconv.Atoi(name[1:]); err == nil {
				ours = true
			}
		}
		if ours {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		var pe *fs.PathError
		// Not empty, or a mount point (scripts/isolated.sh mounts one
		// there): it stays.
		if !errors.As(err, &pe) || !errors.Is(pe.Err, unix.ENOTEMPTY) && !errors.Is(pe.Err, unix.EBUSY) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return l.dir }

// KeyPath is the cluster key file shared by all nodes.
func (l *Lab) KeyPath() string { return keyPath(l.dir) }

// Nodes returns the node names n1..nN.
func (l *Lab) Nodes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, l.st.Nodes)
	for i := range out {
		out[i] = nodeName(i + 1)
	}
	return out
}

func nodeName(i int) string { return "n" + strconv.Itoa(i) }

// nodeIndex returns N for node "nN" of this lab, 0 for the client, and an
// error for anything else.
func (l *Lab) nodeIndex(node string) (int, error) {
	l.mu.Lock()
	nodes := l.st.Nodes
	l.mu.Unlock()
	return parseNode(node, nodes)
}

// parseNode is nodeIndex for a lab of the given number of nodes.
func parseNode(node string, nodes int) (int, error) {
	if node == ClientNode {
		return 0, nil
	}
	if len(node) > 1 && node[0] == 'n' && node[1] != '0' && node[1] != '+' && node[1] != '-' {
		if i, err := strconv.Atoi(node[1:]); err == nil && i >= 1 && i <= nodes {
			return i, nil
		}
	}
	return -1, fmt.Errorf("unknown node %q: the lab has nodes n1 to n%d, and %q", node, nodes, ClientNode)
}

// mustNode is nodeIndex for a cluster node (not the client).
func (l *Lab) mustNode(node string) (int, error) {
	i, err := l.nodeIndex(node)
	if err == nil && i == 0 {
		err = fmt.Errorf("%q is the client, not a cluster node", node)
	}
	return i, err
}

func nsName(i int) string {
	if i == 0 {
		return ClientNamespace
	}
	return nsPrefix + strconv.Itoa(i)
}

// Namespace is the network namespace of node ("client" for the client), or
// "" for an unknown node.
func (l *Lab) Namespace(node string) string {
	i, err := l.nodeIndex(node)
	if err != nil {
		return ""
	}
	return nsName(i)
}

func configPath(dir, node string) string { return filepath.Join(dir, node, "tachy.conf") }
func socketPath(dir, node string) string { return filepath.Join(dir, node, "tachy.sock") }
func keyPath(dir string) string          { return filepath.Join(dir, "cluster.key") }
func pkiPath(dir string) string          { return filepath.Join(dir, "pki") }

// Socket is the control socket of node's daemon ("" for an unknown node).
func (l *Lab) Socket(node string) string {
	if _, err := l.mustNode(node); err != nil {
		return ""
	}
	return socketPath(l.dir, node)
}

// ConfigPath is node's configuration file ("" for an unknown node).
func (l *Lab) ConfigPath(node string) string {
	if _, err := l.mustNode(node); err != nil {
		return ""
	}
	return configPath(l.dir, node)
}

// LogPath is node's daemon.log, which collects its daemon's stdout and
// stderr across restarts ("" for an unknown node).
func (l *Lab) LogPath(node string) string {
	if _, err := l.mustNode(node); err != nil {
		return ""
	}
	return filepath.Join(l.dir, node, "daemon.log")
}

// Address is node's IPv4 address on link (Ring0, Ring1 or Service);
// node "client" has only a Service address. It returns the zero Addr for
// an unknown node or link.
func (l *Lab) Address(node string, link int) netip.Addr {
	i, err := l.nodeIndex(node)
	if err != nil || link < 0 || link >= numLinks || (i == 0 && link != Service) {
		return netip.Addr{}
	}
	return addr4(i, link)
}

// Address6 is node's IPv6 address on the service network (the client's
// too), or the zero Addr for an unknown node.
func (l *Lab) Address6(node string) netip.Addr {
	i, err := l.nodeIndex(node)
	if err != nil {
		return netip.Addr{}
	}
	return addr6(i)
}

func hostByte(i int) byte {
	if i == 0 {
		return 254
	}
	return byte(i)
}

func addr4(i, link int) netip.Addr { return netip.AddrFrom4([4]byte{10, 77, byte(link), hostByte(i)}) }

func addr6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfd, 0x77, 0, 0, 0, 0, 0, 2, 14: 0, 15: hostByte(i)})
}

// mac is the MAC address of a lab interface: 02:77:LL:SS:00:NN with LL the
// link, SS 00 on the node side and 80 on the host side, NN the node number
// in hex (fe for the client).
func mac(i, link int, hostSide bool) string {
	side := 0
	if hostSide {
		side = 0x80
	}
	return fmt.Sprintf("02:77:%02x:%02x:00:%02x", link, side, hostByte(i))
}

// bridgeMAC is 02:77:LL:ff:00:00.
func bridgeMAC(link int) string { return fmt.Sprintf("02:77:%02x:ff:00:00", link) }

func hostIface(i, link int) string {
	if i == 0 {
		return clientHostIface
	}
	return "tn" + strconv.Itoa(i) + hostSuffix[link]
}

// HostInterface is the root-namespace end (the bridge port) of node's veth
// on link: tnNr0, tnNr1, tnNsv, or tclsv for the client's service link. It
// returns "" for an unknown node or link.
func (l *Lab) HostInterface(node string, link int) string {
	i, err := l.nodeIndex(node)
	if err != nil || link < 0 || link >= numLinks || (i == 0 && link != Service) {
		return ""
	}
	return hostIface(i, link)
}

// NodeInterface is the name of link's interface inside a node's namespace:
// ring0, ring1 or svc ("" for an unknown link).
func NodeInterface(link int) string {
	if link < 0 || link >= numLinks {
		return ""
	}
	return nodeIfaces[link]
}

// logTail is the end of a daemon log, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-10):]
	return fmt.Sprintf("; the end of %s:\n%s", path, strings.Join(lines, "\n"))
}

// sortedNames sorts node names n1, n2, ..., n10 by number.
func sortedNames(names []string) {
	slices.SortFunc(names, func(a, b string) int {
		ai, _ := strconv.Atoi(strings.TrimPrefix(a, "n"))
		bi, _ := strconv.Atoi(strings.TrimPrefix(b, "n"))
		return ai - bi
	})
}
