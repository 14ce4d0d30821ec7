package heartbeat

import (
	"errors"
	"sync/atomic"
	"time"
)

// Detector is the failure detector of the user-space receive path, as a pure
// state machine: frames and the clock go in, link events come out. It applies
// exactly the rules of the XDP program in bpf/heartbeat.c, so that both
// receive paths report the same events for the same traffic:
//
//   - a frame counts only if it parses, authenticates under the cluster key,
//     belongs to this cluster, comes from a configured peer (never from this
//     node) and arrives on the link it names;
//   - it must be fresh (its send time within MaxSkew of this node's clock)
//     and newer than anything seen from that peer on that link: a higher
//     incarnation, or the same incarnation with a higher sequence. A replayed
//     or forged frame therefore never makes a dead node look alive;
//   - a link is down when no counted frame arrived for Timeout.
//
// Times are CLOCK_MONOTONIC nanoseconds (mono) and CLOCK_REALTIME
// nanoseconds (real, for the freshness check only).
type Detector struct {
	cfg   DetectorConfig
	peers map[PeerLink]*linkState
	stats Stats
	// heard[n]: the latest counted frame's arrival from node n on any
	// link (the XDP program's heard map). Atomic: LastHeard reads it
	// without the lock that serialises the rest.
	heard [HeardMaxID + 1]atomic.Int64
}

// HeardMaxID is the largest node id whose latest arrival LastHeard knows
// (the fast path runs with node ids up to 64 only).
const HeardMaxID = 64

// DetectorConfig holds what the detector checks frames against.
type DetectorConfig struct {
	ClusterID uint32
	LocalNode uint32
	Key       Key
	Timeout   time.Duration // interval * miss count
	MaxSkew   time.Duration // 0 disables the freshness check
}

// PeerLink names one peer on one link.
type PeerLink struct {
	Node uint32
	Link uint8
}

// LinkState is what a receiver knows of one peer on one link.
type LinkState struct {
	Node        uint32 `json:"node"`
	Link        uint8  `json:"link"`
	State       string `json:"state"` // unknown, up or down
	Incarnation uint64 `json:"incarnation"`
	Seq         uint64 `json:"seq"`
	LastSeenNs  int64  `json:"last_seen_ns"` // CLOCK_MONOTONIC; 0 if never
	Frames      uint64 `json:"frames"`
}

const (
	stateUnknown = 0
	stateUp      = 1
	stateDown    = 2
)

var stateNames = [...]string{"unknown", "up", "down"}

type linkState struct {
	state    uint8
	inc, seq uint64
	lastSeen int64
	gen      uint32
	frames   uint64
}

// Stats counts frames by verdict; the XDP program keeps the same counters.
type Stats struct {
	Accepted     uint64 `json:"accepted"`
	BadMAC       uint64 `json:"bad_mac"`
	Replay       uint64 `json:"replay"`
	Stale        uint64 `json:"stale"`
	UnknownPeer  uint64 `json:"unknown_peer"`
	WrongCluster uint64 `json:"wrong_cluster"`
	Malformed    uint64 `json:"malformed"`
	WrongLink    uint64 `json:"wrong_link"`
	Self         uint64 `json:"self"`
}

// NewDetector makes a detector with no peers; add them with AddPeer.
func NewDetector(cfg DetectorConfig) *Detector {
	return &Detector{cfg: cfg, peers: make(map[PeerLink]*linkState)}
}

// AddPeer makes frames from node on link count.
func (d *Detector) AddPeer(node uint32, link uint8) {
	if _, ok := d.peers[PeerLink{node, link}]; !ok {
		d.peers[PeerLink{node, link}] = &linkState{}
	}
}

// Verdicts of Receive, besides the ParseFrame errors.
var (
	ErrSelf        = errors.New("heartbeat frame carries this node's own id")
	ErrWrongLink   = errors.New("heartbeat frame arrived on another link than it names")
	ErrUnknownPeer = errors.New("heartbeat frame from a node that is not configured")
	ErrStale       = errors.New("heartbeat frame too old or from the future (clock skew or replay)")
	ErrReplay      = errors.New("heartbeat frame not newer than the last one (replay)")
)

