package nbdrepl

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveSecondary serves sec on loopback TCP until the test ends.
func serveSecondary(t testing.TB, sec *Secondary) *testSec {
	t.Helper()
	if sec.Logger == nil {
		sec.Logger = testLogger(t)
	}
	ts := &testSec{sec: sec, errs: make(chan error, 16)}
	if m, ok := sec.Backend.(*MemBackend); ok {
		ts.mem = m
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts.errs <- ts.sec.ServeConn(ctx, c)
			}()
		}
	}()
	return ts
}

func fillRandom(t testing.TB, be Backend, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	if _, err := be.WriteAt(randBytes(rng, int(be.Size())), 0); err != nil {
		t.Fatal(err)
	}
}

// TestReplFullSyncSkipsMatching: a new secondary that already holds most of
// the data (a restored backup, say) gets only the chunks whose digests
// differ.
func TestReplFullSyncSkipsMatching(t *testing.T) {
	const size, gran = 4 << 20, 4096
	pm := NewMemBackend(size)
	fillRandom(t, pm, 1)
	sm := NewMemBackend(size)
	sm.WriteAt(pm.Bytes(), 0)
	rng := rand.New(rand.NewPCG(5, 6))
	planted := map[int64]bool{}
	for len(planted) < 37 {
		c := rng.Int64N(size / gran)
		planted[c] = true
		sm.WriteAt([]byte{0xde, 0xad, byte(c)}, c*gran+rng.Int64N(gran-3))
	}
	r := newPrimary(t, pm, ProtocolC, func(c *ReplConfig) { c.DirtyGranularity = gran })
	ts := serveSecondary(t, &Secondary{Backend: sm, Volume: "vol0", Secret: testSecret})
	p := attach(t, r, ts, "s0")
	waitUpToDate(t, p)
	r.Flush()
	waitApplied(t, r, ts)
	if !bytes.Equal(sm.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs after the full sync")
	}
	want := int64(len(planted)) * gran
	if got := p.ResyncBytes(); got != want {
		t.Fatalf("full sync sent %d bytes, want %d (%d differing chunks)", got, want, len(planted))
	}
	if got := p.SkippedBytes(); got != size-want {
		t.Fatalf("skipped %d bytes, want %d", got, size-want)
	}
	if h := ts.sec.Meta.Header(); h.Current != r.Meta().Current() || h.Flags&MetaConsistent == 0 {
		t.Fatalf("secondary's metadata after the sync: %+v, primary current %016X", h, r.Meta().Current())
	}
	t.Logf("full sync of a %d-byte volume: sent %d bytes (%d chunks), skipped %d bytes by digest", size, p.ResyncBytes(), len(planted), p.SkippedBytes())
}

// node is one machine of a two-node split-brain scenario: its disk and its
// metadata survive role changes.
type node struct {
	name string
	disk *MemBackend
	meta *MetaStore
}

