//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// HeartbeatConfig is what the XDP heartbeat receiver checks frames against.
// It mirrors heartbeat.DetectorConfig, so that both receive paths judge the
// same frames the same way.
type HeartbeatConfig struct {
	Key0, Key1  uint64 // SipHash key (heartbeat.Key)
	ClusterID   uint32
	LocalNodeID uint32 // frames carrying this id are dropped as "self"
	Port        uint16 // UDP destination port of heartbeats
	Timeout     time.Duration
	MaxSkew     time.Duration // 0 disables the freshness check
}

// Event types, the same values as heartbeat.EventType.
const (
	EventLinkUp      uint8 = 1
	EventLinkDown    uint8 = 2
	EventLinkRestart uint8 = 3
)

// Event is one link state change reported by the kernel.
type Event struct {
	// TimeNs is CLOCK_MONOTONIC: the frame's arrival for up and restart,
	// the moment the deadline expired for down.
	TimeNs      int64
	Incarnation uint64
	Seq         uint64
	NodeID      uint32
	// Gen orders the events of one (node, link): the timer and the XDP
	// path may put two of them into the ring buffer out of order.
	Gen  uint32
	Link uint8
	Type uint8
}

// Peer link states, as in heartbeat.LinkState.State.
const (
	PeerUnknown uint8 = 0
	PeerUp      uint8 = 1
	PeerDown    uint8 = 2
)

// PeerState is the kernel's record of one peer on one link.
type PeerState struct {
	NodeID      uint32
	Link        uint8
	State       uint8 // PeerUnknown, PeerUp or PeerDown
	Incarnation uint64
	Seq         uint64
	LastSeenNs  int64 // CLOCK_MONOTONIC of the last counted frame; 0 if never
	Frames      uint64
	Gen         uint32
}

// Stats counts heartbeat frames by verdict, summed over CPUs. The first nine
// fields are heartbeat.Stats; the last two count failures of the kernel side.
type Stats struct {
	Accepted     uint64
	BadMAC       uint64
	Replay       uint64
	Stale        uint64
	UnknownPeer  uint64
	WrongCluster uint64
	Malformed    uint64
	WrongLink    uint64
	Self         uint64
	EventsLost   uint64 // ring buffer full: a state change was not reported
	TimerErrors  uint64 // a link's deadline could not be armed
}

// numStats is how many counters of the `stats` map (heartbeat.c) Stats reads.
const numStats = 11

// ReadEvent decodes struct hb_event by hand, without reflection. These fail
// to compile if the generated layout ever differs from what it assumes.
var (
	_ = [1]struct{}{}[unsafe.Sizeof(heartbeatHbEvent{})-40]
	_ = [1]struct{}{}[unsafe.Offsetof(heartbeatHbEvent{}.NodeId)-24]
	_ = [1]struct{}{}[unsafe.Offsetof(heartbeatHbEvent{}.Gen)-28]
	_ = [1]struct{}{}[unsafe.Offsetof(heartbeatHbEvent{}.Link)-32]
	_ = [1]struct{}{}[unsafe.Offsetof(heartbeatHbEvent{}.Type)-33]
)

// AttachMode says how to hook the program into an interface.
type AttachMode int

const (
	// AttachAuto tries the driver's native XDP first, then generic XDP.
	AttachAuto AttachMode = iota
	// AttachNative runs in the driver, before any socket buffer exists.
	AttachNative
	// AttachGeneric runs after the socket buffer is built; works everywhere.
	AttachGeneric
)

func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachNative:
		return "native"
	case AttachGeneric:
		return "generic"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// Errors from LoadHeartbeat; both are wrapped together with the cause.
var (
	ErrNotPermitted = errors.New("loading the XDP heartbeat receiver needs root (or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)")
	ErrNotSupported = errors.New("this kernel cannot run the XDP heartbeat receiver (it needs Linux 6.1 or later with BTF: ring buffer, bpf_timer, bpf_spin_lock); use the user-space receiver")
)

// Heartbeat is the loaded XDP heartbeat receiver: program, maps and the ring
// buffer reader. Methods are safe for concurrent use; ReadEvent should have
// one caller at a time.
type Heartbeat struct {
	objs heartbeatObjects
	rd   *ringbuf.Reader

	mu     sync.Mutex // guards cfgMem against Close
	cfgMem []byte     // the config map, memory-mapped

	// heard is the heard map, memory-mapped read-only: the latest counted
	// arrival from each node id. It stays mapped for good; Close puts a
	// page of zeros in its place, so that a reader racing Close reads 0
	// (never heard), never unmapped memory.
	heard *[HeardMaxID + 1]uint64

	closeOnce sync.Once
	closeErr  error
}

