package replica

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/tachy-ha/tachy/cib"
)

// Version identifies a CIB state: Pacemaker's version triple and the Raft
// index of the change that produced it.
type Version struct {
	AdminEpoch int    `json:"admin_epoch"`
	Epoch      int    `json:"epoch"`
	NumUpdates int    `json:"num_updates"`
	Index      uint64 `json:"index"`
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d (raft index %d)", v.AdminEpoch, v.Epoch, v.NumUpdates, v.Index)
}

// state is one published CIB; never modified once published.
type state struct {
	cib     *cib.CIB
	version Version
}

// fsm applies committed changes. Readers take the current state through an
// atomic pointer, so they never wait for Apply nor see a half-applied change.
type fsm struct {
	cur atomic.Pointer[state]
	// applied is the index of the last command the FSM applied (or
	// refused): raft's AppliedIndex moves when entries are handed to the
	// FSM, before they are applied, so reads wait on this instead.
	applied atomic.Uint64
	log     *slog.Logger

	mu       sync.Mutex
	watchers map[chan struct{}]bool
}

func newFSM(log *slog.Logger) *fsm {
	f := &fsm{log: log, watchers: map[chan struct{}]bool{}}
	f.cur.Store(&state{cib: &cib.CIB{}})
	return f
}

// Apply applies one committed change. A change the CIB refuses (a bad
// configuration, a node that does not exist) is refused on every node
// alike, leaving the state as it was; the submitter gets the error.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.applied.Store(l.Index)
	ch, err := cib.DecodeChange(l.Data)
	if err != nil {
		// Skipping it would leave this node's CIB silently different
		// from the others' (and it could become DC): stop instead, as a
		// replicated state machine must; the log keeps the change for
		// when tachy can read it.
		f.log.Error("cib: cannot read a committed change; stopping: upgrade tachy on this node to the cluster's version", "index", l.Index, "err", err)
		panic(fmt.Sprintf("cib: committed change %d cannot be read (%v): upgrade tachy on this node", l.Index, err))
	}
	old := f.cur.Load()
	next, err := old.cib.Apply(ch)
	if err != nil {
		return err
	}
	v := Version{AdminEpoch: next.AdminEpoch, Epoch: next.Epoch, NumUpdates: next.NumUpdates, Index: l.Index}
	f.cur.Store(&state{cib: next, version: v})
	f.notify()
	return v
}

func (f *fsm) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watchers {
		select {
		case w <- struct{}{}:
		default: // already pending: the watcher will read the newest state
		}
	}
}

func (f *fsm) watch() (<-chan struct{}, func()) {
	w := make(chan struct{}, 1)
	f.mu.Lock()
	f.watchers[w] = true
	f.mu.Unlock()
	return w, func() {
		f.mu.Lock()
		delete(f.watchers, w)
		f.mu.Unlock()
	}
}

// Snapshot captures the current state; Persist writes it as Pacemaker CIB
// XML, so a snapshot file is also a readable backup.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{st: f.cur.Load()}, nil
}

type snapshot struct{ st *state }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	var buf bytes.Buffer
	if err := cib.Export(&buf, s.st.cib); err != nil {
		sink.Cancel()
		return fmt.Errorf("cib snapshot: %w", err)
	}
	if _, err := sink.Write(buf.Bytes()); err != nil {
		sink.Cancel()
		return fmt.Errorf("cib snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	c, err := cib.Import(rc)
	if err != nil {
		return fmt.Errorf("cib snapshot: %w", err)
	}
	f.cur.Store(&state{cib: c, version: Version{AdminEpoch: c.AdminEpoch, Epoch: c.Epoch, NumUpdates: c.NumUpdates}})
	f.notify()
	return nil
}
