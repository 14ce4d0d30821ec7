package lrmd

// The built-in promotable agent of a replicated volume (ocf:tachy:volume),
// what ocf:linbit:drbd is to DRBD: run as a promotable clone, each instance
// is the volume's replica on its node, secondary when started and primary
// when promoted.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/nbdrepl"
)

var volumeMetadata = []byte(`<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="volume" version="1.0"><version>1.1</version>
<longdesc lang="en">A replicated block device (tachy's nbdrepl), run as a promotable clone: every
instance holds a replica; the promoted one is the primary, serves the volume over NBD and
replicates every write to the others with protocol A, B or C. Promotion is refused when
the local data is not UpToDate, when another primary is connected, after a split brain,
or without quorum. The promotion score is 10000 on the primary, 1000 on an UpToDate
secondary, 10 on a volume that has never held data, and none otherwise.</longdesc>
<shortdesc lang="en">replicated block device (promotable)</shortdesc>
<parameters>
<parameter name="volume" unique="1" required="1"><longdesc lang="en">Volume id, the same on every node.</longdesc><shortdesc lang="en">volume id</shortdesc><content type="string"/></parameter>
<parameter name="backing" required="1"><longdesc lang="en">The local backing store: a block device or a file. Relative paths (here, in meta, secret_file and the tls_ files) are taken from the daemon's state directory.</longdesc><shortdesc lang="en">backing device or file</shortdesc><content type="string"/></parameter>
<parameter name="size"><longdesc lang="en">Create the backing file with this many bytes (suffixes K, M, G) if it does not exist.</longdesc><shortdesc lang="en">size of a new backing file</shortdesc><content type="string"/></parameter>
<parameter name="meta"><longdesc lang="en">Metadata file (generations, bitmaps, activity log). Default: the backing path with ".meta" appended.</longdesc><shortdesc lang="en">metadata file</shortdesc><content type="string"/></parameter>
<parameter name="peers" required="1"><longdesc lang="en">Every replica's node and replication address, this node's included: node=host:port,node=host:port,...</longdesc><shortdesc lang="en">replicas</shortdesc><content type="string"/></parameter>
<parameter name="nbd" required="1"><longdesc lang="en">Address the primary serves NBD on (host:port; an empty host means every address).</longdesc><shortdesc lang="en">NBD address</shortdesc><content type="string" default=":10809"/></parameter>
<parameter name="tls"><longdesc lang="en">TLS on the NBD export (NBD_OPT_STARTTLS): off, allow (clients choose) or require (clients that do not start TLS are refused, as nbdkit --tls=require). Needs tls_cert and tls_key. The local device (device) is always attached without TLS. Pre-shared keys (nbdkit --tls-psk) are not supported.</longdesc><shortdesc lang="en">NBD TLS mode</shortdesc><content type="string" default="off"/></parameter>
<parameter name="tls_cert"><longdesc lang="en">PEM file with the NBD server's X.509 certificate (then any intermediate certificates); clients check it against their CA and the address they connect to. Read at start.</longdesc><shortdesc lang="en">NBD TLS certificate</shortdesc><content type="string"/></parameter>
<parameter name="tls_key"><longdesc lang="en">PEM file with the private key of tls_cert.</longdesc><shortdesc lang="en">NBD TLS private key</shortdesc><content type="string"/></parameter>
<parameter name="tls_ca"><longdesc lang="en">PEM file with the CA certificates that sign client certificates: when set, clients must present one (mutual TLS, as qemu-nbd's verify-peer).</longdesc><shortdesc lang="en">NBD TLS client CA</shortdesc><content type="string"/></parameter>
<parameter name="device"><longdesc lang="en">Kernel NBD device (/dev/nbdX) the primary attaches to its own export, for local file systems (the nbd kernel module must be loaded). Demotion is refused while the device is mounted.</longdesc><shortdesc lang="en">local NBD device</shortdesc><content type="string"/></parameter>
<parameter name="protocol"><longdesc lang="en">Replication protocol: A (written locally and sent), B (received by the peers) or C (on the peers' disks).</longdesc><shortdesc lang="en">protocol</shortdesc><content type="string" default="C"/></parameter>
<parameter name="secret_file" required="1"><longdesc lang="en">File holding the replication secret shared by the nodes (at least 16 bytes).</longdesc><shortdesc lang="en">secret file</shortdesc><content type="string"/></parameter>
<parameter name="on_no_quorum"><longdesc lang="en">What the primary does with I/O without quorum: suspend-io or io-error.</longdesc><shortdesc lang="en">on-no-quorum</shortdesc><content type="string" default="suspend-io"/></parameter>
<parameter name="split_brain"><longdesc lang="en">Split-brain policy: disconnect, discard-zero-changes, discard-younger-primary or discard-least-changes.</longdesc><shortdesc lang="en">split-brain policy</shortdesc><content type="string" default="disconnect"/></parameter>
</parameters>
<actions>
<action name="start" timeout="60s"/><action name="stop" timeout="60s"/>
<action name="promote" timeout="30s"/><action name="demote" timeout="30s"/>
<action name="notify" timeout="10s"/>
<action name="monitor" timeout="20s" interval="5s" role="Promoted"/>
<action name="monitor" timeout="20s" interval="10s" role="Unpromoted"/>
<action name="meta-data" timeout="5s"/><action name="validate-all" timeout="10s"/>
</actions>
</resource-agent>`)

