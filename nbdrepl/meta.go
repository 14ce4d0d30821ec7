package nbdrepl

// Persistent per-volume metadata: generation identifiers, flags, the
// per-peer dirty bitmaps and the activity log (AL), in a small file next to
// the backing file.
//
// Layout (all integers big endian except the bitmap words):
//
//	0     header slot 0 (4096 bytes)
//	4096  header slot 1 (4096 bytes)
//	8192  bitmap of peer slot 0, then of peer slot 1, ... each
//	      ceil(chunks/64) little-endian uint64 words rounded up to 4096 bytes
//
// A header slot is
//
//	"TCHYMETA" version:u16 bodyLen:u16 body[bodyLen] crc32c:u32
//
// with crc32c over everything before it. An update writes the slot not
// holding the newest header (double buffering) with the next sequence
// number and fsyncs; reading takes the valid slot with the highest sequence
// number, so a write torn by a crash leaves the previous header in force.
//
// Activity log: a write to an extent (ALExtent bytes) not in the AL first
// adds the extent and writes the header durably, so at any time every
// chunk that may differ from a peer is either in an AL extent or set in
// the on-disk bitmap. An extent leaves the AL (least recently used first,
// beyond ALExtents) only after its bitmap words are written; if a
// connected peer has not yet acknowledged every write to it as applied,
// the on-disk words are written as all-dirty. After a crash (no clean
// flag), every AL extent is marked dirty in every peer's bitmap.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MetaFile is the storage of a MetaStore (*os.File satisfies it).
type MetaFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

// MetaVersion is the on-disk metadata format version.
const MetaVersion = 1

const (
	metaSlotSize  = 4096
	metaBitmapOff = 2 * metaSlotSize
	metaFixedBody = 8*4 + 4 + 8*4 + 1 + 2 // without peers and AL
	metaTrailer   = 4
	metaPrefix    = 8 + 2 + 2

	// MaxMetaPeers is the number of peer slots (bitmaps) per volume.
	MaxMetaPeers = 8
	// MaxPeerName bounds a peer slot's name.
	MaxPeerName = 64
	// MaxALExtents bounds the activity log.
	MaxALExtents = 256
	// DefaultALExtents is the activity log's size unless configured.
	DefaultALExtents = 64
	// DefaultALExtent is the bytes per activity-log extent (DRBD: 4 MiB).
	DefaultALExtent = 4 << 20
)

var metaMagic = [8]byte{'T', 'C', 'H', 'Y', 'M', 'E', 'T', 'A'}

// crc32c is made on first use, not at every tachy command's start.
var crc32c = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// MetaFlags are the volume's state flags.
type MetaFlags uint32

const (
	// MetaPrimary: the node is (or, found at open, was when it stopped)
	// primary. Found together with a missing MetaClean: a crashed primary.
	MetaPrimary MetaFlags = 1 << iota
	// MetaClean: shut down cleanly (AL empty, bitmaps on disk).
	MetaClean
	// MetaConsistent: the data is a consistent generation (false while
	// a resync to this node is incomplete).
	MetaConsistent

	metaFlagsKnown = MetaPrimary | MetaClean | MetaConsistent
)

// MetaPeer is one peer slot: the peer's name and the bitmap generation.
type MetaPeer struct {
	Name   string
	Bitmap uint64
}

// MetaHeader is the decoded header.
type MetaHeader struct {
	Seq          uint64 // update counter
	Size         int64  // volume bytes
	Granularity  int64  // bytes per bitmap bit
	ALExtent     int64  // bytes per AL extent
	Flags        MetaFlags
	Current      uint64
	History      [2]uint64
	PrimarySince int64 // unix ns when it last became primary
	Peers        []MetaPeer
	AL           []uint64 // extent numbers in the activity log
}

// ErrMeta wraps every metadata decoding error.
var ErrMeta = errors.New("replication metadata rejected")

func metaErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMeta, fmt.Sprintf(format, args...))
}

func pow2(n int64) bool { return n > 0 && n&(n-1) == 0 }

