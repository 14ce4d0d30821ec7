package nbdrepl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Protocol is the replication protocol of a volume: when a write to the
// primary completes.
type Protocol uint8

const (
	// ProtocolA: when it is written locally and queued for every connected
	// secondary (asynchronous; a primary crash may lose it).
	ProtocolA Protocol = 1
	// ProtocolB: when, in addition, every connected secondary has
	// acknowledged receiving it into memory.
	ProtocolB Protocol = 2
	// ProtocolC: when, in addition, every connected secondary has
	// acknowledged writing it to its backing store.
	ProtocolC Protocol = 3
)

func (p Protocol) valid() bool { return p >= ProtocolA && p <= ProtocolC }

func (p Protocol) String() string {
	if p.valid() {
		return string(rune('A' + p - 1))
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// ReplConfig configures a replicated volume on its primary.
type ReplConfig struct {
	Volume   string // volume id, checked by the secondary (at most 255 bytes)
	Secret   []byte // shared secret, at least 16 bytes
	Protocol Protocol
	// Timeout bounds the handshake, each frame sent, and every wait for
	// an acknowledgement; a secondary slower than that is disconnected
	// (default 10 s).
	Timeout time.Duration
	// DirtyGranularity is the bytes per bit of each secondary's dirty
	// bitmap (a power of two, default 4 KiB).
	DirtyGranularity int64
	// MaxQueueBytes bounds the payload queued per secondary and not yet
	// written to its socket (default 64 MiB); a full queue blocks writers.
	MaxQueueBytes int64
	Logger        *slog.Logger

	// Node is this node's name, sent to the secondaries (they keep a
	// bitmap slot under it). Default "primary".
	Node string
	// Meta is the volume's persistent metadata (generations, bitmaps,
	// activity log); nil keeps it in memory (NewMemMeta), so a restart
	// means a full, checksummed sync. Its granularity overrides
	// DirtyGranularity. NewReplicated marks it primary; Close demotes it.
	// The caller closes it.
	Meta *MetaStore
	// SplitBrain is the policy applied when a split brain is detected
	// (default SBDisconnect).
	SplitBrain SplitBrainPolicy
	// ResyncRate bounds resync and full-sync traffic, in payload bytes
	// per second (0: unlimited).
	ResyncRate int64
}

// Replicated is a Backend that writes to a local backend and replicates
// every change, in one sequence per volume, to the connected secondaries.
// Reads are served locally.
type Replicated struct {
	local Backend
	cfg   ReplConfig
	log   *slog.Logger

	// order serializes local changes with the assignment of sequence
	// numbers and enqueuing to the peers, so every secondary applies
	// overlapping writes in the order the primary applied them.
	order  sync.Mutex
	seq    uint64 // last sequence number assigned
	peers  []*Peer
	closed bool

	meta    *MetaStore
	limiter *tokenBucket // nil: unlimited

	// active counts the changes in progress (waiting for or holding
	// r.order): with others behind it, a change leaves its frames to the
	// sender, which sends them in batches, instead of sending directly.
	active atomic.Int32
}

// ErrReplClosed is returned by changes after Close.
var ErrReplClosed = errors.New("replicated volume closed")

// NewReplicated wraps local. Secondaries are added with Attach or Dial.
func NewReplicated(local Backend, cfg ReplConfig) (*Replicated, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("replication secret shorter than 16 bytes")
	}
	if len(cfg.Volume) > maxVolumeName {
		return nil, fmt.Errorf("volume id longer than %d bytes", maxVolumeName)
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = ProtocolC
	}
	if !cfg.Protocol.valid() {
		return nil, fmt.Errorf("unknown replication protocol %d", cfg.Protocol)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.DirtyGranularity <= 0 {
		cfg.DirtyGranularity = DefaultDirtyGranularity
	}
	if g := cfg.DirtyGranularity; g&(g-1) != 0 {
		return nil, fmt.Errorf("dirty granularity %d is not a power of two", g)
	}
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = 64 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Node == "" {
		cfg.Node = "primary"
	}
	if len(cfg.Node) > MaxPeerName {
		return nil, fmt.Errorf("node name longer than %d bytes", MaxPeerName)
	}
	r := &Replicated{local: local, cfg: cfg, log: log.With("volume", cfg.Volume), meta: cfg.Meta}
	if r.meta == nil {
		m, err := NewMemMeta(MetaOptions{Size: local.Size(), Granularity: max(cfg.DirtyGranularity, 512)})
		if err != nil {
			return nil, err
		}
		r.meta = m
	}
	h := r.meta.Header()
	if h.Size != local.Size() {
		return nil, fmt.Errorf("metadata is for %d bytes, the volume has %d", h.Size, local.Size())
	}
	r.cfg.DirtyGranularity = h.Granularity
	if err := r.meta.SetPrimary(true); err != nil {
		return nil, err
	}
	if r.meta.CrashedPrimary() {
		r.log.Warn("replication: this node crashed while primary; the activity log's extents are marked out of sync for every peer", "al_extents", len(h.AL))
	}
	if cfg.ResyncRate > 0 {
		r.limiter = newTokenBucket(cfg.ResyncRate, max(cfg.ResyncRate/8, h.Granularity))
	}
	// Every known peer starts disconnected: changes are marked in its
	// bitmap until it attaches.
	for _, p := range h.Peers {
		bm, gen, err := r.meta.Slot(p.Name)
		if err != nil {
			return nil, err
		}
		r.peers = append(r.peers, r.stub(p.Name, bm, gen))
	}
	return r, nil
}

// errNotConnected is the state of a known peer that has not attached yet.
var errNotConnected = errors.New("not connected yet")

// stub is a known but disconnected peer.
func (r *Replicated) stub(name string, bm *DirtyBitmap, gen uint64) *Peer {
	p := &Peer{r: r, name: name, dirty: bm, bmGen: gen, err: errNotConnected, changed: make(chan struct{}), log: r.log.With("secondary", name)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Meta returns the volume's metadata.
func (r *Replicated) Meta() *MetaStore { return r.meta }

// Protocol returns the volume's replication protocol.
func (r *Replicated) Protocol() Protocol { return r.cfg.Protocol }

// Seq returns the last sequence number assigned.
func (r *Replicated) Seq() uint64 {
	r.order.Lock()
	defer r.order.Unlock()
	return r.seq
}

// Peers returns every secondary attached so far, connected or not.
func (r *Replicated) Peers() []*Peer {
	r.order.Lock()
	defer r.order.Unlock()
	return append([]*Peer(nil), r.peers...)
}

// Peer returns the secondary of that name, or nil.
func (r *Replicated) Peer(name string) *Peer {
	r.order.Lock()
	defer r.order.Unlock()
	for _, p := range r.peers {
		if p.name == name {
			return p
		}
	}
	return nil
}

// Close disconnects every secondary at once (what is not yet acknowledged
// as written is marked dirty) and makes later changes fail.
func (r *Replicated) Close() error {
	r.order.Lock()
	r.closed = true
	peers := append([]*Peer(nil), r.peers...)
	r.order.Unlock()
	for _, p := range peers {
		p.fail(ErrReplClosed)
	}
	return r.meta.SetPrimary(false)
}

// Dial connects to a secondary at addr and attaches it.
func (r *Replicated) Dial(ctx context.Context, addr, name string) (*Peer, error) {
	d := net.Dialer{Timeout: r.cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	p, err := r.Attach(ctx, nc, name)
	if err != nil {
		nc.Close()
	}
	return p, err
}

// Attach runs the handshake on nc (the primary's side) and, on success,
// replicates every later change to that secondary. A new name is assumed
// to hold the same data as the primary (the initial full sync is not
// implemented). A name attached before takes over its dirty bitmap and is
// resynced: the current contents of every dirty chunk are sent, in the
// same ordered stream as new changes, and each chunk's bit is cleared once
// the secondary acknowledges it as applied (PeerSyncTarget until the
// bitmap is empty, then PeerUpToDate). On error the caller closes nc.
func (r *Replicated) Attach(ctx context.Context, nc net.Conn, name string) (*Peer, error) {
	if name == "" {
		name = nc.RemoteAddr().String()
	}
	if len(name) > MaxPeerName {
		name = name[:MaxPeerName]
	}
	if old := r.Peer(name); old != nil && old.Connected() {
		return nil, fmt.Errorf("secondary %s is already connected", name)
	}
	nc.SetDeadline(time.Now().Add(r.cfg.Timeout))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	fr, fw, err := r.handshake(nc)
	var res Resolution
	var stub *Peer
	if err == nil {
		// From now on every change is marked for this peer until it
		// is attached.
		stub, err = r.ensureStub(name)
	}
	if err == nil {
		// The sync handshake may compare every chunk: no deadline
		// beyond each read and write's own.
		nc.SetDeadline(time.Time{})
		res, err = r.negotiate(nc, fr, fw, stub)
	}
	stop()
	if err != nil {
		if stub != nil && errors.Is(err, ErrSplitBrain) {
			stub.mu.Lock()
			if stub.err != nil {
				stub.err = err
			}
			stub.mu.Unlock()
		}
		return nil, fmt.Errorf("secondary %s: %w", name, err)
	}
	nc.SetDeadline(time.Time{})
	p := &Peer{
		r: r, name: name, nc: nc, fr: fr, fw: fw,
		dirty:   stub.dirty,
		changed: make(chan struct{}),
		log:     r.log.With("secondary", name),
	}
	p.cond = sync.NewCond(&p.mu)
	r.order.Lock()
	if r.closed {
		r.order.Unlock()
		return nil, ErrReplClosed
	}
	// r.peers is copied on write: writers keep the slice they got under
	// r.order and iterate it after unlocking.
	peers := make([]*Peer, 0, len(r.peers)+1)
	for _, old := range r.peers {
		if old.name == name {
			if old.Connected() {
				r.order.Unlock()
				return nil, fmt.Errorf("secondary %s is already connected", name)
			}
			// Writes made while it was away were marked in old.dirty
			// under r.order; from now on they are queued to p.
			p.dirty, p.bmGen = old.dirty, old.bmGen
			p.skippedBytes.Store(old.skippedBytes.Load())
			continue
		}
		peers = append(peers, old)
	}
	// Whatever the decision, chunks marked while the handshake ran (or
	// left from an earlier connection) are copied, and the secondary is
	// told the current generation when they are. With nothing to copy
	// it is told now, ending the handshake.
	p.syncing = p.dirty.Count() > 0
	start := Frame{Type: FrameGen, Gen: r.meta.Current()}
	if !p.syncing {
		start.Flags = FrameFlagSyncDone
	}
	nc.SetWriteDeadline(time.Now().Add(r.cfg.Timeout))
	err = fw.write(start)
	if err == nil {
		err = fw.Flush()
	}
	if err != nil {
		r.order.Unlock()
		return nil, fmt.Errorf("secondary %s: sending GEN: %w", name, err)
	}
	if !p.syncing && p.bmGen != 0 {
		p.bmGen = 0
		if err := r.meta.SetPeerBitmapGen(name, 0); err != nil {
			r.log.Error("replication: writing metadata", "err", err)
		}
	}
	p.recv, p.done, p.lastSent = r.seq, r.seq, r.seq
	r.peers = append(peers, p)
	r.order.Unlock()
	// Read before the goroutines start: they change them under p.mu.
	seq, syncing := p.done, p.syncing
	p.wg.Add(2)
	go p.sender()
	go p.ackReader()
	p.log.Info("replication: secondary connected", "protocol", r.cfg.Protocol.String(), "seq", seq, "decision", res.Decision.String(), "rule", res.Rule, "out_of_sync_bytes", p.dirty.Bytes())
	if syncing {
		p.wg.Add(1)
		go p.resync()
	}
	return p, nil
}

func (r *Replicated) handshake(nc net.Conn) (*frameReader, *frameWriter, error) {
	h := hello{Version: ReplVersion, Protocol: r.cfg.Protocol, Volume: r.cfg.Volume, Size: uint64(r.local.Size())}
	rand.Read(h.Nonce[:])
	hb := appendHello(nil, h)
	if _, err := nc.Write(hb); err != nil {
		return nil, nil, fmt.Errorf("sending HELLO: %w", err)
	}
	chal := make([]byte, challengeSize)
	if _, err := io.ReadFull(nc, chal); err != nil {
		return nil, nil, fmt.Errorf("reading CHALLENGE (is the peer a secondary of this protocol version?): %w", err)
	}
	if string(chal[:8]) != string(replMagic[:]) {
		return nil, nil, fmt.Errorf("not a tachy replication secondary (magic %q)", chal[:8])
	}
	if v := uint16(chal[8])<<8 | uint16(chal[9]); v != ReplVersion {
		return nil, nil, fmt.Errorf("secondary speaks replication protocol version %d, want %d", v, ReplVersion)
	}
	nonceS, macS := chal[10:10+nonceSize], chal[10+nonceSize:]
	auth := make([]byte, authSize)
	if !hmac.Equal(macS, replMAC(r.cfg.Secret, []byte(labelSecondary), hb, nonceS)) {
		auth[0] = 1
		nc.Write(auth)
		return nil, nil, fmt.Errorf("%w: the secondary did not prove knowledge of the shared secret", ErrAuth)
	}
	copy(auth[1:], replMAC(r.cfg.Secret, []byte(labelPrimary), hb, chal))
	if _, err := nc.Write(auth); err != nil {
		return nil, nil, fmt.Errorf("sending AUTH: %w", err)
	}
	p2s, s2p := sessionKeys(r.cfg.Secret, h.Nonce[:], nonceS)
	fr, fw := newFrameReader(nc, s2p), newFrameWriter(nc, p2s)
	f, err := fr.read()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the secondary's answer: %w", err)
	}
	switch f.Type {
	case FrameHelloOK:
		return fr, fw, nil
	case FrameError:
		return nil, nil, fmt.Errorf("secondary refused: %s", f.Data)
	}
	return nil, nil, fmt.Errorf("unexpected %v during handshake", f.Type)
}

func (r *Replicated) ReadAt(p []byte, off int64) (int, error) { return r.local.ReadAt(p, off) }

func (r *Replicated) Size() int64 { return r.local.Size() }

// Caps are the local backend's, with Flush and FUA: they also reach the
// secondaries.
func (r *Replicated) Caps() Caps {
	c := r.local.Caps()
	c.Flush, c.FUA = true, true
	return c
}

// change applies a change locally (apply) and queues its frames to every
// peer under the order lock. It returns the last frame's sequence number.
func (r *Replicated) change(apply func() error, frames []Frame, off, length int64) (uint64, []*Peer, error) {
	r.active.Add(1)
	defer r.active.Add(-1)
	r.order.Lock()
	defer r.order.Unlock()
	if r.closed {
		return 0, nil, ErrReplClosed
	}
	if apply != nil {
		if err := r.rotateIfAway(); err != nil {
			return 0, nil, err
		}
		if err := r.meta.BeforeWrite(off, length, r.seq+uint64(len(frames)), r.ackedByAll); err != nil {
			return 0, nil, err
		}
	}
	for i := range frames {
		r.seq++
		frames[i].Seq = r.seq
	}
	// The change goes to the peers first and is applied locally while it
	// travels, as DRBD submits both at once: a protocol C write then costs
	// the longer of the local write and the peers' round trip, not their
	// sum. Both happen under r.order, so the order of changes is the same
	// everywhere.
	for _, p := range r.peers {
		p.enqueue(frames, off, length, kindChange)
	}
	if apply != nil {
		if err := apply(); err != nil {
			// The peers may have applied what failed here: mark it
			// out of sync for each, so they are brought back to this
			// node's data at their next resync.
			for _, p := range r.peers {
				p.dirty.Mark(off, length)
			}
			r.log.Error("replication: local write failed after it was sent; marked out of sync for every peer", "off", off, "length", length, "err", err)
			return 0, nil, err
		}
	}
	return r.seq, r.peers, nil
}

// wait waits until every peer has acknowledged seq as received (done
// false) or applied, or is disconnected.
func (r *Replicated) wait(peers []*Peer, seq uint64, done bool) {
	for _, p := range peers {
		p.wait(seq, done)
	}
}

func (r *Replicated) waitWrite(peers []*Peer, seq uint64, fua bool) {
	switch {
	case fua || r.cfg.Protocol == ProtocolC:
		r.wait(peers, seq, true)
	case r.cfg.Protocol == ProtocolB:
		r.wait(peers, seq, false)
	}
}

// writeFrames makes the WRITE frames of p. The payload is shared by the
// frames and the local write through the returned payloadRef, which holds
// one reference for the local write: the caller drops it (done) once that
// is over. An owned p is the payload itself (and goes to the pool at the
// end); otherwise p is copied, since the caller may reuse it once we
// return.
func writeFrames(p []byte, off int64, flags uint32, owned bool) ([]Frame, *payloadRef) {
	data := p
	if !owned {
		data = append(getBuf(len(p))[:0], p...)
	}
	ref := &payloadRef{buf: data}
	ref.n.Store(1)
	var fs []Frame
	for len(data) > 0 {
		n := min(len(data), maxWriteChunk)
		fs = append(fs, Frame{Type: FrameWrite, Offset: uint64(off), Flags: flags, Data: data[:n:n], ref: ref})
		data, off = data[n:], off+int64(n)
	}
	return fs, ref
}

func (r *Replicated) WriteAt(p []byte, off int64) (int, error) { return r.write(p, off, false, false) }

// WriteOwned is WriteAt (or WriteAtFUA) for a caller that gives p away: it
// is queued to the secondaries as it is, not copied, and goes back to the
// payload pool once they all sent it, so the caller must not use it again.
func (r *Replicated) WriteOwned(p []byte, off int64, fua bool) (int, error) {
	return r.write(p, off, fua, true)
}

// WriteAtFUA writes p and makes it durable on the primary and every
// connected secondary before returning (NBD_CMD_FLAG_FUA): the server uses
// it instead of WriteAt followed by Sync, which saves a round trip.
func (r *Replicated) WriteAtFUA(p []byte, off int64) (int, error) {
	return r.write(p, off, true, false)
}

func (r *Replicated) write(p []byte, off int64, fua, owned bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var flags uint32
	if fua {
		flags = FrameFlagFUA
	}
	var n int
	frames, ref := writeFrames(p, off, flags, owned)
	seq, peers, err := r.change(func() error {
		var err error
		n, err = r.local.WriteAt(p, off)
		return err
	}, frames, off, int64(len(p)))
	ref.done() // the local write is over; the peers' queues hold their own
	if err != nil {
		return n, err
	}
	if fua {
		err = r.local.Sync(off, int64(len(p)))
	}
	r.waitWrite(peers, seq, fua)
	return n, err
}

func (r *Replicated) rangeChange(t FrameType, off, length int64, flags uint32, apply func() error) error {
	if length <= 0 {
		return nil
	}
	seq, peers, err := r.change(apply, []Frame{{Type: t, Offset: uint64(off), Length: uint64(length), Flags: flags}}, off, length)
	if err != nil {
		return err
	}
	r.waitWrite(peers, seq, false)
	return nil
}

func (r *Replicated) Trim(off, length int64) error {
	return r.rangeChange(FrameTrim, off, length, 0, func() error { return r.local.Trim(off, length) })
}

func (r *Replicated) WriteZeroes(off, length int64, mayTrim bool) error {
	var flags uint32
	if mayTrim {
		flags = FrameFlagMayTrim
	}
	return r.rangeChange(FrameZeroes, off, length, flags, func() error { return r.local.WriteZeroes(off, length, mayTrim) })
}

// Flush flushes the local backend and sends a barrier that every connected
// secondary acknowledges after flushing its own backend: when Flush
// returns, every change completed before it is durable on the primary and
// on every secondary still connected.
func (r *Replicated) Flush() error { return r.barrier(0, 0) }

// Sync is Flush restricted to a range (the secondaries call Backend.Sync).
func (r *Replicated) Sync(off, length int64) error {
	if length <= 0 {
		return r.barrier(0, 0)
	}
	return r.barrier(off, length)
}

func (r *Replicated) barrier(off, length int64) error {
	seq, peers, err := r.change(nil, []Frame{{Type: FrameFlush, Offset: uint64(off), Length: uint64(length)}}, 0, 0)
	if err != nil {
		return err
	}
	if length == 0 {
		err = r.local.Flush()
	} else {
		err = r.local.Sync(off, length)
	}
	r.wait(peers, seq, true)
	return err
}

// Peer is one secondary as the primary sees it.
type Peer struct {
	r    *Replicated
	name string
	nc   net.Conn
	fr   *frameReader
	fw   *frameWriter
	log  *slog.Logger
	wg   sync.WaitGroup

	dirty *DirtyBitmap
	bmGen uint64 // bitmap generation (meta); guarded by r.order

	resyncBytes  atomic.Int64 // payload of resync frames queued
	skippedBytes atomic.Int64 // full sync: chunks found equal, not sent
	latency      atomic.Int64 // replication latency, ns: moving average (1/8) of queued-to-applied
	latencyMax   atomic.Int64 // the largest since the last LatencyMax

	mu       sync.Mutex
	cond     *sync.Cond // signals the sender: queue not empty, or failed
	queue    []Frame    // not yet handed to the socket
	queued   int64      // payload bytes in queue
	inflight []span     // changes queued or sent, not yet acknowledged as applied
	lastSent uint64     // last sequence number queued
	sending  bool       // the sender, or enqueue directly, is writing to the socket
	recv     uint64     // acknowledged as received
	done     uint64     // acknowledged as applied
	err      error      // why it disconnected; nil while connected
	syncing  bool       // dirty chunks remain to be copied (SyncTarget)
	syncDone uint64     // seq of the GEN frame ending the resync (0: not sent)
	changed  chan struct{}

	vmu   sync.Mutex // one Verify at a time
	vpend map[uint64]verifyReq
	vch   chan verifyResult
}

type span struct {
	seq         uint64
	off, length int64
	resync      bool      // a dirty chunk's copy: clear its bit once applied
	at          time.Time // when it was queued
}

// enqueue kinds.
const (
	kindChange = iota // an application change
	kindResync        // a dirty chunk's copy for this peer
	kindCopy          // another peer's chunk copy: nothing changed, so not marked dirty
	kindCtl           // GEN, VERIFY: no data
)

// PeerState is a secondary's replication state, as DRBD names its disk
// states.
type PeerState string

const (
	PeerDisconnected PeerState = "Disconnected"
	PeerSyncTarget   PeerState = "SyncTarget" // connected, dirty chunks being copied
	PeerUpToDate     PeerState = "UpToDate"   // connected, nothing out of sync
	// PeerSplitBrain: the last connection attempt found a split brain (or
	// unrelated data) that the policy did not resolve; nothing was
	// overwritten. Err says what to do.
	PeerSplitBrain PeerState = "SplitBrain"
)

// State returns the peer's replication state.
func (p *Peer) State() PeerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case errors.Is(p.err, ErrSplitBrain):
		return PeerSplitBrain
	case p.err != nil:
		return PeerDisconnected
	case p.syncing:
		return PeerSyncTarget
	}
	return PeerUpToDate
}

// OutOfSync returns the bytes the secondary may lack (its dirty chunks).
func (p *Peer) OutOfSync() int64 { return p.dirty.Bytes() }

// observeLatency records one change's time from queued to applied on the
// secondary. Called by ackReader only.
func (p *Peer) observeLatency(d time.Duration) {
	old := p.latency.Load()
	if old == 0 {
		p.latency.Store(int64(d))
	} else {
		p.latency.Store(old + (int64(d)-old)/8)
	}
	if int64(d) > p.latencyMax.Load() {
		p.latencyMax.Store(int64(d))
	}
}

// Latency returns the replication latency: a moving average of the time
// from a change being queued for the secondary to its acknowledgement as
// applied (0 before the first).
func (p *Peer) Latency() time.Duration { return time.Duration(p.latency.Load()) }

// LatencyMax returns the largest replication latency since the last call,
// and starts again.
func (p *Peer) LatencyMax() time.Duration { return time.Duration(p.latencyMax.Swap(0)) }

// ResyncBytes returns the payload bytes queued to the secondary as resync
// copies by this connection.
func (p *Peer) ResyncBytes() int64 { return p.resyncBytes.Load() }

// resync copies every dirty chunk, one at a time: under r.order (so no
// change interleaves) it reads the chunk's current contents, gives the copy
// the next sequence number and queues it to every connected peer (the
// others simply get the same data again; their sequences must stay
// consecutive). A change made later to the chunk follows the copy in the
// stream. ackReader clears the bit once the copy is applied.
func (p *Peer) resync() {
	defer p.wg.Done()
	r := p.r
	gran := p.dirty.Granularity()
	for i := int64(0); ; {
		r.order.Lock()
		if r.closed || !p.Connected() {
			r.order.Unlock()
			return
		}
		off, end, ok := p.dirty.next(i)
		if !ok {
			r.order.Unlock()
			break
		}
		i = end / gran
		if end%gran != 0 {
			i++
		}
		buf := make([]byte, end-off)
		if _, err := r.local.ReadAt(buf, off); err != nil {
			r.order.Unlock()
			p.fail(fmt.Errorf("resync: reading %d+%d locally: %w", off, end-off, err))
			return
		}
		r.seq++
		f := []Frame{{Type: FrameWrite, Seq: r.seq, Offset: uint64(off), Data: buf}}
		for _, q := range r.peers {
			if q == p {
				q.enqueue(f, off, end-off, kindResync)
			} else {
				q.enqueue(f, off, end-off, kindCopy)
			}
		}
		r.order.Unlock()
		if r.limiter != nil {
			r.limiter.take(int64(len(buf)))
		}
	}
	// Every chunk is queued: announce the current generation; once the
	// secondary has applied that, it is consistent and up to date.
	r.order.Lock()
	defer r.order.Unlock()
	if r.closed || !p.Connected() {
		return
	}
	r.seq++
	cur := r.meta.Current()
	p.mu.Lock()
	p.syncDone = r.seq // before it is queued: the ack may come at once
	p.mu.Unlock()
	for _, q := range r.peers {
		f := Frame{Type: FrameGen, Seq: r.seq, Gen: cur}
		if q == p {
			f.Flags = FrameFlagSyncDone
		}
		q.enqueue([]Frame{f}, 0, 0, kindCtl)
	}
}

// Name is the name given to Attach (or the remote address).
func (p *Peer) Name() string { return p.name }

// Connected says whether changes are still being replicated to it.
func (p *Peer) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err == nil
}

// Err says why the peer disconnected (nil while connected).
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Acked returns the last sequence numbers the secondary acknowledged as
// received and as applied.
func (p *Peer) Acked() (recv, done uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recv, p.done
}

// Dirty is the bitmap of ranges the secondary may lack: every change not
// acknowledged as applied when it disconnected, and every change since.
// Empty while it is connected.
func (p *Peer) Dirty() *DirtyBitmap { return p.dirty }

// Disconnect drops the connection, as if the secondary had gone away.
func (p *Peer) Disconnect() { p.fail(errors.New("disconnected by the primary")) }

// Wait waits for the peer's goroutines to stop (after it disconnected).
func (p *Peer) Wait() { p.wg.Wait() }

// notify wakes everyone waiting on p.changed. Call with p.mu held.
func (p *Peer) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// senderBatch bounds the payload the sender writes per flush.
const senderBatch = 1 << 20

// directSendMax bounds the payload enqueue writes to the socket itself
// when the sender is idle; larger changes go through the sender, so that
// hashing and sending them overlaps with the next local writes.
const directSendMax = 64 << 10

// enqueue queues frames for the peer, or marks the range dirty if it is
// disconnected. Called with r.order held, so queues are in sequence order;
// it blocks while the queue is full. A small change finding the sender idle
// and the queue empty, with no other change waiting behind it, is written to
// the socket at once, saving the sender's wake-up on the latency path.
func (p *Peer) enqueue(frames []Frame, off, length int64, kind int) {
	var cost int64
	for _, f := range frames {
		cost += int64(len(f.Data))
		f.ref.hold(1) // until written to the socket or dropped
	}
	p.mu.Lock()
	for p.err == nil && p.queued > 0 && p.queued+cost > p.r.cfg.MaxQueueBytes {
		// The sender frees space as it writes to the socket; a socket
		// stalled for longer than Timeout fails the peer.
		ch := p.changed
		p.mu.Unlock()
		<-ch
		p.mu.Lock()
	}
	if p.err != nil {
		if kind != kindCopy && kind != kindCtl {
			p.dirty.Mark(off, length)
		}
		p.mu.Unlock()
		releaseFrames(frames)
		return
	}
	last := frames[len(frames)-1].Seq
	p.inflight = append(p.inflight, span{seq: last, off: off, length: length, resync: kind == kindResync, at: time.Now()})
	if kind == kindResync {
		p.resyncBytes.Add(cost)
	}
	p.lastSent = last
	if len(p.queue) > 0 || p.sending || cost > directSendMax || kind != kindChange || p.r.active.Load() > 1 {
		p.queue = append(p.queue, frames...)
		p.queued += cost
		p.cond.Signal()
		p.mu.Unlock()
		return
	}
	// Direct: the sender stays away while sending is set; frames queued
	// meanwhile (none can be, r.order is held) would follow.
	p.sending = true
	p.mu.Unlock()
	_, err := p.send(frames)
	releaseFrames(frames)
	p.mu.Lock()
	p.sending = false
	if len(p.queue) > 0 {
		p.cond.Signal()
	}
	p.mu.Unlock()
	if err != nil {
		p.fail(fmt.Errorf("sending: %w", err))
	}
}

// send writes frames to the socket and flushes. Only the holder of
// p.sending calls it.
func (p *Peer) send(frames []Frame) (int64, error) {
	var sent int64
	for _, f := range frames {
		p.nc.SetWriteDeadline(time.Now().Add(p.r.cfg.Timeout))
		if err := p.fw.write(f); err != nil {
			return sent, err
		}
		sent += int64(len(f.Data))
	}
	return sent, p.fw.Flush()
}

// wait returns once the peer acknowledged seq (as applied if done), or is
// disconnected; a peer that takes longer than Timeout is disconnected.
func (p *Peer) wait(seq uint64, done bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		acked := p.recv
		if done {
			acked = p.done
		}
		if p.err != nil || acked >= seq {
			p.mu.Unlock()
			return
		}
		ch := p.changed
		p.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(p.r.cfg.Timeout)
		}
		select {
		case <-ch:
		case <-timer.C:
			kind := "receipt"
			if done {
				kind = "write"
			}
			p.fail(fmt.Errorf("no acknowledgement of %s of seq %d within %v", kind, seq, p.r.cfg.Timeout))
			return
		}
	}
}