// Receive judges one frame that arrived on link ingress (-1 if the link is
// unknown) at the given times. It returns the event the frame causes, if any.
func (d *Detector) Receive(b []byte, ingress int, mono, real int64) (Event, bool, error) {
	f, err := ParseFrame(b, d.cfg.Key, d.cfg.ClusterID)
	switch {
	case errors.Is(err, ErrBadMAC):
		d.stats.BadMAC++
	case errors.Is(err, ErrWrongCluster):
		d.stats.WrongCluster++
	case err != nil:
		d.stats.Malformed++
	case f.NodeID == d.cfg.LocalNode:
		d.stats.Self++
		err = ErrSelf
	case ingress < 0 || int(f.Link) != ingress:
		d.stats.WrongLink++
		err = ErrWrongLink
	}
	if err != nil {
		return Event{}, false, err
	}
	st, ok := d.peers[PeerLink{f.NodeID, f.Link}]
	if !ok {
		d.stats.UnknownPeer++
		return Event{}, false, ErrUnknownPeer
	}
	if skew := d.cfg.MaxSkew.Nanoseconds(); skew != 0 {
		if diff := f.SentNs - real; diff > skew || diff < -skew {
			d.stats.Stale++
			return Event{}, false, ErrStale
		}
	}
	if !(f.Incarnation > st.inc || (f.Incarnation == st.inc && f.Seq > st.seq)) {
		d.stats.Replay++
		return Event{}, false, ErrReplay
	}
	d.stats.Accepted++
	restarted := f.Incarnation > st.inc && st.inc != 0
	st.inc, st.seq, st.lastSeen = f.Incarnation, f.Seq, mono
	st.frames++
	if f.NodeID <= HeardMaxID && mono > d.heard[f.NodeID].Load() {
		d.heard[f.NodeID].Store(mono)
	}
	var t EventType
	switch {
	case st.state != stateUp:
		t = LinkUp
		st.state = stateUp
	case restarted:
		t = LinkRestart
	default:
		return Event{}, false, nil
	}
	st.gen++
	return Event{Type: t, NodeID: f.NodeID, Link: f.Link, Incarnation: f.Incarnation, Seq: f.Seq, TimeNs: mono, Gen: st.gen}, true, nil
}

// Expire reports every link whose deadline has passed at mono as down. The
// event's time is mono, when the receiver noticed, not the deadline: a
// receiver that wakes late must show up in the measured detection time.
func (d *Detector) Expire(mono int64, emit func(Event)) {
	timeout := d.cfg.Timeout.Nanoseconds()
	for pl, st := range d.peers {
		if st.state != stateUp || mono-st.lastSeen < timeout {
			continue
		}
		st.state = stateDown
		st.gen++
		emit(Event{Type: LinkDown, NodeID: pl.Node, Link: pl.Link, Incarnation: st.inc, Seq: st.seq, TimeNs: mono, Gen: st.gen})
	}
}

// NextDeadline is the earliest time at which Expire may report something.
func (d *Detector) NextDeadline() (int64, bool) {
	var next int64
	found := false
	for _, st := range d.peers {
		if st.state != stateUp {
			continue
		}
		if dl := st.lastSeen + d.cfg.Timeout.Nanoseconds(); !found || dl < next {
			next, found = dl, true
		}
	}
	return next, found
}

// Stats returns the frame counters.
func (d *Detector) Stats() Stats { return d.stats }

// LastHeard is the arrival (mono, as given to Receive) of the latest counted
// frame from node on any link; 0 if none, or if node is above HeardMaxID.
// Unlike the other methods it may run concurrently with Receive.
func (d *Detector) LastHeard(node uint32) int64 {
	if node > HeardMaxID {
		return 0
	}
	return d.heard[node].Load()
}

// LinkStates returns the state of every configured peer link.
func (d *Detector) LinkStates() []LinkState {
	out := make([]LinkState, 0, len(d.peers))
	for pl, st := range d.peers {
		out = append(out, LinkState{Node: pl.Node, Link: pl.Link, State: stateNames[st.state], Incarnation: st.inc, Seq: st.seq, LastSeenNs: st.lastSeen, Frames: st.frames})
	}
	sortLinkStates(out)
	return out
}
