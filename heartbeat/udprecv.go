package heartbeat

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// UDPReceiver is the user-space receive path: plain UDP sockets and the
// Detector, on a real-time OS thread that sleeps in ppoll until the next
// frame or the next detector deadline, whichever comes first. It is used
// where XDP cannot attach and gives the same events as the XDP path.
type UDPReceiver struct {
	mu     sync.Mutex // guards det against status readers
	det    *Detector
	fds    []int
	wake   int         // eventfd that ends Run
	ifLink map[int]int // ingress ifindex -> link index
	prio   int
	note   atomic.Value // string: why real-time priority was not had, if so
}

// ReceiverConfig is what both receive paths need.
type ReceiverConfig struct {
	Detector   DetectorConfig
	Port       int
	Links      []LocalLink
	Peers      []Peer
	RTPriority int
}

// NewUDPReceiver binds the heartbeat port for every address family in use.
func NewUDPReceiver(cfg ReceiverConfig) (*UDPReceiver, error) {
	r := &UDPReceiver{det: NewDetector(cfg.Detector), ifLink: make(map[int]int), prio: cfg.RTPriority, wake: -1}
	for _, p := range cfg.Peers {
		for l := range p.Addrs {
			r.det.AddPeer(p.ID, uint8(l))
		}
	}
	has4, has6 := false, false
	for i, l := range cfg.Links {
		r.ifLink[l.IfIndex] = i
		if l.Addr.Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	var err error
	if has4 {
		err = r.listen(unix.AF_INET, cfg.Port)
	}
	if err == nil && has6 {
		err = r.listen(unix.AF_INET6, cfg.Port)
	}
	if err == nil {
		r.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *UDPReceiver) listen(domain, port int) error {
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("heartbeat receive socket: %w", err)
	}
	r.fds = append(r.fds, fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	var sa unix.Sockaddr
	if domain == unix.AF_INET {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		sa = &unix.SockaddrInet4{Port: port}
	} else {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		sa = &unix.SockaddrInet6{Port: port}
	}
	if err != nil {
		return fmt.Errorf("heartbeat receive socket options: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind heartbeat port %d: %w (is another tachy daemon running in this network namespace?)", port, err)
	}
	return nil
}

// Run receives until ctx ends or Close is called, passing every event to emit.
func (r *UDPReceiver) Run(ctx context.Context, emit func(Event)) error {
	r.note.Store(lockRealtime(r.prio))
	defer afterDone(ctx, func() { r.signalStop() })()
	clock := newMonoClock()
	pfds := make([]unix.PollFd, 0, len(r.fds)+1)
	for _, fd := range r.fds {
		pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	pfds = append(pfds, unix.PollFd{Fd: int32(r.wake), Events: unix.POLLIN})
	buf := make([]byte, 256)
	oob := make([]byte, 128)
	for {
		var timeout *unix.Timespec
		r.mu.Lock()
		dl, ok := r.det.NextDeadline()
		r.mu.Unlock()
		if ok {
			wait := max(dl-clock.now(), 0)
			ts := unix.NsecToTimespec(wait)
			timeout = &ts
		}
		if _, err := unix.Ppoll(pfds, timeout, nil); err != nil && err != unix.EINTR {
			return fmt.Errorf("heartbeat receiver poll: %w", err)
		}
		if pfds[len(pfds)-1].Revents != 0 {
			return nil
		}
		for i := range r.fds {
			if pfds[i].Revents != 0 {
				r.drain(r.fds[i], buf, oob, clock, emit)
			}
		}
		r.mu.Lock()
		r.det.Expire(clock.now(), emit)
		r.mu.Unlock()
	}
}

func (r *UDPReceiver) drain(fd int, buf, oob []byte, clock monoClock, emit func(Event)) {
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		if err != nil {
			return
		}
		link := -1
		if l, ok := r.ifLink[pktinfoIfindex(oob[:oobn])]; ok {
			link = l
		}
		r.mu.Lock()
		ev, changed, _ := r.det.Receive(buf[:n], link, clock.now(), time.Now().UnixNano())
		r.mu.Unlock()
		if changed {
			emit(ev)
		}
	}
}

// pktinfoIfindex finds the ingress interface in IP_PKTINFO or IPV6_PKTINFO
// control data without allocating; 0 if absent.
func pktinfoIfindex(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := unix.Cmsghdr{Len: binary.NativeEndian.Uint64(oob[0:]), Level: int32(binary.NativeEndian.Uint32(oob[8:])), Type: int32(binary.NativeEndian.Uint32(oob[12:]))}
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0
		}
		data := oob[unix.SizeofCmsghdr:h.Len]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= 4:
			return int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 20:
			return int(binary.NativeEndian.Uint32(data[16:]))
		}
		oob = oob[unix.CmsgSpace(int(h.Len)-unix.SizeofCmsghdr):]
	}
	return 0
}

func (r *UDPReceiver) signalStop() {
	if r.wake >= 0 {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(r.wake, one[:])
	}
}

// Note says why the receiver thread runs without real-time priority, if it does.
func (r *UDPReceiver) Note() string {
	n, _ := r.note.Load().(string)
	return n
}

// LinkStates returns every peer link's state.
func (r *UDPReceiver) LinkStates() []LinkState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.det.LinkStates()
}

// LastHeard is the arrival of the latest counted frame from node on any
// link (Detector.LastHeard), read without a lock.
func (r *UDPReceiver) LastHeard(node uint32) int64 { return r.det.LastHeard(node) }

// Stats returns the frame counters.
func (r *UDPReceiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.det.Stats()
}

// Close releases the sockets; call it after Run returned.
func (r *UDPReceiver) Close() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
	if r.wake >= 0 {
		unix.Close(r.wake)
		r.wake = -1
	}
}
