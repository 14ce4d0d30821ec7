package nbdrepl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/internal/testpki"
)

// logRecorder is a slog handler that keeps the messages logged at Info and
// above, with their attributes.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return nil
	}
	m := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { m += " " + a.String(); return true })
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
	return nil
}

// waitFor waits until a message containing all of want has been logged.
func (l *logRecorder) waitFor(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		for _, m := range l.msgs {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(m, w)
			}
			if ok {
				l.mu.Unlock()
				return m
			}
		}
		msgs := strings.Join(l.msgs, "\n")
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no log message with %q; logged:\n%s", want, msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tlsServer serves a memory export "disk" with TLS in mode; with mutual,
// clients need a certificate from the test CA.
func tlsServer(t *testing.T, mode TLSMode, mutual bool) (addr string, p *testpki.PKI, m *MemBackend, log *logRecorder) {
	t.Helper()
	p = testpki.New(t)
	ca := ""
	if mutual {
		ca = p.CA
	}
	cfg, err := LoadTLSConfig(p.ServerCert, p.ServerKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	s, m := memServer()
	s.TLS, s.TLSConfig = mode, cfg
	log = &logRecorder{}
	s.Logger = slog.New(log)
	return startServer(t, s), p, m, log
}

// startTLSTwice starts TLS on c (an empty ACK) and checks that a second
// STARTTLS, over TLS, is NBD_REP_ERR_INVALID; the session goes on over the
// returned connection.
func startTLSTwice(t *testing.T, c net.Conn, br *bufio.Reader, p *testpki.PKI) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	sendOption(t, c, optStartTLS, nil)
	if r := readOptReply(t, br); r.typ != repAck || len(r.data) != 0 {
		t.Fatalf("STARTTLS: 0x%x", r.typ)
	}
	tc := tls.Client(c, clientTLS(p, false))
	tbr := bufio.NewReader(tc)
	sendOption(t, tc, optStartTLS, nil)
	if r := readOptReply(t, tbr); r.typ != repErrInvalid {
		t.Fatalf("STARTTLS over TLS: 0x%x, want NBD_REP_ERR_INVALID", r.typ)
	}
	return tc, tbr
}

func clientTLS(p *testpki.PKI, withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1"}
	if withCert {
		cfg.Certificates = []tls.Certificate{p.Client}
	}
	return cfg
}

// connectTLS dials and negotiates export name over TLS.
func connectTLS(t *testing.T, addr, name string, cfg *tls.Config) *testClient {
	t.Helper()
	tc, info, err := NegotiateTLS(dial(t, addr), name, cfg)
	if err != nil {
		t.Fatalf("NegotiateTLS: %v", err)
	}
	return &testClient{t: t, c: tc, br: bufio.NewReader(tc), reads: map[uint64]uint32{},
		size: info.Size, flags: info.Flags, block: [3]uint32{info.MinBlock, info.PrefBlock, info.MaxBlock}}
}

// exercise writes, reads back, flushes and pipelines requests on tc, then
// disconnects.
func exercise(t *testing.T, tc *testClient, m *MemBackend) {
	t.Helper()
	if tc.size != testSize {
		t.Fatalf("size %d", tc.size)
	}
	// One at a time: the reader runs each itself (the inline path).
	data := bytes.Repeat([]byte("tls!"), 1024)
	if r := tc.do(Request{Type: CmdWrite, Handle: 1, Offset: 8192, Length: uint32(len(data))}, data); r.errno != 0 {
		t.Fatalf("write errno %d", r.errno)
	}
	if r := tc.do(Request{Type: CmdRead, Handle: 2, Offset: 8192, Length: uint32(len(data))}, nil); r.errno != 0 || !bytes.Equal(r.data, data) {
		t.Fatalf("read back: errno %d", r.errno)
	}
	// Many in flight, large ones too: the workers and the writer.
	const n = 64
	big := bytes.Repeat([]byte{0xa5}, 256<<10)
	for i := range n {
		tc.send(Request{Type: CmdWrite, Handle: uint64(100 + i), Offset: uint64(i) * uint64(len(big)) % (testSize - uint64(len(big))), Length: uint32(len(big))}, big)
	}
	tc.send(Request{Type: CmdFlush, Handle: 99}, nil)
	for range n + 1 {
		if r := tc.mustRecv(); r.errno != 0 {
			t.Fatalf("reply %d errno %d", r.handle, r.errno)
		}
	}
	for i := range n {
		tc.send(Request{Type: CmdRead, Handle: uint64(200 + i), Offset: 0, Length: uint32(len(big))}, nil)
	}
	for range n {
		if r := tc.mustRecv(); r.errno != 0 || !bytes.Equal(r.data, big) {
			t.Fatalf("read %d: errno %d", r.handle, r.errno)
		}
	}
	tc.disconnect()
	if !bytes.Equal(m.Bytes()[:len(big)], big) {
		t.Fatal("backend contents differ")
	}
}

