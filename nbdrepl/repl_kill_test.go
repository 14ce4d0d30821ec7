package nbdrepl

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kill tests: writers stream writes through a primary while the primary
// "dies": its connection to the secondary is reset (SO_LINGER 0, so the
// secondary sees ECONNRESET and unread bytes are lost) and no write
// completing afterwards counts as acknowledged. Then the secondary's store
// is checked against the primary's sequence of writes.

const (
	killBlock  = 4096
	killBlocks = 256 // a 1 MiB volume, so writes overlap a lot
)

// recordingBackend records the writes in the order the primary applied
// them, which is their sequence order (Replicated applies locally under
// the lock that assigns sequence numbers).
type recordingBackend struct {
	*MemBackend
	mu  sync.Mutex
	log []killWrite
}

type killWrite struct {
	id            uint64
	first, blocks int
}

func (rb *recordingBackend) WriteAt(p []byte, off int64) (int, error) {
	n, err := rb.MemBackend.WriteAt(p, off)
	if err == nil {
		rb.mu.Lock()
		rb.log = append(rb.log, killWrite{id: binary.BigEndian.Uint64(p), first: int(off / killBlock), blocks: len(p) / killBlock})
		rb.mu.Unlock()
	}
	return n, err
}

// killPayload: every 16 bytes of block i of write id hold (id, first+i),
// so a torn or misplaced block is detected.
func killPayload(id uint64, first, blocks int) []byte {
	b := make([]byte, blocks*killBlock)
	for i := range blocks {
		for j := 0; j < killBlock; j += 16 {
			binary.BigEndian.PutUint64(b[i*killBlock+j:], id)
			binary.BigEndian.PutUint64(b[i*killBlock+j+8:], uint64(first+i))
		}
	}
	return b
}

type killResult struct {
	issued, acked, inflightAtKill int
	recvAtKill, appliedAtKill     uint64
	prefix                        int // writes in the prefix the secondary holds
	ackedChecked, ackedLost       int
}

func TestReplKillPrimary(t *testing.T) {
	rounds := 4
	if testing.Short() {
		rounds = 1
	}
	for _, proto := range []Protocol{ProtocolA, ProtocolB, ProtocolC} {
		t.Run(proto.String(), func(t *testing.T) {
			var tot killResult
			for round := range rounds {
				res := killRound(t, proto, uint64(round))
				t.Logf("round %d: %d writes issued, %d acknowledged before the kill, %d in flight at the kill; secondary had received seq %d and applied %d at the kill; its store holds the first %d writes; %d acknowledged writes checked, %d of them lost",
					round, res.issued, res.acked, res.inflightAtKill, res.recvAtKill, res.appliedAtKill, res.prefix, res.ackedChecked, res.ackedLost)
				tot.acked += res.acked
				tot.ackedChecked += res.ackedChecked
				tot.ackedLost += res.ackedLost
				tot.inflightAtKill += res.inflightAtKill
			}
			t.Logf("protocol %v, %d rounds: %d acknowledged writes checked, %d lost (allowed only under A), %d writes in flight at the kills",
				proto, rounds, tot.ackedChecked, tot.ackedLost, tot.inflightAtKill)
		})
	}
}

