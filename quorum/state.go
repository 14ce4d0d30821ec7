package quorum

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is one node's quorum state machine. It is not safe for concurrent
// use; it does no I/O and reads no clock.
type State struct {
	k   *compiled
	idx map[uint32]int // node id -> index into k.ids

	// counted[i]: node i's votes are expected (all nodes, unless
	// last_man_standing wrote some off).
	counted []bool
	present []bool // in the current membership view
	unknown []uint32

	started  bool      // Update has been called
	now      time.Time // latest time seen
	quorate  bool
	waiting  bool // wait_for_all has not been satisfied
	lmsArmed bool
	lmsAt    time.Time // when the last_man_standing window ends
}

// Status is the quorum state as of the last call.
type Status struct {
	Quorate bool `json:"quorate"`
	// ExpectedVotes is the effective expected votes (votequorum's
	// expected_votes, after any last_man_standing recalculation).
	ExpectedVotes uint32 `json:"expected_votes"`
	// TotalVotes is the votes present and counted toward Quorum.
	TotalVotes uint32 `json:"total_votes"`
	Quorum     uint32 `json:"quorum"`
	// Members are the configured nodes in the view, sorted.
	Members []uint32 `json:"members"`
	// Uncounted are members whose votes do not count: last_man_standing
	// wrote them off, and they count again once this partition is quorate.
	Uncounted []uint32 `json:"uncounted,omitempty"`
	// Unknown are ids in the view that are not configured; they are ignored.
	Unknown []uint32 `json:"unknown,omitempty"`
	// WaitingForAll: wait_for_all holds quorum back until every configured
	// node has been seen at the same time.
	WaitingForAll bool `json:"waiting_for_all"`
	// TieBreaker is the auto_tie_breaker node that settles an even split
	// (0 when auto_tie_breaker is off, or no listed node is counted).
	TieBreaker uint32 `json:"tie_breaker,omitempty"`
	// LastManStandingAt is when last_man_standing will lower the expected
	// votes to the votes present, if the membership stays as it is and the
	// partition quorate; zero when no window is running.
	LastManStandingAt time.Time `json:"last_man_standing_at,omitzero"`
	// Flags are the options in force: two_node, wait_for_all,
	// last_man_standing, auto_tie_breaker.
	Flags []string `json:"flags"`
	// Reason explains the decision, e.g. "2 of 3 votes present, quorum is
	// 2: quorate".
	Reason string `json:"reason"`
}

// New validates c and returns the state of a node that has just started:
// no membership seen yet, not quorate.
func New(c Config) (*State, error) {
	k, err := c.compile()
	if err != nil {
		return nil, err
	}
	s := &State{k: k, idx: make(map[uint32]int, len(k.ids)), counted: make([]bool, len(k.ids)), present: make([]bool, len(k.ids))}
	for i, id := range k.ids {
		s.idx[id] = i
		s.counted[i] = true
	}
	s.waiting = k.wfa
	return s, nil
}

// Update takes the membership view at time now: the ids of the nodes this
// node can see, itself included (order and duplicates do not matter; ids
// that are not configured are ignored). A last_man_standing window that
// ended before now is applied to the previous view first.
func (s *State) Update(members []uint32, now time.Time) Status {
	s.advance(now)
	present := make([]bool, len(s.k.ids))
	var unknown []uint32
	for _, id := range members {
		if i, ok := s.idx[id]; ok {
			present[i] = true
		} else if !slices.Contains(unknown, id) {
			unknown = append(unknown, id)
		}
	}
	slices.Sort(unknown)
	changed := !s.started || !slices.Equal(present, s.present)
	s.started = true
	s.present, s.unknown = present, unknown
	s.evaluate()
	s.rearm(changed)
	return s.Status()
}

// Tick advances time to now without a membership change: it ends a
// last_man_standing window that is due.
func (s *State) Tick(now time.Time) Status {
	s.advance(now)
	s.rearm(false)
	return s.Status()
}

// NextDeadline is when Tick next has something to do (the end of the
// last_man_standing window), if anything.
func (s *State) NextDeadline() (time.Time, bool) {
	return s.lmsAt, s.lmsArmed
}

// CancelWaitForAll is votequorum's cancel_wait_for_all, for an operator who
// knows the missing nodes are down: it stops waiting for all nodes, and the
// partition is quorate if its votes reach quorum. If they do not, the wait
// resumes, as in votequorum.
func (s *State) CancelWaitForAll(now time.Time) Status {
	s.advance(now)
	s.waiting = false
	s.evaluate()
	s.rearm(false)
	return s.Status()
}

// advance moves the clock to now and applies a last_man_standing window
// that has ended: the expected votes become the votes present.
func (s *State) advance(now time.Time) {
	if now.After(s.now) {
		s.now = now
	}
	if !s.lmsArmed || s.now.Before(s.lmsAt) {
		return
	}
	s.lmsArmed = false
	if s.quorate {
		copy(s.counted, s.present)
		s.evaluate()
	}
}

// votes returns the expected votes and the counted votes present.
func (s *State) votes() (expected, total uint32) {
	for i, v := range s.k.votes {
		if s.counted[i] {
			expected += v
			if s.present[i] {
				total += v
			}
		}
	}
	return expected + s.k.extra, total
}

