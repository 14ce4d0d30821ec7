package heartbeat

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SenderConfig says what the sender sends, where and how often.
type SenderConfig struct {
	ClusterID   uint32
	NodeID      uint32
	Incarnation uint64
	Key         Key
	Interval    time.Duration
	Port        int
	// Links[i] is this node's link i: its local address and interface.
	Links []LocalLink
	// Peers lists, per peer, its address on each link (same order as Links).
	Peers      []Peer
	RTPriority int
}

// LocalLink is this node's end of one heartbeat link.
type LocalLink struct {
	Addr    netip.Addr
	IfIndex int
}

// Peer is another cluster node and its address on each link.
type Peer struct {
	ID    uint32
	Addrs []netip.Addr
}

// Sender sends a heartbeat on every link to every peer each interval, with
// one socket and one sendmmsg call per link and tick. Each message carries
// the link's interface in IP_PKTINFO, so a heartbeat leaves through its own
// link whatever the routing table says: a dead link cannot be masked by
// traffic rerouted over another. Separate sockets matter: frames waiting for
// a dead link's neighbour resolution hold send-buffer space, and on a shared
// socket they would soon block the frames of the healthy links.
type Sender struct {
	cfg   SenderConfig
	fds   []int // per link (-1 if unused)
	batch []*mmsgBatch
	bufs  [][]byte // one frame buffer per link
	frame []Frame
	sent  atomic.Uint64
	late  atomic.Uint64
	// maxLate is the longest a wake-up came after its deadline, in ns: the
	// scheduling latency the failure detector's timeout must absorb.
	maxLate atomic.Int64
	errs    atomic.Uint64
	note    atomic.Value // string
}

type mmsgBatch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][]byte
	ctrl  [][]byte
	link  []int
}

// NewSender opens the sockets and builds every message once, so that a tick
// only refreshes sequence, time and MAC.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("heartbeat interval must be positive")
	}
	s := &Sender{cfg: cfg, fds: make([]int, len(cfg.Links)), batch: make([]*mmsgBatch, len(cfg.Links))}
	s.bufs = make([][]byte, len(cfg.Links))
	s.frame = make([]Frame, len(cfg.Links))
	for i, l := range cfg.Links {
		s.fds[i] = -1
		s.bufs[i] = make([]byte, FrameLen)
		s.frame[i] = Frame{Link: uint8(i), ClusterID: cfg.ClusterID, NodeID: cfg.NodeID, Incarnation: cfg.Incarnation}
		s.batch[i] = &mmsgBatch{}
		domain := unix.AF_INET
		if !l.Addr.Is4() {
			domain = unix.AF_INET6
		}
		fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("heartbeat send socket for link %d: %w", i, err)
		}
		s.fds[i] = fd
		// Heartbeats should win against bulk traffic in any qdisc.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY, 6)
		if domain == unix.AF_INET {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, 0xb8) // DSCP EF
		} else {
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xb8)
		}
	}
	for _, p := range cfg.Peers {
		if len(p.Addrs) != len(cfg.Links) {
			s.Close()
			return nil, fmt.Errorf("peer %d has %d link addresses, this node has %d links", p.ID, len(p.Addrs), len(cfg.Links))
		}
		for li, a := range p.Addrs {
			if a.Is4() != cfg.Links[li].Addr.Is4() {
				s.Close()
				return nil, fmt.Errorf("link %d: peer %d's address %s is not of the same IP version as this node's %s", li, p.ID, a, cfg.Links[li].Addr)
			}
			s.batch[li].add(a, cfg.Port, cfg.Links[li], li, s.bufs[li])
		}
	}
	for _, b := range s.batch {
		b.finish()
	}
	return s, nil
}

func (b *mmsgBatch) add(dst netip.Addr, port int, local LocalLink, link int, buf []byte) {
	var name, ctrl []byte
	if dst.Is4() {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		sa.Port = htons(uint16(port))
		name = unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
		name = append([]byte(nil), name...)
		ctrl = make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)]))
		pi.Ifindex = int32(local.IfIndex)
		if local.Addr.Is4() {
			pi.Spec_dst = local.Addr.As4()
		}
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		sa.Port = htons(uint16(port))
		name = append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)...)
		ctrl = make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)]))
		pi.Ifindex = uint32(local.IfIndex)
		if local.Addr.Is6() {
			pi.Addr = local.Addr.As16()
		}
	}
	b.names = append(b.names, name)
	b.ctrl = append(b.ctrl, ctrl)
	b.link = append(b.link, link)
	b.iovs = append(b.iovs, unix.Iovec{Base: &buf[0], Len: FrameLen})
}

