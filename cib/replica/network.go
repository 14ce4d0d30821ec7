package replica

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tachy-ha/tachy/cib"
)

// Network is a node's CIB endpoint: Raft's RPCs and changes forwarded to
// the DC share one mutual-TLS port. A forwarded change starts with the
// byte 'F', which no Raft RPC type uses (they are 0 to 4); everything
// else goes to Raft.
type Network struct {
	transport *raft.NetworkTransport
	stream    *muxStream
	conf      *tls.Config
	log       *slog.Logger

	mu        sync.Mutex
	handler   func(context.Context, *cib.Change) (Version, error)
	readIndex func(context.Context) (uint64, error)
	call      func(ctx context.Context, from string, req []byte) []byte
	joins     *JoinServer

	poolMu  sync.Mutex
	fwdPool map[string][]*fwdConn // idle connections for forwarded changes, by DC address
}

// errDCUnreachable: the DC this node knows of did not answer the dial.
var errDCUnreachable = errors.New("the DC is unreachable")

const (
	forwardMagic   = 'F' // a change for the DC
	readIndexMagic = 'R' // what has the DC committed?
	callMagic      = 'X' // a request for the node's daemon (Network.Handle)
)

// ListenTLS listens on bind. advertise is the address other nodes reach
// this one at ("" for the bound address).
func ListenTLS(bind, advertise string, conf *tls.Config, log *slog.Logger) (*Network, error) {
	if log == nil {
		log = slog.Default()
	}
	ln, err := tls.Listen("tcp", bind, conf)
	if err != nil {
		return nil, fmt.Errorf("cib: listening on %s: %w", bind, err)
	}
	n := &Network{conf: conf, log: log}
	s := &muxStream{ln: ln, conf: conf, conns: make(chan net.Conn), done: make(chan struct{}), forward: n.serveForward, readIndex: n.serveReadIndex, call: n.serveCall}
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("cib: advertise address %q: %w", advertise, err)
		}
		s.advertise = a
	}
	s.join = n.serveJoin
	go s.acceptLoop()
	n.stream = s
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s,
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  raftLogger("raft-net", log),
	})
	return n, nil
}

// Transport is the Raft transport to give Open.
func (n *Network) Transport() raft.Transport { return n.transport }

// Addr is the address peers reach this node at.
func (n *Network) Addr() string { return n.stream.Addr().String() }

// muxStream is raft's StreamLayer, with forwarded changes split off.
type muxStream struct {
	ln        net.Listener
	advertise net.Addr
	conf      *tls.Config
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	forward   func(net.Conn, *bufio.Reader)
	readIndex func(net.Conn)
	call      func(net.Conn, *bufio.Reader)
	join      func(net.Conn, *bufio.Reader)
}

func (s *muxStream) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.Close()
			return
		}
		go s.route(c)
	}
}

// route reads the first byte (the TLS handshake happens here, so a peer
// without a cluster certificate is dropped before anything is read).
func (s *muxStream) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if tc, ok := c.(*tls.Conn); ok && len(tc.ConnectionState().PeerCertificates) == 0 {
		// No certificate: a joining node, which may ask for one and do
		// nothing else.
		if first[0] == joinMagic && s.join != nil {
			br.ReadByte()
			s.join(c, br)
			return
		}
		c.Close()
		return
	}
	switch first[0] {
	case forwardMagic:
		br.ReadByte()
		s.forward(c, br)
		return
	case readIndexMagic:
		br.ReadByte()
		s.readIndex(c)
		return
	case callMagic:
		br.ReadByte()
		s.call(c, br)
		return
	}
	select {
	case s.conns <- &bufferedConn{Conn: c, r: br}:
	case <-s.done:
		c.Close()
	}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (s *muxStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *muxStream) Close() error {
	s.closeOnce.Do(func() { close(s.done); s.ln.Close() })
	return nil
}

func (s *muxStream) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

func (s *muxStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), s.conf)
}

// forwardReply is the DC's answer to a forwarded change.
type forwardReply struct {
	Version   *Version `json:"version,omitempty"`
	Error     string   `json:"error,omitempty"`
	NotLeader bool     `json:"not_leader,omitempty"`
}

