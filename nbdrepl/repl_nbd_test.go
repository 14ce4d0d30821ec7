package nbdrepl

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestReplNBD serves a Replicated volume over NBD: writes, FUA writes,
// trims, write-zeroes and flushes from an NBD client reach the secondary,
// and under protocol C an acknowledged write is on its store at once.
func TestReplNBD(t *testing.T) {
	const size = 4 << 20
	r, pm, secs := replSetup(t, ProtocolC, size, 2)
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: r}}})
	tc := connect(t, addr, "disk")
	if tc.flags&FlagSendFUA == 0 || tc.flags&FlagSendFlush == 0 {
		t.Fatalf("transmission flags 0x%x lack FLUSH/FUA", tc.flags)
	}
	h := uint64(0)
	for i := range 64 {
		data := bytes.Repeat([]byte{byte(i + 1)}, 8192)
		off := uint64(i) * 12288
		var flags uint16
		if i%4 == 0 {
			flags = CmdFlagFUA
		}
		h++
		if rep := tc.do(Request{Type: CmdWrite, Flags: flags, Handle: h, Offset: off, Length: uint32(len(data))}, data); rep.errno != 0 {
			t.Fatalf("write: errno %d", rep.errno)
		}
		for _, ts := range secs {
			if !bytes.Equal(ts.mem.Bytes()[off:off+8192], data) {
				t.Fatalf("protocol C: NBD write %d acknowledged before it was on the secondary's store", i)
			}
		}
	}
	h++
	tc.do(Request{Type: CmdTrim, Handle: h, Offset: 0, Length: 4096}, nil)
	h++
	tc.do(Request{Type: CmdWriteZeroes, Flags: CmdFlagNoHole, Handle: h, Offset: 1 << 20, Length: 65536}, nil)
	// Many requests in flight at once.
	for i := range 100 {
		h++
		tc.send(Request{Type: CmdWrite, Handle: h, Offset: uint64(2<<20 + i*4096), Length: 4096}, bytes.Repeat([]byte{0xee}, 4096))
	}
	for range 100 {
		if rep := tc.mustRecv(); rep.errno != 0 {
			t.Fatalf("errno %d", rep.errno)
		}
	}
	h++
	if rep := tc.do(Request{Type: CmdFlush, Handle: h}, nil); rep.errno != 0 {
		t.Fatalf("flush: errno %d", rep.errno)
	}
	tc.disconnect()
	for i, ts := range secs {
		if !bytes.Equal(ts.mem.Bytes(), pm.Bytes()) {
			t.Errorf("secondary %d differs from the primary", i)
		}
		if _, syncs := ts.mem.Counts(); syncs < 16 {
			t.Errorf("secondary %d: %d syncs for 16 FUA writes", i, syncs)
		}
	}
}

// TestReplInteropNbdcopy: nbdcopy (several connections, many requests in
// flight) into a protocol A volume with two secondaries. Protocol A does
// not wait for the secondaries, but nbdcopy's final flush does: once
// nbdcopy exits, both secondaries hold the whole image.
func TestReplInteropNbdcopy(t *testing.T) {
	nbdcopy := needTool(t, "nbdcopy")
	const size = 8 << 20
	r, _, secs := replSetup(t, ProtocolA, size, 2)
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: r}}, Workers: 4})
	data := make([]byte, size)
	rand.Read(data)
	clear(data[3<<20 : 4<<20])
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, nbdcopy, "--flush", src, "nbd://"+addr+"/disk")
	for i, ts := range secs {
		if !bytes.Equal(ts.mem.Bytes(), data) {
			t.Errorf("secondary %d differs from the source after nbdcopy --flush", i)
		}
		if f, _ := ts.mem.Counts(); f == 0 {
			t.Errorf("secondary %d never flushed", i)
		}
	}
}

// TestReplInteropQemuIO: qemu-io against a protocol B volume whose
// secondary stores to a file; the secondary's file ends up identical to
// the primary's.
func TestReplInteropQemuIO(t *testing.T) {
	qemuIO := needTool(t, "qemu-io")
	const size = 4 << 20
	pf, ppath := fileExport(t, "primary", size)
	sf, spath := fileExport(t, "secondary", size)
	cs := &countingBackend{Backend: sf}
	ts := startSecondaryBackend(t, cs, "vol0", testSecret)
	r := newPrimary(t, pf, ProtocolB)
	attach(t, r, ts, "s")
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: r}}})
	out := runTool(t, qemuIO, "-f", "raw",
		"-c", "write -P 0x55 2M 1M",
		"-c", "write -P 0xab 0 1M",
		"-c", "flush",
		"-c", "write -z 1M 1M",
		"-c", "write -P 0x11 -f 3M 4k",
		"-c", "discard 2M 1M",
		"-c", "flush",
		"nbd://"+addr+"/disk")
	t.Logf("qemu-io:\n%s", out)
	pb, _ := os.ReadFile(ppath)
	sb, _ := os.ReadFile(spath)
	if !bytes.Equal(pb, sb) {
		t.Fatal("the secondary's file differs from the primary's")
	}
	if !bytes.Equal(sb[:1<<20], bytes.Repeat([]byte{0xab}, 1<<20)) || !bytes.Equal(sb[3<<20:3<<20+4096], bytes.Repeat([]byte{0x11}, 4096)) {
		t.Fatal("the secondary's file lacks qemu-io's data")
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	t.Logf("secondary backend calls: %v", cs.n)
	for _, op := range []string{"flush", "zero", "trim", "sync"} {
		if cs.n[op] == 0 {
			t.Errorf("qemu-io's %s never reached the secondary's backend", op)
		}
	}
}