// VolumeAgentOptions wire the volume agent to its daemon.
type VolumeAgentOptions struct {
	Node string // this node's name
	// StateDir is the daemon's state directory: relative backing, meta
	// and secret_file paths are taken relative to it (so that nodes
	// sharing a file system, as in the namespace lab, keep apart).
	StateDir string
	// SetPromotion sets (score >= 0) or deletes (score < 0) this node's
	// promotion score for the clone of resource (crm_attribute
	// --promotion).
	SetPromotion func(ctx context.Context, resource string, score int) error
	// Quorate, if set, says whether this node has quorum now; volumes
	// started later begin with it. SetQuorum passes changes on.
	Quorate func() bool
	// HadPrimary, if set, reports whether the cluster recorded that the
	// volume (by id) has had a primary; known is false while this node's
	// copy of the cluster state cannot tell (it has not caught up with the
	// resource, rsc). SetHadPrimary records it. With them, a replica whose
	// storage is new (fresh metadata, as after a disk replacement) is
	// promoted only for a volume that never had a primary: otherwise it
	// would win over replicas that hold the data but are not known
	// UpToDate, and the data would be lost.
	HadPrimary    func(rsc, volume string) (had, known bool)
	SetHadPrimary func(ctx context.Context, volume string) error
	// PeerGone, if set, says whether a node has left the cluster
	// (nbdrepl.VolumeConfig.PeerGone).
	PeerGone func(node string) bool
	Logger   *slog.Logger
}

// VolumeAgent runs the node's replicas of every volume resource.
type VolumeAgent struct {
	o VolumeAgentOptions

	mu     sync.Mutex
	vols   map[string]*runningVolume // by resource instance
	scores map[string]int            // last promotion score set, by clone
	warned map[string]bool
}

type runningVolume struct {
	v     *nbdrepl.Volume
	meta  *nbdrepl.MetaStore
	be    *nbdrepl.FileBackend
	stop  context.CancelFunc
	watch sync.WaitGroup
}

// scoreInterval is how often a running volume's promotion score is
// brought up to date (a secondary becoming UpToDate must become
// promotable without waiting for a monitor).
const scoreInterval = 500 * time.Millisecond

// NewVolumeAgent returns the agent; register it as "volume".
func NewVolumeAgent(o VolumeAgentOptions) *VolumeAgent {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &VolumeAgent{o: o, vols: map[string]*runningVolume{}, scores: map[string]int{}}
}

