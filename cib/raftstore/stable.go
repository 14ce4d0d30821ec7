package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/hashicorp/raft"
)

// StableStore is raft's key/value store (current term, vote) in one small
// file that every Set replaces atomically: written to a temporary file,
// fsynced, renamed over the old one, directory fsynced. Raft writes it on
// term changes and votes only, so rewriting it whole is cheap.
type StableStore struct {
	mu   sync.Mutex
	path string
	kv   map[string][]byte
}

var _ raft.StableStore = (*StableStore)(nil)

// ErrKeyNotFound is what Get returns for a missing key; raft treats it
// (like an empty value) as "not set".
var ErrKeyNotFound = errors.New("not found")

// OpenStable opens (or starts) the stable store file at path.
func OpenStable(path string) (*StableStore, error) {
	s := &StableStore{path: path, kv: map[string][]byte{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raft stable store: %w", err)
	}
	if len(data) < 4 || crc32.Checksum(data[4:], castagnoli()) != binary.LittleEndian.Uint32(data) {
		return nil, fmt.Errorf("raft stable store %s is damaged (checksum): it holds this node's term and vote; restore it from a backup or remove the node from the cluster and join it again", path)
	}
	rest := data[4:]
	for len(rest) > 0 {
		k, r, ok := chunk(rest)
		if !ok {
			return nil, fmt.Errorf("raft stable store %s is damaged (truncated record)", path)
		}
		v, r, ok := chunk(r)
		if !ok {
			return nil, fmt.Errorf("raft stable store %s is damaged (truncated record)", path)
		}
		s.kv[string(k)] = v
		rest = r
	}
	return s, nil
}

func chunk(b []byte) (val, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return append([]byte(nil), b[4:4+n]...), b[4+n:], true
}

// Set stores val under key, durably.
func (s *StableStore) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.kv[string(key)]
	s.kv[string(key)] = append([]byte(nil), val...)
	if err := s.write(); err != nil {
		if had {
			s.kv[string(key)] = old
		} else {
			delete(s.kv, string(key))
		}
		return err
	}
	return nil
}

func (s *StableStore) write() error {
	keys := make([]string, 0, len(s.kv))
	for k := range s.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	buf := make([]byte, 4)
	for _, k := range keys {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(k)))
		buf = append(buf, k...)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s.kv[k])))
		buf = append(buf, s.kv[k]...)
	}
	binary.LittleEndian.PutUint32(buf, crc32.Checksum(buf[4:], castagnoli()))
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("raft stable store: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("raft stable store: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("raft stable store: fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("raft stable store: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("raft stable store: %w", err)
	}
	return syncDir(filepath.Dir(s.path))
}

// Get returns the value under key, or ErrKeyNotFound.
func (s *StableStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return append([]byte(nil), v...), nil
}

// SetUint64 stores an integer under key.
func (s *StableStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the integer under key, 0 (and ErrKeyNotFound) if unset.
func (s *StableStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft stable store %s: %q holds %d bytes, not an integer", s.path, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
