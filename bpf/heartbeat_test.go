//go:build linux

package bpf_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/bpf"
	"github.com/tachy-ha/tachy/heartbeat"
)

// The tests run the XDP program with BPF_PROG_TEST_RUN on hand-built
// packets: they need root (or CAP_BPF and CAP_NET_ADMIN) and a kernel with
// BPF timers, and skip with the reason otherwise.

const (
	testPort    = 5405
	testCluster = 7
	localNode   = 1
	peerNode    = 2
	loIfindex   = 1 // BPF_PROG_TEST_RUN's default ingress device is loopback
	xdpDrop     = 1
	xdpPass     = 2
)

var testKey = heartbeat.DeriveKey([]byte("test secret"))

func testConfig() bpf.HeartbeatConfig {
	return bpf.HeartbeatConfig{
		Key0: testKey.K0, Key1: testKey.K1,
		ClusterID: testCluster, LocalNodeID: localNode, Port: testPort,
		// Long enough that no LINK_DOWN disturbs the tests that are not
		// about timing.
		Timeout: 30 * time.Second,
		MaxSkew: 5 * time.Second,
	}
}

// load loads the program, or skips the test when this process may not.
func load(t testing.TB, cfg bpf.HeartbeatConfig) *bpf.Heartbeat {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("XDP heartbeat tests need root (CAP_BPF, CAP_NET_ADMIN); run them as root")
	}
	h, err := bpf.LoadHeartbeat(cfg)
	if errors.Is(err, bpf.ErrNotPermitted) {
		t.Skipf("not permitted to load BPF programs here: %v", err)
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		t.Fatalf("LoadHeartbeat: %v\nverifier log:\n%+v", err, ve)
	}
	if err != nil {
		t.Fatalf("LoadHeartbeat: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// loadDefault is load(testConfig()) with lo as link 0 and the peer on link 0.
func loadDefault(t testing.TB) *bpf.Heartbeat {
	t.Helper()
	h := load(t, testConfig())
	must(t, h.AddInterface(loIfindex, 0))
	must(t, h.AddPeer(peerNode, 0))
	return h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// frame is a valid heartbeat from the peer on link 0, sent now.
func frame(inc, seq uint64) heartbeat.Frame {
	return heartbeat.Frame{Link: 0, ClusterID: testCluster, NodeID: peerNode, Incarnation: inc, Seq: seq, SentNs: time.Now().UnixNano()}
}

func marshal(f heartbeat.Frame, k heartbeat.Key) []byte {
	return heartbeat.MarshalFrame(make([]byte, heartbeat.FrameLen), &f, k)
}

var (
	srcMAC = []byte{0x02, 0, 0, 0, 0, 2}
	dstMAC = []byte{0x02, 0, 0, 0, 0, 1}
)

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ipv4Packet is Ethernet + IPv4 (with optLen bytes of options) + UDP.
func ipv4Packet(dport uint16, payload []byte, optLen int) []byte {
	ihl := 20 + optLen
	b := make([]byte, 14+ihl+8+len(payload))
	copy(b[0:], dstMAC)
	copy(b[6:], srcMAC)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IP)
	ip := b[14:]
	ip[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+8+len(payload)))
	ip[8] = 64
	ip[9] = unix.IPPROTO_UDP
	copy(ip[12:], []byte{10, 0, 0, 2})
	copy(ip[16:], []byte{10, 0, 0, 1})
	for i := 20; i < ihl; i++ {
		ip[i] = 1 // NOP options
	}
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:ihl]))
	udp := ip[ihl:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return b
}

// ipv6Packet is Ethernet + IPv6 (next header nh) + UDP.
func ipv6Packet(dport uint16, payload []byte, nh byte) []byte {
	b := make([]byte, 14+40+8+len(payload))
	copy(b[0:], dstMAC)
	copy(b[6:], srcMAC)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IPV6)
	ip := b[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(8+len(payload)))
	ip[6] = nh
	ip[7] = 64
	ip[8], ip[23] = 0xfd, 2
	ip[24], ip[39] = 0xfd, 1
	udp := ip[40:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return b
}

