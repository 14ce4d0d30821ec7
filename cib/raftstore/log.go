// Package raftstore keeps hashicorp/raft's log and stable state in plain
// files: an append-only log whose records carry a CRC-32C, fsynced before
// raft is told they are stored, and a small key/value file replaced
// atomically. It needs no database and nothing outside the standard library.
//
// Crash safety: raft acknowledges an entry only after StoreLogs returns,
// and StoreLogs returns only after fsync, so a crash can tear at most the
// records of a batch that was never acknowledged. Open truncates such a
// torn tail (and says how much it dropped); everything before it is intact.
package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// castagnoli is made on first use: every tachy command links this package,
// and making the table at init costs each one's start.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

const (
	recordHeader = 8 // body length, CRC-32C of the body
	bodyFixed    = 8 + 8 + 1 + 8 + 4 + 4
	// maxRecord bounds a record's length so that a corrupt length field
	// cannot make Open allocate without limit.
	maxRecord = 64 << 20
)

// LogStore is a raft.LogStore on one append-only file. Entries are
// contiguous (it is a raft.MonotonicLogStore).
type LogStore struct {
	mu      sync.RWMutex
	path    string
	f       *os.File
	first   uint64  // index of offsets[0]; 0 when empty
	offsets []int64 // file offset of each entry's record
	size    int64   // end of the last record
}

var (
	_ raft.LogStore          = (*LogStore)(nil)
	_ raft.MonotonicLogStore = (*LogStore)(nil)
)

// OpenLog opens (creating if needed) the log file at path and scans it.
// A torn or corrupt tail is cut off and reported in the log.
func OpenLog(path string) (*LogStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	s := &LogStore{path: path, f: f}
	dropped, err := s.scan()
	if err != nil {
		f.Close()
		return nil, err
	}
	if dropped > 0 {
		slog.Warn("raft log: cut a torn or corrupt tail (entries never acknowledged)",
			"path", path, "bytes", dropped, "entries_kept", len(s.offsets))
		if err := f.Truncate(s.size); err != nil {
			f.Close()
			return nil, fmt.Errorf("raft log %s: truncating the torn tail: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("raft log %s: %w", path, err)
		}
	}
	return s, nil
}

// scan indexes the file's records and returns how many bytes follow the
// last good one.
func (s *LogStore) scan() (dropped int64, err error) {
	fi, err := s.f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	var off int64
	var hdr [recordHeader]byte
	// damaged decides what a bad record at off means: the torn tail of
	// an unacknowledged batch if nothing follows it, else damage to
	// entries that were acknowledged, which must not be cut silently.
	damaged := func(recordEnd int64, what string) error {
		if recordEnd >= end || recordEnd <= off {
			return nil // the last record, incomplete or torn: cut it
		}
		return fmt.Errorf("raft log %s: %s at offset %d, with %d bytes of records after it: the log is damaged, not torn; move it away and let this node catch up from the others", s.path, what, off, end-recordEnd)
	}
	for off < end {
		if _, err := s.f.ReadAt(hdr[:], off); err != nil {
			if off+recordHeader <= end {
				return 0, fmt.Errorf("raft log %s: reading offset %d: %w", s.path, off, err)
			}
			break
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:]))
		if n < bodyFixed || n > maxRecord || off+recordHeader+n > end {
			break // an incomplete last record, or a length torn mid-write
		}
		body := make([]byte, n)
		if _, err := s.f.ReadAt(body, off+recordHeader); err != nil {
			return 0, fmt.Errorf("raft log %s: reading offset %d: %w", s.path, off, err)
		}
		if crc32.Checksum(body, castagnoli()) != binary.LittleEndian.Uint32(hdr[4:]) {
			if err := damaged(off+recordHeader+n, "a record fails its checksum"); err != nil {
				return 0, err
			}
			break
		}
		var l raft.Log
		if decodeBody(body, &l) != nil {
			if err := damaged(off+recordHeader+n, "a record cannot be decoded"); err != nil {
				return 0, err
			}
			break
		}
		if len(s.offsets) == 0 {
			s.first = l.Index
		} else if l.Index != s.first+uint64(len(s.offsets)) {
			return 0, fmt.Errorf("raft log %s: entry %d follows %d at offset %d: the file is damaged; move it away and let this node catch up from the leader",
				s.path, l.Index, s.first+uint64(len(s.offsets))-1, off)
		}
		s.offsets = append(s.offsets, off)
		off += recordHeader + n
	}
	s.size = off
	return end - off, nil
}

func encode(b []byte, l *raft.Log) []byte {
	n := bodyFixed + len(l.Data) + len(l.Extensions)
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0) // CRC, filled in below
	b = binary.LittleEndian.AppendUint64(b, l.Index)
	b = binary.LittleEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(at))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	body := b[start+recordHeader:]
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli()))
	return b
}

var errShort = errors.New("record body too short")

