package nbdrepl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const testSize = 4 << 20

func memServer(exps ...Export) (*Server, *MemBackend) {
	m := NewMemBackend(testSize)
	if len(exps) == 0 {
		exps = []Export{{Name: "disk", Description: "test disk", Backend: m}}
	}
	return &Server{Exports: exps}, m
}

func TestNegotiation(t *testing.T) {
	a, b := NewMemBackend(1<<20), NewMemBackend(2<<20)
	addr := startServer(t, &Server{Exports: []Export{
		{Name: "a", Description: "first", Backend: a},
		{Name: "b", Backend: b, ReadOnly: true},
	}})

	c := dial(t, addr)
	br := bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle)

	// NBD_OPT_LIST: one NBD_REP_SERVER per export, then ACK.
	sendOption(t, c, optList, nil)
	var names []string
	for {
		r := readOptReply(t, br)
		if r.id != optList {
			t.Fatalf("reply for option %d", r.id)
		}
		if r.typ == repAck {
			break
		}
		if r.typ != repServer {
			t.Fatalf("NBD_OPT_LIST reply 0x%x", r.typ)
		}
		n := binary.BigEndian.Uint32(r.data)
		names = append(names, string(r.data[4:4+n])+"|"+string(r.data[4+n:]))
	}
	if got := names; len(got) != 2 || got[0] != "a|first" || got[1] != "b|" {
		t.Fatalf("list = %q", got)
	}
	// NBD_OPT_LIST with data is invalid.
	sendOption(t, c, optList, []byte("x"))
	if r := readOptReply(t, br); r.typ != repErrInvalid {
		t.Fatalf("LIST with data: 0x%x", r.typ)
	}
	// Unknown and unsupported options.
	for _, id := range []uint32{optStructuredReply, optStartTLS, 0, 99} {
		sendOption(t, c, id, []byte("junk"))
		if r := readOptReply(t, br); r.typ != repErrUnsup || r.id != id {
			t.Fatalf("option %d: reply %+v", id, r)
		}
	}
	// NBD_OPT_INFO on an unknown export, malformed data, then on "b".
	sendOption(t, c, optInfo, appendInfoRequest(nil, infoRequest{Name: "nope"}))
	if r := readOptReply(t, br); r.typ != repErrUnknown {
		t.Fatalf("INFO unknown export: 0x%x", r.typ)
	}
	sendOption(t, c, optInfo, []byte{0, 0, 0, 9, 'b'})
	if r := readOptReply(t, br); r.typ != repErrInvalid {
		t.Fatalf("INFO malformed: 0x%x", r.typ)
	}
	sendOption(t, c, optInfo, appendInfoRequest(nil, infoRequest{Name: "b", Infos: []uint16{infoName, infoBlockSize}}))
	var flags uint16
	var size uint64
	var gotName string
	for {
		r := readOptReply(t, br)
		if r.typ == repAck {
			break
		}
		switch binary.BigEndian.Uint16(r.data) {
		case infoExport:
			size, flags = binary.BigEndian.Uint64(r.data[2:]), binary.BigEndian.Uint16(r.data[10:])
		case infoName:
			gotName = string(r.data[2:])
		case infoBlockSize:
			if mn, pr, mx := binary.BigEndian.Uint32(r.data[2:]), binary.BigEndian.Uint32(r.data[6:]), binary.BigEndian.Uint32(r.data[10:]); mn != 1 || pr != 4096 || mx != DefaultMaxPayload {
				t.Fatalf("block sizes %d %d %d", mn, pr, mx)
			}
		}
	}
	if size != 2<<20 || gotName != "b" {
		t.Fatalf("INFO b: size %d name %q", size, gotName)
	}
	want := FlagHasFlags | FlagReadOnly | FlagSendFlush | FlagSendFUA | FlagCanMultiConn
	if flags != want {
		t.Fatalf("flags 0x%x, want 0x%x", flags, want)
	}
	// NBD_OPT_ABORT is acknowledged and the server closes.
	sendOption(t, c, optAbort, nil)
	if r := readOptReply(t, br); r.typ != repAck {
		t.Fatalf("ABORT: 0x%x", r.typ)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after ABORT: %v", err)
	}
}

