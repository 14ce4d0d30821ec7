package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/lab"
)

// FailoverOptions configure `tachy bench failover`.
type FailoverOptions struct {
	Nodes     int
	Repeats   int      // failovers per fault kind and system
	Faults    []string // kill, pause, partition
	Against   []string // "keepalived"
	Interval  time.Duration
	MissCount int
	// GrantWindow is tachy's heartbeat.grant_window (0: the daemon's
	// default, the detection time).
	GrantWindow time.Duration
	Probe       time.Duration // the client's probe interval
	Binary      string
	Dir         string
	Progress    io.Writer
	// LogDir, if set, receives the nodes' logs after every failover
	// slower than 100 ms or faster than 5 ms, for a look at what happened.
	LogDir string
}

// FailoverResult is the JSON output of `tachy bench failover`.
type FailoverResult struct {
	Benchmark string           `json:"benchmark"`
	Started   time.Time        `json:"started"`
	Kernel    string           `json:"kernel"`
	CPUs      int              `json:"cpus"`
	Load      string           `json:"loadavg_at_start"`
	Nodes     int              `json:"nodes"`
	VIP       string           `json:"vip"`
	ProbeUs   int64            `json:"probe_interval_us"`
	Systems   []SystemFailover `json:"systems"`
	// Ratio: per fault, the other system's p99 over tachy's (UDP echo).
	Ratio map[string]map[string]float64 `json:"p99_ratio_vs_tachy,omitempty"`
}

// SystemFailover holds one system's figures.
type SystemFailover struct {
	System   string            `json:"system"`
	Settings map[string]string `json:"settings"`
	Faults   []FaultFailover   `json:"faults"`
	// Failovers done, and ARP questions answered by two MACs over the
	// whole run of this system (faults and recoveries).
	Failovers      int      `json:"failovers"`
	ARPQuestions   int      `json:"arp_questions"`
	DualOwnership  int      `json:"dual_ownership"`
	DualMoments    []string `json:"dual_moments,omitempty"`
	OwnerChanges   int      `json:"owner_changes"`
	UnansweredARPs int      `json:"unanswered_arp_questions"`
}

// FaultFailover is the client-observed outage of one kind of fault: the
// longest gap between answered probes around each failover.
type FaultFailover struct {
	Fault string  `json:"fault"`
	UDP   Latency `json:"udp_echo"`
	TCP   Latency `json:"tcp_connect"`
	ICMP  Latency `json:"icmp_echo"`
}

const (
	benchVIP  = "10.77.2.100"
	echoPort  = 7007
	probeWait = 10 * time.Second
)

// Failover runs the benchmark: tachy first, then each system of Against, in
// fresh labs, with the same client probe and the same faults.
func Failover(ctx context.Context, o FailoverOptions) (*FailoverResult, error) {
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Binary = exe
	}
	res := &FailoverResult{Benchmark: "failover", Started: time.Now().UTC(), Kernel: kernelRelease(), CPUs: runtime.NumCPU(),
		Nodes: o.Nodes, VIP: benchVIP, ProbeUs: o.Probe.Microseconds()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Load = strings.TrimSpace(string(b))
	}
	systems := append([]string{"tachy"}, o.Against...)
	for _, sys := range systems {
		r, err := failoverSystem(ctx, o, sys)
		if r != nil {
			res.Systems = append(res.Systems, *r)
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", sys, err)
		}
	}
	if len(res.Systems) > 1 {
		res.Ratio = map[string]map[string]float64{}
		t := res.Systems[0]
		for _, other := range res.Systems[1:] {
			m := map[string]float64{}
			for i, f := range other.Faults {
				if i < len(t.Faults) && t.Faults[i].UDP.P99 > 0 {
					m[f.Fault] = round3(f.UDP.P99 / t.Faults[i].UDP.P99)
				}
			}
			res.Ratio[other.System] = m
		}
	}
	return res, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// failoverSystem runs every fault against one system in a lab of its own.
