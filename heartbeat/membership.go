package heartbeat

import (
	"slices"
	"sort"
)

// Membership turns link events into node events. A node is up while at least
// one link to it is up, and down only when every link to it is down; a link
// going down while another stays up is reported, but the node stays. It is
// pure and used by both receive paths.
type Membership struct {
	links int
	nodes map[uint32]*nodeState
}

type nodeState struct {
	up          bool
	incarnation uint64
	linkUp      []bool
	linkGen     []uint32
	changedNs   int64
}

// NodeState is one peer as the membership sees it.
type NodeState struct {
	Node        uint32 `json:"node"`
	Up          bool   `json:"up"`
	Incarnation uint64 `json:"incarnation"`
	LinksUp     []bool `json:"links_up"`
	ChangedNs   int64  `json:"changed_ns"` // CLOCK_MONOTONIC of the last node up/down
}

// NewMembership tracks the given peers over links links. Peers start down
// (never heard of).
func NewMembership(peers []uint32, links int) *Membership {
	m := &Membership{links: links, nodes: make(map[uint32]*nodeState)}
	for _, p := range peers {
		m.nodes[p] = &nodeState{linkUp: make([]bool, links), linkGen: make([]uint32, links)}
	}
	return m
}

// Apply takes one link event and returns what it means: nothing if it is
// older than what was already applied for that link (the XDP ring buffer may
// deliver two changes of a link out of order), else the link event itself
// followed by any node event it causes.
func (m *Membership) Apply(ev Event) []Event {
	n, ok := m.nodes[ev.NodeID]
	if !ok || int(ev.Link) >= m.links {
		return nil
	}
	l := ev.Link
	if ev.Gen != 0 && ev.Gen <= n.linkGen[l] {
		return nil
	}
	n.linkGen[l] = ev.Gen
	out := []Event{ev}
	node := Event{NodeID: ev.NodeID, Incarnation: ev.Incarnation, Seq: ev.Seq, TimeNs: ev.TimeNs}
	switch ev.Type {
	case LinkUp, LinkRestart:
		n.linkUp[l] = true
		switch {
		case !n.up:
			n.up = true
			n.incarnation = ev.Incarnation
			n.changedNs = ev.TimeNs
			node.Type = NodeUp
			out = append(out, node)
		case ev.Incarnation > n.incarnation:
			// The node restarted while some link still looked up: other
			// links carrying the old incarnation are stale evidence.
			n.incarnation = ev.Incarnation
			for i := range n.linkUp {
				n.linkUp[i] = i == int(l)
			}
			node.Type = NodeRestart
			out = append(out, node)
		}
	case LinkDown:
		n.linkUp[l] = false
		if n.up && !slices.Contains(n.linkUp, true) {
			n.up = false
			n.changedNs = ev.TimeNs
			node.Type = NodeDown
			out = append(out, node)
		}
	}
	return out
}

// Up returns the ids of the peers that are up, sorted.
func (m *Membership) Up() []uint32 {
	var ids []uint32
	for id, n := range m.nodes {
		if n.up {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Nodes returns every peer's state, sorted by id.
func (m *Membership) Nodes() []NodeState {
	out := make([]NodeState, 0, len(m.nodes))
	for id, n := range m.nodes {
		out = append(out, NodeState{Node: id, Up: n.up, Incarnation: n.incarnation, LinksUp: slices.Clone(n.linkUp), ChangedNs: n.changedNs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func sortLinkStates(s []LinkState) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Node != s[j].Node {
			return s[i].Node < s[j].Node
		}
		return s[i].Link < s[j].Link
	})
}
