// Package controller wires the daemon: membership from heartbeat, quorum on
// top of it, and the control socket that status commands talk to.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/fastpath"
	"github.com/tachy-ha/tachy/heartbeat"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/quorum"
	"github.com/tachy-ha/tachy/vip"
)

// Daemon is one running node.
type Daemon struct {
	cfg   *config.Config
	local *config.Node
	log   *slog.Logger
	names map[uint32]string
	hb    *heartbeat.Service
	// membership is hb for goroutines that start before it exists (the
	// CIB port's join server).
	membership atomic.Pointer[heartbeat.Service]
	cib        *cibService
	dcKick     chan struct{}
	// stopping is closed when the daemon stops: background retries end.
	stopping chan struct{}
	// downSince: when the DC loop first saw each node down (dc.go)
	downSince map[uint32]time.Time
	plan      plan
	exec      *lrmd.Executor
	volumes   *lrmd.VolumeAgent // built-in ocf:tachy:volume
	vips      *vip.Manager      // this node's floating IPs (the vip agent's, and the fast path's)
	fast      *fastpath.Runner
	// fastPlansOf: the CIB version the DC last checked the plans for
	fastPlansOf string
	metrics     *metrics
	started     time.Time
	inc         uint64
	// firstCallID is this run's first operation call id (exec.go).
	firstCallID int

	mu sync.Mutex
	q  *quorum.State
	qs quorum.Status
	// the DC's transition
	transitionRunning bool
	transitionSeq     int
	// transitionInputs is planningInputs of the CIB the running
	// transition was planned from; transitionAbort asks it to stop
	// launching actions because they changed (abort.go).
	transitionInputs string
	transitionAbort  bool
	subs             map[int]chan Event
	nextSub          int
}

// Event is what the control socket streams: a membership change or a quorum
// change, with the CLOCK_MONOTONIC time of its evidence.
type Event struct {
	Type        string         `json:"type"`
	TimeNs      int64          `json:"time_ns"`
	Wall        time.Time      `json:"wall"`
	Node        uint32         `json:"node,omitempty"`
	NodeName    string         `json:"node_name,omitempty"`
	Link        *int           `json:"link,omitempty"`
	Incarnation uint64         `json:"incarnation,omitempty"`
	Quorum      *quorum.Status `json:"quorum,omitempty"`
}

// Options for Run.
type Options struct {
	Config *config.Config
	Node   string // overrides local.node
	Logger *slog.Logger
}

