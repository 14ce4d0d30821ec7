package nbdrepl

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// memMetaFile is a MetaFile in memory whose writes can be torn: after
// budget bytes, a write stores only a prefix and every later write fails
// (the machine died).
type memMetaFile struct {
	mu     sync.Mutex
	data   []byte
	budget int // bytes that may still be written; <0 unlimited
	syncs  int
}

var errCrashed = errors.New("simulated crash")

func (f *memMetaFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memMetaFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	if f.budget >= 0 {
		n = min(n, f.budget)
		f.budget -= n
	}
	if need := off + int64(n); need > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, need-int64(len(f.data)))...)
	}
	copy(f.data[off:], p[:n])
	if n < len(p) {
		return n, errCrashed
	}
	return n, nil
}

func (f *memMetaFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.budget == 0 {
		return errCrashed
	}
	f.syncs++
	return nil
}

func (f *memMetaFile) Close() error { return nil }

// reopen returns a fresh file with the same bytes (the disk after reboot).
func (f *memMetaFile) reopen() *memMetaFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &memMetaFile{data: append([]byte(nil), f.data...), budget: -1}
}

var testMetaOpts = MetaOptions{Size: 64 << 20, Granularity: 4096, ALExtent: 1 << 20, ALExtents: 4}

func TestMetaHeaderRoundTrip(t *testing.T) {
	h := MetaHeader{Seq: 7, Size: 1 << 30, Granularity: 4096, ALExtent: 4 << 20, Flags: MetaPrimary | MetaConsistent,
		Current: 0x1234, History: [2]uint64{5, 6}, PrimarySince: 99,
		Peers: []MetaPeer{{"node2", 0x1111}, {"node3", 0}}, AL: []uint64{3, 1, 255}}
	b := AppendMetaHeader(nil, h)
	got, err := ParseMetaHeader(append(b, make([]byte, 100)...))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(AppendMetaHeader(nil, got), b) {
		t.Fatalf("round trip differs: %+v", got)
	}
	// Every truncation and every single-bit flip is rejected.
	for i := range b {
		if _, err := ParseMetaHeader(b[:i]); err == nil {
			t.Fatalf("truncated to %d accepted", i)
		}
		for bit := range 8 {
			c := append([]byte(nil), b...)
			c[i] ^= 1 << bit
			if _, err := ParseMetaHeader(c); err == nil {
				t.Fatalf("bit %d of byte %d flipped accepted", bit, i)
			}
		}
	}
}

