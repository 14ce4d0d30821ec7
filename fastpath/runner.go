package fastpath

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/heartbeat"
)

// Holder is what holds the VIPs under the lease (vip.Manager).
type Holder interface {
	// SetLease moves the end of the lease the kernel enforces; 1 means
	// "ended" (no VIP may be answered for or taken).
	SetLease(end int64)
	// ReleaseUngated releases the VIPs that the kernel does not stop
	// answering for at the lease's end (IPv6 ones, whose neighbour
	// solicitations the stack answers; IPv4 ones the XDP responder does
	// not serve); it returns what it released.
	ReleaseUngated() []string
	// ReleaseAll releases every VIP; it returns what it released.
	ReleaseAll() []string
	// Holding reports whether any VIP is held.
	Holding() bool
}

// RunnerConfig configures the I/O of the lease: the view frames' socket,
// sender and receiver.
type RunnerConfig struct {
	Lease       Config
	ClusterID   uint32
	Incarnation uint64
	Key         heartbeat.Key
	Port        int                     // UDP port of view frames on every ring address
	Interval    time.Duration           // I: one round of frames
	RTPriority  int                     // SCHED_FIFO priority of the sender's thread (0: normal)
	Peers       map[uint32][]netip.Addr // every peer's ring addresses
	Up          func() []uint32         // the peers membership reports up (SetUp keeps the sender's copy)
	// GrantWindow (G) and Heard: with both set, a round's view names (grants
	// a lease to) the peers whose latest valid heartbeat (Heard: its
	// CLOCK_MONOTONIC arrival on any link, 0 if none; called every round
	// from the sender's real-time thread, so it must not block) arrived
	// within G before the round (GrantView), rather than the peers that
	// membership reports up (which it does until the detection time D):
	// the others stop granting a silent node G after its last heartbeat,
	// not D, and a take-over comes D - G sooner. Without them, the view is
	// the membership (Up, through SetUp).
	GrantWindow time.Duration
	Heard       func(id uint32) int64
	Holder      Holder
	// Grace: when the lease lapses, the VIPs the kernel keeps silent
	// (Holder.ReleaseUngated releases the others at once) stay configured
	// this long for the lease to revive (State's revival rule) before they
	// are released too; 0 releases everything at once.
	Grace time.Duration
	// OnLeaseEnded is called (on its own goroutine) after VIPs were
	// released because the lease ended, with what was released: the
	// ungated ones when it lapses, the others when the grace ran out.
	OnLeaseEnded func(released []string)
	// OnRevived is called (on its own goroutine) when a lapsed lease
	// revived within the grace, with how long the lapse lasted.
	OnRevived func(lapse time.Duration)
	Log       *slog.Logger
	// Off: the sender starts off, until SetActive(true).
	Off bool
}

// Runner runs the lease of one node.
type Runner struct {
	cfg   RunnerConfig
	fd    int
	mu    sync.Mutex
	st    *State
	wake  chan struct{} // closed and replaced on every frame received
	guard replayGuard
	done  chan struct{}
	kick  int // eventfd: an extra round now (a peer was lost)
	// The sender takes no lock (a lock held by a descheduled goroutine
	// would stall it: priority inversion): it reads the view from up and
	// writes the times it last sent a frame hearing each node to sentHear.
	up       atomic.Uint64
	sentHear [MaxNodeID + 1]atomic.Int64
	lastSent atomic.Int64 // when the latest frame left, stored after sentHear
	// waiting counts the take-overs waiting for the lease logic: the
	// receiver then handles every frame at once; otherwise it lets them
	// gather for a moment (a wake-up per frame costs more than the rest).
	waiting atomic.Int32
	// active: the sender sends (SetActive).
	active atomic.Bool
}

// SetActive starts (true) or stops the view frames this node sends. A
// cluster without floating IPs needs no leases and no take-over guards, and
// the frames cost as much CPU as the heartbeats; the daemon turns them on
// while its CIB has a floating IP configured or active. While they are off,
// the peers' leases get no grants from this node, and this node counts in
// no take-over guard (its latest frame is too old): they only cost
// liveness, and only while the peers' CIBs differ from this one's.
func (r *Runner) SetActive(on bool) {
	if r.active.Swap(on) != on && on {
		r.Kick() // the first round now
	}
}

