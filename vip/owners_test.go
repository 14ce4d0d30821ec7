package vip

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/bpf"
	"github.com/tachy-ha/tachy/internal/netnstest"
)

func TestOwnerCounter(t *testing.T) {
	vip := netip.MustParseAddr("10.77.2.100")
	a := Announcement{IP: vip, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	b := Announcement{IP: vip, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	other := Announcement{IP: netip.MustParseAddr("10.77.2.101"), MAC: b.MAC}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	c := NewOwnerCounter(vip)
	c.Answer(0, b) // no question yet: ignored
	// A answers three questions, then nobody twice (the takeover gap),
	// then B; an answer for another address changes nothing.
	script := [][]Announcement{
		{a}, {a, a}, {a, other},
		nil, nil,
		{b}, {b},
		{b, a}, // both at once: a dual answer
		{b},
	}
	for i, answers := range script {
		n := c.Ask(at(i))
		for _, an := range answers {
			c.Answer(n, an)
		}
	}
	// A late answer to question 3 still counts: it was a gap no more.
	c.Answer(3, b)
	c.Finish()
	if c.Questions != 9 || c.Unanswered != 1 || c.Dual != 1 {
		t.Fatalf("questions %d unanswered %d dual %d; want 9, 1, 1", c.Questions, c.Unanswered, c.Dual)
	}
	ch := c.Changes()
	if len(ch) != 3 || len(ch[0].MACs) != 1 || ch[0].MACs[0] != a.MAC.String() || ch[1].MACs[0] != b.MAC.String() ||
		!ch[1].At.Equal(at(3)) || len(ch[2].MACs) != 2 || !ch[2].At.Equal(at(7)) {
		t.Fatalf("changes %+v", ch)
	}
	// Questions close after openQuestions newer ones: later answers are
	// ignored, and the memory stays bounded.
	c = NewOwnerCounter(vip)
	first := c.Ask(at(0))
	for i := range openQuestions {
		c.Ask(at(i + 1))
	}
	c.Answer(first, a)
	c.Finish()
	if c.Unanswered != openQuestions+1 || len(c.open) != 0 {
		t.Fatalf("unanswered %d, open %d", c.Unanswered, len(c.open))
	}
}

// Two "nodes" and a client on one bridge; each node's ARP responder may
// claim the VIP. The client asks every millisecond and counts.
func TestOwnerCounterOnABridge(t *testing.T) {
	netnstest.Enter(t)
	ip := func(args ...string) { t.Helper(); netnstest.Run(t, append([]string{"ip"}, args...)...) }
	ip("link", "add", "br0", "type", "bridge", "forward_delay", "0")
	ip("link", "set", "br0", "up")
	for _, n := range []string{"o1", "o2", "cl"} {
		ip("link", "add", n+"a", "type", "veth", "peer", "name", n+"b")
		ip("link", "set", n+"b", "master", "br0")
		ip("link", "set", n+"b", "up")
		ip("link", "set", n+"a", "up")
	}
	vip := netip.MustParseAddr("10.99.0.100")
	var responders [2]*bpf.ARPResponder
	var macs [2]net.HardwareAddr
	for i := range responders {
		ifi, err := net.InterfaceByName(fmt.Sprintf("o%da", i+1))
		if err != nil {
			t.Fatal(err)
		}
		r, err := bpf.LoadARPResponder()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c, err := r.Attach(ifi.Index, bpf.AttachGeneric)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		responders[i], macs[i] = r, ifi.HardwareAddr
	}
	cl, err := net.InterfaceByName("cla")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := packet.Listen(cl, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bcast := &packet.Addr{HardwareAddr: broadcastMAC}
	// Each question comes from its own address in 10.99.1.0/24, so that a
	// reply says which question it answers.
	askerIP := func(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, 1, byte(n%250 + 1)}) }

	// probe asks n questions, 1 ms apart, and counts the answers; before
	// question i, step(i) may change who claims the VIP.
	probe := func(n int, step func(i int)) *OwnerCounter {
		t.Helper()
		c := NewOwnerCounter(vip)
		byAsker := map[netip.Addr]int{}
		buf := make([]byte, 1500)
		read := func(until time.Time) {
			for {
				conn.SetReadDeadline(until)
				m, _, err := conn.ReadFrom(buf)
				if err != nil {
					return
				}
				if a, err := ParseAnnouncement(buf[:m]); err == nil && a.Op == "arp-reply" {
					if q, ok := byAsker[a.To]; ok {
						c.Answer(q, a)
					}
				}
			}
		}
		for i := range n {
			step(i)
			q := c.Ask(time.Now())
			byAsker[askerIP(q)] = q
			question, err := ARPRequest(cl.HardwareAddr, askerIP(q), vip)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.WriteTo(question, bcast); err != nil {
				t.Fatal(err)
			}
			read(time.Now().Add(time.Millisecond))
		}
		read(time.Now().Add(100 * time.Millisecond)) // the last answers
		c.Finish()
		return c
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Node 1 owns the VIP; halfway, it releases it and node 2 takes over.
	must(responders[0].Add(vip, macs[0]))
	c := probe(200, func(i int) {
		if i == 100 {
			must(responders[0].Remove(vip))
			must(responders[1].Add(vip, macs[1]))
		}
	})
	t.Logf("takeover: %d questions, %d unanswered, %d dual, changes %v", c.Questions, c.Unanswered, c.Dual, c.Changes())
	if c.Dual != 0 || len(c.Changes()) != 2 || c.Changes()[1].MACs[0] != macs[1].String() {
		t.Fatalf("clean takeover counted as dual %d, changes %v", c.Dual, c.Changes())
	}
	// A quarter of the questions unanswered would mean the probe or the
	// responders are broken; a few may be lost on a loaded machine.
	if c.Unanswered > 50 {
		t.Fatalf("%d of 200 questions unanswered", c.Unanswered)
	}

	// Both claim it: the counter sees two MACs answer.
	must(responders[0].Add(vip, macs[0]))
	c = probe(100, func(int) {})
	t.Logf("both claim: %d questions, %d unanswered, %d dual", c.Questions, c.Unanswered, c.Dual)
	if c.Dual < 90 {
		t.Fatalf("with two owners only %d of 100 questions had two answers", c.Dual)
	}
}
