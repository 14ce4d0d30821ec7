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

// seqs numbers the frames rx feeds each state, per peer: one incarnation,
// contiguous sequence numbers, as a peer's sender makes them.
var seqs = map[*State]map[uint32]uint64{}

// rx feeds s the next frame of peer from, arrived at at.
func rx(s *State, from uint32, at int64, view Set) int64 {
	if seqs[s] == nil {
		seqs[s] = map[uint32]uint64{}
	}
	seqs[s][from]++
	return s.Received(at, Frame{NodeID: from, Incarnation: 1, Seq: seqs[s][from], View: view})
}

func TestLeaseGrowsOnlyWhileItLasts(t *testing.T) {
	s, err := NewState(cfg3(1))
	if err != nil {
		t.Fatal(err)
	}
	all := SetOf(1, 2, 3)
	if end := rx(s, 2, 10*ms, SetOf(2, 3)); end != 0 {
		t.Fatalf("a frame without us gave a lease until %d", end)
	}
	if end := rx(s, 2, 11*ms, all); end != 16*ms {
		t.Fatalf("lease end %d, want 16 ms", end/ms)
	}
	rx(s, 3, 12*ms, all)
	if end, ended := s.Lease(13 * ms); end != 17*ms || ended {
		t.Fatalf("lease %d ms ended %v, want 17 ms, running", end/ms, ended)
	}
	// An older frame from a peer changes nothing.
	rx(s, 3, 11*ms, all)
	// Asking past the end decides nothing: a grant that arrived before
	// the end but was read later still extends the lease.
	if _, ended := s.Lease(18 * ms); !ended {
		t.Fatal("lease not over at 18 ms")
	}
	// Grants within the lease extend it.
	rx(s, 2, 16*ms, all)
	if end, _ := s.Lease(16 * ms); end != 21*ms {
		t.Fatalf("extended lease end %d ms, want 21", end/ms)
	}
	// It ends at 21 ms; a grant arriving later does not extend it (and
	// does not revive it either: 2 skipped a frame, which may not have
	// named us).
	if _, ended := s.Judge(21 * ms); !ended {
		t.Fatal("lease not ended at its end")
	}
	seqs[s][2]++
	rx(s, 2, 22*ms, all)
	if end, ended := s.Lease(22 * ms); !ended || end != 21*ms {
		t.Fatalf("after a late grant: end %d ms ended %v", end/ms, ended)
	}
	s.Restart()
	if end, ended := s.Lease(23 * ms); end != 0 || ended {
		t.Fatalf("after Restart: %d %v", end, ended)
	}
	rx(s, 3, 24*ms, all)
	if end, _ := s.Lease(24 * ms); end != 29*ms {
		t.Fatalf("new lease end %d ms, want 29", end/ms)
	}
	// A grant arriving exactly at the end is too late, also without
	// anyone asking for the lease in between.
	rx(s, 2, 29*ms, all)
	if _, ended := s.Lease(29 * ms); !ended {
		t.Fatal("a grant at the very end extended the lease")
	}
}

