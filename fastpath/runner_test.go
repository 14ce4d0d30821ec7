package fastpath

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/heartbeat"
)

// cmsg builds a control message as the kernel writes it.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func timespec(ns int64) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b[0:], uint64(ns/1e9))
	binary.NativeEndian.PutUint64(b[8:], uint64(ns%1e9))
	return b
}

func TestArrival(t *testing.T) {
	var real unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &real); err != nil {
		t.Fatal(err)
	}
	mono := heartbeat.MonotonicNow()
	stamp := real.Nano() - 3e6 // arrived 3 ms ago
	// Another control message first, then the stamp.
	oob := append(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1, 2, 3, 4}), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(stamp))...)
	at, ok := arrival(oob)
	if !ok {
		t.Fatal("no stamp found")
	}
	if d := mono - 3e6 - at; d < -5e6 || d > 5e6 {
		t.Fatalf("arrival %d, want about %d (3 ms before the monotonic now)", at, mono-3e6)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"no stamp":  cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1, 2, 3, 4}),
		"truncated": cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(stamp))[:20],
		"short":     cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, []byte{1, 2, 3}),
	} {
		if _, ok := arrival(b); ok {
			t.Errorf("%s: a stamp was found", name)
		}
	}
}

func FuzzArrival(f *testing.F) {
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(1e18)))
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1}), cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(5))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		arrival(b) // must not panic or loop
	})
}

type nullHolder struct{}

func (nullHolder) SetLease(int64)           {}
func (nullHolder) ReleaseAll() []string     { return nil }
func (nullHolder) ReleaseUngated() []string { return nil }
func (nullHolder) Holding() bool            { return false }

// A runner started Off sends no view frames until SetActive(true), and none
// after SetActive(false).
func TestRunnerOff(t *testing.T) {
	r := startTestRunner(t, RunnerConfig{Up: func() []uint32 { return nil }, Off: true})
	time.Sleep(20 * time.Millisecond)
	if at := r.sentHear[1].Load(); at != 0 {
		t.Fatalf("a frame went out while off (at %d)", at)
	}
	r.SetActive(true)
	waitSentHear(t, r, 1, "no frame went out once on")
	r.SetActive(false)
	if _, goesOn := stillSending(r, 1); goesOn {
		t.Fatal("frames went on after SetActive(false)")
	}
}

// startTestRunner starts a runner on a free loopback port, node 1 of three
// with node 2 at 127.0.0.2 (this host), 1 ms rounds; cfg adds Up, Off and
// the grant window.
func startTestRunner(t *testing.T, cfg RunnerConfig) *Runner {
	t.Helper()
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.Lease = Config{Self: 1, Votes: map[uint32]uint32{1: 1, 2: 1, 3: 1}, Lease: 5 * time.Millisecond, Delta: time.Millisecond / 2}
	cfg.Interval = time.Millisecond
	cfg.Peers = map[uint32][]netip.Addr{2: {netip.MustParseAddr("127.0.0.2")}}
	if cfg.Holder == nil {
		cfg.Holder = nullHolder{}
	}
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitSentHear waits until a round has granted node id.
func waitSentHear(t *testing.T, r *Runner, id uint32, fail string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.sentHear[id].Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal(fail)
		}
		time.Sleep(time.Millisecond)
	}
}

// stillSending says whether rounds granting node id go on after a round in
// flight has ended; last is that node's stamp once it ended.
func stillSending(r *Runner, id uint32) (last int64, goesOn bool) {
	time.Sleep(20 * time.Millisecond) // a round in flight ends
	last = r.sentHear[id].Load()
	time.Sleep(30 * time.Millisecond)
	return last, r.sentHear[id].Load() != last
}

// With a grant window, a round names the peers heard within it (Heard's
// stamps at the round), not those membership reports up.
func TestRunnerGrantWindow(t *testing.T) {
	var silent atomic.Bool // node 2 stops being heard
	r := startTestRunner(t, RunnerConfig{
		Up:          func() []uint32 { return []uint32{2, 3} }, // membership: both up
		GrantWindow: 2 * time.Millisecond,
		Heard: func(id uint32) int64 {
			if id == 2 && !silent.Load() {
				return heartbeat.MonotonicNow() // just heard
			}
			if id == 3 {
				return heartbeat.MonotonicNow() - int64(3*time.Millisecond) // last heard 3 ms ago
			}
			return 0
		},
	})
	waitSentHear(t, r, 2, "no round granted the peer just heard")
	if at := r.sentHear[3].Load(); at != 0 {
		t.Fatal("a round granted a peer last heard longer ago than the window, although membership has it up")
	}
	silent.Store(true)
	last, goesOn := stillSending(r, 2)
	if goesOn {
		t.Fatal("rounds went on granting a peer no longer heard")
	}
	if r.sentHear[1].Load() <= last {
		t.Fatal("the rounds stopped")
	}
}

// fakeHolder holds an IPv4 VIP, which the kernel keeps silent past the
// lease's end, and an IPv6 one, which it does not.
type fakeHolder struct {
	mu              sync.Mutex
	v4, v6          bool
	lease           int64
	ungated, allRel int // calls
}

