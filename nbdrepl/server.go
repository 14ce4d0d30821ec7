// Package nbdrepl serves block devices over NBD and replicates them.
//
// Replicated (replicated.go) is a Backend that mirrors every change to
// secondaries (Secondary, secondary.go) over an authenticated wire protocol
// (replwire.go), DRBD-style, with protocols A, B and C.
//
// This file and conn.go hold the NBD server: fixed newstyle negotiation
// (NBD_OPT_LIST, NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_EXPORT_NAME,
// NBD_OPT_ABORT, NBD_OPT_STARTTLS: tls.go) and a transmission phase that runs many requests per
// connection concurrently and answers with simple replies.
package nbdrepl

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pojntfx/go-nbd/pkg/protocol"
)

// Export is one named block device.
type Export struct {
	Name        string
	Description string
	Backend     Backend
	ReadOnly    bool // also implied by Backend.Caps().ReadOnly
	// MinBlock is the minimum block size advertised (a power of two up to
	// 64 KiB); misaligned requests get EINVAL. 0 means 1 (no constraint).
	MinBlock uint32
}

// Server serves a set of exports.
type Server struct {
	// Exports by name. A client asking for the empty name gets the export
	// named "" if there is one, else the first export.
	Exports []Export
	Logger  *slog.Logger // nil: slog.Default()
	// Workers is the number of requests executed concurrently per
	// connection (default DefaultWorkers).
	Workers int
	// MaxInflightBytes bounds the payload bytes held per connection by
	// requests in flight (default 64 MiB).
	MaxInflightBytes int64
	// MaxPayload is the largest READ/WRITE accepted (default 32 MiB).
	MaxPayload uint32
	// HandshakeTimeout bounds option negotiation, TLS handshake
	// included (default 30 s).
	HandshakeTimeout time.Duration
	// TLS says whether clients may (TLSAllow) or must (TLSRequire)
	// upgrade to TLS with NBD_OPT_STARTTLS; TLSConfig (LoadTLSConfig)
	// is then the server's side of it. They apply to every connection,
	// Serve's and ServeConn's alike: serve a connection that must stay
	// in plain text (a socket pair to the kernel's NBD client, which
	// cannot speak TLS) with a Server that has neither.
	TLS       TLSMode
	TLSConfig *tls.Config
}

