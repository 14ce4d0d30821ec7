package nbdrepl

import (
	"bytes"
	"errors"
	"math/rand"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// volPair makes two volumes (n1, n2) on loopback that name each other as
// peers, both secondary.
func volPair(t *testing.T, size int64, mod ...func(*VolumeConfig)) (*Volume, *Volume, *MemBackend, *MemBackend) {
	t.Helper()
	ln1, a1 := listen(t)
	ln2, a2 := listen(t)
	secret := bytes.Repeat([]byte("k"), 32)
	mk := func(node string, ln net.Listener, peer VolumePeer) (*Volume, *MemBackend) {
		mem := NewMemBackend(size)
		cfg := VolumeConfig{Name: "vol", Node: node, Backend: mem, Secret: secret, Protocol: ProtocolC, Listener: ln,
			Peers: []VolumePeer{peer}, NBDListen: "127.0.0.1:0", Timeout: 5 * time.Second, Reconnect: 20 * time.Millisecond, Logger: testLogger(t)}
		for _, m := range mod {
			m(&cfg)
		}
		v, err := NewVolume(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Stop() })
		return v, mem
	}
	v1, m1 := mk("n1", ln1, VolumePeer{Name: "n2", Addr: a2})
	v2, m2 := mk("n2", ln2, VolumePeer{Name: "n1", Addr: a1})
	return v1, v2, m1, m2
}

// eventually polls cond for up to 20 s (loose: never a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func peerState(v *Volume, name string) string {
	for _, p := range v.Status().Peers {
		if p.Name == name {
			return p.State
		}
	}
	return ""
}

func mustRefuse(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrPromote) {
		t.Fatalf("promote: %v, want a refusal (%s)", err, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("promote refused with %q, want it to say %q", err, want)
	}
}

func nbdWrite(t *testing.T, v *Volume, off int64, data []byte) uint32 {
	t.Helper()
	tc := connect(t, v.NBDAddr().String(), "vol")
	defer tc.c.Close()
	return tc.do(Request{Type: CmdWrite, Handle: 1, Offset: uint64(off), Length: uint32(len(data))}, data).errno
}

