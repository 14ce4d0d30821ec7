package fastpath

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// Config of the lease logic.
type Config struct {
	Self  uint32
	Votes map[uint32]uint32 // every configured node (Self included) and its votes
	Lease time.Duration     // L: what one grant is worth
	Delta time.Duration     // δ: bound on a frame's one-way delay
}

// Quorum is the votes needed: a strict majority of all.
func (c Config) Quorum() uint32 {
	var total uint32
	for _, v := range c.Votes {
		total += v
	}
	return total/2 + 1
}

// Check validates c.
func (c Config) Check() error {
	if _, ok := c.Votes[c.Self]; !ok {
		return fmt.Errorf("fastpath: node %d is not among the configured nodes", c.Self)
	}
	for id := range c.Votes {
		if id == 0 || id > MaxNodeID {
			return fmt.Errorf("fastpath: node id %d out of range 1..%d", id, MaxNodeID)
		}
	}
	if c.Lease <= 0 || c.Delta < 0 {
		return fmt.Errorf("fastpath: lease %v and delta %v must be positive", c.Lease, c.Delta)
	}
	return nil
}

// MaxNodeID is the largest node id a view frame can name.
const MaxNodeID = 64

// Set is a set of node ids 1..64 as a bitmap (bit id-1).
type Set uint64

// Has reports whether id is in s.
func (s Set) Has(id uint32) bool { return id >= 1 && id <= MaxNodeID && s&(1<<(id-1)) != 0 }

// With returns s with id added.
func (s Set) With(id uint32) Set {
	if id < 1 || id > MaxNodeID {
		return s
	}
	return s | 1<<(id-1)
}

// Len is the number of ids in s.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// SetOf makes a set of ids.
func SetOf(ids ...uint32) Set {
	var s Set
	for _, id := range ids {
		s = s.With(id)
	}
	return s
}

// GrantView is the view of a round sent at now (CLOCK_MONOTONIC ns) under a
// grant window of window ns: self, and each of peers whose latest valid
// heartbeat arrived within the window, now - lastHeard(id) < window
// (lastHeard gives 0 for a peer never heard). The view is what the round
// grants: see the package documentation for why any rule for it keeps the
// take-over guard safe, and why this one makes it quick.
func GrantView(self uint32, peers []uint32, now, window int64, lastHeard func(id uint32) int64) Set {
	v := SetOf(self)
	for _, id := range peers {
		if at := lastHeard(id); at != 0 && now-at < window {
			v = v.With(id)
		}
	}
	return v
}

// peer is what this node knows of one peer's views.
type peer struct {
	seen    bool
	lastAt  int64  // arrival of its latest frame
	inc     uint64 // its latest frame's incarnation
	seq     uint64 // and sequence
	gap     bool   // a frame of it was dropped here (out of order): its next frame follows a gap
	grantAt int64  // arrival of its latest frame granting us
	view    Set    // its latest view
	// notHearSince[p]: arrival of the first frame of its current run of
	// frames without p, received here without a gap (absent: its latest
	// frame hears p).
	notHearSince map[uint32]int64
	// The revival rule's run: naming is true while its latest frame
	// grants us and every frame of its current run of frames granting us
	// was received here, with contiguous sequence numbers of one
	// incarnation; anchored, when some frame of that run arrived while
	// this node's lease was valid (before its end as it stood then).
	naming, anchored bool
}

// State is one node's lease logic: pure, fed with the frames it receives
// (with their arrival times) and the frames it sends. Not safe for
// concurrent use.
//
// The lease is valid at t when it has an end (leaseEnd != 0), has not
// lapsed, and t < leaseEnd. It lapses when a grant arrives at or after its
// end, or Judge is called at or after it; a lapsed lease comes back only by
// revival (the rule of the package documentation, checked with every grant
// that arrives while it is lapsed) or, once the node released its VIPs, by
// Restart and a new lease built from scratch.
type State struct {
	cfg      Config
	peers    map[uint32]*peer
	sentHear map[uint32]int64 // last time this node sent a frame hearing p
	lastSent int64            // when this node's latest frame left (NoteRound)
	leaseEnd int64            // 0: no lease
	lapsed   bool
	// revivals counts the revivals since NewState; lapsedEnd is the end
	// of the lease that lapsed last, revivedAt the time of the last
	// revival (for logs: how long the lapse lasted).
	revivals             int
	lapsedEnd, revivedAt int64
}

