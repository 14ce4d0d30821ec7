package vmtests

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// nic is a fake VM NIC on a switch port, speaking QEMU's stream framing.
type nic struct {
	c   net.Conn
	mac [6]byte
	got chan []byte
}

func plug(t *testing.T, s *Switch, name string, last byte) *nic {
	t.Helper()
	path, err := s.AddPort(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	n := &nic{c: c, mac: [6]byte{0x52, 0x54, 0, 0, 0, last}, got: make(chan []byte, 16)}
	go func() {
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, f); err != nil {
				return
			}
			n.got <- f
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

func (n *nic) send(t *testing.T, dst [6]byte, payload string) {
	t.Helper()
	f := append(append(append([]byte{}, dst[:]...), n.mac[:]...), 0x88, 0xb5)
	f = append(f, payload...)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(f)))
	if _, err := n.c.Write(append(b, f...)); err != nil {
		t.Fatal(err)
	}
}

func (n *nic) expect(t *testing.T, payload string, within time.Duration) {
	t.Helper()
	select {
	case f := <-n.got:
		if string(f[14:]) != payload {
			t.Fatalf("%x got %q, want %q", n.mac[5], f[14:], payload)
		}
	case <-time.After(within):
		t.Fatalf("%x got nothing, want %q", n.mac[5], payload)
	}
}

func (n *nic) none(t *testing.T) {
	t.Helper()
	select {
	case f := <-n.got:
		t.Fatalf("%x got %q, want nothing", n.mac[5], f[14:])
	case <-time.After(100 * time.Millisecond):
	}
}

var bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func TestSwitch(t *testing.T) {
	s := NewSwitch("ring0", t.TempDir())
	defer s.Close()
	a, b, c := plug(t, s, "a", 1), plug(t, s, "b", 2), plug(t, s, "c", 3)
	time.Sleep(50 * time.Millisecond) // the switch accepts the connections
	// Broadcast floods; then the switch knows where a is.
	a.send(t, bcast, "hello")
	b.expect(t, "hello", time.Second)
	c.expect(t, "hello", time.Second)
	b.send(t, a.mac, "to a")
	a.expect(t, "to a", time.Second)
	c.none(t)
	// A cut cable: nothing in, nothing out.
	s.Cut("c", true)
	a.send(t, bcast, "cut")
	b.expect(t, "cut", time.Second)
	c.none(t)
	c.send(t, bcast, "from c")
	a.none(t)
	s.Cut("c", false)
	// Partition {a} | {b, c}.
	if err := s.Partition([][]string{{"a"}, {"b", "c"}}); err != nil {
		t.Fatal(err)
	}
	a.send(t, bcast, "alone")
	b.none(t)
	b.send(t, bcast, "bc")
	c.expect(t, "bc", time.Second)
	a.none(t)
	if err := s.Partition([][]string{{"a", "x"}}); err == nil {
		t.Fatal("a partition naming no port was accepted")
	}
	s.Partition(nil)
	// Delay on a port.
	s.Delay("b", 200*time.Millisecond)
	start := time.Now()
	a.send(t, b.mac, "late")
	b.expect(t, "late", 2*time.Second)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("delivered after %v, want at least 200ms", d)
	}
}

func TestARPClaims(t *testing.T) {
	s := NewSwitch("ring0", t.TempDir())
	defer s.Close()
	a, b := plug(t, s, "a", 1), plug(t, s, "b", 2)
	time.Sleep(50 * time.Millisecond)
	claims, stop := s.WatchARP([4]byte{10, 77, 0, 100})
	defer stop()
	arp := func(n *nic, op byte, spa, tpa [4]byte) {
		p := []byte{0, 1, 8, 0, 6, 4, 0, op}
		p = append(p, n.mac[:]...)
		p = append(p, spa[:]...)
		p = append(p, make([]byte, 6)...)
		p = append(p, tpa[:]...)
		f := append(append(append([]byte{}, bcast[:]...), n.mac[:]...), 0x08, 0x06)
		f = append(f, p...)
		b := binary.BigEndian.AppendUint32(nil, uint32(len(f)))
		n.c.Write(append(b, f...))
	}
	vipAddr, other := [4]byte{10, 77, 0, 100}, [4]byte{10, 77, 0, 1}
	arp(a, 1, vipAddr, vipAddr) // gratuitous: a claims it
	arp(b, 1, other, vipAddr)   // a request for it: no claim
	arp(b, 2, vipAddr, other)   // a reply from b: b claims it
	time.Sleep(100 * time.Millisecond)
	// Two connections: their frames may be seen in either order.
	got := claims()
	if len(got) != 2 || got[0].MAC == got[1].MAC || (got[0].MAC != a.mac && got[0].MAC != b.mac) || (got[1].MAC != a.mac && got[1].MAC != b.mac) {
		t.Fatalf("claims %+v, want one from a and one from b", got)
	}
}
