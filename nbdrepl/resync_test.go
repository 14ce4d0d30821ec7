package nbdrepl

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func waitUpToDate(t testing.TB, p *Peer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for p.State() != PeerUpToDate {
		if time.Now().After(deadline) {
			t.Fatalf("peer %s is %s with %d bytes out of sync (err %v)", p.Name(), p.State(), p.OutOfSync(), p.Err())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := p.OutOfSync(); n != 0 {
		t.Fatalf("UpToDate with %d bytes out of sync", n)
	}
}

// waitSecondary waits until the secondary applied the primary's last seq.
func waitApplied(t testing.TB, r *Replicated, ts *testSec) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for ts.sec.Applied() != r.Seq() {
		if time.Now().After(deadline) {
			t.Fatalf("secondary applied %d, primary at %d", ts.sec.Applied(), r.Seq())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func disconnect(t testing.TB, r *Replicated, ts *testSec, name string) *Peer {
	t.Helper()
	p := r.Peer(name)
	p.Disconnect()
	p.Wait()
	ts.result(t)
	return p
}

func TestReplResyncDirtyOnly(t *testing.T) {
	for _, proto := range []Protocol{ProtocolA, ProtocolC} {
		t.Run(proto.String(), func(t *testing.T) {
			const size, gran = 4 << 20, 4096
			r, pm, secs := replSetup(t, proto, size, 2, func(c *ReplConfig) { c.DirtyGranularity = gran })
			old := disconnect(t, r, secs[1], "s1")
			if old.State() != PeerDisconnected {
				t.Fatalf("state %s", old.State())
			}
			rng := rand.New(rand.NewPCG(1, 2))
			chunks := map[int64]bool{}
			for range 40 {
				c := rng.Int64N(size / gran)
				for range 1 + rng.IntN(2) { // some chunks written twice
					off := c*gran + rng.Int64N(gran-100)
					if _, err := r.WriteAt(randBytes(rng, 1+rng.IntN(100)), off); err != nil {
						t.Fatal(err)
					}
				}
				chunks[c] = true
			}
			if got, want := old.OutOfSync(), int64(len(chunks))*gran; got != want {
				t.Fatalf("out of sync %d, want %d", got, want)
			}
			p := attach(t, r, secs[1], "s1")
			waitUpToDate(t, p)
			r.Flush()
			waitApplied(t, r, secs[1])
			if !bytes.Equal(secs[1].mem.Bytes(), pm.Bytes()) {
				t.Fatal("resynced secondary differs from the primary")
			}
			if !bytes.Equal(secs[0].mem.Bytes(), pm.Bytes()) {
				t.Fatal("other secondary differs from the primary")
			}
			want := int64(len(chunks)) * gran
			if got := p.ResyncBytes(); got != want {
				t.Fatalf("resync sent %d bytes (cost), want %d for %d dirty chunks", got, want, len(chunks))
			}
			t.Logf("resynced %d chunks = %d bytes of a %d-byte volume", len(chunks), int64(len(chunks))*gran, int64(size))
		})
	}
}

func TestReplResyncUnderWrites(t *testing.T) {
	const size, gran = 2 << 20, 4096
	r, pm, secs := replSetup(t, ProtocolB, size, 1, func(c *ReplConfig) { c.DirtyGranularity = gran })
	disconnect(t, r, secs[0], "s0")
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		if _, err := r.WriteAt(randBytes(rng, 1+rng.IntN(3*gran)), rng.Int64N(size-3*gran)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := r.WriteAt(randBytes(rng, 1+rng.IntN(2*gran)), rng.Int64N(size-2*gran)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	p := attach(t, r, secs[0], "s0")
	waitUpToDate(t, p)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	r.Flush()
	waitApplied(t, r, secs[0])
	if !bytes.Equal(secs[0].mem.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs after resync under writes")
	}
}

func TestReplResyncInterrupted(t *testing.T) {
	const size, gran = 4 << 20, 4096
	r, pm, secs := replSetup(t, ProtocolC, size, 1, func(c *ReplConfig) { c.DirtyGranularity = gran })
	disconnect(t, r, secs[0], "s0")
	// Dirty every other chunk.
	for c := int64(0); c < size/gran; c += 2 {
		if _, err := r.WriteAt([]byte{byte(c), 1, 2}, c*gran+5); err != nil {
			t.Fatal(err)
		}
	}
	total := r.Peer("s0").OutOfSync()
	// Slow the secondary's store so the resync is cut in the middle.
	sm := secs[0].mem
	sm.Hook = func(op string, off, length int64) error {
		if op == "write" {
			time.Sleep(50 * time.Microsecond)
		}
		return nil
	}
	p := attach(t, r, secs[0], "s0")
	deadline := time.Now().Add(10 * time.Second)
	for p.OutOfSync() == total && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	disconnect(t, r, secs[0], "s0")
	left := p.OutOfSync()
	t.Logf("interrupted with %d of %d bytes left", left, total)
	if left == 0 || left == total {
		t.Skipf("resync not interrupted mid-way (%d of %d left)", left, total)
	}
	if _, err := r.WriteAt([]byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	sm.Hook = nil
	p2 := attach(t, r, secs[0], "s0")
	waitUpToDate(t, p2)
	r.Flush()
	waitApplied(t, r, secs[0])
	if !bytes.Equal(sm.Bytes(), pm.Bytes()) {
		t.Fatal("secondary differs after the second resync")
	}
	if got := p2.ResyncBytes(); got > left+gran || got == 0 {
		t.Fatalf("second resync sent %d (cost), %d bytes were left", got, left)
	}
}