// SetUp gives the sender the peers membership reports up; call it on every
// membership change.
func (r *Runner) SetUp(ids []uint32) {
	s := SetOf(r.cfg.Lease.Self)
	for _, id := range ids {
		s = s.With(id)
	}
	r.up.Store(uint64(s))
}

// Start opens the socket and runs the sender and the receiver until ctx
// ends.
func Start(ctx context.Context, cfg RunnerConfig) (*Runner, error) {
	st, err := NewState(cfg.Lease)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("fastpath: socket: %w", err)
	}
	for _, o := range [][2]int{{unix.SO_REUSEADDR, 1}, {unix.SO_TIMESTAMPNS, 1}, {unix.SO_PRIORITY, 6}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], o[1]); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("fastpath: setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: cfg.Port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fastpath: bind UDP port %d: %w", cfg.Port, err)
	}
	kick, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fastpath: eventfd: %w", err)
	}
	r := &Runner{cfg: cfg, fd: fd, st: st, wake: make(chan struct{}), guard: replayGuard{}, done: make(chan struct{}), kick: kick}
	r.SetUp(cfg.Up())
	r.active.Store(!cfg.Off)
	cfg.Holder.SetLease(1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.send(ctx) }()
	go func() { defer wg.Done(); r.receive(ctx) }()
	go func() { wg.Wait(); unix.Close(fd); unix.Close(kick); close(r.done) }()
	return r, nil
}

// Done is closed once the runner stopped.
func (r *Runner) Done() <-chan struct{} { return r.done }

func (r *Runner) upSet() Set {
	s := SetOf(r.cfg.Lease.Self)
	for _, id := range r.cfg.Up() {
		s = s.With(id)
	}
	return s
}

// Kick makes the sender send a round now, out of its rhythm: membership
// changed (a peer was lost), and the others should learn it at once rather
// than up to an interval later.
func (r *Runner) Kick() {
	var one [8]byte
	one[0] = 1
	unix.Write(r.kick, one[:])
}

// send sends one round every interval (and one more on each Kick), from a
// locked thread at real-time priority where permitted: a late round delays
// grants, and grants later than the lease length apart end the lease.
func (r *Runner) send(ctx context.Context) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.realtime()
	// One sendmmsg per round, to every peer address.
	buf := make([]byte, FrameLen)
	var names [][]byte
	for _, addrs := range r.cfg.Peers {
		for _, a := range addrs {
			if a.Unmap().Is4() {
				sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
				sa.Port = uint16(r.cfg.Port)<<8 | uint16(r.cfg.Port)>>8
				names = append(names, append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)...))
			}
		}
	}
	iov := unix.Iovec{Base: &buf[0], Len: FrameLen}
	hdrs := make([]unix.Mmsghdr, len(names))
	for i := range hdrs {
		hdrs[i].Hdr.Name = &names[i][0]
		hdrs[i].Hdr.Namelen = uint32(len(names[i]))
		hdrs[i].Hdr.Iov = &iov
		hdrs[i].Hdr.Iovlen = 1
	}
	f := Frame{ClusterID: r.cfg.ClusterID, NodeID: r.cfg.Lease.Self, Incarnation: r.cfg.Incarnation}
	var peers []uint32
	for id := range r.cfg.Lease.Votes {
		if id != r.cfg.Lease.Self {
			peers = append(peers, id)
		}
	}
	window := r.cfg.GrantWindow.Nanoseconds()
	if r.cfg.Heard == nil {
		window = 0
	}
	interval := r.cfg.Interval.Nanoseconds()
	clock := newMonoClock()
	next := clock.now()
	pfd := []unix.PollFd{{Fd: int32(r.kick), Events: unix.POLLIN}}
	var drain [8]byte
	for ctx.Err() == nil {
		if !r.active.Load() {
			// Off: wait for SetActive's kick (a blocking call, which
			// gives the P back; the round's timing does not matter).
			ts := unix.NsecToTimespec(int64(50 * time.Millisecond))
			if n, _ := unix.Ppoll(pfd, &ts, nil); n > 0 {
				unix.Read(r.kick, drain[:])
			}
			next = clock.now()
			continue
		}
		f.Seq++
		if window > 0 {
			// What this node hears now, from the receive path's stamps:
			// the round's grants, and its "not hearing" for the others'
			// take-over guards (sentHear below records what went out).
			f.View = GrantView(r.cfg.Lease.Self, peers, clock.now(), window, r.cfg.Heard)
		} else {
			f.View = Set(r.up.Load())
		}
		MarshalFrame(buf, &f, r.cfg.Key)
		// A message that fails (an unreachable peer) is skipped: the
		// others still go.
		for i := 0; i < len(hdrs); {
			n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&hdrs[i])), uintptr(len(hdrs)-i), unix.MSG_DONTWAIT, 0, 0)
			if e != 0 {
				i++
				continue
			}
			i += max(int(n), 1)
		}
		now := clock.now()
		for id := uint32(1); id <= MaxNodeID; id++ {
			if f.View.Has(id) {
				r.sentHear[id].Store(now)
			}
		}
		r.lastSent.Store(now) // after sentHear: WaitTakeover reads them the other way round
		if now >= next {
			next += interval
			if now > next {
				next = now + interval // late: do not burst to catch up
			}
		}
		if wait := next - clock.now(); wait > 0 {
			// Waiting through RawSyscall keeps this goroutine's P (as the
			// heartbeat sender does): a blocking call would give it up and
			// have to win one back from a busy scheduler at every round.
			ts := unix.NsecToTimespec(wait)
			n, _, _ := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd[0])), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
			if int(n) > 0 {
				unix.Read(r.kick, drain[:])
				continue // kicked: a round now, the rhythm unchanged
			}
		}
	}
}