func killRound(t *testing.T, proto Protocol, seed uint64) killResult {
	rng := rand.New(rand.NewPCG(seed, uint64(proto)))
	// The secondary's store is a little slow now and then, so frames pile
	// up between receipt and store (what protocol B acknowledges early).
	sm := NewMemBackend(killBlocks * killBlock)
	var writes atomic.Int64
	sm.Hook = func(op string, off, length int64) error {
		if op == "write" && writes.Add(1)%16 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
		return nil
	}
	ts := startSecondary(t, sm, "vol0", testSecret)
	rb := &recordingBackend{MemBackend: NewMemBackend(killBlocks * killBlock)}
	r := newPrimary(t, rb, proto)
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).SetLinger(0) // Close sends a reset
	if _, err := r.Attach(t.Context(), nc, "s"); err != nil {
		t.Fatal(err)
	}

	var (
		killed   atomic.Bool
		nextID   atomic.Uint64
		inflight atomic.Int64
		mu       sync.Mutex
		acked    []uint64
		wg       sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wrng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !killed.Load() {
				id := nextID.Add(1)
				blocks := 1 + wrng.IntN(4)
				first := wrng.IntN(killBlocks - blocks + 1)
				inflight.Add(1)
				_, err := r.WriteAt(killPayload(id, first, blocks), int64(first*killBlock))
				// A write completing after the kill never reached the
				// writer: the primary was dead.
				if err == nil && !killed.Load() {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
				inflight.Add(-1)
			}
		}()
	}
	// Kill after a random time, while the stream runs.
	time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
	var res killResult
	killed.Store(true)
	res.inflightAtKill = int(inflight.Load())
	res.recvAtKill, res.appliedAtKill = ts.sec.Received(), ts.sec.Applied()
	r.Close() // resets the connection
	wg.Wait()
	// The secondary applies what it received, flushes, and ends.
	if err := ts.result(t); err != nil {
		t.Logf("secondary: %v", err)
	}
	res.issued = int(nextID.Load())
	res.acked = len(acked)

	// The secondary's store must be the result of the first k writes of
	// the primary's sequence, for some k.
	store := sm.Bytes()
	rb.mu.Lock()
	wlog := rb.log
	rb.mu.Unlock()
	pos := make(map[uint64]int, len(wlog)) // write id -> position in the sequence
	for i, w := range wlog {
		pos[w.id] = i
	}
	blockPos := make([]int, killBlocks) // position of the write each block holds, -1: none
	k := -1
	for b := range killBlocks {
		blk := store[b*killBlock : (b+1)*killBlock]
		id, idx := binary.BigEndian.Uint64(blk), binary.BigEndian.Uint64(blk[8:])
		for j := 0; j < killBlock; j += 16 {
			if binary.BigEndian.Uint64(blk[j:]) != id || binary.BigEndian.Uint64(blk[j+8:]) != idx {
				t.Fatalf("block %d torn: holds pieces of several writes", b)
			}
		}
		if id == 0 {
			blockPos[b] = -1
			continue
		}
		p, ok := pos[id]
		if !ok || idx != uint64(b) {
			t.Fatalf("block %d holds write %d block %d, which the primary never wrote there", b, id, idx)
		}
		blockPos[b] = p
		k = max(k, p)
	}
	last := make([]int, killBlocks)
	for i := range last {
		last[i] = -1
	}
	for i := 0; i <= k; i++ {
		for b := wlog[i].first; b < wlog[i].first+wlog[i].blocks; b++ {
			last[b] = i
		}
	}
	for b := range killBlocks {
		if last[b] != blockPos[b] {
			t.Fatalf("not a prefix: block %d holds write #%d of the sequence, but the first %d writes leave write #%d there", b, blockPos[b], k+1, last[b])
		}
	}
	res.prefix = k + 1
	if got := ts.sec.Applied(); got != uint64(k+1) {
		t.Errorf("secondary reports seq %d applied, its store holds the first %d writes", got, k+1)
	}
	if res.prefix >= len(wlog) {
		t.Logf("note: the secondary holds every write (%d); nothing was in flight on the wire", len(wlog))
	}

	// Acknowledged writes: under B and C, every one is in the prefix.
	for _, id := range acked {
		res.ackedChecked++
		if pos[id] > k {
			res.ackedLost++
			if proto != ProtocolA {
				t.Errorf("protocol %v: write %d (#%d of the sequence) was acknowledged but the secondary holds only the first %d", proto, id, pos[id], k+1)
			}
		}
	}
	if res.acked == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	if t.Failed() {
		t.FailNow()
	}
	return res
}
