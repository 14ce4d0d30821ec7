package nbdrepl

import (
	"math/bits"
	"sync"
)

// DirtyBitmap records which parts of a volume a secondary may lack: one bit
// per Granularity bytes. It lives in memory only (persisting it is part of
// resync, not done yet). Safe for concurrent use.
type DirtyBitmap struct {
	mu   sync.Mutex
	gran int64
	size int64
	bits []uint64
}

// DefaultDirtyGranularity is the bytes covered by one dirty bit when the
// configuration does not say (DRBD uses 4 KiB too).
const DefaultDirtyGranularity = 4096

// NewDirtyBitmap returns a clean bitmap for size bytes; granularity must be
// a power of two (else DefaultDirtyGranularity is used).
func NewDirtyBitmap(size, granularity int64) *DirtyBitmap {
	if granularity <= 0 || granularity&(granularity-1) != 0 {
		granularity = DefaultDirtyGranularity
	}
	n := (size + granularity - 1) / granularity
	return &DirtyBitmap{gran: granularity, size: size, bits: make([]uint64, (n+63)/64)}
}

// Granularity is the bytes covered by one bit.
func (d *DirtyBitmap) Granularity() int64 { return d.gran }

// Mark sets the bits of every chunk the range touches.
func (d *DirtyBitmap) Mark(off, length int64) {
	d.each(off, length, func(w *uint64, bit uint64) bool { *w |= bit; return true })
}

// each calls f under the lock with the word and bit of every chunk the range
// touches, in order, until f returns false; it reports whether f ran for
// all of them.
func (d *DirtyBitmap) each(off, length int64, f func(w *uint64, bit uint64) bool) bool {
	if length <= 0 || off >= d.size {
		return true
	}
	end := min(off+length, d.size)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := off / d.gran; i <= (end-1)/d.gran; i++ {
		if !f(&d.bits[i/64], 1<<(i%64)) {
			return false
		}
	}
	return true
}

// Count returns the number of dirty chunks.
func (d *DirtyBitmap) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, w := range d.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsDirty says whether any chunk the range touches is dirty.
func (d *DirtyBitmap) IsDirty(off, length int64) bool {
	return !d.each(off, length, func(w *uint64, bit uint64) bool { return *w&bit == 0 })
}

// Ranges returns the dirty byte ranges, merged, in order, as [off, end)
// pairs clipped to the volume size.
func (d *DirtyBitmap) Ranges() [][2]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][2]int64
	nchunks := (d.size + d.gran - 1) / d.gran
	for i := int64(0); i < nchunks; i++ {
		if d.bits[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		s, e := i*d.gran, min((i+1)*d.gran, d.size)
		if k := len(out) - 1; k >= 0 && out[k][1] == s {
			out[k][1] = e
		} else {
			out = append(out, [2]int64{s, e})
		}
	}
	return out
}

// Clear clears the bits of every chunk wholly or partly in the range (used
// once a chunk's copy is acknowledged as applied by the secondary).
func (d *DirtyBitmap) Clear(off, length int64) {
	d.each(off, length, func(w *uint64, bit uint64) bool { *w &^= bit; return true })
}

// Bytes returns the bytes covered by dirty chunks (clipped to the volume):
// what is out of sync.
func (d *DirtyBitmap) Bytes() int64 {
	var n int64
	for _, r := range d.Ranges() {
		n += r[1] - r[0]
	}
	return n
}

// next returns the first dirty chunk at or after chunk index i as a byte
// range, or ok false.
func (d *DirtyBitmap) next(i int64) (off, end int64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	nchunks := (d.size + d.gran - 1) / d.gran
	for ; i < nchunks; i++ {
		if w := d.bits[i/64]; w == 0 {
			i |= 63
			continue
		} else if w&(1<<(i%64)) != 0 {
			return i * d.gran, min((i+1)*d.gran, d.size), true
		}
	}
	return 0, 0, false
}

// words copies the bitmap words [from, to) (clipped).
func (d *DirtyBitmap) words(from, to int) []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	to = min(to, len(d.bits))
	from = min(from, to)
	return append([]uint64(nil), d.bits[from:to]...)
}

// orWords sets every bit set in w, starting at word from (bits beyond the
// volume are ignored).
func (d *DirtyBitmap) orWords(from int, w []uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range w {
		if from+i < len(d.bits) {
			d.bits[from+i] |= x
		}
	}
	d.trimTail()
}

// trimTail clears bits past the last chunk. Call with d.mu held.
func (d *DirtyBitmap) trimTail() {
	n := (d.size + d.gran - 1) / d.gran
	if r := n % 64; r != 0 && len(d.bits) > 0 {
		d.bits[len(d.bits)-1] &= 1<<r - 1
	}
}

// MarkAll marks the whole volume dirty (a full sync).
func (d *DirtyBitmap) MarkAll() { d.Mark(0, d.size) }

// ClearAll clears every bit.
func (d *DirtyBitmap) ClearAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.bits)
}