// Metadata implements Builtin.
func (a *VolumeAgent) Metadata() []byte { return volumeMetadata }

// SetQuorum tells every running volume whether this node has quorum.
func (a *VolumeAgent) SetQuorum(ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, rv := range a.vols {
		rv.v.SetQuorum(ok)
	}
}

// Volume returns the running volume of a resource instance, or nil.
func (a *VolumeAgent) Volume(resource string) *nbdrepl.Volume {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rv := a.vols[resource]; rv != nil {
		return rv.v
	}
	return nil
}

// Volumes returns the running volumes by resource instance.
func (a *VolumeAgent) Volumes() map[string]*nbdrepl.Volume {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]*nbdrepl.Volume{}
	for r, rv := range a.vols {
		m[r] = rv.v
	}
	return m
}

// volumeParams is the parsed configuration of one instance.
type volumeParams struct {
	cfg         nbdrepl.VolumeConfig
	backing     string
	metaPath    string
	size        int64
	secretFile  string
	listen      string
	wantPrimary bool
	// TLS on the NBD export: the mode and the PEM files (read by
	// loadTLS).
	tls                    nbdrepl.TLSMode
	tlsCert, tlsKey, tlsCA string
}

func (a *VolumeAgent) parse(p map[string]string) (*volumeParams, error) {
	vp := &volumeParams{backing: p["backing"], secretFile: p["secret_file"]}
	vp.cfg.Name, vp.cfg.Node = p["volume"], a.o.Node
	if vp.cfg.Name == "" || vp.backing == "" || vp.secretFile == "" {
		return nil, errors.New("volume, backing and secret_file are required")
	}
	vp.metaPath = p["meta"]
	if vp.metaPath == "" {
		vp.metaPath = vp.backing + ".meta"
	}
	var err error
	if vp.tls, err = nbdrepl.ParseTLSMode(p["tls"]); err != nil {
		return nil, fmt.Errorf("tls %q: use off, allow or require", p["tls"])
	}
	vp.tlsCert, vp.tlsKey, vp.tlsCA = p["tls_cert"], p["tls_key"], p["tls_ca"]
	switch {
	case vp.tls != nbdrepl.TLSOff && (vp.tlsCert == "" || vp.tlsKey == ""):
		return nil, fmt.Errorf("tls=%s needs tls_cert and tls_key: the PEM files of the NBD server's certificate and private key", vp.tls)
	case vp.tls == nbdrepl.TLSOff && (vp.tlsCert != "" || vp.tlsKey != "" || vp.tlsCA != ""):
		return nil, errors.New("tls_cert, tls_key or tls_ca is set but tls is off: set tls=require (or tls=allow) to serve NBD over TLS, or remove them")
	}
	for _, path := range []*string{&vp.backing, &vp.metaPath, &vp.secretFile, &vp.tlsCert, &vp.tlsKey, &vp.tlsCA} {
		if *path != "" && !filepath.IsAbs(*path) && a.o.StateDir != "" {
			*path = filepath.Join(a.o.StateDir, *path)
		}
	}
	if s := p["size"]; s != "" {
		n, err := nbdrepl.ParseSize(s)
		if err != nil {
			return nil, fmt.Errorf("size %q: %v", s, err)
		}
		vp.size = n
	}
	for _, item := range strings.Split(p["peers"], ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("peers: %q is not node=host:port", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peers: %s: %v", item, err)
		}
		if name == a.o.Node {
			vp.listen = addr
			continue
		}
		vp.cfg.Peers = append(vp.cfg.Peers, nbdrepl.VolumePeer{Name: name, Addr: addr})
	}
	if vp.listen == "" {
		return nil, fmt.Errorf("peers does not name this node (%s)", a.o.Node)
	}
	vp.cfg.Listen = vp.listen
	vp.cfg.NBDListen = p["nbd"]
	if vp.cfg.NBDListen == "" {
		vp.cfg.NBDListen = ":10809"
	}
	if d := p["device"]; d != "" {
		if !strings.HasPrefix(d, "/dev/nbd") {
			return nil, fmt.Errorf("device %q: use a kernel NBD device, /dev/nbd0 to /dev/nbd15", d)
		}
		vp.cfg.Device = d
	}
	switch strings.ToUpper(p["protocol"]) {
	case "A":
		vp.cfg.Protocol = nbdrepl.ProtocolA
	case "B":
		vp.cfg.Protocol = nbdrepl.ProtocolB
	case "", "C":
		vp.cfg.Protocol = nbdrepl.ProtocolC
	default:
		return nil, fmt.Errorf("protocol %q: use A, B or C", p["protocol"])
	}
	if vp.cfg.OnNoQuorum, err = nbdrepl.ParseOnNoQuorum(p["on_no_quorum"]); err != nil {
		return nil, err
	}
	if sb := p["split_brain"]; sb != "" {
		if vp.cfg.SplitBrain, err = nbdrepl.ParseSplitBrainPolicy(sb); err != nil {
			return nil, err
		}
	}
	return vp, nil
}

