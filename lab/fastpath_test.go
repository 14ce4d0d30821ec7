package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/bench"
	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/lab"
)

// vipHolders lists the nodes (among nodes) whose svc interface carries ip.
func vipHolders(t *testing.T, l *lab.Lab, nodes []string, ip string) []string {
	t.Helper()
	var out []string
	for _, n := range nodes {
		b, err := exec.Command("ip", "-n", l.Namespace(n), "-o", "addr", "show", "dev", "svc").CombinedOutput()
		if err != nil {
			t.Fatalf("ip addr in %s: %v: %s", n, err, b)
		}
		if strings.Contains(string(b), " "+ip+"/") {
			out = append(out, n)
		}
	}
	return out
}

// holdersOf lists the nodes (among nodes) holding ip: for IPv4, those that
// answered the client's ARP questions in the last 30 ms (the nodes that
// would take a VIP over have its address configured ahead, unanswered);
// for IPv6, those carrying the address.
func holdersOf(t *testing.T, l *lab.Lab, p *bench.Prober, nodes []string, ip string) []string {
	t.Helper()
	if netip.MustParseAddr(ip).Is6() {
		return vipHolders(t, l, nodes, ip)
	}
	var out []string
	for _, mac := range p.Answering(30 * time.Millisecond) {
		for _, n := range nodes {
			if mac == fmt.Sprintf("02:77:02:00:00:%02x", nodeNumber(t, n)) {
				out = append(out, n)
			}
		}
	}
	return out
}

// waitHolder waits until exactly one of nodes holds ip, and returns it.
func waitHolder(t *testing.T, l *lab.Lab, p *bench.Prober, nodes []string, ip string, timeout time.Duration) string {
	t.Helper()
	var h string
	eventually(t, timeout, func() error {
		on := holdersOf(t, l, p, nodes, ip)
		if len(on) == 1 {
			h = on[0]
			return nil
		}
		return fmt.Errorf("%s is on %v", ip, on)
	})
	return h
}

// startFastCluster starts 3 nodes at 1 ms x 8 with the XDP receiver, and
// the given heartbeat.grant_window (0: the default).
func startFastCluster(t *testing.T, grantWindow time.Duration) *lab.Lab {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lab")
	_ = lab.DownAll(dir)
	l, err := lab.Up(context.Background(), lab.UpOptions{Nodes: 3, Dir: dir, Binary: tachyBinary(t), Interval: time.Millisecond, MissCount: 8, Receiver: "xdp",
		GrantWindow: grantWindow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes() {
				b, _ := os.ReadFile(l.LogPath(n))
				t.Logf("--- %s daemon log:\n%s", n, b)
			}
			for _, n := range l.Nodes() {
				if doc, err := (controller.Client{Socket: l.Socket(n)}).CIB(); err == nil {
					if i := strings.Index(doc.XML, "<status"); i >= 0 {
						t.Logf("--- %s CIB status:\n%s", n, doc.XML[i:])
					}
				}
			}
		}
		l.Down()
	})
	if err := bench.WaitConverged(l, l.Nodes(), "xdp", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return l
}

// The fast path of a floating IP in the lab: a vip resource (the built-in
// agent, created by its bare name) starts on the slow path; the DC stores
// the contingency plan; then
//   - the holder is killed (SIGKILL and links down): a survivor takes the
//     VIP over in well under 100 ms as a client probing every millisecond
//     sees it, and no ARP question is ever answered by two MACs;
//   - the new holder is partitioned from the majority: it releases the VIP
//     (its lease ends), a survivor takes it over, no dual answers;
//   - an IPv6 VIP moves when its holder is killed, and the client sees the
//     new holder's unsolicited neighbour advertisement.
func TestFastFailoverVIP(t *testing.T) { testFastFailover(t, 0, true) }

// The same for IPv4 with a grant window of 2 intervals (heartbeat.grant_window
// = "2ms"): views grant only the peers heard within it.
func TestFastFailoverVIPGrantWindow(t *testing.T) { testFastFailover(t, 2*time.Millisecond, false) }

