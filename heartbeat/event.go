package heartbeat

import "fmt"

// EventType says what changed. The numeric values are shared with
// bpf/heartbeat.c, whose ring buffer records carry them.
type EventType uint8

const (
	// LinkUp: the first valid frame from a peer on a link, or the first after it was down.
	LinkUp EventType = 1
	// LinkDown: no valid frame from the peer on the link for interval*miss_count.
	LinkDown EventType = 2
	// LinkRestart: a valid frame with a higher incarnation while the link was up:
	// the peer's daemon restarted faster than the failure detector could notice.
	LinkRestart EventType = 3
	// NodeUp, NodeDown and NodeRestart are derived by Membership from link
	// events: a node is down only when every link to it is down.
	NodeUp      EventType = 4
	NodeDown    EventType = 5
	NodeRestart EventType = 6
)

func (t EventType) String() string {
	switch t {
	case LinkUp:
		return "link-up"
	case LinkDown:
		return "link-down"
	case LinkRestart:
		return "link-restart"
	case NodeUp:
		return "node-up"
	case NodeDown:
		return "node-down"
	case NodeRestart:
		return "node-restart"
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// Event is one state change with the time of its evidence: for an up or
// restart, the arrival of the frame; for a down, the moment the detector's
// deadline expired. TimeNs is CLOCK_MONOTONIC in nanoseconds (the clock of
// bpf_ktime_get_ns), so it compares directly with kernel timestamps.
type Event struct {
	Type        EventType
	NodeID      uint32
	Link        uint8 // meaningful for link events
	Incarnation uint64
	Seq         uint64
	TimeNs      int64
	// Gen orders the events of one (node, link): the XDP path may deliver two
	// changes of the same link out of order, and the higher Gen is the newer.
	Gen uint32
}