func TestExportName(t *testing.T) {
	s, m := memServer()
	addr := startServer(t, s)
	for _, noZeroes := range []bool{false, true} {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		cf := flagCFixedNewstyle
		if noZeroes {
			cf |= flagCNoZeroes
		}
		handshake(t, c, br, cf)
		sendOption(t, c, optExportName, []byte("")) // default export
		b := make([]byte, 10)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint64(b) != testSize {
			t.Fatalf("size %d", binary.BigEndian.Uint64(b))
		}
		if !noZeroes {
			z := make([]byte, 124)
			if _, err := io.ReadFull(br, z); err != nil || !bytes.Equal(z, make([]byte, 124)) {
				t.Fatalf("zero padding: %v", err)
			}
		}
		tc := &testClient{t: t, c: c, br: br, reads: map[uint64]uint32{}}
		tc.do(Request{Type: CmdWrite, Handle: 1, Offset: 512, Length: 3}, []byte("abc"))
		if r := tc.do(Request{Type: CmdRead, Handle: 2, Offset: 512, Length: 3}, nil); string(r.data) != "abc" {
			t.Fatalf("read %q", r.data)
		}
		tc.disconnect()
	}
	if !bytes.Equal(m.Bytes()[512:515], []byte("abc")) {
		t.Fatal("backend not written")
	}

	// An unknown export name ends the session (no way to report an error).
	c := dial(t, addr)
	br := bufio.NewReader(c)
	handshake(t, c, br, flagCFixedNewstyle)
	sendOption(t, c, optExportName, []byte("nope"))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("unknown export: %v", err)
	}
	// So do unknown client flags.
	c = dial(t, addr)
	br = bufio.NewReader(c)
	handshake(t, c, br, 1<<7)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("bad client flags: %v", err)
	}
}

func TestReadWriteTrimZero(t *testing.T) {
	s, m := memServer()
	tc := connect(t, startServer(t, s), "disk")
	want := FlagHasFlags | FlagSendFlush | FlagSendFUA | FlagSendTrim | FlagSendWriteZeroes | FlagCanMultiConn
	if tc.flags != want || tc.size != testSize {
		t.Fatalf("flags 0x%x size %d", tc.flags, tc.size)
	}
	if tc.block != [3]uint32{1, 4096, DefaultMaxPayload} {
		t.Fatalf("block sizes %v", tc.block)
	}
	data := bytes.Repeat([]byte{0xab}, 3<<20)
	if r := tc.do(Request{Type: CmdWrite, Handle: 10, Length: uint32(len(data))}, data); r.errno != 0 {
		t.Fatalf("write errno %d", r.errno)
	}
	if r := tc.do(Request{Type: CmdWriteZeroes, Handle: 11, Offset: 1 << 20, Length: 1 << 20, Flags: CmdFlagNoHole}, nil); r.errno != 0 {
		t.Fatalf("write zeroes errno %d", r.errno)
	}
	if r := tc.do(Request{Type: CmdTrim, Handle: 12, Offset: 2 << 20, Length: 1 << 20}, nil); r.errno != 0 {
		t.Fatalf("trim errno %d", r.errno)
	}
	if r := tc.do(Request{Type: CmdFlush, Handle: 13}, nil); r.errno != 0 {
		t.Fatalf("flush errno %d", r.errno)
	}
	r := tc.do(Request{Type: CmdRead, Handle: 14, Length: 3 << 20}, nil)
	if r.errno != 0 || !bytes.Equal(r.data[:1<<20], data[:1<<20]) || !bytes.Equal(r.data[1<<20:], make([]byte, 2<<20)) {
		t.Fatalf("read back wrong (errno %d)", r.errno)
	}
	// FUA syncs.
	_, syncs := m.Counts()
	tc.do(Request{Type: CmdWrite, Flags: CmdFlagFUA, Handle: 15, Offset: 7, Length: 1}, []byte{1})
	if _, s2 := m.Counts(); s2 != syncs+1 {
		t.Fatalf("FUA write: syncs %d -> %d", syncs, s2)
	}
	if f, _ := m.Counts(); f != 1 {
		t.Fatalf("flushes %d", f)
	}
	tc.disconnect()
}

