package fence

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestSelfFence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := &SelfFence{SenderStall: 100 * time.Millisecond}
	// Waiting for peers (never quorate): fed.
	for ms := 0; ms <= 1000; ms += 100 {
		if ok, why := s.Feed(at(ms), false, uint64(ms)); !ok {
			t.Fatalf("not fed at %d ms before the first quorum: %s", ms, why)
		}
	}
	if ok, _ := s.Feed(at(1100), true, 1100); !ok {
		t.Fatal("a quorate node with a live sender was not fed")
	}
	if ok, why := s.Feed(at(1200), false, 1200); ok || !strings.Contains(why, "lost quorum") {
		t.Fatalf("quorum lost: fed=%v %q", ok, why)
	}
	// Quorum back before the reset: still not fed.
	if ok, _ := s.Feed(at(1300), true, 1300); ok {
		t.Fatal("fed again after it had stopped: the majority may count this node reset")
	}

	s = &SelfFence{SenderStall: 100 * time.Millisecond}
	s.Feed(at(0), true, 5)
	if ok, _ := s.Feed(at(90), true, 5); !ok {
		t.Fatal("a 90 ms pause of the sender is within 100 ms")
	}
	if ok, why := s.Feed(at(150), true, 5); ok || !strings.Contains(why, "heartbeat sender sent nothing for 150ms") {
		t.Fatalf("a stalled sender: fed=%v %q", ok, why)
	}
	if ok, _ := s.Feed(at(160), true, 6); ok {
		t.Fatal("fed again after a stall")
	}
}

func TestOpenWatchdogErrors(t *testing.T) {
	if _, err := OpenWatchdog("/nonexistent/watchdog", 5*time.Second); err == nil || !strings.Contains(err.Error(), "softdog") {
		t.Fatalf("missing device: %v", err)
	}
	// A file that is not a watchdog: the timeout cannot be set.
	f := t.TempDir() + "/file"
	if err := writeFile(f); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWatchdog(f, 5*time.Second); err == nil || !strings.Contains(err.Error(), "setting the timeout") {
		t.Fatalf("not a watchdog: %v", err)
	}
}

func writeFile(p string) error { return os.WriteFile(p, nil, 0o600) }