func failoverSystem(ctx context.Context, o FailoverOptions, sys string) (*SystemFailover, error) {
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%s: "+format+"\n", append([]any{sys}, args...)...)
		}
	}
	_ = lab.DownAll(o.Dir)
	up := lab.UpOptions{Nodes: o.Nodes, Dir: o.Dir, Binary: o.Binary, Interval: o.Interval, MissCount: o.MissCount, Receiver: "xdp"}
	if sys == "tachy" {
		up.GrantWindow = o.GrantWindow
	}
	out := &SystemFailover{System: sys, Settings: map[string]string{}}
	var kaDir string
	switch sys {
	case "tachy":
		out.Settings["heartbeat"] = fmt.Sprintf("interval %v, miss_count %d (detection %v), xdp receiver", o.Interval, o.MissCount, o.Interval*time.Duration(o.MissCount))
		// As the daemon computes it (controller/fastpath.go).
		lease := max(5*o.Interval, o.Interval*time.Duration(o.MissCount))
		window, how := o.GrantWindow, "heartbeat.grant_window"
		if window == 0 {
			window, how = o.Interval*time.Duration(o.MissCount), "the default, the detection time"
		}
		out.Settings["lease"] = fmt.Sprintf("views every %v, grant worth %v (max of 5 intervals and the detection time), delta %v, grant window %v (%s)",
			o.Interval, lease, o.Interval/2, window, how)
		out.Settings["resource"] = "vip1 vip ip=" + benchVIP + " cidr_netmask=24 meta resource-stickiness=100; stonith-enabled=false"
	case "keepalived":
		if _, err := exec.LookPath("keepalived"); err != nil {
			return nil, errors.New("keepalived is not installed (apt-get install keepalived)")
		}
		var err error
		if kaDir, err = os.MkdirTemp("", "tachy-bench-keepalived-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(kaDir)
		for i := 1; i <= o.Nodes; i++ {
			if err := os.WriteFile(filepath.Join(kaDir, fmt.Sprintf("n%d.conf", i)), []byte(keepalivedConf(i)), 0o644); err != nil {
				return nil, err
			}
		}
		up.Command = func(i int) []string {
			// Stale pid files (of a killed keepalived) would stop it.
			pids := filepath.Join(kaDir, fmt.Sprintf("n%d*.pid", i))
			return []string{"sh", "-c", "rm -f " + pids + "; exec \"$@\"", "keepalived", "keepalived", "--dont-fork", "--log-console", "--use-file", filepath.Join(kaDir, fmt.Sprintf("n%d.conf", i)),
				"--pid", filepath.Join(kaDir, fmt.Sprintf("n%d.pid", i)), "--vrrp_pid", filepath.Join(kaDir, fmt.Sprintf("n%d.vrrp.pid", i)),
				"--checkers_pid", filepath.Join(kaDir, fmt.Sprintf("n%d.check.pid", i)), "--vrrp"}
		}
		out.Settings["config"] = strings.ReplaceAll(keepalivedConf(1), "\n", " ")
		out.Settings["note"] = "VRRPv3, advert_int 0.01 (the protocol's floor), down_timer_adverts 3 as the RFC has it, nopreempt (a returning node does not take the VIP back), 5 gratuitous ARPs at once on becoming master"
	default:
		return nil, fmt.Errorf("unknown system %q (keepalived is the one comparison)", sys)
	}
	progress("lab up (%d nodes)", o.Nodes)
	l, err := lab.Up(ctx, up)
	if err != nil {
		return nil, err
	}
	defer l.Down()
	servers := &echoServers{bin: o.Binary, l: l}
	defer servers.stop()
	for _, n := range l.Nodes() {
		if err := servers.start(n); err != nil {
			return nil, err
		}
	}
	if sys == "tachy" {
		if err := WaitConverged(l, l.Nodes(), "xdp", 30*time.Second); err != nil {
			return nil, err
		}
		if err := tachySetup(ctx, l, o.Binary); err != nil {
			return nil, err
		}
	}
	p := &Prober{VIP: netip.MustParseAddr(benchVIP), Interval: o.Probe, UDPPort: echoPort, TCPPort: echoPort}
	if err := StartProber(ctx, l, p); err != nil {
		return nil, err
	}
	if _, err := stableHolder(ctx, l, p, l.Nodes(), 60*time.Second); err != nil {
		p.Close()
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			p.Close()
		}
	}()
	for _, fault := range o.Faults {
		var udp, tcp, icmp []time.Duration
		missed := 0
		for i := 0; i < o.Repeats && ctx.Err() == nil; i++ {
			h, err := readyForFault(ctx, l, p, sys, o.Binary)
			if err != nil {
				return out, err
			}
			survivors := slices.DeleteFunc(slices.Clone(l.Nodes()), func(n string) bool { return n == h })
			start := time.Now()
			if err := inject(l, fault, h, survivors); err != nil {
				return out, err
			}
			// The VIP answers again (UDP echo) from a survivor.
			ok := false
			for deadline := time.Now().Add(probeWait); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if p.AnsweredSince("udp", start.Add(time.Millisecond)) && p.AnsweredSince("tcp", start.Add(time.Millisecond)) && p.AnsweredSince("icmp", start.Add(time.Millisecond)) {
					ok = true
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
			end := time.Now()
			if !ok {
				missed++
				progress("%s %d of %s: the VIP did not answer within %v", fault, i+1, h, probeWait)
			} else {
				u, t, c := p.Outage("udp", start, end), p.Outage("tcp", start, end), p.Outage("icmp", start, end)
				udp, tcp, icmp = append(udp, u), append(tcp, t), append(icmp, c)
				progress("%s %d of %s: outage udp %.1f ms, tcp %.1f ms, icmp %.1f ms; answered by %v", fault, i+1, h, ms(u), ms(t), ms(c), holders(l, p, l.Nodes()))
			}
			out.Failovers++
			if o.LogDir != "" {
				saveLogs(l, filepath.Join(o.LogDir, fmt.Sprintf("%s-%s-%d", sys, fault, i+1)))
			}
			if err := recoverFault(ctx, l, fault, h, sys, servers); err != nil {
				return out, err
			}
		}
		out.Faults = append(out.Faults, FaultFailover{Fault: fault, UDP: Summarize(udp, missed, true), TCP: Summarize(tcp, missed, false),
			ICMP: Summarize(icmp, missed, false)})
	}
	p.Close()
	closed = true
	dual, changes, _ := p.Owners()
	out.DualOwnership, out.OwnerChanges = dual, len(changes)
	for _, c := range changes {
		if len(c.MACs) > 1 && len(out.DualMoments) < 20 {
			out.DualMoments = append(out.DualMoments, c.At.UTC().Format(time.RFC3339Nano)+" "+strings.Join(c.MACs, "+"))
		}
	}
	p.mu.Lock()
	out.ARPQuestions, out.UnansweredARPs = p.owner.Questions, p.owner.Unanswered
	p.mu.Unlock()
	return out, nil
}

