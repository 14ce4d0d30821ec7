package fastpath

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
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
	cfg.Holder = nullHolder{}
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
