package raftstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func entry(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: 1 + i/10, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, int(i%7)),
		AppendedAt: time.Unix(1700000000, int64(i))}
}

func storeRange(t *testing.T, s *LogStore, from, to uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, entry(i))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

func checkRange(t *testing.T, s *LogStore, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("range %d..%d, want %d..%d", f, l, first, last)
	}
	for i := first; i <= last && last > 0; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		want := entry(i)
		if got.Index != i || got.Term != want.Term || !bytes.Equal(got.Data, want.Data) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d: %+v, want %+v", i, got, want)
		}
	}
	var l2 raft.Log
	if err := s.GetLog(last+1, &l2); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog past the end: %v", err)
	}
}

func TestLogStoreLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	s, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0)
	storeRange(t, s, 1, 50)
	if err := s.StoreLog(entry(52)); err == nil || !strings.Contains(err.Error(), "does not continue") {
		t.Fatalf("a gap was accepted: %v", err)
	}
	checkRange(t, s, 1, 50)
	// A new leader overrides the tail.
	if err := s.DeleteRange(41, 50); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 40)
	storeRange(t, s, 41, 60)
	// A snapshot covers the head: compacted away.
	if err := s.DeleteRange(1, 30); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 31, 60)
	if err := s.DeleteRange(40, 45); err == nil {
		t.Fatal("deleting from the middle was accepted")
	}
	s.Close()
	// Everything survives a reopen.
	s, err = OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 31, 60)
	storeRange(t, s, 61, 61)
	// After a snapshot restore raft removes everything.
	if err := s.DeleteRange(31, 61); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0)
	storeRange(t, s, 100, 105)
	s.Close()
	s, err = OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 100, 105)
	s.Close()
}

// A crash in the middle of an append leaves a torn record: Open cuts it
// and keeps every entry before it (the torn batch was never acknowledged).
func TestLogStoreTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(data []byte) []byte
	}{
		{"half a record", func(d []byte) []byte { return d[:len(d)-5] }},
		{"garbage appended", func(d []byte) []byte { return append(d, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3) }},
		{"flipped bit in the last record", func(d []byte) []byte { d[len(d)-2] ^= 0x10; return d }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.log")
			s, err := OpenLog(path)
			if err != nil {
				t.Fatal(err)
			}
			storeRange(t, s, 1, 20)
			s.Close()
			data, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tc.tear(data), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = OpenLog(path)
			if err != nil {
				t.Fatal(err)
			}
			last, _ := s.LastIndex()
			if last != 20 && last != 19 {
				t.Fatalf("last %d after %s", last, tc.name)
			}
			checkRange(t, s, 1, last)
			// The log continues where the good part ends.
			storeRange(t, s, last+1, last+3)
			checkRange(t, s, 1, last+3)
			s.Close()
		})
	}
}

// Damage before the last record is not a torn write: Open refuses the
// log rather than cut acknowledged entries.
func TestLogStoreRefusesDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.log")
	s, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	storeRange(t, s, 1, 20)
	s.Close()
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0x40
	os.WriteFile(path, data, 0o600)
	if _, err := OpenLog(path); err == nil || !strings.Contains(err.Error(), "damaged, not torn") {
		t.Fatalf("damage in the middle: %v", err)
	}
}

func TestStableStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.stable")
	s, err := OpenStable(path)
	if err != nil {
		t.Fatal(err)
	}
	// raft tells "never set" apart from failures by this message.
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStable(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); v != 7 || err != nil {
		t.Fatalf("term %d %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); string(v) != "n2" || err != nil {
		t.Fatalf("vote %q %v", v, err)
	}
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 1
	os.WriteFile(path, data, 0o600)
	if _, err := OpenStable(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged file: %v", err)
	}
}