// fail disconnects the peer (once): the connection is closed, queued
// frames dropped, and every change not acknowledged as applied is marked
// dirty.
func (p *Peer) fail(err error) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	p.err = err
	for _, s := range p.inflight {
		p.dirty.Mark(s.off, s.length)
	}
	releaseFrames(p.queue)
	p.inflight, p.queue, p.queued = nil, nil, 0
	p.notify()
	p.cond.Broadcast()
	done := p.done
	p.mu.Unlock()
	p.nc.Close()
	p.log.Warn("replication: secondary disconnected", "err", err, "applied", done, "dirty_chunks", p.dirty.Count())
}

func (p *Peer) sender() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for (len(p.queue) == 0 || p.sending) && p.err == nil {
			p.cond.Wait()
		}
		if p.err != nil {
			p.mu.Unlock()
			return
		}
		// At most senderBatch bytes per write: the space they held is
		// given back (and writers waiting for it woken) as they go,
		// not after the whole queue.
		n, size := 0, int64(0)
		for n < len(p.queue) && (n == 0 || size+int64(len(p.queue[n].Data)) <= senderBatch) {
			size += int64(len(p.queue[n].Data))
			n++
		}
		batch := p.queue[:n:n]
		if n == len(p.queue) {
			p.queue = nil
		} else {
			p.queue = p.queue[n:]
		}
		p.sending = true
		p.mu.Unlock()
		sent, err := p.send(batch)
		releaseFrames(batch)
		p.mu.Lock()
		p.sending = false
		p.mu.Unlock()
		if err != nil {
			p.fail(fmt.Errorf("sending: %w", err))
			return
		}
		p.mu.Lock()
		if p.err == nil {
			p.queued -= sent
			p.notify()
		}
		p.mu.Unlock()
	}
}

