package vip

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// OwnerCounter finds the moments when two nodes answer for one VIP. A
// prober asks "who has VIP?" at a steady rate, each question from its own
// sender address so that every answer names the question it answers (an ARP
// reply goes to the asker's address). A question answered by two different
// MACs is a dual-ownership observation: both nodes answered at that moment.
// A takeover done right shows questions answered by the old owner, maybe a
// few unanswered, then the new owner's.
//
// It is pure: feed it the questions and the answers as they happen.
type OwnerCounter struct {
	vip     netip.Addr
	next    int                     // number of the next question
	open    map[int]map[string]bool // answers of questions not yet closed
	asked   map[int]time.Time
	closed  int // questions below this number are closed
	owner   string
	changes []Change

	Questions  int // questions asked
	Unanswered int // questions nobody answered
	Dual       int // questions two or more MACs answered
}

// openQuestions is how many questions stay open for late answers: a
// question is closed when this many newer ones were asked.
const openQuestions = 64

// Change is a moment the answering MAC changed, or a dual answer.
type Change struct {
	At   time.Time // when the question was asked
	MACs []string  // one MAC: a new owner; more: a dual answer
}

// NewOwnerCounter counts answers for vip.
func NewOwnerCounter(vip netip.Addr) *OwnerCounter {
	return &OwnerCounter{vip: vip.Unmap(), open: map[int]map[string]bool{}, asked: map[int]time.Time{}}
}

// Ask records a question asked at t and returns its number.
func (c *OwnerCounter) Ask(t time.Time) int {
	n := c.next
	c.next++
	c.Questions++
	c.open[n] = map[string]bool{}
	c.asked[n] = t
	for c.closed <= n-openQuestions {
		c.close(c.closed)
	}
	return n
}

// Answer credits an announcement for the VIP to question n. Answers for
// other addresses or closed questions are ignored.
func (c *OwnerCounter) Answer(n int, a Announcement) {
	if a.IP.Unmap() != c.vip {
		return
	}
	if m, ok := c.open[n]; ok {
		m[a.MAC.String()] = true
	}
}

// Finish closes every question; call it once the last answers had time to
// arrive.
func (c *OwnerCounter) Finish() {
	for c.closed < c.next {
		c.close(c.closed)
	}
}

func (c *OwnerCounter) close(n int) {
	c.closed = n + 1
	answers, ok := c.open[n]
	if !ok {
		return
	}
	at := c.asked[n]
	delete(c.open, n)
	delete(c.asked, n)
	macs := make([]string, 0, len(answers))
	for mac := range answers {
		macs = append(macs, mac)
	}
	slices.Sort(macs)
	switch len(macs) {
	case 0:
		c.Unanswered++
	case 1:
		if macs[0] != c.owner {
			c.owner = macs[0]
			c.changes = append(c.changes, Change{At: at, MACs: macs})
		}
	default:
		c.Dual++
		c.changes = append(c.changes, Change{At: at, MACs: macs})
	}
}

// Changes lists the owner changes and dual answers, in question order.
func (c *OwnerCounter) Changes() []Change { return c.changes }

// ARPRequest builds a question: a broadcast ARP request for vip from
// (mac, ip).
func ARPRequest(mac net.HardwareAddr, ip, vip netip.Addr) ([]byte, error) {
	b, err := GratuitousARP(mac, ip)
	if err != nil {
		return nil, err
	}
	if !vip.Unmap().Is4() {
		return nil, fmt.Errorf("ARP request: %s is not an IPv4 address", vip)
	}
	v := vip.Unmap().As4()
	copy(b[ethHeaderLen+24:], v[:])
	return b, nil
}