// realtime gives the calling (locked) thread SCHED_FIFO priority where
// permitted.
func (r *Runner) realtime() {
	if p := r.cfg.RTPriority; p > 0 {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(p)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			r.cfg.Log.Warn("fastpath: no real-time priority: leases may end under CPU load", "err", err)
		}
	}
}

// receive reads frames in arrival order, with their kernel stamps, and
// ends the lease when it runs out.
func (r *Runner) receive(ctx context.Context) {
	// Real-time, one step below the sender: its delays are safe (the lease
	// is judged from kernel stamps) but the kernel's copy of the lease end
	// lags by them, and past that copy the node's own VIPs go unanswered.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r.cfg.RTPriority > 1 {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(r.cfg.RTPriority - 1)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			r.cfg.Log.Warn("fastpath: no real-time priority for the view receiver", "err", err)
		}
	}
	// recvmmsg into buffers made once: no allocation per frame (garbage
	// collections stop every goroutine, the heartbeat sender included).
	const batch = 32
	bufs := make([][FrameLen + 16]byte, batch)
	oobs := make([][64]byte, batch)
	iovs := make([]unix.Iovec, batch)
	hdrs := make([]unix.Mmsghdr, batch)
	for i := range hdrs {
		iovs[i] = unix.Iovec{Base: &bufs[i][0]}
		iovs[i].SetLen(len(bufs[i]))
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.Iovlen = 1
		hdrs[i].Hdr.Control = &oobs[i][0]
	}
	pfd := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
	lastSet := int64(1)
	step := int64(r.cfg.Lease.Lease) / 10
	// lapsedAt: when this loop found the lease lapsed with VIPs kept
	// through the grace (0: not lapsed); graceEnd: when they go.
	var lapsedAt, graceEnd int64
	seenRevivals := 0
	for ctx.Err() == nil {
		r.mu.Lock()
		end, ended := r.st.Lease(heartbeat.MonotonicNow())
		r.mu.Unlock()
		timeout := 20 // ms: also to notice ctx
		switch {
		case lapsedAt != 0:
			if left := time.Duration(graceEnd - heartbeat.MonotonicNow()); left < 20*time.Millisecond {
				timeout = max(0, int((left+time.Millisecond-1)/time.Millisecond))
			}
		case end > 0 && !ended:
			if left := time.Duration(end - heartbeat.MonotonicNow()); left < 20*time.Millisecond {
				timeout = max(0, int((left+time.Millisecond-1)/time.Millisecond))
			}
		case end > 0:
			timeout = 0 // ended: judge it at once
		}
		if _, err := unix.Poll(pfd, timeout); err != nil && !errors.Is(err, unix.EINTR) {
			r.cfg.Log.Error("fastpath: poll", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		// Drain everything queued: the lease is judged only with every
		// frame that arrived before the judgement.
		got := false
		for range 10000 {
			for i := range hdrs {
				hdrs[i].Hdr.SetControllen(len(oobs[i]))
				hdrs[i].Hdr.Flags = 0
			}
			n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&hdrs[0])), batch, unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN {
				break
			}
			if e != 0 {
				continue // a pending socket error: the frames are behind it
			}
			r.mu.Lock()
			for i := 0; i < int(n); i++ {
				at, ok := arrival(oobs[i][:hdrs[i].Hdr.Controllen])
				if !ok {
					continue
				}
				f, err := ParseFrame(bufs[i][:hdrs[i].Len], r.cfg.Key, r.cfg.ClusterID)
				if err != nil || f.NodeID == r.cfg.Lease.Self || !r.guard.fresh(f) {
					continue
				}
				r.st.Received(at, f)
				got = true
			}
			r.mu.Unlock()
			if int(n) < batch {
				break
			}
		}
		now := heartbeat.MonotonicNow()
		r.mu.Lock()
		end, ended = r.st.Judge(now)
		var why string
		if ended && (lapsedAt == 0 || now >= graceEnd) {
			why = r.st.Describe(now)
		}
		revivals, lapse := r.st.Revivals()
		revivable := r.st.Revivable()
		if ended && lapsedAt != 0 && !revivable && why == "" {
			why = r.st.Describe(now)
		}
		if got && r.waiting.Load() > 0 {
			close(r.wake)
			r.wake = make(chan struct{})
		}
		r.mu.Unlock()
		switch {
		case ended && lapsedAt == 0:
			// Lapsed: the kernel stops answering ARP and IPv4 for the VIPs
			// at the end it has (and at once with 1); what it would go on
			// answering for goes now, the rest when the grace runs out
			// unless the lease revives by then.
			r.cfg.Holder.SetLease(1)
			lastSet = 1
			ungated := r.cfg.Holder.ReleaseUngated()
			if len(ungated) > 0 {
				r.cfg.Log.Warn("quorum lease lapsed: floating IPs the kernel would still answer for released", "released", ungated, "state", why)
				if r.cfg.OnLeaseEnded != nil {
					go r.cfg.OnLeaseEnded(ungated)
				}
			}
			if r.cfg.Grace > 0 && revivable && r.cfg.Holder.Holding() {
				lapsedAt, graceEnd = now, now+int64(r.cfg.Grace)
				r.cfg.Log.Warn("quorum lease lapsed: floating IPs unanswered, kept for the lease to revive", "grace", r.cfg.Grace,
					"lease_end", time.Duration(now-end).String()+" ago", "state", why)
				break
			}
			r.endLease("no revival possible (a majority's runs of grants were broken)", why)
		case ended && now >= graceEnd:
			lapsedAt = 0
			r.endLease("the grace ran out", why)
		case ended && !revivable:
			lapsedAt = 0
			r.endLease("no revival possible any more (a majority's runs of grants were broken)", why)
		case !ended && revivals > seenRevivals:
			// Revived (after this loop saw the lapse, or within the
			// frames it just read, if it ran late): the kernel answers
			// again until the new end, and the CIB never learnt of the
			// lapse.
			r.cfg.Holder.SetLease(end)
			lastSet = end
			if r.cfg.Holder.Holding() {
				unanswered := time.Duration(0)
				if lapsedAt != 0 {
					unanswered = time.Duration(now - lapsedAt)
				}
				r.cfg.Log.Info("quorum lease revived: floating IPs answered again", "lapse", lapse, "lapse_seen_for", unanswered,
					"revivals", revivals, "lease_left", time.Duration(end-now))
				if r.cfg.OnRevived != nil {
					go r.cfg.OnRevived(lapse)
				}
			}
			lapsedAt = 0
		case !ended && end > lastSet && (lastSet <= 1 || end-lastSet >= step):
			// The kernel's copy moves in steps of a tenth of a lease: a
			// map update per frame would cost more than the frames.
			r.cfg.Holder.SetLease(end)
			lastSet = end
		}
		seenRevivals = revivals
		ended = ended && lapsedAt == 0
		if r.waiting.Load() == 0 && !ended && !r.cfg.Holder.Holding() {
			// Nothing held, no take-over waiting: let frames gather for
			// 2/5 of a lease (a wake-up per frame costs more than the
			// rest). A holder handles them at once, to keep the kernel's
			// copy of its lease end ahead.
			ts := unix.NsecToTimespec(int64(r.cfg.Lease.Lease) * 2 / 5)
			unix.Nanosleep(&ts, nil)
		}
	}
}