func TestVolumePromoteDemote(t *testing.T) {
	const size = 1 << 20
	v1, v2, m1, m2 := volPair(t, size)
	if v1.Role() != RoleSecondary || v2.Role() != RoleSecondary {
		t.Fatal("volumes do not start as secondaries")
	}
	// Fresh metadata holds no data yet: the first primary needs no force.
	if st := v1.Status(); st.Disk != "Consistent" {
		t.Fatalf("fresh volume: disk %s", st.Disk)
	}
	if err := v1.Promote(false); err != nil {
		t.Fatal(err)
	}
	if err := v1.Promote(false); err != nil {
		t.Fatalf("promoting a primary again: %v", err)
	}
	eventually(t, "n2 UpToDate on n1", func() bool { return peerState(v1, "n2") == string(PeerUpToDate) })
	eventually(t, "n2 sees n1 as its primary", func() bool { return v2.Status().Primary == "n1" })
	if st := v2.Status(); st.Disk != "UpToDate" || st.Role != RoleSecondary {
		t.Fatalf("n2: %+v", st)
	}
	a := bytes.Repeat([]byte{0xa1}, 8192)
	if e := nbdWrite(t, v1, 4096, a); e != 0 {
		t.Fatalf("write through n1's export: errno %d", e)
	}
	// Protocol C: acknowledged means on n2's store.
	if !bytes.Equal(m2.Bytes()[4096:4096+8192], a) {
		t.Fatal("an acknowledged protocol C write is not on the secondary")
	}
	// Two primaries would split the data.
	mustRefuse(t, v2.Promote(false), "n1 is primary and connected")
	mustRefuse(t, v2.Promote(true), "n1 is primary and connected")

	if err := v1.Demote(); err != nil {
		t.Fatal(err)
	}
	if v1.NBDAddr() != nil || v1.Role() != RoleSecondary {
		t.Fatal("a demoted volume still exports or is not secondary")
	}
	eventually(t, "n2 to lose its primary", func() bool { return v2.Status().Primary == "" })
	// n2 was in sync when n1 left: UpToDate, promotable without force.
	if st := v2.Status(); st.Disk != "UpToDate" {
		t.Fatalf("n2 after n1's demotion: disk %s", st.Disk)
	}
	if err := v2.Promote(false); err != nil {
		t.Fatal(err)
	}
	tc := connect(t, v2.NBDAddr().String(), "vol")
	rep := tc.do(Request{Type: CmdRead, Handle: 2, Offset: 4096, Length: 8192}, nil)
	tc.c.Close()
	if rep.errno != 0 || !bytes.Equal(rep.data, a) {
		t.Fatalf("reading n1's write on the new primary: errno %d, equal %v", rep.errno, bytes.Equal(rep.data, a))
	}
	// The new primary dials the old one, which follows.
	eventually(t, "n1 UpToDate on n2", func() bool { return peerState(v2, "n1") == string(PeerUpToDate) })
	b := bytes.Repeat([]byte{0xb2}, 4096)
	if e := nbdWrite(t, v2, 64<<10, b); e != 0 {
		t.Fatalf("write through n2's export: errno %d", e)
	}
	if !bytes.Equal(m1.Bytes(), m2.Bytes()) {
		t.Fatal("n1 differs from n2 after the role swap")
	}
	if l := v2.Status().Peers[0].LatencyUs; l <= 0 {
		t.Fatalf("replication latency %v after a protocol C write", l)
	}
	if st := v1.Status(); st.Primary != "n2" || st.Disk != "UpToDate" {
		t.Fatalf("n1: %+v", st)
	}

	// Operator disconnect: writes are marked, not sent; connect resyncs.
	if err := v2.Disconnect("n1"); err != nil {
		t.Fatal(err)
	}
	if err := v2.Disconnect("n9"); err == nil || !strings.Contains(err.Error(), "peers: n1") {
		t.Fatalf("disconnecting an unknown peer: %v", err)
	}
	eventually(t, "n1 disconnected", func() bool { return peerState(v2, "n1") == string(PeerDisconnected) })
	c := bytes.Repeat([]byte{0xc3}, 4096)
	if e := nbdWrite(t, v2, 128<<10, c); e != 0 {
		t.Fatalf("errno %d", e)
	}
	if st := v2.Status(); st.Peers[0].OutOfSync != 4096 || !st.Peers[0].Manual {
		t.Fatalf("n1 while disconnected: %+v", st.Peers[0])
	}
	time.Sleep(100 * time.Millisecond) // five reconnect intervals: it must stay away
	if peerState(v2, "n1") != string(PeerDisconnected) {
		t.Fatal("an operator-disconnected peer was redialled")
	}
	if err := v2.Connect("n1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 resynced", func() bool { return peerState(v2, "n1") == string(PeerUpToDate) })
	if !bytes.Equal(m1.Bytes(), m2.Bytes()) {
		t.Fatal("n1 differs from n2 after the resync")
	}
	if _, err := v1.Verify("n2", false); err == nil || !strings.Contains(err.Error(), "run this on the primary") {
		t.Fatalf("verify on a secondary: %v", err)
	}
	res, err := v2.Verify("n1", false)
	if err != nil || res.Differ != 0 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

func TestVolumeRefusesStale(t *testing.T) {
	// Data that had a primary once, on a node not in sync with a primary
	// since it started: Consistent, not UpToDate.
	v1, _, _, _ := volPair(t, 1<<20, func(c *VolumeConfig) {
		m, err := NewMemMeta(MetaOptions{Size: c.Backend.Size()})
		if err != nil {
			t.Fatal(err)
		}
		m.SetPrimary(true)
		m.SetPrimary(false)
		c.Meta = m
	})
	mustRefuse(t, v1.Promote(false), "--force")
	if err := v1.Promote(true); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if err := v1.Demote(); err != nil {
		t.Fatal(err)
	}
	// Once primary, it is UpToDate: no force needed.
	if err := v1.Promote(false); err != nil {
		t.Fatal(err)
	}
	if err := v1.Demote(); err != nil {
		t.Fatal(err)
	}
	if err := v1.cfg.Meta.SetConsistent(false); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, v1.Promote(true), "Inconsistent")
	if v1.Role() != RoleSecondary {
		t.Fatal("a refused promotion changed the role")
	}
}

