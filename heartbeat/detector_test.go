package heartbeat

import (
	"errors"
	"testing"
	"time"
)

const (
	testCluster = 7
	testLocal   = 1
	ms          = int64(time.Millisecond)
	realBase    = int64(1_700_000_000_000_000_000)
)

var testKey = DeriveKey([]byte("test cluster secret"))

func newTestDetector() *Detector {
	d := NewDetector(DetectorConfig{ClusterID: testCluster, LocalNode: testLocal, Key: testKey, Timeout: 5 * time.Millisecond, MaxSkew: time.Second})
	for _, n := range []uint32{2, 3} {
		d.AddPeer(n, 0)
		d.AddPeer(n, 1)
	}
	return d
}

func frameBytes(f Frame, k Key) []byte {
	if f.ClusterID == 0 {
		f.ClusterID = testCluster
	}
	return MarshalFrame(make([]byte, FrameLen), &f, k)
}

// hb is a heartbeat from node 2 on link 0, sent at real time t (ms).
func hb(inc, seq uint64, t int64) []byte {
	return frameBytes(Frame{NodeID: 2, Link: 0, Incarnation: inc, Seq: seq, SentNs: realBase + t*ms}, testKey)
}

func TestDetectorVerdicts(t *testing.T) {
	cases := []struct {
		name    string
		b       []byte
		ingress int
		want    error
		counter func(Stats) uint64
	}{
		{"wrong key", frameBytes(Frame{NodeID: 2, Incarnation: 1, Seq: 1, SentNs: realBase}, DeriveKey([]byte("intruder"))), 0, ErrBadMAC, func(s Stats) uint64 { return s.BadMAC }},
		{"other cluster", frameBytes(Frame{ClusterID: 8, NodeID: 2, Incarnation: 1, Seq: 1, SentNs: realBase}, testKey), 0, ErrWrongCluster, func(s Stats) uint64 { return s.WrongCluster }},
		{"truncated", hb(1, 1, 0)[:20], 0, ErrShortFrame, func(s Stats) uint64 { return s.Malformed }},
		{"own id", frameBytes(Frame{NodeID: testLocal, Incarnation: 1, Seq: 1, SentNs: realBase}, testKey), 0, ErrSelf, func(s Stats) uint64 { return s.Self }},
		{"wrong link", hb(1, 1, 0), 1, ErrWrongLink, func(s Stats) uint64 { return s.WrongLink }},
		{"unknown ingress", hb(1, 1, 0), -1, ErrWrongLink, func(s Stats) uint64 { return s.WrongLink }},
		{"unknown node", frameBytes(Frame{NodeID: 9, Incarnation: 1, Seq: 1, SentNs: realBase}, testKey), 0, ErrUnknownPeer, func(s Stats) uint64 { return s.UnknownPeer }},
		{"from the past", hb(1, 1, -2000), 0, ErrStale, func(s Stats) uint64 { return s.Stale }},
		{"from the future", hb(1, 1, 2000), 0, ErrStale, func(s Stats) uint64 { return s.Stale }},
		{"good", hb(1, 1, 0), 0, nil, func(s Stats) uint64 { return s.Accepted }},
	}
	for _, c := range cases {
		d := newTestDetector()
		ev, changed, err := d.Receive(c.b, c.ingress, 100*ms, realBase)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if got := c.counter(d.Stats()); got != 1 {
			t.Errorf("%s: counter = %d, want 1 (stats %+v)", c.name, got, d.Stats())
		}
		if changed != (c.want == nil) {
			t.Errorf("%s: changed = %v", c.name, changed)
		}
		if c.want == nil && (ev.Type != LinkUp || ev.NodeID != 2 || ev.Link != 0 || ev.TimeNs != 100*ms || ev.Gen != 1) {
			t.Errorf("%s: event %+v", c.name, ev)
		}
		if c.want != nil {
			for _, ls := range d.LinkStates() {
				if ls.State != "unknown" {
					t.Errorf("%s: rejected frame changed link state: %+v", c.name, ls)
				}
			}
		}
	}
}