// endLease releases every VIP after the lease lapsed for good, and lets a
// new lease begin from scratch.
func (r *Runner) endLease(reason, why string) {
	r.cfg.Holder.SetLease(1)
	released := r.cfg.Holder.ReleaseAll()
	r.mu.Lock()
	r.st.Restart()
	r.mu.Unlock()
	if len(released) > 0 {
		r.cfg.Log.Warn("quorum lease ended: floating IPs released", "released", released, "why", reason, "state", why)
	}
	if r.cfg.OnLeaseEnded != nil {
		go r.cfg.OnLeaseEnded(released)
	}
}

// Revivals counts the lapsed leases revived since Start.
func (r *Runner) Revivals() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, _ := r.st.Revivals()
	return n
}

// arrival reads the kernel's receive stamp (SCM_TIMESTAMPNS,
// CLOCK_REALTIME) from a control buffer without allocating, and converts it
// to CLOCK_MONOTONIC.
func arrival(oob []byte) (int64, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(16) {
			d := oob[unix.CmsgLen(0):]
			ts := int64(binary.NativeEndian.Uint64(d[0:]))*1e9 + int64(binary.NativeEndian.Uint64(d[8:]))
			var real, mono unix.Timespec
			unix.ClockGettime(unix.CLOCK_REALTIME, &real)
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
			return ts - (real.Nano() - mono.Nano()), true
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return 0, false
}

// LeaseValid reports whether this node holds a lease now.
func (r *Runner) LeaseValid() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	end, ended := r.st.Lease(heartbeat.MonotonicNow())
	return end > 0 && !ended
}

