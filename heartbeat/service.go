package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config is everything the membership layer needs to run on one node.
type Config struct {
	ClusterID   uint32
	NodeID      uint32
	Incarnation uint64
	Key         Key
	Interval    time.Duration
	MissCount   int
	Port        int
	Receiver    string // auto, xdp or udp
	XDPMode     string // auto, native or generic
	MaxSkew     time.Duration
	RTPriority  int
	// LocalAddrs[i] is this node's address on link i.
	LocalAddrs []netip.Addr
	Peers      []Peer
	Logger     *slog.Logger
}

// Timeout is how long a link may stay silent before it is declared down.
func (c *Config) Timeout() time.Duration { return c.Interval * time.Duration(c.MissCount) }

// receiver is a receive path: XDP or user-space UDP.
type receiver interface {
	Run(ctx context.Context, emit func(Event)) error
	LinkStates() []LinkState
	LastHeard(node uint32) int64
	Stats() Stats
	Note() string
	Close()
}

// Service runs the sender and a receiver on every link and keeps the
// membership view. Events (link and node) go to the channel given to Start.
type Service struct {
	cfg     Config
	log     *slog.Logger
	kind    string
	sender  *Sender
	recv    receiver
	mu      sync.Mutex
	members *Membership
	wg      sync.WaitGroup
	errc    chan error
}

// Start resolves the local links, opens the receive path (XDP where it
// attaches, as configured) and starts sending. Events are delivered to out
// in order; the caller must keep reading it.
func Start(ctx context.Context, cfg Config, out chan<- Event) (*Service, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	links, err := resolveLinks(cfg.LocalAddrs)
	if err != nil {
		return nil, err
	}
	rc := ReceiverConfig{
		Detector:   DetectorConfig{ClusterID: cfg.ClusterID, LocalNode: cfg.NodeID, Key: cfg.Key, Timeout: cfg.Timeout(), MaxSkew: cfg.MaxSkew},
		Port:       cfg.Port,
		Links:      links,
		Peers:      cfg.Peers,
		RTPriority: cfg.RTPriority,
	}
	s := &Service{cfg: cfg, log: log, errc: make(chan error, 2)}
	var peers []uint32
	for _, p := range cfg.Peers {
		peers = append(peers, p.ID)
	}
	s.members = NewMembership(peers, len(links))

	switch cfg.Receiver {
	case "xdp", "auto", "":
		r, err := newXDPReceiver(rc, cfg.XDPMode, log.Warn)
		if err == nil {
			s.recv, s.kind = r, "xdp"
			break
		}
		if cfg.Receiver == "xdp" {
			return nil, fmt.Errorf("XDP receive path: %w (set heartbeat.receiver = \"udp\" or \"auto\" to use the user-space path)", err)
		}
		log.Warn("XDP receive path unavailable, using the user-space UDP receiver", "err", err)
		fallthrough
	case "udp":
		r, err := NewUDPReceiver(rc)
		if err != nil {
			return nil, err
		}
		s.recv, s.kind = r, "udp"
	default:
		return nil, fmt.Errorf("heartbeat receiver %q: use auto, xdp or udp", cfg.Receiver)
	}

	s.sender, err = NewSender(SenderConfig{ClusterID: cfg.ClusterID, NodeID: cfg.NodeID, Incarnation: cfg.Incarnation, Key: cfg.Key,
		Interval: cfg.Interval, Port: cfg.Port, Links: links, Peers: cfg.Peers, RTPriority: cfg.RTPriority})
	if err != nil {
		s.recv.Close()
		return nil, err
	}

	// Receivers emit from their real-time thread; a goroutine applies the
	// events to the membership so that a slow consumer of out never stalls
	// the detector.
	raw := make(chan Event, 4096)
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		if err := s.recv.Run(ctx, func(e Event) { raw <- e }); err != nil {
			s.errc <- err
		}
		close(raw)
	}()
	go func() {
		defer s.wg.Done()
		s.sender.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		for e := range raw {
			s.mu.Lock()
			evs := s.members.Apply(e)
			s.mu.Unlock()
			for _, ev := range evs {
				out <- ev
			}
		}
	}()
	log.Info("heartbeat started", "receiver", s.kind, "interval", cfg.Interval, "miss_count", cfg.MissCount,
		"timeout", cfg.Timeout(), "links", len(links), "peers", len(cfg.Peers), "incarnation", cfg.Incarnation)
	go func() {
		// The threads report after their first moments whether they got
		// real-time priority; tell the operator if not.
		time.Sleep(100 * time.Millisecond)
		if n := s.sender.Stats().Note; n != "" {
			log.Warn("heartbeat sender: " + n)
		}
		if n := s.recv.Note(); n != "" {
			log.Warn("heartbeat receiver: " + n)
		}
	}()
	return s, nil
}