func TestDetectorLifecycle(t *testing.T) {
	d := newTestDetector()
	var events []Event
	emit := func(e Event) { events = append(events, e) }
	recv := func(b []byte, mono int64) error {
		ev, ch, err := d.Receive(b, 0, mono*ms, realBase+mono*ms)
		if ch {
			emit(ev)
		}
		return err
	}
	// Up, steady, a replay of an old frame, then silence.
	for i := int64(1); i <= 10; i++ {
		if err := recv(hb(5, uint64(i), i), i); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		d.Expire(i*ms, emit)
	}
	if err := recv(hb(5, 3, 3), 11); !errors.Is(err, ErrReplay) {
		t.Fatalf("old seq: %v", err)
	}
	if err := recv(hb(5, 10, 10), 11); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := recv(hb(4, 99, 11), 11); !errors.Is(err, ErrReplay) {
		t.Fatalf("older incarnation: %v", err)
	}
	if dl, ok := d.NextDeadline(); !ok || dl != 15*ms {
		t.Fatalf("deadline = %d, %v; want 15ms", dl, ok)
	}
	d.Expire(14*ms, emit)
	if len(events) != 1 || events[0].Type != LinkUp {
		t.Fatalf("before deadline: %+v", events)
	}
	d.Expire(16*ms, emit)
	if len(events) != 2 || events[1].Type != LinkDown || events[1].TimeNs != 16*ms || events[1].Gen != 2 {
		t.Fatalf("after deadline: %+v", events)
	}
	// A restart comes back up with a new incarnation and seq 1.
	if err := recv(hb(6, 1, 30), 30); err != nil {
		t.Fatal(err)
	}
	if events[2].Type != LinkUp || events[2].Incarnation != 6 {
		t.Fatalf("back up: %+v", events[2])
	}
	// A restart faster than the timeout shows as a restart.
	if err := recv(hb(7, 1, 31), 31); err != nil {
		t.Fatal(err)
	}
	if events[3].Type != LinkRestart || events[3].Incarnation != 7 || events[3].Gen != 4 {
		t.Fatalf("quick restart: %+v", events[3])
	}
}