func newNode(t testing.TB, name string, size int64) *node {
	m, err := NewMemMeta(MetaOptions{Size: size, Granularity: 4096, ALExtent: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return &node{name: name, disk: NewMemBackend(size), meta: m}
}

func (n *node) primary(t testing.TB, policy SplitBrainPolicy) *Replicated {
	t.Helper()
	return newPrimary(t, n.disk, ProtocolC, func(c *ReplConfig) { c.Node, c.Meta, c.SplitBrain = n.name, n.meta, policy })
}

func (n *node) secondary(t testing.TB, policy SplitBrainPolicy) *testSec {
	t.Helper()
	return serveSecondary(t, &Secondary{Backend: n.disk, Volume: "vol0", Secret: testSecret, Node: n.name, Meta: n.meta, SplitBrain: policy})
}

func writeChunks(t testing.TB, r *Replicated, first, n int64, tag byte) {
	t.Helper()
	for c := first; c < first+n; c++ {
		if _, err := r.WriteAt(bytes.Repeat([]byte{tag}, 100), c*4096+7); err != nil {
			t.Fatal(err)
		}
	}
}

// splitBrain builds a split brain: a is primary with b connected; the link
// breaks; a writes nA chunks (from chunk 100); b is promoted (later) and
// writes nB chunks (from chunk 300), then is demoted. It returns a's
// primary (still running) and each side's disk contents at that point.
func splitBrain(t *testing.T, nA, nB int64, policy SplitBrainPolicy) (a, b *node, ra *Replicated, aData, bData []byte) {
	const size = 4 << 20
	a, b = newNode(t, "A", size), newNode(t, "B", size)
	ra = a.primary(t, policy)
	ts := b.secondary(t, policy)
	p := attach(t, ra, ts, "B")
	writeChunks(t, ra, 0, 10, 1)
	waitUpToDate(t, p)
	ra.Flush()
	waitApplied(t, ra, ts)
	disconnect(t, ra, ts, "B")
	writeChunks(t, ra, 100, nA, 2)
	time.Sleep(2 * time.Millisecond) // b becomes primary strictly later
	rb := b.primary(t, policy)
	writeChunks(t, rb, 300, nB, 3)
	if err := rb.Close(); err != nil {
		t.Fatal(err)
	}
	return a, b, ra, a.disk.Bytes(), b.disk.Bytes()
}

func TestReplSplitBrainPolicies(t *testing.T) {
	cases := []struct {
		policy   SplitBrainPolicy
		nA, nB   int64
		resolved bool
		why      string
	}{
		{SBDisconnect, 5, 3, false, "policy is disconnect"},
		{SBDiscardZeroChanges, 5, 3, false, "both sides changed"},
		{SBDiscardYoungerPrimary, 5, 3, true, ""},
		{SBDiscardLeastChanges, 5, 3, true, ""},
		{SBDiscardLeastChanges, 3, 5, false, "discards the primary's data"},
	}
	for _, c := range cases {
		t.Run(c.policy.String()+"/"+string(rune('0'+c.nA))+"-"+string(rune('0'+c.nB)), func(t *testing.T) {
			a, b, ra, aData, bData := splitBrain(t, c.nA, c.nB, c.policy)
			ts := b.secondary(t, c.policy)
			p, err := ra.Dial(context.Background(), ts.addr, "B")
			serr := error(nil)
			if !c.resolved {
				if err == nil || !errors.Is(err, ErrSplitBrain) || !strings.Contains(err.Error(), c.why) {
					t.Fatalf("primary: %v, want a refused split brain (%q)", err, c.why)
				}
				serr = ts.result(t)
				if serr == nil || !errors.Is(serr, ErrSplitBrain) {
					t.Fatalf("secondary: %v, want ErrSplitBrain", serr)
				}
				if st := ra.Peer("B").State(); st != PeerSplitBrain {
					t.Fatalf("peer state %s, want %s", st, PeerSplitBrain)
				}
				if ts.sec.SplitBrainReason() == "" {
					t.Fatal("secondary shows no split-brain reason")
				}
				if !bytes.Equal(b.disk.Bytes(), bData) || !bytes.Equal(a.disk.Bytes(), aData) {
					t.Fatal("data changed although the split brain was not resolved")
				}
				t.Logf("refused: primary: %v; secondary: %v", err, serr)
				return
			}
			if err != nil {
				t.Fatalf("attach: %v", err)
			}
			waitUpToDate(t, p)
			ra.Flush()
			waitApplied(t, ra, ts)
			if !bytes.Equal(b.disk.Bytes(), a.disk.Bytes()) || !bytes.Equal(a.disk.Bytes(), aData) {
				t.Fatal("after resolution the victim does not equal the survivor, or the survivor changed")
			}
			// The union of both sides' changed chunks was copied.
			if got, want := p.ResyncBytes(), (c.nA+c.nB)*4096; got != want {
				t.Fatalf("resync sent %d bytes, want %d", got, want)
			}
			if bh, ah := b.meta.Header(), a.meta.Header(); bh.Current != ah.Current || bh.Flags&MetaConsistent == 0 {
				t.Fatalf("generations after resolution: A %016X, B %+v", ah.Current, bh)
			}
			t.Logf("resolved by %v: B's %d chunks discarded, %d bytes resynced", c.policy, c.nB, p.ResyncBytes())
		})
	}
}

// TestReplPromotedWithoutWrites: a node promoted during a partition that
// wrote nothing started no generation, so it is no split brain: it
// simply resyncs from the other side's bitmap.
func TestReplPromotedWithoutWrites(t *testing.T) {
	_, b, ra, _, _ := splitBrain(t, 4, 0, SBDisconnect)
	ts := b.secondary(t, SBDisconnect)
	p := attach(t, ra, ts, "B")
	waitUpToDate(t, p)
	if got := p.ResyncBytes(); got != 4*4096 {
		t.Fatalf("resync sent %d, want %d", got, 4*4096)
	}
}

// TestReplNewerSecondaryRefused: a primary whose data is older than the
// secondary's is never the sync target: it is refused.
func TestReplNewerSecondaryRefused(t *testing.T) {
	const size = 1 << 20
	a, b := newNode(t, "A", size), newNode(t, "B", size)
	ra := a.primary(t, SBDiscardLeastChanges)
	ts := b.secondary(t, SBDiscardLeastChanges)
	waitUpToDate(t, attach(t, ra, ts, "B"))
	disconnect(t, ra, ts, "B")
	ra.Close()
	// B is promoted and writes; A comes back as primary (wrongly).
	rb := b.primary(t, SBDiscardLeastChanges)
	writeChunks(t, rb, 0, 3, 9)
	rb.Close()
	ra2 := a.primary(t, SBDiscardLeastChanges)
	ts2 := b.secondary(t, SBDiscardLeastChanges)
	before := b.disk.Bytes()
	_, err := ra2.Dial(context.Background(), ts2.addr, "B")
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("attach: %v, want refused (secondary newer)", err)
	}
	ts2.result(t)
	if !bytes.Equal(before, b.disk.Bytes()) {
		t.Fatal("the newer secondary was overwritten")
	}
}

// TestReplVerify plants differences on a secondary's store behind the
// replication's back; an online verify (under concurrent writes elsewhere)
// finds exactly them, and repair copies the primary's chunks.
func TestReplVerify(t *testing.T) {
	const size, gran = 8 << 20, 4096
	r, pm, secs := replSetup(t, ProtocolC, size, 1, func(c *ReplConfig) { c.DirtyGranularity = gran })
	waitUpToDate(t, r.Peer("s0"))
	rng := rand.New(rand.NewPCG(8, 9))
	for range 200 {
		r.WriteAt(randBytes(rng, 1+rng.IntN(3*gran)), rng.Int64N(size/2))
	}
	r.Flush()
	waitApplied(t, r, secs[0])
	sm := secs[0].mem
	planted := []int64{3 * gran, 777 * gran, 778 * gran, 1500 * gran}
	for _, off := range planted {
		sm.WriteAt([]byte{0xff, 0xee}, off+100) // bit rot, a bad write
	}
	// Writes in the upper half go on during the verify.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.WriteAt(randBytes(rng, 1+rng.IntN(2*gran)), size/2+rng.Int64N(size/2-2*gran))
		}
	}()
	p := r.Peer("s0")
	res, err := p.Verify(false)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{3 * gran, 4 * gran}, {777 * gran, 779 * gran}, {1500 * gran, 1501 * gran}}
	if res.Differ != int64(len(planted)) || !equalRanges(res.Ranges, want) || res.Chunks != size/gran {
		t.Fatalf("verify: %+v, want %d differing chunks at %v", res, len(planted), want)
	}
	t.Logf("verify: %d chunks compared, %d differ: %v", res.Chunks, res.Differ, res.Ranges)
	res, err = p.Verify(true)
	if err != nil || !res.Repairing || res.Differ != int64(len(planted)) {
		t.Fatalf("verify with repair: %+v %v", res, err)
	}
	waitUpToDate(t, p)
	r.Flush()
	waitApplied(t, r, secs[0])
	if !bytes.Equal(sm.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs after repair")
	}
	if got := p.ResyncBytes(); got != int64(len(planted))*gran {
		t.Fatalf("repair sent %d bytes, want %d", got, len(planted)*gran)
	}
	if res, err := p.Verify(false); err != nil || res.Differ != 0 {
		t.Fatalf("verify after repair: %+v %v", res, err)
	}
}