func TestVolumeQuorum(t *testing.T) {
	for _, policy := range []OnNoQuorum{NoQuorumIOError, NoQuorumSuspendIO} {
		t.Run(policy.String(), func(t *testing.T) {
			v1, v2, m1, _ := volPair(t, 1<<20, func(c *VolumeConfig) { c.OnNoQuorum = policy })
			v1.SetQuorum(true)
			v2.SetQuorum(false)
			// A node without quorum is never promoted, even forced.
			mustRefuse(t, v2.Promote(true), "no quorum")
			if err := v1.Promote(true); err != nil {
				t.Fatal(err)
			}
			eventually(t, "n2 UpToDate", func() bool { return peerState(v1, "n2") == string(PeerUpToDate) })
			data := bytes.Repeat([]byte{7}, 4096)
			if e := nbdWrite(t, v1, 0, data); e != 0 {
				t.Fatalf("write with quorum: errno %d", e)
			}
			v1.SetQuorum(false)
			if st := v1.Status(); st.Quorum != "no" {
				t.Fatalf("quorum %q", st.Quorum)
			}
			tc := connect(t, v1.NBDAddr().String(), "vol")
			defer tc.c.Close()
			more := bytes.Repeat([]byte{8}, 4096)
			tc.send(Request{Type: CmdWrite, Handle: 5, Offset: 8192, Length: 4096}, more)
			if policy == NoQuorumIOError {
				if rep := tc.mustRecv(); rep.errno != ErrIO {
					t.Fatalf("write without quorum: errno %d, want EIO", rep.errno)
				}
				if m1.Bytes()[8192] != 0 {
					t.Fatal("a write refused for quorum reached the store")
				}
				return
			}
			eventually(t, "the write to be suspended", func() bool { return v1.Suspended() == 1 })
			time.Sleep(50 * time.Millisecond)
			if m1.Bytes()[8192] != 0 {
				t.Fatal("a suspended write reached the store")
			}
			v1.SetQuorum(true)
			if rep := tc.mustRecv(); rep.errno != 0 {
				t.Fatalf("suspended write after quorum returned: errno %d", rep.errno)
			}
			if !bytes.Equal(m1.Bytes()[8192:8192+4096], more) {
				t.Fatal("the resumed write is not on the store")
			}
			// Suspended again, then demoted: the write fails, the
			// demotion does not hang.
			v1.SetQuorum(false)
			tc.send(Request{Type: CmdWrite, Handle: 6, Offset: 16384, Length: 4096}, more)
			eventually(t, "the write to be suspended", func() bool { return v1.Suspended() == 1 })
			if err := v1.Demote(); err != nil {
				t.Fatal(err)
			}
			if rep, err := tc.recv(); err == nil && rep.errno == 0 {
				t.Fatal("a write suspended across a demotion succeeded")
			}
		})
	}
}