// AppendMetaHeader encodes h as one header slot (at most 4096 bytes).
func AppendMetaHeader(dst []byte, h MetaHeader) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = append(dst, metaMagic[:]...)
	dst = be.AppendUint16(dst, MetaVersion)
	dst = be.AppendUint16(dst, 0) // body length, patched below
	body := len(dst)
	for _, v := range []uint64{h.Seq, uint64(h.Size), uint64(h.Granularity), uint64(h.ALExtent)} {
		dst = be.AppendUint64(dst, v)
	}
	dst = be.AppendUint32(dst, uint32(h.Flags))
	for _, v := range []uint64{h.Current, h.History[0], h.History[1], uint64(h.PrimarySince)} {
		dst = be.AppendUint64(dst, v)
	}
	dst = append(dst, byte(len(h.Peers)))
	for _, p := range h.Peers {
		dst = append(dst, byte(len(p.Name)))
		dst = append(dst, p.Name...)
		dst = be.AppendUint64(dst, p.Bitmap)
	}
	dst = be.AppendUint16(dst, uint16(len(h.AL)))
	for _, e := range h.AL {
		dst = be.AppendUint64(dst, e)
	}
	be.PutUint16(dst[start+10:], uint16(len(dst)-body))
	return be.AppendUint32(dst, crc32.Checksum(dst[start:], crc32c()))
}

// ParseMetaHeader decodes and validates one header slot (trailing bytes
// after the checksum are ignored: the slot is zero-padded). It never
// panics.
func ParseMetaHeader(b []byte) (MetaHeader, error) {
	var h MetaHeader
	be := binary.BigEndian
	if len(b) < metaPrefix+metaTrailer {
		return h, metaErr("header of %d bytes is too short", len(b))
	}
	if [8]byte(b[:8]) != metaMagic {
		return h, metaErr("bad magic %q (not tachy metadata, or never written)", b[:8])
	}
	if v := be.Uint16(b[8:]); v != MetaVersion {
		return h, metaErr("metadata version %d, this node reads %d", v, MetaVersion)
	}
	n := int(be.Uint16(b[10:]))
	if n > metaSlotSize-metaPrefix-metaTrailer || metaPrefix+n+metaTrailer > len(b) {
		return h, metaErr("body length %d out of range", n)
	}
	end := metaPrefix + n
	if got, want := be.Uint32(b[end:]), crc32.Checksum(b[:end], crc32c()); got != want {
		return h, metaErr("checksum %08x, want %08x (torn or corrupted write)", got, want)
	}
	p := b[metaPrefix:end]
	if len(p) < metaFixedBody {
		return h, metaErr("body of %d bytes is too short", len(p))
	}
	u64 := func() uint64 { v := be.Uint64(p); p = p[8:]; return v }
	h.Seq, h.Size, h.Granularity, h.ALExtent = u64(), int64(u64()), int64(u64()), int64(u64())
	h.Flags = MetaFlags(be.Uint32(p))
	p = p[4:]
	h.Current, h.History[0], h.History[1], h.PrimarySince = u64(), u64(), u64(), int64(u64())
	if h.Size < 0 || h.Size > maxOffset {
		return h, metaErr("volume size %d out of range", h.Size)
	}
	if !pow2(h.Granularity) || h.Granularity < 512 || h.Granularity > 1<<30 {
		return h, metaErr("bitmap granularity %d is not a power of two in 512..1 GiB", h.Granularity)
	}
	if !pow2(h.ALExtent) || h.ALExtent < 64*h.Granularity || h.ALExtent > 1<<40 {
		return h, metaErr("AL extent %d is not a power of two of at least 64 chunks", h.ALExtent)
	}
	if h.Flags&^metaFlagsKnown != 0 {
		return h, metaErr("unknown flags 0x%x", uint32(h.Flags))
	}
	np := int(p[0])
	p = p[1:]
	if np > MaxMetaPeers {
		return h, metaErr("%d peer slots, at most %d", np, MaxMetaPeers)
	}
	for range np {
		if len(p) < 1 {
			return h, metaErr("truncated peer slot")
		}
		l := int(p[0])
		if l == 0 || l > MaxPeerName || len(p) < 1+l+8 {
			return h, metaErr("peer slot name of %d bytes invalid or truncated", l)
		}
		mp := MetaPeer{Name: string(p[1 : 1+l]), Bitmap: be.Uint64(p[1+l:])}
		p = p[1+l+8:]
		for _, o := range h.Peers {
			if o.Name == mp.Name {
				return h, metaErr("peer slot %q twice", mp.Name)
			}
		}
		h.Peers = append(h.Peers, mp)
	}
	if len(p) < 2 {
		return h, metaErr("truncated activity log")
	}
	nal := int(be.Uint16(p))
	p = p[2:]
	if nal > MaxALExtents || len(p) != 8*nal {
		return h, metaErr("activity log of %d extents in %d bytes", nal, len(p))
	}
	extents := uint64((h.Size + h.ALExtent - 1) / h.ALExtent)
	for range nal {
		e := u64()
		if e >= extents {
			return h, metaErr("activity log extent %d beyond the volume's %d", e, extents)
		}
		h.AL = append(h.AL, e)
	}
	return h, nil
}