// TestManyInFlight pipelines hundreds of requests from several goroutines
// sharing a connection and checks every reply and the final contents.
func TestManyInFlight(t *testing.T) {
	s, m := memServer()
	s.Workers = 4
	m.Hook = func(op string, off, n int64) error {
		if op == "write" || op == "read" {
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		}
		return nil
	}
	tc := connect(t, startServer(t, s), "disk")
	const blocks, bs = 256, 4096
	want := make([]byte, blocks*bs)
	var sendMu sync.Mutex
	var wg sync.WaitGroup
	pending := map[uint64]Request{}
	var pmu sync.Mutex
	var handle atomic.Uint64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < blocks; i += 4 {
				p := bytes.Repeat([]byte{byte(i)}, bs)
				copy(want[i*bs:], p)
				r := Request{Type: CmdWrite, Handle: handle.Add(1), Offset: uint64(i * bs), Length: bs}
				pmu.Lock()
				pending[r.Handle] = r
				pmu.Unlock()
				sendMu.Lock()
				tc.send(r, p)
				sendMu.Unlock()
			}
		}()
	}
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got < blocks {
			r, err := tc.recv()
			if err != nil {
				t.Errorf("recv: %v", err)
				return
			}
			pmu.Lock()
			_, ok := pending[r.handle]
			delete(pending, r.handle)
			pmu.Unlock()
			if !ok || r.errno != 0 {
				t.Errorf("reply handle %d known %v errno %d", r.handle, ok, r.errno)
			}
			got++
		}
	}()
	wg.Wait()
	<-done
	// Now many reads in flight at once, checked against what was written.
	for i := range blocks {
		tc.send(Request{Type: CmdRead, Handle: uint64(1000 + i), Offset: uint64(i * bs), Length: bs}, nil)
	}
	for range blocks {
		r := tc.mustRecv()
		i := int(r.handle - 1000)
		if r.errno != 0 || !bytes.Equal(r.data, want[i*bs:(i+1)*bs]) {
			t.Fatalf("read block %d wrong", i)
		}
	}
	if !bytes.Equal(m.Bytes()[:blocks*bs], want) {
		t.Fatal("backend contents differ")
	}
	tc.disconnect()
}

// TestOutOfOrder: a slow request does not hold back the replies of later
// ones.
func TestOutOfOrder(t *testing.T) {
	s, m := memServer()
	release := make(chan struct{})
	m.Hook = func(op string, off, n int64) error {
		if op == "read" && off == 0 {
			<-release
		}
		return nil
	}
	tc := connect(t, startServer(t, s), "disk")
	tc.send(Request{Type: CmdRead, Handle: 1, Offset: 0, Length: 512}, nil)
	tc.send(Request{Type: CmdRead, Handle: 2, Offset: 4096, Length: 512}, nil)
	tc.send(Request{Type: CmdWrite, Handle: 3, Offset: 8192, Length: 1}, []byte{9})
	first, second := tc.mustRecv(), tc.mustRecv()
	if first.handle == 1 || second.handle == 1 {
		t.Fatalf("slow read answered before later requests: %d %d", first.handle, second.handle)
	}
	close(release)
	if r := tc.mustRecv(); r.handle != 1 || len(r.data) != 512 {
		t.Fatalf("slow read reply %d", r.handle)
	}
	tc.disconnect()
}