// NewState starts without a lease.
func NewState(cfg Config) (*State, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return &State{cfg: cfg, peers: map[uint32]*peer{}, sentHear: map[uint32]int64{}}, nil
}

// Received records view frame f from a peer, which arrived at `at`
// (CLOCK_MONOTONIC ns). Frames from one peer must come in arrival order
// (one socket) and with growing (incarnation, sequence) (replayGuard); one
// that does not is ignored, and counts as lost for the runs of frames that
// the take-over guard and the revival rule follow. It returns the lease's
// end after it.
func (s *State) Received(at int64, f Frame) int64 {
	from, view := f.NodeID, f.View
	if from == s.cfg.Self {
		return s.leaseEnd
	}
	if _, ok := s.cfg.Votes[from]; !ok {
		return s.leaseEnd
	}
	p := s.peers[from]
	if p == nil {
		p = &peer{notHearSince: map[uint32]int64{}}
		s.peers[from] = p
	}
	if p.seen && (at < p.lastAt || f.Incarnation < p.inc || f.Incarnation == p.inc && f.Seq <= p.seq) {
		p.gap = true
		p.naming, p.anchored = false, false // the run cannot go on unbroken
		return s.leaseEnd
	}
	// Unbroken: the frame right after the previous one received, in the
	// same incarnation. Anything else may hide a frame that went to the
	// other nodes and not here.
	unbroken := p.seen && !p.gap && f.Incarnation == p.inc && f.Seq == p.seq+1
	valid := s.leaseEnd != 0 && !s.lapsed && at < s.leaseEnd // the lease as it stood before this frame
	p.seen, p.lastAt, p.inc, p.seq, p.gap, p.view = true, at, f.Incarnation, f.Seq, false, view
	if !unbroken {
		// The take-over guard's runs start again with this frame: a frame
		// lost on the way here may have heard p.
		clear(p.notHearSince)
	}
	for id := range s.cfg.Votes {
		if view.Has(id) {
			delete(p.notHearSince, id)
		} else if _, ok := p.notHearSince[id]; !ok {
			p.notHearSince[id] = at
		}
	}
	switch {
	case !view.Has(s.cfg.Self):
		p.naming, p.anchored = false, false
	case unbroken && p.naming:
		p.anchored = p.anchored || valid
	default:
		p.naming, p.anchored = true, valid
	}
	if view.Has(s.cfg.Self) {
		p.grantAt = at
		s.grant(at)
	}
	return s.leaseEnd
}

// grant extends the lease with a grant that arrived at `at`, or revives it.
func (s *State) grant(at int64) {
	if s.leaseEnd != 0 && !s.lapsed && at >= s.leaseEnd {
		// The lease ended before this grant arrived: it does not extend
		// it; only the revival rule can bring it back.
		s.lapsed, s.lapsedEnd = true, s.leaseEnd
	}
	if s.lapsed {
		s.revive(at)
		return
	}
	end := s.candidateEnd()
	if s.leaseEnd == 0 && end <= at {
		return // not enough grants yet
	}
	if end > s.leaseEnd {
		s.leaseEnd = end
	}
}

