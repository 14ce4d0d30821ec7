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

func (nullHolder) SetLease(int64)       {}
func (nullHolder) ReleaseAll() []string { return nil }
func (nullHolder) Holding() bool        { return false }

// A runner started Off sends no view frames until SetActive(true), and none
// after SetActive(false).
func TestRunnerOff(t *testing.T) {
	// A free UDP port on loopback for the frames (sent to a peer at
	// 127.0.0.2, which is this host).
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := Start(ctx, RunnerConfig{
		Lease:    Config{Self: 1, Votes: map[uint32]uint32{1: 1, 2: 1, 3: 1}, Lease: 5 * time.Millisecond, Delta: time.Millisecond / 2},
		Port:     port,
		Interval: time.Millisecond,
		Peers:    map[uint32][]netip.Addr{2: {netip.MustParseAddr("127.0.0.2")}},
		Up:       func() []uint32 { return nil },
		Holder:   nullHolder{},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Off:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if at := r.sentHear[1].Load(); at != 0 {
		t.Fatalf("a frame went out while off (at %d)", at)
	}
	r.SetActive(true)
	deadline := time.Now().Add(5 * time.Second)
	for r.sentHear[1].Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no frame went out once on")
		}
		time.Sleep(time.Millisecond)
	}
	r.SetActive(false)
	time.Sleep(20 * time.Millisecond) // a round in flight ends
	last := r.sentHear[1].Load()
	time.Sleep(30 * time.Millisecond)
	if now := r.sentHear[1].Load(); now != last {
		t.Fatal("frames went on after SetActive(false)")
	}
}

// With a grant window, a round names the peers heard within it (Heard's
// stamps at the round), not those membership reports up.
func TestRunnerGrantWindow(t *testing.T) {
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var silent atomic.Bool // node 2 stops being heard
	r, err := Start(ctx, RunnerConfig{
		Lease:       Config{Self: 1, Votes: map[uint32]uint32{1: 1, 2: 1, 3: 1}, Lease: 5 * time.Millisecond, Delta: time.Millisecond / 2},
		Port:        port,
		Interval:    time.Millisecond,
		Peers:       map[uint32][]netip.Addr{2: {netip.MustParseAddr("127.0.0.2")}},
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
		Holder: nullHolder{},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.sentHear[2].Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no round granted the peer just heard")
		}
		time.Sleep(time.Millisecond)
	}
	if at := r.sentHear[3].Load(); at != 0 {
		t.Fatal("a round granted a peer last heard longer ago than the window, although membership has it up")
	}
	silent.Store(true)
	time.Sleep(20 * time.Millisecond) // a round in flight ends
	last := r.sentHear[2].Load()
	time.Sleep(30 * time.Millisecond)
	if now := r.sentHear[2].Load(); now != last {
		t.Fatal("rounds went on granting a peer no longer heard")
	}
	if r.sentHear[1].Load() <= last {
		t.Fatal("the rounds stopped")
	}
}