// TestFlushOrdering: a FLUSH completes only after the writes received
// before it, even when they are slower; later writes do not delay it.
func TestFlushOrdering(t *testing.T) {
	s, m := memServer()
	release := make(chan struct{})
	var written atomic.Int32
	var flushSawWrites atomic.Int32
	m.Hook = func(op string, off, n int64) error {
		switch op {
		case "write":
			if off == 0 {
				<-release
			}
			defer written.Add(1)
		case "flush":
			flushSawWrites.Store(written.Load())
		}
		return nil
	}
	tc := connect(t, startServer(t, s), "disk")
	tc.send(Request{Type: CmdWrite, Handle: 1, Offset: 0, Length: 1}, []byte{1}) // slow
	tc.send(Request{Type: CmdWrite, Handle: 2, Offset: 4096, Length: 1}, []byte{2})
	tc.send(Request{Type: CmdFlush, Handle: 3}, nil)
	tc.send(Request{Type: CmdRead, Handle: 4, Offset: 4096, Length: 1}, nil)
	// Write 2 and the read complete; the flush must not.
	for range 2 {
		if r := tc.mustRecv(); r.handle == 3 || r.handle == 1 {
			t.Fatalf("reply %d before the slow write finished", r.handle)
		}
	}
	tc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if r, err := tc.recv(); err == nil {
		t.Fatalf("unexpected reply %d while the write is blocked", r.handle)
	}
	tc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	close(release)
	// Both replies come now, in either order: the flush ran after the
	// write completed (checked below), but the two replies are sent by
	// different goroutines.
	got := map[uint64]uint32{}
	for range 2 {
		r := tc.mustRecv()
		got[r.handle] = r.errno
	}
	if e1, ok1 := got[1]; !ok1 || e1 != 0 {
		t.Fatalf("replies %v: want the slow write (1) done", got)
	}
	if e3, ok3 := got[3]; !ok3 || e3 != 0 {
		t.Fatalf("replies %v: want the flush (3) done", got)
	}
	if n := flushSawWrites.Load(); n != 2 {
		t.Fatalf("flush ran after %d writes, want 2", n)
	}
	tc.do(Request{Type: CmdFlush, Handle: 5}, nil)
	tc.disconnect()
}

func TestErrorsPerRequest(t *testing.T) {
	ro := NewMemBackend(1 << 20)
	s, m := memServer()
	s.Exports = append(s.Exports,
		Export{Name: "ro", Backend: ro, ReadOnly: true},
		Export{Name: "aligned", Backend: NewMemBackend(1 << 20), MinBlock: 512})
	m.Hook = func(op string, off, n int64) error {
		switch off {
		case 1 << 20:
			return syscall.EIO
		case 2 << 20:
			return syscall.ENOSPC
		}
		return nil
	}
	addr := startServer(t, s)
	tc := connect(t, addr, "disk")
	cases := []struct {
		name    string
		r       Request
		payload []byte
		errno   uint32
	}{
		{"read past end", Request{Type: CmdRead, Offset: testSize - 1, Length: 2}, nil, ErrInval},
		{"read huge offset", Request{Type: CmdRead, Offset: 1 << 63, Length: 1}, nil, ErrInval},
		{"read too long", Request{Type: CmdRead, Length: DefaultMaxPayload + 1}, nil, ErrInval},
		{"write past end", Request{Type: CmdWrite, Offset: testSize - 1, Length: 2}, []byte{1, 2}, ErrInval},
		{"trim past end", Request{Type: CmdTrim, Offset: testSize, Length: 1}, nil, ErrInval},
		{"unknown command", Request{Type: 42, Offset: 0, Length: 0}, nil, ErrInval},
		{"read EIO", Request{Type: CmdRead, Offset: 1 << 20, Length: 10}, nil, ErrIO},
		{"write EIO", Request{Type: CmdWrite, Offset: 1 << 20, Length: 1}, []byte{1}, ErrIO},
		{"write ENOSPC", Request{Type: CmdWrite, Offset: 2 << 20, Length: 1}, []byte{1}, ErrNoSpc},
		{"zero ENOSPC", Request{Type: CmdWriteZeroes, Offset: 2 << 20, Length: 1}, nil, ErrNoSpc},
		{"good read", Request{Type: CmdRead, Offset: 0, Length: 10}, nil, 0},
	}
	for i, c := range cases {
		c.r.Handle = uint64(100 + i)
		if r := tc.do(c.r, c.payload); r.errno != c.errno {
			t.Errorf("%s: errno %d, want %d", c.name, r.errno, c.errno)
		}
	}
	tc.disconnect()

	rc := connect(t, addr, "ro")
	if rc.flags&FlagReadOnly == 0 || rc.flags&(FlagSendTrim|FlagSendWriteZeroes) != 0 {
		t.Fatalf("ro flags 0x%x", rc.flags)
	}
	if r := rc.do(Request{Type: CmdWrite, Handle: 1, Length: 4}, []byte("abcd")); r.errno != ErrPerm {
		t.Fatalf("write to read-only: errno %d", r.errno)
	}
	if r := rc.do(Request{Type: CmdRead, Handle: 2, Length: 4}, nil); r.errno != 0 {
		t.Fatalf("read from read-only: errno %d", r.errno)
	}
	rc.disconnect()

	ac := connect(t, addr, "aligned")
	if ac.block[0] != 512 {
		t.Fatalf("min block %d", ac.block[0])
	}
	if r := ac.do(Request{Type: CmdWrite, Handle: 1, Offset: 1, Length: 512}, make([]byte, 512)); r.errno != ErrInval {
		t.Fatalf("misaligned write: errno %d", r.errno)
	}
	if r := ac.do(Request{Type: CmdRead, Handle: 2, Offset: 512, Length: 1024}, nil); r.errno != 0 {
		t.Fatalf("aligned read: errno %d", r.errno)
	}
	ac.disconnect()
}

