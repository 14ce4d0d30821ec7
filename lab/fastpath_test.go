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

// waitHolder waits until exactly one of nodes carries ip, and returns it.
func waitHolder(t *testing.T, l *lab.Lab, nodes []string, ip string, timeout time.Duration) string {
	t.Helper()
	var h string
	eventually(t, timeout, func() error {
		on := vipHolders(t, l, nodes, ip)
		if len(on) == 1 {
			h = on[0]
			return nil
		}
		return fmt.Errorf("%s is on %v", ip, on)
	})
	return h
}

// waitPlan waits until the CIB's fast plans have a take-over of rsc for the
// loss of holder.
func waitPlan(t *testing.T, l *lab.Lab, node, holder, rsc string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		doc, err := controller.Client{Socket: l.Socket(node)}.CIB()
		if err != nil {
			return err
		}
		i := strings.Index(doc.XML, `<plan lost="`+holder+`">`)
		if i < 0 || !strings.Contains(doc.XML[i:i+strings.Index(doc.XML[i:], "</plan>")], `resource="`+rsc+`"`) {
			return fmt.Errorf("no fast plan for the loss of %s moving %s yet", holder, rsc)
		}
		return nil
	})
}

func startFastCluster(t *testing.T) *lab.Lab {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lab")
	_ = lab.DownAll(dir)
	l, err := lab.Up(context.Background(), lab.UpOptions{Nodes: 3, Dir: dir, Binary: tachyBinary(t), Interval: time.Millisecond, MissCount: 8, Receiver: "xdp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes() {
				b, _ := os.ReadFile(l.LogPath(n))
				t.Logf("--- %s daemon log:\n%s", n, b)
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
func TestFastFailoverVIP(t *testing.T) {
	needLab(t)
	l := startFastCluster(t)
	waitDC(t, l, l.Nodes(), 30*time.Second)
	mustCLI(t, l, "n1", "property", "set", "stonith-enabled=false", "no-quorum-policy=stop")
	createResource(t, l, "vip1", "vip", "ip=10.77.2.100", "cidr_netmask=24")
	const ip4 = "10.77.2.100"
	all := l.Nodes()
	holder := waitHolder(t, l, all, ip4, 30*time.Second)
	waitPlan(t, l, "n1", holder, "vip1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &bench.Prober{VIP: mustAddr(t, ip4), Interval: time.Millisecond}
	if err := bench.StartProber(ctx, l, p); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	time.Sleep(300 * time.Millisecond)
	if !p.AnsweredSince("icmp", time.Now().Add(-100*time.Millisecond)) {
		t.Fatal("the VIP does not answer the client before any fault")
	}

	// 1. Kill the holder.
	fault := time.Now()
	// Links first: the machine is gone at once, as in a crash (the
	// kill alone would leave its kernel answering for a moment).
	if err := l.CutLinks(holder); err != nil {
		t.Fatal(err)
	}
	if err := l.Kill(holder); err != nil {
		t.Fatal(err)
	}
	survivors := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == holder })
	next := waitHolder(t, l, survivors, ip4, 10*time.Second)
	eventually(t, 5*time.Second, func() error {
		if !p.AnsweredSince("icmp", time.Now().Add(-50*time.Millisecond)) {
			return fmt.Errorf("the client gets no answer from the VIP after the kill")
		}
		return nil
	})
	outage := p.Outage("icmp", fault, time.Now())
	t.Logf("kill of %s: %s took over, client outage %v", holder, next, outage)
	if outage < 0 || outage > 100*time.Millisecond {
		t.Errorf("client outage %v after the kill of the holder, want well under 100 ms", outage)
	}
	// The killed node comes back (its daemon first, which removes the
	// stale address a crashed machine's reboot would have removed; then
	// its links).
	if err := l.Start(holder); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if on := vipHolders(t, l, []string{holder}, ip4); len(on) != 0 {
			return fmt.Errorf("the restarted %s still carries %s", holder, ip4)
		}
		return nil
	})
	if err := l.RestoreLinks(holder); err != nil {
		t.Fatal(err)
	}
	if err := bench.WaitConverged(l, all, "xdp", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// The slow path may move the VIP back (no stickiness); let it settle.
	time.Sleep(2 * time.Second)
	holder = waitHolder(t, l, all, ip4, 20*time.Second)
	waitPlan(t, l, holder, holder, "vip1")
	time.Sleep(2 * time.Second)
	if h := waitHolder(t, l, all, ip4, 20*time.Second); h != holder {
		holder = h
		waitPlan(t, l, holder, holder, "vip1")
	}

	// 2. Partition the holder from the majority.
	survivors = slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == holder })
	fault = time.Now()
	if err := l.Partition([][]string{{holder}, survivors}); err != nil {
		t.Fatal(err)
	}
	next = waitHolder(t, l, survivors, ip4, 10*time.Second)
	eventually(t, 5*time.Second, func() error {
		if on := vipHolders(t, l, []string{holder}, ip4); len(on) != 0 {
			return fmt.Errorf("the cut-off %s still carries %s", holder, ip4)
		}
		if !p.AnsweredSince("icmp", time.Now().Add(-50*time.Millisecond)) {
			return fmt.Errorf("the client gets no answer from the VIP after the partition")
		}
		return nil
	})
	outage = p.Outage("icmp", fault, time.Now())
	t.Logf("partition of %s: %s took over, client outage %v", holder, next, outage)
	if outage < 0 || outage > 100*time.Millisecond {
		t.Errorf("client outage %v after the partition of the holder, want well under 100 ms", outage)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := bench.WaitConverged(l, all, "xdp", 20*time.Second); err != nil {
		t.Fatal(err)
	}
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

	// 3. IPv6.
	const ip6 = "fd77:0:0:2::100"
	createResource(t, l, "vip6", "vip", "ip="+ip6, "cidr_netmask=64")
	holder6 := waitHolder(t, l, all, ip6, 30*time.Second)
	waitPlan(t, l, "n1", holder6, "vip6")
	p6 := &bench.Prober{VIP: mustAddr(t, ip6), Interval: time.Millisecond}
	if err := bench.StartProber(ctx, l, p6); err != nil {
		t.Fatal(err)
	}
	defer p6.Close()
	time.Sleep(300 * time.Millisecond)
	if !p6.AnsweredSince("icmp", time.Now().Add(-100*time.Millisecond)) {
		t.Fatal("the IPv6 VIP does not answer the client before any fault")
	}
	fault = time.Now()
	// Links first: the machine is gone at once, as in a crash (the
	// kill alone would leave its kernel answering for a moment).
	if err := l.CutLinks(holder6); err != nil {
		t.Fatal(err)
	}
	if err := l.Kill(holder6); err != nil {
		t.Fatal(err)
	}
	survivors = slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == holder6 })
	next6 := waitHolder(t, l, survivors, ip6, 10*time.Second)
	eventually(t, 5*time.Second, func() error {
		if !p6.AnsweredSince("icmp", time.Now().Add(-50*time.Millisecond)) {
			return fmt.Errorf("the client gets no answer from the IPv6 VIP after the kill")
		}
		return nil
	})
	outage = p6.Outage("icmp", fault, time.Now())
	mac := fmt.Sprintf("02:77:02:00:00:%02x", nodeNumber(t, next6))
	var sawNA bool
	for _, na := range p6.NAs() {
		if na.MAC == mac && na.At.After(fault) {
			sawNA = true
		}
	}
	t.Logf("IPv6: kill of %s: %s took over, client outage %v, NAs %v", holder6, next6, outage, p6.NAs())
	if !sawNA {
		t.Errorf("the client saw no unsolicited neighbour advertisement of %s from %s (%s)", ip6, next6, mac)
	}
	if outage < 0 || outage > 100*time.Millisecond {
		t.Errorf("IPv6 client outage %v, want well under 100 ms", outage)
	}
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