// TestReplResyncRateLimit: a 2 MiB resync limited to 4 MiB/s takes at
// least about (2 MiB - burst) / 4 MiB/s.
func TestReplResyncRateLimit(t *testing.T) {
	const size, gran, rate = 4 << 20, 4096, 4 << 20
	r, pm, secs := replSetup(t, ProtocolA, size, 1, func(c *ReplConfig) { c.DirtyGranularity = gran; c.ResyncRate = rate })
	waitUpToDate(t, r.Peer("s0"))
	disconnect(t, r, secs[0], "s0")
	for c := int64(0); c < size/gran; c += 2 {
		r.WriteAt([]byte{byte(c)}, c*gran)
	}
	dirty := r.Peer("s0").OutOfSync()
	start := time.Now()
	p := attach(t, r, secs[0], "s0")
	waitUpToDate(t, p)
	el := time.Since(start)
	r.Flush()
	waitApplied(t, r, secs[0])
	if !bytes.Equal(secs[0].mem.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs")
	}
	burst := int64(rate / 8)
	minTime := time.Duration(float64(dirty-burst) / rate * float64(time.Second))
	observed := float64(dirty) / el.Seconds()
	t.Logf("resynced %d bytes in %v: %.2f MB/s (limit %.2f MB/s, burst %d)", dirty, el, observed/1e6, float64(rate)/1e6, burst)
	if el < minTime*8/10 {
		t.Fatalf("resync of %d bytes took %v, the limit allows no less than %v", dirty, el, minTime)
	}
	if el > 20*minTime {
		t.Fatalf("resync took %v, far beyond the limit's %v", el, minTime)
	}
}