// offset of real_offset_ns in struct hb_config.
const realOffsetOff = unsafe.Offsetof(heartbeatHbConfig{}.RealOffsetNs)

// LoadHeartbeat loads the program and its maps into the kernel and writes the
// configuration. The program does nothing until attached with Attach, and
// counts only frames from peers added with AddPeer arriving on interfaces
// added with AddInterface.
func LoadHeartbeat(cfg HeartbeatConfig) (*Heartbeat, error) {
	if cfg.Port == 0 {
		return nil, errors.New("xdp heartbeat: no UDP port configured")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("xdp heartbeat: timeout must be positive, not %v", cfg.Timeout)
	}
	if cfg.MaxSkew < 0 {
		return nil, fmt.Errorf("xdp heartbeat: max skew must not be negative, not %v", cfg.MaxSkew)
	}
	// No rlimit.RemoveMemlock: only kernels before 5.11 charge BPF memory to
	// RLIMIT_MEMLOCK, and importing cilium/ebpf/rlimit probes the kernel with
	// a bpf() call at program start, before main: in every tachy command,
	// and as PID 1 of the appliance before /proc is mounted, where the
	// failure cilium/ebpf caches (BPF token lookup) breaks every later load.

	h := &Heartbeat{}
	if err := loadHeartbeatObjects(&h.objs, nil); err != nil {
		return nil, explainLoadError(err)
	}
	ok := false
	defer func() {
		if !ok {
			h.Close()
		}
	}()

	c := heartbeatHbConfig{
		Key0:         cfg.Key0,
		Key1:         cfg.Key1,
		TimeoutNs:    uint64(cfg.Timeout.Nanoseconds()),
		MaxSkewNs:    uint64(cfg.MaxSkew.Nanoseconds()),
		RealOffsetNs: realOffset(),
		ClusterId:    cfg.ClusterID,
		LocalNodeId:  cfg.LocalNodeID,
		Port:         cfg.Port,
	}
	if err := h.objs.Config.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return nil, fmt.Errorf("xdp heartbeat: write config: %w", err)
	}
	mem, err := unix.Mmap(h.objs.Config.FD(), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("xdp heartbeat: map config memory: %w", err)
	}
	h.cfgMem = mem
	hm, err := unix.Mmap(h.objs.Heard.FD(), 0, os.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("xdp heartbeat: map the heard map's memory: %w", err)
	}
	h.heard = (*[HeardMaxID + 1]uint64)(unsafe.Pointer(&hm[0]))
	if h.rd, err = ringbuf.NewReader(h.objs.Events); err != nil {
		return nil, fmt.Errorf("xdp heartbeat: ring buffer reader: %w", err)
	}
	ok = true
	return h, nil
}

// explainLoadError turns the common load failures into errors that say what
// to do. The kernel's verifier log stays available through errors.As
// (*ebpf.VerifierError); print it with %+v.
func explainLoadError(err error) error {
	var ve *ebpf.VerifierError
	isVerifier := errors.As(err, &ve)
	// The verifier answers EACCES, not EPERM, and without CAP_PERFMON it
	// refuses the timer's address as a Spectre risk "for !root".
	if errors.Is(err, unix.EPERM) && !isVerifier || isVerifier && slices.ContainsFunc(ve.Log, func(l string) bool {
		return strings.Contains(l, "!root")
	}) {
		return fmt.Errorf("%w: %w", ErrNotPermitted, err)
	}
	// An old kernel fails in many ways (unknown map type or helper, a map
	// value it cannot parse): ask it what it lacks. A probe that fails for
	// another reason proves nothing.
	lacks := func(err error) bool { return errors.Is(err, ebpf.ErrNotSupported) }
	if lacks(features.HaveMapType(ebpf.RingBuf)) ||
		lacks(features.HaveProgramHelper(ebpf.XDP, asm.FnTimerInit)) ||
		lacks(features.HaveProgramHelper(ebpf.XDP, asm.FnSpinLock)) ||
		lacks(features.HaveProgramHelper(ebpf.XDP, asm.FnXdpLoadBytes)) {
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	if isVerifier {
		return fmt.Errorf("xdp heartbeat: the kernel's verifier rejected the program: %w", err)
	}
	return fmt.Errorf("xdp heartbeat: load: %w", err)
}

// realOffset is CLOCK_REALTIME - CLOCK_MONOTONIC: the program adds it to
// bpf_ktime_get_ns to compare a frame's send time with this node's clock.
func realOffset() int64 {
	var mono, real unix.Timespec
	// Bracket the realtime read to halve the error of the two reads.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	var mono2 unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono2)
	m := mono.Nano() + (mono2.Nano()-mono.Nano())/2
	return real.Nano() - m
}

// SetRealOffset refreshes the program's view of CLOCK_REALTIME. The realtime
// clock is stepped and slewed (NTP) independently of the monotonic one, so
// the daemon calls this every second. It is a single store into the
// memory-mapped config, no system call.
func (h *Heartbeat) SetRealOffset() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfgMem == nil {
		return os.ErrClosed
	}
	atomic.StoreInt64((*int64)(unsafe.Pointer(&h.cfgMem[realOffsetOff])), realOffset())
	return nil
}