func TestVolumeResync(t *testing.T) {
	v1, v2, m1, m2 := volPair(t, 1<<20)
	if err := v1.Promote(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 UpToDate", func() bool { return peerState(v1, "n2") == string(PeerUpToDate) })
	if err := v2.Resync("n1"); err == nil || !strings.Contains(err.Error(), "run this on the primary") {
		t.Fatalf("resync on a secondary: %v", err)
	}
	data := bytes.Repeat([]byte{9}, 1<<20)
	if e := nbdWrite(t, v1, 0, data); e != 0 {
		t.Fatalf("errno %d", e)
	}
	// Damage n2's copy behind replication's back; a full resync repairs
	// it by sending the whole volume.
	copy(m2.Bytes()[4096:], bytes.Repeat([]byte{1}, 100))
	if err := v1.Resync("n2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resync", func() bool {
		ps := v1.Status().Peers[0]
		return ps.State == string(PeerUpToDate) && ps.Resynced == 1<<20
	})
	if !bytes.Equal(m1.Bytes(), m2.Bytes()) {
		t.Fatal("n2 differs after a full resync")
	}
}

// The primary dies while one secondary lags (protocol A): the other has
// changes the laggard never received. Whichever becomes primary must bring
// the laggard to its data, not leave the two diverged with the same
// generation (the ranges of each secondary's last changes are marked for
// the other replicas when its primary goes away).
func TestVolumeReplicasConverge(t *testing.T) {
	const size = 1 << 20
	secret := bytes.Repeat([]byte("k"), 32)
	var lns []net.Listener
	var addrs []string
	for range 3 {
		ln, a := listen(t)
		lns, addrs = append(lns, ln), append(addrs, a)
	}
	names := []string{"n1", "n2", "n3"}
	var vols []*Volume
	var mems []*MemBackend
	var slow atomic.Bool
	for i, name := range names {
		mem := NewMemBackend(size)
		if name == "n3" {
			mem.Hook = func(op string, off, n int64) error {
				if op == "write" && slow.Load() {
					time.Sleep(5 * time.Millisecond) // a backlog even on a busy machine
				}
				return nil
			}
		}
		var peers []VolumePeer
		for j, other := range names {
			if j != i {
				peers = append(peers, VolumePeer{Name: other, Addr: addrs[j]})
			}
		}
		v, err := NewVolume(VolumeConfig{Name: "vol", Node: name, Backend: mem, Secret: secret, Protocol: ProtocolA, Listener: lns[i],
			Peers: peers, Timeout: 5 * time.Second, Reconnect: 20 * time.Millisecond, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Stop() })
		vols, mems = append(vols, v), append(mems, mem)
	}
	if err := vols[0].Promote(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both secondaries UpToDate", func() bool {
		return peerState(vols[0], "n2") == string(PeerUpToDate) && peerState(vols[0], "n3") == string(PeerUpToDate)
	})
	slow.Store(true)
	r := vols[0].Replicated()
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 64<<10)
	for i := range 400 {
		rng.Read(buf)
		if _, err := r.WriteAt(buf, int64(i%16)*int64(len(buf))); err != nil {
			t.Fatal(err)
		}
	}
	// The primary dies: what it had not sent is gone.
	vols[0].Stop()
	eventually(t, "the secondaries to lose their primary", func() bool {
		return vols[1].Status().Primary == "" && vols[2].Status().Primary == ""
	})
	slow.Store(false)
	if bytes.Equal(mems[1].Bytes(), mems[2].Bytes()) {
		t.Fatal("no divergence to repair: n3 received everything (the test's premise failed)")
	}
	if err := vols[1].Promote(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n3 UpToDate on n2", func() bool { return peerState(vols[1], "n3") == string(PeerUpToDate) })
	if !bytes.Equal(mems[1].Bytes(), mems[2].Bytes()) {
		t.Fatal("n3 still differs from the new primary n2")
	}
	if res, err := vols[1].Verify("n3", false); err != nil || res.Differ != 0 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

// A primary whose node has left the cluster (power cut, reset: its TCP
// connection lingers until the replication timeout) does not block the
// promotion the cluster asks for once membership says it is gone; while
// it is a member, it does.
func TestVolumePromoteOverGonePrimary(t *testing.T) {
	v1, v2, _, _ := volPair(t, 1<<20)
	if err := v1.Promote(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 sees n1 as its primary", func() bool { return v2.Status().Primary == "n1" })
	var gone atomic.Bool
	v2.cfg.PeerGone = func(node string) bool { return node == "n1" && gone.Load() }
	mustRefuse(t, v2.Promote(false), "n1 is primary and connected")
	gone.Store(true)
	if err := v2.Promote(false); err != nil {
		t.Fatalf("promotion after n1 left: %v", err)
	}
	if st := v2.Status(); st.Role != RolePrimary || st.Primary != "" {
		t.Fatalf("n2 after promotion: %+v", st)
	}
}