// A node that died must be reported down on time even while an attacker
// without the key injects forged frames and replays recorded ones.
func TestForgedAndReplayedFramesNeverKeepDeadNodeAlive(t *testing.T) {
	d := newTestDetector()
	var recorded [][]byte
	var downAt int64 = -1
	emit := func(e Event) {
		if e.Type == LinkDown && e.NodeID == 2 {
			downAt = e.TimeNs
		}
	}
	for i := int64(1); i <= 20; i++ {
		b := hb(9, uint64(i), i)
		recorded = append(recorded, b)
		if _, _, err := d.Receive(b, 0, i*ms, realBase+i*ms); err != nil {
			t.Fatal(err)
		}
	}
	// Node 2 dies after its frame at 20 ms; from then on only the attacker talks.
	seq := uint64(1000)
	for now := int64(21); now <= 40; now++ {
		seq++
		inc := uint64(10) // a "new incarnation" without the key
		forged := frameBytes(Frame{NodeID: 2, Incarnation: inc, Seq: seq, SentNs: realBase + now*ms}, DeriveKey([]byte("guess")))
		for _, b := range append([][]byte{forged}, recorded...) {
			d.Receive(b, 0, now*ms, realBase+now*ms)
		}
		// Tampered: a recorded frame with a bumped sequence but the old MAC.
		tampered := append([]byte(nil), recorded[19]...)
		tampered[31]++
		d.Receive(tampered, 0, now*ms, realBase+now*ms)
		d.Expire(now*ms, emit)
	}
	if downAt != 25*ms {
		t.Fatalf("node 2 down at %d ms, want 25 ms (stats %+v)", downAt/ms, d.Stats())
	}
	if s := d.Stats(); s.Accepted != 20 || s.BadMAC != 40 || s.Replay != 20*20 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMembershipNeedsEveryLinkDown(t *testing.T) {
	m := NewMembership([]uint32{2, 3}, 2)
	ev := func(t EventType, node uint32, link uint8, gen uint32, ts int64) Event {
		return Event{Type: t, NodeID: node, Link: link, Gen: gen, Incarnation: 1, TimeNs: ts}
	}
	types := func(evs []Event) []EventType {
		var out []EventType
		for _, e := range evs {
			out = append(out, e.Type)
		}
		return out
	}
	steps := []struct {
		in   Event
		want []EventType
	}{
		{ev(LinkUp, 2, 0, 1, 10), []EventType{LinkUp, NodeUp}},
		{ev(LinkUp, 2, 1, 1, 11), []EventType{LinkUp}},
		{ev(LinkDown, 2, 0, 2, 20), []EventType{LinkDown}},
		{ev(LinkUp, 2, 0, 1, 21), nil}, // older than what was applied: ignored
		{ev(LinkDown, 2, 1, 2, 30), []EventType{LinkDown, NodeDown}},
		{ev(LinkDown, 3, 0, 1, 30), []EventType{LinkDown}}, // never up: no node event
		{ev(LinkUp, 2, 1, 3, 40), []EventType{LinkUp, NodeUp}},
		{Event{Type: LinkRestart, NodeID: 2, Link: 1, Gen: 4, Incarnation: 2, TimeNs: 50}, []EventType{LinkRestart, NodeRestart}},
		{Event{Type: LinkRestart, NodeID: 2, Link: 0, Gen: 5, Incarnation: 2, TimeNs: 51}, []EventType{LinkRestart}},
		{ev(LinkUp, 9, 0, 1, 60), nil}, // unknown node
	}
	for i, s := range steps {
		got := types(m.Apply(s.in))
		if len(got) != len(s.want) {
			t.Fatalf("step %d: got %v, want %v", i, got, s.want)
		}
		for j := range got {
			if got[j] != s.want[j] {
				t.Fatalf("step %d: got %v, want %v", i, got, s.want)
			}
		}
	}
	if up := m.Up(); len(up) != 1 || up[0] != 2 {
		t.Fatalf("up = %v", up)
	}
}

// LastHeard is the latest counted arrival from a node on any link: it
// moves with every accepted frame, not with rejected ones, and not only on
// state changes.
func TestDetectorLastHeard(t *testing.T) {
	d := newTestDetector()
	if at := d.LastHeard(2); at != 0 {
		t.Fatalf("heard at %d before any frame", at)
	}
	d.Receive(hb(1, 1, 0), 0, 10*ms, realBase)
	d.Receive(hb(1, 2, 0), 0, 11*ms, realBase) // no event: link already up
	if at := d.LastHeard(2); at != 11*ms {
		t.Fatalf("heard at %d ms, want 11", at/ms)
	}
	d.Receive(hb(1, 2, 0), 0, 12*ms, realBase)                                                                                             // replay
	d.Receive(frameBytes(Frame{NodeID: 2, Link: 0, Incarnation: 1, Seq: 3, SentNs: realBase}, DeriveKey([]byte("x"))), 0, 13*ms, realBase) // forged
	if at := d.LastHeard(2); at != 11*ms {
		t.Fatalf("rejected frames moved heard to %d ms", at/ms)
	}
	// Link 1 counts as well.
	d.Receive(frameBytes(Frame{NodeID: 2, Link: 1, Incarnation: 1, Seq: 1, SentNs: realBase}, testKey), 1, 14*ms, realBase)
	if at := d.LastHeard(2); at != 14*ms {
		t.Fatalf("heard at %d ms after a frame on link 1, want 14", at/ms)
	}
	if d.LastHeard(3) != 0 || d.LastHeard(HeardMaxID+1) != 0 {
		t.Fatal("heard a node that sent nothing")
	}
}
