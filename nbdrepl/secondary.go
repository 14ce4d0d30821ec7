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

	"golang.org/x/sync/semaphore"
)

// Secondary receives a volume's changes from its primary and applies them,
// in sequence order, to its Backend. It serves one primary at a time.
type Secondary struct {
	Backend Backend
	Volume  string // must match the primary's
	Secret  []byte // shared secret, at least 16 bytes
	Logger  *slog.Logger
	// HandshakeTimeout bounds the handshake (default 10 s).
	HandshakeTimeout time.Duration
	// MaxQueueBytes bounds the payload received and not yet applied
	// (default 64 MiB); beyond it the secondary stops reading.
	MaxQueueBytes int64
	// Node is this node's name, sent to the primary (default "secondary").
	Node string
	// Meta is the volume's persistent metadata; nil keeps it in memory
	// (created on first use with the default granularity).
	Meta *MetaStore
	// SplitBrain is the split-brain policy; the primary's decision must
	// agree with the one this secondary reaches with it.
	SplitBrain SplitBrainPolicy
	// Replicas names the volume's other replicas (Volume sets it). When
	// the connection to a primary ends, the ranges of the last changes
	// applied (up to recentChanges) are marked out of sync in the bitmap
	// kept for each of them but that primary: the other secondaries may
	// not have received them, or may have received more, and whichever
	// replica becomes primary next resyncs those ranges to the others
	// (as a bitmap sync of the union) instead of leaving them diverged.
	Replicas []string

	busy     sync.Mutex
	metaOnce sync.Once
	metaErr  error
	sbMu     sync.Mutex
	sbReason string        // last refusal (split brain, unrelated data)
	received atomic.Uint64 // last sequence number received
	applied  atomic.Uint64 // last sequence number applied

	// primary is the node name of the primary connected now ("" none).
	primary atomic.Pointer[string]
	// inSync: the data was up to date with the primary when last
	// connected (a sync that ended, or none needed), and no later
	// connection has started a sync. It stays set after the primary goes
	// away, as DRBD keeps UpToDate: what the primary completed under
	// protocol C is here.
	inSync atomic.Bool
}

// Primary returns the node name of the primary connected now, or "".
func (s *Secondary) Primary() string {
	if p := s.primary.Load(); p != nil {
		return *p
	}
	return ""
}

// InSync says whether this secondary's data was up to date with its
// primary when it was last connected (see the field).
func (s *Secondary) InSync() bool { return s.inSync.Load() }

// Received returns the last sequence number received (and acknowledged as
// such); Applied the last one applied to the backend.
func (s *Secondary) Received() uint64 { return s.received.Load() }

// Applied returns the last sequence number applied to the backend.
func (s *Secondary) Applied() uint64 { return s.applied.Load() }

// meta returns the metadata, creating in-memory metadata if none was given.
func (s *Secondary) meta() (*MetaStore, error) {
	s.metaOnce.Do(func() {
		if s.Meta == nil {
			s.Meta, s.metaErr = NewMemMeta(MetaOptions{Size: s.Backend.Size()})
		}
	})
	return s.Meta, s.metaErr
}

// SplitBrainReason returns why the last primary was refused because the data
// diverged ("" if it was not), for status displays.
func (s *Secondary) SplitBrainReason() string {
	s.sbMu.Lock()
	defer s.sbMu.Unlock()
	return s.sbReason
}