// testFastFailover runs the IPv4 kill and partition; with all, the IPv6 kill
// and the IPaddr2 check too.
func testFastFailover(t *testing.T, grantWindow time.Duration, all bool) {
	needLab(t)
	l := startFastCluster(t, grantWindow)
	waitDC(t, l, l.Nodes(), 30*time.Second)
	// Idempotent: again if a change of DC left the outcome unknown.
	eventually(t, 30*time.Second, func() error {
		if out, err := tachyCLI(t, l, "n1", "property", "set", "stonith-enabled=false", "no-quorum-policy=stop"); err != nil {
			return fmt.Errorf("property set: %v: %s", err, out)
		}
		return nil
	})
	createResource(t, l, "vip1", "vip", "ip=10.77.2.100", "cidr_netmask=24", "meta", "resource-stickiness=100")
	const ip4 = "10.77.2.100"
	nodes := l.Nodes()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &bench.Prober{VIP: mustAddr(t, ip4), Interval: time.Millisecond}
	if err := bench.StartProber(ctx, l, p); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The latency bound is checked over up to 5 attempts per fault (a
	// machine shared with other work can stall all nodes at once, which
	// no failover protocol hides: at load average 15-20 on 2 cores, the
	// nodes' view frames stalled for 40-100 ms at times, the new holder's
	// lease ended and the slow path moved the VIP, in all of 3 attempts of
	// one fault in about one run in ten); safety is checked over all of
	// them.
	kill := func(h string) error {
		// Links first: the machine is gone at once, as in a crash (the
		// kill alone would leave its kernel answering for a moment).
		if err := l.CutLinks(h); err != nil {
			return err
		}
		return l.Kill(h)
	}
	restart := func(h, ip string) {
		// The daemon first, which removes the stale address a rebooted
		// machine would not have; then the links.
		if err := l.Start(h); err != nil {
			t.Fatal(err)
		}
		if netip.MustParseAddr(ip).Is6() {
			// IPv6 has no XDP guard: the address must be gone first.
			eventually(t, 10*time.Second, func() error {
				if on := vipHolders(t, l, []string{h}, ip); len(on) != 0 {
					return fmt.Errorf("the restarted %s still carries %s", h, ip)
				}
				return nil
			})
		}
		if err := l.RestoreLinks(h); err != nil {
			t.Fatal(err)
		}
	}
	failover(t, l, p, "kill", ip4, "vip1", kill, func(h string) { restart(h, ip4) })
	failover(t, l, p, "partition", ip4, "vip1", func(h string) error {
		return l.Partition([][]string{{h}, without(nodes, h)})
	}, func(string) {
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
	})
	time.Sleep(time.Second)
	p.Close()
	dual, changes, perMAC := p.Owners()
	t.Logf("ARP: owner changes %v, answers per MAC %v", changes, perMAC)
	if dual != 0 {
		t.Errorf("%d ARP questions were answered by two MACs", dual)
	}
	if len(changes) < 2 {
		t.Errorf("the ARP prober saw %d owners, want at least 2 (it is not seeing the answers)", len(changes))
	}
	if !all {
		return
	}

	// IPv6: the new holder's unsolicited neighbour advertisement reaches
	// the client.
	const ip6 = "fd77:0:0:2::100"
	createResource(t, l, "vip6", "vip", "ip="+ip6, "cidr_netmask=64", "meta", "resource-stickiness=100")
	p6 := &bench.Prober{VIP: mustAddr(t, ip6), Interval: time.Millisecond}
	if err := bench.StartProber(ctx, l, p6); err != nil {
		t.Fatal(err)
	}
	defer p6.Close()
	failover(t, l, p6, "IPv6 kill", ip6, "vip6", kill, func(h string) { restart(h, ip6) })

	// ocf:heartbeat:IPaddr2 still runs through lrmd (slow path only: the
	// DC stores no fast plan for it).
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/IPaddr2"); err == nil {
		createResource(t, l, "ipa", "ocf:heartbeat:IPaddr2", "ip=10.77.2.110", "cidr_netmask=24", "nic=svc")
		if err := l.Ping("client", mustAddr(t, "10.77.2.110"), 30*time.Second); err != nil {
			t.Errorf("IPaddr2's address does not answer the client: %v", err)
		}
		// The read goes through the DC: again if a change of DC
		// interrupted it.
		var doc *controller.CIBDocument
		eventually(t, 30*time.Second, func() (err error) {
			doc, err = controller.Client{Socket: l.Socket("n1")}.CIB()
			return err
		})
		if strings.Contains(doc.XML, `resource="ipa"`) {
			t.Error("the DC stored a fast plan for an IPaddr2 resource")
		}
	}
}

func without(nodes []string, n string) []string {
	return slices.DeleteFunc(slices.Clone(nodes), func(m string) bool { return m == n })
}