// loadTLS reads the NBD export's TLS files into vp.cfg. Its errors name
// the parameter at fault: ErrInstalled for a file missing on this node,
// ErrConfigured for one that does not hold what it should.
func (vp *volumeParams) loadTLS() BuiltinResult {
	if vp.tls == nbdrepl.TLSOff {
		return BuiltinResult{RC: OK}
	}
	cfg, err := nbdrepl.LoadTLSConfig(vp.tlsCert, vp.tlsKey, vp.tlsCA)
	var fe *nbdrepl.TLSFileError
	switch {
	case err == nil:
		vp.cfg.NBDTLS, vp.cfg.NBDTLSConfig = vp.tls, cfg
		return BuiltinResult{RC: OK}
	case !errors.As(err, &fe):
		return BuiltinResult{RC: ErrConfigured, ExitReason: err.Error()}
	case errors.Is(err, fs.ErrNotExist):
		return BuiltinResult{RC: ErrInstalled, ExitReason: fmt.Sprintf("tls_%s %s does not exist on this node: copy it there (every node that can be primary needs it)", fe.File, fe.Path)}
	}
	return BuiltinResult{RC: ErrConfigured, ExitReason: fmt.Sprintf("tls_%s %s: %v", fe.File, fe.Path, fe.Err)}
}

// Run implements Builtin.
func (a *VolumeAgent) Run(ctx context.Context, req BuiltinRequest) BuiltinResult {
	switch req.Action {
	case "meta-data":
		return BuiltinResult{RC: OK, Output: string(volumeMetadata)}
	case "notify":
		// Primaries dial their peers by themselves; nothing to do.
		return BuiltinResult{RC: OK}
	}
	vp, err := a.parse(req.Params)
	if err != nil {
		return BuiltinResult{RC: ErrConfigured, ExitReason: err.Error()}
	}
	switch req.Action {
	case "validate-all":
		if _, err := os.Stat(vp.secretFile); err != nil {
			return BuiltinResult{RC: ErrInstalled, ExitReason: err.Error()}
		}
		if r := vp.loadTLS(); r.RC != OK {
			return r
		}
		return BuiltinResult{RC: OK}
	case "start":
		return a.start(ctx, req.Resource, vp)
	case "stop":
		return a.stop(ctx, req.Resource)
	case "monitor":
		return a.monitor(ctx, req.Resource)
	case "promote":
		v := a.Volume(req.Resource)
		if v == nil {
			return BuiltinResult{RC: NotRunning, ExitReason: "volume " + vp.cfg.Name + " is not started here"}
		}
		if err := v.Promote(false); err != nil {
			a.score(ctx, req.Resource, v)
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		}
		a.score(ctx, req.Resource, v)
		return BuiltinResult{RC: OK}
	case "demote":
		v := a.Volume(req.Resource)
		if v == nil {
			return BuiltinResult{RC: NotRunning, ExitReason: "volume " + vp.cfg.Name + " is not started here"}
		}
		if err := v.Demote(); err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		}
		a.score(ctx, req.Resource, v)
		return BuiltinResult{RC: OK}
	}
	return BuiltinResult{RC: ErrUnimplemented, ExitReason: "action " + req.Action + " is not implemented"}
}