// Serve serves exports on ln until ctx is cancelled, with default settings.
func Serve(ctx context.Context, ln net.Listener, exports []Export, log *slog.Logger) error {
	s := &Server{Exports: exports, Logger: log}
	return s.Serve(ctx, ln)
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxPayload() uint32 {
	if s.MaxPayload > 0 {
		return s.MaxPayload
	}
	return DefaultMaxPayload
}

func (s *Server) validate() error {
	if len(s.Exports) == 0 {
		return errors.New("nbd: no exports")
	}
	if err := checkTLS(s.TLS, s.TLSConfig); err != nil {
		return fmt.Errorf("nbd: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range s.Exports {
		if seen[e.Name] {
			return fmt.Errorf("nbd: export %q defined twice", e.Name)
		}
		seen[e.Name] = true
		if len(e.Name) > 4096 {
			return fmt.Errorf("nbd: export name longer than 4096 bytes")
		}
		if e.Backend == nil {
			return fmt.Errorf("nbd: export %q has no backend", e.Name)
		}
		if m := e.MinBlock; m != 0 && (m&(m-1) != 0 || m > 64<<10 || s.maxPayload()%m != 0) {
			return fmt.Errorf("nbd: export %q: minimum block size %d is not a power of two <= 64 KiB dividing the maximum payload", e.Name, m)
		}
	}
	return nil
}

// Serve accepts connections on ln until ctx is cancelled or ln fails. On
// cancellation it closes ln, lets every connection finish the requests it
// has started (new ones get ESHUTDOWN), and returns nil once all are closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.validate(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn runs one client connection to completion and closes it.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	log := s.log().With("remote", remoteName(c))
	// nc is the connection transmission runs on: c, or TLS over c once
	// the client started it.
	nc := c
	defer func() { nc.Close() }()
	if err := s.validate(); err != nil {
		log.Error("nbd: bad configuration", "err", err)
		return
	}
	to := s.HandshakeTimeout
	if to == 0 {
		to = 30 * time.Second
	}
	// The deadline covers the TLS handshake too: a TLS connection
	// reads and writes through c.
	c.SetDeadline(time.Now().Add(to))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	var startTLS func() (io.ReadWriter, error)
	if s.TLS != TLSOff {
		startTLS = func() (io.ReadWriter, error) {
			tc := tls.Server(c, s.TLSConfig)
			nc = tc
			if err := tc.Handshake(); err != nil {
				return nil, err
			}
			st := tc.ConnectionState()
			args := []any{"version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite)}
			if len(st.PeerCertificates) > 0 {
				args = append(args, "client", st.PeerCertificates[0].Subject.String())
			}
			log.Debug("nbd: TLS started", args...)
			return tc, nil
		}
	}
	exp, br, err := s.negotiate(c, c, startTLS, log)
	stop()
	if err != nil {
		var te *tlsHandshakeError
		switch {
		case errors.Is(err, errAborted):
			log.Debug("nbd: client aborted negotiation")
		case errors.As(err, &te):
			hint := "the client must trust the CA of the server's certificate, and present a certificate signed by the client CA if one is configured"
			if ne := net.Error(nil); errors.As(te.err, &ne) && ne.Timeout() {
				hint = "the client did not finish the handshake within the handshake timeout"
			}
			log.Warn("nbd: TLS handshake failed; closing the connection", "err", te.err, "hint", hint)
		default:
			log.Info("nbd: negotiation failed", "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	c.SetDeadline(time.Time{})
	log = log.With("export", exp.Name)
	log.Debug("nbd: transmission", "flags", fmt.Sprintf("0x%x", s.transmissionFlags(exp)), "tls", nc != c)
	newConn(s, exp, nc, br, log).run(ctx)
}

// remoteName names a connection's peer for the log (a socket pair has no
// address).
func remoteName(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "local"
}

var errAborted = errors.New("nbd: client sent NBD_OPT_ABORT")

// tlsHandshakeError is negotiate's error when the TLS handshake after
// NBD_OPT_STARTTLS fails.
type tlsHandshakeError struct{ err error }

func (e *tlsHandshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsHandshakeError) Unwrap() error { return e.err }

func (s *Server) lookup(name string) *Export {
	for i := range s.Exports {
		if s.Exports[i].Name == name {
			return &s.Exports[i]
		}
	}
	if name == "" {
		return &s.Exports[0]
	}
	return nil
}

func (s *Server) readOnly(e *Export) bool { return e.ReadOnly || e.Backend.Caps().ReadOnly }

func (s *Server) transmissionFlags(e *Export) uint16 {
	c := e.Backend.Caps()
	f := FlagHasFlags
	if s.readOnly(e) {
		f |= FlagReadOnly
	}
	if c.Flush {
		f |= FlagSendFlush
	}
	if c.FUA {
		f |= FlagSendFUA
	}
	if c.Trim && !s.readOnly(e) {
		f |= FlagSendTrim
	}
	if c.WriteZeroes && !s.readOnly(e) {
		f |= FlagSendWriteZeroes
	}
	if c.MultiConn {
		f |= FlagCanMultiConn
	}
	return f
}

func (s *Server) limits(e *Export) limits {
	mb := e.MinBlock
	if mb == 0 {
		mb = 1
	}
	return limits{
		size:       uint64(e.Backend.Size()),
		minBlock:   mb,
		maxPayload: s.maxPayload(),
		readOnly:   s.readOnly(e),
		flags:      s.transmissionFlags(e),
	}
}

// negotiate runs the fixed newstyle handshake and option haggling on r/w and
// returns the export the client chose and the reader that transmission
// continues with (it may hold the first requests). startTLS, nil when the
// server offers no TLS, is called after NBD_OPT_STARTTLS has been
// acknowledged: it runs the TLS handshake on the connection under r/w and
// returns the TLS stream, on which negotiation goes on. negotiate reads
// and writes nothing after the final option reply, so the caller continues
// with transmission on the last streams. Errors mean the session ends.
func (s *Server) negotiate(r io.Reader, w io.Writer, startTLS func() (io.ReadWriter, error), log *slog.Logger) (*Export, *bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriter(w)
	hdr := protocol.NegotiationNewstyleHeader{
		OldstyleMagic:  magicNBD,
		OptionMagic:    magicOption,
		HandshakeFlags: flagFixedNewstyle | flagNoZeroes,
	}
	if err := binary.Write(bw, binary.BigEndian, hdr); err != nil {
		return nil, nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, err
	}
	var cf [4]byte
	if _, err := io.ReadFull(br, cf[:]); err != nil {
		return nil, nil, fmt.Errorf("reading client flags: %w", err)
	}
	clientFlags := binary.BigEndian.Uint32(cf[:])
	if clientFlags&^(flagCFixedNewstyle|flagCNoZeroes) != 0 {
		return nil, nil, fmt.Errorf("unknown client flags 0x%x", clientFlags)
	}
	noZeroes := clientFlags&flagCNoZeroes != 0
	// TLS needs fixed newstyle negotiation: with a client that did not
	// agree to it the server must not offer TLS.
	offerTLS := s.TLS != TLSOff && startTLS != nil && clientFlags&flagCFixedNewstyle != 0
	needTLS := s.TLS == TLSRequire
	if needTLS && !offerTLS {
		return nil, nil, errors.New("TLS is required but the client did not set NBD_FLAG_C_FIXED_NEWSTYLE, so it cannot start TLS")
	}
	inTLS := false

	var oh [optHdrSize]byte
	var exp *Export
	var done bool
	for {
		if _, err := io.ReadFull(br, oh[:]); err != nil {
			return nil, nil, fmt.Errorf("reading option: %w", err)
		}
		id, length, err := parseOptionHeader(oh[:])
		if err != nil {
			return nil, nil, err
		}
		data := make([]byte, length)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, nil, fmt.Errorf("reading option %d data: %w", id, err)
		}
		switch {
		case id == optStartTLS && offerTLS:
			switch {
			case inTLS:
				err = writeOptReply(bw, id, repErrInvalid, []byte("TLS is already running"))
			case len(data) != 0:
				err = writeOptReply(bw, id, repErrInvalid, []byte("NBD_OPT_STARTTLS takes no data"))
			default:
				if err = writeOptReply(bw, id, repAck, nil); err == nil {
					err = bw.Flush()
				}
				if err != nil {
					return nil, nil, err
				}
				// The client must wait for the reply: anything it
				// sent before is plain text that must not pass for
				// part of the TLS session (command injection).
				if n := br.Buffered(); n > 0 {
					return nil, nil, fmt.Errorf("the client sent %d bytes after NBD_OPT_STARTTLS without waiting for the reply", n)
				}
				rw, err := startTLS()
				if err != nil {
					return nil, nil, &tlsHandshakeError{err}
				}
				br, bw, inTLS = bufio.NewReaderSize(rw, 64<<10), bufio.NewWriter(rw), true
				continue
			}
		case needTLS && !inTLS && id == optExportName:
			// It cannot be answered with an error.
			return nil, nil, errors.New("the client chose an export with NBD_OPT_EXPORT_NAME without starting TLS, which this server requires")
		case needTLS && !inTLS && id != optAbort:
			log.Info("nbd: option refused: TLS is required and the client has not started it (NBD_OPT_STARTTLS); give the client the CA certificate and make it use TLS", "option", id)
			err = writeOptReply(bw, id, repErrTLSReqd, []byte("TLS is required: upgrade with NBD_OPT_STARTTLS first"))
		default:
			exp, done, err = s.option(bw, id, data, noZeroes)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return nil, nil, err
		}
		if done {
			return exp, br, nil
		}
	}
}

// option answers one option. done means transmission starts with exp.
func (s *Server) option(w *bufio.Writer, id uint32, data []byte, noZeroes bool) (exp *Export, done bool, err error) {
	switch id {
	case optExportName:
		e := s.lookup(string(data))
		if e == nil {
			return nil, false, fmt.Errorf("NBD_OPT_EXPORT_NAME: no export %q", data)
		}
		var b []byte
		b = binary.BigEndian.AppendUint64(b, uint64(e.Backend.Size()))
		b = binary.BigEndian.AppendUint16(b, s.transmissionFlags(e))
		if !noZeroes {
			b = append(b, make([]byte, 124)...)
		}
		_, err := w.Write(b)
		return e, true, err
	case optAbort:
		writeOptReply(w, id, repAck, nil)
		w.Flush()
		return nil, false, errAborted
	case optList:
		if len(data) != 0 {
			return nil, false, writeOptReply(w, id, repErrInvalid, []byte("NBD_OPT_LIST takes no data"))
		}
		for _, e := range s.Exports {
			var b []byte
			b = binary.BigEndian.AppendUint32(b, uint32(len(e.Name)))
			b = append(b, e.Name...)
			b = append(b, e.Description...)
			if err := writeOptReply(w, id, repServer, b); err != nil {
				return nil, false, err
			}
		}
		return nil, false, writeOptReply(w, id, repAck, nil)
	case optInfo, optGo:
		req, perr := parseInfoRequest(data)
		if perr != nil {
			return nil, false, writeOptReply(w, id, repErrInvalid, []byte(perr.Error()))
		}
		e := s.lookup(req.Name)
		if e == nil {
			return nil, false, writeOptReply(w, id, repErrUnknown, []byte("no such export"))
		}
		if err := s.writeInfos(w, id, e, req.Infos); err != nil {
			return nil, false, err
		}
		if err := writeOptReply(w, id, repAck, nil); err != nil {
			return nil, false, err
		}
		return e, id == optGo, nil
	default:
		// NBD_OPT_STARTTLS when TLS is off, NBD_OPT_STRUCTURED_REPLY,
		// metadata contexts, extended headers and anything unknown.
		return nil, false, writeOptReply(w, id, repErrUnsup, nil)
	}
}

func (s *Server) writeInfos(w *bufio.Writer, id uint32, e *Export, want []uint16) error {
	send := func(v any) error {
		var b []byte
		b, err := binary.Append(b, binary.BigEndian, v)
		if err != nil {
			return err
		}
		return writeOptReply(w, id, repInfo, b)
	}
	for _, t := range want {
		var err error
		switch t {
		case infoName:
			err = writeOptReply(w, id, repInfo, append(binary.BigEndian.AppendUint16(nil, infoName), e.Name...))
		case infoDescription:
			if e.Description != "" {
				err = writeOptReply(w, id, repInfo, append(binary.BigEndian.AppendUint16(nil, infoDescription), e.Description...))
			}
		}
		if err != nil {
			return err
		}
	}
	// Block sizes are sent whether asked for or not: the defaults would
	// not tell clients about the maximum payload.
	mb := e.MinBlock
	if mb == 0 {
		mb = 1
	}
	if err := send(protocol.NegotiationReplyBlockSize{
		Type:               infoBlockSize,
		MinimumBlockSize:   mb,
		PreferredBlockSize: max(4096, mb),
		MaximumBlockSize:   s.maxPayload(),
	}); err != nil {
		return err
	}
	return send(protocol.NegotiationReplyInfo{
		Type:              infoExport,
		Size:              uint64(e.Backend.Size()),
		TransmissionFlags: s.transmissionFlags(e),
	})
}

func writeOptReply(w io.Writer, id, typ uint32, data []byte) error {
	b := make([]byte, 0, 20+len(data))
	b = binary.BigEndian.AppendUint64(b, magicOptReply)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	_, err := w.Write(b)
	return err
}