func (s *Secondary) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Serve accepts primaries on ln until ctx is cancelled. A connection that
// arrives while another primary is connected is refused after the
// handshake.
func (s *Secondary) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(ctx, c); err != nil {
				s.logger().Warn("replication: primary connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// ServeConn runs one primary connection: the handshake, then frames are
// verified, acknowledged as received, applied in order and acknowledged as
// applied. When the connection ends (the primary closed it or died, or
// sent something invalid, which is never applied), every frame received
// before is still applied and the backend flushed before ServeConn returns.
// It returns nil when the primary closed the connection between frames.
func (s *Secondary) ServeConn(ctx context.Context, nc net.Conn) (err error) {
	defer nc.Close()
	log := s.logger().With("volume", s.Volume, "primary", nc.RemoteAddr().String())
	if len(s.Secret) < 16 {
		return errors.New("replication secret shorter than 16 bytes")
	}
	to := s.HandshakeTimeout
	if to <= 0 {
		to = 10 * time.Second
	}
	nc.SetDeadline(time.Now().Add(to))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	fr, fw, proto, err := s.handshake(nc)
	if err != nil {
		return err
	}
	if !s.busy.TryLock() {
		fw.write(Frame{Type: FrameError, Code: ReplErrBusy, Data: []byte("secondary already has a primary")})
		fw.Flush()
		return errors.New("refused a second primary")
	}
	defer s.busy.Unlock()
	if err := fw.write(Frame{Type: FrameHelloOK}); err != nil {
		return err
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	pm, res, err := s.negotiate(nc, fr, fw, log)
	if err != nil {
		return err
	}
	nc.SetDeadline(time.Time{})
	log.Info("replication: primary connected", "node", pm.Node, "decision", res.Decision.String(), "rule", res.Rule)
	s.primary.Store(&pm.Node)
	defer s.primary.Store(nil)
	sc := &secConn{s: s, nc: nc, fr: fr, fw: fw, log: log, wake: make(chan struct{}, 1), primary: pm.Node, gran: pm.Granularity,
		inline: proto != ProtocolB}
	return sc.run(ctx)
}

// negotiate is the secondary's side of the generation exchange.
func (s *Secondary) negotiate(nc net.Conn, fr *frameReader, fw *frameWriter, log *slog.Logger) (metaMsg, Resolution, error) {
	meta, err := s.meta()
	if err != nil {
		return metaMsg{}, Resolution{}, err
	}
	fail := func(code uint32, msg string) error {
		fw.write(Frame{Type: FrameError, Code: code, Data: []byte(msg[:min(len(msg), maxErrorMessage)])})
		fw.Flush()
		return errors.New(msg)
	}
	f, err := fr.read()
	if err != nil {
		return metaMsg{}, Resolution{}, fmt.Errorf("reading the primary's META: %w", err)
	}
	if f.Type != FrameMeta {
		return metaMsg{}, Resolution{}, fail(ReplErrProtocol, fmt.Sprintf("unexpected %v instead of META", f.Type))
	}
	pm, err := decodeMetaMsg(f.Data)
	if err != nil {
		return pm, Resolution{}, fail(ReplErrProtocol, err.Error())
	}
	if pm.Node == "" {
		return pm, Resolution{}, fail(ReplErrProtocol, "META without a node name")
	}
	bm, _, err := meta.Slot(pm.Node)
	if err != nil {
		return pm, Resolution{}, fail(ReplErrIO, err.Error())
	}
	local := meta.genView(pm.Node, false)
	node := s.Node
	if node == "" {
		node = "secondary"
	}
	ranges, overflow := rangesMsg(bm)
	msg := metaMsg{Node: node, Consistent: local.Consistent, Overflow: overflow, Policy: s.SplitBrain,
		Granularity: bm.Granularity(), Current: local.Current, History: local.History, PeerBitmap: local.PeerBitmap,
		Dirty: local.Dirty, Since: local.PrimarySince, Ranges: ranges}
	if err := fw.write(Frame{Type: FrameMeta, Data: appendMetaMsg(nil, msg)}); err != nil {
		return pm, Resolution{}, err
	}
	if err := fw.Flush(); err != nil {
		return pm, Resolution{}, err
	}
	res := Resolve(local, pm.view(), s.SplitBrain)
	if f, err = fr.read(); err != nil {
		return pm, res, fmt.Errorf("reading DECISION: %w", err)
	}
	if f.Type != FrameDecision {
		return pm, res, fail(ReplErrProtocol, fmt.Sprintf("unexpected %v instead of DECISION", f.Type))
	}
	args := []any{"rule", res.Rule, "policy", s.SplitBrain.String(), "local", msg.String(), "peer", pm.String()}
	if got := SyncDecision(f.Code); got != res.Decision {
		log.Error("replication: the primary's sync decision differs from ours (are the split-brain policies the same?)", append(args, "primary_decision", got.String(), "ours", res.Decision.String())...)
		return pm, res, fail(ReplErrSync, fmt.Sprintf("the primary decided %v by rule %d, this secondary %v by rule %d (policy %v)", got, f.Flags, res.Decision, res.Rule, s.SplitBrain))
	}
	refuse := ""
	switch {
	case res.Decision == SplitBrain:
		refuse = fmt.Sprintf("split brain (rule %d): %s", res.Rule, res.Reason)
	case res.Decision == Unrelated:
		refuse = fmt.Sprintf("unrelated data (rule %d)", res.Rule)
	case res.Decision.IsSource():
		refuse = fmt.Sprintf("this secondary has newer data than the primary (rule %d)", res.Rule)
	}
	s.sbMu.Lock()
	s.sbReason = refuse
	s.sbMu.Unlock()
	if refuse != "" {
		log.Error("replication: connection refused, nothing overwritten: "+refuse, args...)
		return pm, res, fmt.Errorf("%w: %s", ErrSplitBrain, refuse)
	}
	if res.SplitBrain {
		log.Warn("replication: split brain resolved by policy: this node's changes are discarded", append(args, "reason", res.Reason)...)
	}
	if res.Decision.IsTarget() {
		s.inSync.Store(false)
		if err := meta.SetConsistent(false); err != nil {
			return pm, res, fail(ReplErrIO, err.Error())
		}
	}
	if res.Decision == FullSyncTarget {
		size, gran := s.Backend.Size(), pm.Granularity
		// Digests of at most 4 MiB of data per frame, each sent at
		// once: the primary waits for every frame with its timeout, and
		// a slow disk or CPU (a TCG VM hashes a few MB/s) must not
		// make the whole volume's digests one late frame.
		per := max(1, min(int64(maxWriteChunk/digestSize), (4<<20)/gran))
		for first := int64(0); first*gran < size; first += per {
			d, err := digests(nil, s.Backend, first*gran, per*gran, gran)
			if err != nil {
				return pm, res, fail(ReplErrIO, err.Error())
			}
			nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if err := fw.write(Frame{Type: FrameCsums, Offset: uint64(first), Data: d}); err != nil {
				return pm, res, err
			}
			if err := fw.Flush(); err != nil {
				return pm, res, err
			}
		}
	}
	// The handshake ends with the primary's generation: adopted at once
	// when there is nothing to copy, else at the end of the resync.
	nc.SetReadDeadline(time.Now().Add(5 * time.Minute)) // a full sync compares every chunk first
	if f, err = fr.read(); err != nil {
		return pm, res, fmt.Errorf("reading GEN: %w", err)
	}
	if f.Type != FrameGen || f.Seq != 0 {
		return pm, res, fail(ReplErrProtocol, fmt.Sprintf("unexpected %v seq %d instead of GEN", f.Type, f.Seq))
	}
	if f.Flags&FrameFlagSyncDone != 0 {
		if err := meta.AdoptGen(f.Gen, true, pm.Node); err != nil {
			return pm, res, fail(ReplErrIO, err.Error())
		}
		s.inSync.Store(true)
	} else {
		s.inSync.Store(false)
	}
	return pm, res, nil
}

func (s *Secondary) handshake(nc net.Conn) (*frameReader, *frameWriter, Protocol, error) {
	fr, fw, h, err := s.handshake1(nc)
	return fr, fw, h.Protocol, err
}

func (s *Secondary) handshake1(nc net.Conn) (*frameReader, *frameWriter, hello, error) {
	h, hb, err := readHello(nc)
	if err != nil {
		return nil, nil, h, err
	}
	var nonceS [nonceSize]byte
	rand.Read(nonceS[:])
	chal := append(append([]byte(nil), replMagic[:]...), ReplVersion>>8, ReplVersion&0xff)
	chal = append(chal, nonceS[:]...)
	chal = append(chal, replMAC(s.Secret, []byte(labelSecondary), hb, nonceS[:])...)
	if _, err := nc.Write(chal); err != nil {
		return nil, nil, h, fmt.Errorf("sending CHALLENGE: %w", err)
	}
	auth := make([]byte, authSize)
	if _, err := io.ReadFull(nc, auth); err != nil {
		return nil, nil, h, fmt.Errorf("reading AUTH: %w", err)
	}
	if auth[0] != 0 {
		return nil, nil, h, fmt.Errorf("%w: the primary rejected our proof (the shared secrets differ)", ErrAuth)
	}
	if !hmac.Equal(auth[1:], replMAC(s.Secret, []byte(labelPrimary), hb, chal)) {
		return nil, nil, h, fmt.Errorf("%w: the primary did not prove knowledge of the shared secret", ErrAuth)
	}
	p2s, s2p := sessionKeys(s.Secret, h.Nonce[:], nonceS[:])
	fr, fw := newFrameReader(nc, p2s), newFrameWriter(nc, s2p)
	var why string
	switch size := uint64(s.Backend.Size()); {
	case h.Volume != s.Volume:
		why = fmt.Sprintf("volume %q, this secondary serves %q", h.Volume, s.Volume)
	case h.Size != size:
		why = fmt.Sprintf("volume %q has %d bytes on the primary, %d here", h.Volume, h.Size, size)
	}
	if why != "" {
		fw.write(Frame{Type: FrameError, Code: ReplErrVolume, Data: []byte(why)})
		fw.Flush()
		return nil, nil, h, errors.New(why)
	}
	return fr, fw, h, nil
}

// secConn is one primary connection in the replication phase: the reader
// (run) verifies frames and queues them, the applier applies them in
// order, the acker sends cumulative acknowledgements.
type secConn struct {
	s   *Secondary
	nc  net.Conn
	fr  *frameReader
	fw  *frameWriter
	log *slog.Logger

	primary string // the primary's node name
	gran    int64  // the primary's granularity (VERIFY digests)

	wake    chan struct{} // an acknowledgement is due
	wmu     sync.Mutex    // fw
	failure atomic.Pointer[Frame]
	// first is the first sequence number of this connection (0 before
	// it): received and applied may still be an earlier connection's,
	// which this primary must not be told about.
	first atomic.Uint64
	// inline (protocols A and C): the reader applies each frame itself
	// and acknowledges it as applied once no further whole frame is
	// waiting, with no hand-over to the applier and the acker (two
	// goroutine wake-ups per write on the latency path). Protocol B needs
	// the applier: it acknowledges receipt before the frame is applied.
	inline bool

	sentRecv, sentDone uint64 // guarded by wmu

	// recent holds the ranges of the last changes applied (a ring).
	recentMu sync.Mutex
	recent   [][2]int64
	recentAt int
}

// recentChanges is how many of the last applied changes a secondary
// remembers for Replicas.
const recentChanges = 1 << 16

// remember records an applied change's range.
func (c *secConn) remember(off, n int64) {
	if n <= 0 || len(c.s.Replicas) == 0 {
		return
	}
	c.recentMu.Lock()
	if len(c.recent) < recentChanges {
		c.recent = append(c.recent, [2]int64{off, n})
	} else {
		c.recent[c.recentAt] = [2]int64{off, n}
		c.recentAt = (c.recentAt + 1) % recentChanges
	}
	c.recentMu.Unlock()
}

// markUnstable marks the recent changes out of sync for every other
// replica (see Secondary.Replicas).
func (c *secConn) markUnstable() {
	c.recentMu.Lock()
	recent := c.recent
	c.recent = nil
	c.recentMu.Unlock()
	if len(recent) == 0 || c.s.Meta == nil {
		return
	}
	for _, name := range c.s.Replicas {
		if name == c.primary || name == c.s.Node {
			continue
		}
		bm, _, err := c.s.Meta.Slot(name)
		if err != nil {
			c.log.Error("replication: marking the last changes for another replica", "replica", name, "err", err)
			continue
		}
		for _, r := range recent {
			bm.Mark(r[0], r[1])
		}
		if err := c.s.Meta.SaveBitmap(name); err != nil {
			c.log.Error("replication: writing metadata", "err", err)
		}
	}
	c.log.Info("replication: the last changes applied are marked out of sync for the other replicas", "changes", len(recent), "replicas", len(c.s.Replicas))
}

func (c *secConn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *secConn) run(ctx context.Context) error {
	s := c.s
	budgetMax := s.MaxQueueBytes
	if budgetMax <= 0 {
		budgetMax = 64 << 20
	}
	budget := semaphore.NewWeighted(budgetMax)
	queue := make(chan Frame, 4096)
	stopCtx := context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(time.Now()) })
	defer stopCtx()

	// Sequence numbers continue from whatever this connection starts with,
	// and must then be consecutive. A restarted primary starts again from
	// 1: the counters are this connection's.
	s.received.Store(0)
	s.applied.Store(0)
	var applyErr atomic.Value
	applierDone := make(chan struct{})
	go func() {
		defer close(applierDone)
		failed := false
		for f := range queue {
			if !failed {
				if err := c.apply(f); err != nil {
					failed = true
					applyErr.Store(err)
					c.fail(ReplErrIO, fmt.Sprintf("applying %v seq %d: %v", f.Type, f.Seq, err))
				} else {
					s.applied.Store(f.Seq)
					c.kick()
				}
			}
			budget.Release(min(cost(f), budgetMax))
			f.release()
		}
	}()
	ackerDone := make(chan struct{})
	stopAcker := make(chan struct{})
	go func() {
		defer close(ackerDone)
		c.acker(stopAcker)
	}()

	// From here every frame is applied, then released (in the reader or
	// the applier): their buffers are pooled.
	c.fr.pool = true
	var expect uint64 // next sequence number; 0 before the first frame
	var reason error
	size := uint64(s.Backend.Size())
read:
	for {
		f, err := c.fr.read()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				reason = nil
			case errors.Is(err, ErrFrame):
				reason = err
				c.fail(ReplErrProtocol, err.Error())
			default:
				reason = fmt.Errorf("reading from the primary: %w", err)
			}
			break read
		}
		if err := checkFrame(f, expect, size); err != nil {
			reason = err
			c.fail(ReplErrProtocol, err.Error())
			break read
		}
		if expect == 0 {
			c.first.Store(f.Seq)
		}
		expect = f.Seq + 1
		if c.inline {
			s.received.Store(f.Seq)
			err := c.apply(f)
			f.release()
			if err != nil {
				applyErr.Store(err)
				c.fail(ReplErrIO, fmt.Sprintf("applying %v seq %d: %v", f.Type, f.Seq, err))
				reason = err
				break read
			}
			s.applied.Store(f.Seq)
			if !c.fr.frameWaiting() && !c.sendAcks() {
				reason = errors.New("sending acknowledgements failed")
				break read
			}
			continue
		}
		if err := budget.Acquire(ctx, min(cost(f), budgetMax)); err != nil {
			reason = err
			break read
		}
		queue <- f
		s.received.Store(f.Seq)
		// Receipt is what protocol B waits for: acknowledge it from
		// here, once no further whole frame is waiting, rather than
		// through the acker.
		if !c.fr.frameWaiting() && !c.sendAcks() {
			reason = errors.New("sending acknowledgements failed")
			break read
		}
	}
	// Everything received is applied (it may have been acknowledged as
	// received), then made durable.
	close(queue)
	<-applierDone
	if applyErr.Load() == nil {
		if err := s.Backend.Flush(); err != nil && reason == nil {
			reason = fmt.Errorf("final flush: %w", err)
		}
	}
	close(stopAcker)
	<-ackerDone
	c.nc.Close()
	c.markUnstable()
	if e, ok := applyErr.Load().(error); ok && reason == nil {
		reason = e
	}
	c.log.Info("replication: primary disconnected", "received", s.Received(), "applied", s.Applied(), "reason", reason)
	return reason
}