// AddInterface tells the program that frames arriving on ifindex travel on
// link: a frame naming another link is dropped as wrong_link. Unicast frames
// addressed to another MAC than the interface's are left to the stack, which
// drops them, as it would for the UDP receiver.
func (h *Heartbeat) AddInterface(ifindex int, link uint8) error {
	if ifindex <= 0 {
		return fmt.Errorf("xdp heartbeat: invalid ifindex %d", ifindex)
	}
	ifc, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("xdp heartbeat: interface %d: %w", ifindex, err)
	}
	v := heartbeatHbIface{Link: link}
	if len(ifc.HardwareAddr) == 6 && slices.ContainsFunc(ifc.HardwareAddr, func(b byte) bool { return b != 0 }) {
		copy(v.Mac[:], ifc.HardwareAddr)
		v.HasMac = 1
	}
	if err := h.objs.Ifaces.Update(uint32(ifindex), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("xdp heartbeat: add interface %d (link %d): %w", ifindex, link, err)
	}
	return nil
}

// AddPeer makes frames from nodeID on link count. Adding a known peer again
// keeps its state (an update would reset it and its timer).
func (h *Heartbeat) AddPeer(nodeID uint32, link uint8) error {
	var zero heartbeatPeerVal
	err := h.objs.Peers.Update(heartbeatPeerKey{NodeId: nodeID, Link: uint32(link)}, &zero, ebpf.UpdateNoExist)
	if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("xdp heartbeat: add peer %d link %d: %w", nodeID, link, err)
	}
	return nil
}

// RemovePeer forgets a peer link; the kernel cancels its timer.
func (h *Heartbeat) RemovePeer(nodeID uint32, link uint8) error {
	err := h.objs.Peers.Delete(heartbeatPeerKey{NodeId: nodeID, Link: uint32(link)})
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("xdp heartbeat: remove peer %d link %d: %w", nodeID, link, err)
	}
	return nil
}

// Attachment is the program attached to one interface. Closing it detaches.
type Attachment struct {
	link.Link
	Ifindex int
	Mode    AttachMode // AttachNative or AttachGeneric, never AttachAuto
}

// Attach hooks the program into the interface's receive path. The returned
// io.Closer is an *Attachment, which also says which mode was used.
func (h *Heartbeat) Attach(ifindex int, mode AttachMode) (io.Closer, error) {
	a, err := attachXDP(h.objs.XdpHeartbeat, ifindex, mode)
	if err != nil {
		return nil, fmt.Errorf("xdp heartbeat: %w", err)
	}
	return a, nil
}

