package quorum

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// fuzzInput hands out fuzz input; past the end it returns zeros.
type fuzzInput struct {
	b []byte
	i int
}

func (r *fuzzInput) next() byte {
	if r.i >= len(r.b) {
		r.i++
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *fuzzInput) more() bool { return r.i < len(r.b) }

// fuzzConfig builds a configuration from the input. Most are valid; some
// are not, on purpose, to exercise Validate.
func fuzzConfig(r *fuzzInput) Config {
	n := 1 + int(r.next()%7)
	opts := r.next()
	two := opts&1 != 0
	lms := opts&2 != 0
	var c Config
	if two {
		n = 2
	}
	id := uint32(1 + r.next()%2)
	for range n {
		votes := uint32(1)
		if v := r.next(); !two && !lms {
			votes = 1 + uint32(v%3)
		} else if v == 255 {
			votes = 2 // invalid with two_node or last_man_standing
		}
		c.Nodes = append(c.Nodes, Node{ID: id, Votes: votes})
		id += 1 + uint32(r.next()%3)
	}
	c.TwoNode = two
	c.LastManStanding = lms
	c.LastManStandingWindow = 8 * time.Second
	switch (opts >> 2) & 3 {
	case 1:
		c.WaitForAll = ptr(true)
	case 2:
		c.WaitForAll = ptr(false)
	case 0, 3:
		if lms {
			c.WaitForAll = ptr(true)
		}
	}
	total := uint32(c.TotalVotes())
	switch (opts >> 4) & 3 {
	case 2:
		c.ExpectedVotes = total
	case 3:
		c.ExpectedVotes = total + uint32(r.next()%3)
	}
	if opts&64 != 0 {
		c.AutoTieBreaker = true
		switch m := r.next(); m % 4 {
		case 1:
			c.AutoTieBreakerNode = "lowest"
		case 2:
			c.AutoTieBreakerNode = "highest"
		case 3:
			var list []uint32
			for range 1 + int(r.next()%3) {
				id := c.Nodes[int(r.next())%n].ID
				if !slices.Contains(list, id) {
					list = append(list, id)
				}
			}
			c.AutoTieBreakerNode = idList(list)
		}
	}
	return c
}

// sim runs one State per configured node. At every moment the live nodes
// are split into groups, each node's view is its group, and every node of a
// group sees the same changes at the same time (as with an agreed
// membership); dead nodes run nothing and come back as fresh States.
type sim struct {
	t      *testing.T
	cfg    Config
	ids    []uint32
	votes  map[uint32]uint32
	states []*State // nil: dead
	group  []int
	sawAll []bool // since it (re)started, the node has seen every node at once
	status []Status
	now    time.Time
	log    []string
}

func newSim(t *testing.T, cfg Config) *sim {
	s := &sim{t: t, cfg: cfg, votes: map[uint32]uint32{}, now: t0}
	for _, n := range cfg.Nodes {
		s.ids = append(s.ids, n.ID)
		s.votes[n.ID] = n.Votes
	}
	slices.Sort(s.ids)
	s.states = make([]*State, len(s.ids))
	s.group = make([]int, len(s.ids))
	s.sawAll = make([]bool, len(s.ids))
	s.status = make([]Status, len(s.ids))
	return s
}

func (s *sim) members(g int) []uint32 {
	var m []uint32
	for i, id := range s.ids {
		if s.states[i] != nil && s.group[i] == g {
			m = append(m, id)
		}
	}
	return m
}

func (s *sim) start(i int) {
	st, err := New(s.cfg)
	if err != nil {
		s.t.Fatalf("New failed on a valid config: %v", err)
	}
	s.states[i], s.sawAll[i] = st, false
}

// updateAll gives every live node its group's view at the current time.
func (s *sim) updateAll() {
	for i, st := range s.states {
		if st != nil {
			s.update(i)
		}
	}
}

func (s *sim) update(i int) {
	m := s.members(s.group[i])
	if len(m) == len(s.ids) {
		s.sawAll[i] = true
	}
	// Views come in any order, with duplicates.
	view := slices.Clone(m)
	slices.Reverse(view)
	if len(view) > 0 {
		view = append(view, view[0])
	}
	s.status[i] = s.states[i].Update(view, s.now)
}

func (s *sim) step(r *fuzzInput) {
	n := len(s.ids)
	window := s.cfg.Window()
	switch op := r.next() % 6; op {
	case 0, 1: // a new partitioning of the whole cluster
		for i := range n {
			g := int(r.next() % 4)
			if g == 3 {
				s.states[i] = nil
				continue
			}
			s.group[i] = g
			if s.states[i] == nil {
				s.start(i)
			}
		}
		s.log = append(s.log, fmt.Sprintf("%v partition %v", s.now.Sub(t0), s.groups()))
		s.updateAll()
	case 2: // time passes
		s.now = s.now.Add(time.Duration(r.next()%16) * window / 8)
		s.log = append(s.log, fmt.Sprintf("%v tick", s.now.Sub(t0)))
		for i, st := range s.states {
			if st != nil {
				s.status[i] = st.Tick(s.now)
			}
		}
	case 3: // a node restarts faster than the others notice
		i := int(r.next()) % n
		if s.states[i] != nil {
			s.start(i)
			s.log = append(s.log, fmt.Sprintf("%v restart %d", s.now.Sub(t0), s.ids[i]))
			s.update(i)
		}
	case 4: // one node moves to another group, dies or comes back
		i, g := int(r.next())%n, int(r.next()%4)
		if g == 3 {
			s.states[i] = nil
		} else {
			if s.states[i] == nil {
				s.start(i)
			}
			s.group[i] = g
		}
		s.log = append(s.log, fmt.Sprintf("%v move %d to %d: %v", s.now.Sub(t0), s.ids[i], g, s.groups()))
		s.updateAll()
	case 5: // time passes and the views are reported again, unchanged
		s.now = s.now.Add(time.Duration(r.next()%4) * window / 8)
		s.log = append(s.log, fmt.Sprintf("%v same views", s.now.Sub(t0)))
		s.updateAll()
	}
}

func (s *sim) groups() [][]uint32 {
	var gs [][]uint32
	for g := range 3 {
		if m := s.members(g); len(m) > 0 {
			gs = append(gs, m)
		}
	}
	return gs
}

func (s *sim) fail(format string, a ...any) {
	s.t.Helper()
	c := s.cfg
	c.WaitForAll = nil
	s.t.Fatalf("%s\nconfig %+v, wait_for_all=%v\nhistory:\n  %s", fmt.Sprintf(format, a...), c, s.cfg.WaitsForAll(), strings.Join(s.log, "\n  "))
}

// check asserts the invariants on every live node, and across groups.
func (s *sim) check() {
	cfg := s.cfg
	total := uint32(cfg.TotalVotes())
	configured := max(total, cfg.ExpectedVotes)
	quorateGroups := map[int]uint32{}
	for i, st := range s.states {
		if st == nil {
			continue
		}
		id, q := s.ids[i], s.status[i]
		if !slices.Equal(q.Members, s.members(s.group[i])) && !(len(q.Members) == 0 && len(s.members(s.group[i])) == 0) {
			s.fail("node %d: members %v, view %v", id, q.Members, s.members(s.group[i]))
		}
		var counted uint32
		for _, m := range q.Members {
			if !slices.Contains(q.Uncounted, m) {
				counted += s.votes[m]
			}
		}
		if q.TotalVotes != counted {
			s.fail("node %d: total votes %d, counted members have %d: %+v", id, q.TotalVotes, counted, q)
		}
		if q.ExpectedVotes < q.TotalVotes || q.ExpectedVotes == 0 {
			s.fail("node %d: expected votes %d below total %d: %+v", id, q.ExpectedVotes, q.TotalVotes, q)
		}
		wantQuorum := q.ExpectedVotes/2 + 1
		if cfg.TwoNode {
			wantQuorum = 1
		}
		if q.Quorum != wantQuorum {
			s.fail("node %d: quorum %d, want %d: %+v", id, q.Quorum, wantQuorum, q)
		}
		tie := cfg.AutoTieBreaker && !cfg.TwoNode && 2*q.TotalVotes == q.ExpectedVotes &&
			slices.Contains(q.Members, q.TieBreaker) && !slices.Contains(q.Uncounted, q.TieBreaker)
		if q.Quorate {
			if q.WaitingForAll {
				s.fail("node %d: quorate while waiting for all: %+v", id, q)
			}
			if q.TotalVotes < q.Quorum && !tie {
				s.fail("node %d: quorate with %d votes, quorum %d, and no tie-breaker: %+v", id, q.TotalVotes, q.Quorum, q)
			}
			if cfg.WaitsForAll() && !s.sawAll[i] {
				s.fail("node %d: quorate before it saw every node together: %+v", id, q)
			}
			if len(q.Uncounted) > 0 {
				s.fail("node %d: quorate with uncounted members: %+v", id, q)
			}
			quorateGroups[s.group[i]] = id
		}
		if !cfg.LastManStanding {
			// Without last_man_standing the rule is memoryless, apart from
			// wait_for_all, which can only withhold quorum.
			if q.ExpectedVotes != configured || len(q.Uncounted) > 0 {
				s.fail("node %d: expected votes %d (configured %d), uncounted %v without last_man_standing", id, q.ExpectedVotes, configured, q.Uncounted)
			}
			memoryless := q.TotalVotes >= q.Quorum || tie
			if q.Quorate && !memoryless || !cfg.WaitsForAll() && q.Quorate != memoryless {
				s.fail("node %d: quorate=%v but the view alone says %v: %+v", id, q.Quorate, memoryless, q)
			}
		} else if !cfg.AutoTieBreaker && !cfg.TwoNode && total >= 2 && q.ExpectedVotes < 2 {
			s.fail("node %d: last_man_standing went below 2 expected votes without auto_tie_breaker: %+v", id, q)
		}
	}
	// Split brain: two groups with a quorate node. two_node is the
	// documented exception (each side has quorum 1; fencing decides).
	if len(quorateGroups) > 1 && !cfg.TwoNode {
		var who []string
		for g, id := range quorateGroups {
			who = append(who, fmt.Sprintf("node %d in %v: %s", id, s.members(g), s.status[slices.Index(s.ids, id)].Reason))
		}
		slices.Sort(who)
		s.fail("split brain:\n  %s", strings.Join(who, "\n  "))
	}
}

func FuzzUpdate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	// 4 nodes, auto_tie_breaker lowest, split 2/2.
	f.Add([]byte{3, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1})
	// 5 nodes, last_man_standing, a cascade of failures with time passing.
	f.Add([]byte{4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 3, 2, 15, 4, 3, 3, 2, 15, 4, 2, 3, 2, 15, 4, 1, 3, 2, 15, 4, 4, 0, 2, 15})
	// 5 nodes, last_man_standing and auto_tie_breaker list, splits.
	f.Add([]byte{4, 2 | 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 2, 4, 3, 0, 0, 0, 0, 0, 0, 2, 15, 4, 4, 3, 2, 15, 0, 0, 1, 1, 2, 3, 2, 15, 0, 1, 0, 1, 0, 2, 15, 4, 0, 1})
	// two_node: start apart, meet, split.
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzInput{b: data}
		cfg := fuzzConfig(r)
		verr := cfg.Validate()
		if _, err := New(cfg); (err == nil) != (verr == nil) {
			t.Fatalf("Validate %v, New %v", verr, err)
		}
		if verr != nil {
			return
		}
		s := newSim(t, cfg)
		for i := range s.ids {
			s.start(i)
		}
		s.updateAll()
		s.check()
		for steps := 0; steps < 200 && r.more(); steps++ {
			s.step(r)
			s.check()
		}
	})
}