// xdpMd is the kernel's struct xdp_md, the context of BPF_PROG_TEST_RUN.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// run runs the program on pkt as if it arrived on ifindex.
func run(t testing.TB, h *bpf.Heartbeat, pkt []byte, ifindex int) uint32 {
	t.Helper()
	ret, err := h.Program().Run(&ebpf.RunOptions{
		Data:    pkt,
		Context: xdpMd{DataEnd: uint32(len(pkt)), IngressIfindex: uint32(ifindex)},
	})
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	return ret
}

func stats(t testing.TB, h *bpf.Heartbeat) bpf.Stats {
	t.Helper()
	s, err := h.Stats()
	must(t, err)
	return s
}

// wantStats fails unless the counters are exactly want.
func wantStats(t testing.TB, h *bpf.Heartbeat, want bpf.Stats) {
	t.Helper()
	if got := stats(t, h); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
}

// nextEvent waits up to d for an event.
func nextEvent(t testing.TB, h *bpf.Heartbeat, d time.Duration) (bpf.Event, bool) {
	t.Helper()
	h.SetDeadline(time.Now().Add(d))
	ev, err := h.ReadEvent()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return bpf.Event{}, false
	}
	must(t, err)
	return ev, true
}

func wantNoEvent(t testing.TB, h *bpf.Heartbeat) {
	t.Helper()
	if ev, ok := nextEvent(t, h, 10*time.Millisecond); ok {
		t.Fatalf("unexpected event %+v", ev)
	}
}

func wantEvent(t testing.TB, h *bpf.Heartbeat) bpf.Event {
	t.Helper()
	ev, ok := nextEvent(t, h, 2*time.Second)
	if !ok {
		t.Fatal("no event within 2s")
	}
	return ev
}

func peer(t testing.TB, h *bpf.Heartbeat, node uint32, link uint8) bpf.PeerState {
	t.Helper()
	p, err := h.Peer(node, link)
	must(t, err)
	return p
}

func TestValidFrameBringsLinkUp(t *testing.T) {
	h := loadDefault(t)
	before := monoNow()
	if ret := run(t, h, ipv4Packet(testPort, marshal(frame(5, 1), testKey), 0), loIfindex); ret != xdpDrop {
		t.Fatalf("verdict %d, want XDP_DROP", ret)
	}
	after := monoNow()
	wantStats(t, h, bpf.Stats{Accepted: 1})
	ev := wantEvent(t, h)
	if ev.Type != bpf.EventLinkUp || ev.NodeID != peerNode || ev.Link != 0 || ev.Incarnation != 5 || ev.Seq != 1 || ev.Gen != 1 {
		t.Fatalf("event %+v, want link-up of node %d link 0 inc 5 seq 1 gen 1", ev, peerNode)
	}
	if ev.TimeNs < before || ev.TimeNs > after {
		t.Fatalf("event time %d not within the run [%d, %d] (CLOCK_MONOTONIC)", ev.TimeNs, before, after)
	}
	p := peer(t, h, peerNode, 0)
	want := bpf.PeerState{NodeID: peerNode, Link: 0, State: bpf.PeerUp, Incarnation: 5, Seq: 1, LastSeenNs: ev.TimeNs, Frames: 1, Gen: 1}
	if p != want {
		t.Fatalf("peer %+v, want %+v", p, want)
	}
	wantNoEvent(t, h)

	// Further frames keep the link up without events.
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 2), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 2})
	wantNoEvent(t, h)
	if p := peer(t, h, peerNode, 0); p.Seq != 2 || p.Frames != 2 || p.LastSeenNs < ev.TimeNs || p.State != bpf.PeerUp {
		t.Fatalf("peer after second frame: %+v", p)
	}
	all, err := h.Peers()
	must(t, err)
	if len(all) != 1 || all[0].Seq != 2 {
		t.Fatalf("Peers() = %+v", all)
	}
}