// maxForward bounds a forwarded change (a whole configuration import).
const maxForward = 32 << 20

// Forwarded changes: a connection carries one change per line, each
// answered before the next is read, so a follower keeps its connections to
// the DC open instead of paying a TLS handshake per change. The server
// closes a connection idle for forwardServerIdle; a client reuses one only
// if it has been idle for less than forwardClientIdle, so a reused
// connection is never one the server is closing (an error on it is then a
// real failure, whose outcome is unknown, as on a new one).
const (
	forwardServerIdle = 60 * time.Second
	forwardClientIdle = 20 * time.Second
	forwardPoolSize   = 8 // idle connections kept per DC
)

func (n *Network) serveForward(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	enc := json.NewEncoder(c)
	for {
		c.SetDeadline(time.Now().Add(forwardServerIdle))
		line, err := readLine(br, maxForward)
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := enc.Encode(n.handleForward(line)); err != nil {
			return
		}
	}
}

func (n *Network) handleForward(line []byte) forwardReply {
	ch, err := cib.DecodeChange(line)
	if err != nil {
		return forwardReply{Error: err.Error()}
	}
	n.mu.Lock()
	h := n.handler
	n.mu.Unlock()
	if h == nil {
		return forwardReply{Error: "the CIB is not running on this node yet", NotLeader: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := h(ctx, ch)
	if err != nil {
		return forwardReply{Error: err.Error(), NotLeader: errors.Is(err, ErrNotLeader)}
	}
	return forwardReply{Version: &v}
}

// fwdConn is an open connection to a DC for forwarded changes.
type fwdConn struct {
	net.Conn
	r    *bufio.Reader
	idle time.Time // since when it waits in the pool
}

// alive reports whether the DC still holds the connection open: a DC that
// died or restarted since closed it, and a change sent on it would be lost
// with no way to tell whether it was applied. It peeks at the socket
// without blocking: the end of the stream (or anything unexpected) means
// the connection is not to be used. (A read with a deadline already past
// would not do: Go fails it before asking the kernel.)
func (fc *fwdConn) alive() bool {
	if fc.r.Buffered() > 0 {
		return false // the DC never sends unasked
	}
	nc := fc.Conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// Nothing to read (EAGAIN) is a live, idle connection; 0 bytes
		// is the end of the stream, and bytes are the DC closing it
		// (TLS close_notify): its session tickets came before its
		// first answer, which was read.
		open = err == unix.EAGAIN && n <= 0
		return true
	})
	return open
}

// takeForwardConn returns a pooled connection to addr that has not been
// idle too long, or a new one (which starts with forwardMagic).
func (n *Network) takeForwardConn(ctx context.Context, addr string) (*fwdConn, error) {
	n.poolMu.Lock()
	for len(n.fwdPool[addr]) > 0 {
		pool := n.fwdPool[addr]
		fc := pool[len(pool)-1]
		n.fwdPool[addr] = pool[:len(pool)-1]
		if time.Since(fc.idle) < forwardClientIdle && fc.alive() {
			n.poolMu.Unlock()
			return fc, nil
		}
		fc.Close()
	}
	n.poolMu.Unlock()
	c, err := n.dialDC(ctx, addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{forwardMagic}); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: cib: reaching the DC at %s: %v", errDCUnreachable, addr, err)
	}
	return &fwdConn{Conn: c, r: bufio.NewReader(c)}, nil
}

func (n *Network) putForwardConn(addr string, fc *fwdConn) {
	fc.SetDeadline(time.Time{})
	fc.idle = time.Now()
	n.poolMu.Lock()
	defer n.poolMu.Unlock()
	if n.fwdPool == nil {
		n.fwdPool = map[string][]*fwdConn{}
	}
	if len(n.fwdPool[addr]) >= forwardPoolSize {
		fc.Close()
		return
	}
	n.fwdPool[addr] = append(n.fwdPool[addr], fc)
}

