package nbdrepl

import (
	"math/bits"
	"sync"
)

// Payload buffers (NBD write payloads and read replies, replication frames
// on the secondary) come from pools by power-of-two size class and go back
// once nothing refers to them. Allocating them fresh made a sequential
// stream of 1 MiB writes spend about a quarter of the server's CPU in the
// allocator, zeroing, the garbage collector and page faults on new pages.
const (
	minPoolShift = 12 // 4 KiB
	maxPoolShift = 23 // 8 MiB: the largest frame body (4 MiB + header) fits
)

var bufPools [maxPoolShift - minPoolShift + 1]sync.Pool

// poolClass is the size class of a buffer of n bytes, or -1 if n is too
// large to pool.
func poolClass(n int) int {
	if n <= 1<<minPoolShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minPoolShift
	if c >= len(bufPools) {
		return -1
	}
	return c
}

// getBuf returns a buffer of length n, with undefined contents.
func getBuf(n int) []byte {
	c := poolClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+minPoolShift))
}

// putBuf gives b back; the caller must not use it (or any slice of it)
// again. Buffers not made by getBuf are dropped.
func putBuf(b []byte) {
	c := poolClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minPoolShift) {
		return
	}
	b = b[:cap(b)]
	bufPools[c].Put(&b)
}