func (a *VolumeAgent) start(ctx context.Context, rsc string, vp *volumeParams) BuiltinResult {
	if v := a.Volume(rsc); v != nil {
		return BuiltinResult{RC: OK}
	}
	secret, err := os.ReadFile(vp.secretFile)
	if err != nil {
		return BuiltinResult{RC: ErrInstalled, ExitReason: "replication secret: " + err.Error()}
	}
	secret = []byte(strings.TrimSpace(string(secret)))
	if len(secret) < 16 {
		return BuiltinResult{RC: ErrConfigured, ExitReason: vp.secretFile + ": the replication secret must have at least 16 bytes"}
	}
	vp.cfg.Secret = secret
	if r := vp.loadTLS(); r.RC != OK {
		return r
	}
	if _, err := os.Stat(vp.backing); errors.Is(err, os.ErrNotExist) && vp.size > 0 {
		if err := os.MkdirAll(filepath.Dir(vp.backing), 0o755); err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		}
		f, err := os.OpenFile(vp.backing, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			err = f.Truncate(vp.size)
			f.Close()
		}
		if err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: "creating the backing file: " + err.Error()}
		}
	}
	be, err := nbdrepl.OpenFile(vp.backing, false)
	if err != nil {
		return BuiltinResult{RC: ErrInstalled, ExitReason: "backing store: " + err.Error()}
	}
	meta, err := nbdrepl.OpenMetaFile(vp.metaPath, nbdrepl.MetaOptions{Size: be.Size()})
	if err != nil {
		be.Close()
		return BuiltinResult{RC: ErrGeneric, ExitReason: "metadata: " + err.Error()}
	}
	vp.cfg.Backend, vp.cfg.Meta, vp.cfg.Logger, vp.cfg.PeerGone = be, meta, a.o.Logger, a.o.PeerGone
	v, err := nbdrepl.NewVolume(vp.cfg)
	if err != nil {
		meta.Close()
		be.Close()
		return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
	}
	if a.o.Quorate != nil {
		v.SetQuorum(a.o.Quorate())
	}
	wctx, stop := context.WithCancel(context.Background())
	rv := &runningVolume{v: v, meta: meta, be: be, stop: stop}
	a.mu.Lock()
	a.vols[rsc] = rv
	a.mu.Unlock()
	a.score(ctx, rsc, v)
	rv.watch.Add(1)
	go func() {
		defer rv.watch.Done()
		for {
			select {
			case <-wctx.Done():
				return
			case <-time.After(scoreInterval):
				a.score(wctx, rsc, v)
			}
		}
	}()
	return BuiltinResult{RC: OK}
}

func (a *VolumeAgent) stop(ctx context.Context, rsc string) BuiltinResult {
	a.mu.Lock()
	rv := a.vols[rsc]
	if rv != nil && rv.v.DeviceInUse() {
		// Keep it running: closing the store under a mounted device
		// would fail the file system's I/O.
		a.mu.Unlock()
		return BuiltinResult{RC: ErrGeneric, ExitReason: "the volume's device is in use (mounted?): stop what uses it (the file system resource) first"}
	}
	delete(a.vols, rsc)
	a.mu.Unlock()
	if rv == nil {
		return BuiltinResult{RC: OK}
	}
	rv.stop()
	rv.watch.Wait()
	err := rv.v.Stop()
	if cerr := rv.meta.Close(); err == nil {
		err = cerr
	}
	rv.be.Close()
	a.setScore(ctx, rsc, -1)
	if err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
	}
	return BuiltinResult{RC: OK}
}