func (s *State) quorumOf(expected uint32) uint32 {
	if s.k.two {
		return 1
	}
	return expected/2 + 1
}

// tieBreaker returns the auto_tie_breaker node among the counted nodes.
func (s *State) tieBreaker() uint32 {
	if !s.k.atb {
		return 0
	}
	switch s.k.tb.mode {
	case tieLowest:
		for i, id := range s.k.ids {
			if s.counted[i] {
				return id
			}
		}
	case tieHighest:
		for i := len(s.k.ids) - 1; i >= 0; i-- {
			if s.counted[i] {
				return s.k.ids[i]
			}
		}
	case tieList:
		for _, id := range s.k.tb.list {
			if s.counted[s.idx[id]] {
				return id
			}
		}
	}
	return 0
}

func (s *State) isPresent(id uint32) bool {
	i, ok := s.idx[id]
	return ok && s.present[i]
}

// evaluate recomputes quorate from the view (votequorum's are_we_quorate).
func (s *State) evaluate() {
	if s.waiting && !slices.Contains(s.present, false) {
		s.waiting = false
	}
	s.quorate = false
	if s.started && !s.waiting {
		expected, total := s.votes()
		switch {
		case total >= s.quorumOf(expected):
			s.quorate = true
		case s.k.atb && 2*total == expected:
			s.quorate = s.isPresent(s.tieBreaker())
		}
	}
	if s.quorate {
		// Nodes that last_man_standing wrote off count again once they
		// are seen by a quorate partition.
		for i, p := range s.present {
			if p {
				s.counted[i] = true
			}
		}
	} else if s.k.wfa {
		s.waiting = true
	}
}

// rearm starts, restarts or stops the last_man_standing window. It runs
// while the partition is quorate with an expected node missing, and starts
// again at every membership change.
func (s *State) rearm(changed bool) {
	if !s.k.lms {
		return
	}
	expected, total := s.votes()
	if !s.quorate || total >= expected {
		s.lmsArmed = false
		return
	}
	if changed || !s.lmsArmed {
		s.lmsArmed = true
		s.lmsAt = s.now.Add(s.k.window)
	}
}

// Status returns the current status without changing anything.
func (s *State) Status() Status {
	expected, total := s.votes()
	st := Status{
		Quorate:       s.quorate,
		ExpectedVotes: expected,
		TotalVotes:    total,
		Quorum:        s.quorumOf(expected),
		Members:       []uint32{},
		Unknown:       slices.Clone(s.unknown),
		WaitingForAll: s.waiting,
		TieBreaker:    s.tieBreaker(),
		Flags:         slices.Clone(s.k.flags),
	}
	if st.Flags == nil {
		st.Flags = []string{}
	}
	var missing []uint32
	for i, id := range s.k.ids {
		switch {
		case s.present[i]:
			st.Members = append(st.Members, id)
			if !s.counted[i] {
				st.Uncounted = append(st.Uncounted, id)
			}
		default:
			missing = append(missing, id)
		}
	}
	if s.lmsArmed {
		st.LastManStandingAt = s.lmsAt
	}
	st.Reason = s.reason(st, missing)
	return st
}

func (s *State) reason(st Status, missing []uint32) string {
	if !s.started {
		return "no membership seen yet"
	}
	var b strings.Builder
	if st.WaitingForAll {
		fmt.Fprintf(&b, "waiting for all %d configured nodes to be seen together (wait_for_all): missing %s", len(s.k.ids), plural("node", missing))
	} else {
		fmt.Fprintf(&b, "%d of %d votes present, quorum is %d", st.TotalVotes, st.ExpectedVotes, st.Quorum)
		if s.k.two {
			b.WriteString(" (two_node)")
		}
		tie := s.k.atb && 2*st.TotalVotes == st.ExpectedVotes
		switch {
		case st.Quorate && st.TotalVotes >= st.Quorum:
			b.WriteString(": quorate")
		case st.Quorate:
			fmt.Fprintf(&b, ": quorate, this half of an even split holds tie-breaker node %d (auto_tie_breaker)", st.TieBreaker)
		case tie && st.TieBreaker == 0:
			b.WriteString(": not quorate, an even split and no listed tie-breaker node is counted")
		case tie:
			fmt.Fprintf(&b, ": not quorate, an even split and tie-breaker node %d is not in this half", st.TieBreaker)
		default:
			b.WriteString(": not quorate")
		}
	}
	if len(st.Uncounted) > 0 {
		fmt.Fprintf(&b, "; %s present but not counted (written off by last_man_standing) until the partition is quorate without them", plural("node", st.Uncounted))
	}
	if s.lmsArmed {
		fmt.Fprintf(&b, "; last_man_standing lowers expected votes to %d in %v if the membership holds", st.TotalVotes, s.lmsAt.Sub(s.now))
	}
	if len(st.Unknown) > 0 {
		fmt.Fprintf(&b, "; ignoring unconfigured %s", plural("node", st.Unknown))
	}
	return b.String()
}

func plural(word string, ids []uint32) string {
	if len(ids) == 1 {
		return word + " " + idList(ids)
	}
	return word + "s " + idList(ids)
}