// BenchmarkReplWrite: write throughput through a Replicated volume with
// one secondary over loopback TCP, memory backends on both sides, per
// protocol and write size, with 8 concurrent writers.
func BenchmarkReplWrite(b *testing.B) {
	for _, proto := range []Protocol{0, ProtocolA, ProtocolB, ProtocolC} {
		for _, bs := range []int{4 << 10, 64 << 10} {
			name := fmt.Sprintf("%v/%dk", proto, bs>>10)
			if proto == 0 {
				name = fmt.Sprintf("local/%dk", bs>>10) // no secondary
			}
			b.Run(name, func(b *testing.B) {
				const size = 64 << 20
				var be Backend = NewMemBackend(size)
				if proto != 0 {
					r, _, _ := replSetup(b, proto, size, 1)
					be = r
				}
				b.SetBytes(int64(bs))
				b.SetParallelism(4) // 4 x GOMAXPROCS writers
				var mu sync.Mutex
				next := int64(0)
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, bs)
					for pb.Next() {
						mu.Lock()
						off := next % (size - int64(bs))
						next += int64(bs)
						mu.Unlock()
						if _, err := be.WriteAt(buf, off); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				if err := be.Flush(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// TestReplNBDPooledPayloads: NBD write payloads are pooled and shared by
// the local write and every secondary's queue until each is done with it.
// Many writes of distinct random data in flight at once, under protocol A
// (which does not wait for the secondaries), with one fast secondary and
// one slow one whose queue holds payloads long after the fast one sent
// them, and reads in between: a payload given back to the pool while a
// queue still held it would reach the slow secondary as another write's
// data.
func TestReplNBDPooledPayloads(t *testing.T) {
	const size, inFlight = 16 << 20, 48
	const slot = size / inFlight // the writes in flight at once do not overlap: their order is the server's
	pm := NewMemBackend(size)
	r := newPrimary(t, pm, ProtocolA)
	slowMem := NewMemBackend(size)
	slowMem.Hook = func(op string, off, length int64) error {
		if op == "write" {
			time.Sleep(500 * time.Microsecond)
		}
		return nil
	}
	var secs []*testSec
	for i, m := range []*MemBackend{NewMemBackend(size), slowMem} {
		ts := startSecondary(t, m, "vol0", testSecret)
		attach(t, r, ts, fmt.Sprintf("s%d", i))
		secs = append(secs, ts)
	}
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: r}}})
	tc := connect(t, addr, "disk")
	model := make([]byte, size)
	rng := mrand.New(mrand.NewPCG(1, 2))
	h := uint64(0)
	for batch := range 12 {
		type op struct {
			off  uint64
			data []byte
		}
		var ops []op
		for i := range inFlight {
			n := 4096 << rng.IntN(7) // 4 KiB to 256 KiB: several pool classes
			off := uint64(i*slot+rng.IntN(slot-n)) &^ 511
			data := make([]byte, n)
			rand.Read(data)
			copy(model[off:], data)
			ops = append(ops, op{off, data})
			h++
			tc.send(Request{Type: CmdWrite, Handle: h, Offset: off, Length: uint32(n)}, data)
		}
		for range ops {
			if rep := tc.mustRecv(); rep.errno != 0 {
				t.Fatalf("batch %d: write errno %d", batch, rep.errno)
			}
		}
		// Read back what the batch wrote (read replies are pooled too).
		for _, o := range ops[:8] {
			h++
			rep := tc.do(Request{Type: CmdRead, Handle: h, Offset: o.off, Length: uint32(len(o.data))}, nil)
			if rep.errno != 0 || !bytes.Equal(rep.data, model[o.off:o.off+uint64(len(o.data))]) {
				t.Fatalf("batch %d: read at %d: errno %d or other data", batch, o.off, rep.errno)
			}
		}
	}
	h++
	if rep := tc.do(Request{Type: CmdFlush, Handle: h}, nil); rep.errno != 0 {
		t.Fatalf("flush: errno %d", rep.errno)
	}
	tc.disconnect()
	if !bytes.Equal(pm.Bytes(), model) {
		t.Fatal("the primary's store differs from what was written")
	}
	for i, ts := range secs {
		if !bytes.Equal(ts.mem.Bytes(), model) {
			t.Errorf("secondary %d differs from what was written", i)
		}
	}
}