// MetaStore holds one volume's metadata in memory and, unless it was made
// by NewMemMeta, on disk. Safe for concurrent use.
type MetaStore struct {
	mu      sync.Mutex
	f       MetaFile // nil: in memory only
	h       MetaHeader
	bitmaps []*DirtyBitmap // per h.Peers
	alMax   int
	alLast  map[uint64]uint64 // AL extent -> last sequence number written to it
	crashed bool              // opened without the clean flag
	wasPrim bool              // opened with the primary flag

	headerWrites atomic.Int64
	bitmapWrites atomic.Int64
}

// MetaOptions are the parameters of new metadata; existing metadata must
// match Size and Granularity.
type MetaOptions struct {
	Size        int64
	Granularity int64 // bytes per dirty bit (power of two, default 4 KiB)
	ALExtent    int64 // bytes per AL extent (default 4 MiB, at least 64 chunks)
	ALExtents   int   // AL size in extents (default 64, at most 256)
}

func (o *MetaOptions) fill() error {
	if o.Granularity == 0 {
		o.Granularity = DefaultDirtyGranularity
	}
	if !pow2(o.Granularity) || o.Granularity < 512 {
		return fmt.Errorf("bitmap granularity %d is not a power of two of at least 512", o.Granularity)
	}
	if o.ALExtent == 0 {
		o.ALExtent = max(DefaultALExtent, 64*o.Granularity)
	}
	if !pow2(o.ALExtent) || o.ALExtent < 64*o.Granularity {
		return fmt.Errorf("AL extent %d is not a power of two of at least 64 chunks", o.ALExtent)
	}
	if o.ALExtents == 0 {
		o.ALExtents = DefaultALExtents
	}
	o.ALExtents = min(max(o.ALExtents, 1), MaxALExtents)
	if o.Size < 0 || o.Size > maxOffset {
		return fmt.Errorf("volume size %d out of range", o.Size)
	}
	return nil
}

// NewMemMeta returns metadata that lives in memory only (just created:
// Current 0, consistent). Lost at exit: a restarted node does a full
// (checksummed) sync.
func NewMemMeta(o MetaOptions) (*MetaStore, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	m := &MetaStore{alMax: o.ALExtents, alLast: map[uint64]uint64{}}
	m.h = MetaHeader{Size: o.Size, Granularity: o.Granularity, ALExtent: o.ALExtent, Flags: MetaConsistent}
	return m, nil
}