// TestMetaTornHeader: a crash in the middle of any header update leaves the
// previous header in force (the double buffer), at every possible tear.
func TestMetaTornHeader(t *testing.T) {
	base := &memMetaFile{budget: -1}
	m, err := OpenMeta(base, testMetaOpts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Slot("node2"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(true); err != nil {
		t.Fatal(err)
	}
	before := m.Header()
	disk := base.reopen()
	for tear := 0; tear <= metaSlotSize; tear += 97 {
		f := disk.reopen()
		f.budget = tear
		m2, err := OpenMeta(f, testMetaOpts)
		if err != nil {
			if tear == metaSlotSize {
				t.Fatalf("open with a whole slot's budget: %v", err)
			}
			// The open itself wrote the header (clearing the
			// clean flag) and was torn: still readable below.
		} else {
			m2.Rotate([]string{"node2"}) // torn or not
		}
		m3, err := OpenMeta(f.reopen(), testMetaOpts)
		if err != nil {
			t.Fatalf("tear at %d: reopening: %v", tear, err)
		}
		h := m3.Header()
		switch h.Current {
		case before.Current: // the update was lost
			if h.Peers[0].Bitmap != 0 {
				t.Fatalf("tear at %d: old Current with the new bitmap gen", tear)
			}
		default: // the update made it whole
			if h.Peers[0].Bitmap != before.Current || h.History[0] != before.Current {
				t.Fatalf("tear at %d: half an update: %+v", tear, h)
			}
		}
	}
	// Both slots destroyed: refused, not reinitialized.
	f := disk.reopen()
	for i := 0; i < 2*metaSlotSize; i += 512 {
		f.data[i+20] ^= 0xff
	}
	if _, err := OpenMeta(f, testMetaOpts); err == nil {
		t.Fatal("metadata with two corrupt headers accepted")
	}
	// A size or granularity mismatch is refused.
	o := testMetaOpts
	o.Size *= 2
	if _, err := OpenMeta(disk.reopen(), o); err == nil {
		t.Fatal("size mismatch accepted")
	}
}

// TestMetaActivityLog: after a crash, exactly the AL extents plus the
// on-disk bitmap are dirty; after a clean close, exactly the in-memory
// bitmap.
func TestMetaActivityLog(t *testing.T) {
	f := &memMetaFile{budget: -1}
	m, err := OpenMeta(f, testMetaOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(true); err != nil {
		t.Fatal(err)
	}
	bm, _, err := m.Slot("node2")
	if err != nil {
		t.Fatal(err)
	}
	const ext = 1 << 20
	// The peer is away: writes to extents 0..5 are marked dirty; the AL
	// holds 4 extents, so 0 and 1 are evicted (their words written).
	seq := uint64(0)
	for e := int64(0); e < 6; e++ {
		seq++
		if err := m.BeforeWrite(e*ext+8192, 100, seq, func() uint64 { return seq }); err != nil {
			t.Fatal(err)
		}
		bm.Mark(e*ext+8192, 100)
	}
	if got := m.Header().AL; len(got) != 4 || got[0] != 2 {
		t.Fatalf("AL %v, want extents 2..5", got)
	}
	// A connected peer's unacknowledged write to extent 7 (acked stays
	// 6): extent 2 (acknowledged) is evicted, its one bit written.
	seq++
	if err := m.BeforeWrite(7*ext, 10, seq, func() uint64 { return 6 }); err != nil {
		t.Fatal(err)
	}
	// Nothing acknowledged (acked 0): extent 3 must be evicted although a
	// peer may lack its writes, so its words go to disk all dirty.
	seq++
	if err := m.BeforeWrite(9*ext, 10, seq, func() uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	// Crash now: reopen the disk as it is.
	m2, err := OpenMeta(f.reopen(), testMetaOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Crashed() || !m2.CrashedPrimary() {
		t.Fatal("crash not detected")
	}
	bm2, _, _ := m2.Slot("node2")
	got := bm2.Ranges()
	// Extents 0,1,2: their one on-disk bit; 3: all dirty on disk; 4,5,7,9:
	// whole AL extents.
	want := [][2]int64{{8192, 12288}, {ext + 8192, ext + 12288}, {2*ext + 8192, 2*ext + 12288}, {3 * ext, 6 * ext}, {7 * ext, 8 * ext}, {9 * ext, 10 * ext}}
	if !equalRanges(got, want) {
		t.Fatalf("after crash dirty %v, want %v", got, want)
	}
	t.Logf("header writes %d, bitmap writes %d for 8 writes", m.HeaderWrites(), m.BitmapWrites())
}

func TestMetaCleanClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vol.meta")
	m, err := OpenMetaFile(path, testMetaOpts)
	if err != nil {
		t.Fatal(err)
	}
	bm, _, _ := m.Slot("node2")
	m.SetPrimary(true)
	if err := m.BeforeWrite(5<<20, 1, 1, func() uint64 { return 1 }); err != nil {
		t.Fatal(err)
	}
	bm.Mark(5<<20, 1)
	bm.Mark(9<<20, 1) // (not through the AL: a clean close writes it anyway)
	cur := m.Header().Current
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := OpenMetaFile(path, testMetaOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.Crashed() {
		t.Fatal("clean close seen as a crash")
	}
	h := m2.Header()
	if h.Current != cur || len(h.AL) != 0 || h.Flags&MetaPrimary == 0 {
		t.Fatalf("header after reopen: %+v", h)
	}
	bm2, _, _ := m2.Slot("node2")
	if want := [][2]int64{{5 << 20, 5<<20 + 4096}, {9 << 20, 9<<20 + 4096}}; !equalRanges(bm2.Ranges(), want) {
		t.Fatalf("bitmap after reopen %v, want %v", bm2.Ranges(), want)
	}
}

// FuzzParseMetaHeader: arbitrary bytes as a header slot. Parsing never
// panics, accepted headers are within bounds and re-encode to the same
// bytes.
func FuzzParseMetaHeader(f *testing.F) {
	f.Add(AppendMetaHeader(nil, MetaHeader{Seq: 1, Size: 1 << 20, Granularity: 4096, ALExtent: 4 << 20, Flags: MetaConsistent}))
	f.Add(AppendMetaHeader(nil, MetaHeader{Seq: 9, Size: 64 << 20, Granularity: 512, ALExtent: 1 << 20, Flags: MetaPrimary,
		Current: 3, History: [2]uint64{2, 1}, Peers: []MetaPeer{{"a", 1}, {"bb", 0}}, AL: []uint64{0, 63}}))
	f.Add([]byte("TCHYMETA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseMetaHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMeta) {
				t.Fatalf("error %v does not wrap ErrMeta", err)
			}
			return
		}
		if !pow2(h.Granularity) || h.ALExtent < 64*h.Granularity || len(h.Peers) > MaxMetaPeers || len(h.AL) > MaxALExtents {
			t.Fatalf("accepted out-of-bounds header %+v", h)
		}
		enc := AppendMetaHeader(nil, h)
		if len(enc) > metaSlotSize || !bytes.Equal(enc, b[:len(enc)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzDecodeMetaMsg: arbitrary bytes as a META body: never panics,
// accepted messages are within bounds and re-encode identically, and
// Resolve on them never panics and is symmetric.
func FuzzDecodeMetaMsg(f *testing.F) {
	f.Add(appendMetaMsg(nil, metaMsg{Node: "n1", Primary: true, Consistent: true, Granularity: 4096, Current: 5, History: [2]uint64{4, 3}, PeerBitmap: 4, Dirty: 7, Ranges: [][2]int64{{0, 4096}, {8192, 16384}}}))
	f.Add(appendMetaMsg(nil, metaMsg{Node: "n2", Granularity: 512, Policy: SBDiscardLeastChanges, Overflow: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMetaMsg(b)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		if !bytes.Equal(appendMetaMsg(nil, m), b) {
			t.Fatalf("re-encoding %+v differs", m)
		}
		for _, r := range m.Ranges {
			if r[0] < 0 || r[1] <= r[0] || r[1] > maxOffset {
				t.Fatalf("accepted range %v", r)
			}
		}
		other := GenView{Current: m.PeerBitmap, History: [2]uint64{m.History[1]}, PeerBitmap: m.History[0], Primary: !m.Primary, Consistent: true, Dirty: 1}
		a, c := Resolve(m.view(), other, m.Policy), Resolve(other, m.view(), m.Policy)
		if a.Decision != c.Decision.Mirror() {
			t.Fatalf("asymmetric: %v vs %v for %+v / %+v", a.Decision, c.Decision, m.view(), other)
		}
	})
}

// TestMetaInconsistentCannotPromote: a node whose resync did not finish
// refuses to become primary.
func TestMetaInconsistentCannotPromote(t *testing.T) {
	m, err := NewMemMeta(MetaOptions{Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetConsistent(false); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReplicated(NewMemBackend(1<<20), ReplConfig{Secret: testSecret, Meta: m}); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Fatalf("promoting an inconsistent node: %v", err)
	}
}