// failover injects a fault into the holder of ip (up to 5 times, until the
// client's outage is under 100 ms), checks that a survivor takes over, and
// undoes the fault. For an IPv6 address, the client must see the new
// holder's unsolicited neighbour advertisement.
func failover(t *testing.T, l *lab.Lab, p *bench.Prober, name, ip, rsc string, fault func(string) error, undo func(string)) {
	t.Helper()
	all := l.Nodes()
	var outages []time.Duration
	for attempt := 1; attempt <= 5; attempt++ {
		if err := bench.WaitConverged(l, all, "xdp", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		holder := settle(t, l, p, all, ip, rsc)
		survivors := without(all, holder)
		start := time.Now()
		if err := fault(holder); err != nil {
			t.Fatal(err)
		}
		next := waitHolder(t, l, p, survivors, ip, 20*time.Second)
		eventually(t, 10*time.Second, func() error {
			if on := holdersOf(t, l, p, []string{holder}, ip); len(on) != 0 && name == "partition" {
				return fmt.Errorf("the cut-off %s still answers for %s", holder, ip)
			}
			if !p.AnsweredSince("icmp", time.Now().Add(-50*time.Millisecond)) {
				return fmt.Errorf("%s: the client gets no answer from %s", name, ip)
			}
			return nil
		})
		outage := p.Outage("icmp", start, time.Now())
		t.Logf("%s of %s (attempt %d): %s took over, client outage %v", name, holder, attempt, next, outage)
		if netip.MustParseAddr(ip).Is6() {
			mac := fmt.Sprintf("02:77:02:00:00:%02x", nodeNumber(t, next))
			// The prober's reader can be behind the client's kernel (whose
			// neighbour cache has taken the NA already: the client gets
			// answers) when the machine is busy: it is woken by Go's
			// network poller, the ICMP reader that saw the answers is
			// not. Wait for it to catch up.
			var sawNA bool
			waitFrom := time.Now()
			for deadline := time.Now().Add(2 * time.Second); !sawNA && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				for _, na := range p.NAs() {
					if na.MAC == mac && na.At.After(start) {
						sawNA = true
						t.Logf("the client read %s's NA %v after the fault (the check waited %v for it)", next, na.At.Sub(start), time.Since(waitFrom))
						break
					}
				}
			}
			if !sawNA {
				t.Errorf("the client saw no unsolicited neighbour advertisement of %s from %s (%s): %v", ip, next, mac, p.NAs())
			}
		}
		undo(holder)
		outages = append(outages, outage)
		if outage >= 0 && outage < 100*time.Millisecond {
			return
		}
	}
	t.Errorf("%s: client outages %v, want one well under 100 ms", name, outages)
}

// settle waits until one node of nodes holds ip with a fast plan for its
// loss moving rsc, and the client has been answered for the last 200 ms.
func settle(t *testing.T, l *lab.Lab, p *bench.Prober, nodes []string, ip, rsc string) string {
	t.Helper()
	var h string
	eventually(t, 60*time.Second, func() error {
		on := holdersOf(t, l, p, nodes, ip)
		if len(on) != 1 {
			return fmt.Errorf("%s is on %v", ip, on)
		}
		// Every node's copy of the CIB must have the plan: the taker acts
		// on its own copy, and a node that has just restarted or rejoined
		// (the last fault's) may still be catching up with the log (it
		// took 1.5 s once): until then a loss moves the VIP on the slow
		// path only, which is not what this test measures.
		for _, n := range nodes {
			doc, err := controller.Client{Socket: l.Socket(n)}.CIB()
			if err != nil {
				return err
			}
			if !hasPlan(doc.XML, on[0], rsc) {
				return fmt.Errorf("no fast plan for the loss of %s moving %s in %s's CIB yet", on[0], rsc, n)
			}
		}
		from := time.Now()
		time.Sleep(200 * time.Millisecond)
		if g := p.Outage("icmp", from, time.Now()); g < 0 || g > 10*time.Millisecond {
			return fmt.Errorf("the client's answers from %s are not steady (gap %v)", ip, g)
		}
		if now := holdersOf(t, l, p, nodes, ip); len(now) != 1 || now[0] != on[0] {
			return fmt.Errorf("%s moved from %s to %v", ip, on[0], now)
		}
		h = on[0]
		return nil
	})
	return h
}

// hasPlan reports whether the CIB document holds a fast plan for the loss
// of lost that moves rsc.
func hasPlan(doc, lost, rsc string) bool {
	i := strings.Index(doc, `<plan lost="`+lost+`">`)
	if i < 0 {
		return false
	}
	end := strings.Index(doc[i:], "</plan>")
	return end >= 0 && strings.Contains(doc[i:i+end], `resource="`+rsc+`"`)
}

// createResource creates a resource, again if a change of DC left the
// outcome unknown and it is not there.
func createResource(t *testing.T, l *lab.Lab, args ...string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		out, err := tachyCLI(t, l, "n1", append([]string{"resource", "create"}, args...)...)
		if err == nil || strings.Contains(out, "already") {
			return nil
		}
		if cfg, err2 := tachyCLI(t, l, "n1", "config", "export"); err2 == nil && strings.Contains(cfg, `id="`+args[0]+`"`) {
			return nil
		}
		return fmt.Errorf("resource create %s: %v: %s", args[0], err, out)
	})
}

func nodeNumber(t *testing.T, node string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(node, "n%d", &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
