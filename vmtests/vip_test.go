package vmtests

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The VIP scenarios: a floating IP (the built-in vip agent) on ring 0,
// fencing through the hypervisor, stickiness so that a node coming back
// does not take the VIP back (any claim of it by a failed holder is then
// a second owner). The host pings the VIP every 20 ms; the
// switch records every ARP claim for it (dual ownership: a node claiming
// the VIP after another has taken it over).

const vipAddr = "10.77.0.100"

var vipIP = [4]byte{10, 77, 0, 100}

const vipCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="true"/><nvpair id="p2" name="no-quorum-policy" value="stop"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="hypervisor" class="stonith" type="fence_tachy_qmp"><instance_attributes id="hv-ia">
<nvpair id="hv-qmp" name="qmp" value="tcp:10.77.0.254:%s"/>
<nvpair id="hv-map" name="pcmk_host_map" value="n1:4401;n2:4402;n3:4403"/></instance_attributes></primitive>
<primitive id="vip" class="ocf" provider="tachy" type="vip"><instance_attributes id="vip-ia">
<nvpair id="vip-ip" name="ip" value="10.77.0.100"/><nvpair id="vip-nm" name="cidr_netmask" value="24"/><nvpair id="vip-nic" name="nic" value="eth0"/></instance_attributes>
<operations><op id="vip-mon" name="monitor" interval="1s" timeout="10s"/></operations></primitive>
</resources><constraints/>
<rsc_defaults><meta_attributes id="rd"><nvpair id="rd-stick" name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults>
</configuration><status/></cib>`

// vipLab boots 3 VMs, configures fencing and the VIP, and returns the lab
// and the node holding the VIP.
func vipLab(t *testing.T, ctx context.Context) (*Lab, string) {
	t.Helper()
	l := startLab(t, ctx, Options{Nodes: 3, Files: map[string]string{"cib.xml": vipCIB}})
	// The host's neighbour entry for the VIP must follow a takeover at
	// once (Linux ignores updates within locktime, 1 s by default).
	exec.Command("sysctl", "-qw", "net.ipv4.neigh.tvm0.locktime=0").Run()
	dcOf(t, ctx, l, "n1")
	importCIB(t, ctx, l)
	holder := waitVIP(t, ctx, l, "n1", "")
	t.Logf("the VIP runs on %s", holder)
	return l, holder
}

// waitVIP waits until node's status shows the VIP on one node other than
// not, and returns it.
func waitVIP(t *testing.T, ctx context.Context, l *Lab, node, not string) string {
	t.Helper()
	var holder string
	if err := Eventually(ctx, func() error {
		st, err := l.Status(ctx, node)
		if err != nil {
			return err
		}
		on := st.Where("vip")
		if len(on) != 1 || on[0] == not {
			return fmt.Errorf("vip on %v", on)
		}
		holder = on[0]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return holder
}

func macOf(v *VM) [6]byte { return [6]byte{0x52, 0x54, 0, 0x77, 0, byte(v.Index)} }

// pinger pings the VIP from the host every 20 ms and records the replies'
// times.
type pinger struct {
	cmd     *exec.Cmd
	replies chan time.Time
	all     []time.Time
}

func startPinger(t *testing.T) *pinger {
	t.Helper()
	p := &pinger{replies: make(chan time.Time, 100000)}
	p.cmd = exec.Command("ping", "-n", "-D", "-i", "0.02", "-W", "0.2", vipAddr)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Skipf("ping: %v", err)
	}
	re := regexp.MustCompile(`^\[(\d+)\.(\d+)\] \d+ bytes from`)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				sec, _ := strconv.ParseInt(m[1], 10, 64)
				frac, _ := strconv.ParseFloat("0."+m[2], 64)
				p.replies <- time.Unix(sec, int64(frac*1e9))
			}
		}
		close(p.replies)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

// outage waits until the VIP answers again after a failure at since, and
// returns the gap in replies around it: the first gap of over 100 ms (five
// pings) that ends after since. (A reply the holder sent just before a
// pause took effect can arrive after since: it does not end the outage.)
func (p *pinger) outage(t *testing.T, ctx context.Context, since time.Time) time.Duration {
	t.Helper()
	last := since
	for {
		select {
		case r, ok := <-p.replies:
			if !ok {
				t.Fatal("ping ended")
			}
			p.all = append(p.all, r)
			if r.Before(since) || r.Sub(last) <= 100*time.Millisecond {
				last = r
				continue
			}
			return r.Sub(last)
		case <-ctx.Done():
			t.Fatal("the VIP did not answer again")
		}
	}
}

// releaseTap records, on every VM, the lines saying a node released its
// floating IPs because its quorum lease ended (under TCG a node stalled
// past the lease, or the only other live node did, and quorum was lost for
// a moment: the release is the safety rule at work).
func releaseTap(l *Lab) func() []ConsoleLine {
	var taps []func() []ConsoleLine
	for _, v := range l.VMs {
		taps = append(taps, v.Tap("quorum lease ended: floating IPs released"))
	}
	return func() []ConsoleLine {
		var all []ConsoleLine
		for _, tap := range taps {
			all = append(all, tap()...)
		}
		return all
	}
}

// noClaimsAfter fails if the MAC claimed the VIP after t0, unless every
// other node that had taken it over had released it (lease ended, as its
// console says) before the claim: then the VIP was on no node, and the
// slow path could start it anywhere, the failed node included. The
// console line is read after it was printed, so the release came first.
func noClaimsAfter(t *testing.T, claims []ARPClaim, mac [6]byte, t0 time.Time, who string, released []ConsoleLine) {
	t.Helper()
	for _, c := range claims {
		if c.MAC == mac && c.At.After(t0) {
			if r, ok := releasedBefore(claims, released, mac, t0, c.At); ok {
				t.Logf("%s claimed the VIP again at %s, after the holder released it at %s (lease ended): not a second owner",
					who, c.At.Format(time.TimeOnly+".000"), r.Format(time.TimeOnly+".000"))
				return
			}
			t.Fatalf("dual ownership: %s (%x) claimed the VIP at %s, after it failed at %s",
				who, mac, c.At.Format(time.TimeOnly+".000"), t0.Format(time.TimeOnly+".000"))
		}
	}
}

// releasedBefore reports whether a lease release was read from a console
// after the last claim by another MAC since t0 and before at.
func releasedBefore(claims []ARPClaim, released []ConsoleLine, mac [6]byte, t0, at time.Time) (time.Time, bool) {
	var lastOther time.Time
	for _, c := range claims {
		if c.MAC != mac && c.At.After(t0) && c.At.Before(at) && c.At.After(lastOther) {
			lastOther = c.At
		}
	}
	if lastOther.IsZero() {
		return time.Time{}, false
	}
	for _, r := range released {
		if r.At.After(lastOther) && r.At.Before(at) {
			return r.At, true
		}
	}
	return time.Time{}, false
}

// firstClaimBy is when mac first claimed the VIP after t0.
func firstClaimBy(claims []ARPClaim, mac [6]byte, t0 time.Time) (time.Time, bool) {
	for _, c := range claims {
		if c.MAC == mac && c.At.After(t0) {
			return c.At, true
		}
	}
	return time.Time{}, false
}

// The VIP holder's power is cut: another node answers for the VIP (the
// fast path), the dead node is fenced through its power switch and boots
// again; it never claims the VIP again.
func TestVIPHolderKilled(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	l, holder := vipLab(t, ctx)
	claims, stop := l.Switches[0].WatchARP(vipIP)
	released := releaseTap(l)
	defer stop()
	p := startPinger(t)
	time.Sleep(time.Second)
	v := l.VM(holder)
	killed := time.Now()
	v.Kill()
	out := p.outage(t, ctx, killed)
	survivor := "n1"
	if survivor == holder {
		survivor = "n2"
	}
	next := waitVIP(t, ctx, l, survivor, holder)
	t.Logf("VIP on %s again; the host saw no reply for %v (ping every 20 ms; detection 200 ms at the lab's heartbeat)", next, out.Round(time.Millisecond))
	waitFenced(t, ctx, l, holder)
	v.WaitFor(ctx, "tachy: node "+holder+" ready")
	time.Sleep(3 * time.Second)
	noClaimsAfter(t, claims(), macOf(v), killed, holder, released())
}

// The holder is cut off from the others (both rings; the host stays with
// the majority): it loses quorum and stops answering for the VIP (probed
// on its own port) before a survivor first claims it.
func TestVIPHolderPartitioned(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	l, holder := vipLab(t, ctx)
	claims, stop := l.Switches[0].WatchARP(vipIP)
	defer stop()
	rest := othersThan(l, holder)
	probeDone := make(chan struct{})
	go func() { // ask the holder, on its side of the cut, every 10 ms
		for {
			select {
			case <-probeDone:
				return
			case <-time.After(10 * time.Millisecond):
				l.Switches[0].Inject(holder, ARPRequest(vipIP))
			}
		}
	}()
	defer close(probeDone)
	time.Sleep(time.Second)
	cut := time.Now()
	l.Switches[0].Partition([][]string{{holder}, append(append([]string{}, rest...), "host")})
	l.Switches[1].Partition([][]string{{holder}, rest})
	next := waitVIP(t, ctx, l, rest[0], holder)
	old := macOf(l.VM(holder))
	took, ok := firstClaimBy(claims(), macOf(l.VM(next)), cut)
	if !ok {
		t.Fatalf("%s runs the VIP but never claimed it", next)
	}
	last := cut
	for _, c := range claims() {
		if c.MAC == old && c.At.After(last) {
			last = c.At
		}
	}
	if last.After(took) {
		t.Fatalf("dual ownership: %s answered for the VIP until %s, %s claimed it at %s",
			holder, last.Format(time.TimeOnly+".000"), next, took.Format(time.TimeOnly+".000"))
	}
	t.Logf("cut at 0: %s last answered at +%v, %s claimed the VIP at +%v", holder, last.Sub(cut).Round(time.Millisecond), next, took.Sub(cut).Round(time.Millisecond))
	l.Switches[0].Partition(nil)
	l.Switches[1].Partition(nil)
}

// The holder is paused longer than the failure timeout: the others take
// the VIP over and fence it (the power switch resets it, which also ends
// the pause); it never claims the VIP after the takeover.
func TestVIPHolderPaused(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	l, holder := vipLab(t, ctx)
	claims, stop := l.Switches[0].WatchARP(vipIP)
	released := releaseTap(l)
	defer stop()
	p := startPinger(t)
	time.Sleep(time.Second)
	v := l.VM(holder)
	paused := time.Now()
	if err := v.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	out := p.outage(t, ctx, paused)
	waitFenced(t, ctx, l, holder)
	t.Logf("paused %s: the VIP answered again after %v; %s fenced %.1f s after the pause", holder, out.Round(time.Millisecond), holder, time.Since(paused).Seconds())
	v.WaitFor(ctx, "tachy: node "+holder+" ready")
	time.Sleep(3 * time.Second)
	noClaimsAfter(t, claims(), macOf(v), paused.Add(out), holder, released())
}

// Two failures in a row: the holder dies, the VIP moves; once the fenced
// node is back, the new holder dies too, and the VIP moves again.
func TestVIPTwoFailures(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l, first := vipLab(t, ctx)
	p := startPinger(t)
	time.Sleep(time.Second)
	observer := func(not ...string) string {
		for _, v := range l.VMs {
			if !strings.Contains(strings.Join(not, " "), v.Name) {
				return v.Name
			}
		}
		return ""
	}
	v1 := l.VM(first)
	back := v1.Expect("tachy: node " + first + " ready")
	t1 := time.Now()
	v1.Kill()
	out1 := p.outage(t, ctx, t1)
	second := waitVIP(t, ctx, l, observer(first), first)
	if _, err := back(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // it rejoins the cluster
	v2 := l.VM(second)
	t2 := time.Now()
	v2.Kill()
	out2 := p.outage(t, ctx, t2)
	third := waitVIP(t, ctx, l, observer(second), second)
	t.Logf("VIP %s -> %s (outage %v) -> %s (outage %v)", first, second, out1.Round(time.Millisecond), third, out2.Round(time.Millisecond))
}