func (b *mmsgBatch) finish() {
	b.hdrs = make([]unix.Mmsghdr, len(b.iovs))
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		h.Name = &b.names[i][0]
		h.Namelen = uint32(len(b.names[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
		h.Control = &b.ctrl[i][0]
		h.SetControllen(len(b.ctrl[i]))
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Run sends until ctx ends. It takes its own OS thread at real-time priority
// and sleeps to absolute deadlines, so a late wake-up does not shift later
// ticks. If it wakes after more than a whole interval it does not send a
// burst to catch up: it counts the tick as late and resumes the rhythm.
func (s *Sender) Run(ctx context.Context) error {
	s.note.Store(lockRealtime(s.cfg.RTPriority))
	interval := s.cfg.Interval.Nanoseconds()
	clock := newMonoClock()
	next := clock.now()
	var seq uint64
	for ctx.Err() == nil {
		seq++
		now := time.Now().UnixNano()
		for i := range s.bufs {
			s.frame[i].Seq = seq
			s.frame[i].SentNs = now
			MarshalFrame(s.bufs[i], &s.frame[i], s.cfg.Key)
		}
		for i, b := range s.batch {
			s.sendBatch(s.fds[i], b.hdrs)
		}
		next += interval
		if cur := clock.now(); cur > next {
			s.late.Add(1)
			next = cur + interval - (cur-next)%interval
		}
		sleepUntil(next, clock.now())
		if late := clock.now() - next; late > s.maxLate.Load() {
			s.maxLate.Store(late) // single writer: no compare-and-swap needed
		}
	}
	return nil
}

// SenderStats are the sender's counters.
type SenderStats struct {
	Sent      uint64 `json:"sent"`
	LateTicks uint64 `json:"late_ticks"`
	// MaxWakeLateUs is the worst wake-up delay seen since start, in µs.
	MaxWakeLateUs int64  `json:"max_wake_late_us"`
	SendErrors    uint64 `json:"send_errors"`
	Note          string `json:"note,omitempty"`
}

// Stats reads the counters.
func (s *Sender) Stats() SenderStats {
	note, _ := s.note.Load().(string)
	return SenderStats{Sent: s.sent.Load(), LateTicks: s.late.Load(), MaxWakeLateUs: s.maxLate.Load() / 1000, SendErrors: s.errs.Load(), Note: note}
}

// Close closes the sockets; call it after Run returned.
func (s *Sender) Close() {
	for i, fd := range s.fds {
		if fd >= 0 {
			unix.Close(fd)
			s.fds[i] = -1
		}
	}
}

// rawSleepMax is the longest sleep the sender takes without telling the Go
// scheduler. A blocking system call normally hands the goroutine's P over
// and takes it back afterwards; at a 1 ms interval that costs a wake-up of
// sysmon and of another thread per tick, more CPU than the heartbeat itself
// (measured: 4.3% of a core against 1.5% for the bare sleep loop). Sleeping
// through RawSyscall keeps the P; the price is that a stop-the-world pause
// may wait for the sleep to end, so only short sleeps are taken this way.
// The same holds for sendmmsg, which never blocks (MSG_DONTWAIT).
const rawSleepMax = 2 * time.Millisecond

// sleepUntil sleeps to the absolute CLOCK_MONOTONIC time next.
func sleepUntil(next, now int64) {
	req := unix.NsecToTimespec(next)
	if next-now <= rawSleepMax.Nanoseconds() {
		for {
			_, _, e := unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME,
				uintptr(unsafe.Pointer(&req)), 0, 0, 0)
			if e != unix.EINTR {
				return
			}
		}
	}
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &req, nil) == unix.EINTR {
	}
}

// sendBatch sends every message of a batch. sendmmsg stops at the first
// message that fails (an interface without carrier, a full socket buffer):
// that one is counted as an error and skipped, so that one dead link never
// silences the others.
func (s *Sender) sendBatch(fd int, hdrs []unix.Mmsghdr) {
	for i := 0; i < len(hdrs); {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[i])), uintptr(len(hdrs)-i), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 {
			s.errs.Add(1)
			i++
			continue
		}
		s.sent.Add(uint64(n))
		i += max(int(n), 1)
	}
}