// TestReplCrashedPrimaryAL: a primary that crashes resyncs exactly its
// activity log's extents when it comes back, not the volume.
func TestReplCrashedPrimaryAL(t *testing.T) {
	const size, ext = 8 << 20, 256 << 10
	opts := MetaOptions{Size: size, Granularity: 4096, ALExtent: ext, ALExtents: 4}
	file := &memMetaFile{budget: -1}
	ma, err := OpenMeta(file, opts)
	if err != nil {
		t.Fatal(err)
	}
	pm := NewMemBackend(size)
	r := newPrimary(t, pm, ProtocolC, func(c *ReplConfig) { c.Meta = ma; c.Node = "A" })
	ts := startSecondary(t, NewMemBackend(size), "vol0", testSecret)
	waitUpToDate(t, attach(t, r, ts, "s0"))
	// Six extents written, the last four stay in the AL.
	for e := int64(0); e < 6; e++ {
		if _, err := r.WriteAt([]byte{byte(e + 1)}, e*ext+1000); err != nil {
			t.Fatal(err)
		}
	}
	r.Flush()
	// Crash: the disk and the metadata file as they are now.
	crashed := file.reopen()
	r.Close()
	ts.result(t)
	ma2, err := OpenMeta(crashed, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !ma2.CrashedPrimary() {
		t.Fatal("crash not detected")
	}
	r2 := newPrimary(t, pm, ProtocolC, func(c *ReplConfig) { c.Meta = ma2; c.Node = "A" })
	p := attach(t, r2, ts, "s0")
	waitUpToDate(t, p)
	if got, want := p.ResyncBytes(), int64(4*ext); got != want {
		t.Fatalf("after the crash resync sent %d bytes, want the AL's %d (of %d)", got, want, size)
	}
	r2.Flush()
	waitApplied(t, r2, ts)
	if !bytes.Equal(ts.mem.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs")
	}
	t.Logf("crashed primary: resynced %d bytes (4 AL extents) of %d; metadata writes: %d headers, %d bitmaps", p.ResyncBytes(), size, ma.HeaderWrites(), ma.BitmapWrites())
}

// TestReplRestartKeepsBitmap: both nodes' metadata in files; the
// secondary is away while the primary writes, then both shut down
// cleanly and restart from their files: the reconnect copies only the
// chunks written while the secondary was away (rule 50), not a full sync.
func TestReplRestartKeepsBitmap(t *testing.T) {
	const size, gran = 4 << 20, 4096
	dir := t.TempDir()
	opts := MetaOptions{Size: size, Granularity: gran, ALExtent: 256 << 10}
	open := func(name string) *MetaStore {
		m, err := OpenMetaFile(dir+"/"+name+".meta", opts)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	pm, sm := NewMemBackend(size), NewMemBackend(size)
	fillRandom(t, pm, 3)
	ma, mb := open("a"), open("b")
	r := newPrimary(t, pm, ProtocolC, func(c *ReplConfig) { c.Meta, c.Node = ma, "A" })
	ts := serveSecondary(t, &Secondary{Backend: sm, Volume: "vol0", Secret: testSecret, Node: "B", Meta: mb})
	waitUpToDate(t, attach(t, r, ts, "B"))
	disconnect(t, r, ts, "B")
	writeChunks(t, r, 50, 12, 7)
	r.Close()
	if err := ma.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mb.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart.
	ma, mb = open("a"), open("b")
	defer ma.Close()
	defer mb.Close()
	if ma.Crashed() || mb.Crashed() {
		t.Fatal("clean shutdown seen as a crash")
	}
	r2 := newPrimary(t, pm, ProtocolC, func(c *ReplConfig) { c.Meta, c.Node = ma, "A" })
	if got := r2.Peer("B").OutOfSync(); got != 12*gran {
		t.Fatalf("after restart B is %d bytes out of sync, want %d", got, 12*gran)
	}
	ts2 := serveSecondary(t, &Secondary{Backend: sm, Volume: "vol0", Secret: testSecret, Node: "B", Meta: mb})
	p := attach(t, r2, ts2, "B")
	waitUpToDate(t, p)
	r2.Flush()
	waitApplied(t, r2, ts2)
	if !bytes.Equal(sm.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs")
	}
	if got := p.ResyncBytes(); got != 12*gran {
		t.Fatalf("resync after restart sent %d bytes, want %d", got, 12*gran)
	}
}

// TestReplFullSyncInterrupted: a full sync cut in the middle leaves the
// new secondary inconsistent (it cannot be promoted); the next connection
// compares digests again and copies only what is still missing.
func TestReplFullSyncInterrupted(t *testing.T) {
	const size, gran = 4 << 20, 4096
	pm := NewMemBackend(size)
	fillRandom(t, pm, 11)
	sm := NewMemBackend(size)
	// Paced at 4 MiB/s, so that the connection is cut before the
	// secondary has received everything (it applies what it received).
	r := newPrimary(t, pm, ProtocolC, func(c *ReplConfig) { c.DirtyGranularity = gran; c.ResyncRate = 4 << 20 })
	ts := serveSecondary(t, &Secondary{Backend: sm, Volume: "vol0", Secret: testSecret, Node: "s0"})
	p := attach(t, r, ts, "s0")
	deadline := time.Now().Add(10 * time.Second)
	for p.OutOfSync() > size/2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	disconnect(t, r, ts, "s0")
	left := p.OutOfSync()
	if left == 0 || left == size {
		t.Skipf("full sync not interrupted mid-way (%d left)", left)
	}
	h := ts.sec.Meta.Header()
	if h.Flags&MetaConsistent != 0 || h.Current != GenJustCreated {
		t.Fatalf("interrupted full-sync target: %+v, want inconsistent and just created", h)
	}
	if _, err := NewReplicated(sm, ReplConfig{Secret: testSecret, Meta: ts.sec.Meta}); err == nil {
		t.Fatal("an inconsistent secondary was promoted")
	}
	p2 := attach(t, r, ts, "s0")
	waitUpToDate(t, p2)
	r.Flush()
	waitApplied(t, r, ts)
	if !bytes.Equal(sm.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs after the second full sync")
	}
	if got := p2.ResyncBytes(); got > left || got == 0 {
		t.Fatalf("second sync sent %d bytes, %d were left", got, left)
	}
	t.Logf("interrupted with %d of %d bytes left; the second sync sent %d and skipped %d", left, size, p2.ResyncBytes(), p2.SkippedBytes())
}
