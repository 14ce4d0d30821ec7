package nbdrepl

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// testClient is a minimal NBD client for the tests: fixed newstyle,
// NBD_OPT_GO, simple replies.
type testClient struct {
	t     testing.TB
	c     net.Conn
	br    *bufio.Reader
	size  uint64
	flags uint16
	block [3]uint32

	mu    sync.Mutex
	reads map[uint64]uint32 // handle -> length of outstanding reads
}

type reply struct {
	errno  uint32
	handle uint64
	data   []byte
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startServer serves exports on loopback TCP and returns the address; the
// server stops at the end of the test.
func startServer(t testing.TB, s *Server) string {
	t.Helper()
	if s.Logger == nil {
		s.Logger = testLogger(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// handshake reads the server greeting and sends client flags.
func handshake(t testing.TB, c net.Conn, br *bufio.Reader, clientFlags uint32) {
	t.Helper()
	var g [18]byte
	if _, err := io.ReadFull(br, g[:]); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if binary.BigEndian.Uint64(g[0:]) != magicNBD || binary.BigEndian.Uint64(g[8:]) != magicOption {
		t.Fatalf("bad greeting %x", g)
	}
	if f := binary.BigEndian.Uint16(g[16:]); f != flagFixedNewstyle|flagNoZeroes {
		t.Fatalf("handshake flags 0x%x", f)
	}
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, clientFlags)); err != nil {
		t.Fatal(err)
	}
}

func sendOption(t testing.TB, c net.Conn, id uint32, data []byte) {
	t.Helper()
	b := binary.BigEndian.AppendUint64(nil, magicOption)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	if _, err := c.Write(append(b, data...)); err != nil {
		t.Fatal(err)
	}
}

type optReply struct {
	id, typ uint32
	data    []byte
}

func readOptReply(t testing.TB, br *bufio.Reader) optReply {
	t.Helper()
	var h [20]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("option reply: %v", err)
	}
	if m := binary.BigEndian.Uint64(h[:]); m != magicOptReply {
		t.Fatalf("option reply magic 0x%x", m)
	}
	r := optReply{id: binary.BigEndian.Uint32(h[8:]), typ: binary.BigEndian.Uint32(h[12:])}
	r.data = make([]byte, binary.BigEndian.Uint32(h[16:]))
	if _, err := io.ReadFull(br, r.data); err != nil {
		t.Fatal(err)
	}
	return r
}

// connect dials and negotiates export name with NBD_OPT_GO.
func connect(t testing.TB, addr, name string) *testClient {
	t.Helper()
	c := dial(t, addr)
	info, err := Negotiate(c, name)
	if err != nil {
		t.Fatalf("Negotiate: %v", err)
	}
	return &testClient{t: t, c: c, br: bufio.NewReader(c), reads: map[uint64]uint32{},
		size: info.Size, flags: info.Flags, block: [3]uint32{info.MinBlock, info.PrefBlock, info.MaxBlock}}
}

// send writes a request (with payload for writes) without waiting.
func (tc *testClient) send(r Request, payload []byte) {
	if r.Type == CmdRead {
		tc.mu.Lock()
		tc.reads[r.Handle] = r.Length
		tc.mu.Unlock()
	}
	b := AppendRequest(nil, r)
	if _, err := tc.c.Write(append(b, payload...)); err != nil {
		tc.t.Fatalf("send: %v", err)
	}
}

// recv reads one reply.
func (tc *testClient) recv() (reply, error) {
	var h [replySize]byte
	if _, err := io.ReadFull(tc.br, h[:]); err != nil {
		return reply{}, err
	}
	if m := binary.BigEndian.Uint32(h[:]); m != magicReply {
		return reply{}, fmt.Errorf("reply magic 0x%x", m)
	}
	r := reply{errno: binary.BigEndian.Uint32(h[4:]), handle: binary.BigEndian.Uint64(h[8:])}
	tc.mu.Lock()
	n, isRead := tc.reads[r.handle]
	delete(tc.reads, r.handle)
	tc.mu.Unlock()
	if isRead && r.errno == 0 {
		r.data = make([]byte, n)
		if _, err := io.ReadFull(tc.br, r.data); err != nil {
			return reply{}, err
		}
	}
	return r, nil
}

func (tc *testClient) mustRecv() reply {
	tc.t.Helper()
	r, err := tc.recv()
	if err != nil {
		tc.t.Fatalf("recv: %v", err)
	}
	return r
}

// do sends one request and waits for its reply.
func (tc *testClient) do(r Request, payload []byte) reply {
	tc.t.Helper()
	tc.send(r, payload)
	rep := tc.mustRecv()
	if rep.handle != r.Handle {
		tc.t.Fatalf("reply handle %d, want %d", rep.handle, r.Handle)
	}
	return rep
}

func (tc *testClient) disconnect() {
	tc.send(Request{Type: CmdDisc}, nil)
	// The server closes after answering everything in flight.
	if _, err := tc.br.ReadByte(); err != io.EOF {
		tc.t.Errorf("after NBD_CMD_DISC: %v, want EOF", err)
	}
}

func listen(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().String()
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