// TestTLSReadWrite: a Go TLS client reads and writes after NBD_OPT_STARTTLS,
// with and without a client certificate, in both TLS modes; TLSAllow also
// serves plain clients.
func TestTLSReadWrite(t *testing.T) {
	for _, c := range []struct {
		mode   TLSMode
		mutual bool
	}{{TLSRequire, false}, {TLSRequire, true}, {TLSAllow, false}} {
		t.Run(c.mode.String()+map[bool]string{true: "-mutual"}[c.mutual], func(t *testing.T) {
			addr, p, m, _ := tlsServer(t, c.mode, c.mutual)
			exercise(t, connectTLS(t, addr, "disk", clientTLS(p, c.mutual)), m)
			if c.mode == TLSAllow {
				exercise(t, connect(t, addr, "disk"), m)
			}
		})
	}
}

// TestTLSRequireRefusals: under TLSRequire nothing but NBD_OPT_STARTTLS and
// NBD_OPT_ABORT is served before TLS.
func TestTLSRequireRefusals(t *testing.T) {
	addr, p, _, log := tlsServer(t, TLSRequire, false)

	// Every other option gets NBD_REP_ERR_TLS_REQD; STARTTLS with data
	// is invalid; ABORT is acknowledged.
	c := dial(t, addr)
	br := bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle|flagCNoZeroes)
	for _, o := range []struct {
		id   uint32
		data []byte
	}{
		{optList, nil},
		{optInfo, appendInfoRequest(nil, infoRequest{Name: "disk"})},
		{optGo, appendInfoRequest(nil, infoRequest{Name: "disk"})},
		{optStructuredReply, nil},
		{99, []byte("junk")},
	} {
		sendOption(t, c, o.id, o.data)
		if r := readOptReply(t, br); r.id != o.id || r.typ != repErrTLSReqd {
			t.Fatalf("option %d before TLS: reply %d/0x%x, want NBD_REP_ERR_TLS_REQD", o.id, r.id, r.typ)
		}
	}
	log.waitFor(t, "TLS is required", "option=99")
	sendOption(t, c, optStartTLS, []byte{0})
	if r := readOptReply(t, br); r.typ != repErrInvalid {
		t.Fatalf("STARTTLS with data: 0x%x, want NBD_REP_ERR_INVALID", r.typ)
	}
	sendOption(t, c, optAbort, nil)
	if r := readOptReply(t, br); r.typ != repAck {
		t.Fatalf("ABORT before TLS: 0x%x", r.typ)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after ABORT: %v", err)
	}

	// A plain client's NBD_OPT_GO is refused, and says why.
	if _, err := Negotiate(dial(t, addr), "disk"); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("plain NBD_OPT_GO under TLSRequire: %v", err)
	}

	// NBD_OPT_EXPORT_NAME cannot be refused: the session ends.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle)
	sendOption(t, c, optExportName, []byte("disk"))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("EXPORT_NAME before TLS: %v, want EOF", err)
	}
	log.waitFor(t, "NBD_OPT_EXPORT_NAME without starting TLS")

	// A client that did not agree to fixed newstyle cannot start TLS.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	handshake(t, c, br, 0)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("non-fixed newstyle client: %v, want EOF", err)
	}

	// STARTTLS twice: the second, over TLS, is invalid; the session
	// goes on.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle|flagCNoZeroes)
	tc, tbr := startTLSTwice(t, c, br, p)
	sendOption(t, tc, optList, nil)
	if r := readOptReply(t, tbr); r.typ != repServer {
		t.Fatalf("LIST over TLS: 0x%x", r.typ)
	}
	if r := readOptReply(t, tbr); r.typ != repAck {
		t.Fatalf("LIST over TLS: 0x%x", r.typ)
	}
	sendOption(t, tc, optExportName, []byte("disk"))
	var size [10]byte
	if _, err := io.ReadFull(tbr, size[:]); err != nil || binary.BigEndian.Uint64(size[:]) != testSize {
		t.Fatalf("EXPORT_NAME over TLS: %v", err)
	}
	ec := &testClient{t: t, c: tc, br: tbr, reads: map[uint64]uint32{}}
	if r := ec.do(Request{Type: CmdRead, Handle: 1, Length: 512}, nil); r.errno != 0 {
		t.Fatalf("read after EXPORT_NAME over TLS: errno %d", r.errno)
	}
	ec.disconnect()
}

