package nbdrepl

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrSplitBrain is returned (wrapped) when connecting finds a split brain
// or unrelated data that the policy does not resolve, or a sync the
// roles forbid (the primary would be overwritten). Nothing is overwritten;
// the message says what to do.
var ErrSplitBrain = errors.New("replication refused: data diverged")

// chunkDigest is a chunk's digest: SHA-256 truncated to digestSize bytes.
func chunkDigest(dst, b []byte) []byte {
	s := sha256.Sum256(b)
	return append(dst, s[:digestSize]...)
}

// digests appends the digest of every gran-sized chunk of [off, off+n) of
// be (the last one clipped to the volume).
func digests(dst []byte, be Backend, off, n, gran int64) ([]byte, error) {
	end := min(off+n, be.Size())
	buf := make([]byte, min(gran, max(end-off, 0)))
	for ; off < end; off += gran {
		b := buf[:min(gran, end-off)]
		if _, err := be.ReadAt(b, off); err != nil {
			return dst, fmt.Errorf("reading %d+%d: %w", off, len(b), err)
		}
		dst = chunkDigest(dst, b)
	}
	return dst, nil
}

// ensureStub returns the peer named name, creating a disconnected one
// (and its metadata slot) if it is new; a connected one is an error.
func (r *Replicated) ensureStub(name string) (*Peer, error) {
	r.order.Lock()
	defer r.order.Unlock()
	if r.closed {
		return nil, ErrReplClosed
	}
	for _, p := range r.peers {
		if p.name == name {
			if p.Connected() {
				return nil, fmt.Errorf("secondary %s is already connected", name)
			}
			return p, nil
		}
	}
	bm, gen, err := r.meta.Slot(name)
	if err != nil {
		return nil, err
	}
	p := r.stub(name, bm, gen)
	r.peers = append(append([]*Peer(nil), r.peers...), p)
	return p, nil
}

// rotateIfAway starts a new generation the first time the primary writes
// while a peer is away (its bitmap generation is still 0), and tells the
// connected peers. Called with r.order held.
func (r *Replicated) rotateIfAway() error {
	var away []*Peer
	var names []string
	for _, p := range r.peers {
		if p.bmGen == 0 && !p.Connected() {
			away, names = append(away, p), append(names, p.name)
		}
	}
	if len(away) == 0 {
		return nil
	}
	old, cur, err := r.meta.Rotate(names)
	if err != nil || cur == 0 {
		return err
	}
	for _, p := range away {
		p.bmGen = old
	}
	r.log.Info("replication: new generation, peers away", "current", fmt.Sprintf("%016X", cur), "bitmap", fmt.Sprintf("%016X", old), "peers", names)
	r.seq++
	for _, q := range r.peers {
		q.enqueue([]Frame{{Type: FrameGen, Seq: r.seq, Gen: cur}}, 0, 0, kindCtl)
	}
	return nil
}

// ackedByAll is the last sequence number every connected peer has
// acknowledged as applied (the activity log keeps extents written after it).
// Called with r.order held.
func (r *Replicated) ackedByAll() uint64 {
	acked := r.seq
	for _, p := range r.peers {
		p.mu.Lock()
		if p.err == nil {
			acked = min(acked, p.done)
		}
		p.mu.Unlock()
	}
	return acked
}

