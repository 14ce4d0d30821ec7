package nbdrepl

// Volume: one replicated volume on one node, in the role of primary or
// secondary, with promote and demote (DRBD's roles), quorum handling
// (on-no-quorum=suspend-io|io-error) and the operator's verbs.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Role is a volume's role on this node.
type Role string

const (
	RoleSecondary Role = "Secondary"
	RolePrimary   Role = "Primary"
	RoleStopped   Role = "Stopped"
)

// OnNoQuorum is what a primary does with I/O while it has no quorum
// (DRBD's on-no-quorum).
type OnNoQuorum uint8

const (
	// NoQuorumSuspendIO: I/O waits until quorum returns (or the volume
	// is demoted or stopped, when it fails).
	NoQuorumSuspendIO OnNoQuorum = iota
	// NoQuorumIOError: I/O fails at once with EIO.
	NoQuorumIOError
)

func (o OnNoQuorum) String() string {
	if o == NoQuorumIOError {
		return "io-error"
	}
	return "suspend-io"
}

// ParseOnNoQuorum parses "suspend-io" or "io-error".
func ParseOnNoQuorum(s string) (OnNoQuorum, error) {
	switch s {
	case "", "suspend-io":
		return NoQuorumSuspendIO, nil
	case "io-error":
		return NoQuorumIOError, nil
	}
	return 0, fmt.Errorf("on-no-quorum %q: use suspend-io or io-error", s)
}

var (
	// ErrNoQuorum is returned by I/O on a primary without quorum under
	// on-no-quorum=io-error (the NBD client sees EIO).
	ErrNoQuorum = errors.New("volume has no quorum (on-no-quorum=io-error)")
	// ErrPromote wraps every refusal to promote.
	ErrPromote = errors.New("promotion refused")
	// ErrDemoted is returned by I/O that was suspended for quorum when
	// the volume was demoted or stopped.
	ErrDemoted = errors.New("volume demoted while I/O was suspended for quorum")
)

// VolumePeer is another node holding a replica.
type VolumePeer struct {
	Name string // its node name
	Addr string // its replication address (host:port)
}

// VolumeConfig configures a Volume.
type VolumeConfig struct {
	Name     string // volume id, the same on every node
	Node     string // this node's name
	Backend  Backend
	Meta     *MetaStore // nil: in memory (a restart means a full, checksummed sync)
	Secret   []byte
	Protocol Protocol
	// Listen is the replication address: the secondary role accepts its
	// primary there. The listener stays open in both roles; a primary
	// refuses connections.
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	Peers    []VolumePeer
	// NBDListen is where the primary serves its NBD export ("" none).
	NBDListen string
	// NBDTLS and NBDTLSConfig (LoadTLSConfig) put TLS on the NBD
	// listener (Server.TLS, Server.TLSConfig). The local kernel attach
	// (Device) is served without TLS: the kernel's client cannot speak
	// it, and its socket pair never leaves the host.
	NBDTLS       TLSMode
	NBDTLSConfig *tls.Config
	// Device, if set (/dev/nbdX), is where the primary attaches the
	// kernel's NBD client to its own export, as /dev/drbdX is on a DRBD
	// primary: local file systems use the volume through it.
	Device string
	// PeerGone, if set, says whether a node has left the cluster (lost,
	// as this node's membership sees it). A promotion the cluster asks
	// for drops a connected primary on such a node: its TCP connection
	// outlives a power cut or a reset for the whole replication timeout.
	PeerGone   func(node string) bool
	SplitBrain SplitBrainPolicy
	OnNoQuorum OnNoQuorum
	// Timeout is the replication timeout (ReplConfig.Timeout).
	Timeout time.Duration
	// Reconnect is the interval at which a primary dials disconnected
	// peers (default 500 ms).
	Reconnect  time.Duration
	ResyncRate int64
	Logger     *slog.Logger
}

// Volume is one replicated volume on this node.
type Volume struct {
	cfg VolumeConfig
	log *slog.Logger
	ln  net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	accept sync.WaitGroup

	mu       sync.Mutex // role changes, one at a time
	role     Role
	roleCtx  context.Context
	roleStop context.CancelFunc
	roleWG   sync.WaitGroup
	sec      *Secondary
	repl     *Replicated
	nbdAddr  net.Addr
	kdev     *KernelDevice   // the attached Device while primary
	upToDate bool            // seeds a new Secondary's InSync (was primary, or in sync)
	manual   map[string]bool // peers disconnected by the operator
	hold     map[string]bool // peers refused for split brain: not redialled until Connect

	qmu       sync.Mutex
	qcond     *sync.Cond
	quorumOn  bool // SetQuorum was called
	quorate   bool
	gateShut  bool // demoting or stopping: suspended I/O fails
	suspended int  // I/O requests waiting for quorum
}