// saveLogs copies the nodes' logs into dir.
func saveLogs(l *lab.Lab, dir string) {
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	for _, n := range l.Nodes() {
		if b, err := os.ReadFile(l.LogPath(n)); err == nil {
			os.WriteFile(filepath.Join(dir, n+".log"), b, 0o644)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// keepalivedConf is node i's keepalived configuration: VRRPv3 at its
// fastest advert interval.
func keepalivedConf(i int) string {
	return fmt.Sprintf(`global_defs {
  router_id n%d
  vrrp_version 3
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  nopreempt
  interface svc
  virtual_router_id 77
  priority %d
  advert_int 0.01
  garp_master_delay 1
  garp_master_repeat 5
  virtual_ipaddress {
    %s/24 dev svc
  }
}
`, i, 250-50*i, benchVIP)
}

// tachySetup configures the VIP through the CLI.
func tachySetup(ctx context.Context, l *lab.Lab, bin string) error {
	cli := func(args ...string) error {
		var last error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			out, err := exec.CommandContext(ctx, bin, append(args, "--socket", l.Socket("n1"))...).CombinedOutput()
			if err == nil || strings.Contains(string(out), "already") {
				return nil
			}
			last = fmt.Errorf("tachy %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return last
	}
	if err := cli("property", "set", "stonith-enabled=false", "no-quorum-policy=stop"); err != nil {
		return err
	}
	return cli("resource", "create", "vip1", "vip", "ip="+benchVIP, "cidr_netmask=24", "meta", "resource-stickiness=100")
}

// holders lists the nodes (among nodes) that answered the client's ARP
// questions for the VIP in the last 30 ms: the client's view, whatever the
// nodes have configured (tachy configures the VIP ahead on the nodes that
// would take it over, without answering for it there).
func holders(l *lab.Lab, p *Prober, nodes []string) []string {
	var out []string
	for _, mac := range p.Answering(30 * time.Millisecond) {
		for _, n := range nodes {
			var i int
			if _, err := fmt.Sscanf(n, "n%d", &i); err == nil && mac == fmt.Sprintf("02:77:02:00:00:%02x", i) {
				out = append(out, n)
			}
		}
	}
	return out
}

// stableHolder waits until one node, the same for 300 ms, holds the VIP.
func stableHolder(ctx context.Context, l *lab.Lab, p *Prober, nodes []string, timeout time.Duration) (string, error) {
	var cur string
	var since time.Time
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
		h := holders(l, p, nodes)
		if len(h) != 1 {
			cur = ""
			continue
		}
		if h[0] != cur {
			cur, since = h[0], time.Now()
		}
		if time.Since(since) >= 300*time.Millisecond {
			return cur, nil
		}
	}
	return "", fmt.Errorf("no single stable holder of %s within %v (answered by %v)", benchVIP, timeout, holders(l, p, nodes))
}

// readyForFault waits until the cluster is whole, one node holds the VIP
// (with, for tachy, a fast plan for its loss), and the client has been
// answered for 300 ms.
func readyForFault(ctx context.Context, l *lab.Lab, p *Prober, sys, bin string) (string, error) {
	if sys == "tachy" {
		if err := WaitConverged(l, l.Nodes(), "xdp", 30*time.Second); err != nil {
			return "", err
		}
	}
	for attempt := 0; attempt < 50 && ctx.Err() == nil; attempt++ {
		h, err := stableHolder(ctx, l, p, l.Nodes(), 60*time.Second)
		if err != nil {
			return "", err
		}
		if sys == "tachy" {
			doc, err := controller.Client{Socket: l.Socket(h)}.CIB()
			if err != nil || !strings.Contains(doc.XML, `<plan lost="`+h+`">`) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		t := time.Now()
		time.Sleep(300 * time.Millisecond)
		if p.Outage("udp", t, time.Now()) > 20*time.Millisecond || !p.AnsweredSince("udp", time.Now().Add(-20*time.Millisecond)) {
			continue
		}
		if hs := holders(l, p, l.Nodes()); len(hs) == 1 && hs[0] == h {
			return h, nil
		}
	}
	return "", fmt.Errorf("the VIP does not settle on one node answering the client")
}

// inject starts a fault on the holder h.
func inject(l *lab.Lab, fault, h string, survivors []string) error {
	switch fault {
	case "kill":
		// Links first: the machine is gone at once, as in a crash.
		if err := l.CutLinks(h); err != nil {
			return err
		}
		return l.Kill(h)
	case "pause":
		return l.Pause(h)
	case "partition":
		return l.Partition([][]string{{h}, survivors})
	}
	return fmt.Errorf("unknown fault %q (kill, pause, partition)", fault)
}

// recoverFault undoes a fault and waits until the node is back.
func recoverFault(ctx context.Context, l *lab.Lab, fault, h, sys string, servers *echoServers) error {
	switch fault {
	case "kill":
		// A rebooted machine carries no floating address: tachy's daemon
		// removes the ones it held when it starts (and until then its
		// XDP responder, which outlives the daemon, drops ARP and IPv4 for
		// them: their lease has ended); keepalived does not, so the
		// benchmark removes its address. The links come back last.
		if sys != "tachy" {
			// keepalived may have removed it itself (its interface went
			// down before it was killed).
			if b, err := exec.Command("ip", "-n", l.Namespace(h), "addr", "del", benchVIP+"/24", "dev", "svc").CombinedOutput(); err != nil &&
				!strings.Contains(string(b), "not found") && !strings.Contains(string(b), "Cannot assign") {
				return fmt.Errorf("removing %s from %s: %v: %s", benchVIP, h, err, b)
			}
		}
		if err := l.Start(h); err != nil {
			return err
		}
		if err := servers.start(h); err != nil {
			return err
		}
		if err := l.RestoreLinks(h); err != nil {
			return err
		}
	case "pause":
		if err := l.Resume(h); err != nil {
			return err
		}
	case "partition":
		if err := l.Heal(); err != nil {
			return err
		}
	}
	if sys == "tachy" {
		return WaitConverged(l, l.Nodes(), "xdp", 30*time.Second)
	}
	time.Sleep(500 * time.Millisecond) // VRRP settles in tens of ms
	return nil
}

// echoServers runs `tachy bench serve` (UDP echo, TCP accept) in nodes.
type echoServers struct {
	bin  string
	l    *lab.Lab
	mu   sync.Mutex
	cmds []*exec.Cmd
}

func (s *echoServers) start(node string) error {
	cmd := exec.Command("ip", "netns", "exec", s.l.Namespace(node), s.bin, "bench", "serve", "--port", fmt.Sprint(echoPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("echo server on %s: %w", node, err)
	}
	go cmd.Wait()
	s.mu.Lock()
	s.cmds = append(s.cmds, cmd)
	s.mu.Unlock()
	// Wait until it listens.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := exec.Command("ip", "netns", "exec", s.l.Namespace(node), "ss", "-Hltn", fmt.Sprintf("sport = :%d", echoPort)).Output(); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return nil
		}
	}
	return fmt.Errorf("echo server on %s does not listen", node)
}

func (s *echoServers) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cmds {
		if c.Process != nil {
			c.Process.Kill()
		}
	}
}

// Serve answers UDP echo and accepts TCP connections on port, until ctx
// ends: the service the failover benchmark probes on every node.
func Serve(ctx context.Context, port int) error {
	uc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	defer uc.Close()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		<-ctx.Done()
		uc.Close()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	buf := make([]byte, 2048)
	for {
		n, addr, err := uc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		uc.WriteTo(buf[:n], addr)
	}
}