// negotiate exchanges generations with the secondary, decides, and
// prepares the peer's bitmap (the secondary's dirty ranges; for a full
// sync, every chunk whose digest differs).
func (r *Replicated) negotiate(nc net.Conn, fr *frameReader, fw *frameWriter, stub *Peer) (Resolution, error) {
	gran := r.cfg.DirtyGranularity
	local := r.meta.genView(stub.name, true)
	msg := metaMsg{Node: r.cfg.Node, Primary: true, Consistent: local.Consistent, Policy: r.cfg.SplitBrain,
		Granularity: gran, Current: local.Current, History: local.History, PeerBitmap: local.PeerBitmap,
		Dirty: local.Dirty, Since: local.PrimarySince}
	deadline := func() { nc.SetDeadline(time.Now().Add(r.cfg.Timeout)) }
	deadline()
	if err := fw.write(Frame{Type: FrameMeta, Data: appendMetaMsg(nil, msg)}); err != nil {
		return Resolution{}, err
	}
	if err := fw.Flush(); err != nil {
		return Resolution{}, err
	}
	f, err := fr.read()
	if err != nil {
		return Resolution{}, fmt.Errorf("reading the secondary's META: %w", err)
	}
	if f.Type == FrameError {
		return Resolution{}, fmt.Errorf("secondary refused: %s", f.Data)
	}
	if f.Type != FrameMeta {
		return Resolution{}, fmt.Errorf("unexpected %v instead of META", f.Type)
	}
	pm, err := decodeMetaMsg(f.Data)
	if err != nil {
		return Resolution{}, err
	}
	if pm.Node != stub.name {
		r.log.Warn("replication: the secondary calls itself by another name than the one it was attached as; "+
			"attach peers by their node names, or their bitmaps will not be found after a role change",
			"attached_as", stub.name, "node", pm.Node)
	}
	res := Resolve(local, pm.view(), r.cfg.SplitBrain)
	if err := fw.write(Frame{Type: FrameDecision, Code: uint32(res.Decision.Mirror()), Flags: uint32(res.Rule)}); err != nil {
		return res, err
	}
	if err := fw.Flush(); err != nil {
		return res, err
	}
	args := []any{"secondary", stub.name, "rule", res.Rule, "policy", r.cfg.SplitBrain.String(),
		"local", msg.String(), "peer", pm.String()}
	switch {
	case res.Decision == SplitBrain:
		r.log.Error("replication: SPLIT BRAIN detected: both nodes wrote since they last shared a generation; nothing was overwritten. "+
			"Resolve it: pick the node whose changes to discard, make it the secondary with a split-brain policy that discards it "+
			"(or discard its metadata for a full sync), and reconnect", append(args, "reason", res.Reason)...)
		return res, fmt.Errorf("%w: split brain (rule %d): %s", ErrSplitBrain, res.Rule, res.Reason)
	case res.Decision == Unrelated:
		r.log.Error("replication: the secondary holds unrelated data (no common generation); nothing was overwritten. "+
			"If its data is to be discarded, recreate its metadata (a full sync follows)", args...)
		return res, fmt.Errorf("%w: unrelated data (rule %d)", ErrSplitBrain, res.Rule)
	case res.Decision.IsTarget():
		r.log.Error("replication: the secondary has newer data than this primary; nothing was overwritten. "+
			"Demote this node and let it sync from the other", args...)
		return res, fmt.Errorf("%w: the secondary's data is newer (rule %d); demote this node", ErrSplitBrain, res.Rule)
	}
	if res.SplitBrain {
		r.log.Warn("replication: split brain detected and resolved by policy: the secondary's changes are discarded", append(args, "reason", res.Reason, "decision", res.Decision.String())...)
	}
	marked := false
	if res.Decision.IsSource() {
		if pm.Overflow {
			stub.dirty.MarkAll()
		}
		for _, rg := range pm.Ranges {
			stub.dirty.Mark(rg[0], rg[1]-rg[0])
		}
		marked = pm.Overflow || len(pm.Ranges) > 0
	}
	if res.Decision == FullSyncSource {
		n, err := r.compareChunks(nc, fr, stub, gran)
		if err != nil {
			return res, fmt.Errorf("full sync: %w", err)
		}
		marked = true
		r.log.Info("replication: full sync: chunks compared", "secondary", stub.name, "differing_bytes", n, "volume_bytes", r.local.Size())
	}
	if marked {
		if err := r.meta.SaveBitmap(stub.name); err != nil {
			return res, err
		}
	}
	return res, nil
}

// compareChunks reads the secondary's chunk digests and marks every chunk
// whose digest differs from the primary's in the peer's bitmap. Writes made
// meanwhile are marked anyway (the peer is not attached), so a chunk
// found equal and then written is still copied. It returns the bytes
// marked and counts the others as skipped.
func (r *Replicated) compareChunks(nc net.Conn, fr *frameReader, stub *Peer, gran int64) (int64, error) {
	size := r.local.Size()
	nchunks := (size + gran - 1) / gran
	var differ int64
	mine := make([]byte, 0, digestSize)
	for next := int64(0); next < nchunks; {
		nc.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
		f, err := fr.read()
		if err != nil {
			return differ, fmt.Errorf("reading CSUMS: %w", err)
		}
		if f.Type != FrameCsums || int64(f.Offset) != next || int64(len(f.Data)/digestSize) > nchunks-next {
			return differ, fmt.Errorf("unexpected %v (chunk %d, want %d)", f.Type, f.Offset, next)
		}
		for d := f.Data; len(d) > 0; d, next = d[digestSize:], next+1 {
			off := next * gran
			n := min(gran, size-off)
			mine, err = digests(mine[:0], r.local, off, n, gran)
			if err != nil {
				return differ, err
			}
			if string(mine) != string(d[:digestSize]) {
				stub.dirty.Mark(off, n)
				differ += n
			} else {
				stub.skippedBytes.Add(n)
			}
		}
	}
	nc.SetReadDeadline(time.Time{})
	return differ, nil
}

// SkippedBytes returns the bytes a full sync found identical on the
// secondary (by digest) and did not send.
func (p *Peer) SkippedBytes() int64 { return p.skippedBytes.Load() }

