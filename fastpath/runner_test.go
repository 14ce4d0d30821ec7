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
// stop from there); and once node 2's run is broken, no revival can come
// and it goes at once, before the grace is over. The checks poll rather
// than sleep for fixed times: under load the runner's threads run late.
func TestRunnerKeepsIPv4ThroughARevivedLapse(t *testing.T) {
	const grace = time.Second
	h := &fakeHolder{v4: true, v6: true}
	var mu sync.Mutex
	var ended [][]string
	revived := make(chan time.Duration, 100)
	r := startTestRunner(t, RunnerConfig{Up: func() []uint32 { return []uint32{2} }, Holder: h, Grace: grace,
		OnLeaseEnded: func(rel []string) { mu.Lock(); ended = append(ended, rel); mu.Unlock() },
		OnRevived:    func(lapse time.Duration) { revived <- lapse }})
	conn, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.cfg.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	seq := uint64(0)
	buf := make([]byte, FrameLen)
	frame := func(view Set) {
		seq++
		f := Frame{ClusterID: r.cfg.ClusterID, NodeID: 2, Incarnation: 1, Seq: seq, View: view}
		if _, err := conn.Write(MarshalFrame(buf, &f, r.cfg.Key)); err != nil {
			t.Fatal(err)
		}
	}
	// sendUntil sends node 2's frames, each naming node 1, every half
	// millisecond until cond holds (for 5 s at most).
	sendUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond / 2) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
			frame(SetOf(1, 2, 3))
		}
	}
	// waitFor polls cond for up to d.
	waitFor := func(d time.Duration, cond func() bool) bool {
		for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return false
			}
		}
		return true
	}
	state := func() (lease int64, v4, v6 bool, ungated, all int) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.lease, h.v4, h.v6, h.ungated, h.allRel
	}
	endedCopy := func() [][]string {
		mu.Lock()
		defer mu.Unlock()
		return append([][]string(nil), ended...)
	}
	// A lease, and more frames under it: the frame that builds a lease
	// arrived while there was none, so only the later ones anchor node
	// 2's run. (A stall of this goroutine longer than L before any of
	// them ends the lease for good: start again then.)
	for try := 0; ; try++ {
		sendUntil("a lease from node 2's frames", r.LeaseValid)
		for range 20 {
			frame(SetOf(1, 2, 3))
			time.Sleep(time.Millisecond / 2)
		}
		sendUntil("a lease from node 2's frames", r.LeaseValid)
		if _, _, _, _, a := state(); a == 0 {
			break
		} else if try == 5 {
			t.Fatal("the lease ended for good before node 2's run was anchored, 5 times")
		}
		h.mu.Lock()
		h.v4, h.v6, h.ungated, h.allRel = true, true, 0, 0
		h.mu.Unlock()
		mu.Lock()
		ended = nil
		mu.Unlock()
	}
	// No frames: the lease lapses, the IPv6 VIP goes, the IPv4 one stays.
	// (A lapse may have come and gone while the frames went, if this
	// goroutine stalled: wait for the next.)
	_, _, _, ungated0, _ := state()
	if !waitFor(5*time.Second, func() bool { _, _, _, u, _ := state(); return u > ungated0 }) {
		t.Fatal("the lease did not lapse without frames")
	}
	lease, v4, v6, _, all := state()
	if r.LeaseValid() || lease != 1 || v6 || !v4 || all != 0 {
		t.Fatalf("after a lapse: lease valid %v, kernel's end %d, IPv4 held %v, IPv6 held %v, ReleaseAll %d calls",
			r.LeaseValid(), lease, v4, v6, all)
	}
	waitFor(5*time.Second, func() bool { return len(endedCopy()) > 0 }) // OnLeaseEnded runs on its own goroutine
	if got := endedCopy(); len(got) != 1 || len(got[0]) != 1 || got[0][0] != "fd00::1" {
		t.Fatalf("OnLeaseEnded got %v, want the IPv6 VIP alone", got)
	}
	// Node 2's frames resume, the next of its run: the lease revives.
	sendUntil("a revival", r.LeaseValid)
	lease, v4, _, _, all = state()
	if lease <= heartbeat.MonotonicNow()-int64(5*time.Millisecond) || !v4 || all != 0 {
		t.Fatalf("after the frames resumed: kernel's end %d ms from now, IPv4 held %v, ReleaseAll %d calls",
			(lease-heartbeat.MonotonicNow())/1e6, v4, all)
	}
	select {
	case lapse := <-revived:
		if lapse <= 0 {
			t.Fatalf("revived after a lapse of %v", lapse)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRevived not called")
	}
	if n := r.Revivals(); n == 0 {
		t.Fatal("Revivals 0 after a revival")
	}
	// Silent for longer than the grace: the IPv4 VIP goes too, reported.
	began := time.Now()
	if !waitFor(5*time.Second, func() bool { _, _, _, _, a := state(); return a > 0 }) {
		t.Fatal("IPv4 VIP not released after the grace")
	}
	if d := time.Since(began); d < grace {
		t.Fatalf("IPv4 VIP released %v after the frames stopped, within the grace of %v", d, grace)
	}
	if !waitFor(5*time.Second, func() bool {
		got := endedCopy()
		return len(got) >= 2 && len(got[len(got)-1]) == 1 && got[len(got)-1][0] == "10.0.0.1"
	}) {
		t.Fatalf("OnLeaseEnded got %v, want the IPv4 VIP last", endedCopy())
	}
	// A new lease begins from scratch with the next frames.
	seq += 5 // a gap: only a new lease can come of them
	sendUntil("a new lease after the release", r.LeaseValid)
	for range 20 {
		frame(SetOf(1, 2, 3))
		time.Sleep(time.Millisecond / 2)
	}
	// Once no revival is possible (node 2's run broken by a frame not
	// naming node 1), the IPv4 VIP goes at once, not after the grace.
	h.mu.Lock()
	h.v4 = true
	h.mu.Unlock()
	_, _, _, ungated1, all0 := state()
	if !waitFor(5*time.Second, func() bool { _, _, _, u, _ := state(); return u > ungated1 }) {
		t.Fatal("the new lease did not lapse without frames")
	}
	began = time.Now()
	frame(SetOf(2, 3))
	if !waitFor(grace/2, func() bool { _, _, _, _, a := state(); return a > all0 }) {
		t.Fatalf("IPv4 VIP still held %v after the run was broken", time.Since(began))
	}
}