func TestLeaseNeedsAQuorumOfGrants(t *testing.T) {
	votes := map[uint32]uint32{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
	s, _ := NewState(Config{Self: 1, Votes: votes, Lease: 5 * time.Millisecond, Delta: time.Millisecond})
	all := SetOf(1, 2, 3, 4, 5)
	if end := rx(s, 2, 10*ms, all); end != 0 {
		t.Fatalf("one grant of the two needed gave a lease until %d", end)
	}
	if end := rx(s, 3, 11*ms, all); end != 15*ms {
		t.Fatalf("lease end %d, want 15 ms (the older of the two grants + L)", end/ms)
	}
	// A lone grant-giver keeps nothing alive.
	rx(s, 2, 14*ms, all)
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
	rx(s, 3, 11*ms, SetOf(1, 2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("may take while 3 still hears 1")
	}
	s.Sent(12*ms, SetOf(2, 3)) // T no longer grants 1: s_T stays 10 ms
	rx(s, 3, 13*ms, SetOf(2, 3))
	rx(s, 3, 15*ms, SetOf(2, 3))
	at, ok := s.TakeAt(1, SetOf(3))
	if ok || at != 13*ms+ms+5*ms {
		t.Fatalf("take at %d ms ok %v; want 19 (first frame of 3 without 1, + δ + L), not yet confirmed", at/ms, ok)
	}
	// Confirmed by a frame of 3 sent after the take time (arrived at or
	// after take + δ), still without 1.
	rx(s, 3, 19*ms, SetOf(2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("confirmed by a frame that may have been sent before the take time")
	}
	rx(s, 3, 20*ms, SetOf(2, 3))
	// This node confirms too, with a frame sent at or after the take time.
	s.Sent(18*ms, SetOf(2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("took with no frame of its own sent since the take time")
	}
	s.NoteRound(19 * ms)
	if at, ok := s.TakeAt(1, SetOf(3)); !ok || at != 19*ms {
		t.Fatalf("take at %d ms ok %v after the confirmation", at/ms, ok)
	}
	// 3's view counts only while 3 is up here.
	if _, ok := s.TakeAt(1, 0); ok {
		t.Fatal("took with a view from a node not heard")
	}
	// 3 hears 1 again: no take.
	rx(s, 3, 21*ms, SetOf(1, 2, 3))
	if _, ok := s.TakeAt(1, SetOf(3)); ok {
		t.Fatal("may take while 3 hears 1 again")
	}
	// Our own last grant to 1 bounds the take too.
	s.Sent(30*ms, SetOf(1, 2, 3))
	rx(s, 3, 31*ms, SetOf(2, 3))
	rx(s, 3, 45*ms, SetOf(2, 3))
	s.Sent(37*ms, SetOf(2, 3))
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
// heartbeats and view frames every I, each with scheduling jitter and now
// and then a hiccup, frames take up to δ, and a node's membership hears a
// peer while a heartbeat from it arrived within D (its kernel's stamps, also
// while the node is paused). A round's view names the peers whose latest
// heartbeat arrived within the grant window G before the round (G varies:
// tiny, about I, 2I, D); a node whose membership loses a peer sends a round
// at once. At a random moment the network breaks in a random, possibly
// asymmetric way, or the holder is paused, or only its heartbeat thread
// stalls, or it has a hiccup shorter than D. Every take-over time any node
// computes for the holder must come at or after the end of the holder's
// lease, as the holder's own state computes it from every frame it ever
// received (safety, whatever G is). When the holder is cut off from
// everyone, somebody takes over within a bound; after a hiccup shorter than
// D, nobody does.
func TestLeaseNeverOverlapsTakeover(t *testing.T) {
	rounds := 4000
	if testing.Short() {
		rounds = 600
	}
	var revivals, revived, revivedAndTaken int
	for seed := range rounds {
		rng := rand.New(rand.NewSource(int64(seed)))
		p := simParams{
			n:        3 + 2*rng.Intn(2), // 3 or 5 nodes
			interval: 2 * ms,
			detect:   8 * ms,
			lease:    []int64{5 * ms, 8 * ms, 10 * ms}[rng.Intn(3)],
			delta:    ms,
			horizon:  300 * ms,
			hiccups:  rng.Intn(2) == 0,
			mode:     rng.Intn(6),
			rings:    1 + rng.Intn(2),
		}
		if rng.Intn(2) == 0 {
			p.loss = []float64{0.01, 0.05, 0.2}[rng.Intn(3)]
		}
		p.stalls = rng.Intn(3) > 0
		switch rng.Intn(6) {
		case 0:
			p.window = 1 + rng.Int63n(p.interval) // below I: grants come and go
		case 1:
			p.window = p.interval + rng.Int63n(p.interval)
		case 2, 3:
			p.window = 2 * p.interval
		case 4:
			p.window = 2*p.interval + rng.Int63n(p.detect-2*p.interval+1)
		default:
			p.window = p.detect // as before grant windows: the membership's
		}
		r := simulate(t, rng, seed, p)
		revivals += r.revivals
		if r.revivals > 0 {
			revived++
			if len(r.firstTake) > 0 {
				revivedAndTaken++
			}
		}
	}
	t.Logf("%d schedules: the holder's lease revived %d times in %d of them, %d of which also had a take-over", rounds, revivals, revived, revivedAndTaken)
	// The schedules must exercise the rule: a simulation in which no lease
	// ever revives proves nothing about revivals.
	if revived < rounds/20 || revivedAndTaken == 0 {
		t.Fatalf("revivals in %d schedules (%d with a take-over too): too few to test the rule", revived, revivedAndTaken)
	}
}

// With a grant window of 2 intervals instead of the detection time, a
// crashed holder's VIPs are taken over D - G sooner (less a round or so:
// membership sends a round at once when it loses a peer, the grant window
// waits for the next one), and never before its lease ended.
func TestGrantWindowShortensTakeover(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 100
	}
	var sum [2]int64
	var worst [2]int64
	p := simParams{n: 3, interval: 2 * ms, detect: 8 * ms, lease: 8 * ms, delta: ms, horizon: 200 * ms, mode: modeCutOff}
	for i, window := range []int64{2 * p.interval, p.detect} {
		p.window = window
		for seed := range seeds {
			r := simulate(t, rand.New(rand.NewSource(int64(seed))), seed, p)
			took := r.first() - r.fault
			sum[i] += took
			worst[i] = max(worst[i], took)
		}
	}
	mean := func(i int) float64 { return float64(sum[i]) / float64(seeds) / 1e6 }
	t.Logf("crash to first take-over, G = 2I: mean %.2f ms, worst %.2f ms; G = D: mean %.2f ms, worst %.2f ms",
		mean(0), float64(worst[0])/1e6, mean(1), float64(worst[1])/1e6)
	// D - G is 4 ms here; the loss's extra round gives G = D back at most
	// an interval plus its jitter.
	if gain := mean(1) - mean(0); gain < 2 {
		t.Fatalf("the grant window gained %.2f ms on average, want at least 2 (D - G - an interval)", gain)
	}
	if worst[0] >= worst[1] {
		t.Fatalf("worst take-over with G = 2I %.2f ms, not below G = D's %.2f ms", float64(worst[0])/1e6, float64(worst[1])/1e6)
	}
}

// Fault modes of the simulation.
const (
	modeRandomLinks = iota // each directed link fails with probability 1/3
	modeCutOff             // the holder's links all fail (a crash, for the others)
	modePaused             // the holder stops running (its kernel still stamps arrivals)
	modeMute               // the holder's outgoing frames are lost, incoming ones arrive
	modeHBStall            // only the holder's heartbeat thread stalls; its view frames go on
	modeHiccup             // the holder stops running for less than D
)

type simParams struct {
	n                                               int
	interval, detect, window, lease, delta, horizon int64
	hiccups                                         bool // rounds are late by up to an interval now and then
	mode                                            int
	// rings: each view frame goes out on this many links, each copy with
	// its own delay and loss (the receiver keeps the first of each
	// sequence number, as replayGuard does); loss: the chance that one
	// copy is lost; stalls: now and then some nodes' view senders stall
	// for up to 3 L (their rounds go out late, in order), which ends and
	// revives leases.
	rings  int
	loss   float64
	stalls bool
}

type simResult struct {
	fault     int64
	firstTake map[uint32]int64 // per taker, for the holder
	revivals  int              // of the holder's lease
}

// first is the earliest take-over (-1: none).
func (r simResult) first() int64 {
	first := int64(-1)
	for _, at := range r.firstTake {
		if first < 0 || at < first {
			first = at
		}
	}
	return first
}

type simEvent struct {
	at   int64
	kind int // a simKind
	node uint32
	from uint32
	view Set
	fseq uint64 // the view frame's sequence number
	seq  int
}

const (
	simViewRound  = iota // node sends a round of view frames (and schedules the next)
	simViewFrame         // a view frame from `from` arrives at node
	simHBRound           // node sends a round of heartbeats (and schedules the next)
	simHBFrame           // a heartbeat from `from` arrives at node
	simHBDeadline        // node's membership declares `from` down if nothing newer arrived
	simKickRound         // node sends an extra round of view frames (membership lost a peer)
)

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

func simulate(t *testing.T, rng *rand.Rand, seed int, p simParams) simResult {
	t.Helper()
	votes := map[uint32]uint32{}
	var ids []uint32 // in order: map order would make a seed's schedule vary
	for i := 1; i <= p.n; i++ {
		votes[uint32(i)] = 1
		ids = append(ids, uint32(i))
	}
	interval, delta, lease, window := p.interval, p.delta, p.lease, p.window
	jitter := interval / 2
	states := map[uint32]*State{}
	lastHB := map[[2]uint32]int64{} // [at, from]: kernel stamp of the latest heartbeat
	for _, id := range ids {
		states[id], _ = NewState(Config{Self: id, Votes: votes, Lease: time.Duration(lease), Delta: time.Duration(delta)})
	}
	const holder = uint32(1)
	mode := p.mode
	fault := 40*ms + rng.Int63n(40*ms)
	// After the fault: which directed links deliver.
	deliverAfter := map[[2]uint32]bool{}
	for _, a := range ids {
		for _, b := range ids {
			ok := true
			switch mode {
			case modeRandomLinks:
				ok = rng.Intn(3) > 0
			case modeCutOff:
				ok = a != holder && b != holder
			case modeMute:
				ok = a != holder
			}
			deliverAfter[[2]uint32{a, b}] = ok
		}
	}
	// Longest gap between two heartbeats a live node's peers receive,
	// without and with hiccups.
	hiccupMax := int64(0)
	if p.hiccups {
		hiccupMax = interval
	}
	gap := interval + jitter + hiccupMax + delta
	var stallEnd int64
	switch mode {
	case modePaused, modeHBStall:
		stallEnd = fault + rng.Int63n(100*ms)
	case modeHiccup:
		// Short enough that the holder's heartbeats still arrive less
		// than D apart: the last round before the fault may be a round
		// before it, the first after the hiccup a round after it, and
		// then δ on the way (the bound D - gap - δ missed the first
		// round, and a changed random stream found a take-over after a
		// hiccup of 2.9 ms, with heartbeats 8.04 ms apart).
		round := interval + jitter + hiccupMax
		stallEnd = fault
		if room := p.detect - 2*round - delta; room > 0 {
			stallEnd += rng.Int63n(room)
		}
	}
	paused := func(id uint32, at int64) bool {
		return (mode == modePaused || mode == modeHiccup) && id == holder && at >= fault && at < stallEnd
	}
	hbStalled := func(id uint32, at int64) bool {
		return paused(id, at) || mode == modeHBStall && id == holder && at >= fault && at < stallEnd
	}
	var backlog []simEvent // frames for the paused holder, processed at resume

	q := &simQueue{}
	seq := 0
	push := func(e simEvent) { seq++; e.seq = seq; heap.Push(q, e) }
	for _, id := range ids {
		push(simEvent{at: rng.Int63n(interval), kind: simViewRound, node: id})
		push(simEvent{at: rng.Int63n(interval), kind: simHBRound, node: id})
	}
	next := func(at int64) int64 {
		d := interval + rng.Int63n(jitter+1)
		if p.hiccups && rng.Intn(20) == 0 {
			d += rng.Int63n(hiccupMax + 1)
		}
		return at + d
	}
	// Membership (D) and the grant window (G), from b's kernel stamps.
	within := func(b, a uint32, now, d int64) bool {
		last, ok := lastHB[[2]uint32{b, a}]
		return ok && now-last < d
	}
	delivers := func(from, to uint32, at int64) bool { return at < fault || deliverAfter[[2]uint32{from, to}] }
	// Stall windows of view senders: [from, to) and who stalls.
	type stall struct {
		from, to int64
		nodes    Set
	}
	var stalls []stall
	if p.stalls {
		for range 4 {
			st := stall{from: 30*ms + rng.Int63n(p.horizon-30*ms)}
			st.to = st.from + lease/2 + rng.Int63n(3*lease)
			for _, id := range ids {
				if rng.Intn(2) == 0 {
					st.nodes = st.nodes.With(id)
				}
			}
			stalls = append(stalls, st)
		}
		if mode != modeHiccup && rng.Intn(2) == 0 {
			// Some nodes stall around the fault, the would-be takers
			// among them: the ones whose rounds go out only after a
			// take-over was decided.
			st := stall{from: fault - rng.Int63n(2*interval)}
			st.to = fault + rng.Int63n(p.detect+4*lease)
			for _, id := range ids {
				if id != holder && rng.Intn(2) == 0 {
					st.nodes = st.nodes.With(id)
				}
			}
			stalls = append(stalls, st)
		}
	}
	// Bursts of loss on single directed links (with p.loss).
	type outage struct {
		from, to int64
		a, b     uint32
	}
	var outages []outage
	if p.loss > 0 {
		for range 6 {
			o := outage{a: uint32(1 + rng.Intn(p.n)), b: uint32(1 + rng.Intn(p.n))}
			o.from = 30*ms + rng.Int63n(p.horizon-30*ms)
			if rng.Intn(2) == 0 {
				o.from = fault + rng.Int63n(p.detect+2*lease) // while a take-over may be on
			}
			o.to = o.from + interval + rng.Int63n(4*lease)
			outages = append(outages, o)
		}
	}
	lost := func(from, to uint32, at int64) bool {
		for _, o := range outages {
			if o.a == from && o.b == to && at >= o.from && at < o.to {
				return true
			}
		}
		return p.loss > 0 && rng.Float64() < p.loss
	}
	// stalledUntil: when node's view sender, stalled at at, runs again (0:
	// not stalled).
	stalledUntil := func(node uint32, at int64) int64 {
		for _, st := range stalls {
			if st.nodes.Has(node) && at >= st.from && at < st.to {
				return st.to
			}
		}
		return 0
	}
	frameSeq := map[uint32]uint64{}
	guards := map[uint32]replayGuard{}
	for _, id := range ids {
		guards[id] = replayGuard{}
	}
	sendView := func(node uint32, at int64) {
		var peers []uint32
		for _, id := range ids {
			if id != node {
				peers = append(peers, id)
			}
		}
		view := GrantView(node, peers, at, window, func(id uint32) int64 { return lastHB[[2]uint32{node, id}] })
		frameSeq[node]++
		for _, id := range peers {
			for range max(p.rings, 1) {
				if delivers(node, id, at) && !lost(node, id, at) {
					push(simEvent{at: at + rng.Int63n(delta+1), kind: simViewFrame, node: id, from: node, view: view, fseq: frameSeq[node]})
				}
			}
		}
		states[node].Sent(at, view)
	}
	res := simResult{fault: fault, firstTake: map[uint32]int64{}}
	// The holder's lease began with the grant that arrived at leaseStart
	// (-1: not yet). The simulation never restarts a lease: one that ends
	// stays ended.
	leaseStart := int64(-1)
	receive := func(e simEvent) {
		f := Frame{NodeID: e.from, Incarnation: 1, Seq: e.fseq, View: e.view}
		if !guards[e.node].fresh(f) {
			return // the other ring's copy, or one overtaken
		}
		end := states[e.node].Received(e.at, f)
		if e.node == holder && end != 0 && leaseStart < 0 {
			leaseStart = e.at
		}
	}
	for q.Len() > 0 {
		e := heap.Pop(q).(simEvent)
		if e.at > p.horizon {
			break
		}
		if e.node == holder && !paused(holder, e.at) && len(backlog) > 0 {
			for _, b := range backlog {
				receive(b)
			}
			backlog = nil
		}
		switch e.kind {
		case simViewRound, simKickRound:
			if until := stalledUntil(e.node, e.at); until > 0 {
				// Stalled: the round goes out when the sender runs again.
				push(simEvent{at: until, kind: e.kind, node: e.node})
				continue
			}
			if paused(e.node, e.at) {
				if e.kind == simViewRound {
					// resumes at its next tick
					push(simEvent{at: next(e.at), kind: simViewRound, node: e.node})
				}
				continue
			}
			sendView(e.node, e.at)
			if e.kind == simViewRound {
				push(simEvent{at: next(e.at), kind: simViewRound, node: e.node})
			}
		case simHBRound:
			if !hbStalled(e.node, e.at) {
				for _, id := range ids {
					if id != e.node && delivers(e.node, id, e.at) {
						push(simEvent{at: e.at + rng.Int63n(delta+1), kind: simHBFrame, node: id, from: e.node})
					}
				}
			}
			push(simEvent{at: next(e.at), kind: simHBRound, node: e.node})
		case simHBFrame:
			lastHB[[2]uint32{e.node, e.from}] = e.at // the kernel's stamp
			push(simEvent{at: e.at + p.detect, kind: simHBDeadline, node: e.node, from: e.from})
		case simHBDeadline:
			if lastHB[[2]uint32{e.node, e.from}]+p.detect == e.at && !paused(e.node, e.at) {
				push(simEvent{at: e.at, kind: simKickRound, node: e.node})
			}
		case simViewFrame:
			if paused(e.node, e.at) {
				backlog = append(backlog, e)
				continue
			}
			receive(e)
			// Before 30 ms the cluster is still forming (nobody holds
			// anything). A taker acts only once its membership declares
			// the holder down.
			if e.at < 30*ms || e.node == holder || within(e.node, holder, e.at, p.detect) {
				continue
			}
			var up Set
			for _, id := range ids {
				if within(e.node, id, e.at, p.detect) {
					up = up.With(id)
				}
			}
			if at, ok := states[e.node].TakeAt(holder, up); ok {
				if at > e.at {
					t.Fatalf("seed %d: TakeAt ok at %d ns for a take at %d ns", seed, e.at, at)
				}
				if _, seen := res.firstTake[e.node]; !seen {
					res.firstTake[e.node] = e.at
				}
			}
		}
	}
	for _, b := range backlog {
		receive(b)
	}
	end, _ := states[holder].Judge(p.horizon)
	res.revivals, _ = states[holder].Revivals()
	// Below the longest gap between heartbeats, the grant window may miss
	// every heartbeat of the holder: no lease and no bound to check, only
	// safety.
	steady := window >= gap
	if end == 0 && steady {
		t.Fatalf("seed %d (%+v): the holder never had a lease", seed, p)
	}
	for taker, at := range res.firstTake {
		if at < fault {
			t.Fatalf("seed %d (%+v): node %d took over at %d ms, before the fault at %d ms", seed, p, taker, at/ms, fault/ms)
		}
		// A holder whose first lease began after the take-over held
		// nothing then (a VIP starts only under a lease; with a tiny
		// grant window the first lease can come late).
		if at < end && leaseStart <= at {
			t.Fatalf("seed %d (%+v): node %d takes over at %.3f ms, the holder's lease ends at %.3f ms", seed, p, taker, float64(at)/1e6, float64(end)/1e6)
		}
	}
	if mode == modeHiccup && len(res.firstTake) > 0 {
		t.Fatalf("seed %d (%+v): a hiccup of %.3f ms, shorter than D, moved the VIP: %v", seed, p, float64(stallEnd-fault)/1e6, res.firstTake)
	}
	// Somebody takes over within: the holder's last heartbeat arrives,
	// G later and a round after that every peer has sent a frame not
	// hearing it (or D later for membership, with its round at once), +
	// δ + L, and a round for the confirmations.
	round := interval + jitter + hiccupMax
	bound := fault + delta + max(p.detect, window+round) + 2*delta + lease + round + delta
	if steady && p.loss == 0 && !p.stalls && (mode == modeCutOff || mode == modeMute || (mode == modePaused || mode == modeHBStall) && stallEnd > bound) {
		if first := res.first(); first < 0 || first > bound {
			t.Fatalf("seed %d (%+v): first take-over at %s, want by %.3f ms", seed, p, fmtMs(first), float64(bound)/1e6)
		}
	}
	return res
}

func fmtMs(ns int64) string {
	if ns < 0 {
		return "never"
	}
	return fmt.Sprintf("%.3f ms", float64(ns)/1e6)
}

func TestGrantView(t *testing.T) {
	heard := map[uint32]int64{2: 10 * ms, 3: 7 * ms, 4: 0, 5: 12 * ms}
	last := func(id uint32) int64 { return heard[id] }
	// At 12 ms with a 3 ms window: 2 (2 ms ago) and 5 (just now) are in;
	// 3 (5 ms ago) and 4 (never) are not.
	if v := GrantView(1, []uint32{2, 3, 4, 5}, 12*ms, 3*ms, last); v != SetOf(1, 2, 5) {
		t.Fatalf("view %b, want nodes 1, 2, 5", v)
	}
	// Exactly the window ago is out.
	if v := GrantView(1, []uint32{2}, 13*ms, 3*ms, last); v != SetOf(1) {
		t.Fatalf("view %b: a peer heard exactly a window ago is in", v)
	}
	// A stamp a little ahead of the round's clock counts as heard.
	if v := GrantView(1, []uint32{5}, 11*ms, 3*ms, last); v != SetOf(1, 5) {
		t.Fatalf("view %b: a stamp ahead of the clock is out", v)
	}
}

// frame is peer from's frame number seq of incarnation inc.
func frame(from uint32, inc, seq uint64, view Set) Frame {
	return Frame{NodeID: from, Incarnation: inc, Seq: seq, View: view}
}

// lapsed3 gives node 1 of three a lease from 2's frames 1 and 2 (at 10 and
// 12 ms: valid until 17 ms) and judges it lapsed at 18 ms.
func lapsed3(t *testing.T) *State {
	t.Helper()
	s, _ := NewState(cfg3(1))
	all := SetOf(1, 2, 3)
	s.Received(10*ms, frame(2, 7, 1, all))
	s.Received(12*ms, frame(2, 7, 2, all))
	if end, ended := s.Judge(18 * ms); !ended || end != 17*ms {
		t.Fatalf("lease end %d ms ended %v, want 17 ms, ended", end/ms, ended)
	}
	return s
}

// A peer that stalls for longer than L and resumes with the next frame of
// its run, still naming us, revives the lease: its run is unbroken back to
// frames that arrived while the lease was valid.
func TestLeaseRevives(t *testing.T) {
	s := lapsed3(t)
	all := SetOf(1, 2, 3)
	if end := s.Received(20*ms, frame(2, 7, 3, all)); end != 25*ms {
		t.Fatalf("revived lease end %d ms, want 25", end/ms)
	}
	if _, ended := s.Judge(21 * ms); ended {
		t.Fatal("revived lease ended at once")
	}
	if !s.Revivable() {
		t.Fatal("not revivable while valid")
	}
	if n, lapse := s.Revivals(); n != 1 || lapse != 3*time.Millisecond {
		t.Fatalf("revivals %d, last lapse %v; want 1 and 3ms (end 17 ms, revived at 20)", n, lapse)
	}
	// From then on it is a lease like any other.
	s.Received(23*ms, frame(3, 1, 1, all))
	if end, _ := s.Lease(23 * ms); end != 28*ms {
		t.Fatalf("extended revived lease end %d ms, want 28", end/ms)
	}
}

func TestLeaseDoesNotRevive(t *testing.T) {
	all := SetOf(1, 2, 3)
	for name, frames := range map[string][]Frame{
		"a gap in the sequence":            {frame(2, 7, 4, all)},
		"a frame not naming us":            {frame(2, 7, 3, SetOf(2, 3)), frame(2, 7, 4, all)},
		"a new incarnation":                {frame(2, 8, 3, all)},
		"a new incarnation from seq 1":     {frame(2, 8, 1, all)},
		"a replayed frame":                 {frame(2, 7, 2, all)},
		"another peer's run, not anchored": {frame(3, 1, 1, all), frame(3, 1, 2, all)},
	} {
		s := lapsed3(t)
		if !s.Revivable() {
			t.Fatalf("%s: not revivable before the frames", name)
		}
		for i, f := range frames {
			s.Received(int64(20+i)*ms, f)
		}
		// No revival can come any more (the last case only lacks the
		// grants: 2's run is still whole).
		if s.Revivable() != (name == "another peer's run, not anchored") {
			t.Errorf("%s: revivable %v", name, s.Revivable())
		}
		if end, ended := s.Lease(22 * ms); !ended || end != 17*ms {
			t.Errorf("%s: lease end %d ms ended %v: revived", name, end/ms, ended)
		}
	}
	// A frame that arrives exactly at the lease's end anchors nothing.
	s, _ := NewState(cfg3(1))
	s.Received(10*ms, frame(2, 7, 1, all))
	s.Received(15*ms, frame(2, 7, 2, all)) // at the end: lapses
	s.Received(16*ms, frame(2, 7, 3, all))
	if _, ended := s.Lease(16 * ms); !ended {
		t.Error("revived from a run whose only frame inside the lease was the one that built it")
	}
	// One that arrived out of order (older stamp) is lost to the run.
	s = lapsed3(t)
	s.Received(11*ms, frame(2, 7, 3, all))
	s.Received(20*ms, frame(2, 7, 4, all))
	if _, ended := s.Lease(20 * ms); !ended {
		t.Error("revived across a frame dropped as out of order")
	}
	// Frames anchored under a lease that was restarted anchor nothing.
	s = lapsed3(t)
	s.Restart()
	s.Received(20*ms, frame(3, 1, 1, all)) // a new lease, from scratch, from 3 alone
	s.Received(21*ms, frame(3, 1, 2, all))
	if _, ended := s.Judge(26 * ms); !ended {
		t.Fatal("new lease did not end")
	}
	s.Received(27*ms, frame(2, 7, 3, all))
	if _, ended := s.Lease(27 * ms); !ended {
		t.Error("revived from a run anchored only before Restart")
	}
}

// A revival needs quorum: with five nodes, one anchored peer of the two
// needed is not enough, and a second one whose run is not anchored does not
// help; a second anchored one does.
func TestLeaseRevivalNeedsQuorum(t *testing.T) {
	votes := map[uint32]uint32{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
	all := SetOf(1, 2, 3, 4, 5)
	lapsed := func() *State {
		s, _ := NewState(Config{Self: 1, Votes: votes, Lease: 5 * time.Millisecond, Delta: time.Millisecond})
		s.Received(10*ms, frame(2, 1, 1, all))
		s.Received(11*ms, frame(3, 1, 1, all)) // lease until 15 ms (built by this frame: no anchor)
		s.Received(12*ms, frame(2, 1, 2, all)) // anchors
		s.Received(13*ms, frame(3, 1, 2, all)) // anchors; until 17 ms
		s.Received(14*ms, frame(4, 1, 1, SetOf(2, 3, 4, 5)))
		if _, ended := s.Judge(18 * ms); !ended {
			t.Fatal("lease did not end")
		}
		return s
	}
	s := lapsed()
	s.Received(19*ms, frame(2, 1, 3, all))
	s.Received(20*ms, frame(4, 1, 2, all)) // its run begins after the end
	if _, ended := s.Lease(20 * ms); !ended {
		t.Fatal("revived with one anchored peer of the two needed")
	}
	if end := s.Received(21*ms, frame(3, 1, 3, all)); end != 24*ms {
		t.Fatalf("revived lease end %d ms, want 24 (2's grant at 19 ms + L)", end/ms)
	}
	// Grants older than L do not count.
	s = lapsed()
	s.Received(19*ms, frame(2, 1, 3, all))
	if end := s.Received(24*ms, frame(3, 1, 3, all)); end != 17*ms {
		t.Fatalf("revived with a grant older than L: end %d ms", end/ms)
	}
}

// A gap in a peer's frames restarts its run of frames not hearing the lost
// node: the frame lost on the way here may have heard it.
func TestTakeAtRestartsRunsAfterAGap(t *testing.T) {
	s, _ := NewState(cfg3(2)) // T = 2; P = 1; X = 3
	s.Sent(5*ms, SetOf(1, 2, 3))
	s.Received(10*ms, frame(3, 1, 1, SetOf(2, 3)))
	s.Received(30*ms, frame(3, 1, 3, SetOf(2, 3))) // frame 2 never came
	s.NoteRound(40 * ms)
	if at, ok := s.TakeAt(1, SetOf(3)); ok || at != 36*ms {
		t.Fatalf("take at %d ms ok %v, want 36 (from the frame after the gap), unconfirmed", at/ms, ok)
	}
	s.Received(40*ms, frame(3, 1, 4, SetOf(2, 3)))
	if at, ok := s.TakeAt(1, SetOf(3)); !ok || at != 36*ms {
		t.Fatalf("take at %d ms ok %v, want 36, confirmed", at/ms, ok)
	}
}
