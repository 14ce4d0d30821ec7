package fence

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Watchdog self-fencing, as sbd does it: the node feeds a hardware
// watchdog (i6300esb in QEMU, an iTCO or IPMI watchdog on servers, softdog
// where there is none) only while it may run resources. A node that loses
// quorum, or whose heartbeat sender stalls (its peers then see it dead),
// stops feeding it, and the watchdog resets the node within its timeout,
// whatever state the node's software is in. The DC can then count a lost
// node as fenced once stonith-watchdog-timeout has passed, without a
// fencing device that can reach it.

// WatchdogDevice is an open Linux watchdog (/dev/watchdog).
type WatchdogDevice struct {
	f       *os.File
	timeout time.Duration
}

// OpenWatchdog opens the device and sets its timeout (whole seconds). From
// then on the node is reset unless Keepalive is called more often than
// the timeout, until Disarm.
func OpenWatchdog(path string, timeout time.Duration) (*WatchdogDevice, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog %s: %w (load a watchdog driver: i6300esb in QEMU, softdog otherwise; or leave local.watchdog out)", path, err)
	}
	secs := int(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	// The driver may round the timeout; it answers with what it set.
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.WDIOC_SETTIMEOUT, secs); err != nil {
		disarm(f)
		return nil, fmt.Errorf("watchdog %s: setting the timeout to %ds: %w", path, secs, err)
	}
	got, err := unix.IoctlGetInt(int(f.Fd()), wdiocGetTimeout)
	if err != nil || got <= 0 {
		got = secs
	}
	return &WatchdogDevice{f: f, timeout: time.Duration(got) * time.Second}, nil
}

// wdiocGetTimeout is WDIOC_GETTIMEOUT, _IOR('W', 7, int).
const wdiocGetTimeout = 0x80045707

// Timeout is the timeout the driver set.
func (w *WatchdogDevice) Timeout() time.Duration { return w.timeout }

// Keepalive feeds the watchdog.
func (w *WatchdogDevice) Keepalive() error {
	if err := unix.IoctlWatchdogKeepalive(int(w.f.Fd())); err != nil {
		// Some drivers only know the write interface.
		if _, werr := w.f.Write([]byte{0}); werr != nil {
			return fmt.Errorf("watchdog keepalive: %w", errors.Join(err, werr))
		}
	}
	return nil
}

// Disarm stops the watchdog (the "magic close": a 'V' before closing),
// for a clean stop. A driver built with nowayout keeps counting: the node
// is reset after the timeout anyway.
func (w *WatchdogDevice) Disarm() error { return disarm(w.f) }

func disarm(f *os.File) error {
	_, err := f.Write([]byte("V"))
	return errors.Join(err, f.Close())
}

// SelfFence decides, at every tick, whether the node may feed its
// watchdog. It is pure: the daemon gives it what it sees.
type SelfFence struct {
	// SenderStall: the heartbeat sender must have sent a frame within
	// this long (its peers declare the node dead after about their
	// detection time without one).
	SenderStall time.Duration

	wasQuorate  bool
	lastFrames  uint64
	lastSending time.Time
	doomed      string // why it stopped feeding: it never starts again
}

// Feed reports whether to feed the watchdog now, and if not why: the node
// had quorum and lost it, or its heartbeat sender has sent nothing for
// SenderStall. A node that has not had quorum yet runs no resources, so it
// feeds the watchdog while it waits for its peers.
//
// Once it has said no, it says no for good, even if quorum comes back
// before the reset: the majority may already count on this node being
// reset (stonith-watchdog-timeout) and start its resources elsewhere.
func (s *SelfFence) Feed(now time.Time, quorate bool, framesSent uint64) (bool, string) {
	if s.doomed != "" {
		return false, s.doomed
	}
	if framesSent != s.lastFrames || s.lastSending.IsZero() {
		s.lastFrames, s.lastSending = framesSent, now
	}
	if quorate {
		s.wasQuorate = true
	}
	switch {
	case s.wasQuorate && !quorate:
		s.doomed = "this node lost quorum: the watchdog will reset it"
	case s.SenderStall > 0 && now.Sub(s.lastSending) > s.SenderStall:
		s.doomed = fmt.Sprintf("the heartbeat sender sent nothing for %v: its peers see this node dead; the watchdog will reset it", now.Sub(s.lastSending).Round(time.Millisecond))
	default:
		return true, ""
	}
	return false, s.doomed
}