// OpenMetaFile opens (creating if needed) the metadata file at path.
func OpenMetaFile(path string, o MetaOptions) (*MetaStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	m, err := OpenMeta(f, o)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// OpenMeta reads the metadata in f, or initializes it if f is empty. A file
// whose two header slots are both invalid is refused, never overwritten.
// If the last run did not close cleanly, every activity-log extent is
// marked dirty in every peer's bitmap.
func OpenMeta(f MetaFile, o MetaOptions) (*MetaStore, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	m := &MetaStore{f: f, alMax: o.ALExtents, alLast: map[uint64]uint64{}}
	var slots [2]MetaHeader
	var errs [2]error
	empty := true
	for i := range slots {
		b := make([]byte, metaSlotSize)
		n, err := f.ReadAt(b, int64(i*metaSlotSize))
		if n > 0 {
			empty = false
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		slots[i], errs[i] = ParseMetaHeader(b[:n])
	}
	switch {
	case errs[0] != nil && errs[1] != nil && empty:
		m.h = MetaHeader{Size: o.Size, Granularity: o.Granularity, ALExtent: o.ALExtent, Flags: MetaConsistent}
		if err := m.writeHeader(); err != nil {
			return nil, err
		}
		// Write it to both slots, so a torn first update still
		// leaves a valid one.
		if err := m.writeHeader(); err != nil {
			return nil, err
		}
		return m, nil
	case errs[0] != nil && errs[1] != nil:
		return nil, fmt.Errorf("no valid metadata header (slot 0: %v; slot 1: %v)", errs[0], errs[1])
	case errs[1] != nil || errs[0] == nil && slots[0].Seq > slots[1].Seq:
		m.h = slots[0]
	default:
		m.h = slots[1]
	}
	if m.h.Size != o.Size || m.h.Granularity != o.Granularity {
		return nil, fmt.Errorf("metadata is for %d bytes at %d bytes per bit, the volume has %d at %d", m.h.Size, m.h.Granularity, o.Size, o.Granularity)
	}
	for i := range m.h.Peers {
		bm := NewDirtyBitmap(m.h.Size, m.h.Granularity)
		words := make([]byte, 8*len(bm.bits))
		if _, err := f.ReadAt(words, m.regionOff(i)); err != nil {
			return nil, fmt.Errorf("reading the bitmap of peer %q: %w", m.h.Peers[i].Name, err)
		}
		w := make([]uint64, len(bm.bits))
		for j := range w {
			w[j] = binary.LittleEndian.Uint64(words[8*j:])
		}
		bm.orWords(0, w)
		m.bitmaps = append(m.bitmaps, bm)
	}
	m.crashed = m.h.Flags&MetaClean == 0
	m.wasPrim = m.h.Flags&MetaPrimary != 0
	if m.crashed {
		for _, e := range m.h.AL {
			for _, bm := range m.bitmaps {
				bm.Mark(int64(e)*m.h.ALExtent, m.h.ALExtent)
			}
			m.alLast[e] = ^uint64(0) // never known to be acknowledged
		}
	} else {
		m.h.AL = nil
	}
	m.h.Flags &^= MetaClean
	if err := m.writeHeader(); err != nil {
		return nil, err
	}
	return m, nil
}

// Crashed says the metadata was found without the clean flag at open (the
// node crashed); CrashedPrimary that it was primary then.
func (m *MetaStore) Crashed() bool        { return m.crashed }
func (m *MetaStore) CrashedPrimary() bool { return m.crashed && m.wasPrim }

// Header returns a copy of the current header.
func (m *MetaStore) Header() MetaHeader {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.h
	h.Peers = append([]MetaPeer(nil), h.Peers...)
	h.AL = append([]uint64(nil), h.AL...)
	return h
}

// HeaderWrites and BitmapWrites count the durable header and bitmap writes.
func (m *MetaStore) HeaderWrites() int64 { return m.headerWrites.Load() }
func (m *MetaStore) BitmapWrites() int64 { return m.bitmapWrites.Load() }

func (m *MetaStore) regionSize() int64 {
	words := ((m.h.Size+m.h.Granularity-1)/m.h.Granularity + 63) / 64
	return (words*8 + metaSlotSize - 1) / metaSlotSize * metaSlotSize
}

func (m *MetaStore) regionOff(i int) int64 { return metaBitmapOff + int64(i)*m.regionSize() }

// writeHeader writes the header, with the next sequence number, to the
// slot that does not hold the newest one, and syncs. Call with m.mu held.
func (m *MetaStore) writeHeader() error {
	m.h.Seq++
	if m.f == nil {
		return nil
	}
	b := AppendMetaHeader(make([]byte, 0, metaSlotSize), m.h)
	b = b[:metaSlotSize] // zero padding (capacity is the slot)
	if _, err := m.f.WriteAt(b, int64(m.h.Seq%2)*metaSlotSize); err != nil {
		return fmt.Errorf("writing the metadata header: %w", err)
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("syncing the metadata header: %w", err)
	}
	m.headerWrites.Add(1)
	return nil
}

// writeWords writes peer slot i's words [from, to) (or all-ones for them
// when dirty) without syncing. Call with m.mu held.
func (m *MetaStore) writeWords(i, from, to int, allDirty bool) error {
	if m.f == nil {
		return nil
	}
	w := m.bitmaps[i].words(from, to)
	b := make([]byte, 8*len(w))
	for j, x := range w {
		if allDirty {
			x = ^uint64(0)
		}
		binary.LittleEndian.PutUint64(b[8*j:], x)
	}
	_, err := m.f.WriteAt(b, m.regionOff(i)+int64(8*from))
	return err
}

// saveBitmaps writes peer slot i's whole bitmap (every slot if i < 0) and
// syncs. Call with m.mu held.
func (m *MetaStore) saveBitmaps(i int) error {
	if m.f == nil {
		return nil
	}
	for j := range m.bitmaps {
		if i >= 0 && j != i {
			continue
		}
		if err := m.writeWords(j, 0, len(m.bitmaps[j].bits), false); err != nil {
			return fmt.Errorf("writing the bitmap of peer %q: %w", m.h.Peers[j].Name, err)
		}
	}
	if err := m.f.Sync(); err != nil {
		return err
	}
	m.bitmapWrites.Add(1)
	return nil
}

// SaveBitmap makes peer name's bitmap durable as it is in memory.
func (m *MetaStore) SaveBitmap(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.h.Peers {
		if p.Name == name {
			return m.saveBitmaps(i)
		}
	}
	return nil
}

// Slot returns peer name's bitmap and bitmap generation, creating the slot
// (durably, with a clean bitmap) if it is new.
func (m *MetaStore) Slot(name string) (*DirtyBitmap, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.h.Peers {
		if p.Name == name {
			return m.bitmaps[i], p.Bitmap, nil
		}
	}
	if name == "" || len(name) > MaxPeerName {
		return nil, 0, fmt.Errorf("peer name %q: 1 to %d bytes", name, MaxPeerName)
	}
	if len(m.h.Peers) >= MaxMetaPeers {
		return nil, 0, fmt.Errorf("volume already has %d peer slots", MaxMetaPeers)
	}
	m.h.Peers = append(m.h.Peers, MetaPeer{Name: name})
	m.bitmaps = append(m.bitmaps, NewDirtyBitmap(m.h.Size, m.h.Granularity))
	if err := m.saveBitmaps(len(m.bitmaps) - 1); err != nil {
		return nil, 0, err
	}
	return m.bitmaps[len(m.bitmaps)-1], 0, m.writeHeader()
}

// SlotNames lists the peer slots.
func (m *MetaStore) SlotNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s []string
	for _, p := range m.h.Peers {
		s = append(s, p.Name)
	}
	return s
}

// SetPeerBitmapGen sets peer name's bitmap generation (0 once it is in
// sync) durably.
func (m *MetaStore) SetPeerBitmapGen(name string, g uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.h.Peers {
		if m.h.Peers[i].Name == name && m.h.Peers[i].Bitmap != g {
			m.h.Peers[i].Bitmap = g
			return m.writeHeader()
		}
	}
	return nil
}

func newGenID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if g := binary.BigEndian.Uint64(b[:]); g != GenJustCreated {
			return g
		}
	}
}

