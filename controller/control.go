package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"golang.org/x/sys/unix"
)

// The control protocol: the client sends one JSON request line; the daemon
// answers with one JSON response line ("status") or a stream of them
// ("events", one line per event until the client hangs up).
type request struct {
	Op     string      `json:"op"`
	Change *cib.Change `json:"change,omitempty"` // cib-change
	// AllowStale (cib): this node's copy will do when no DC confirms it.
	AllowStale bool `json:"allow_stale,omitempty"`
	// Volume (volume): an operator's request to this node's volumes.
	Volume *VolumeRequest `json:"volume,omitempty"`
}

type response struct {
	Error   string           `json:"error,omitempty"`
	Status  *Status          `json:"status,omitempty"`
	Event   *Event           `json:"event,omitempty"`
	CIB     *CIBDocument     `json:"cib,omitempty"`
	Version *replica.Version `json:"version,omitempty"`
	Volume  *VolumeResponse  `json:"volume,omitempty"`
}

// maxRequest bounds a request line: a whole CIB for config import.
const maxRequest = 32 << 20

// controlServer serves the root-only control socket.
type controlServer struct {
	ln  *net.UnixListener
	d   *Daemon
	log *slog.Logger
}

func listenControl(path string, d *Daemon, log *slog.Logger) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	// A socket left by a daemon that died is removed; a live one is not.
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: another tachy daemon runs with this configuration", path)
	}
	_ = os.Remove(path)
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return &controlServer{ln: ln, d: d, log: log}, nil
}

func (s *controlServer) serve(ctx context.Context) {
	go func() { <-ctx.Done(); s.ln.Close() }()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		go s.handle(ctx, c)
	}
}

func (s *controlServer) handle(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	if err := checkPeerRoot(c); err != nil {
		enc.Encode(response{Error: err.Error()})
		return
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, maxRequest)).ReadBytes('\n')
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(response{Error: "malformed request: " + err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	switch req.Op {
	case "status":
		st := s.d.Status()
		enc.Encode(response{Status: &st})
	case "events":
		ch, cancel := s.d.subscribe()
		defer cancel()
		// The first line is the status at the moment of subscribing, so the
		// client has a baseline and knows no later event is missed.
		st := s.d.Status()
		if enc.Encode(response{Status: &st}) != nil {
			return
		}
		// Notice the client hanging up even while no event comes.
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(gone) }()
		for {
			select {
			case ev := <-ch:
				if err := enc.Encode(response{Event: &ev}); err != nil {
					return
				}
			case <-gone:
				return
			case <-ctx.Done():
				return
			}
		}
	case "cib":
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		doc, err := s.d.cib.document(cctx, req.AllowStale)
		if err != nil {
			enc.Encode(response{Error: err.Error()})
			return
		}
		enc.Encode(response{CIB: doc})
	case "cib-change":
		if req.Change == nil {
			enc.Encode(response{Error: "cib-change without a change"})
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		v, err := s.d.cib.change(cctx, req.Change)
		if err != nil {
			enc.Encode(response{Error: err.Error()})
			return
		}
		enc.Encode(response{Version: &v})
	case "volume":
		if req.Volume == nil {
			enc.Encode(response{Error: "volume without a request"})
			return
		}
		vr, err := s.d.volumeRequest(*req.Volume)
		if err != nil {
			enc.Encode(response{Error: err.Error()})
			return
		}
		enc.Encode(response{Volume: vr})
	default:
		enc.Encode(response{Error: fmt.Sprintf("unknown op %q: use status, events, cib, cib-change or volume", req.Op)})
	}
}

// checkPeerRoot lets only root (or the daemon's own user) use the socket:
// the control socket can reconfigure the node, so file modes alone are not
// trusted.
func checkPeerRoot(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cerr != nil {
		return cerr
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("permission denied: uid %d may not use the control socket; run as root", cred.Uid)
	}
	return nil
}

// Client talks to a daemon's control socket.
type Client struct{ Socket string }

func (c Client) dial(op string) (net.Conn, *json.Decoder, error) { return c.send(request{Op: op}) }

func (c Client) send(req request) (net.Conn, *json.Decoder, error) {
	conn, err := net.DialTimeout("unix", c.Socket, 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("no tachy daemon answers on %s: start it with `tachy daemon --config FILE`, or name its socket with --socket", c.Socket)
		}
		return nil, nil, fmt.Errorf("control socket %s: %w", c.Socket, err)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, json.NewDecoder(conn), nil
}

// Status asks the daemon for its status.
func (c Client) Status() (Status, error) {
	conn, dec, err := c.dial("status")
	if err != nil {
		return Status{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var r response
	if err := dec.Decode(&r); err != nil {
		return Status{}, fmt.Errorf("reading status from %s: %w", c.Socket, err)
	}
	if r.Error != "" {
		return Status{}, errors.New(r.Error)
	}
	return *r.Status, nil
}

// Events streams the daemon's events to fn until ctx ends, the daemon goes
// away or fn returns false. first, if not nil, receives the status at the
// moment of subscribing, before any event: every later change reaches fn.
func (c Client) Events(ctx context.Context, first func(Status), fn func(Event) bool) error {
	conn, dec, err := c.dial("events")
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		var r response
		if err := dec.Decode(&r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("event stream from %s: %w", c.Socket, err)
		}
		if r.Error != "" {
			return errors.New(r.Error)
		}
		if r.Status != nil && first != nil {
			first(*r.Status)
		}
		if r.Event != nil && !fn(*r.Event) {
			return nil
		}
	}
}

// call sends one request and reads one response.
func (c Client) call(req request, timeout time.Duration) (response, error) {
	conn, dec, err := c.send(req)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	var r response
	if err := dec.Decode(&r); err != nil {
		return response{}, fmt.Errorf("reading the answer from %s: %w", c.Socket, err)
	}
	if r.Error != "" {
		return response{}, errors.New(r.Error)
	}
	return r, nil
}

// CIB returns the daemon's copy of the CIB.
func (c Client) CIB() (*CIBDocument, error) {
	r, err := c.call(request{Op: "cib"}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if r.CIB == nil {
		return nil, fmt.Errorf("the daemon at %s sent no CIB", c.Socket)
	}
	return r.CIB, nil
}

// CIBForDisplay returns the CIB, or this node's copy marked Stale when no
// DC can confirm it is current (for status displays).
func (c Client) CIBForDisplay() (*CIBDocument, error) {
	r, err := c.call(request{Op: "cib", AllowStale: true}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if r.CIB == nil {
		return nil, fmt.Errorf("the daemon at %s sent no CIB", c.Socket)
	}
	return r.CIB, nil
}

// Change commits a change to the CIB through the daemon (which forwards it
// to the DC) and returns the version it made.
func (c Client) Change(ch *cib.Change) (replica.Version, error) {
	r, err := c.call(request{Op: "cib-change", Change: ch}, 40*time.Second)
	if err != nil {
		return replica.Version{}, err
	}
	if r.Version == nil {
		return replica.Version{}, fmt.Errorf("the daemon at %s sent no version", c.Socket)
	}
	return *r.Version, nil
}