// LastHeard follows the counted frames of a node on any link, read from
// the memory-mapped heard map; rejected frames do not move it, and it reads
// 0 after Close.
func TestLastHeard(t *testing.T) {
	h := load(t, testConfig())
	must(t, h.AddInterface(loIfindex, 0))
	must(t, h.AddPeer(peerNode, 0))
	must(t, h.AddPeer(peerNode, 1))
	if at := h.LastHeard(peerNode); at != 0 {
		t.Fatalf("heard %d before any frame", at)
	}
	before := monoNow()
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 1), testKey), 0), loIfindex)
	after := monoNow()
	first := h.LastHeard(peerNode)
	if first < before || first > after {
		t.Fatalf("heard at %d, not within the run [%d, %d]", first, before, after)
	}
	if p := peer(t, h, peerNode, 0); p.LastSeenNs != first {
		t.Fatalf("heard %d, the link's last seen %d", first, p.LastSeenNs)
	}
	// A replay and a forgery do not count.
	time.Sleep(time.Millisecond)
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 1), testKey), 0), loIfindex)
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 2), heartbeat.DeriveKey([]byte("other"))), 0), loIfindex)
	if at := h.LastHeard(peerNode); at != first {
		t.Fatalf("rejected frames moved heard from %d to %d", first, at)
	}
	// Another link of the same node counts (lo carries link 1 now).
	must(t, h.AddInterface(loIfindex, 1))
	f := frame(5, 2)
	f.Link = 1
	run(t, h, ipv4Packet(testPort, marshal(f, testKey), 0), loIfindex)
	if at := h.LastHeard(peerNode); at <= first {
		t.Fatalf("a frame on link 1 left heard at %d (was %d)", at, first)
	}
	if h.LastHeard(localNode) != 0 || h.LastHeard(3) != 0 || h.LastHeard(bpf.HeardMaxID+1) != 0 {
		t.Fatal("heard a node that sent nothing")
	}
	must(t, h.Close())
	if at := h.LastHeard(peerNode); at != 0 {
		t.Fatalf("heard %d after Close", at)
	}
}

func TestReplayRejected(t *testing.T) {
	h := loadDefault(t)
	pkt := ipv4Packet(testPort, marshal(frame(5, 10), testKey), 0)
	run(t, h, pkt, loIfindex)
	wantEvent(t, h)

	// The very same frame again.
	if ret := run(t, h, pkt, loIfindex); ret != xdpDrop {
		t.Fatalf("replayed frame: verdict %d, want XDP_DROP", ret)
	}
	wantStats(t, h, bpf.Stats{Accepted: 1, Replay: 1})
	// An older sequence number, freshly signed.
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 9), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 1, Replay: 2})
	// An older incarnation with a higher sequence number.
	run(t, h, ipv4Packet(testPort, marshal(frame(4, 100), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 1, Replay: 3})
	wantNoEvent(t, h)
	if p := peer(t, h, peerNode, 0); p.Incarnation != 5 || p.Seq != 10 || p.Frames != 1 {
		t.Fatalf("replays changed the peer state: %+v", p)
	}
}

func TestRestart(t *testing.T) {
	h := loadDefault(t)
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 10), testKey), 0), loIfindex)
	if ev := wantEvent(t, h); ev.Type != bpf.EventLinkUp {
		t.Fatalf("first event %+v, want link-up", ev)
	}
	// The peer's daemon restarted: a higher incarnation, sequence from 1.
	run(t, h, ipv4Packet(testPort, marshal(frame(6, 1), testKey), 0), loIfindex)
	ev := wantEvent(t, h)
	if ev.Type != bpf.EventLinkRestart || ev.Incarnation != 6 || ev.Seq != 1 || ev.Gen != 2 || ev.NodeID != peerNode {
		t.Fatalf("event %+v, want link-restart inc 6 seq 1 gen 2", ev)
	}
	// The old incarnation is now a replay.
	run(t, h, ipv4Packet(testPort, marshal(frame(5, 11), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 2, Replay: 1})
	wantNoEvent(t, h)
	if p := peer(t, h, peerNode, 0); p.State != bpf.PeerUp || p.Incarnation != 6 || p.Gen != 2 {
		t.Fatalf("peer %+v", p)
	}
}

