package quorum

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// nodes makes n nodes with ids 1..n and 1 vote each.
func nodes(n int) []Node {
	ns := make([]Node, n)
	for i := range ns {
		ns[i] = Node{ID: uint32(i + 1), Votes: 1}
	}
	return ns
}

func ids(v ...uint32) []uint32 { return v }

// op is one step of a scenario: an Update (members set), a Tick (tick), or
// a CancelWaitForAll (cancel), at t0+at, and what the Status must show.
type op struct {
	at      time.Duration
	members []uint32
	tick    bool
	cancel  bool
	fresh   bool // replace the state by a new one first (a restart)

	quorate             bool
	expected, total, qu uint32
	waiting             bool
	uncounted           []uint32
	lmsIn               time.Duration // 0: no window running
	reason              string        // substring of Reason
}

func runOps(t *testing.T, cfg Config, ops []op) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for i, o := range ops {
		if o.fresh {
			if s, err = New(cfg); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(o.at)
		var st Status
		switch {
		case o.tick:
			st = s.Tick(now)
		case o.cancel:
			st = s.CancelWaitForAll(now)
		default:
			st = s.Update(o.members, now)
		}
		what := "update " + idList(o.members)
		if o.tick {
			what = "tick"
		} else if o.cancel {
			what = "cancel_wait_for_all"
		}
		if st.Quorate != o.quorate || st.ExpectedVotes != o.expected || st.TotalVotes != o.total || st.Quorum != o.qu || st.WaitingForAll != o.waiting {
			t.Errorf("step %d (%s at %v): got quorate=%v expected=%d total=%d quorum=%d waiting=%v, want %v %d %d %d %v\n\treason: %s",
				i, what, o.at, st.Quorate, st.ExpectedVotes, st.TotalVotes, st.Quorum, st.WaitingForAll,
				o.quorate, o.expected, o.total, o.qu, o.waiting, st.Reason)
		}
		if !slices.Equal(st.Uncounted, o.uncounted) {
			t.Errorf("step %d (%s): uncounted %v, want %v", i, what, st.Uncounted, o.uncounted)
		}
		var lmsIn time.Duration
		if !st.LastManStandingAt.IsZero() {
			lmsIn = st.LastManStandingAt.Sub(now)
		}
		if lmsIn != o.lmsIn {
			t.Errorf("step %d (%s): last_man_standing window ends in %v, want %v", i, what, lmsIn, o.lmsIn)
		}
		if d, ok := s.NextDeadline(); ok != !st.LastManStandingAt.IsZero() || (ok && !d.Equal(st.LastManStandingAt)) {
			t.Errorf("step %d: NextDeadline %v %v disagrees with status %v", i, d, ok, st.LastManStandingAt)
		}
		if !strings.Contains(st.Reason, o.reason) {
			t.Errorf("step %d (%s): reason %q does not contain %q", i, what, st.Reason, o.reason)
		}
	}
}