// NewVolume checks cfg, opens the replication listener and starts the
// volume as a secondary.
func NewVolume(cfg VolumeConfig) (*Volume, error) {
	if cfg.Backend == nil {
		return nil, errors.New("volume: no backend")
	}
	if cfg.Name == "" || cfg.Node == "" {
		return nil, errors.New("volume: name and node are required")
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("volume: replication secret shorter than 16 bytes")
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = ProtocolC
	}
	if !cfg.Protocol.valid() {
		return nil, fmt.Errorf("volume: unknown protocol %d", cfg.Protocol)
	}
	if err := checkTLS(cfg.NBDTLS, cfg.NBDTLSConfig); err != nil {
		return nil, fmt.Errorf("volume %s: NBD export: %w", cfg.Name, err)
	}
	if cfg.Reconnect <= 0 {
		cfg.Reconnect = 500 * time.Millisecond
	}
	if cfg.Meta == nil {
		m, err := NewMemMeta(MetaOptions{Size: cfg.Backend.Size()})
		if err != nil {
			return nil, err
		}
		cfg.Meta = m
	}
	for _, p := range cfg.Peers {
		if p.Name == "" || p.Addr == "" || p.Name == cfg.Node {
			return nil, fmt.Errorf("volume: peer %q at %q: a peer needs a name other than this node's and an address", p.Name, p.Addr)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("volume %s: replication listener: %w", cfg.Name, err)
		}
	}
	v := &Volume{cfg: cfg, log: log.With("volume", cfg.Name, "node", cfg.Node), ln: ln, manual: map[string]bool{}, hold: map[string]bool{}}
	v.qcond = sync.NewCond(&v.qmu)
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.mu.Lock()
	v.startSecondary()
	v.mu.Unlock()
	v.accept.Add(1)
	go v.acceptLoop()
	return v, nil
}

// ReplAddr is the replication listener's address.
func (v *Volume) ReplAddr() net.Addr { return v.ln.Addr() }

// NBDAddr is the NBD export's address while primary, else nil.
func (v *Volume) NBDAddr() net.Addr {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.nbdAddr
}

// Role returns the current role.
func (v *Volume) Role() Role {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.role
}

// Replicated returns the primary's replication, nil unless primary.
func (v *Volume) Replicated() *Replicated {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.repl
}

// Secondary returns the secondary role's receiver, nil unless secondary.
func (v *Volume) Secondary() *Secondary {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sec
}

