package nbdrepl

import (
	"sync"
)

// MemBackend is an in-memory backend for tests. Its Flush makes nothing more
// durable than it already is, so it is trivially multi-connection safe.
type MemBackend struct {
	mu   sync.RWMutex
	data []byte

	// Hook, when set, runs before every operation ("read", "write",
	// "flush", "sync", "trim", "zero") with its range; a non-nil error is
	// returned instead of doing the operation. Tests use it to delay
	// requests or inject errors. Set it before serving.
	Hook func(op string, off, length int64) error

	ReadOnly bool

	statsMu sync.Mutex
	Flushes int // number of Flush calls, for tests
	Syncs   int // number of Sync calls
}

// NewMemBackend returns a zeroed backend of size bytes.
func NewMemBackend(size int64) *MemBackend { return &MemBackend{data: make([]byte, size)} }

func (m *MemBackend) hook(op string, off, length int64) error {
	if m.Hook != nil {
		return m.Hook(op, off, length)
	}
	return nil
}

func (m *MemBackend) ReadAt(p []byte, off int64) (int, error) {
	if err := m.hook("read", off, int64(len(p))); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return copy(p, m.data[off:]), nil
}

func (m *MemBackend) WriteAt(p []byte, off int64) (int, error) {
	if err := m.hook("write", off, int64(len(p))); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.data[off:], p), nil
}

func (m *MemBackend) Flush() error {
	if err := m.hook("flush", 0, 0); err != nil {
		return err
	}
	m.statsMu.Lock()
	m.Flushes++
	m.statsMu.Unlock()
	return nil
}

func (m *MemBackend) Sync(off, length int64) error {
	if err := m.hook("sync", off, length); err != nil {
		return err
	}
	m.statsMu.Lock()
	m.Syncs++
	m.statsMu.Unlock()
	return nil
}

// Counts returns the Flush and Sync call counts.
func (m *MemBackend) Counts() (flushes, syncs int) {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	return m.Flushes, m.Syncs
}

func (m *MemBackend) zero(op string, off, length int64) error {
	if err := m.hook(op, off, length); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+length])
	return nil
}

func (m *MemBackend) Trim(off, length int64) error { return m.zero("trim", off, length) }

func (m *MemBackend) WriteZeroes(off, length int64, mayTrim bool) error {
	return m.zero("zero", off, length)
}

func (m *MemBackend) Size() int64 { return int64(len(m.data)) }

func (m *MemBackend) Caps() Caps {
	return Caps{Flush: true, FUA: true, Trim: true, WriteZeroes: true, MultiConn: true, ReadOnly: m.ReadOnly}
}

// Bytes returns a copy of the contents.
func (m *MemBackend) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]byte(nil), m.data...)
}
