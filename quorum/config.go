package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultLastManStandingWindow is votequorum's default
// last_man_standing_window, used when Config.LastManStandingWindow is 0.
const DefaultLastManStandingWindow = 10 * time.Second

// Limits that keep vote arithmetic far from uint32 overflow.
const (
	MaxVotes         = 1 << 16 // per node
	MaxExpectedVotes = 1 << 30 // total, and Config.ExpectedVotes
)

// Node is one configured cluster node.
type Node struct {
	ID    uint32 `json:"id"`    // non-zero, unique
	Votes uint32 `json:"votes"` // at least 1 (configuration files default it to 1)
}

// Config is votequorum's configuration.
type Config struct {
	Nodes []Node `json:"nodes"`
	// ExpectedVotes overrides the sum of the nodes' votes; 0 uses the sum.
	// It may be higher than the sum (votes reserved for nodes not yet
	// configured), never lower.
	ExpectedVotes uint32 `json:"expected_votes,omitempty"`
	TwoNode       bool   `json:"two_node,omitempty"`
	// WaitForAll: nil means the default, which is TwoNode.
	WaitForAll      *bool `json:"wait_for_all,omitempty"`
	LastManStanding bool  `json:"last_man_standing,omitempty"`
	// LastManStandingWindow: 0 means DefaultLastManStandingWindow.
	LastManStandingWindow time.Duration `json:"last_man_standing_window,omitempty"`
	AutoTieBreaker        bool          `json:"auto_tie_breaker,omitempty"`
	// AutoTieBreakerNode is "lowest" (also when empty), "highest", or node
	// ids separated by spaces or commas, in order of preference. It is
	// ignored when AutoTieBreaker is false.
	AutoTieBreakerNode string `json:"auto_tie_breaker_node,omitempty"`
}

// WaitsForAll is wait_for_all with its default applied.
func (c Config) WaitsForAll() bool {
	if c.WaitForAll != nil {
		return *c.WaitForAll
	}
	return c.TwoNode
}

// Window is last_man_standing_window with its default applied.
func (c Config) Window() time.Duration {
	if c.LastManStandingWindow == 0 {
		return DefaultLastManStandingWindow
	}
	return c.LastManStandingWindow
}

// TotalVotes is the sum of the configured nodes' votes.
func (c Config) TotalVotes() uint64 {
	var t uint64
	for _, n := range c.Nodes {
		t += uint64(n.Votes)
	}
	return t
}

type tieMode uint8

const (
	tieLowest tieMode = iota
	tieHighest
	tieList
)

type tieBreaker struct {
	mode tieMode
	list []uint32
}

// parseTieBreaker parses auto_tie_breaker_node against the configured ids.
func parseTieBreaker(spec string, configured []uint32) (tieBreaker, error) {
	fields := strings.FieldsFunc(spec, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return tieBreaker{mode: tieLowest}, nil
	}
	if len(fields) == 1 {
		switch strings.ToLower(fields[0]) {
		case "lowest":
			return tieBreaker{mode: tieLowest}, nil
		case "highest":
			return tieBreaker{mode: tieHighest}, nil
		}
	}
	t := tieBreaker{mode: tieList}
	for _, f := range fields {
		id, err := strconv.ParseUint(f, 10, 32)
		if err != nil || id == 0 {
			return tieBreaker{}, fmt.Errorf("auto_tie_breaker_node: %q is not a node id; use lowest, highest, or node ids separated by spaces (got %q)", f, spec)
		}
		if !slices.Contains(configured, uint32(id)) {
			return tieBreaker{}, fmt.Errorf("auto_tie_breaker_node: node %d is not a configured node (configured: %s)", id, idList(configured))
		}
		if slices.Contains(t.list, uint32(id)) {
			return tieBreaker{}, fmt.Errorf("auto_tie_breaker_node: node %d is listed twice", id)
		}
		t.list = append(t.list, uint32(id))
	}
	return t, nil
}

// Validate checks the configuration. The error lists every problem found,
// one per line, each naming the option and what it accepts.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// compiled is a validated Config in the form State uses.
type compiled struct {
	ids    []uint32 // sorted
	votes  []uint32 // votes[i] is the votes of ids[i]
	total  uint32   // sum of votes
	extra  uint32   // ExpectedVotes above total
	two    bool
	wfa    bool
	lms    bool
	window time.Duration
	atb    bool
	tb     tieBreaker
	flags  []string
}