// revive brings the lapsed lease back at r, the arrival of a grant, when
// this node's votes and those of the peers whose latest grant arrived in
// (r-L, r] and whose run of frames naming this node is unbroken back to one
// that arrived while the lease was valid (naming and anchored) reach
// quorum. The lease then lasts until the earliest of the grants needed for
// quorum runs out, latest first. The package documentation proves that
// such a lease never overlaps a take-over.
func (s *State) revive(r int64) {
	if s.cfg.Quorum() <= s.cfg.Votes[s.cfg.Self] {
		return // alone with quorum: its lease never ends
	}
	end := s.quorumEnd(func(p *peer) bool {
		return p.naming && p.anchored && p.grantAt == p.lastAt && p.grantAt > r-int64(s.cfg.Lease) && p.grantAt <= r
	})
	if end > r {
		s.leaseEnd, s.lapsed = end, false
		s.revivals++
		s.revivedAt = r
	}
}

// Revivable reports whether the lease is valid or may still revive: this
// node's votes and those of the peers whose current run of frames is
// unbroken, grants this node throughout, and holds a frame that arrived
// while the lease was valid, reach quorum (without regard to how old their
// latest grants are: a stalled peer's next frame may come). While the lease
// is lapsed no run becomes anchored, so once this is false it stays false
// until Restart: the VIPs can go at once.
func (s *State) Revivable() bool {
	if !s.lapsed {
		return true
	}
	got := int64(s.cfg.Votes[s.cfg.Self])
	for id, p := range s.peers {
		if p.naming && p.anchored {
			got += int64(s.cfg.Votes[id])
		}
	}
	return got >= int64(s.cfg.Quorum())
}

// candidateEnd is the end of the lease the latest grants give: the votes of
// this node plus those of the peers with the latest grants reach quorum
// until the earliest of those grants' value runs out.
func (s *State) candidateEnd() int64 {
	if s.cfg.Quorum() <= s.cfg.Votes[s.cfg.Self] {
		return 1 << 62 // alone with quorum (one node): nothing to lose
	}
	return s.quorumEnd(func(p *peer) bool { return p.grantAt > 0 })
}

// quorumEnd is when the latest grants of the peers that count (ok) stop
// making a quorum with this node's votes: the value of the earliest grant
// needed, taking the latest first; 0 if they never do.
func (s *State) quorumEnd(ok func(p *peer) bool) int64 {
	need := int64(s.cfg.Quorum()) - int64(s.cfg.Votes[s.cfg.Self])
	type g struct {
		at    int64
		votes uint32
	}
	var gs []g
	for id, p := range s.peers {
		if ok(p) {
			gs = append(gs, g{p.grantAt, s.cfg.Votes[id]})
		}
	}
	slices.SortFunc(gs, func(a, b g) int { return cmp.Compare(b.at, a.at) }) // latest first
	var got int64
	for _, x := range gs {
		got += int64(x.votes)
		if got >= need {
			return x.at + int64(s.cfg.Lease)
		}
	}
	return 0
}

// Sent records a frame this node sent at `at` (after the send) with view.
func (s *State) Sent(at int64, view Set) {
	s.lastSent = max(s.lastSent, at)
	for id := range s.cfg.Votes {
		if view.Has(id) {
			s.sentHear[id] = at
		}
	}
}

// NoteSent records that this node's last frame hearing id left at `at`
// (the runner's sender keeps that without taking the state's lock).
func (s *State) NoteSent(id uint32, at int64) {
	if at > s.sentHear[id] {
		s.sentHear[id] = at
	}
}

// NoteRound records that this node's latest frame left at `at` (after the
// send, and after the sender recorded with NoteSent's values what it
// heard: TakeAt relies on that order).
func (s *State) NoteRound(at int64) {
	s.lastSent = max(s.lastSent, at)
}

// Lease returns the lease's end (0: none) and whether it has ended by now,
// without deciding anything: a grant still unread could extend it, and a
// lapsed lease may still be revived by the grants to come.
func (s *State) Lease(now int64) (end int64, ended bool) {
	return s.leaseEnd, s.lapsed || s.leaseEnd != 0 && now >= s.leaseEnd
}