func cost(f Frame) int64 { return int64(len(f.Data)) + 64 }

// checkFrame validates a frame from the primary beyond its encoding.
func checkFrame(f Frame, expect, size uint64) error {
	switch f.Type {
	case FrameWrite, FrameTrim, FrameZeroes, FrameFlush, FrameGen, FrameVerify:
	default:
		return fmt.Errorf("%w: unexpected %v from the primary", ErrFrame, f.Type)
	}
	if f.Seq == 0 || (expect != 0 && f.Seq != expect) {
		return fmt.Errorf("%w: %v seq %d, expected %d", ErrFrame, f.Type, f.Seq, expect)
	}
	n := f.Length
	if f.Type == FrameWrite {
		n = uint64(len(f.Data))
	}
	if f.Offset > size || n > size-f.Offset {
		return fmt.Errorf("%w: %v %d+%d beyond the volume's %d bytes", ErrFrame, f.Type, f.Offset, n, size)
	}
	return nil
}

// fail sends an ERROR frame (once) and closes the connection, which ends
// the reader.
func (c *secConn) fail(code uint32, msg string) {
	f := &Frame{Type: FrameError, Code: code, Data: []byte(msg[:min(len(msg), maxErrorMessage)])}
	if !c.failure.CompareAndSwap(nil, f) {
		return
	}
	c.log.Warn("replication: closing the primary's connection", "err", msg)
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if c.fw.write(*f) == nil {
		c.fw.Flush()
	}
	c.wmu.Unlock()
	c.nc.Close()
}

