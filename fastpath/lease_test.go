package fastpath

import (
	"container/heap"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func cfg3(self uint32) Config {
	return Config{Self: self, Votes: map[uint32]uint32{1: 1, 2: 1, 3: 1}, Lease: 5 * time.Millisecond, Delta: time.Millisecond}
}

func TestLeaseGrowsOnlyWhileItLasts(t *testing.T) {
	s, err := NewState(cfg3(1))
	if err != nil {
		t.Fatal(err)
	}
	all := SetOf(1, 2, 3)
	if end := s.Received(2, 10*ms, SetOf(2, 3)); end != 0 {
		t.Fatalf("a frame without us gave a lease until %d", end)
	}
	if end := s.Received(2, 11*ms, all); end != 16*ms {
		t.Fatalf("lease end %d, want 16 ms", end/ms)
	}
	s.Received(3, 12*ms, all)
	if end, ended := s.Lease(13 * ms); end != 17*ms || ended {
		t.Fatalf("lease %d ms ended %v, want 17 ms, running", end/ms, ended)
	}
	// An older frame from a peer changes nothing.
	s.Received(3, 11*ms, all)
	// Asking past the end decides nothing: a grant that arrived before
	// the end but was read later still extends the lease.
	if _, ended := s.Lease(18 * ms); !ended {
		t.Fatal("lease not over at 18 ms")
	}
	// Grants within the lease extend it.
	s.Received(2, 16*ms, all)
	if end, _ := s.Lease(16 * ms); end != 21*ms {
		t.Fatalf("extended lease end %d ms, want 21", end/ms)
	}
	// It ends at 21 ms; a grant arriving later does not bring it back.
	if _, ended := s.Judge(21 * ms); !ended {
		t.Fatal("lease not ended at its end")
	}
	s.Received(2, 22*ms, all)
	if end, ended := s.Lease(22 * ms); !ended || end != 21*ms {
		t.Fatalf("after a late grant: end %d ms ended %v", end/ms, ended)
	}
	s.Restart()
	if end, ended := s.Lease(23 * ms); end != 0 || ended {
		t.Fatalf("after Restart: %d %v", end, ended)
	}
	s.Received(3, 24*ms, all)
	if end, _ := s.Lease(24 * ms); end != 29*ms {
		t.Fatalf("new lease end %d ms, want 29", end/ms)
	}
	// A grant arriving exactly at the end is too late, also without
	// anyone asking for the lease in between.
	s.Received(2, 29*ms, all)
	if _, ended := s.Lease(29 * ms); !ended {
		t.Fatal("a grant at the very end extended the lease")
	}
}

func TestLeaseNeedsAQuorumOfGrants(t *testing.T) {
	votes := map[uint32]uint32{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
	s, _ := NewState(Config{Self: 1, Votes: votes, Lease: 5 * time.Millisecond, Delta: time.Millisecond})
	all := SetOf(1, 2, 3, 4, 5)
	if end := s.Received(2, 10*ms, all); end != 0 {
		t.Fatalf("one grant of the two needed gave a lease until %d", end)
	}
	if end := s.Received(3, 11*ms, all); end != 15*ms {
		t.Fatalf("lease end %d, want 15 ms (the older of the two grants + L)", end/ms)
	}
	// A lone grant-giver keeps nothing alive.
	s.Received(2, 14*ms, all)
	if end, _ := s.Lease(14 * ms); end != 16*ms {
		t.Fatalf("lease end %d ms, want 16", end/ms)
	}
	if _, ended := s.Judge(16 * ms); !ended {
		t.Fatal("lease survived with one grant-giver")
	}
}

func TestTakeAt(t *testing.T) {
	s, _ := NewState(cfg3(2)) // T = 2; P = 1; X = 3
	s.Sent(10*ms, SetOf(1, 2, 3))
	s.Received(3, 11*ms, SetOf(1, 2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("may take while 3 still hears 1")
	}
	s.Sent(12*ms, SetOf(2, 3)) // T no longer grants 1: s_T stays 10 ms
	s.Received(3, 13*ms, SetOf(2, 3))
	s.Received(3, 15*ms, SetOf(2, 3))
	at, ok := s.TakeAt(1, SetOf(3))
	if ok || at != 13*ms+ms+5*ms {
		t.Fatalf("take at %d ms ok %v; want 19 (first frame of 3 without 1, + δ + L), not yet confirmed", at/ms, ok)
	}
	// Confirmed by a frame of 3 sent after the take time (arrived at or
	// after take + δ), still without 1.
	s.Received(3, 19*ms, SetOf(2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("confirmed by a frame that may have been sent before the take time")
	}
	s.Received(3, 20*ms, SetOf(2, 3))
	if at, ok := s.TakeAt(1, SetOf(3)); !ok || at != 19*ms {
		t.Fatalf("take at %d ms ok %v after the confirmation", at/ms, ok)
	}
	// 3's view counts only while 3 is up here.
	if _, ok := s.TakeAt(1, 0); ok {
		t.Fatal("took with a view from a node not heard")
	}
	// 3 hears 1 again: no take.
	s.Received(3, 21*ms, SetOf(1, 2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("may take while 3 hears 1 again")
	}
	// Our own last grant to 1 bounds the take too.
	s.Sent(30*ms, SetOf(1, 2, 3))
	s.Received(3, 31*ms, SetOf(2, 3))
	s.Received(3, 45*ms, SetOf(2, 3))
	if at, ok := s.TakeAt(1, SetOf(3)); at != 31*ms+6*ms || !ok {
		t.Fatalf("take at %d ms, want 37", at/ms)
	}
	s.Sent(40*ms, SetOf(1, 2, 3))
	if at, ok := s.TakeAt(1, SetOf(3)); at != 40*ms+6*ms || ok {
		t.Fatalf("take at %d ms ok %v, want 46 (our own grant at 40), unconfirmed", at/ms, ok)
	}
	if _, ok := s.TakeAt(2, SetOf(3)); ok {
		t.Fatal("took over from itself")
	}
}

// The timing argument of the package documentation, simulated: nodes send
// view frames every I with scheduling jitter, frames take up to δ, a node
// hears a peer while a frame from it arrived within D. At a random moment
// the network breaks in a random, possibly asymmetric way and the holder
// may be paused. Every take-over time any node computes for the holder must
// come at or after the end of the holder's lease, as the holder's own state
// computes it from every frame it ever received. And when the holder is
// cut off from everyone, somebody takes over within a bound.
func TestLeaseNeverOverlapsTakeover(t *testing.T) {
	const (
		interval = 2 * ms
		detect   = 8 * ms
		horizon  = 300 * ms
	)
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	for seed := range rounds {
		rng := rand.New(rand.NewSource(int64(seed)))
		n := 3 + 2*rng.Intn(2) // 3 or 5 nodes
		simulate(t, rng, seed, n, interval, detect, horizon)
	}
}

type simEvent struct {
	at   int64
	kind int // 0: send round of node, 1: frame arrival
	node uint32
	from uint32
	view Set
	seq  int
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() (x any) { x, *q = (*q)[len(*q)-1], (*q)[:len(*q)-1]; return }

func simulate(t *testing.T, rng *rand.Rand, seed, n int, interval, detect, horizon int64) {
	t.Helper()
	votes := map[uint32]uint32{}
	for i := 1; i <= n; i++ {
		votes[uint32(i)] = 1
	}
	lease, delta := 5*ms, ms
	states := map[uint32]*State{}
	lastFrom := map[[2]uint32]int64{} // [at, from]: arrival of the latest frame
	for id := range votes {
		states[id], _ = NewState(Config{Self: id, Votes: votes, Lease: time.Duration(lease), Delta: time.Duration(delta)})
	}
	const holder = uint32(1)
	fault := 40*ms + rng.Int63n(40*ms)
	// After the fault: which directed links deliver, and whether the holder
	// is paused (until pauseEnd) or cut off from everyone.
	deliverAfter := map[[2]uint32]bool{}
	mode := rng.Intn(4) // 0 random links, 1 holder cut off, 2 holder paused, 3 holder loses its outgoing links only
	for a := range votes {
		for b := range votes {
			ok := true
			switch mode {
			case 0:
				ok = rng.Intn(3) > 0
			case 1:
				ok = a != holder && b != holder
			case 3:
				ok = a != holder
			}
			deliverAfter[[2]uint32{a, b}] = ok
		}
	}
	pauseEnd := fault + rng.Int63n(100*ms)
	paused := func(id uint32, at int64) bool { return mode == 2 && id == holder && at >= fault && at < pauseEnd }
	var backlog []simEvent // frames for the paused holder, processed at resume

	q := &simQueue{}
	seq := 0
	push := func(e simEvent) { seq++; e.seq = seq; heap.Push(q, e) }
	for id := range votes {
		push(simEvent{at: rng.Int63n(interval), kind: 0, node: id})
	}
	hears := func(b, a uint32, now int64) bool {
		last, ok := lastFrom[[2]uint32{b, a}]
		return ok && now-last < detect
	}
	firstTake := map[uint32]int64{} // per taker, for the holder
	for q.Len() > 0 {
		e := heap.Pop(q).(simEvent)
		if e.at > horizon {
			break
		}
		if mode == 2 && e.node == holder && e.at >= pauseEnd && len(backlog) > 0 {
			for _, b := range backlog {
				states[holder].Received(b.from, b.at, b.view)
			}
			backlog = nil
		}
		switch e.kind {
		case 0:
			if !paused(e.node, e.at) {
				view := SetOf(e.node)
				for id := range votes {
					if id != e.node && hears(e.node, id, e.at) {
						view = view.With(id)
					}
				}
				for id := range votes {
					if id == e.node {
						continue
					}
					if e.at < fault || deliverAfter[[2]uint32{e.node, id}] {
						push(simEvent{at: e.at + rng.Int63n(delta+1), kind: 1, node: id, from: e.node, view: view})
					}
				}
				states[e.node].Sent(e.at, view)
			}
			// the next round, with scheduling jitter (a paused node
			// resumes at its next tick)
			push(simEvent{at: e.at + interval + rng.Int63n(interval/2), kind: 0, node: e.node})
		case 1:
			lastFrom[[2]uint32{e.node, e.from}] = e.at // the kernel's stamp
			if paused(e.node, e.at) {
				backlog = append(backlog, e)
				continue
			}
			states[e.node].Received(e.from, e.at, e.view)
			// Before 30 ms the cluster is still forming (nobody
			// holds anything).
			if e.at < 30*ms || e.node == holder || hears(e.node, holder, e.at) {
				continue
			}
			var up Set
			for id := range votes {
				if hears(e.node, id, e.at) {
					up = up.With(id)
				}
			}
			if at, ok := states[e.node].TakeAt(holder, up); ok {
				if at > e.at {
					t.Fatalf("seed %d: TakeAt ok at %d ns for a take at %d ns", seed, e.at, at)
				}
				if _, seen := firstTake[e.node]; !seen {
					firstTake[e.node] = e.at
				}
			}
		}
	}
	for _, b := range backlog {
		states[holder].Received(b.from, b.at, b.view)
	}
	end, _ := states[holder].Judge(horizon)
	if end == 0 {
		t.Fatalf("seed %d: the holder never had a lease", seed)
	}
	for taker, at := range firstTake {
		if at < fault {
			t.Fatalf("seed %d: node %d took over at %d ms, before the fault at %d ms", seed, taker, at/ms, fault/ms)
		}
		if at < end {
			t.Fatalf("seed %d (n %d, mode %d): node %d takes over at %.3f ms, the holder's lease ends at %.3f ms", seed, n, mode, taker, float64(at)/1e6, float64(end)/1e6)
		}
	}
	if mode == 1 || mode == 2 && pauseEnd-fault > 30*ms || mode == 3 {
		// Somebody takes over within D + 2 rounds (with jitter) + δ + L,
		// plus a round of slack.
		bound := fault + detect + 6*interval + 2*delta + lease
		first := int64(-1)
		for _, at := range firstTake {
			if first < 0 || at < first {
				first = at
			}
		}
		if first < 0 || first > bound {
			t.Fatalf("seed %d (n %d, mode %d): first take-over at %s, want by %d ms", seed, n, mode, fmtMs(first), bound/ms)
		}
	}
}

func fmtMs(ns int64) string {
	if ns < 0 {
		return "never"
	}
	return fmt.Sprintf("%.3f ms", float64(ns)/1e6)
}
