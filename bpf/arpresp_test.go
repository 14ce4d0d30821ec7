//go:build linux

package bpf_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/bpf"
	"github.com/tachy-ha/tachy/internal/netnstest"
)

const xdpTX = 3

var (
	vipMAC   = net.HardwareAddr{0x02, 0x77, 0x02, 0, 0, 0xaa}
	askerMAC = net.HardwareAddr{0x02, 0x77, 0x02, 0, 0, 0x01}
)

func loadARP(t testing.TB) *bpf.ARPResponder {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	r, err := bpf.LoadARPResponder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// arpFrame is an Ethernet ARP packet: op 1 request, 2 reply.
func arpFrame(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr, dst net.HardwareAddr) []byte {
	b := make([]byte, 14+28)
	copy(b[0:], dst)
	copy(b[6:], sha)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_ARP)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], unix.ETH_P_IP)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:], sha)
	s, tp := spa.As4(), tpa.As4()
	copy(a[14:], s[:])
	copy(a[18:], tha)
	copy(a[24:], tp[:])
	return b
}

func runARP(t testing.TB, r *bpf.ARPResponder, pkt []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(pkt)+256)
	ret, err := r.Program().Run(&ebpf.RunOptions{Data: pkt, DataOut: out})
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	return ret, out[:len(pkt)]
}

func TestARPResponderAnswersForVIPs(t *testing.T) {
	r := loadARP(t)
	vip := netip.MustParseAddr("10.77.2.100")
	asker := netip.MustParseAddr("10.77.2.254")
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	request := arpFrame(1, askerMAC, asker, make(net.HardwareAddr, 6), vip, bcast)

	if ret, _ := runARP(t, r, request); ret != xdpPass {
		t.Fatalf("before Add: verdict %d, want XDP_PASS", ret)
	}
	must(t, r.Add(vip, vipMAC))
	ret, out := runARP(t, r, request)
	if ret != xdpTX {
		t.Fatalf("request for the VIP: verdict %d, want XDP_TX", ret)
	}
	if want := arpFrame(2, vipMAC, vip, askerMAC, asker, askerMAC); !bytes.Equal(out, want) {
		t.Fatalf("reply\n% x\nwant\n% x", out, want)
	}

	for name, pkt := range map[string][]byte{
		"other address": arpFrame(1, askerMAC, asker, nil, netip.MustParseAddr("10.77.2.101"), bcast),
		"announcement":  arpFrame(1, askerMAC, vip, nil, vip, bcast),
		"reply":         arpFrame(2, askerMAC, asker, vipMAC, vip, vipMAC),
		"truncated":     request[:30],
		"IPv4 frame":    append(append([]byte(nil), request[:12]...), append([]byte{0x08, 0x00}, request[14:]...)...),
	} {
		if ret, out := runARP(t, r, pkt); ret != xdpPass || !bytes.Equal(out, pkt) {
			t.Errorf("%s: verdict %d (want XDP_PASS), packet changed: %v", name, ret, !bytes.Equal(out, pkt))
		}
	}
	st, err := r.Stats()
	must(t, err)
	if st != (bpf.ARPStats{Replied: 1, Announces: 1}) {
		t.Errorf("stats %+v, want 1 replied and 1 announcement", st)
	}

	// Moving the VIP to another MAC is a map update; removing it, a delete.
	other := net.HardwareAddr{0x02, 0x77, 0x02, 0, 0, 0xbb}
	must(t, r.Add(vip, other))
	if _, out := runARP(t, r, request); !bytes.Equal(out[6:12], other) {
		t.Fatalf("after re-Add, reply from %x, want %s", out[6:12], other)
	}
	must(t, r.Remove(vip))
	must(t, r.Remove(vip))
	if ret, _ := runARP(t, r, request); ret != xdpPass {
		t.Fatalf("after Remove: verdict %d, want XDP_PASS", ret)
	}
	if err := r.Add(netip.MustParseAddr("fd00::1"), vipMAC); err == nil {
		t.Error("Add of an IPv6 address succeeded")
	}
}