func (c *secConn) apply(f Frame) error {
	be := c.s.Backend
	off, n := int64(f.Offset), int64(f.Length)
	var err error
	switch f.Type {
	case FrameWrite:
		n = int64(len(f.Data))
		_, err = be.WriteAt(f.Data, off)
		c.remember(off, n)
	case FrameTrim:
		err = be.Trim(off, n)
		c.remember(off, n)
	case FrameZeroes:
		err = be.WriteZeroes(off, n, f.Flags&FrameFlagMayTrim != 0)
		c.remember(off, n)
	case FrameFlush:
		if n == 0 {
			return be.Flush()
		}
		return be.Sync(off, n)
	case FrameGen:
		sync := f.Flags&FrameFlagSyncDone != 0
		if sync {
			// Everything before is applied; make it durable before
			// claiming consistency.
			if err := be.Flush(); err != nil {
				return err
			}
		}
		if err := c.s.Meta.AdoptGen(f.Gen, sync, c.primary); err != nil {
			return err
		}
		if sync {
			c.s.inSync.Store(true)
		}
		return nil
	case FrameVerify:
		d, err := digests(nil, be, off, n, c.gran)
		if err != nil {
			return err
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.fw.write(Frame{Type: FrameVerifyResp, Seq: f.Seq, Offset: f.Offset, Data: d}); err != nil {
			return err
		}
		return c.fw.Flush()
	}
	if err == nil && f.Flags&FrameFlagFUA != 0 {
		err = be.Sync(off, n)
	}
	return err
}

// sendAcks sends the acknowledgements due (received or applied moved).
// false: sending failed (the connection is closed).
func (c *secConn) sendAcks() bool {
	if c.failure.Load() != nil {
		return true // fail sends the ERROR frame and closes
	}
	recv, done := c.s.received.Load(), c.s.applied.Load()
	first := c.first.Load()
	if first == 0 || recv < first {
		return true
	}
	if done < first {
		done = 0
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	sent := false
	if recv > c.sentRecv && recv > done {
		err = c.fw.write(Frame{Type: FrameAckRecv, Seq: recv})
		c.sentRecv, sent = recv, true
	}
	if err == nil && done > c.sentDone {
		err = c.fw.write(Frame{Type: FrameAckDone, Seq: done})
		c.sentDone, sent = done, true
	}
	if err == nil && sent {
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err = c.fw.Flush()
	}
	if err != nil {
		c.nc.Close()
	}
	return err == nil
}

// acker sends cumulative acknowledgements whenever received or applied
// moved, until stop is closed (then it sends the last ones).
func (c *secConn) acker(stop <-chan struct{}) {
	for {
		select {
		case <-c.wake:
			if !c.sendAcks() {
				<-stop
				return
			}
		case <-stop:
			c.sendAcks()
			return
		}
	}
}