func (m *MetaStore) pushCurrent(g uint64) {
	if m.h.Current != GenJustCreated && m.h.Current != g {
		m.h.History = [2]uint64{m.h.Current, m.h.History[0]}
	}
	m.h.Current = g
}

// Rotate starts a new generation because the primary writes while the
// named peers are away: each of them whose bitmap generation is 0 gets the
// current generation, History shifts and Current becomes a fresh value,
// durably. It returns the old and the new Current, or zeroes if nothing
// changed (every named peer already has a bitmap generation).
func (m *MetaStore) Rotate(away []string) (old, cur uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rot := false
	for i := range m.h.Peers {
		for _, n := range away {
			if m.h.Peers[i].Name == n && m.h.Peers[i].Bitmap == 0 {
				m.h.Peers[i].Bitmap = m.h.Current
				rot = true
			}
		}
	}
	if !rot {
		return 0, 0, nil
	}
	old = m.h.Current
	m.pushCurrent(newGenID())
	return old, m.h.Current, m.writeHeader()
}

// Current returns the current generation.
func (m *MetaStore) Current() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.h.Current
}

// SetPrimary records the role durably. Becoming primary records the time,
// and gives just-created metadata its first generation: from now on this
// node's data is the reference.
func (m *MetaStore) SetPrimary(primary bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if primary {
		if m.h.Flags&MetaConsistent == 0 {
			return errors.New("cannot become primary: the data is inconsistent (a resync to it did not finish)")
		}
		if m.h.Flags&MetaPrimary == 0 {
			m.h.PrimarySince = time.Now().UnixNano()
		}
		m.h.Flags |= MetaPrimary
		if m.h.Current == GenJustCreated {
			m.h.Current = newGenID()
		}
	} else {
		m.h.Flags &^= MetaPrimary
	}
	return m.writeHeader()
}