func (c Config) compile() (*compiled, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(c.Nodes) == 0 {
		bad("nodes: no nodes configured; at least one is needed")
	}
	nodes := slices.Clone(c.Nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return cmpU32(a.ID, b.ID) })
	k := &compiled{}
	for i, n := range nodes {
		switch {
		case n.ID == 0:
			bad("nodes: node id 0 is reserved; ids start at 1")
		case i > 0 && nodes[i-1].ID == n.ID:
			bad("nodes: node id %d appears more than once; ids must be unique", n.ID)
			continue
		}
		switch {
		case n.Votes == 0:
			bad("nodes: node %d has 0 votes; every node needs at least 1 vote", n.ID)
		case n.Votes > MaxVotes:
			bad("nodes: node %d has %d votes; at most %d are allowed", n.ID, n.Votes, MaxVotes)
		}
		k.ids = append(k.ids, n.ID)
		k.votes = append(k.votes, n.Votes)
	}
	total := c.TotalVotes()
	if total > MaxExpectedVotes {
		bad("nodes: the nodes have %d votes in all; at most %d are allowed", total, MaxExpectedVotes)
	}
	k.total = uint32(min(total, MaxExpectedVotes))
	if ev := uint64(c.ExpectedVotes); ev != 0 && total > 0 && total <= MaxExpectedVotes {
		switch {
		case ev < total:
			bad("expected_votes: %d is below the %d votes of the configured nodes; a lower value would let two separate partitions both have quorum (leave it at 0 to use %d)", ev, total, total)
		case ev > MaxExpectedVotes:
			bad("expected_votes: %d is above the limit of %d", ev, MaxExpectedVotes)
		case ev/2+1 > total:
			bad("expected_votes: %d needs a quorum of %d votes, but the configured nodes have only %d; quorum could never be reached", ev, ev/2+1, total)
		default:
			k.extra = uint32(ev - total)
		}
	}
	if c.TwoNode {
		k.two = true
		if len(c.Nodes) != 2 {
			bad("two_node: needs exactly 2 nodes, config has %d", len(c.Nodes))
		} else {
			for _, n := range nodes {
				if n.Votes != 1 {
					bad("two_node: needs 1 vote per node; node %d has %d", n.ID, n.Votes)
				}
			}
		}
		if c.ExpectedVotes != 0 && c.ExpectedVotes != 2 {
			bad("two_node: needs expected_votes 2 (or 0), got %d", c.ExpectedVotes)
		}
		if c.AutoTieBreaker {
			bad("two_node and auto_tie_breaker cannot be used together: two_node leaves a split to a fence race, auto_tie_breaker decides it by node id; choose one")
		}
	}
	k.wfa = c.WaitsForAll()
	if c.LastManStanding {
		k.lms = true
		k.window = c.Window()
		if c.LastManStandingWindow < 0 {
			bad("last_man_standing_window: %v is negative; use a positive duration (default %v)", c.LastManStandingWindow, DefaultLastManStandingWindow)
		}
		for _, n := range nodes {
			if n.Votes != 1 {
				bad("last_man_standing: needs every node to have 1 vote (as votequorum does); node %d has %d", n.ID, n.Votes)
			}
		}
		if c.ExpectedVotes != 0 && uint64(c.ExpectedVotes) != total {
			bad("last_man_standing: recalculates expected votes from the nodes present and cannot be combined with expected_votes %d; leave expected_votes at 0", c.ExpectedVotes)
		}
		if !k.wfa {
			bad("last_man_standing: needs wait_for_all = true; without it, nodes cut off before expected votes were lowered could later form a second quorate partition")
		}
	}
	if c.AutoTieBreaker {
		k.atb = true
		tb, err := parseTieBreaker(c.AutoTieBreakerNode, k.ids)
		if err != nil {
			errs = append(errs, err)
		}
		k.tb = tb
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if k.two {
		k.flags = append(k.flags, "two_node")
	}
	if k.wfa {
		k.flags = append(k.flags, "wait_for_all")
	}
	if k.lms {
		k.flags = append(k.flags, "last_man_standing")
	}
	if k.atb {
		k.flags = append(k.flags, "auto_tie_breaker")
	}
	return k, nil
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func idList(ids []uint32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return strings.Join(s, " ")
}