// TestMalformed: bad magic and oversized writes end the connection cleanly.
func TestMalformed(t *testing.T) {
	s, _ := memServer()
	addr := startServer(t, s)
	tc := connect(t, addr, "disk")
	tc.send(Request{Type: CmdRead, Handle: 1, Length: 8}, nil)
	b := AppendRequest(nil, Request{Type: CmdRead, Handle: 2})
	b[0] ^= 0xff
	tc.c.Write(b)
	if r := tc.mustRecv(); r.handle != 1 || r.errno != 0 {
		t.Fatalf("in-flight read before bad magic: %+v", r)
	}
	if _, err := tc.recv(); err != io.EOF {
		t.Fatalf("after bad magic: %v, want EOF", err)
	}

	tc = connect(t, addr, "disk")
	tc.send(Request{Type: CmdWrite, Handle: 1, Length: DefaultMaxPayload + 1}, nil)
	if _, err := tc.recv(); err != io.EOF {
		t.Fatalf("after oversized write: %v, want EOF", err)
	}
}

// TestShutdown: cancelling Serve's context answers requests in flight and
// closes connections.
func TestShutdown(t *testing.T) {
	s, m := memServer()
	started := make(chan struct{})
	m.Hook = func(op string, off, n int64) error {
		if op == "write" {
			close(started)
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}
	s.Logger = testLogger(t)
	ln, addr := listen(t)
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	tc := connect(t, addr, "disk")
	tc.send(Request{Type: CmdWrite, Handle: 7, Length: 1}, []byte{1})
	<-started
	cancel()
	if r := tc.mustRecv(); r.handle != 7 || r.errno != 0 {
		t.Fatalf("in-flight write: %+v", r)
	}
	if _, err := tc.recv(); err != io.EOF {
		t.Fatalf("after shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestConfigErrors(t *testing.T) {
	ln, _ := listen(t)
	m := NewMemBackend(4096)
	for _, exps := range [][]Export{
		nil,
		{{Name: "a", Backend: m}, {Name: "a", Backend: m}},
		{{Name: "a"}},
		{{Name: "a", Backend: m, MinBlock: 3}},
		{{Name: "a", Backend: m, MinBlock: 128 << 10}},
	} {
		ctx, cancel := contextWithCancel()
		if err := (&Server{Exports: exps}).Serve(ctx, ln); err == nil {
			t.Errorf("exports %+v accepted", exps)
		}
		cancel()
	}
}

// TestClientVanishes: a client that closes its socket with requests in
// flight, or stops reading replies, leaves nothing behind once the server
// stops (startServer's cleanup waits for Serve to return).
func TestClientVanishes(t *testing.T) {
	s, m := memServer()
	m.Hook = func(op string, off, n int64) error {
		time.Sleep(time.Millisecond)
		return nil
	}
	addr := startServer(t, s)
	tc := connect(t, addr, "disk")
	for i := range 100 {
		tc.send(Request{Type: CmdWrite, Handle: uint64(i), Offset: uint64(i) * 4096, Length: 4096}, make([]byte, 4096))
	}
	tc.c.Close()

	// This one never reads: the server blocks sending 1 MiB replies.
	tc = connect(t, addr, "disk")
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range 64 {
			if _, err := tc.c.Write(AppendRequest(nil, Request{Type: CmdRead, Handle: uint64(i), Length: 1 << 20})); err != nil {
				return
			}
		}
	}()
	select {
	case <-sent:
	case <-time.After(2 * time.Second):
	}
}