// Run runs the daemon until ctx ends.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	// The heartbeat sender holds a P of its own for good (it sleeps without
	// releasing it, see heartbeat.rawSleepMax); one more P keeps the rest of
	// the daemon, and the runtime's sysmon, from competing for the others.
	// The fast path's view sender (fastpath) holds one more.
	if n := runtime.NumCPU() + 2; runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
	local, err := cfg.LocalNode(o.Node)
	if err != nil {
		return err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", local.Name)
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	secret, err := config.ReadKey(cfg.Cluster.KeyFile)
	if err != nil {
		return err
	}
	inc, err := nextIncarnation(cfg.Local.StateDir)
	if err != nil {
		return err
	}
	d := &Daemon{cfg: cfg, local: local, log: log, names: map[uint32]string{}, started: time.Now(), inc: inc, subs: map[int]chan Event{},
		dcKick: make(chan struct{}, 1), stopping: make(chan struct{})}
	var qnodes []quorum.Node
	var peers []heartbeat.Peer
	for _, n := range cfg.Nodes {
		d.names[n.ID] = n.Name
		qnodes = append(qnodes, quorum.Node{ID: n.ID, Votes: uint32(n.Votes)})
		if n.ID != local.ID {
			peers = append(peers, heartbeat.Peer{ID: n.ID, Addrs: n.Addresses})
		}
	}
	d.q, err = quorum.New(quorumConfig(cfg, qnodes))
	if err != nil {
		return fmt.Errorf("quorum configuration: %w", err)
	}
	d.qs = d.q.Update([]uint32{local.ID}, time.Now())

	ctl, err := listenControl(cfg.Local.Socket, d, log)
	if err != nil {
		return err
	}
	d.metrics = newMetrics()
	d.vips = newVIPManager(cfg.Local.StateDir, log)
	defer d.vips.Close()
	d.releaseStaleVIPs()
	if d.exec, err = newExecutor(d); err != nil {
		ctl.ln.Close()
		return err
	}
	defer d.exec.Close()
	if d.cib, err = startCIB(cfg, local, d.vacant, log); err != nil {
		ctl.ln.Close()
		return err
	}
	defer d.cib.close()
	d.cib.net.Handle(d.handleCall)
	go d.forgetOwnHistory()
	events := make(chan heartbeat.Event, 1024)
	// Heartbeats outlive ctx until the node has left cleanly
	// (leaveCleanly): the others must see it up while its resources move.
	hbCtx, stopHB := context.WithCancel(context.Background())
	defer stopHB()
	d.hb, err = heartbeat.Start(hbCtx, heartbeat.Config{
		ClusterID: cfg.Cluster.ID, NodeID: local.ID, Incarnation: inc, Key: heartbeat.DeriveKey(secret),
		Interval: cfg.Heartbeat.Interval, MissCount: cfg.Heartbeat.MissCount, Port: cfg.Heartbeat.Port,
		Receiver: cfg.Heartbeat.Receiver, XDPMode: cfg.Heartbeat.XDPMode, MaxSkew: cfg.Heartbeat.MaxClockSkew,
		RTPriority: cfg.Heartbeat.RealtimePriority, LocalAddrs: local.Addresses, Peers: peers, Logger: log,
	}, events)
	if err != nil {
		ctl.ln.Close()
		return fmt.Errorf("heartbeat: %w", err)
	}
	d.membership.Store(d.hb)
	if d.fast, err = d.startFastPath(hbCtx, secret); err != nil {
		ctl.ln.Close()
		return err
	}
	// Metrics read the heartbeat, the CIB and the executor: serve them
	// once those exist.
	if cfg.Local.Metrics != "" {
		srv, err := d.serveMetrics(cfg.Local.Metrics)
		if err != nil {
			ctl.ln.Close()
			return err
		}
		defer srv.Close()
	}
	// Armed last: from here on, only a clean stop disarms it.
	wd, err := d.startWatchdog()
	if err != nil {
		ctl.ln.Close()
		return err
	}
	go ctl.serve(ctx)
	// The DC loop outlives ctx for a moment: a stopping DC still moves
	// its own resources away (leaveCleanly) before it lets go.
	dcCtx, stopDC := context.WithCancel(context.Background())
	defer stopDC()
	go d.dcLoop(dcCtx)
	log.Info("tachy daemon running", "cluster", cfg.Cluster.Name, "node_id", local.ID, "socket", cfg.Local.Socket, "quorum", d.qs.Reason)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ev := <-events:
			d.onMembership(ev)
		case now := <-tick.C:
			// last_man_standing acts on elapsed time, not only on changes.
			d.mu.Lock()
			qs := d.q.Tick(now)
			d.mu.Unlock()
			d.onQuorum(qs, heartbeat.MonotonicNow())
		case <-ctx.Done():
			close(d.stopping)
			d.leaveCleanly()
			stopDC()
			wd.stop()
			stopHB()
			err := d.hb.Wait()
			os.Remove(cfg.Local.Socket)
			log.Info("tachy daemon stopped")
			return err
		}
	}
}

func quorumConfig(cfg *config.Config, nodes []quorum.Node) quorum.Config {
	q := cfg.Quorum
	atb := q.TieBreaker.Mode
	if q.TieBreaker.Mode == config.TieList {
		var ids []string
		for _, name := range q.TieBreaker.Nodes {
			if n, ok := cfg.Node(name); ok {
				ids = append(ids, strconv.FormatUint(uint64(n.ID), 10))
			}
		}
		atb = strings.Join(ids, " ")
	}
	return quorum.Config{Nodes: nodes, ExpectedVotes: uint32(q.ExpectedVotes), TwoNode: q.TwoNode, WaitForAll: q.WaitForAll,
		LastManStanding: q.LastManStanding, LastManStandingWindow: q.LastManStandingWindow,
		AutoTieBreaker: q.AutoTieBreaker, AutoTieBreakerNode: atb}
}

