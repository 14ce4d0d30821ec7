// Package replica keeps this node's copy of the CIB in step with the
// cluster's through hashicorp/raft: changes are committed to a replicated
// log on disk (cib/raftstore) and applied in log order, snapshots are CIB
// XML, and the Raft leader is the Designated Coordinator (DC). Nodes talk
// over mutual TLS with certificates from the cluster's own CA (tls.go).
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/raftstore"
)

// Config configures a replica.
type Config struct {
	// Node is this node's name: its Raft server id.
	Node string
	// Dir holds the Raft log, stable store and snapshots; it survives
	// restarts (the appliance keeps it on the data partition).
	Dir string
	// Transport carries Raft's RPCs: NewTLSTransport between nodes,
	// raft.NewInmemTransport in tests.
	Transport raft.Transport
	// Timing; zero values take the defaults below. Failover does not wait
	// for Raft (the fast path acts on membership and contingency plans),
	// so these favour stability on a busy node over election speed.
	HeartbeatTimeout   time.Duration // default 200ms
	ElectionTimeout    time.Duration // default 200ms
	LeaderLeaseTimeout time.Duration // default 100ms
	// SnapshotThreshold is how many changes between snapshots (default
	// 1024); TrailingLogs how many changes a snapshot leaves in the log
	// for slow followers (default 4096).
	SnapshotThreshold uint64
	TrailingLogs      uint64
	Log               *slog.Logger
}

// Replica is this node's member of the replicated CIB.
type Replica struct {
	cfg    Config
	raft   *raft.Raft
	fsm    *fsm
	logs   *raftstore.LogStore
	stable *raftstore.StableStore
	snaps  raft.SnapshotStore
	// barrierTerm is the leadership term CaughtUpAsLeader last completed.
	barrierTerm atomic.Uint64
	log         *slog.Logger
}

// ErrNotLeader is returned by Submit on a node that is not the DC; the
// error says which node is.
var ErrNotLeader = errors.New("this node is not the DC")

// NotLeaderError names the DC to send the change to instead.
type NotLeaderError struct {
	Leader, Address string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "this node is not the DC and no DC is elected yet (is a majority of nodes up?)"
	}
	return fmt.Sprintf("this node is not the DC; %s (%s) is", e.Leader, e.Address)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Open starts the replica from what Dir holds (nothing on a new node).
func Open(cfg Config) (*Replica, error) {
	if cfg.Node == "" || cfg.Dir == "" || cfg.Transport == nil {
		return nil, errors.New("replica: Node, Dir and Transport are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	logs, err := raftstore.OpenLog(filepath.Join(cfg.Dir, "raft.log"))
	if err != nil {
		return nil, err
	}
	stable, err := raftstore.OpenStable(filepath.Join(cfg.Dir, "raft.stable"))
	if err != nil {
		logs.Close()
		return nil, err
	}
	hlog := raftLogger("raft", cfg.Log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("replica: snapshots: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Node)
	rc.Logger = hlog
	rc.HeartbeatTimeout = orDefault(cfg.HeartbeatTimeout, 200*time.Millisecond)
	rc.ElectionTimeout = orDefault(cfg.ElectionTimeout, 200*time.Millisecond)
	rc.LeaderLeaseTimeout = orDefault(cfg.LeaderLeaseTimeout, 100*time.Millisecond)
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	if rc.SnapshotThreshold == 0 {
		rc.SnapshotThreshold = 1024
	}
	rc.TrailingLogs = cfg.TrailingLogs
	if rc.TrailingLogs == 0 {
		rc.TrailingLogs = 4096
	}
	if err := raft.ValidateConfig(rc); err != nil {
		logs.Close()
		return nil, fmt.Errorf("replica: %w", err)
	}
	f := newFSM(cfg.Log)
	r, err := raft.NewRaft(rc, f, logs, stable, snaps, cfg.Transport)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("replica: %w", err)
	}
	return &Replica{cfg: cfg, raft: r, fsm: f, logs: logs, stable: stable, snaps: snaps, log: cfg.Log}, nil
}

// raftLogger passes hashicorp/raft's warnings and errors to slog.
func raftLogger(name string, log *slog.Logger) hclog.Logger {
	if log == nil {
		log = slog.Default()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Warn, Output: slogWriter{log}, DisableTime: true})
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(line, "[ERROR]") {
		level = slog.LevelError
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Peer is a cluster member's Raft identity and address.
type Peer struct {
	Node, Address string
	// Learner: it receives the log but does not vote yet (a node that
	// joined and is catching up).
	Learner bool `json:"learner,omitempty"`
}

// Bootstrap makes a brand-new cluster of the given members (this node
// among them). It is refused on a node that already has state: a cluster
// is initialised once (tachy cluster init), nodes join it after.
func (r *Replica) Bootstrap(peers []Peer) error {
	var cfg raft.Configuration
	for _, p := range peers {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.Node), Address: raft.ServerAddress(p.Address)})
	}
	if err := r.raft.BootstrapCluster(cfg).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("replica: %s already belongs to a cluster (its state is in %s); to start over, stop tachy and move that directory away", r.cfg.Node, r.cfg.Dir)
		}
		return fmt.Errorf("replica: bootstrap: %w", err)
	}
	return nil
}

