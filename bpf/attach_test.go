//go:build linux

package bpf_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/bpf"
	"github.com/tachy-ha/tachy/internal/netnstest"
)

// The program attached to a real interface: one end of a veth pair in a
// network namespace of this test's own, frames written to the other end with
// a packet socket. The namespace (and the veth pair) goes away with the test.
func TestAttachVeth(t *testing.T) {
	netnstest.Enter(t)
	ip := func(args ...string) { t.Helper(); netnstest.Run(t, append([]string{"ip"}, args...)...) }
	ip("link", "add", "hb0", "type", "veth", "peer", "name", "hb1")
	ip("link", "set", "hb0", "up")
	ip("link", "set", "hb1", "up")
	hb0, err := net.InterfaceByName("hb0")
	must(t, err)
	hb1, err := net.InterfaceByName("hb1")
	must(t, err)

	h := load(t, testConfig())
	const link = 1
	must(t, h.AddInterface(hb0.Index, link))
	must(t, h.AddPeer(peerNode, link))

	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	seq := uint64(0)
	send := func() {
		t.Helper()
		seq++
		f := frame(9, seq)
		f.Link = link
		pkt := ipv4Packet(testPort, marshal(f, testKey), 0)
		copy(pkt[0:], hb0.HardwareAddr)
		copy(pkt[6:], hb1.HardwareAddr)
		sa := &unix.SockaddrLinklayer{Ifindex: hb1.Index, Halen: 6}
		copy(sa.Addr[:], hb0.HardwareAddr)
		must(t, unix.Sendto(fd, pkt, 0, sa))
	}
	waitAccepted := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			s := stats(t, h)
			if s.Accepted == n && s == (bpf.Stats{Accepted: n}) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stats %+v, want %d accepted and nothing else", s, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	accepted := uint64(0)
	for _, mode := range []bpf.AttachMode{bpf.AttachAuto, bpf.AttachGeneric} {
		c, err := h.Attach(hb0.Index, mode)
		if err != nil {
			t.Fatalf("Attach(%v): %v", mode, err)
		}
		a := c.(*bpf.Attachment)
		if want := map[bpf.AttachMode]bpf.AttachMode{bpf.AttachAuto: bpf.AttachNative, bpf.AttachGeneric: bpf.AttachGeneric}[mode]; a.Mode != want {
			t.Errorf("Attach(%v) attached in mode %v, want %v (veth has native XDP)", mode, a.Mode, want)
		}
		send()
		accepted++
		waitAccepted(accepted)
		if accepted == 1 {
			ev := wantEvent(t, h)
			if ev.Type != bpf.EventLinkUp || ev.Link != link || ev.NodeID != peerNode || ev.Seq != seq {
				t.Fatalf("event %+v, want link-up on link %d", ev, link)
			}
		}
		must(t, c.Close())
		// Detached: frames reach the stack, not the program.
		send()
		time.Sleep(50 * time.Millisecond)
		waitAccepted(accepted)
	}

	// BPF_PROG_TEST_RUN with an explicit ingress device other than lo.
	testRun := func(dst net.HardwareAddr) uint32 {
		t.Helper()
		seq++
		f := frame(9, seq)
		f.Link = link
		pkt := ipv4Packet(testPort, marshal(f, testKey), 0)
		copy(pkt[0:], dst)
		return run(t, h, pkt, hb0.Index)
	}
	if ret := testRun(hb0.HardwareAddr); ret != xdpDrop {
		t.Fatalf("test run on hb0: verdict %d", ret)
	}
	accepted++
	waitAccepted(accepted)
	// A frame a switch flooded to us, addressed to another node's MAC, is
	// left to the stack and counted nowhere: not even as a replay.
	if ret := testRun(net.HardwareAddr{0x02, 0x77, 0, 0, 0, 0x99}); ret != xdpPass {
		t.Fatalf("frame for another MAC: verdict %d, want XDP_PASS", ret)
	}
	waitAccepted(accepted)
	// Broadcast and multicast destinations are not filtered.
	if ret := testRun(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); ret != xdpDrop {
		t.Fatalf("broadcast frame: verdict %d, want XDP_DROP", ret)
	}
	waitAccepted(accepted + 1)
}