func TestScenarios(t *testing.T) {
	const w = 10 * time.Second
	lms5 := Config{Nodes: nodes(5), LastManStanding: true, WaitForAll: ptr(true)}
	tests := []struct {
		name string
		cfg  Config
		ops  []op
	}{
		{"three nodes lose one then two", Config{Nodes: nodes(3)}, []op{
			{members: ids(1, 2, 3), quorate: true, expected: 3, total: 3, qu: 2, reason: "3 of 3 votes present, quorum is 2: quorate"},
			{members: ids(1, 2), quorate: true, expected: 3, total: 2, qu: 2, reason: "2 of 3 votes present, quorum is 2: quorate"},
			{members: ids(1), quorate: false, expected: 3, total: 1, qu: 2, reason: "1 of 3 votes present, quorum is 2: not quorate"},
			{members: ids(3, 1), quorate: true, expected: 3, total: 2, qu: 2},
		}},
		{"quorum forms as soon as a majority is up without wait_for_all", Config{Nodes: nodes(5)}, []op{
			{members: ids(1), expected: 5, total: 1, qu: 3},
			{members: ids(1, 4), expected: 5, total: 2, qu: 3},
			{members: ids(1, 4, 5), quorate: true, expected: 5, total: 3, qu: 3},
		}},
		{"no members at all", Config{Nodes: nodes(3)}, []op{
			{members: nil, expected: 3, total: 0, qu: 2, reason: "0 of 3 votes present"},
		}},
		{"unknown and duplicate ids are ignored", Config{Nodes: nodes(3)}, []op{
			{members: ids(1, 1, 9, 2, 9), quorate: true, expected: 3, total: 2, qu: 2, reason: "ignoring unconfigured node 9"},
		}},
		{"expected_votes raised above the nodes' votes", Config{Nodes: nodes(3), ExpectedVotes: 5}, []op{
			{members: ids(1, 2, 3), quorate: true, expected: 5, total: 3, qu: 3},
			{members: ids(1, 2), expected: 5, total: 2, qu: 3, reason: "2 of 5 votes present, quorum is 3: not quorate"},
		}},
		{"unequal votes", Config{Nodes: []Node{{1, 3}, {2, 1}, {3, 1}}}, []op{
			{members: ids(1), quorate: true, expected: 5, total: 3, qu: 3},
			{members: ids(2, 3), expected: 5, total: 2, qu: 3},
			{members: ids(1, 2, 3), quorate: true, expected: 5, total: 5, qu: 3},
		}},

		{"auto_tie_breaker explains both halves", Config{Nodes: nodes(4), AutoTieBreaker: true}, []op{
			{members: ids(3, 4), expected: 4, total: 2, qu: 3, reason: "2 of 4 votes present, quorum is 3: not quorate, an even split and tie-breaker node 1 is not in this half"},
			{members: ids(1, 4), quorate: true, expected: 4, total: 2, qu: 3, reason: "quorate, this half of an even split holds tie-breaker node 1 (auto_tie_breaker)"},
			{members: ids(1, 2, 4), quorate: true, expected: 4, total: 3, qu: 3, reason: "3 of 4 votes present, quorum is 3: quorate"},
		}},

		// two_node
		{"two_node waits for both nodes at startup, then one survivor is quorate", Config{Nodes: nodes(2), TwoNode: true}, []op{
			{members: ids(1), expected: 2, total: 1, qu: 1, waiting: true, reason: "waiting for all 2 configured nodes to be seen together (wait_for_all): missing node 2"},
			{members: ids(1, 2), quorate: true, expected: 2, total: 2, qu: 1, reason: "2 of 2 votes present, quorum is 1 (two_node): quorate"},
			{members: ids(1), quorate: true, expected: 2, total: 1, qu: 1, reason: "1 of 2 votes present, quorum is 1 (two_node): quorate"},
			// The survivor restarts alone: it waits for its peer again.
			{fresh: true, members: ids(1), expected: 2, total: 1, qu: 1, waiting: true},
			{members: ids(1, 2), quorate: true, expected: 2, total: 2, qu: 1},
		}},
		{"two_node with wait_for_all turned off is quorate alone at once", Config{Nodes: nodes(2), TwoNode: true, WaitForAll: ptr(false)}, []op{
			{members: ids(2), quorate: true, expected: 2, total: 1, qu: 1},
		}},
		{"two_node with nobody in the view", Config{Nodes: nodes(2), TwoNode: true, WaitForAll: ptr(false)}, []op{
			{members: nil, expected: 2, total: 0, qu: 1},
		}},

		// wait_for_all
		{"wait_for_all in 5 nodes", Config{Nodes: nodes(5), WaitForAll: ptr(true)}, []op{
			{members: ids(1, 2, 3), expected: 5, total: 3, qu: 3, waiting: true, reason: "missing nodes 4 5"},
			{members: ids(1, 2, 3, 4), expected: 5, total: 4, qu: 3, waiting: true},
			{members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
			{members: ids(1, 2, 3), quorate: true, expected: 5, total: 3, qu: 3},
			// Quorum lost: as in votequorum, the wait starts again ...
			{members: ids(1, 2), expected: 5, total: 2, qu: 3, waiting: true},
			// ... so a bare majority is not enough to regain quorum,
			{members: ids(1, 2, 3), expected: 5, total: 3, qu: 3, waiting: true},
			// unless an operator cancels the wait,
			{cancel: true, quorate: true, expected: 5, total: 3, qu: 3},
			{members: ids(1, 2), expected: 5, total: 2, qu: 3, waiting: true},
			// which does not help without enough votes,
			{cancel: true, expected: 5, total: 2, qu: 3, waiting: true},
			// or every node is seen together again.
			{members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
		}},

		// last_man_standing
		{"last_man_standing steps 5->4->3->2, not before the window, and no lower", lms5, []op{
			{at: 0, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
			{at: 1 * time.Second, members: ids(1, 2, 3, 4), quorate: true, expected: 5, total: 4, qu: 3, lmsIn: w, reason: "last_man_standing lowers expected votes to 4 in 10s"},
			{at: 11*time.Second - time.Nanosecond, tick: true, quorate: true, expected: 5, total: 4, qu: 3, lmsIn: time.Nanosecond},
			{at: 11 * time.Second, tick: true, quorate: true, expected: 4, total: 4, qu: 3},
			{at: 20 * time.Second, members: ids(1, 2, 3), quorate: true, expected: 4, total: 3, qu: 3, lmsIn: w},
			// A membership change inside the window starts it again.
			{at: 25 * time.Second, members: ids(1, 2, 3, 5), quorate: true, expected: 5, total: 4, qu: 3, lmsIn: w},
			{at: 28 * time.Second, members: ids(1, 2, 3), quorate: true, expected: 5, total: 3, qu: 3, lmsIn: w},
			{at: 37 * time.Second, tick: true, quorate: true, expected: 5, total: 3, qu: 3, lmsIn: time.Second},
			{at: 38 * time.Second, tick: true, quorate: true, expected: 3, total: 3, qu: 2},
			{at: 40 * time.Second, members: ids(1, 2), quorate: true, expected: 3, total: 2, qu: 2, lmsIn: w},
			{at: 50 * time.Second, tick: true, quorate: true, expected: 2, total: 2, qu: 2},
			// The floor without auto_tie_breaker: the last of 2 is not quorate.
			{at: 60 * time.Second, members: ids(1), expected: 2, total: 1, qu: 2, waiting: true},
			{at: 100 * time.Second, tick: true, expected: 2, total: 1, qu: 2, waiting: true},
			// wait_for_all (required with last_man_standing) holds it.
			{at: 101 * time.Second, members: ids(1, 2), expected: 2, total: 2, qu: 2, waiting: true},
			{at: 102 * time.Second, cancel: true, quorate: true, expected: 2, total: 2, qu: 2},
		}},
		{"last_man_standing: returning nodes raise expected votes at once", lms5, []op{
			{at: 0, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
			{at: 1 * time.Second, members: ids(1, 2, 3), quorate: true, expected: 5, total: 3, qu: 3, lmsIn: w},
			{at: 11 * time.Second, tick: true, quorate: true, expected: 3, total: 3, qu: 2},
			{at: 12 * time.Second, members: ids(1, 2, 3, 4), quorate: true, expected: 4, total: 4, qu: 3},
			{at: 13 * time.Second, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
		}},
		{"last_man_standing: no recalculation while not quorate", lms5, []op{
			{at: 0, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
			{at: 1 * time.Second, members: ids(1, 2, 3), quorate: true, expected: 5, total: 3, qu: 3, lmsIn: w},
			{at: 5 * time.Second, members: ids(1, 2), expected: 5, total: 2, qu: 3, waiting: true},
			{at: 60 * time.Second, tick: true, expected: 5, total: 2, qu: 3, waiting: true},
		}},
		{"last_man_standing: a window that ended before an update applies to the previous view", lms5, []op{
			{at: 0, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
			{at: 1 * time.Second, members: ids(1, 2, 3, 4), quorate: true, expected: 5, total: 4, qu: 3, lmsIn: w},
			{at: 15 * time.Second, members: ids(1, 2, 3), quorate: true, expected: 4, total: 3, qu: 3, lmsIn: w},
		}},
		{"last_man_standing: written-off nodes do not count in an inquorate partition", lms5, []op{
			{at: 0, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
			{at: 1 * time.Second, members: ids(1, 2, 3), quorate: true, expected: 5, total: 3, qu: 3, lmsIn: w},
			{at: 11 * time.Second, tick: true, quorate: true, expected: 3, total: 3, qu: 2},
			// Node 1 loses 2 and 3 and now sees 4 and 5, written off:
			// {2, 3} may be quorate with expected votes 3.
			{at: 12 * time.Second, members: ids(1, 4, 5), expected: 3, total: 1, qu: 2, waiting: true, uncounted: ids(4, 5),
				reason: "nodes 4 5 present but not counted"},
			{at: 13 * time.Second, members: ids(1, 2, 3, 4, 5), quorate: true, expected: 5, total: 5, qu: 3},
		}},
		{"last_man_standing with auto_tie_breaker goes down to the tie-breaker alone", Config{Nodes: nodes(3), LastManStanding: true, WaitForAll: ptr(true), AutoTieBreaker: true}, []op{
			{at: 0, members: ids(1, 2, 3), quorate: true, expected: 3, total: 3, qu: 2},
			{at: 1 * time.Second, members: ids(1, 2), quorate: true, expected: 3, total: 2, qu: 2, lmsIn: w},
			{at: 11 * time.Second, tick: true, quorate: true, expected: 2, total: 2, qu: 2},
			{at: 12 * time.Second, members: ids(1), quorate: true, expected: 2, total: 1, qu: 2, lmsIn: w,
				reason: "quorate, this half of an even split holds tie-breaker node 1"},
			{at: 22 * time.Second, tick: true, quorate: true, expected: 1, total: 1, qu: 1},
			{at: 23 * time.Second, members: ids(1, 3), quorate: true, expected: 2, total: 2, qu: 2},
		}},
		{"last_man_standing with auto_tie_breaker: a survivor that is not the tie-breaker", Config{Nodes: nodes(3), LastManStanding: true, WaitForAll: ptr(true), AutoTieBreaker: true}, []op{
			{at: 0, members: ids(1, 2, 3), quorate: true, expected: 3, total: 3, qu: 2},
			{at: 1 * time.Second, members: ids(1, 2), quorate: true, expected: 3, total: 2, qu: 2, lmsIn: w},
			{at: 11 * time.Second, tick: true, quorate: true, expected: 2, total: 2, qu: 2},
			{at: 12 * time.Second, members: ids(2), expected: 2, total: 1, qu: 2, waiting: true},
		}},
		{"last_man_standing window default and custom", Config{Nodes: nodes(3), LastManStanding: true, WaitForAll: ptr(true), LastManStandingWindow: 250 * time.Millisecond}, []op{
			{at: 0, members: ids(1, 2, 3), quorate: true, expected: 3, total: 3, qu: 2},
			{at: time.Second, members: ids(2, 3), quorate: true, expected: 3, total: 2, qu: 2, lmsIn: 250 * time.Millisecond},
			{at: time.Second + 250*time.Millisecond, tick: true, quorate: true, expected: 2, total: 2, qu: 2},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.cfg, tc.ops) })
	}
}

// TestSplits replays the same history on one State per side, then gives
// each side its half of a split.
func TestSplits(t *testing.T) {
	four := nodes(4)
	atb := func(spec string) Config { return Config{Nodes: four, AutoTieBreaker: true, AutoTieBreakerNode: spec} }
	tests := []struct {
		name    string
		cfg     Config
		history [][]uint32 // one view per second, on every side
		ticks   time.Duration
		sides   [][]uint32
		want    []bool
	}{
		{"3 nodes 2/1", Config{Nodes: nodes(3)}, [][]uint32{{1, 2, 3}}, 0, [][]uint32{{1, 2}, {3}}, []bool{true, false}},
		{"5 nodes 3/2", Config{Nodes: nodes(5)}, [][]uint32{{1, 2, 3, 4, 5}}, 0, [][]uint32{{4, 5}, {1, 2, 3}}, []bool{false, true}},
		{"4 nodes 2/2 without auto_tie_breaker", Config{Nodes: four}, [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{1, 2}, {3, 4}}, []bool{false, false}},
		{"4 nodes 2/2 lowest", atb("lowest"), [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{1, 2}, {3, 4}}, []bool{true, false}},
		{"4 nodes 2/2 default is lowest", atb(""), [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{2, 4}, {1, 3}}, []bool{false, true}},
		{"4 nodes 2/2 highest", atb("highest"), [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{1, 2}, {3, 4}}, []bool{false, true}},
		{"4 nodes 2/2 list 3 1", atb("3 1"), [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{1, 2}, {3, 4}}, []bool{false, true}},
		{"4 nodes 2/2 list 3 1 other split", atb("3 1"), [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{1, 3}, {2, 4}}, []bool{true, false}},
		{"list with commas", atb("2,4"), [][]uint32{{1, 2, 3, 4}}, 0, [][]uint32{{1, 3}, {2, 4}}, []bool{false, true}},
		{"sparse ids lowest", Config{Nodes: []Node{{10, 1}, {20, 1}, {30, 1}, {40, 1}}, AutoTieBreaker: true},
			[][]uint32{{10, 20, 30, 40}}, 0, [][]uint32{{20, 40}, {10, 30}}, []bool{false, true}},
		{"6 nodes 3/3 lowest", Config{Nodes: nodes(6), AutoTieBreaker: true}, [][]uint32{{1, 2, 3, 4, 5, 6}}, 0,
			[][]uint32{{1, 5, 6}, {2, 3, 4}}, []bool{true, false}},
		// Only an exact half is a tie: votequorum's half-minus-one rule for
		// odd clusters is not applied.
		{"5 nodes 2/3 with auto_tie_breaker", Config{Nodes: nodes(5), AutoTieBreaker: true}, [][]uint32{{1, 2, 3, 4, 5}}, 0,
			[][]uint32{{1, 2}, {3, 4, 5}}, []bool{false, true}},
		// The tie-breaker is down but counted: neither half can tell that it
		// is not in the other one, so neither is quorate.
		{"tie-breaker down before the split", atb("lowest"), [][]uint32{{1, 2, 3, 4}, {2, 3, 4}}, 0,
			[][]uint32{{2, 3}, {4}}, []bool{false, false}},
		{"unequal votes lowest", Config{Nodes: []Node{{1, 2}, {2, 1}, {3, 1}}, AutoTieBreaker: true}, [][]uint32{{1, 2, 3}}, 0,
			[][]uint32{{1}, {2, 3}}, []bool{true, false}},
		{"unequal votes highest", Config{Nodes: []Node{{1, 2}, {2, 1}, {3, 1}}, AutoTieBreaker: true, AutoTieBreakerNode: "highest"}, [][]uint32{{1, 2, 3}}, 0,
			[][]uint32{{1}, {2, 3}}, []bool{false, true}},
		{"unequal votes majority", Config{Nodes: []Node{{1, 3}, {2, 1}, {3, 1}}}, [][]uint32{{1, 2, 3}}, 0,
			[][]uint32{{1}, {2, 3}}, []bool{true, false}},
		{"expected_votes 4 for 3 nodes with auto_tie_breaker", Config{Nodes: nodes(3), ExpectedVotes: 4, AutoTieBreaker: true}, [][]uint32{{1, 2, 3}}, 0,
			[][]uint32{{1, 2}, {3}}, []bool{true, false}},
		// last_man_standing lowered {1,2,3,5} to 4 expected votes; {1,2} then
		// holds the tie. Node 4, cut off before, counts all 5 and waits for
		// all of them; nodes 3 and 5 do not count node 4 (written off).
		{"last_man_standing then a split with the written-off node", Config{Nodes: nodes(5), LastManStanding: true, WaitForAll: ptr(true), AutoTieBreaker: true},
			[][]uint32{{1, 2, 3, 4, 5}, {1, 2, 3, 5}}, 30 * time.Second, [][]uint32{{1, 2}, {3, 4, 5}}, []bool{true, false}},
		// The documented exception: two_node leaves the split to fencing.
		{"two_node 1/1", Config{Nodes: nodes(2), TwoNode: true}, [][]uint32{{1, 2}}, 0, [][]uint32{{1}, {2}}, []bool{true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for side, members := range tc.sides {
				s, err := New(tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				now := t0
				for _, h := range tc.history {
					s.Update(h, now)
					now = now.Add(time.Second)
				}
				if tc.ticks > 0 {
					now = now.Add(tc.ticks)
					s.Tick(now)
				}
				st := s.Update(members, now)
				if st.Quorate != tc.want[side] {
					t.Errorf("side %v: quorate=%v, want %v (%s)", members, st.Quorate, tc.want[side], st.Reason)
				}
			}
		})
	}
}

// TestTieBreakerFallsThroughList follows votequorum(5)'s example of a list:
// a listed node that is gone (written off by last_man_standing) is skipped.
func TestTieBreakerFallsThroughList(t *testing.T) {
	cfg := Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "4 2", LastManStanding: true, WaitForAll: ptr(true)}
	side := func(members []uint32) Status {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Update(ids(1, 2, 3, 4), t0); st.TieBreaker != 4 {
			t.Fatalf("tie-breaker %d, want 4", st.TieBreaker)
		}
		s.Update(ids(1, 2, 3), t0.Add(time.Second))
		st := s.Tick(t0.Add(11 * time.Second))
		if st.ExpectedVotes != 3 || st.TieBreaker != 2 {
			t.Fatalf("after node 4 was written off: expected %d tie-breaker %d, want 3 and 2 (%s)", st.ExpectedVotes, st.TieBreaker, st.Reason)
		}
		s.Update(ids(1, 2), t0.Add(12*time.Second))
		st = s.Tick(t0.Add(22 * time.Second))
		if st.ExpectedVotes != 2 || !st.Quorate {
			t.Fatalf("down to 2: %s", st.Reason)
		}
		return s.Update(members, t0.Add(23*time.Second))
	}
	if st := side(ids(2)); !st.Quorate {
		t.Errorf("node 2 alone should hold the tie: %s", st.Reason)
	}
	if st := side(ids(1)); st.Quorate || st.TieBreaker != 2 {
		t.Errorf("node 1 alone should not be quorate: %s", st.Reason)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"one node", Config{Nodes: nodes(1)}, nil},
		{"two_node", Config{Nodes: nodes(2), TwoNode: true}, nil},
		{"two_node expected 2", Config{Nodes: nodes(2), TwoNode: true, ExpectedVotes: 2}, nil},
		{"expected above total", Config{Nodes: nodes(3), ExpectedVotes: 5}, nil},
		{"atb lowest", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "lowest"}, nil},
		{"atb HIGHEST", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "HIGHEST"}, nil},
		{"atb list", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: " 3  1,2 "}, nil},
		{"atb node ignored when atb is off", Config{Nodes: nodes(4), AutoTieBreakerNode: "99"}, nil},
		{"lms with wfa", Config{Nodes: nodes(5), LastManStanding: true, WaitForAll: ptr(true)}, nil},
		{"lms with two_node's wfa", Config{Nodes: nodes(2), TwoNode: true, LastManStanding: true}, nil},
		{"lms with expected = total", Config{Nodes: nodes(3), ExpectedVotes: 3, LastManStanding: true, WaitForAll: ptr(true)}, nil},

		{"no nodes", Config{}, []string{"nodes: no nodes configured"}},
		{"node id 0", Config{Nodes: []Node{{0, 1}, {1, 1}}}, []string{"nodes: node id 0 is reserved"}},
		{"duplicate ids", Config{Nodes: []Node{{1, 1}, {2, 1}, {2, 1}}}, []string{"nodes: node id 2 appears more than once"}},
		{"zero votes", Config{Nodes: []Node{{1, 1}, {2, 1}, {3, 0}}}, []string{"nodes: node 3 has 0 votes; every node needs at least 1 vote"}},
		{"too many votes", Config{Nodes: []Node{{1, MaxVotes + 1}}}, []string{"node 1 has 65537 votes; at most 65536"}},
		{"two_node with 3 nodes", Config{Nodes: nodes(3), TwoNode: true}, []string{"two_node: needs exactly 2 nodes, config has 3"}},
		{"two_node with 2 votes", Config{Nodes: []Node{{1, 2}, {2, 1}}, TwoNode: true}, []string{"two_node: needs 1 vote per node; node 1 has 2"}},
		{"two_node with expected 3", Config{Nodes: nodes(2), TwoNode: true, ExpectedVotes: 3}, []string{"two_node: needs expected_votes 2 (or 0), got 3"}},
		{"two_node and atb", Config{Nodes: nodes(2), TwoNode: true, AutoTieBreaker: true}, []string{"two_node and auto_tie_breaker cannot be used together"}},
		{"expected below total", Config{Nodes: nodes(4), ExpectedVotes: 3}, []string{"expected_votes: 3 is below the 4 votes of the configured nodes"}},
		{"expected unreachable", Config{Nodes: nodes(3), ExpectedVotes: 6}, []string{"expected_votes: 6 needs a quorum of 4 votes, but the configured nodes have only 3"}},
		{"lms with 2 votes", Config{Nodes: []Node{{1, 1}, {2, 2}, {3, 1}}, LastManStanding: true, WaitForAll: ptr(true)}, []string{"last_man_standing: needs every node to have 1 vote (as votequorum does); node 2 has 2"}},
		{"lms without wfa", Config{Nodes: nodes(5), LastManStanding: true}, []string{"last_man_standing: needs wait_for_all = true"}},
		{"lms with wfa off", Config{Nodes: nodes(5), LastManStanding: true, WaitForAll: ptr(false)}, []string{"last_man_standing: needs wait_for_all = true"}},
		{"lms with expected override", Config{Nodes: nodes(3), ExpectedVotes: 4, LastManStanding: true, WaitForAll: ptr(true)}, []string{"cannot be combined with expected_votes 4"}},
		{"lms negative window", Config{Nodes: nodes(3), LastManStanding: true, WaitForAll: ptr(true), LastManStandingWindow: -time.Second}, []string{"last_man_standing_window: -1s is negative"}},
		{"atb unknown node", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "2 9"}, []string{"auto_tie_breaker_node: node 9 is not a configured node (configured: 1 2 3 4)"}},
		{"atb not a number", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "lowset"}, []string{`auto_tie_breaker_node: "lowset" is not a node id; use lowest, highest, or node ids`}},
		{"atb mode and ids", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "lowest 3"}, []string{`"lowest" is not a node id`}},
		{"atb id 0", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "0"}, []string{`"0" is not a node id`}},
		{"atb listed twice", Config{Nodes: nodes(4), AutoTieBreaker: true, AutoTieBreakerNode: "3 1 3"}, []string{"node 3 is listed twice"}},
		{"every problem is reported", Config{Nodes: []Node{{1, 0}, {1, 1}, {2, 1}}, TwoNode: true},
			[]string{"node 1 has 0 votes", "node id 1 appears more than once", "two_node: needs exactly 2 nodes, config has 3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, nerr := New(tc.cfg)
			if (err == nil) != (nerr == nil) {
				t.Fatalf("Validate %v but New %v", err, nerr)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestStatusBeforeUpdate(t *testing.T) {
	s, err := New(Config{Nodes: nodes(3), AutoTieBreaker: true})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	if st.Quorate || st.Reason != "no membership seen yet" || st.ExpectedVotes != 3 || st.Quorum != 2 || st.TieBreaker != 1 {
		t.Errorf("%+v", st)
	}
	if st := s.Tick(t0); st.Quorate {
		t.Errorf("quorate after a tick without membership: %+v", st)
	}
}

func TestFlagsAndJSON(t *testing.T) {
	s, err := New(Config{Nodes: nodes(2), TwoNode: true, LastManStanding: true})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Update(ids(1, 2), t0)
	st = s.Update(ids(1), t0.Add(time.Second))
	if want := []string{"two_node", "wait_for_all", "last_man_standing"}; !slices.Equal(st.Flags, want) {
		t.Errorf("flags %v, want %v", st.Flags, want)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"quorate":true`, `"expected_votes":2`, `"total_votes":1`, `"quorum":1`, `"members":[1]`, `"last_man_standing_at":"2025-01-01T00:00:11Z"`, `"flags":["two_node"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s does not contain %s", b, key)
		}
	}
	s2, _ := New(Config{Nodes: nodes(3)})
	b, _ = json.Marshal(s2.Update(ids(1), t0))
	for _, key := range []string{`"flags":[]`, `"members":[1]`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s does not contain %s", b, key)
		}
	}
	if strings.Contains(string(b), "last_man_standing_at") || strings.Contains(string(b), "uncounted") {
		t.Errorf("zero fields not omitted: %s", b)
	}
}

// TestStatusIsACopy checks that a Status does not alias the State.
func TestStatusIsACopy(t *testing.T) {
	s, _ := New(Config{Nodes: nodes(3)})
	st := s.Update(ids(1, 2, 9), t0)
	st.Members[0], st.Unknown[0], st.Flags = 7, 7, append(st.Flags, "x")
	if st2 := s.Status(); st2.Members[0] != 1 || st2.Unknown[0] != 9 || len(st2.Flags) != 0 {
		t.Errorf("status aliases state: %+v", st2)
	}
}

// TestClockGoingBack: an earlier time neither fires a window nor moves
// its end.
func TestClockGoingBack(t *testing.T) {
	s, _ := New(Config{Nodes: nodes(3), LastManStanding: true, WaitForAll: ptr(true)})
	s.Update(ids(1, 2, 3), t0)
	st := s.Update(ids(1, 2), t0.Add(5*time.Second))
	end := st.LastManStandingAt
	if st = s.Tick(t0); st.ExpectedVotes != 3 || !st.LastManStandingAt.Equal(end) {
		t.Errorf("after the clock went back: %+v", st)
	}
	if st = s.Tick(end); st.ExpectedVotes != 2 {
		t.Errorf("window did not end on time: %+v", st)
	}
}