// SetConsistent records durably whether the data is consistent.
func (m *MetaStore) SetConsistent(ok bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if (m.h.Flags&MetaConsistent != 0) == ok {
		return nil
	}
	m.h.Flags ^= MetaConsistent
	return m.writeHeader()
}

// AdoptGen applies a generation announced by the primary (FrameGen). When
// syncDone, a resync to this node has completed: the data becomes
// consistent and the bitmap of peer primary is cleared. Otherwise an
// inconsistent node ignores it (it keeps the generation it had until its
// resync completes).
func (m *MetaStore) AdoptGen(g uint64, syncDone bool, primary string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !syncDone && m.h.Flags&MetaConsistent == 0 {
		return nil
	}
	m.pushCurrent(g)
	if syncDone {
		m.h.Flags |= MetaConsistent
		for i := range m.h.Peers {
			if m.h.Peers[i].Name == primary {
				m.h.Peers[i].Bitmap = 0
				m.bitmaps[i].ClearAll()
				if err := m.saveBitmaps(i); err != nil {
					return err
				}
			}
		}
	}
	return m.writeHeader()
}

// BeforeWrite puts the extents of the range in the activity log, durably,
// before the write is applied. seq is the write's sequence number; acked
// returns the last sequence number every connected peer acknowledged as
// applied (an extent written after it is not evicted without being marked
// dirty on disk); it is called only when an extent must be evicted.
func (m *MetaStore) BeforeWrite(off, length int64, seq uint64, acked func() uint64) error {
	if length <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	first, last := uint64(off/m.h.ALExtent), uint64((off+length-1)/m.h.ALExtent)
	changed := false
	for e := first; e <= last; e++ {
		if _, ok := m.alLast[e]; ok {
			m.alLast[e] = seq
			m.touch(e)
			continue
		}
		for len(m.h.AL) >= m.alMax {
			if err := m.evict(acked()); err != nil {
				return err
			}
		}
		m.h.AL = append(m.h.AL, e)
		m.alLast[e] = seq
		changed = true
	}
	if changed {
		return m.writeHeader()
	}
	return nil
}

// touch moves AL extent e to the most recently used end.
func (m *MetaStore) touch(e uint64) {
	for i, x := range m.h.AL {
		if x == e {
			copy(m.h.AL[i:], m.h.AL[i+1:])
			m.h.AL[len(m.h.AL)-1] = e
			return
		}
	}
}

// evict removes one extent from the AL: the least recently used whose
// writes are all acknowledged, else the least recently used, written as
// all-dirty. Its bitmap words reach the disk before the header that no
// longer lists it.
func (m *MetaStore) evict(acked uint64) error {
	k := 0
	for i, e := range m.h.AL {
		if m.alLast[e] <= acked {
			k = i
			break
		}
	}
	e := m.h.AL[k]
	dirty := m.alLast[e] > acked
	if m.f != nil && len(m.bitmaps) > 0 {
		chunks := m.h.ALExtent / m.h.Granularity
		from := int(int64(e) * chunks / 64)
		to := from + int(chunks/64)
		for i := range m.bitmaps {
			if err := m.writeWords(i, from, to, dirty); err != nil {
				return fmt.Errorf("writing bitmap words of AL extent %d: %w", e, err)
			}
		}
		if err := m.f.Sync(); err != nil {
			return err
		}
		m.bitmapWrites.Add(1)
	}
	m.h.AL = append(m.h.AL[:k], m.h.AL[k+1:]...)
	delete(m.alLast, e)
	return nil
}

// Close writes every bitmap, empties the activity log, sets the clean flag
// and closes the file. The caller has stopped writing (and failed every
// peer, so unacknowledged writes are in the bitmaps).
func (m *MetaStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.saveBitmaps(-1)
	if err == nil {
		m.h.AL = nil
		clear(m.alLast)
		m.h.Flags |= MetaClean
		err = m.writeHeader()
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	m.f = nil
	return err
}

// genView is this node's view for a peer slot.
func (m *MetaStore) genView(peer string, primary bool) GenView {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := GenView{Current: m.h.Current, History: m.h.History, PrimarySince: m.h.PrimarySince,
		Primary: primary, Consistent: m.h.Flags&MetaConsistent != 0}
	for i, p := range m.h.Peers {
		if p.Name == peer {
			v.PeerBitmap = p.Bitmap
			v.Dirty = int64(m.bitmaps[i].Count())
		}
	}
	return v
}