// tokenBucket limits a byte rate: take blocks until the bytes are
// available (going into debt for a take larger than the burst).
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate, burst int64) *tokenBucket {
	return &tokenBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (b *tokenBucket) take(n int64) {
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	var wait time.Duration
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
}

// VerifyResult is what an online verify found.
type VerifyResult struct {
	Chunks       int64      // chunks compared
	Differ       int64      // chunks whose digests differ
	Ranges       [][2]int64 // differing byte ranges [off, end), merged
	Repairing    bool       // differing chunks were marked for resync
	BytesChecked int64
}

type verifyReq struct {
	off     int64
	digests []byte
}

type verifyResult struct {
	off    int64
	differ []int64 // chunk offsets
	err    error
}

const verifyStep = 256 // chunks per VERIFY frame

// Verify compares the digest of every chunk on the primary and on this
// connected secondary, at the same point of the replication stream (the
// primary hashes its chunks when it queues the VERIFY frame, under the
// order lock, and the secondary when it applies it), so it runs online,
// under writes. With repair, differing chunks are marked out of sync and
// resynced from the primary (wait for PeerUpToDate).
func (p *Peer) Verify(repair bool) (VerifyResult, error) {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	r := p.r
	gran := r.cfg.DirtyGranularity
	size := r.local.Size()
	const window = 8
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return VerifyResult{}, fmt.Errorf("verify: secondary %s is not connected: %w", p.name, p.err)
	}
	if repair && p.syncing {
		p.mu.Unlock()
		return VerifyResult{}, errors.New("verify: a resync is running; verify after it")
	}
	p.vpend = map[uint64]verifyReq{}
	p.vch = make(chan verifyResult, window+1)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.vpend, p.vch = nil, nil
		p.mu.Unlock()
	}()
	var res VerifyResult
	var differ []int64
	outstanding := 0
	collect := func() error {
		p.mu.Lock()
		ch, changed := p.vch, p.changed
		p.mu.Unlock()
		for {
			select {
			case v := <-ch:
				outstanding--
				differ = append(differ, v.differ...)
				return v.err
			case <-changed:
				if err := p.Err(); err != nil {
					return fmt.Errorf("verify: secondary disconnected: %w", err)
				}
				p.mu.Lock()
				changed = p.changed
				p.mu.Unlock()
			case <-time.After(r.cfg.Timeout):
				return fmt.Errorf("verify: no answer within %v", r.cfg.Timeout)
			}
		}
	}
	for off := int64(0); off < size; off += verifyStep * gran {
		n := min(verifyStep*gran, size-off)
		r.order.Lock()
		if r.closed {
			r.order.Unlock()
			return res, ErrReplClosed
		}
		d, err := digests(nil, r.local, off, n, gran)
		if err != nil {
			r.order.Unlock()
			return res, fmt.Errorf("verify: %w", err)
		}
		r.seq++
		p.mu.Lock()
		p.vpend[r.seq] = verifyReq{off: off, digests: d}
		p.mu.Unlock()
		for _, q := range r.peers {
			q.enqueue([]Frame{{Type: FrameVerify, Seq: r.seq, Offset: uint64(off), Length: uint64(n)}}, 0, 0, kindCtl)
		}
		r.order.Unlock()
		res.Chunks += (n + gran - 1) / gran
		res.BytesChecked += n
		outstanding++
		if outstanding >= window {
			if err := collect(); err != nil {
				return res, err
			}
		}
	}
	for outstanding > 0 {
		if err := collect(); err != nil {
			return res, err
		}
	}
	mark := NewDirtyBitmap(size, gran)
	for _, off := range differ {
		mark.Mark(off, 1)
	}
	res.Differ = int64(len(differ))
	res.Ranges = mark.Ranges()
	if res.Differ > 0 {
		p.log.Warn("replication: verify found differing chunks", "chunks", res.Differ, "ranges", len(res.Ranges), "first", res.Ranges[0][0], "repair", repair)
	} else {
		p.log.Info("replication: verify found no difference", "chunks", res.Chunks)
	}
	if repair && res.Differ > 0 {
		r.order.Lock()
		for _, rg := range res.Ranges {
			p.dirty.Mark(rg[0], rg[1]-rg[0])
		}
		p.mu.Lock()
		start := p.err == nil && !p.syncing
		if start {
			p.syncing = true
			p.wg.Add(1)
		}
		p.mu.Unlock()
		r.order.Unlock()
		if start {
			go p.resync()
		}
		res.Repairing = start
	}
	return res, nil
}

// verifyResp handles a VERIFY_RESP (from the ack reader).
func (p *Peer) verifyResp(f Frame) {
	p.mu.Lock()
	req, ok := p.vpend[f.Seq]
	if ok {
		delete(p.vpend, f.Seq)
	}
	ch := p.vch
	p.mu.Unlock()
	if !ok {
		return // a VERIFY of a verify of another peer, or a stale one
	}
	v := verifyResult{off: req.off}
	gran := p.r.cfg.DirtyGranularity
	if int64(f.Offset) != req.off || len(f.Data) != len(req.digests) {
		v.err = fmt.Errorf("verify: answer for %d with %d digests, asked %d with %d", f.Offset, len(f.Data)/digestSize, req.off, len(req.digests)/digestSize)
	} else {
		for i := 0; i < len(req.digests); i += digestSize {
			if string(req.digests[i:i+digestSize]) != string(f.Data[i:i+digestSize]) {
				v.differ = append(v.differ, req.off+int64(i/digestSize)*gran)
			}
		}
	}
	ch <- v
}