func (d *Daemon) onMembership(ev heartbeat.Event) {
	e := Event{Type: ev.Type.String(), TimeNs: ev.TimeNs, Wall: time.Now(), Node: ev.NodeID, NodeName: d.names[ev.NodeID], Incarnation: ev.Incarnation}
	switch ev.Type {
	case heartbeat.LinkUp, heartbeat.LinkDown, heartbeat.LinkRestart:
		l := int(ev.Link)
		e.Link = &l
		d.log.Debug("link "+strings.TrimPrefix(e.Type, "link-"), "peer", e.NodeName, "link", l)
	case heartbeat.NodeDown:
		d.log.Warn("node down", "peer", e.NodeName, "incarnation", ev.Incarnation)
		d.onPeerLost(ev.NodeID, ev.TimeNs)
	default:
		d.log.Info(strings.ReplaceAll(e.Type, "-", " "), "peer", e.NodeName, "incarnation", ev.Incarnation)
	}
	d.publish(e)
	if ev.Type != heartbeat.NodeUp && ev.Type != heartbeat.NodeDown && ev.Type != heartbeat.NodeRestart {
		// Quorum follows nodes, not links; deciding on a link event would
		// also publish the quorum change before the node event causing it.
		return
	}
	members := append(d.hb.Up(), d.local.ID)
	if d.fast != nil {
		d.fast.SetUp(members)
	}
	d.mu.Lock()
	qs := d.q.Update(members, time.Now())
	d.mu.Unlock()
	d.onQuorum(qs, ev.TimeNs)
	d.kickDC()
}

func (d *Daemon) onQuorum(qs quorum.Status, at int64) {
	d.mu.Lock()
	was := d.qs
	d.qs = qs
	d.mu.Unlock()
	if was.Quorate == qs.Quorate && was.ExpectedVotes == qs.ExpectedVotes && was.TotalVotes == qs.TotalVotes {
		return
	}
	typ := "quorum-changed"
	switch {
	case qs.Quorate && !was.Quorate:
		typ = "quorum-gained"
		d.log.Info("quorum gained", "reason", qs.Reason)
	case !qs.Quorate && was.Quorate:
		typ = "quorum-lost"
		d.log.Warn("quorum lost", "reason", qs.Reason)
	default:
		d.log.Info("quorum changed", "reason", qs.Reason)
	}
	if d.volumes != nil && was.Quorate != qs.Quorate {
		d.volumes.SetQuorum(qs.Quorate)
	}
	d.publish(Event{Type: typ, TimeNs: at, Wall: time.Now(), Quorum: &qs})
}

// subscribe registers an event subscriber. A subscriber that falls 4096
// events behind is dropped rather than allowed to stall the daemon.
func (d *Daemon) subscribe() (<-chan Event, func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.nextSub
	d.nextSub++
	ch := make(chan Event, 4096)
	d.subs[id] = ch
	return ch, func() {
		d.mu.Lock()
		delete(d.subs, id)
		d.mu.Unlock()
	}
}

func (d *Daemon) publish(e Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, ch := range d.subs {
		select {
		case ch <- e:
		default:
			d.log.Warn("event subscriber too slow, dropped", "subscriber", id)
			delete(d.subs, id)
		}
	}
}

// nextIncarnation returns a number larger than any this node used before,
// and records it: a restarted daemon must look new to its peers, and must
// never reuse an old incarnation (its frames would be taken for replays).
func nextIncarnation(stateDir string) (uint64, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return 0, fmt.Errorf("state directory: %w (set local.state_dir to a writable directory)", err)
	}
	path := filepath.Join(stateDir, "incarnation")
	var last uint64
	if b, err := os.ReadFile(path); err == nil {
		last, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	inc := max(uint64(time.Now().UnixNano()), last+1)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("recording incarnation: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d\n", inc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return 0, fmt.Errorf("recording incarnation: %w", err)
	}
	return inc, nil
}