// TestTLSInjection: plain text sent behind NBD_OPT_STARTTLS, before the
// server's reply, is never taken for part of the TLS session.
func TestTLSInjection(t *testing.T) {
	addr, _, _, _ := tlsServer(t, TLSRequire, false)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle|flagCNoZeroes)
	b := appendOption(nil, optStartTLS, nil)
	b = appendOption(b, optList, nil)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(br)
	ack := appendOptReply(optStartTLS, repAck)
	if !bytes.HasPrefix(out, ack) || bytes.Contains(out[len(ack):], binary.BigEndian.AppendUint64(nil, magicOptReply)) {
		t.Fatalf("server sent %x after STARTTLS and an injected NBD_OPT_LIST", out)
	}
}

// TestTLSHandshakeFailures: a failed handshake is logged with its reason
// and ends the session: garbage instead of a ClientHello, a client that
// does not trust the server's CA, a client without a certificate or with
// one from another CA when the server verifies clients, and a client that
// stalls (the handshake deadline).
func TestTLSHandshakeFailures(t *testing.T) {
	addr, p, _, log := tlsServer(t, TLSRequire, true)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle)
	sendOption(t, c, optStartTLS, nil)
	if r := readOptReply(t, br); r.typ != repAck {
		t.Fatalf("STARTTLS: 0x%x", r.typ)
	}
	c.Write([]byte("this is not TLS, just some plain text\r\n"))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("after garbage: %v", err)
	}
	log.waitFor(t, "WARN nbd: TLS handshake failed", "does not look like a TLS handshake")

	other := testpki.New(t)
	for _, c := range []struct {
		name string
		cfg  *tls.Config
		log  string
	}{
		{"no client certificate", clientTLS(p, false), "didn't provide a certificate"},
		{"client certificate from another CA", &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{other.Client}}, "unknown authority"},
		{"server not trusted", clientTLS(other, true), "bad certificate"},
	} {
		if _, _, err := NegotiateTLS(dial(t, addr), "disk", c.cfg); err == nil {
			t.Fatalf("%s: accepted", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
		log.waitFor(t, "WARN nbd: TLS handshake failed", c.log)
	}

	// A client that stalls after the acknowledgement is dropped when the
	// handshake deadline passes.
	s, _ := memServer()
	cfg, err := LoadTLSConfig(p.ServerCert, p.ServerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	s.TLS, s.TLSConfig, s.HandshakeTimeout = TLSRequire, cfg, 200*time.Millisecond
	c2 := dial(t, startServer(t, s))
	br = bufio.NewReader(c2)
	handshake(t, c2, br, flagCFixedNewstyle)
	sendOption(t, c2, optStartTLS, nil)
	readOptReply(t, br)
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled handshake: %v after %v", err, time.Since(start))
	}
}

// TestTLSOffAndAllow: with TLS off STARTTLS is unsupported; with TLSAllow
// plain options work and NBD_REP_ERR_TLS_REQD is never sent, STARTTLS with
// data or over TLS is invalid.
func TestTLSOffAndAllow(t *testing.T) {
	s, _ := memServer()
	c := dial(t, startServer(t, s))
	br := bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle)
	sendOption(t, c, optStartTLS, nil)
	if r := readOptReply(t, br); r.typ != repErrUnsup {
		t.Fatalf("STARTTLS with TLS off: 0x%x", r.typ)
	}

	addr, p, _, _ := tlsServer(t, TLSAllow, false)
	c = dial(t, addr)
	br = bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle)
	sendOption(t, c, optInfo, appendInfoRequest(nil, infoRequest{Name: "disk"}))
	for r := readOptReply(t, br); r.typ != repAck; r = readOptReply(t, br) {
		if r.typ != repInfo {
			t.Fatalf("INFO in plain text under TLSAllow: 0x%x", r.typ)
		}
	}
	sendOption(t, c, optStartTLS, []byte("x"))
	if r := readOptReply(t, br); r.typ != repErrInvalid {
		t.Fatalf("STARTTLS with data: 0x%x", r.typ)
	}
	tc, tbr := startTLSTwice(t, c, br, p)
	sendOption(t, tc, optAbort, nil)
	if r := readOptReply(t, tbr); r.typ != repAck {
		t.Fatalf("ABORT over TLS: 0x%x", r.typ)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	p := testpki.New(t)
	cfg, err := LoadTLSConfig(p.ServerCert, p.ServerKey, p.CA)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("config %+v", cfg)
	}
	m := NewMemBackend(4096)
	ln, _ := listen(t)
	for _, c := range []struct {
		mode TLSMode
		cfg  *tls.Config
		want string
	}{
		{TLSRequire, nil, "needs a TLS configuration"},
		{TLSAllow, &tls.Config{}, "needs a TLS configuration"},
		{TLSOff, cfg, "TLS mode is off"},
		{TLSMode(7), cfg, "unknown TLS mode"},
	} {
		ctx, cancel := contextWithCancel()
		err := (&Server{Exports: []Export{{Name: "a", Backend: m}}, TLS: c.mode, TLSConfig: c.cfg}).Serve(ctx, ln)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mode %s: %v, want %q", c.mode, err, c.want)
		}
	}

	for s, want := range map[string]TLSMode{"": TLSOff, "off": TLSOff, "allow": TLSAllow, "require": TLSRequire} {
		if got, err := ParseTLSMode(s); err != nil || got != want {
			t.Errorf("ParseTLSMode(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseTLSMode("on"); err == nil || !strings.Contains(err.Error(), "use off, allow") {
		t.Errorf("ParseTLSMode(on): %v", err)
	}

	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		cert, key, ca string
		file, want    string
	}{
		{missing, p.ServerKey, "", "cert", "no such file"},
		{garbage, p.ServerKey, "", "cert", "no PEM certificate"},
		{p.ServerKey, p.ServerKey, "", "cert", "no PEM certificate"},
		{p.ServerCert, missing, "", "key", "no such file"},
		{p.ServerCert, garbage, "", "key", "PEM private key"},
		{p.ServerCert, p.ClientKey, "", "key", "does not match"},
		{p.ServerCert, p.ServerKey, missing, "ca", "no such file"},
		{p.ServerCert, p.ServerKey, garbage, "ca", "no PEM certificate"},
	} {
		_, err := LoadTLSConfig(c.cert, c.key, c.ca)
		var fe *TLSFileError
		if !errors.As(err, &fe) || fe.File != c.file || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadTLSConfig(%s, %s, %s): %v, want a %s error with %q", filepath.Base(c.cert), filepath.Base(c.key), filepath.Base(c.ca), err, c.file, c.want)
		}
		if c.want == "no such file" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v does not wrap fs.ErrNotExist", err)
		}
	}
}