// WaitTakeover blocks until this node may take over lost's resources (see
// State.TakeAt), lost still down and this node's own lease valid; it
// returns how long it waited, or an error when ctx ends first or lost comes
// back.
func (r *Runner) WaitTakeover(ctx context.Context, lost uint32) (time.Duration, error) {
	start := time.Now()
	r.waiting.Add(1)
	defer r.waiting.Add(-1)
	for {
		up := r.upSet()
		if up.Has(lost) {
			return time.Since(start), fmt.Errorf("node %d is up again", lost)
		}
		now := heartbeat.MonotonicNow()
		r.mu.Lock()
		// The latest round first, then what went out hearing lost: the
		// sender stores them the other way round, so a round that heard
		// lost cannot pass for one that did not (TakeAt).
		r.st.NoteRound(r.lastSent.Load())
		if lost <= MaxNodeID {
			r.st.NoteSent(lost, r.sentHear[lost].Load())
		}
		at, ok := r.st.TakeAt(lost, up)
		end, ended := r.st.Lease(now)
		wake := r.wake
		r.mu.Unlock()
		if ok && at <= now && end > now && !ended {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("no quorum of nodes confirmed the loss of node %d in time (lease valid: %v)", lost, end > now && !ended)
		case <-wake:
		case <-time.After(time.Millisecond):
		}
	}
}

// monoClock reads CLOCK_MONOTONIC without a system call: Go's monotonic
// clock is CLOCK_MONOTONIC with another origin.
type monoClock struct {
	base  int64
	start time.Time
}

func newMonoClock() monoClock {
	start := time.Now()
	return monoClock{base: heartbeat.MonotonicNow(), start: start}
}

func (c monoClock) now() int64 { return c.base + int64(time.Since(c.start)) }