func (h *fakeHolder) SetLease(end int64) { h.mu.Lock(); h.lease = end; h.mu.Unlock() }
func (h *fakeHolder) Holding() bool      { h.mu.Lock(); defer h.mu.Unlock(); return h.v4 || h.v6 }
func (h *fakeHolder) ReleaseUngated() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ungated++
	if h.v6 {
		h.v6 = false
		return []string{"fd00::1"}
	}
	return nil
}
func (h *fakeHolder) ReleaseAll() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.allRel++
	var out []string
	if h.v4 {
		out = append(out, "10.0.0.1")
	}
	if h.v6 {
		out = append(out, "fd00::1")
	}
	h.v4, h.v6 = false, false
	return out
}

// A lapse of the lease releases the IPv6 VIP at once and keeps the IPv4
// one; when node 2's frames resume, unbroken, the lease revives and the
// IPv4 VIP stays, answered again; when they stop for longer than the
// grace, it goes too, and OnLeaseEnded gets it (the daemon records the
// stop from there).
func TestRunnerKeepsIPv4ThroughARevivedLapse(t *testing.T) {
	h := &fakeHolder{v4: true, v6: true}
	var mu sync.Mutex
	var ended [][]string
	revived := make(chan time.Duration, 100)
	r := startTestRunner(t, RunnerConfig{Up: func() []uint32 { return []uint32{2} }, Holder: h, Grace: 150 * time.Millisecond,
		OnLeaseEnded: func(rel []string) { mu.Lock(); ended = append(ended, rel); mu.Unlock() },
		OnRevived:    func(lapse time.Duration) { revived <- lapse }})
	conn, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	seq := uint64(0)
	buf := make([]byte, FrameLen)
	// send sends node 2's frames, each naming node 1, every half
	// millisecond for d.
	send := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond / 2) {
			seq++
			f := Frame{ClusterID: r.cfg.ClusterID, NodeID: 2, Incarnation: 1, Seq: seq, View: SetOf(1, 2, 3)}
			if _, err := conn.Write(MarshalFrame(buf, &f, r.cfg.Key)); err != nil {
				t.Fatal(err)
			}
		}
	}
	state := func() (lease int64, v4, v6 bool, ungated, all int) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.lease, h.v4, h.v6, h.ungated, h.allRel
	}
	send(50 * time.Millisecond)
	if !r.LeaseValid() {
		t.Fatal("no lease from node 2's frames")
	}
	time.Sleep(30 * time.Millisecond) // no frames for 6 L: the lease lapses
	lease, v4, v6, ungated, all := state()
	if r.LeaseValid() || lease != 1 || v6 || !v4 || ungated == 0 || all != 0 {
		t.Fatalf("after a lapse: lease valid %v, kernel's end %d, IPv4 held %v, IPv6 held %v, ReleaseUngated %d and ReleaseAll %d calls",
			r.LeaseValid(), lease, v4, v6, ungated, all)
	}
	send(20 * time.Millisecond)
	lease, v4, _, _, all = state()
	if !r.LeaseValid() || lease <= heartbeat.MonotonicNow()-int64(5*time.Millisecond) || !v4 || all != 0 {
		t.Fatalf("after the frames resumed: lease valid %v, kernel's end %d ms from now, IPv4 held %v, ReleaseAll %d calls",
			r.LeaseValid(), (lease-heartbeat.MonotonicNow())/1e6, v4, all)
	}
	select {
	case lapse := <-revived:
		if lapse < 5*time.Millisecond {
			t.Fatalf("revived after a lapse of %v, want about 25 ms", lapse)
		}
	case <-time.After(time.Second):
		t.Fatal("OnRevived not called")
	}
	if n := r.Revivals(); n == 0 {
		t.Fatal("Revivals 0 after a revival")
	}
	mu.Lock()
	if len(ended) != 1 || len(ended[0]) != 1 || ended[0][0] != "fd00::1" {
		t.Fatalf("OnLeaseEnded got %v, want the IPv6 VIP alone", ended)
	}
	mu.Unlock()
	// Silent for longer than the grace: the IPv4 VIP goes too.
	time.Sleep(300 * time.Millisecond)
	_, v4, _, _, all = state()
	if v4 || all == 0 {
		t.Fatalf("after a lapse longer than the grace: IPv4 held %v, ReleaseAll %d calls", v4, all)
	}
	deadline := time.Now().Add(time.Second)
	for {
		mu.Lock()
		got := append([][]string(nil), ended...)
		mu.Unlock()
		if len(got) >= 2 && len(got[len(got)-1]) == 1 && got[len(got)-1][0] == "10.0.0.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnLeaseEnded got %v, want the IPv4 VIP last", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And a new lease begins from scratch with the next frames.
	seq += 5 // a gap: only a new lease can come of them
	send(20 * time.Millisecond)
	if !r.LeaseValid() {
		t.Fatal("no new lease after the release")
	}
	// Once no revival is possible (node 2's run broken by a frame not
	// naming node 1), the IPv4 VIP goes at once, not after the grace.
	h.mu.Lock()
	h.v4 = true
	h.mu.Unlock()
	send(10 * time.Millisecond)
	time.Sleep(20 * time.Millisecond) // lapses
	_, v4, _, _, all = state()
	if !v4 {
		t.Fatal("IPv4 VIP released at the lapse")
	}
	seq++
	f := Frame{ClusterID: r.cfg.ClusterID, NodeID: 2, Incarnation: 1, Seq: seq, View: SetOf(2, 3)}
	if _, err := conn.Write(MarshalFrame(buf, &f, r.cfg.Key)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a third of the grace
	_, v4, _, _, all2 := state()
	if v4 || all2 != all+1 {
		t.Fatalf("after the run was broken: IPv4 held %v, ReleaseAll %d calls (before: %d)", v4, all2, all)
	}
}