// TestVolumeNBDTLS: a volume's NBD listener requires TLS when configured
// to; writes over TLS are replicated.
func TestVolumeNBDTLS(t *testing.T) {
	p := testpki.New(t)
	cfg, err := LoadTLSConfig(p.ServerCert, p.ServerKey, p.CA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVolume(VolumeConfig{Name: "vol", Node: "n1", Backend: NewMemBackend(4096), Secret: bytes.Repeat([]byte("k"), 32),
		Listen: "127.0.0.1:0", NBDTLS: TLSRequire}); err == nil || !strings.Contains(err.Error(), "needs a TLS configuration") {
		t.Fatalf("NBDTLS require without a configuration: %v", err)
	}
	v1, _, _, m2 := volPair(t, 1<<20, func(c *VolumeConfig) { c.NBDTLS, c.NBDTLSConfig = TLSRequire, cfg })
	if err := v1.Promote(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 UpToDate", func() bool { return peerState(v1, "n2") == "UpToDate" })
	addr := v1.NBDAddr().String()
	if _, err := Negotiate(dial(t, addr), "vol"); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("plain client of a TLS volume: %v", err)
	}
	tc := connectTLS(t, addr, "vol", clientTLS(p, true))
	data := bytes.Repeat([]byte("secret data "), 100)
	if r := tc.do(Request{Type: CmdWrite, Handle: 1, Offset: 4096, Length: uint32(len(data))}, data); r.errno != 0 {
		t.Fatalf("write over TLS: errno %d", r.errno)
	}
	tc.disconnect()
	eventually(t, "the write on n2", func() bool { return bytes.Equal(m2.Bytes()[4096:4096+len(data)], data) })
}