func decodeBody(body []byte, l *raft.Log) error {
	if len(body) < bodyFixed {
		return errShort
	}
	l.Index = binary.LittleEndian.Uint64(body[0:])
	l.Term = binary.LittleEndian.Uint64(body[8:])
	l.Type = raft.LogType(body[16])
	at := int64(binary.LittleEndian.Uint64(body[17:]))
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	rest := body[25:]
	dn := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(dn) > uint64(len(rest)) {
		return errShort
	}
	l.Data = append([]byte(nil), rest[:dn]...)
	rest = rest[dn:]
	if len(rest) < 4 {
		return errShort
	}
	en := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(en) != uint64(len(rest)) {
		return errShort
	}
	l.Extensions = nil
	if en > 0 {
		l.Extensions = append([]byte(nil), rest...)
	}
	return nil
}

// IsMonotonic tells raft that entries must be contiguous.
func (s *LogStore) IsMonotonic() bool { return true }

// FirstIndex returns the first stored index, 0 when empty.
func (s *LogStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex returns the last stored index, 0 when empty.
func (s *LogStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last(), nil
}

func (s *LogStore) last() uint64 {
	if len(s.offsets) == 0 {
		return 0
	}
	return s.first + uint64(len(s.offsets)) - 1
}

// GetLog reads the entry at index.
func (s *LogStore) GetLog(index uint64, l *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.offsets) == 0 || index < s.first || index > s.last() {
		return raft.ErrLogNotFound
	}
	i := index - s.first
	off := s.offsets[i]
	end := s.size
	if i+1 < uint64(len(s.offsets)) {
		end = s.offsets[i+1]
	}
	buf := make([]byte, end-off)
	if _, err := s.f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("raft log %s: reading entry %d: %w", s.path, index, err)
	}
	if crc32.Checksum(buf[recordHeader:], castagnoli()) != binary.LittleEndian.Uint32(buf[4:]) {
		return fmt.Errorf("raft log %s: entry %d fails its checksum: the disk returned damaged data", s.path, index)
	}
	return decodeBody(buf[recordHeader:], l)
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends entries, which must continue the log, and fsyncs.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.last() + 1
	if len(s.offsets) == 0 {
		next = logs[0].Index
	}
	var buf []byte
	offs := make([]int64, 0, len(logs))
	for _, l := range logs {
		if l.Index != next {
			return fmt.Errorf("raft log %s: entry %d does not continue the log (next is %d)", s.path, l.Index, next)
		}
		offs = append(offs, s.size+int64(len(buf)))
		buf = encode(buf, l)
		next++
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		return fmt.Errorf("raft log %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("raft log %s: fsync: %w", s.path, err)
	}
	if len(s.offsets) == 0 {
		s.first = logs[0].Index
	}
	s.offsets = append(s.offsets, offs...)
	s.size += int64(len(buf))
	return nil
}

// DeleteRange removes entries min..max (inclusive). Raft removes either a
// suffix (entries a new leader overrides) or a prefix (entries a snapshot
// covers); a suffix is cut off the file, a prefix is compacted away by
// rewriting the file and renaming it into place.
func (s *LogStore) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.offsets) == 0 || max < s.first || min > s.last() {
		return nil
	}
	if min < s.first {
		min = s.first
	}
	if max > s.last() {
		max = s.last()
	}
	switch {
	case min == s.first && max == s.last():
		return s.truncate(0, 0)
	case max == s.last():
		return s.truncate(min-s.first, s.offsets[min-s.first])
	case min == s.first:
		return s.dropPrefix(max + 1)
	}
	return fmt.Errorf("raft log %s: cannot delete %d..%d from the middle of %d..%d", s.path, min, max, s.first, s.last())
}

// truncate keeps the first keep entries, ending the file at size.
func (s *LogStore) truncate(keep uint64, size int64) error {
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("raft log %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("raft log %s: fsync: %w", s.path, err)
	}
	s.offsets = s.offsets[:keep]
	s.size = size
	if keep == 0 {
		s.first = 0
	}
	return nil
}

// dropPrefix rewrites the file from entry newFirst on.
func (s *LogStore) dropPrefix(newFirst uint64) error {
	from := s.offsets[newFirst-s.first]
	tmp := s.path + ".compact"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("raft log compaction: %w", err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(s.f, from, s.size-from)); err != nil {
		out.Close()
		return fmt.Errorf("raft log compaction: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("raft log compaction: fsync: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		out.Close()
		return fmt.Errorf("raft log compaction: %w", err)
	}
	// From the rename on, the new file is the log: write to it whatever
	// happens next (the old one is unlinked).
	s.f.Close()
	s.f = out
	kept := s.offsets[newFirst-s.first:]
	offs := make([]int64, len(kept))
	for i, o := range kept {
		offs[i] = o - from
	}
	s.offsets, s.first, s.size = offs, newFirst, s.size-from
	return syncDir(filepath.Dir(s.path))
}

// Close closes the file.
func (s *LogStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