// On a real interface: a neighbour in another namespace resolves the VIP,
// which is configured nowhere, to the MAC the responder was given.
func TestARPResponderOnVeth(t *testing.T) {
	r := loadARP(t)
	netnstest.Enter(t, "ping")
	peer := fmt.Sprintf("tachy-arptest-%d", os.Getpid())
	mustRun := func(args ...string) string { t.Helper(); return netnstest.Run(t, args...) }
	mustRun("ip", "netns", "add", peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", peer).Run() })
	mustRun("ip", "link", "add", "ar0", "type", "veth", "peer", "name", "ar1")
	mustRun("ip", "link", "set", "ar1", "netns", peer)
	mustRun("ip", "link", "set", "ar0", "up")
	mustRun("ip", "netns", "exec", peer, "ip", "addr", "add", "10.99.0.2/24", "dev", "ar1")
	mustRun("ip", "netns", "exec", peer, "ip", "link", "set", "ar1", "up")

	ar0, err := net.InterfaceByName("ar0")
	must(t, err)
	c, err := r.Attach(ar0.Index, bpf.AttachGeneric)
	must(t, err)
	defer c.Close()
	vip := netip.MustParseAddr("10.99.0.100")
	must(t, r.Add(vip, vipMAC))

	var neigh string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		// ping fails (no host has the address); its ARP request is the point.
		_ = exec.Command("ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "0.2", vip.String()).Run()
		neigh = mustRun("ip", "netns", "exec", peer, "ip", "neigh", "show", vip.String(), "dev", "ar1")
		if strings.Contains(neigh, vipMAC.String()) {
			break
		}
	}
	if !strings.Contains(neigh, vipMAC.String()) {
		st, _ := r.Stats()
		t.Fatalf("the neighbour resolved %s as %q, want %s (responder stats %+v)", vip, strings.TrimSpace(neigh), vipMAC, st)
	}
}

// The quorum lease: the responder answers until the lease ends, then drops
// requests for the VIP (so the stack, which may still hold the address,
// does not answer either); a later lease answers again.
func TestARPResponderLease(t *testing.T) {
	r := loadARP(t)
	vip := netip.MustParseAddr("10.77.2.100")
	asker := netip.MustParseAddr("10.77.2.254")
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	request := arpFrame(1, askerMAC, asker, make(net.HardwareAddr, 6), vip, bcast)
	now := func() int64 {
		var ts unix.Timespec
		must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
		return ts.Nano()
	}
	must(t, r.AddUntil(vip, vipMAC, now()+int64(time.Hour)))
	if ret, _ := runARP(t, r, request); ret != xdpTX {
		t.Fatalf("within the lease: verdict %d, want XDP_TX", ret)
	}
	must(t, r.AddUntil(vip, vipMAC, now()-1))
	if ret, _ := runARP(t, r, request); ret != xdpDrop {
		t.Fatalf("past the lease: verdict %d, want XDP_DROP", ret)
	}
	// Not a question for the VIP: untouched, lease or not.
	other := arpFrame(1, askerMAC, asker, nil, netip.MustParseAddr("10.77.2.101"), bcast)
	if ret, _ := runARP(t, r, other); ret != xdpPass {
		t.Fatalf("other address past the lease: verdict %d, want XDP_PASS", ret)
	}
	// IPv4 to the VIP is dropped past the lease, passed within it; other
	// destinations always pass.
	ipv4 := func(dst netip.Addr) []byte {
		b := make([]byte, 14+20+8)
		copy(b[0:], vipMAC)
		copy(b[6:], askerMAC)
		binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IP)
		b[14] = 0x45
		b[23] = unix.IPPROTO_UDP
		s, d := asker.As4(), dst.As4()
		copy(b[26:], s[:])
		copy(b[30:], d[:])
		return b
	}
	if ret, _ := runARP(t, r, ipv4(vip)); ret != xdpDrop {
		t.Fatalf("IPv4 to the VIP past the lease: verdict %d, want XDP_DROP", ret)
	}
	if ret, _ := runARP(t, r, ipv4(netip.MustParseAddr("10.77.2.101"))); ret != xdpPass {
		t.Fatalf("IPv4 elsewhere: verdict %d, want XDP_PASS", ret)
	}
	must(t, r.AddUntil(vip, vipMAC, now()+int64(time.Hour)))
	if ret, _ := runARP(t, r, request); ret != xdpTX {
		t.Fatalf("renewed lease: verdict %d, want XDP_TX", ret)
	}
	if ret, _ := runARP(t, r, ipv4(vip)); ret != xdpPass {
		t.Fatalf("IPv4 to the VIP within the lease: verdict %d, want XDP_PASS", ret)
	}
	st, err := r.Stats()
	must(t, err)
	if st != (bpf.ARPStats{Replied: 2, Expired: 1, DroppedIP: 1}) {
		t.Errorf("stats %+v, want 2 replied, 1 expired, 1 IPv4 dropped", st)
	}
}
