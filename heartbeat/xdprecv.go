package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/tachy-ha/tachy/bpf"
)

// xdpReceiver is the kernel receive path: the XDP program of package bpf
// checks every frame and runs each link's deadline as a BPF timer, so user
// space wakes only when a link changes state. This goroutine just drains the
// ring buffer.
type xdpReceiver struct {
	hb       *bpf.Heartbeat
	attached []io.Closer
	prio     int
	note     atomic.Value // string
	lost     uint64       // EventsLost already reconciled
	timerErr uint64       // TimerErrors already reported
	warn     func(msg string, args ...any)
}

// newXDPReceiver loads the program, registers the links and peers and
// attaches to every link's interface. mode is auto, native or generic.
func newXDPReceiver(rc ReceiverConfig, mode string, warn func(string, ...any)) (receiver, error) {
	var am bpf.AttachMode
	switch mode {
	case "", "auto":
		am = bpf.AttachAuto
	case "native":
		am = bpf.AttachNative
	case "generic":
		am = bpf.AttachGeneric
	default:
		return nil, fmt.Errorf("heartbeat.xdp_mode %q: use auto, native or generic", mode)
	}
	if rc.Port <= 0 || rc.Port > 65535 {
		return nil, fmt.Errorf("heartbeat port %d out of range 1-65535", rc.Port)
	}
	hb, err := bpf.LoadHeartbeat(bpf.HeartbeatConfig{
		Key0: rc.Detector.Key.K0, Key1: rc.Detector.Key.K1,
		ClusterID: rc.Detector.ClusterID, LocalNodeID: rc.Detector.LocalNode,
		Port: uint16(rc.Port), Timeout: rc.Detector.Timeout, MaxSkew: rc.Detector.MaxSkew,
	})
	if err != nil {
		return nil, err
	}
	r := &xdpReceiver{hb: hb, prio: rc.RTPriority, warn: warn}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	for _, p := range rc.Peers {
		for l := range p.Addrs {
			if err := hb.AddPeer(p.ID, uint8(l)); err != nil {
				return nil, err
			}
		}
	}
	seen := map[int]bool{}
	for i, l := range rc.Links {
		if seen[l.IfIndex] {
			// Two links on one interface cannot be told apart by ingress;
			// the config check warns about it, the UDP path copes.
			return nil, fmt.Errorf("links share interface %d: the XDP receiver needs one interface per link", l.IfIndex)
		}
		seen[l.IfIndex] = true
		if err := hb.AddInterface(l.IfIndex, uint8(i)); err != nil {
			return nil, err
		}
		a, err := hb.Attach(l.IfIndex, am)
		if err != nil {
			return nil, err
		}
		r.attached = append(r.attached, a)
	}
	ok = true
	return r, nil
}

// Run forwards the kernel's link events until ctx ends. Once a second it
// refreshes the program's realtime offset and checks the kernel's error
// counters; if the ring buffer ever overflowed, it re-reads every link's
// state so that no change stays unreported (Membership discards what it
// already had by the events' generation numbers).
func (r *xdpReceiver) Run(ctx context.Context, emit func(Event)) error {
	r.note.Store(lockRealtime(r.prio))
	defer afterDone(ctx, func() { r.hb.SetDeadline(time.Unix(1, 0)) })()
	next := time.Now().Add(time.Second)
	for {
		r.hb.SetDeadline(next)
		e, err := r.hb.ReadEvent()
		switch {
		case err == nil:
			emit(fromKernel(e))
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			if ctx.Err() != nil {
				return nil
			}
		case errors.Is(err, os.ErrClosed):
			return nil
		default:
			return fmt.Errorf("xdp heartbeat: read events: %w", err)
		}
		next = time.Now().Add(time.Second)
		_ = r.hb.SetRealOffset()
		r.checkKernel(emit)
	}
}

func fromKernel(e bpf.Event) Event {
	return Event{Type: EventType(e.Type), NodeID: e.NodeID, Link: e.Link, Incarnation: e.Incarnation,
		Seq: e.Seq, TimeNs: e.TimeNs, Gen: e.Gen}
}

func (r *xdpReceiver) checkKernel(emit func(Event)) {
	st, err := r.hb.Stats()
	if err != nil {
		return
	}
	if st.TimerErrors > r.timerErr {
		r.warn("xdp heartbeat: the kernel could not arm link deadlines", "count", st.TimerErrors-r.timerErr)
		r.timerErr = st.TimerErrors
	}
	if st.EventsLost <= r.lost {
		return
	}
	r.warn("xdp heartbeat: ring buffer overflowed; re-reading link states", "lost", st.EventsLost-r.lost)
	r.lost = st.EventsLost
	peers, err := r.hb.Peers()
	if err != nil {
		return
	}
	for _, p := range peers {
		t := LinkUp
		switch p.State {
		case bpf.PeerUnknown:
			continue
		case bpf.PeerDown:
			t = LinkDown
		}
		emit(Event{Type: t, NodeID: p.NodeID, Link: p.Link, Incarnation: p.Incarnation, Seq: p.Seq,
			TimeNs: MonotonicNow(), Gen: p.Gen})
	}
}

// The kernel's heard map and the Detector's cover the same node ids.
var _ = [1]struct{}{}[bpf.HeardMaxID-HeardMaxID]

// LastHeard reads the kernel's heard map (memory-mapped: no system call).
func (r *xdpReceiver) LastHeard(node uint32) int64 { return r.hb.LastHeard(node) }

func (r *xdpReceiver) Note() string {
	n, _ := r.note.Load().(string)
	return n
}

func (r *xdpReceiver) LinkStates() []LinkState {
	peers, err := r.hb.Peers()
	if err != nil {
		return nil
	}
	out := make([]LinkState, 0, len(peers))
	for _, p := range peers {
		name := "unknown"
		if int(p.State) < len(stateNames) {
			name = stateNames[p.State]
		}
		out = append(out, LinkState{Node: p.NodeID, Link: p.Link, State: name, Incarnation: p.Incarnation,
			Seq: p.Seq, LastSeenNs: p.LastSeenNs, Frames: p.Frames})
	}
	sortLinkStates(out)
	return out
}

func (r *xdpReceiver) Stats() Stats {
	s, err := r.hb.Stats()
	if err != nil {
		return Stats{}
	}
	return Stats{Accepted: s.Accepted, BadMAC: s.BadMAC, Replay: s.Replay, Stale: s.Stale, UnknownPeer: s.UnknownPeer,
		WrongCluster: s.WrongCluster, Malformed: s.Malformed, WrongLink: s.WrongLink, Self: s.Self}
}

// Close detaches from every interface first, so that no frame reaches a
// program whose maps are going away, then unloads.
func (r *xdpReceiver) Close() {
	for _, a := range r.attached {
		_ = a.Close()
	}
	r.attached = nil
	_ = r.hb.Close()
}