// Frames the program must drop and count as one kind of reject, without
// touching any peer's state.
func TestRejects(t *testing.T) {
	now := time.Now().UnixNano()
	wrongKey := heartbeat.DeriveKey([]byte("another secret"))
	withByte := func(f heartbeat.Frame, i int, v byte) []byte {
		b := marshal(f, testKey)
		b[i] = v
		return b
	}
	cases := []struct {
		name    string
		payload []byte
		ifindex int
		want    bpf.Stats
	}{
		{"wrong key", marshal(frame(5, 1), wrongKey), loIfindex, bpf.Stats{BadMAC: 1}},
		{"tampered seq", withByte(frame(5, 1), 31, 2), loIfindex, bpf.Stats{BadMAC: 1}},
		{"tampered mac", withByte(frame(5, 1), 47, marshal(frame(5, 1), testKey)[47]^1), loIfindex, bpf.Stats{BadMAC: 1}},
		{"wrong cluster", marshal(heartbeat.Frame{ClusterID: testCluster + 1, NodeID: peerNode, Incarnation: 1, Seq: 1, SentNs: now}, testKey), loIfindex, bpf.Stats{WrongCluster: 1}},
		{"own node id", marshal(heartbeat.Frame{ClusterID: testCluster, NodeID: localNode, Incarnation: 1, Seq: 1, SentNs: now}, testKey), loIfindex, bpf.Stats{Self: 1}},
		{"wrong link index", marshal(heartbeat.Frame{Link: 1, ClusterID: testCluster, NodeID: peerNode, Incarnation: 1, Seq: 1, SentNs: now}, testKey), loIfindex, bpf.Stats{WrongLink: 1}},
		{"unknown peer", marshal(heartbeat.Frame{ClusterID: testCluster, NodeID: 3, Incarnation: 1, Seq: 1, SentNs: now}, testKey), loIfindex, bpf.Stats{UnknownPeer: 1}},
		{"stale", marshal(heartbeat.Frame{ClusterID: testCluster, NodeID: peerNode, Incarnation: 1, Seq: 1, SentNs: now - int64(10*time.Second)}, testKey), loIfindex, bpf.Stats{Stale: 1}},
		{"from the future", marshal(heartbeat.Frame{ClusterID: testCluster, NodeID: peerNode, Incarnation: 1, Seq: 1, SentNs: now + int64(10*time.Second)}, testKey), loIfindex, bpf.Stats{Stale: 1}},
		{"short", marshal(frame(5, 1), testKey)[:47], loIfindex, bpf.Stats{Malformed: 1}},
		{"magic only", marshal(frame(5, 1), testKey)[:4], loIfindex, bpf.Stats{Malformed: 1}},
		{"version 2", withByte(frame(5, 1), 4, 2), loIfindex, bpf.Stats{Malformed: 1}},
		{"type 2", withByte(frame(5, 1), 5, 2), loIfindex, bpf.Stats{Malformed: 1}},
		{"flags set", withByte(frame(5, 1), 7, 0x80), loIfindex, bpf.Stats{Malformed: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := loadDefault(t)
			// The peer also exists on link 1, so that "wrong link index"
			// fails only for the link check.
			must(t, h.AddPeer(peerNode, 1))
			if ret := run(t, h, ipv4Packet(testPort, c.payload, 0), c.ifindex); ret != xdpDrop {
				t.Fatalf("verdict %d, want XDP_DROP", ret)
			}
			wantStats(t, h, c.want)
			wantNoEvent(t, h)
			for l := uint8(0); l < 2; l++ {
				if p := peer(t, h, peerNode, l); p.State != bpf.PeerUnknown || p.Frames != 0 || p.LastSeenNs != 0 {
					t.Fatalf("a rejected frame changed peer link %d: %+v", l, p)
				}
			}
		})
	}
}