func (a *VolumeAgent) monitor(ctx context.Context, rsc string) BuiltinResult {
	v := a.Volume(rsc)
	if v == nil {
		return BuiltinResult{RC: NotRunning}
	}
	a.score(ctx, rsc, v)
	st := v.Status()
	out := fmt.Sprintf("role=%s disk=%s quorum=%s", st.Role, st.Disk, st.Quorum)
	for _, p := range st.Peers {
		out += fmt.Sprintf(" %s=%s", p.Name, p.State)
	}
	if st.Role == nbdrepl.RolePrimary {
		if err := v.DeviceErr(); err != nil {
			return BuiltinResult{RC: FailedPromoted, Output: out, ExitReason: err.Error()}
		}
		return BuiltinResult{RC: RunningPromoted, Output: out}
	}
	return BuiltinResult{RC: OK, Output: out}
}

// score sets the promotion score from the volume's state: 10000 primary,
// 1000 UpToDate, 10 for a volume that never held data (one must become
// the first primary), none otherwise (never promote stale or partial
// data).
func (a *VolumeAgent) score(ctx context.Context, rsc string, v *nbdrepl.Volume) {
	st := v.Status()
	s := -1
	base, _, _ := strings.Cut(rsc, ":")
	switch {
	case st.SplitBrain != "":
	case st.Role == nbdrepl.RolePrimary:
		s = 10000
		a.markHadPrimary(ctx, base, st.Name)
	case st.Disk == "UpToDate":
		s = 1000
	case st.Disk == "Consistent" && st.Generation == fmt.Sprintf("%016x", nbdrepl.GenJustCreated):
		if a.o.HadPrimary == nil {
			s = 10
			break
		}
		had, known := a.o.HadPrimary(base, st.Name)
		switch {
		case known && !had:
			s = 10
		case known && had:
			a.warnOnce(rsc+"/new", "volume agent: this replica's storage is new but the volume has had a primary: it is not promoted before it has synced from one (if no node holds the data any more: tachy volume promote --force)", "resource", base, "volume", st.Name)
		}
	}
	a.setScore(ctx, rsc, s)
}

// markHadPrimary records once that the volume has had a primary.
func (a *VolumeAgent) markHadPrimary(ctx context.Context, rsc, volume string) {
	if a.o.HadPrimary == nil || a.o.SetHadPrimary == nil {
		return
	}
	if had, known := a.o.HadPrimary(rsc, volume); had || !known {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.o.SetHadPrimary(sctx, volume); err != nil {
		a.o.Logger.Warn("volume agent: recording that the volume has had a primary (retried)", "volume", volume, "err", err)
	}
}

// warnOnce logs a warning the first time key is seen.
func (a *VolumeAgent) warnOnce(key, msg string, args ...any) {
	a.mu.Lock()
	seen := a.warned[key]
	if a.warned == nil {
		a.warned = map[string]bool{}
	}
	a.warned[key] = true
	a.mu.Unlock()
	if !seen {
		a.o.Logger.Warn(msg, args...)
	}
}

func (a *VolumeAgent) setScore(ctx context.Context, rsc string, s int) {
	if a.o.SetPromotion == nil {
		return
	}
	base, _, _ := strings.Cut(rsc, ":") // the score belongs to the clone
	a.mu.Lock()
	old, known := a.scores[base]
	a.mu.Unlock()
	if known && old == s {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.o.SetPromotion(sctx, base, s); err != nil {
		a.o.Logger.Warn("volume agent: setting the promotion score", "resource", base, "score", s, "err", err)
		return
	}
	a.mu.Lock()
	a.scores[base] = s
	a.mu.Unlock()
	a.o.Logger.Info("volume agent: promotion score", "resource", base, "score", s)
}