// BootstrapIfNew bootstraps on a node without Raft state and does nothing
// on one that has it. Every node of a new cluster may call it with the same
// members: Raft accepts identical bootstraps.
func (r *Replica) BootstrapIfNew(peers []Peer) error {
	has, err := raft.HasExistingState(r.logs, r.stable, r.snaps)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if has {
		return nil
	}
	return r.Bootstrap(peers)
}

// AddNode adds a member (on the DC): it receives the log and votes.
func (r *Replica) AddNode(ctx context.Context, p Peer) error {
	return r.wait(ctx, r.raft.AddVoter(raft.ServerID(p.Node), raft.ServerAddress(p.Address), 0, timeoutOf(ctx)))
}

// AddLearner adds a member that receives the log without voting (on the
// DC): a joining node catches up before it counts towards quorum.
func (r *Replica) AddLearner(ctx context.Context, p Peer) error {
	return r.wait(ctx, r.raft.AddNonvoter(raft.ServerID(p.Node), raft.ServerAddress(p.Address), 0, timeoutOf(ctx)))
}

// LastIndex is the index of the last entry in this node's log.
func (r *Replica) LastIndex() uint64 { return r.raft.LastIndex() }

// AppliedIndex is how far this node has applied the log.
func (r *Replica) AppliedIndex() uint64 { return r.raft.AppliedIndex() }

// RemoveNode removes a member (on the DC).
func (r *Replica) RemoveNode(ctx context.Context, node string) error {
	return r.wait(ctx, r.raft.RemoveServer(raft.ServerID(node), 0, timeoutOf(ctx)))
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 0
}

func (r *Replica) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return r.leaderErr(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrOutcomeUnknown: the DC lost its role while committing a change; the
// change may or may not have been committed.
var ErrOutcomeUnknown = errors.New("the DC lost its role while committing the change: it may or may not have been applied; read the CIB and retry if it was not")

func (r *Replica) leaderErr(err error) error {
	if errors.Is(err, raft.ErrLeadershipLost) {
		return ErrOutcomeUnknown
	}
	if errors.Is(err, raft.ErrNotLeader) {
		addr, id := r.raft.LeaderWithID()
		return &NotLeaderError{Leader: string(id), Address: string(addr)}
	}
	return err
}

// Submit commits a change through the DC and returns the version it made.
// On another node it returns a *NotLeaderError naming the DC. A change the
// CIB refuses returns its error and changes nothing anywhere.
func (r *Replica) Submit(ctx context.Context, ch *cib.Change) (Version, error) {
	data, err := cib.EncodeChange(ch)
	if err != nil {
		return Version{}, err
	}
	f := r.raft.Apply(data, timeoutOf(ctx))
	if err := r.wait(ctx, f); err != nil {
		return Version{}, err
	}
	switch resp := f.Response().(type) {
	case Version:
		return resp, nil
	case error:
		return Version{}, resp
	}
	return Version{}, fmt.Errorf("replica: unexpected apply result %T", f.Response())
}

// Current returns this node's CIB and its version. The CIB is immutable:
// hold it as long as needed.
func (r *Replica) Current() (*cib.CIB, Version) {
	st := r.fsm.cur.Load()
	return st.cib, st.version
}

// Watch returns a channel that receives a signal after each change (one
// signal may stand for several: read Current), and a function to stop.
func (r *Replica) Watch() (<-chan struct{}, func()) { return r.fsm.watch() }

// Barrier waits until every change committed before it is applied here:
// on the DC, Current is then up to date.
func (r *Replica) Barrier(ctx context.Context) error {
	return r.wait(ctx, r.raft.Barrier(timeoutOf(ctx)))
}

// CaughtUpAsLeader waits, once per leadership term, until this leader has
// applied every entry committed before it became leader (a Barrier: an
// entry of its own term committed and everything before it applied).
func (r *Replica) CaughtUpAsLeader(ctx context.Context) error {
	term := r.raft.CurrentTerm()
	if r.barrierTerm.Load() == term {
		return nil
	}
	if err := r.Barrier(ctx); err != nil {
		return err
	}
	r.barrierTerm.Store(term)
	return nil
}

// IsDC reports whether this node is the Raft leader, the DC.
func (r *Replica) IsDC() bool { return r.raft.State() == raft.Leader }

// DC returns the current DC's name and address, "" while there is none.
func (r *Replica) DC() (node, address string) {
	addr, id := r.raft.LeaderWithID()
	return string(id), string(addr)
}

// LeaderChanges signals when this node gains (true) or loses (false) the
// DC role.
func (r *Replica) LeaderChanges() <-chan bool { return r.raft.LeaderCh() }

// Members lists the cluster's members.
func (r *Replica) Members() ([]Peer, error) {
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Peer
	for _, s := range f.Configuration().Servers {
		out = append(out, Peer{Node: string(s.ID), Address: string(s.Address), Learner: s.Suffrage == raft.Nonvoter})
	}
	return out, nil
}

// Snapshot takes a snapshot now (it also happens every SnapshotThreshold
// changes).
func (r *Replica) Snapshot() error { return r.raft.Snapshot().Error() }

// Stats is Raft's view for status and metrics.
func (r *Replica) Stats() map[string]string { return r.raft.Stats() }

// Close stops Raft and closes the stores; the state stays in Dir.
func (r *Replica) Close() error {
	err := r.raft.Shutdown().Error()
	if c, ok := r.cfg.Transport.(io.Closer); ok {
		c.Close()
	}
	if cerr := r.logs.Close(); err == nil {
		err = cerr
	}
	return err
}
