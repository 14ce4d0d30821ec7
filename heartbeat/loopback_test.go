package heartbeat

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// A sender and the user-space receiver over loopback: the link comes up, and
// goes down about one timeout after the sender stops. Needs no privileges.
func TestSenderToUDPReceiverLoopback(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no loopback interface:", err)
	}
	port := freeUDPPort(t)
	local := []LocalLink{{Addr: netip.MustParseAddr("127.0.0.1"), IfIndex: lo.Index}}
	// Loose enough that a busy machine running tests in parallel under
	// -race does not stall the sender that long.
	timeout := 500 * time.Millisecond
	recv, err := NewUDPReceiver(ReceiverConfig{
		Detector: DetectorConfig{ClusterID: testCluster, LocalNode: 1, Key: testKey, Timeout: timeout, MaxSkew: time.Second},
		Port:     port,
		Links:    local,
		Peers:    []Peer{{ID: 2, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	events := make(chan Event, 100)
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan error, 1)
	go func() { rdone <- recv.Run(rctx, func(e Event) { events <- e }) }()
	// Run must have returned before Close (deferred below) runs, also
	// when the test fails early.
	stopRecv := sync.OnceValue(func() error { rcancel(); return <-rdone })
	defer stopRecv()

	send, err := NewSender(SenderConfig{ClusterID: testCluster, NodeID: 2, Incarnation: 42, Key: testKey, Interval: 5 * time.Millisecond, Port: port,
		Links: local, Peers: []Peer{{ID: 1, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- send.Run(sctx) }()
	stopSend := sync.OnceValue(func() error { scancel(); return <-sdone })
	defer stopSend()

	up := waitEvent(t, events, LinkUp, 5*time.Second)
	if up.NodeID != 2 || up.Incarnation != 42 {
		t.Fatalf("up event %+v", up)
	}
	time.Sleep(200 * time.Millisecond) // steady state: no down event expected
	select {
	case e := <-events:
		t.Fatalf("unexpected event while sending: %+v", e)
	default:
	}
	stopped := MonotonicNow()
	stopSend()
	down := waitEvent(t, events, LinkDown, 5*time.Second)
	// Never early: a full timeout after the last frame that arrived (on a
	// busy machine the sender may have stalled before it was stopped, so
	// the time since the stop says less).
	ls := recv.LinkStates()
	if len(ls) != 1 || ls[0].State != "down" {
		t.Fatalf("link states %+v", ls)
	}
	if d := time.Duration(down.TimeNs - ls[0].LastSeenNs); d < timeout {
		t.Fatalf("down %v after the last frame, timeout is %v", d, timeout)
	}
	if d := time.Duration(down.TimeNs - stopped); d > 5*time.Second {
		t.Fatalf("down %v after the sender stopped", d)
	}
	if s := recv.Stats(); s.Accepted < 10 || s.BadMAC+s.Replay+s.Malformed+s.WrongLink != 0 {
		t.Fatalf("receiver stats %+v", s)
	}
	if s := send.Stats(); s.Sent < 10 || s.SendErrors != 0 {
		t.Fatalf("sender stats %+v", s)
	}
	if err := stopRecv(); err != nil {
		t.Fatal(err)
	}
}

func waitEvent(t *testing.T, ch <-chan Event, want EventType, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-ch:
			if e.Type == want {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", want, within)
		}
	}
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