func (v *Volume) acceptLoop() {
	defer v.accept.Done()
	for {
		c, err := v.ln.Accept()
		if err != nil {
			if v.ctx.Err() == nil {
				v.log.Error("volume: replication listener failed", "err", err)
			}
			return
		}
		v.mu.Lock()
		role, sec, ctx := v.role, v.sec, v.roleCtx
		// A role being stopped (its context is cancelled before its
		// goroutines are waited for) takes no new connection.
		serve := role == RoleSecondary && ctx.Err() == nil
		if serve {
			v.roleWG.Add(1)
		}
		v.mu.Unlock()
		if !serve {
			v.log.Warn("volume: refused a replication connection: this node is not secondary (is another node primary too?)", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		go func() {
			defer v.roleWG.Done()
			if err := sec.ServeConn(ctx, c); err != nil && ctx.Err() == nil {
				v.log.Warn("volume: primary connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// startSecondary enters the secondary role. Call with v.mu held.
func (v *Volume) startSecondary() {
	var replicas []string
	for _, p := range v.cfg.Peers {
		replicas = append(replicas, p.Name)
	}
	v.sec = &Secondary{Backend: v.cfg.Backend, Volume: v.cfg.Name, Secret: v.cfg.Secret, Logger: v.cfg.Logger,
		Node: v.cfg.Node, Meta: v.cfg.Meta, SplitBrain: v.cfg.SplitBrain, HandshakeTimeout: v.cfg.Timeout, Replicas: replicas}
	v.sec.inSync.Store(v.upToDate)
	v.roleCtx, v.roleStop = context.WithCancel(v.ctx)
	v.role = RoleSecondary
}

// stopRole ends the current role's goroutines. Call with v.mu held; it
// releases it while waiting (the accept loop needs it).
func (v *Volume) stopRole() {
	v.roleStop()
	v.mu.Unlock()
	v.roleWG.Wait()
	v.mu.Lock()
}

// DiskState is the local data's state, in DRBD's words: UpToDate (the
// newest data as far as this node knows: primary, or in sync with the
// primary when last connected), Consistent (a consistent generation, but
// not known to be the newest: not in sync with a primary since this node
// started), Inconsistent (a resync to this node did not finish).
func (v *Volume) diskState() string {
	switch {
	case v.cfg.Meta.Header().Flags&MetaConsistent == 0:
		return "Inconsistent"
	case v.role == RolePrimary:
		return "UpToDate"
	case v.sec != nil && v.sec.InSync():
		return "UpToDate"
	}
	return "Consistent"
}

func (v *Volume) refuse(format string, args ...any) error {
	err := fmt.Errorf("%w: cannot promote volume %s on %s: %s", ErrPromote, v.cfg.Name, v.cfg.Node, fmt.Sprintf(format, args...))
	v.log.Warn("volume: " + err.Error())
	return err
}

// Promote makes this node the primary: it stops receiving, becomes the
// source of the data, serves the NBD export and replicates to the peers.
// It refuses (an error wrapping ErrPromote that says what to do) when the
// local data is Inconsistent, when a primary is connected, when the last
// primary was refused for split brain, when quorum is tracked and lost, and,
// unless force, when the data is only Consistent (not known UpToDate) and
// not just created.
func (v *Volume) Promote(force bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch v.role {
	case RolePrimary:
		return nil
	case RoleStopped:
		return v.refuse("the volume is stopped")
	}
	switch st := v.diskState(); {
	case st == "Inconsistent":
		return v.refuse("its data is Inconsistent (a resync to this node has not finished); let the resync from the primary finish (tachy volume status shows its progress)")
	case st == "Consistent" && !force && v.cfg.Meta.Current() != GenJustCreated:
		// (Metadata that never had a primary holds no data yet:
		// one node must become the first primary.)
		return v.refuse("its data is Consistent but not known to be UpToDate (this node has not been in sync with a primary since it started); connect it to the primary first, or use --force only if you know no other node has newer data")
	}
	if p := v.sec.Primary(); p != "" {
		if v.cfg.PeerGone == nil || !v.cfg.PeerGone(p) {
			return v.refuse("%s is primary and connected to it; demote %s first (two primaries would split the data)", p, p)
		}
		// stopRole below ends the connection.
		v.log.Warn("volume: the connected primary's node has left the cluster; dropping its connection to promote", "primary", p)
	}
	if why := v.sec.SplitBrainReason(); why != "" {
		return v.refuse("the last primary was refused: %s; resolve the split brain first (pick the victim, or reconnect with a discard policy)", why)
	}
	v.qmu.Lock()
	noQuorum := v.quorumOn && !v.quorate
	v.qmu.Unlock()
	if noQuorum {
		return v.refuse("this node has no quorum; a node cut off from the majority must not become primary (the majority may have promoted another); restore the network or the lost nodes")
	}
	v.stopRole()
	if p := v.sec.Primary(); p != "" { // connected while we checked
		v.startSecondary()
		return v.refuse("%s connected as primary meanwhile; demote it first", p)
	}
	r, err := NewReplicated(v.cfg.Backend, ReplConfig{Volume: v.cfg.Name, Secret: v.cfg.Secret, Protocol: v.cfg.Protocol,
		Timeout: v.cfg.Timeout, Logger: v.cfg.Logger, Node: v.cfg.Node, Meta: v.cfg.Meta, SplitBrain: v.cfg.SplitBrain, ResyncRate: v.cfg.ResyncRate})
	if err != nil {
		v.startSecondary()
		return v.refuse("%v", err)
	}
	v.sec, v.repl, v.role, v.upToDate = nil, r, RolePrimary, true
	v.roleCtx, v.roleStop = context.WithCancel(v.ctx)
	v.qmu.Lock()
	v.gateShut = false
	v.qmu.Unlock()
	exports := []Export{{Name: v.cfg.Name, Description: "tachy volume " + v.cfg.Name, Backend: &gatedBackend{v: v, r: r}}}
	srv := &Server{Exports: exports, Logger: v.cfg.Logger, TLS: v.cfg.NBDTLS, TLSConfig: v.cfg.NBDTLSConfig}
	undo := func() {
		v.shutGate()
		v.stopRole()
		r.Close()
		v.repl, v.nbdAddr = nil, nil
		v.startSecondary()
	}
	if v.cfg.NBDListen != "" {
		ln, err := net.Listen("tcp", v.cfg.NBDListen)
		if err != nil {
			undo()
			return fmt.Errorf("volume %s: NBD listener %s: %w (still secondary)", v.cfg.Name, v.cfg.NBDListen, err)
		}
		v.nbdAddr = ln.Addr()
		v.roleWG.Add(1)
		go func(ctx context.Context) {
			defer v.roleWG.Done()
			if err := srv.Serve(ctx, ln); err != nil {
				v.log.Error("volume: NBD server failed", "err", err)
			}
		}(v.roleCtx)
	}
	if v.cfg.Device != "" {
		kd, err := v.attachLocal(&Server{Exports: exports, Logger: v.cfg.Logger}) // no TLS: see NBDTLS
		if err != nil {
			undo()
			return fmt.Errorf("volume %s: attaching %s: %w (still secondary)", v.cfg.Name, v.cfg.Device, err)
		}
		v.kdev = kd
	}
	for _, p := range v.cfg.Peers {
		v.roleWG.Add(1)
		go v.connectLoop(v.roleCtx, r, p)
	}
	v.log.Info("volume: promoted to primary", "protocol", v.cfg.Protocol.String(), "nbd", addrString(v.nbdAddr), "nbd_tls", v.cfg.NBDTLS.String(), "device", v.cfg.Device)
	return nil
}

// attachLocal attaches the kernel's NBD client on Device to the primary's
// export over a socket pair, served by srv (without TLS) for as long as the
// role lasts.
func (v *Volume) attachLocal(srv *Server) (*KernelDevice, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "nbd-local")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				unix.Close(fds[1])
			}
			return nil, err
		}
	}
	v.roleWG.Add(1)
	go func(ctx context.Context) {
		defer v.roleWG.Done()
		srv.ServeConn(ctx, conns[1])
	}(v.roleCtx)
	kd, err := AttachKernel(v.cfg.Device, conns[0], v.cfg.Name)
	conns[0].Close() // the kernel holds its own reference
	if err != nil {
		conns[1].Close()
		return nil, err
	}
	v.log.Info("volume: attached the kernel NBD client", "device", v.cfg.Device, "bytes", kd.Info.Size)
	go func(ctx context.Context) {
		select {
		case <-kd.Done():
			if ctx.Err() == nil {
				v.log.Error("volume: the kernel NBD client stopped while primary: the device fails its I/O", "device", v.cfg.Device, "err", kd.Err())
			}
		case <-ctx.Done():
		}
	}(v.roleCtx)
	return kd, nil
}

// detachLocal detaches the primary's Device, refusing while something
// (a mounted file system) holds it: it would see I/O errors, as DRBD
// refuses to demote a device held open.
func (v *Volume) detachLocal() error {
	if v.kdev == nil {
		return nil
	}
	if v.kdev.Busy() {
		return fmt.Errorf("volume %s: %s is in use (mounted?): stop what uses it (the file system resource) first", v.cfg.Name, v.cfg.Device)
	}
	if err := v.kdev.Detach(); err != nil {
		return fmt.Errorf("volume %s: %w", v.cfg.Name, err)
	}
	v.log.Info("volume: detached the kernel NBD client", "device", v.cfg.Device)
	v.kdev = nil
	return nil
}

// DeviceInUse says whether the primary's attached Device is held open
// exclusively (a mounted file system): demotion and stop are refused then.
func (v *Volume) DeviceInUse() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.kdev != nil && v.kdev.Busy()
}

// DeviceErr is why the primary's attached Device stopped working, or nil
// while it works (or when there is none).
func (v *Volume) DeviceErr() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kdev == nil {
		return nil
	}
	select {
	case <-v.kdev.Done():
		if err := v.kdev.Err(); err != nil {
			return fmt.Errorf("%s stopped: %w", v.cfg.Device, err)
		}
		return fmt.Errorf("%s was disconnected", v.cfg.Device)
	default:
		return nil
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Demote makes the primary a secondary: the NBD export stops (requests
// already received complete), I/O suspended for quorum fails, the peers are
// disconnected, and the volume waits for a primary again.
func (v *Volume) Demote() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.role != RolePrimary {
		return nil
	}
	if err := v.detachLocal(); err != nil {
		return err
	}
	v.shutGate()
	v.stopRole()
	// Every change made is on every connected peer before they are let
	// go, so a peer promoted next has all of it.
	if err := v.repl.Flush(); err != nil {
		v.log.Warn("volume: flush before demotion", "err", err)
	}
	err := v.repl.Close()
	v.repl, v.nbdAddr = nil, nil
	v.startSecondary()
	v.log.Info("volume: demoted to secondary")
	return err
}

// Stop ends either role and closes the replication listener. The caller
// closes the metadata.
func (v *Volume) Stop() error {
	v.mu.Lock()
	var err error
	if v.role == RolePrimary {
		if err := v.detachLocal(); err != nil {
			v.mu.Unlock()
			return err
		}
		v.shutGate()
		v.stopRole()
		err = v.repl.Close()
		v.repl, v.nbdAddr = nil, nil
	} else if v.role == RoleSecondary {
		v.stopRole()
		v.sec = nil
	}
	v.role = RoleStopped
	v.mu.Unlock()
	v.cancel()
	v.ln.Close()
	v.accept.Wait()
	return err
}

func (v *Volume) shutGate() {
	v.qmu.Lock()
	v.gateShut = true
	v.qcond.Broadcast()
	v.qmu.Unlock()
}

// SetQuorum tells the volume whether this node has quorum. From the first
// call on quorum is tracked: a primary without it suspends or fails I/O
// (on-no-quorum) and a secondary without it cannot be promoted.
func (v *Volume) SetQuorum(ok bool) {
	v.qmu.Lock()
	changed := !v.quorumOn || v.quorate != ok
	v.quorumOn, v.quorate = true, ok
	waiting := v.suspended
	v.qcond.Broadcast()
	v.qmu.Unlock()
	if changed {
		if ok {
			v.log.Info("volume: quorum", "resumed_io", waiting)
		} else {
			v.log.Warn("volume: quorum lost", "on_no_quorum", v.cfg.OnNoQuorum.String())
		}
	}
}

// admit lets an I/O through, waits for quorum, or fails it.
func (v *Volume) admit() error {
	v.qmu.Lock()
	defer v.qmu.Unlock()
	if !v.quorumOn || v.quorate {
		return nil
	}
	if v.cfg.OnNoQuorum == NoQuorumIOError {
		return ErrNoQuorum
	}
	v.suspended++
	for !v.quorate && !v.gateShut {
		v.qcond.Wait()
	}
	v.suspended--
	if !v.quorate {
		return ErrDemoted
	}
	return nil
}

// Suspended returns the number of I/O requests waiting for quorum.
func (v *Volume) Suspended() int {
	v.qmu.Lock()
	defer v.qmu.Unlock()
	return v.suspended
}

// connectLoop dials a peer whenever it is disconnected, unless the
// operator disconnected it or it was refused for split brain.
func (v *Volume) connectLoop(ctx context.Context, r *Replicated, peer VolumePeer) {
	defer v.roleWG.Done()
	var lastErr string
	for {
		v.mu.Lock()
		skip := v.manual[peer.Name] || v.hold[peer.Name]
		v.mu.Unlock()
		p := r.Peer(peer.Name)
		if !skip && (p == nil || !p.Connected()) {
			_, err := r.Dial(ctx, peer.Addr, peer.Name)
			switch {
			case err == nil:
				lastErr = ""
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrSplitBrain):
				v.log.Error("volume: split brain with a peer; it is not redialled until `tachy volume connect`", "peer", peer.Name, "err", err)
				v.mu.Lock()
				v.hold[peer.Name] = true
				v.mu.Unlock()
			default:
				if err.Error() != lastErr {
					v.log.Info("volume: cannot connect to a peer; retrying", "peer", peer.Name, "addr", peer.Addr, "err", err)
					lastErr = err.Error()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(v.cfg.Reconnect):
		}
	}
}

// Disconnect drops a peer and keeps it disconnected (the primary marks
// what it writes meanwhile, and resyncs it after Connect).
func (v *Volume) Disconnect(peer string) error {
	v.mu.Lock()
	if !v.knownPeer(peer) {
		v.mu.Unlock()
		return fmt.Errorf("volume %s has no peer %q (peers: %s)", v.cfg.Name, peer, v.peerNames())
	}
	v.manual[peer] = true
	r := v.repl
	v.mu.Unlock()
	if r != nil {
		if p := r.Peer(peer); p != nil {
			p.Disconnect()
		}
	}
	return nil
}

// Connect undoes Disconnect, and lets a peer refused for split brain be
// dialled again.
func (v *Volume) Connect(peer string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.knownPeer(peer) {
		return fmt.Errorf("volume %s has no peer %q (peers: %s)", v.cfg.Name, peer, v.peerNames())
	}
	delete(v.manual, peer)
	delete(v.hold, peer)
	return nil
}

func (v *Volume) knownPeer(name string) bool {
	for _, p := range v.cfg.Peers {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (v *Volume) peerNames() string {
	s := ""
	for i, p := range v.cfg.Peers {
		if i > 0 {
			s += ", "
		}
		s += p.Name
	}
	return s
}

// primaryPeer returns the connected peer of that name, or an error saying
// why there is none.
func (v *Volume) primaryPeer(name string) (*Peer, error) {
	v.mu.Lock()
	r, role := v.repl, v.role
	v.mu.Unlock()
	if role != RolePrimary {
		return nil, fmt.Errorf("volume %s is %s on %s: run this on the primary", v.cfg.Name, role, v.cfg.Node)
	}
	if !v.knownPeer(name) {
		return nil, fmt.Errorf("volume %s has no peer %q (peers: %s)", v.cfg.Name, name, v.peerNames())
	}
	p := r.Peer(name)
	if p == nil || !p.Connected() {
		return nil, fmt.Errorf("peer %s of volume %s is not connected; run tachy volume connect, or check that its node is up", name, v.cfg.Name)
	}
	return p, nil
}

// Verify runs an online verify against a connected peer (repair: resync
// the differing chunks from the primary).
func (v *Volume) Verify(peer string, repair bool) (VerifyResult, error) {
	p, err := v.primaryPeer(peer)
	if err != nil {
		return VerifyResult{}, err
	}
	return p.Verify(repair)
}

// Resync copies the whole volume to a peer again (DRBD's invalidate-remote):
// the peer is held disconnected, every chunk marked out of sync for it, and
// it is reconnected: the resync sends everything, under the resync rate.
func (v *Volume) Resync(peer string) error {
	p, err := v.primaryPeer(peer)
	if err != nil {
		return err
	}
	v.mu.Lock()
	wasManual := v.manual[peer]
	v.manual[peer] = true
	v.mu.Unlock()
	p.Disconnect()
	p.Wait()
	p.Dirty().Mark(0, v.cfg.Backend.Size())
	v.mu.Lock()
	if !wasManual {
		delete(v.manual, peer)
	}
	v.mu.Unlock()
	v.log.Info("volume: full resync of a peer requested", "peer", peer, "bytes", v.cfg.Backend.Size())
	return nil
}

// VolumeStatus is a volume's state on this node.
type VolumeStatus struct {
	Name       string       `json:"name"`
	Node       string       `json:"node"`
	Role       Role         `json:"role"`
	Disk       string       `json:"disk"`
	Protocol   string       `json:"protocol"`
	Quorum     string       `json:"quorum"` // "yes", "no", "untracked"
	OnNoQuorum string       `json:"on_no_quorum"`
	Suspended  int          `json:"suspended_io"`
	Primary    string       `json:"primary,omitempty"` // a secondary's connected primary
	SplitBrain string       `json:"split_brain,omitempty"`
	NBD        string       `json:"nbd,omitempty"`
	Listen     string       `json:"listen"`
	Generation string       `json:"generation"`
	Seq        uint64       `json:"seq"`
	Peers      []PeerStatus `json:"peers"`
}

// PeerStatus is one peer as this node sees it.
type PeerStatus struct {
	Name      string `json:"name"`
	Addr      string `json:"addr"`
	State     string `json:"state"` // the primary's view: PeerState; a secondary's: Primary or Unknown
	OutOfSync int64  `json:"out_of_sync_bytes"`
	Resynced  int64  `json:"resync_bytes"`
	// ResyncDone is the fraction of the resync done (1 when in sync).
	ResyncDone float64 `json:"resync_done"`
	// LatencyUs is the replication latency (queued to applied on the
	// peer), a moving average, in microseconds.
	LatencyUs float64 `json:"replication_latency_us"`
	Manual    bool    `json:"operator_disconnected,omitempty"`
	Err       string  `json:"error,omitempty"`
}

// Status returns the volume's state.
func (v *Volume) Status() VolumeStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := VolumeStatus{Name: v.cfg.Name, Node: v.cfg.Node, Role: v.role, Protocol: v.cfg.Protocol.String(), OnNoQuorum: v.cfg.OnNoQuorum.String(),
		Listen: v.ln.Addr().String(), NBD: addrString(v.nbdAddr), Generation: fmt.Sprintf("%016x", v.cfg.Meta.Current())}
	if v.role != RoleStopped {
		st.Disk = v.diskState()
	}
	v.qmu.Lock()
	switch {
	case !v.quorumOn:
		st.Quorum = "untracked"
	case v.quorate:
		st.Quorum = "yes"
	default:
		st.Quorum = "no"
	}
	st.Suspended = v.suspended
	v.qmu.Unlock()
	if v.sec != nil {
		st.Primary = v.sec.Primary()
		st.SplitBrain = v.sec.SplitBrainReason()
		st.Seq = v.sec.Applied()
	}
	if v.repl != nil {
		st.Seq = v.repl.Seq()
	}
	for _, cp := range v.cfg.Peers {
		ps := PeerStatus{Name: cp.Name, Addr: cp.Addr, State: "Unknown", Manual: v.manual[cp.Name], ResyncDone: 0}
		switch {
		case v.repl != nil:
			ps.State = string(PeerDisconnected)
			if p := v.repl.Peer(cp.Name); p != nil {
				ps.State = string(p.State())
				ps.OutOfSync, ps.Resynced = p.OutOfSync(), p.ResyncBytes()
				ps.LatencyUs = float64(p.Latency().Nanoseconds()) / 1e3
				if err := p.Err(); err != nil {
					ps.Err = err.Error()
				}
			}
		case st.Primary == cp.Name:
			ps.State = "Primary"
		}
		if ps.OutOfSync == 0 {
			ps.ResyncDone = 1
		} else if total := ps.OutOfSync + ps.Resynced; total > 0 {
			ps.ResyncDone = float64(ps.Resynced) / float64(total)
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

// gatedBackend is the primary's NBD backend: the replication behind the
// quorum gate.
type gatedBackend struct {
	v *Volume
	r *Replicated
}

func (g *gatedBackend) ReadAt(p []byte, off int64) (int, error) {
	if err := g.v.admit(); err != nil {
		return 0, err
	}
	return g.r.ReadAt(p, off)
}

func (g *gatedBackend) WriteAt(p []byte, off int64) (int, error) {
	if err := g.v.admit(); err != nil {
		return 0, err
	}
	return g.r.WriteAt(p, off)
}

func (g *gatedBackend) WriteOwned(p []byte, off int64, fua bool) (int, error) {
	if err := g.v.admit(); err != nil {
		return 0, err
	}
	return g.r.WriteOwned(p, off, fua)
}

func (g *gatedBackend) WriteAtFUA(p []byte, off int64) (int, error) {
	if err := g.v.admit(); err != nil {
		return 0, err
	}
	return g.r.WriteAtFUA(p, off)
}

func (g *gatedBackend) Flush() error {
	if err := g.v.admit(); err != nil {
		return err
	}
	return g.r.Flush()
}

func (g *gatedBackend) Sync(off, length int64) error {
	if err := g.v.admit(); err != nil {
		return err
	}
	return g.r.Sync(off, length)
}

func (g *gatedBackend) Trim(off, length int64) error {
	if err := g.v.admit(); err != nil {
		return err
	}
	return g.r.Trim(off, length)
}

func (g *gatedBackend) WriteZeroes(off, length int64, mayTrim bool) error {
	if err := g.v.admit(); err != nil {
		return err
	}
	return g.r.WriteZeroes(off, length, mayTrim)
}

func (g *gatedBackend) Size() int64 { return g.r.Size() }
func (g *gatedBackend) Caps() Caps  { return g.r.Caps() }

// ParseSize reads a volume size: bytes, or a number with K, M or G
// (binary units), e.g. "256M".
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("not a positive size")
	}
	return n * mult, nil
}