// Wait blocks until the service stopped (its context ended) and releases
// its sockets and BPF objects. It returns the receiver's error, if any.
func (s *Service) Wait() error {
	s.wg.Wait()
	s.sender.Close()
	s.recv.Close()
	select {
	case err := <-s.errc:
		return err
	default:
		return nil
	}
}

// Receiver says which receive path runs: "xdp" or "udp".
func (s *Service) Receiver() string { return s.kind }

// View is a snapshot of the membership for status output.
type View struct {
	Receiver    string        `json:"receiver"`
	Interval    time.Duration `json:"interval_ns"`
	MissCount   int           `json:"miss_count"`
	Incarnation uint64        `json:"incarnation"`
	Peers       []PeerView    `json:"peers"`
	Frames      Stats         `json:"frames"`
	Sender      SenderStats   `json:"sender"`
}

// PeerView is one peer and its links.
type PeerView struct {
	NodeState
	Links []LinkState `json:"links"`
}

// View returns the current membership, link states and counters.
func (s *Service) View() View {
	s.mu.Lock()
	nodes := s.members.Nodes()
	s.mu.Unlock()
	links := s.recv.LinkStates()
	v := View{Receiver: s.kind, Interval: s.cfg.Interval, MissCount: s.cfg.MissCount, Incarnation: s.cfg.Incarnation,
		Frames: s.recv.Stats(), Sender: s.sender.Stats()}
	for _, n := range nodes {
		pv := PeerView{NodeState: n}
		for _, l := range links {
			if l.Node == n.Node {
				pv.Links = append(pv.Links, l)
			}
		}
		v.Peers = append(v.Peers, pv)
	}
	return v
}

// LastHeard is the arrival (CLOCK_MONOTONIC ns) of the latest valid
// heartbeat from node on any link, as the receive path stamped it: the XDP
// program's bpf_ktime_get_ns, or the UDP receiver's clock when it read the
// frame. 0 if none yet, or if node is above HeardMaxID. It takes no lock
// and makes no system call: the fast path's view sender calls it every
// round from its real-time thread (its grant window).
func (s *Service) LastHeard(node uint32) int64 { return s.recv.LastHeard(node) }

// Up returns the ids of the peers that are up.
func (s *Service) Up() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members.Up()
}

// resolveLinks finds the interface that holds each local address.
func resolveLinks(addrs []netip.Addr) ([]LocalLink, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	links := make([]LocalLink, len(addrs))
	for i, want := range addrs {
		for _, ifc := range ifaces {
			as, _ := ifc.Addrs()
			for _, a := range as {
				if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr() == want {
					links[i] = LocalLink{Addr: want, IfIndex: ifc.Index}
				}
			}
		}
		if links[i].IfIndex == 0 {
			return nil, fmt.Errorf("link %d: no interface has this node's address %s; check the node's addresses in the config or the network setup", i, want)
		}
	}
	return links, nil
}

// SentFrames is how many heartbeat frames the sender has sent: a
// watchdog checks it grows.
func (s *Service) SentFrames() uint64 { return s.sender.Stats().Sent }