// Judge decides whether the lease has ended at now: past its end it
// lapses, and no grant extends it any more; only the revival rule (with
// grants still to come) or Restart brings a lease back. Call it only right
// after receiving every frame that arrived before now: a grant still unread
// could have extended the lease.
func (s *State) Judge(now int64) (end int64, ended bool) {
	if s.leaseEnd != 0 && !s.lapsed && now >= s.leaseEnd {
		s.lapsed, s.lapsedEnd = true, s.leaseEnd
	}
	return s.leaseEnd, s.lapsed
}

// Restart forgets a lapsed lease once its VIPs are released: the node may
// build a new one from scratch (and be given VIPs by the DC again). The
// frames received under the old lease anchor no revival of the new one.
func (s *State) Restart() {
	s.leaseEnd, s.lapsed = 0, false
	for _, p := range s.peers {
		p.anchored = false
	}
}

// Revivals counts the lapsed leases revived since NewState, and tells how
// long the last lapse lasted (from the lease's end to its revival).
func (s *State) Revivals() (n int, lastLapse time.Duration) {
	return s.revivals, time.Duration(s.revivedAt - s.lapsedEnd)
}

// TakeAt reports whether this node may take over the resources of lost
// node p now, and from when that holds (CLOCK_MONOTONIC ns). It needs a
// set A of nodes holding a quorum of votes, this one included, whose
// current frames do not hear p; then take = max(s_T, a_X for X in A) + δ +
// L (see the package documentation). It is ok only once every X in A has
// also sent a frame after take, still not hearing p (one that arrived at or
// after take + δ): X could otherwise have heard p again and granted it a
// lease extension just before take, in a frame that is still on its way.
// This node confirms too: its latest frame (NoteRound, Sent) left at or
// after take, so it did not hear p (its last frame hearing p left by take
// - δ - L), and a run of frames naming p that p receives from this node
// cannot reach from before take past it unbroken (the revival rule). A
// peer's run counts only as far back as its frames arrived here without a
// gap in their sequence (Received): a frame lost on the way here may have
// granted p. up tells which peers this node hears now (only their views
// count).
func (s *State) TakeAt(p uint32, up Set) (at int64, ok bool) {
	if p == s.cfg.Self {
		return 0, false
	}
	type w struct {
		since, last int64
		votes       uint32
	}
	var ws []w
	for id, pr := range s.peers {
		if id == p || !up.Has(id) || !pr.seen {
			continue
		}
		since, notHearing := pr.notHearSince[p]
		if !notHearing {
			continue
		}
		ws = append(ws, w{since, pr.lastAt, s.cfg.Votes[id]})
	}
	slices.SortFunc(ws, func(a, b w) int { return cmp.Compare(a.since, b.since) }) // earliest first
	got := s.cfg.Votes[s.cfg.Self]
	at = s.sentHear[p]
	need := s.cfg.Quorum()
	var chosen []w
	for _, x := range ws {
		if got >= need {
			break
		}
		got += x.votes
		at = max(at, x.since)
		chosen = append(chosen, x)
	}
	if got < need {
		return 0, false
	}
	at += int64(s.cfg.Delta) + int64(s.cfg.Lease)
	if s.lastSent < at {
		return at, false
	}
	for _, x := range chosen {
		if x.last < at+int64(s.cfg.Delta) {
			return at, false
		}
	}
	return at, true
}

// Describe summarizes the state at now, for logs: the lease's end and each
// peer's latest frame and grant, relative to now.
func (s *State) Describe(now int64) string {
	var b []byte
	b = fmt.Appendf(b, "lease end %+.3fms, lapsed %v, revivals %d", float64(s.leaseEnd-now)/1e6, s.lapsed, s.revivals)
	ids := make([]uint32, 0, len(s.peers))
	for id := range s.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := s.peers[id]
		b = fmt.Appendf(b, "; node %d: last frame %+.3fms (seq %d), last grant %+.3fms, run naming us %v anchored %v",
			id, float64(p.lastAt-now)/1e6, p.seq, float64(p.grantAt-now)/1e6, p.naming, p.anchored)
	}
	return string(b)
}