func (p *Peer) ackReader() {
	defer p.wg.Done()
	synced := false
	for {
		f, err := p.fr.read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("secondary closed the connection")
			}
			p.fail(fmt.Errorf("receiving: %w", err))
			return
		}
		switch f.Type {
		case FrameAckRecv, FrameAckDone:
		case FrameVerifyResp:
			p.verifyResp(f)
			continue
		case FrameError:
			p.fail(fmt.Errorf("secondary reported error %d: %s", f.Code, f.Data))
			return
		default:
			p.fail(fmt.Errorf("unexpected %v from the secondary", f.Type))
			return
		}
		p.mu.Lock()
		if p.err != nil {
			p.mu.Unlock()
			return
		}
		old := p.recv
		if f.Type == FrameAckDone {
			old = p.done
		}
		if f.Seq < old || f.Seq > p.lastSent {
			p.mu.Unlock()
			p.fail(fmt.Errorf("%v %d out of order (previous %d, last sent %d)", f.Type, f.Seq, old, p.lastSent))
			return
		}
		if f.Type == FrameAckDone {
			p.done = f.Seq
			p.recv = max(p.recv, f.Seq)
			i := 0
			now := time.Now()
			for i < len(p.inflight) && p.inflight[i].seq <= f.Seq {
				s := p.inflight[i]
				if s.resync {
					p.dirty.Clear(s.off, s.length)
				}
				p.observeLatency(now.Sub(s.at))
				i++
			}
			p.inflight = p.inflight[i:]
			if p.syncing && p.syncDone != 0 && f.Seq >= p.syncDone {
				p.syncing, p.syncDone, synced = false, 0, true
				p.log.Info("replication: resync done", "resync_bytes", p.resyncBytes.Load(), "skipped_bytes", p.skippedBytes.Load(), "out_of_sync_bytes", p.dirty.Bytes())
			}
		} else {
			p.recv = f.Seq
		}
		p.notify()
		p.mu.Unlock()
		if synced {
			// The secondary holds the current generation: it no
			// longer needs a bitmap generation.
			synced = false
			p.r.order.Lock()
			if p.Connected() {
				p.bmGen = 0
				if err := p.r.meta.SetPeerBitmapGen(p.name, 0); err != nil {
					p.log.Error("replication: writing metadata", "err", err)
				}
			}
			p.r.order.Unlock()
		}
	}
}
