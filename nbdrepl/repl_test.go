package nbdrepl

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

var testSecret = []byte("tachy test secret, 32 bytes long")

// testSec is a secondary serving on loopback TCP.
type testSec struct {
	sec  *Secondary
	mem  *MemBackend // nil unless it is one
	addr string
	errs chan error // ServeConn's result, one per connection
}

func startSecondary(t testing.TB, mem *MemBackend, volume string, secret []byte) *testSec {
	t.Helper()
	ts := startSecondaryBackend(t, mem, volume, secret)
	ts.mem = mem
	return ts
}

func startSecondaryBackend(t testing.TB, be Backend, volume string, secret []byte) *testSec {
	t.Helper()
	ts := &testSec{
		sec:  &Secondary{Backend: be, Volume: volume, Secret: secret, Logger: testLogger(t)},
		errs: make(chan error, 16),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ts.errs <- ts.sec.ServeConn(ctx, c)
			}()
		}
	}()
	return ts
}

// result waits for the secondary's connection to end.
func (ts *testSec) result(t testing.TB) error {
	t.Helper()
	select {
	case err := <-ts.errs:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("secondary's connection did not end")
		return nil
	}
}

func newPrimary(t testing.TB, local Backend, proto Protocol, mod ...func(*ReplConfig)) *Replicated {
	t.Helper()
	cfg := ReplConfig{Volume: "vol0", Secret: testSecret, Protocol: proto, Logger: testLogger(t)}
	for _, m := range mod {
		m(&cfg)
	}
	r, err := NewReplicated(local, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func attach(t testing.TB, r *Replicated, ts *testSec, name string) *Peer {
	t.Helper()
	p, err := r.Dial(context.Background(), ts.addr, name)
	if err != nil {
		t.Fatalf("attaching %s: %v", name, err)
	}
	return p
}

// replSetup: a primary over a memory backend and n secondaries.
func replSetup(t testing.TB, proto Protocol, size int64, n int, mod ...func(*ReplConfig)) (*Replicated, *MemBackend, []*testSec) {
	t.Helper()
	pm := NewMemBackend(size)
	r := newPrimary(t, pm, proto, mod...)
	var secs []*testSec
	for i := range n {
		ts := startSecondary(t, NewMemBackend(size), "vol0", testSecret)
		attach(t, r, ts, "s"+string(rune('0'+i)))
		secs = append(secs, ts)
	}
	return r, pm, secs
}

// gatedMem is a memory backend whose writes block while the gate is closed.
func gatedMem(size int64) (*MemBackend, func()) {
	m := NewMemBackend(size)
	gate := make(chan struct{})
	m.Hook = func(op string, off, length int64) error {
		if op == "write" {
			<-gate
		}
		return nil
	}
	var once sync.Once
	return m, func() { once.Do(func() { close(gate) }) }
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestReplMirrors applies a random mix of writes (some FUA, some split
// into several frames), trims, write-zeroes and flushes through the
// Backend API under each protocol and checks that both secondaries end up
// identical to the primary.
func TestReplMirrors(t *testing.T) {
	for _, proto := range []Protocol{ProtocolA, ProtocolB, ProtocolC} {
		t.Run(proto.String(), func(t *testing.T) {
			const size = 16 << 20
			r, pm, secs := replSetup(t, proto, size, 2)
			rng := rand.New(rand.NewPCG(1, uint64(proto)))
			for i := range 300 {
				off := rng.Int64N(size - 1)
				n := min(rng.Int64N(64<<10)+1, size-off)
				var err error
				switch k := rng.IntN(10); {
				case k < 5:
					_, err = r.WriteAt(randBytes(rng, int(n)), off)
				case k == 5:
					_, err = r.WriteAtFUA(randBytes(rng, int(n)), off)
				case k == 6:
					err = r.Trim(off, n)
				case k == 7:
					err = r.WriteZeroes(off, n, rng.IntN(2) == 0)
				case k == 8:
					err = r.Sync(off, n)
				default:
					err = r.Flush()
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			// A write of 9 MiB travels as three frames.
			big := randBytes(rng, 9<<20)
			if _, err := r.WriteAt(big, 4096); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			want := pm.Bytes()
			for i, ts := range secs {
				if !bytes.Equal(ts.mem.Bytes(), want) {
					t.Errorf("secondary %d differs from the primary after Flush", i)
				}
				if got := ts.sec.Applied(); got != r.Seq() {
					t.Errorf("secondary %d applied seq %d, primary at %d", i, got, r.Seq())
				}
				if f, s := ts.mem.Counts(); f == 0 || s == 0 {
					t.Errorf("secondary %d: %d flushes, %d syncs; FLUSH and FUA did not reach it", i, f, s)
				}
			}
			for _, p := range r.Peers() {
				if !p.Connected() || p.Dirty().Count() != 0 {
					t.Errorf("peer %s: connected %v, dirty %d (%v)", p.Name(), p.Connected(), p.Dirty().Count(), p.Err())
				}
			}
		})
	}
}

// TestReplConcurrentOverlapping has writers hammer overlapping ranges
// concurrently: the secondaries must apply them in the primary's order.
func TestReplConcurrentOverlapping(t *testing.T) {
	const size = 256 << 10
	r, pm, secs := replSetup(t, ProtocolA, size, 3)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 400 {
				off := rng.Int64N(size - 8192)
				b := bytes.Repeat([]byte{byte(w + 1)}, 1+rng.IntN(8192))
				if _, err := r.WriteAt(b, off); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, ts := range secs {
		if !bytes.Equal(ts.mem.Bytes(), pm.Bytes()) {
			t.Errorf("secondary %d diverged from the primary", i)
		}
	}
}

// TestReplProtocolSemantics blocks the secondary's store and checks when
// a write completes under each protocol.
func TestReplProtocolSemantics(t *testing.T) {
	data := bytes.Repeat([]byte{0xcd}, 4096)
	for _, proto := range []Protocol{ProtocolA, ProtocolB, ProtocolC} {
		t.Run(proto.String(), func(t *testing.T) {
			sm, open := gatedMem(1 << 20)
			defer open()
			ts := startSecondary(t, sm, "vol0", testSecret)
			r := newPrimary(t, NewMemBackend(1<<20), proto)
			p := attach(t, r, ts, "s")
			done := make(chan error, 1)
			go func() { _, err := r.WriteAt(data, 8192); done <- err }()
			select {
			case err := <-done:
				if proto == ProtocolC {
					t.Fatalf("protocol C: write completed (%v) while the secondary's store was blocked", err)
				}
				done <- err
			case <-time.After(300 * time.Millisecond):
				if proto != ProtocolC {
					t.Fatalf("protocol %v: write did not complete while the secondary's store was blocked", proto)
				}
			}
			if proto == ProtocolB {
				// Acknowledged: the secondary holds it in memory, not on its store.
				if got := ts.sec.Received(); got != 1 {
					t.Errorf("protocol B: write completed, secondary received seq %d", got)
				}
				if recv, _ := p.Acked(); recv != 1 {
					t.Errorf("protocol B: primary saw receipt of seq %d", recv)
				}
				if ts.sec.Applied() != 0 || bytes.Equal(sm.Bytes()[8192:8192+4096], data) {
					t.Error("protocol B: store written although blocked")
				}
			}
			// A flush completes only once the secondary's store has it, whatever the protocol.
			fl := make(chan error, 1)
			go func() { fl <- r.Flush() }()
			select {
			case err := <-fl:
				t.Fatalf("Flush completed (%v) while the secondary's store was blocked", err)
			case <-time.After(200 * time.Millisecond):
			}
			open()
			if err := <-fl; err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sm.Bytes()[8192:8192+4096], data) {
				t.Fatal("flushed write missing on the secondary's store")
			}
			if f, _ := sm.Counts(); f == 0 {
				t.Error("the secondary did not flush its store")
			}
			// Protocol C: a completed write is on the secondary's store at once.
			if proto == ProtocolC {
				for i := range 50 {
					b := bytes.Repeat([]byte{byte(i)}, 512)
					r.WriteAt(b, int64(i)*512)
					if !bytes.Equal(sm.Bytes()[i*512:(i+1)*512], b) {
						t.Fatalf("protocol C: write %d completed before reaching the secondary's store", i)
					}
				}
			}
		})
	}
}

// TestReplFUA: under protocol A a FUA write still waits for the secondary
// to have it durable.
func TestReplFUA(t *testing.T) {
	sm, open := gatedMem(1 << 20)
	defer open()
	ts := startSecondary(t, sm, "vol0", testSecret)
	r := newPrimary(t, NewMemBackend(1<<20), ProtocolA)
	attach(t, r, ts, "s")
	done := make(chan error, 1)
	go func() { _, err := r.WriteAtFUA(bytes.Repeat([]byte{1}, 4096), 0); done <- err }()
	select {
	case <-done:
		t.Fatal("FUA write completed while the secondary's store was blocked")
	case <-time.After(200 * time.Millisecond):
	}
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, syncs := sm.Counts(); syncs != 1 || sm.Bytes()[0] != 1 {
		t.Fatalf("FUA write: secondary syncs %d, data %d", syncs, sm.Bytes()[0])
	}
}

// TestReplDisconnect: a secondary that goes away does not block the
// primary, and what it missed is in its dirty bitmap.
func TestReplDisconnect(t *testing.T) {
	const size, gran = 1 << 20, 8192
	r, pm, secs := replSetup(t, ProtocolC, size, 2, func(c *ReplConfig) { c.DirtyGranularity = gran })
	if _, err := r.WriteAt(bytes.Repeat([]byte{1}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	gone := r.Peer("s1")
	gone.Disconnect()
	gone.Wait()
	if err := secs[1].result(t); err != nil {
		t.Logf("secondary s1 ended with: %v", err)
	}
	start := time.Now()
	writes := [][2]int64{{100 << 10, 10}, {300<<10 - 1, 2}, {900 << 10, 20 << 10}}
	for _, w := range writes {
		if _, err := r.WriteAt(bytes.Repeat([]byte{2}, int(w[1])), w[0]); err != nil {
			t.Fatal(err)
		}
	}
	r.Trim(512<<10, 4096)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("writes took %v with a secondary gone", d)
	}
	if gone.Connected() || gone.Err() == nil {
		t.Fatal("peer still connected")
	}
	// 8 KiB chunks: 100K+10 is in chunk 12, 300K-1..300K in chunk 37, 900K+20K in chunks 112..114.
	want := [][2]int64{{12 * gran, 13 * gran}, {37 * gran, 38 * gran}, {64 * gran, 65 * gran}, {112 * gran, 115 * gran}}
	if got := gone.Dirty().Ranges(); !equalRanges(got, want) {
		t.Errorf("dirty ranges %v, want %v", got, want)
	}
	if !gone.Dirty().IsDirty(100<<10, 1) || gone.Dirty().IsDirty(0, 4096) {
		t.Error("IsDirty wrong")
	}
	if n := r.Peer("s0").Dirty().Count(); n != 0 {
		t.Errorf("connected secondary has %d dirty chunks", n)
	}
	if !bytes.Equal(secs[0].mem.Bytes(), pm.Bytes()) {
		t.Error("the remaining secondary differs")
	}
	// Reattaching the secondary resyncs its dirty chunks.
	p := attach(t, r, secs[1], "s1")
	waitUpToDate(t, p)
	if !bytes.Equal(secs[1].mem.Bytes(), pm.Bytes()) {
		t.Error("the resynced secondary differs")
	}
}

func equalRanges(a, b [][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReplAckTimeout: a secondary that stops acknowledging is disconnected
// after Timeout and its writes are marked dirty, including the ones sent
// but never acknowledged.
func TestReplAckTimeout(t *testing.T) {
	sm, open := gatedMem(1 << 20)
	defer open()
	ts := startSecondary(t, sm, "vol0", testSecret)
	r := newPrimary(t, NewMemBackend(1<<20), ProtocolC, func(c *ReplConfig) { c.Timeout = 300 * time.Millisecond })
	p := attach(t, r, ts, "s")
	start := time.Now()
	if _, err := r.WriteAt(make([]byte, 4096), 64<<10); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("write returned after %v, want about the 300ms timeout", d)
	}
	if p.Connected() || !strings.Contains(p.Err().Error(), "no acknowledgement") {
		t.Fatalf("peer: connected %v, err %v", p.Connected(), p.Err())
	}
	if !p.Dirty().IsDirty(64<<10, 4096) {
		t.Error("unacknowledged write not dirty")
	}
}

// TestReplHandshakeErrors: wrong secret, volume or size are rejected with
// clear errors on both sides, and nothing is applied.
func TestReplHandshakeErrors(t *testing.T) {
	cases := []struct {
		name, volume string
		secret       []byte
		size         int64
		primErr      string
		secErr       string
	}{
		{"wrong secret", "vol0", []byte("another secret of sufficient size"), 1 << 20,
			"did not prove knowledge of the shared secret", "rejected our proof"},
		{"wrong volume", "vol1", testSecret, 1 << 20, `secondary refused: volume "vol0", this secondary serves "vol1"`, "vol1"},
		{"wrong size", "vol0", testSecret, 2 << 20, "has 1048576 bytes on the primary, 2097152 here", "2097152 here"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sm := NewMemBackend(tc.size)
			ts := startSecondary(t, sm, tc.volume, tc.secret)
			r := newPrimary(t, NewMemBackend(1<<20), ProtocolC)
			_, err := r.Dial(context.Background(), ts.addr, "s")
			if err == nil || !strings.Contains(err.Error(), tc.primErr) {
				t.Fatalf("primary: %v, want %q", err, tc.primErr)
			}
			if tc.name == "wrong secret" && !errors.Is(err, ErrAuth) {
				t.Errorf("primary error %v is not ErrAuth", err)
			}
			serr := ts.result(t)
			if serr == nil || !strings.Contains(serr.Error(), tc.secErr) {
				t.Fatalf("secondary: %v, want %q", serr, tc.secErr)
			}
			t.Logf("primary: %v\nsecondary: %v", err, serr)
			r.WriteAt([]byte{1}, 0)
			r.Flush()
			if len(r.Peers()) != 0 || ts.sec.Received() != 0 || !bytes.Equal(sm.Bytes(), make([]byte, tc.size)) {
				t.Fatal("something was replicated after a failed handshake")
			}
		})
	}
	// The secondary also rejects a primary that does not know the secret:
	// a fake primary answers the challenge with a guessed MAC.
	t.Run("forged proof", func(t *testing.T) {
		sm := NewMemBackend(1 << 20)
		ts := startSecondary(t, sm, "vol0", testSecret)
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(appendHello(nil, hello{Version: ReplVersion, Protocol: ProtocolC, Volume: "vol0", Size: 1 << 20}))
		buf := make([]byte, challengeSize)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		c.Write(make([]byte, authSize)) // status ok, MAC of zeroes
		c.Write(appendFrameHeader(nil, Frame{Type: FrameWrite, Seq: 1, Data: []byte{1}}))
		serr := ts.result(t)
		if !errors.Is(serr, ErrAuth) || !strings.Contains(serr.Error(), "did not prove") {
			t.Fatalf("secondary: %v", serr)
		}
		if ts.sec.Received() != 0 || sm.Bytes()[0] != 0 {
			t.Fatal("applied a frame from an unauthenticated primary")
		}
	})
	t.Run("version", func(t *testing.T) {
		ts := startSecondary(t, NewMemBackend(1<<20), "vol0", testSecret)
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(appendHello(nil, hello{Version: 9, Protocol: ProtocolC, Volume: "vol0", Size: 1 << 20}))
		if serr := ts.result(t); serr == nil || !strings.Contains(serr.Error(), "version 9") {
			t.Fatalf("secondary: %v", serr)
		}
	})
}

// TestReplSecondPrimary: a secondary serves one primary at a time.
func TestReplSecondPrimary(t *testing.T) {
	ts := startSecondary(t, NewMemBackend(1<<20), "vol0", testSecret)
	r1 := newPrimary(t, NewMemBackend(1<<20), ProtocolC)
	attach(t, r1, ts, "s")
	r2 := newPrimary(t, NewMemBackend(1<<20), ProtocolC)
	if _, err := r2.Dial(context.Background(), ts.addr, "s"); err == nil || !strings.Contains(err.Error(), "already has a primary") {
		t.Fatalf("second primary: %v", err)
	}
	if _, err := r1.WriteAt([]byte{7}, 0); err != nil || ts.mem.Bytes()[0] != 7 {
		t.Fatalf("first primary no longer replicating: %v", err)
	}
}
