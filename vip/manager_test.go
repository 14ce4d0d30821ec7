package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/internal/netnstest"
)

// The Manager in a namespace: Start puts the VIP on the interface whose
// subnet holds it and a neighbour resolves it to that interface's MAC (from
// the XDP responder); once the lease has ended, the neighbour's questions go
// unanswered although the address is still configured; Stop takes it off.
func TestManagerInNamespaces(t *testing.T) {
	netnstest.Enter(t, "ping")
	peer := fmt.Sprintf("tachy-vipmgr-%d", os.Getpid())
	run := func(args ...string) string { t.Helper(); return netnstest.Run(t, args...) }
	run("ip", "netns", "add", peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", peer).Run() })
	run("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1")
	run("ip", "link", "set", "sv1", "netns", peer)
	run("ip", "addr", "add", "10.98.0.1/24", "dev", "sv0")
	run("ip", "link", "set", "sv0", "up")
	in := func(args ...string) string { return run(append([]string{"ip", "netns", "exec", peer}, args...)...) }
	in("ip", "addr", "add", "10.98.0.2/24", "dev", "sv1")
	in("ip", "link", "set", "sv1", "up")
	sv0, err := net.InterfaceByName("sv0")
	if err != nil {
		t.Fatal(err)
	}

	// ARP probes: the neighbour's address is in use, a free one is not.
	peerMAC := strings.Fields(in("cat", "/sys/class/net/sv1/address"))[0]
	if mac, err := InUse(sv0, netip.MustParseAddr("10.98.0.2"), 50*time.Millisecond); err != nil || mac.String() != peerMAC {
		t.Fatalf("InUse of the neighbour's address: %v, %v; want %s", mac, err, peerMAC)
	}
	if mac, err := InUse(sv0, netip.MustParseAddr("10.98.0.77"), 10*time.Millisecond); err != nil || mac != nil {
		t.Fatalf("InUse of a free address: %v, %v", mac, err)
	}
	// An answer that arrived while the prober was not running is found
	// once its deadline has passed (Go reports the deadline without
	// reading: a late goroutine took a used address for a free one).
	{
		c, err := packet.Listen(sv0, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			t.Fatal(err)
		}
		probe, _ := ARPRequest(sv0.HardwareAddr, netip.IPv4Unspecified(), netip.MustParseAddr("10.98.0.2"))
		if _, err := c.WriteTo(probe, &packet.Addr{HardwareAddr: broadcastMAC}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the answer is queued
		c.SetReadDeadline(time.Now().Add(-time.Millisecond))
		buf := make([]byte, 1500)
		if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a read past its deadline: %v", err)
		}
		if mac, err := queuedAnswer(c, buf, sv0, netip.MustParseAddr("10.98.0.2")); err != nil || mac.String() != peerMAC {
			t.Fatalf("the queued answer: %v, %v; want %s", mac, err, peerMAC)
		}
		c.Close()
	}
	// A probing start refuses an address in use.
	probing := NewManager()
	if err := probing.Start(Spec{IP: netip.MustParseAddr("10.98.0.2"), Bits: -1, Probe: 50 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a probing start of an address in use: %v", err)
	}
	// The fast path's take-over skips the probe (once).
	probing.SkipProbe(netip.MustParseAddr("10.98.0.2"))
	taken := Spec{IP: netip.MustParseAddr("10.98.0.2"), Bits: -1, Probe: 50 * time.Millisecond}
	if err := probing.Start(taken); err != nil {
		t.Fatalf("a start after SkipProbe: %v", err)
	}
	if err := probing.Stop(taken); err != nil {
		t.Fatal(err)
	}
	if err := probing.Start(taken); err == nil {
		t.Fatal("SkipProbe lasted beyond one start")
	}
	probing.Close()

	m := NewManager()
	m.Responder = true
	m.Logf = t.Logf
	m.StateFile = filepath.Join(t.TempDir(), "vips")
	s := Spec{IP: netip.MustParseAddr("10.98.0.100"), Bits: -1}
	if up, err := m.Running(s); err != nil || up {
		t.Fatalf("before Start: running %v, %v", up, err)
	}
	if err := m.Start(s); err != nil {
		t.Fatal(err)
	}
	if up, err := m.Running(s); err != nil || !up {
		t.Fatalf("after Start: running %v, %v", up, err)
	}
	if !hasAddr(t, "sv0", s.IP) {
		t.Fatal("VIP not on sv0")
	}
	if got := m.Held(); len(got) != 1 || got[0] != s.IP {
		t.Fatalf("held %v", got)
	}
	resolved := func() string {
		in("ip", "neigh", "flush", "dev", "sv1")
		_ = exec.Command("ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "0.3", s.IP.String()).Run()
		return in("ip", "neigh", "show", s.IP.String(), "dev", "sv1")
	}
	if got := resolved(); !strings.Contains(got, sv0.HardwareAddr.String()) {
		t.Fatalf("the neighbour resolved %s as %q, want %s", s.IP, got, sv0.HardwareAddr)
	}

	time.Sleep(50 * time.Millisecond) // the repeated announcements are out
	m.SetLease(monotonicNow() - 1)
	if got := resolved(); strings.Contains(got, sv0.HardwareAddr.String()) {
		t.Fatalf("lease ended, yet the neighbour resolved %s as %q", s.IP, got)
	}
	if err := m.Start(Spec{IP: netip.MustParseAddr("10.98.0.101"), Bits: -1}); err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("Start without a lease: %v", err)
	}
	m.SetLease(monotonicNow() + int64(time.Hour))
	if got := resolved(); !strings.Contains(got, sv0.HardwareAddr.String()) {
		t.Fatalf("lease renewed: the neighbour resolved %s as %q", s.IP, got)
	}

	for range 2 {
		if err := m.Stop(s); err != nil {
			t.Fatal(err)
		}
	}
	// A take-over made ready ahead uses what was prepared.
	ready := Spec{IP: netip.MustParseAddr("10.98.0.102"), Bits: -1}
	m.Prepare([]Spec{ready})
	m.mu.Lock()
	prepared := m.prepared[ready.IP]
	m.mu.Unlock()
	if prepared == nil || !prepared.standby {
		t.Fatalf("Prepare prepared %+v, want a standby take-over", prepared)
	}
	// Configured ahead, but not answered for, and not running.
	if !hasAddr(t, "sv0", ready.IP) {
		t.Fatal("the prepared VIP is not configured")
	}
	if up, err := m.Running(ready); err != nil || up {
		t.Fatalf("a prepared VIP runs: %v %v", up, err)
	}
	resolvedReady := func() string {
		in("ip", "neigh", "flush", "dev", "sv1")
		_ = exec.Command("ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "0.3", ready.IP.String()).Run()
		return in("ip", "neigh", "show", ready.IP.String(), "dev", "sv1")
	}
	if got := resolvedReady(); strings.Contains(got, sv0.HardwareAddr.String()) {
		t.Fatalf("the neighbour resolved a VIP only prepared: %q", got)
	}
	if err := m.Start(ready); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	used := m.held[ready.IP] != nil && m.held[ready.IP].ann == prepared.ann && m.prepared[ready.IP] == nil
	m.mu.Unlock()
	if !used || !hasAddr(t, "sv0", ready.IP) {
		t.Fatalf("Start did not use the prepared take-over (used %v)", used)
	}
	if got := resolvedReady(); !strings.Contains(got, sv0.HardwareAddr.String()) {
		t.Fatalf("the neighbour resolved the started VIP as %q", got)
	}
	if err := m.Stop(ready); err != nil {
		t.Fatal(err)
	}
	// A Stop that comes while Prepare configures the address (the release
	// of a lapsed lease recorded as the plans are prepared again) waits
	// for it, then takes the prepared take-over down whole: no standby
	// take-over is left without its address.
	race := Spec{IP: netip.MustParseAddr("10.98.0.104"), Bits: -1, Nic: "sv0"}
	stopped := make(chan error, 1)
	ns, err := os.Open("/proc/thread-self/ns/net") // the test's namespace, for the Stop's thread
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	m.afterPrepareAdd = func(netip.Addr) {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends in the namespace
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				stopped <- err
				return
			}
			stopped <- m.Stop(race)
		}()
		time.Sleep(50 * time.Millisecond) // the Stop runs now, or waits for Prepare
	}
	m.Prepare([]Spec{race})
	m.afterPrepareAdd = nil
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	standby := m.prepared[race.IP] != nil && m.prepared[race.IP].standby
	m.mu.Unlock()
	if standby && !hasAddr(t, "sv0", race.IP) {
		t.Fatal("a standby take-over without its address: a Stop came between Prepare's netlink request and its record")
	}
	m.Prepare(nil)

	// A take-over whose address configured ahead has gone meanwhile puts
	// it back (ensureConfigured), a few milliseconds after.
	gone := Spec{IP: netip.MustParseAddr("10.98.0.105"), Bits: -1}
	m.Prepare([]Spec{gone})
	run("ip", "addr", "del", "10.98.0.105/24", "dev", "sv0")
	if err := m.Start(gone); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); !hasAddr(t, "sv0", gone.IP); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a take-over from a standby whose address had gone: the address is still not configured")
		}
	}
	if up, err := m.Running(gone); err != nil || !up {
		t.Fatalf("a take-over from a standby whose address had gone: running %v, %v", up, err)
	}
	if err := m.Stop(gone); err != nil {
		t.Fatal(err)
	}
	m.Prepare([]Spec{{IP: netip.MustParseAddr("10.98.0.103"), Bits: -1}})
	if !hasAddr(t, "sv0", netip.MustParseAddr("10.98.0.103")) {
		t.Fatal("10.98.0.103 not configured ahead")
	}
	m.Prepare(nil)
	if hasAddr(t, "sv0", netip.MustParseAddr("10.98.0.103")) {
		t.Fatal("a dropped take-over left its address")
	}
	m.mu.Lock()
	left := len(m.prepared)
	m.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d take-overs still prepared after Prepare(nil)", left)
	}
	if hasAddr(t, "sv0", s.IP) {
		t.Fatal("VIP still on sv0 after Stop")
	}
	if up, err := m.Running(s); err != nil || up {
		t.Fatalf("after Stop: running %v, %v", up, err)
	}
	if err := m.Start(Spec{IP: netip.MustParseAddr("10.97.0.1"), Bits: -1}); err == nil || !strings.Contains(err.Error(), "set nic") {
		t.Fatalf("Start of an address in no subnet: %v", err)
	}
	// ReleaseAll: what the lease's end does.
	if err := m.Start(s); err != nil {
		t.Fatal(err)
	}
	if got := m.ReleaseAll(); len(got) != 1 || got[0].IP != s.IP || hasAddr(t, "sv0", s.IP) {
		t.Fatalf("ReleaseAll: %v, still there: %v", got, hasAddr(t, "sv0", s.IP))
	}

	// A new process releases what a crashed one held; the responder of the
	// old one stays attached while it holds VIPs, and goes once a manager
	// holding none closes.
	if err := m.Start(s); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if got := run("ip", "link", "show", "sv0"); !strings.Contains(got, "xdpgeneric") {
		t.Fatalf("the responder did not outlive its manager: %s", got)
	}
	m2 := NewManager()
	m2.StateFile = m.StateFile
	defer m2.Close()
	if got, err := m2.ReleaseStale(); err != nil || len(got) != 1 || got[0].IP != s.IP || hasAddr(t, "sv0", s.IP) {
		t.Fatalf("ReleaseStale: %v %v, still there: %v", got, err, hasAddr(t, "sv0", s.IP))
	}
	if got, err := m2.ReleaseStale(); err != nil || len(got) != 0 {
		t.Fatalf("second ReleaseStale: %v %v", got, err)
	}
	// The new manager's own responder replaces the old one, and goes with it.
	m2.Responder = true
	if err := m2.Start(s); err != nil {
		t.Fatal(err)
	}
	if err := m2.Stop(s); err != nil {
		t.Fatal(err)
	}
	m2.Close()
	if got := run("ip", "link", "show", "sv0"); strings.Contains(got, "xdp") {
		t.Fatalf("a responder is left on sv0: %s", got)
	}
}

// WaitLease returns at once without a lease enforced or with a valid one,
// waits while the lease has ended, and returns when a new one is set.
func TestWaitLease(t *testing.T) {
	m := NewManager()
	if err := m.WaitLease(context.Background()); err != nil {
		t.Fatalf("no lease enforced: %v", err)
	}
	m.SetLease(1) // ended
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.WaitLease(ctx); !errors.Is(err, ErrNoLease) {
		t.Fatalf("lease ended: %v, want ErrNoLease", err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		m.SetLease(monotonicNow() + int64(time.Second))
	}()
	began := time.Now()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := m.WaitLease(ctx2); err != nil {
		t.Fatalf("a new lease: %v", err)
	}
	if w := time.Since(began); w < 5*time.Millisecond || w > 4*time.Second {
		t.Fatalf("waited %v for a lease set after 10 ms", w)
	}
	if err := m.Start(Spec{IP: netip.MustParseAddr("10.99.0.1"), Bits: 24, Nic: "no-such-nic0"}); errors.Is(err, ErrNoLease) {
		t.Fatalf("Start refused under a valid lease: %v", err)
	}
}