func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > max {
			return nil, fmt.Errorf("request larger than %d bytes", max)
		}
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// forward sends a change to the node at addr (the DC) and waits.
func (n *Network) forward(ctx context.Context, addr string, ch *cib.Change) (Version, error) {
	data, err := cib.EncodeChange(ch)
	if err != nil {
		return Version{}, err
	}
	c, err := n.takeForwardConn(ctx, addr)
	if err != nil {
		return Version{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(append(data, '\n')); err != nil {
		c.Close()
		return Version{}, fmt.Errorf("cib: sending to the DC at %s: %w", addr, err)
	}
	line, err := readLine(c.r, 1<<20)
	if err != nil {
		c.Close()
		return Version{}, fmt.Errorf("cib: no answer from the DC at %s: %w", addr, err)
	}
	var rep forwardReply
	if err := json.Unmarshal(line, &rep); err != nil {
		c.Close()
		return Version{}, fmt.Errorf("cib: the DC at %s answered %q: %w", addr, line, err)
	}
	n.putForwardConn(addr, c)
	switch {
	case rep.NotLeader:
		return Version{}, fmt.Errorf("%w: %s", ErrNotLeader, rep.Error)
	case rep.Error != "":
		return Version{}, errors.New(rep.Error)
	case rep.Version == nil:
		return Version{}, fmt.Errorf("cib: empty answer from the DC at %s", addr)
	}
	return *rep.Version, nil
}

// Close stops listening and closes pooled connections.
func (n *Network) Close() error {
	n.poolMu.Lock()
	for _, pool := range n.fwdPool {
		for _, fc := range pool {
			fc.Close()
		}
	}
	n.fwdPool = nil
	n.poolMu.Unlock()
	n.stream.Close()
	return n.transport.Close()
}

// ServeForwards makes this replica answer changes other nodes forward to
// it, and their read-index questions, while it is the DC.
func (r *Replica) ServeForwards(n *Network) {
	n.mu.Lock()
	n.handler = r.Submit
	n.readIndex = r.leaderCommitIndex
	n.mu.Unlock()
}

// leaderCommitIndex is Raft's read index: the commit index, once this node
// has confirmed it still leads (so no newer leader has committed more).
func (r *Replica) leaderCommitIndex(ctx context.Context) (uint64, error) {
	// Raft's read-index rule: a new leader's commit index counts only
	// once an entry of its own term is committed.
	if err := r.CaughtUpAsLeader(ctx); err != nil {
		return 0, err
	}
	idx := r.raft.CommitIndex()
	if err := r.wait(ctx, r.raft.VerifyLeader()); err != nil {
		return 0, err
	}
	return idx, nil
}

func (n *Network) serveReadIndex(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	n.mu.Lock()
	h := n.readIndex
	n.mu.Unlock()
	enc := json.NewEncoder(c)
	if h == nil {
		enc.Encode(forwardReply{Error: "the CIB is not running on this node yet", NotLeader: true})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := h(ctx)
	if err != nil {
		enc.Encode(forwardReply{Error: err.Error(), NotLeader: errors.Is(err, ErrNotLeader)})
		return
	}
	enc.Encode(forwardReply{Version: &Version{Index: idx}})
}

func (n *Network) askReadIndex(ctx context.Context, addr string) (uint64, error) {
	c, err := n.dialDC(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{readIndexMagic}); err != nil {
		return 0, err
	}
	var rep forwardReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return 0, fmt.Errorf("cib: no answer from the DC at %s: %w", addr, err)
	}
	switch {
	case rep.NotLeader:
		return 0, fmt.Errorf("%w: %s", ErrNotLeader, rep.Error)
	case rep.Error != "" || rep.Version == nil:
		return 0, fmt.Errorf("cib: the DC at %s: %s", addr, rep.Error)
	}
	return rep.Version.Index, nil
}

// Fresh returns the CIB once it includes every change committed before the
// call, wherever it was submitted (a linearizable read: Raft's read index,
// asked of the DC). Current is cheaper and may lag the DC by a moment.
func (r *Replica) Fresh(ctx context.Context, n *Network) (*cib.CIB, Version, error) {
	for {
		var idx uint64
		var err error
		if r.IsDC() {
			idx, err = r.leaderCommitIndex(ctx)
		} else if _, addr := r.DC(); addr != "" {
			idx, err = n.askReadIndex(ctx, addr)
		} else {
			err = &NotLeaderError{}
		}
		if err == nil {
			for !r.appliedThrough(idx) {
				select {
				case <-ctx.Done():
					return nil, Version{}, fmt.Errorf("cib: this node has not caught up with the DC: %w", ctx.Err())
				case <-time.After(time.Millisecond):
				}
			}
			c, v := r.Current()
			return c, v, nil
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, errDCUnreachable) {
			return nil, Version{}, err
		}
		select {
		case <-ctx.Done():
			return nil, Version{}, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Change commits a change from any node: on the DC directly, elsewhere by
// forwarding it to the DC over n. It waits through an election (until
// ctx ends) when there is no DC.
func (r *Replica) Change(ctx context.Context, n *Network, ch *cib.Change) (Version, error) {
	for {
		var v Version
		var err error
		if r.IsDC() {
			v, err = r.Submit(ctx, ch)
		} else if _, addr := r.DC(); addr != "" {
			v, err = n.forward(ctx, addr, ch)
		} else {
			err = &NotLeaderError{}
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, errDCUnreachable) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return Version{}, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ServeJoins lets this node admit joining nodes with the CA and token in
// js.Dir (only nodes that hold them can).
func (n *Network) ServeJoins(js *JoinServer) {
	n.mu.Lock()
	n.joins = js
	n.mu.Unlock()
}

func (n *Network) serveJoin(c net.Conn, br *bufio.Reader) {
	n.mu.Lock()
	js := n.joins
	n.mu.Unlock()
	if js == nil {
		c.Close()
		return
	}
	js.serve(c, br)
}

// Handle sets what answers Call on this node: one JSON line in, one out.
// from is the calling node, as its certificate names it. The daemon uses
// it for the DC's requests (run this operation).
func (n *Network) Handle(h func(ctx context.Context, from string, req []byte) (reply []byte)) {
	n.mu.Lock()
	n.call = h
	n.mu.Unlock()
}

// maxCall bounds a request or reply line.
const maxCall = 4 << 20

func (n *Network) serveCall(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := readLine(br, maxCall)
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	n.mu.Lock()
	h := n.call
	n.mu.Unlock()
	if h == nil {
		return
	}
	// The caller bounds the wait; the node's work ends with the
	// connection's deadline at most.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	reply := h(ctx, peerName(c), line)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write(append(reply, '\n'))
}

// Call sends a request line to the daemon at addr (a node's CIB address)
// and returns its reply line.
func (n *Network) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	c, err := n.dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("reaching %s: %w", addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(append(append([]byte{callMagic}, req...), '\n')); err != nil {
		return nil, fmt.Errorf("sending to %s: %w", addr, err)
	}
	line, err := readLine(bufio.NewReader(c), maxCall)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("no answer from %s: %w", addr, err)
	}
	return line, nil
}

// appliedThrough reports whether every command up to idx is applied here.
// The FSM sees only commands; entries after the last one it applied may be
// Raft's own (no-ops of new leaders, configuration changes, barriers),
// which count as applied once raft has dispatched them. Entries compacted
// away are covered by the snapshot the state came from.
func (r *Replica) appliedThrough(idx uint64) bool {
	seen := r.fsm.applied.Load()
	if seen >= idx {
		return true
	}
	if r.raft.AppliedIndex() < idx {
		return false
	}
	for i := seen + 1; i <= idx; i++ {
		var l raft.Log
		if err := r.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue
			}
			return false
		}
		if l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

// peerName is the node a connection's certificate names (its CommonName,
// which the cluster CA sets to the node's name), "" without one.
func peerName(c net.Conn) string {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return ""
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return ""
	}
	return certs[0].Subject.CommonName
}

// dial connects to a member's CIB port with this node's certificate.
func (n *Network) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := &tls.Dialer{Config: n.conf, NetDialer: &net.Dialer{Timeout: 2 * time.Second}}
	return d.DialContext(ctx, "tcp", addr)
}

// dialDC connects to the DC for one request bounded by ctx's deadline. A
// failed dial sent nothing: the DC this node knows of may have died and
// another be elected, so callers retry (errDCUnreachable).
func (n *Network) dialDC(ctx context.Context, addr string) (net.Conn, error) {
	c, err := n.dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: cib: reaching the DC at %s: %v", errDCUnreachable, addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return c, nil
}