// attachXDP attaches prog to an interface: in the mode asked for, or for
// AttachAuto natively where the driver can, else generically.
func attachXDP(prog *ebpf.Program, ifindex int, mode AttachMode) (*Attachment, error) {
	try := func(m AttachMode) (*Attachment, error) {
		flags := link.XDPDriverMode
		if m == AttachGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
		if err != nil {
			return nil, fmt.Errorf("attach to ifindex %d (%v): %w", ifindex, m, err)
		}
		return &Attachment{Link: l, Ifindex: ifindex, Mode: m}, nil
	}
	switch mode {
	case AttachNative, AttachGeneric:
		return try(mode)
	case AttachAuto:
		a, err := try(AttachNative)
		if err == nil {
			return a, nil
		}
		a, err2 := try(AttachGeneric)
		if err2 != nil {
			return nil, errors.Join(err, err2)
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown attach mode %v", mode)
}

// Program is the XDP program, for BPF_PROG_TEST_RUN in tests and for callers
// that attach it themselves.
func (h *Heartbeat) Program() *ebpf.Program { return h.objs.XdpHeartbeat }

// ReadEvent blocks until the kernel reports a link state change. It returns
// os.ErrDeadlineExceeded after the deadline set by SetDeadline, and an error
// matching ringbuf.ErrClosed (os.ErrClosed) once Close was called.
func (h *Heartbeat) ReadEvent() (Event, error) {
	rec, err := h.rd.Read()
	if err != nil {
		return Event{}, err
	}
	if len(rec.RawSample) < int(unsafe.Sizeof(heartbeatHbEvent{})) {
		return Event{}, fmt.Errorf("xdp heartbeat: short event record (%d bytes)", len(rec.RawSample))
	}
	b := rec.RawSample
	ne := binary.NativeEndian
	return Event{
		TimeNs:      int64(ne.Uint64(b[0:])),
		Incarnation: ne.Uint64(b[8:]),
		Seq:         ne.Uint64(b[16:]),
		NodeID:      ne.Uint32(b[24:]),
		Gen:         ne.Uint32(b[28:]),
		Link:        b[32],
		Type:        b[33],
	}, nil
}

// SetDeadline makes a blocked and future ReadEvent return
// os.ErrDeadlineExceeded at t; the zero time means no deadline.
func (h *Heartbeat) SetDeadline(t time.Time) { h.rd.SetDeadline(t) }

// Stats returns the frame counters summed over CPUs.
func (h *Heartbeat) Stats() (Stats, error) {
	sum, err := sumPerCPU(h.objs.Stats, numStats)
	if err != nil {
		return Stats{}, fmt.Errorf("xdp heartbeat: read stats: %w", err)
	}
	return Stats{
		Accepted: sum[0], BadMAC: sum[1], Replay: sum[2], Stale: sum[3], UnknownPeer: sum[4],
		WrongCluster: sum[5], Malformed: sum[6], WrongLink: sum[7], Self: sum[8],
		EventsLost: sum[9], TimerErrors: sum[10],
	}, nil
}

// Peer returns the kernel's state of one peer link, read under its spin lock
// so that the fields belong together. Unknown peers give an error matching
// ebpf.ErrKeyNotExist.
func (h *Heartbeat) Peer(nodeID uint32, link uint8) (PeerState, error) {
	var v heartbeatPeerVal
	err := h.objs.Peers.LookupWithFlags(heartbeatPeerKey{NodeId: nodeID, Link: uint32(link)}, &v, ebpf.LookupLock)
	if err != nil {
		return PeerState{}, fmt.Errorf("xdp heartbeat: peer %d link %d: %w", nodeID, link, err)
	}
	return PeerState{
		NodeID: nodeID, Link: link, State: v.State, Incarnation: v.Incarnation, Seq: v.Seq,
		LastSeenNs: int64(v.LastSeenNs), Frames: v.Frames, Gen: v.Gen,
	}, nil
}

// Peers returns the state of every configured peer link.
func (h *Heartbeat) Peers() ([]PeerState, error) {
	var keys []heartbeatPeerKey
	var k heartbeatPeerKey
	var v heartbeatPeerVal
	it := h.objs.Peers.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("xdp heartbeat: list peers: %w", err)
	}
	out := make([]PeerState, 0, len(keys))
	for _, k := range keys {
		p, err := h.Peer(k.NodeId, uint8(k.Link))
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// HeardMaxID is the largest node id whose latest arrival LastHeard knows
// (HEARD_MAX_ID of heartbeat.c; the fast path runs with ids up to 64 only).
const HeardMaxID = 64

// LastHeard is the arrival (CLOCK_MONOTONIC ns, the program's
// bpf_ktime_get_ns) of the latest counted frame from node on any link; 0 if
// none, or if node is above HeardMaxID, or after Close. It reads memory the
// program writes: no system call, no lock, safe from any thread.
func (h *Heartbeat) LastHeard(node uint32) int64 {
	if node > HeardMaxID || h.heard == nil {
		return 0
	}
	return int64(atomic.LoadUint64(&h.heard[node]))
}

// Close detaches nothing (close the attachments first, or they keep the
// program running) and frees the maps and the program. A blocked ReadEvent
// returns an error matching ringbuf.ErrClosed.
func (h *Heartbeat) Close() error {
	h.closeOnce.Do(func() {
		var errs []error
		if h.rd != nil {
			errs = append(errs, h.rd.Close())
		}
		h.mu.Lock()
		if h.cfgMem != nil {
			errs = append(errs, unix.Munmap(h.cfgMem))
			h.cfgMem = nil
		}
		h.mu.Unlock()
		if h.heard != nil {
			// Zeros in place of the map's page (MAP_FIXED replaces the
			// mapping in one step and drops its hold on the map): a
			// LastHeard racing Close reads 0, never unmapped memory. The
			// page itself stays (4 KiB per Close).
			_, _, e := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(h.heard)), uintptr(os.Getpagesize()), unix.PROT_READ,
				unix.MAP_FIXED|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
			if e != 0 {
				errs = append(errs, fmt.Errorf("xdp heartbeat: unmap the heard map: %w", e))
			}
		}
		errs = append(errs, h.objs.Close())
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

// sumPerCPU reads the first n counters of a per-CPU array map, each summed
// over CPUs.
func sumPerCPU(m *ebpf.Map, n int) ([]uint64, error) {
	sum := make([]uint64, n)
	var perCPU []uint64
	for i := range sum {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return nil, err
		}
		for _, v := range perCPU {
			sum[i] += v
		}
	}
	return sum, nil
}