func TestUnregisteredInterfaceIsWrongLink(t *testing.T) {
	h := load(t, testConfig())
	must(t, h.AddPeer(peerNode, 0))
	run(t, h, ipv4Packet(testPort, marshal(frame(1, 1), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{WrongLink: 1})
	wantNoEvent(t, h)
	// Once lo is link 0, the same peer counts.
	must(t, h.AddInterface(loIfindex, 0))
	run(t, h, ipv4Packet(testPort, marshal(frame(1, 2), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{WrongLink: 1, Accepted: 1})
	if ev := wantEvent(t, h); ev.Type != bpf.EventLinkUp {
		t.Fatalf("event %+v", ev)
	}
}

func TestStaleCheckDisabled(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSkew = 0
	h := load(t, cfg)
	must(t, h.AddInterface(loIfindex, 0))
	must(t, h.AddPeer(peerNode, 0))
	f := frame(1, 1)
	f.SentNs = 12345 // 1970
	run(t, h, ipv4Packet(testPort, marshal(f, testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 1})
}

func TestRealOffset(t *testing.T) {
	h := loadDefault(t)
	must(t, h.SetRealOffset())
	run(t, h, ipv4Packet(testPort, marshal(frame(1, 1), testKey), 0), loIfindex)
	// 4s off is within the 5s skew; 6s is not.
	f := frame(1, 2)
	f.SentNs -= int64(4 * time.Second)
	run(t, h, ipv4Packet(testPort, marshal(f, testKey), 0), loIfindex)
	f = frame(1, 3)
	f.SentNs += int64(6 * time.Second)
	run(t, h, ipv4Packet(testPort, marshal(f, testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 2, Stale: 1})
	must(t, h.Close())
	if err := h.SetRealOffset(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("SetRealOffset after Close: %v", err)
	}
}

// Traffic that is not a tachy heartbeat goes on to the network stack.
func TestNotOursPasses(t *testing.T) {
	valid := marshal(frame(1, 1), testKey)
	notTachy := append([]byte("XXXX"), valid[4:]...)
	frag := ipv4Packet(testPort, valid, 0)
	binary.BigEndian.PutUint16(frag[14+6:], 0x2000) // more fragments
	tcp := ipv4Packet(testPort, valid, 0)
	tcp[14+9] = unix.IPPROTO_TCP
	arp := ipv4Packet(testPort, valid, 0)
	binary.BigEndian.PutUint16(arp[12:], unix.ETH_P_ARP)
	vlan := ipv4Packet(testPort, valid, 0)
	binary.BigEndian.PutUint16(vlan[12:], unix.ETH_P_8021Q)
	cases := map[string][]byte{
		"other port":             ipv4Packet(testPort+1, valid, 0),
		"other port ipv6":        ipv6Packet(testPort+1, valid, unix.IPPROTO_UDP),
		"not TCHY":               ipv4Packet(testPort, notTachy, 0),
		"not TCHY ipv6":          ipv6Packet(testPort, notTachy, unix.IPPROTO_UDP),
		"3 bytes":                ipv4Packet(testPort, valid[:3], 0),
		"empty":                  ipv4Packet(testPort, nil, 0),
		"fragment":               frag,
		"tcp":                    tcp,
		"arp":                    arp,
		"vlan":                   vlan,
		"ipv6 extension header":  ipv6Packet(testPort, valid, 0), // hop-by-hop
		"bare ethernet":          ipv4Packet(testPort, valid, 0)[:14],
		"truncated ip header":    ipv4Packet(testPort, valid, 0)[:14+19],
		"truncated udp header":   ipv4Packet(testPort, valid, 0)[:14+20+7],
		"truncated ipv6 header":  ipv6Packet(testPort, valid, unix.IPPROTO_UDP)[:14+39],
		"truncated before magic": ipv4Packet(testPort, valid, 0)[:14+20+8+3],
	}
	for name, pkt := range cases {
		t.Run(name, func(t *testing.T) {
			h := loadDefault(t)
			if ret := run(t, h, pkt, loIfindex); ret != xdpPass {
				t.Fatalf("verdict %d, want XDP_PASS", ret)
			}
			wantStats(t, h, bpf.Stats{})
			wantNoEvent(t, h)
		})
	}
}

func TestIPv6Accepted(t *testing.T) {
	h := loadDefault(t)
	if ret := run(t, h, ipv6Packet(testPort, marshal(frame(3, 7), testKey), unix.IPPROTO_UDP), loIfindex); ret != xdpDrop {
		t.Fatalf("verdict %d, want XDP_DROP", ret)
	}
	wantStats(t, h, bpf.Stats{Accepted: 1})
	if ev := wantEvent(t, h); ev.Type != bpf.EventLinkUp || ev.Incarnation != 3 || ev.Seq != 7 {
		t.Fatalf("event %+v", ev)
	}
}

func TestIPv4OptionsAccepted(t *testing.T) {
	h := loadDefault(t)
	for i, opt := range []int{4, 40} {
		if ret := run(t, h, ipv4Packet(testPort, marshal(frame(1, uint64(i+1)), testKey), opt), loIfindex); ret != xdpDrop {
			t.Fatalf("%d bytes of options: verdict %d, want XDP_DROP", opt, ret)
		}
	}
	wantStats(t, h, bpf.Stats{Accepted: 2})
}

// Trailing bytes after the 48-byte frame are ignored, as ParseFrame does.
func TestLongerPayloadAccepted(t *testing.T) {
	h := loadDefault(t)
	run(t, h, ipv4Packet(testPort, append(marshal(frame(1, 1), testKey), 0xaa, 0xbb), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 1})
}

func TestAddPeerAgainKeepsState(t *testing.T) {
	h := loadDefault(t)
	run(t, h, ipv4Packet(testPort, marshal(frame(1, 1), testKey), 0), loIfindex)
	must(t, h.AddPeer(peerNode, 0))
	if p := peer(t, h, peerNode, 0); p.State != bpf.PeerUp || p.Seq != 1 {
		t.Fatalf("AddPeer reset the state: %+v", p)
	}
	must(t, h.RemovePeer(peerNode, 0))
	if _, err := h.Peer(peerNode, 0); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("Peer after RemovePeer: %v", err)
	}
	must(t, h.RemovePeer(peerNode, 0)) // idempotent
	run(t, h, ipv4Packet(testPort, marshal(frame(1, 2), testKey), 0), loIfindex)
	wantStats(t, h, bpf.Stats{Accepted: 1, UnknownPeer: 1})
}

// The BPF timer reports a silent link down, with the expiry time.
func TestLinkDownAfterTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 20 * time.Millisecond
	h := load(t, cfg)
	must(t, h.AddInterface(loIfindex, 0))
	must(t, h.AddPeer(peerNode, 0))

	run(t, h, ipv4Packet(testPort, marshal(frame(1, 1), testKey), 0), loIfindex)
	up := wantEvent(t, h)
	if up.Type != bpf.EventLinkUp {
		t.Fatalf("event %+v, want link-up", up)
	}
	down := wantEvent(t, h)
	if down.Type != bpf.EventLinkDown || down.NodeID != peerNode || down.Link != 0 || down.Gen != 2 || down.Incarnation != 1 || down.Seq != 1 {
		t.Fatalf("event %+v, want link-down gen 2 inc 1 seq 1", down)
	}
	if min := up.TimeNs + cfg.Timeout.Nanoseconds(); down.TimeNs < min {
		t.Fatalf("link-down at %d, before the last arrival %d + timeout", down.TimeNs, up.TimeNs)
	}
	if down.TimeNs > monoNow() {
		t.Fatalf("link-down time %d is in the future", down.TimeNs)
	}
	if p := peer(t, h, peerNode, 0); p.State != bpf.PeerDown || p.Gen != 2 {
		t.Fatalf("peer %+v, want down gen 2", p)
	}
	wantNoEvent(t, h)

	// It comes back with the next frame, and goes down again.
	run(t, h, ipv4Packet(testPort, marshal(frame(1, 2), testKey), 0), loIfindex)
	if ev := wantEvent(t, h); ev.Type != bpf.EventLinkUp || ev.Gen != 3 || ev.Seq != 2 {
		t.Fatalf("event %+v, want link-up gen 3", ev)
	}
	if ev := wantEvent(t, h); ev.Type != bpf.EventLinkDown || ev.Gen != 4 {
		t.Fatalf("event %+v, want link-down gen 4", ev)
	}
	if s := stats(t, h); s.TimerErrors != 0 || s.EventsLost != 0 {
		t.Fatalf("kernel-side failures: %+v", s)
	}
}

// Frames every timeout/4 keep the link up: the timer re-arms itself for the
// remaining time instead of declaring the link down.
func TestFramesKeepLinkUp(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout = 100 * time.Millisecond
	h := load(t, cfg)
	must(t, h.AddInterface(loIfindex, 0))
	must(t, h.AddPeer(peerNode, 0))

	for attempt := 1; ; attempt++ {
		inc := uint64(attempt)
		run(t, h, ipv4Packet(testPort, marshal(frame(inc, 1), testKey), 0), loIfindex)
		if ev := wantEvent(t, h); ev.Type != bpf.EventLinkUp && ev.Type != bpf.EventLinkRestart {
			t.Fatalf("event %+v, want link-up", ev)
		}
		last, maxGap := monoNow(), int64(0)
		var downEv *bpf.Event
		for seq := uint64(2); seq <= 40; seq++ { // 1s
			time.Sleep(cfg.Timeout / 4)
			run(t, h, ipv4Packet(testPort, marshal(frame(inc, seq), testKey), 0), loIfindex)
			now := monoNow()
			maxGap, last = max(maxGap, now-last), now
			if ev, ok := nextEvent(t, h, 0); ok && downEv == nil {
				downEv = &ev
			}
		}
		if downEv == nil {
			break
		}
		if maxGap < cfg.Timeout.Nanoseconds()*3/4 {
			t.Fatalf("event %+v although frames came at most %v apart", *downEv, time.Duration(maxGap))
		}
		// This machine stalled longer than the timeout: a real miss.
		if attempt == 3 {
			t.Skipf("the scheduler delayed frames by up to %v three times; cannot test", time.Duration(maxGap))
		}
		t.Logf("attempt %d: frames delayed by up to %v, trying again", attempt, time.Duration(maxGap))
		for { // drain
			if _, ok := nextEvent(t, h, 3*cfg.Timeout); !ok {
				break
			}
		}
	}
	// And once they stop, the link goes down.
	if ev := wantEvent(t, h); ev.Type != bpf.EventLinkDown {
		t.Fatalf("event %+v, want link-down", ev)
	}
}

// The C SipHash must agree with heartbeat's on arbitrary keys and frames: a
// frame valid under Go's MAC is accepted, one with any MAC bit flipped is not.
func TestSipHashAgreesWithGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	const keys, framesPerKey = 64, 16
	for range keys {
		cfg := testConfig()
		cfg.Key0, cfg.Key1 = rng.Uint64(), rng.Uint64()
		cfg.ClusterID = rng.Uint32()
		cfg.MaxSkew = 0 // random send times
		k := heartbeat.Key{K0: cfg.Key0, K1: cfg.Key1}
		h := load(t, cfg)
		link := uint8(rng.UintN(256))
		must(t, h.AddInterface(loIfindex, link))
		var want bpf.Stats
		for range framesPerKey {
			f := heartbeat.Frame{Link: link, ClusterID: cfg.ClusterID, NodeID: rng.Uint32(), Incarnation: rng.Uint64() | 1, Seq: rng.Uint64(), SentNs: int64(rng.Uint64())}
			if f.NodeID == cfg.LocalNodeID {
				f.NodeID++
			}
			must(t, h.AddPeer(f.NodeID, link))
			b := marshal(f, k)
			bad := append([]byte(nil), b...)
			bad[40+rng.IntN(8)] ^= 1 << rng.UintN(8)
			run(t, h, ipv4Packet(testPort, bad, 0), loIfindex)
			want.BadMAC++
			run(t, h, ipv4Packet(testPort, b, 0), loIfindex)
			want.Accepted++
			if got := stats(t, h); got != want {
				t.Fatalf("key %#x/%#x frame % x: stats %+v, want %+v", k.K0, k.K1, b, got, want)
			}
		}
		must(t, h.Close())
	}
}

func TestCloseEndsReadEvent(t *testing.T) {
	h := loadDefault(t)
	done := make(chan error, 1)
	go func() {
		_, err := h.ReadEvent()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	must(t, h.Close())
	select {
	case err := <-done:
		if !errors.Is(err, ringbuf.ErrClosed) {
			t.Fatalf("ReadEvent after Close: %v, want ringbuf.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadEvent still blocked 2s after Close")
	}
}

func TestLoadRejectsBadConfig(t *testing.T) {
	for _, cfg := range []bpf.HeartbeatConfig{
		{Timeout: time.Second},
		{Port: testPort},
		{Port: testPort, Timeout: time.Second, MaxSkew: -1},
	} {
		if h, err := bpf.LoadHeartbeat(cfg); err == nil {
			h.Close()
			t.Errorf("LoadHeartbeat(%+v) succeeded", cfg)
		}
	}
}

// The XDP program and the user-space heartbeat.Detector must judge the same
// frames the same way: random traffic (valid, replayed, restarted, forged,
// misdirected, stale, malformed) goes through both, and their events and
// counters are compared after every frame.
func TestAgreesWithDetector(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	cfg := testConfig()
	h := load(t, cfg)
	det := heartbeat.NewDetector(heartbeat.DetectorConfig{
		ClusterID: cfg.ClusterID, LocalNode: cfg.LocalNodeID, Key: testKey,
		Timeout: cfg.Timeout, MaxSkew: cfg.MaxSkew,
	})
	must(t, h.AddInterface(loIfindex, 0)) // link 1 has no interface here
	for _, n := range []uint32{2, 3} {
		for l := uint8(0); l < 2; l++ {
			must(t, h.AddPeer(n, l))
			det.AddPeer(n, l)
		}
	}
	wrongKey := heartbeat.DeriveKey([]byte("wrong"))
	pick := func(p float64) bool { return rng.Float64() < p }
	// What each sender would send next; node 3 starts at incarnation 0,
	// which the restart rule treats specially.
	type sender struct{ inc, seq uint64 }
	senders := map[uint32]*sender{2: {1, 0}, 3: {0, 0}}
	for i := range 3000 {
		f := heartbeat.Frame{
			Link:      uint8(rng.UintN(8) / 7), // mostly link 0
			ClusterID: cfg.ClusterID,
			NodeID:    []uint32{1, 2, 2, 2, 3, 3, 3, 4}[rng.IntN(8)],
			SentNs:    time.Now().UnixNano(),
		}
		if s := senders[f.NodeID]; s != nil {
			switch r := rng.Float64(); {
			case r < 0.7: // the next frame
				s.seq++
				f.Incarnation, f.Seq = s.inc, s.seq
			case r < 0.8: // a restart
				s.inc, s.seq = s.inc+1, 1
				f.Incarnation, f.Seq = s.inc, s.seq
			default: // a replay of an earlier one
				f.Incarnation, f.Seq = rng.Uint64N(s.inc+1), rng.Uint64N(s.seq+1)
			}
		} else {
			f.Incarnation, f.Seq = rng.Uint64N(4), rng.Uint64N(6)
		}
		k := testKey
		switch {
		case pick(0.05):
			f.ClusterID++
		case pick(0.05):
			k = wrongKey
		case pick(0.05):
			f.SentNs += int64(time.Minute) * int64(1-2*rng.IntN(2))
		}
		b := marshal(f, k)
		if pick(0.03) {
			b[4+rng.IntN(4)] ^= 0x10 // version, type, link or flags
		}
		mono := monoNow()
		detHeard, xdpHeard := det.LastHeard(f.NodeID), h.LastHeard(f.NodeID)
		wantEv, changed, _ := det.Receive(b, 0, mono, time.Now().UnixNano())
		if ret := run(t, h, ipv4Packet(testPort, b, 0), loIfindex); ret != xdpDrop {
			t.Fatalf("frame %d: verdict %d", i, ret)
		}
		if d, x := det.LastHeard(f.NodeID) != detHeard, h.LastHeard(f.NodeID) != xdpHeard; d != x {
			t.Fatalf("frame %d %+v: the detector's last heard moved: %v, the XDP program's: %v", i, f, d, x)
		}
		ev, got := nextEvent(t, h, 0)
		if got != changed {
			t.Fatalf("frame %d %+v: XDP event %v (%+v), detector event %v (%+v)", i, f, got, ev, changed, wantEv)
		}
		if changed && (uint8(wantEv.Type) != ev.Type || wantEv.NodeID != ev.NodeID || wantEv.Link != ev.Link ||
			wantEv.Incarnation != ev.Incarnation || wantEv.Seq != ev.Seq || wantEv.Gen != ev.Gen) {
			t.Fatalf("frame %d %+v: XDP event %+v, detector event %+v", i, f, ev, wantEv)
		}
		ds, xs := det.Stats(), stats(t, h)
		if want := (bpf.Stats{Accepted: ds.Accepted, BadMAC: ds.BadMAC, Replay: ds.Replay, Stale: ds.Stale, UnknownPeer: ds.UnknownPeer,
			WrongCluster: ds.WrongCluster, Malformed: ds.Malformed, WrongLink: ds.WrongLink, Self: ds.Self}); xs != want {
			t.Fatalf("frame %d %+v: XDP stats %+v, detector stats %+v", i, f, xs, want)
		}
	}
	for _, ls := range det.LinkStates() {
		p := peer(t, h, ls.Node, ls.Link)
		if []string{"unknown", "up", "down"}[p.State] != ls.State || p.Incarnation != ls.Incarnation || p.Seq != ls.Seq || p.Frames != ls.Frames {
			t.Errorf("peer %d link %d: XDP %+v, detector %+v", ls.Node, ls.Link, p, ls)
		}
	}
	s := stats(t, h)
	t.Logf("stats after 3000 random frames: %+v", s)
	if s.Accepted == 0 || s.Replay == 0 || s.BadMAC == 0 || s.WrongLink == 0 || s.Self == 0 || s.Stale == 0 || s.Malformed == 0 || s.UnknownPeer == 0 || s.WrongCluster == 0 {
		t.Errorf("random traffic missed a verdict: %+v", s)
	}
}
