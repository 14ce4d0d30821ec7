package replica

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/tachy-ha/tachy/cib"
)

const baseConfig = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/>
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
  <resources><primitive id="web" class="ocf" provider="heartbeat" type="Dummy"/></resources>
  <constraints/></configuration><status/></cib>`

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func str(s string) *string { return &s }

// waitDC waits until exactly one of the replicas is the DC and returns it.
func waitDC(t *testing.T, rs map[string]*Replica) *Replica {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var dc *Replica
		n := 0
		for _, r := range rs {
			if r.IsDC() {
				dc, n = r, n+1
			}
		}
		if n == 1 {
			return dc
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no DC elected in 20 s")
	return nil
}

func exported(t *testing.T, c *cib.CIB) string {
	t.Helper()
	var b bytes.Buffer
	if err := cib.Export(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// waitSame waits until every replica holds the DC's CIB.
func waitSame(t *testing.T, dc *Replica, rs map[string]*Replica) {
	t.Helper()
	want, wv := dc.Current()
	deadline := time.Now().Add(20 * time.Second)
	for name, r := range rs {
		for {
			got, v := r.Current()
			if v.Epoch == wv.Epoch && v.NumUpdates == wv.NumUpdates && exported(t, got) == exported(t, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s holds %v, the DC %v", name, v, wv)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// testConfig gives the replicas of unit tests Raft timeouts five times
// the daemon's: the tests run beside others under -race on small machines,
// where a 100 ms leader lease can lapse and a DC lose its role mid-change.
// Elections in these tests then take about a second, which they allow.
func testConfig(c Config) Config {
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	return c
}

func submit(t *testing.T, r *Replica, ch *cib.Change) Version {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := r.Submit(ctx, ch)
	if err != nil {
		t.Fatalf("%s: %v", ch.Op, err)
	}
	return v
}

// submitCounter sets node n1's "counter" attribute to value through
// whichever replica is DC. On a busy machine the DC can lose its role
// while committing (ErrOutcomeUnknown) or before (ErrNotLeader): the new
// DC is asked again, unless the CIB shows the change was applied, so it is
// applied exactly once (the test counts the updates).
func submitCounter(t *testing.T, rs map[string]*Replica, value string) Version {
	t.Helper()
	ch := &cib.Change{Op: cib.OpSetNodeAttribute, Node: "n1", Name: "counter", Value: str(value)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dc := waitDC(t, rs)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := dc.Submit(ctx, ch)
		cancel()
		if err == nil {
			return v
		}
		if !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrNotLeader) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", ch.Op, err)
		}
		dc = waitDC(t, rs)
		if err := dc.Barrier(context.Background()); err != nil {
			continue
		}
		if c, v := dc.Current(); counter(c) == value {
			return v
		}
	}
}

func counter(c *cib.CIB) string {
	for _, st := range c.Status.NodeStates {
		if st.Uname != "n1" {
			continue
		}
		for _, set := range st.Transient {
			for _, p := range set.Pairs {
				if p.Name == "counter" {
					return p.Value
				}
			}
		}
	}
	return ""
}

func TestReplicatedCIB(t *testing.T) {
	dir := t.TempDir()
	names := []string{"n1", "n2", "n3"}
	trans := map[string]*raft.InmemTransport{}
	for _, n := range names {
		_, trans[n] = raft.NewInmemTransport(raft.ServerAddress(n))
	}
	for _, a := range names {
		for _, b := range names {
			if a != b {
				trans[a].Connect(raft.ServerAddress(b), trans[b])
			}
		}
	}
	rs := map[string]*Replica{}
	for _, n := range names {
		r, err := Open(testConfig(Config{Node: n, Dir: filepath.Join(dir, n), Transport: trans[n], Log: quiet}))
		if err != nil {
			t.Fatal(err)
		}
		rs[n] = r
		defer r.Close()
	}
	var peers []Peer
	for _, n := range names {
		peers = append(peers, Peer{Node: n, Address: n})
	}
	if err := rs["n1"].Bootstrap(peers); err != nil {
		t.Fatal(err)
	}
	dc := waitDC(t, rs)
	watch, stop := rs["n3"].Watch()
	defer stop()

	v1 := submit(t, dc, &cib.Change{Op: cib.OpReplaceConfiguration, XML: baseConfig})
	v2 := submit(t, dc, &cib.Change{Op: cib.OpSetProperty, Name: "stonith-enabled", Value: str("false")})
	if v2.Epoch != v1.Epoch+1 || v2.Index <= v1.Index {
		t.Fatalf("versions %v then %v", v1, v2)
	}
	submit(t, dc, &cib.Change{Op: cib.OpRecordOperation, Node: "n2", Resource: "web",
		Operation: &cib.LRMRscOp{ID: "web_last_0", OperationKey: "web_start_0", Operation: "start", CallID: 1}})
	waitSame(t, dc, rs)
	select {
	case <-watch:
	case <-time.After(5 * time.Second):
		t.Fatal("a watcher on n3 saw no change")
	}

	// A refused change is refused everywhere and changes nothing.
	before, bv := dc.Current()
	_, err := dc.Submit(context.Background(), &cib.Change{Op: cib.OpRecordOperation, Node: "n9", Resource: "web",
		Operation: &cib.LRMRscOp{ID: "web_last_0", Operation: "start"}})
	if err == nil || !strings.Contains(err.Error(), `no node "n9"`) {
		t.Fatalf("bad change: %v", err)
	}
	if after, av := dc.Current(); av != bv || after != before {
		t.Fatalf("a refused change moved the version %v -> %v", bv, av)
	}

	// A follower names the DC.
	for _, r := range rs {
		if r == dc {
			continue
		}
		_, err := r.Submit(context.Background(), &cib.Change{Op: cib.OpSetProperty, Name: "x", Value: str("y")})
		var nl *NotLeaderError
		if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) || nl.Leader != dc.cfg.Node {
			t.Fatalf("submit on a follower: %v", err)
		}
		break
	}
	// Bootstrapping twice is refused with what to do.
	if err := rs["n2"].Bootstrap(peers); err == nil || !strings.Contains(err.Error(), "already belongs") {
		t.Fatalf("second bootstrap: %v", err)
	}

	// A node that joins later: not bootstrapped, added by the DC, it
	// receives the whole CIB.
	_, t4 := raft.NewInmemTransport("n4")
	for _, n := range names {
		trans[n].Connect("n4", t4)
		t4.Connect(raft.ServerAddress(n), trans[n])
	}
	r4, err := Open(testConfig(Config{Node: "n4", Dir: filepath.Join(dir, "n4"), Transport: t4, Log: quiet}))
	if err != nil {
		t.Fatal(err)
	}
	defer r4.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// First a learner (it copies the log without voting), then a voter.
	if err := dc.AddLearner(ctx, Peer{Node: "n4", Address: "n4"}); err != nil {
		t.Fatal(err)
	}
	rs["n4"] = r4
	waitSame(t, dc, rs)
	if m, _ := dc.Members(); len(m) != 4 || !m[3].Learner {
		t.Fatalf("members after adding n4 as a learner: %+v", m)
	}
	if r4.AppliedIndex()+16 < dc.LastIndex() {
		t.Fatalf("n4 applied %d of %d", r4.AppliedIndex(), dc.LastIndex())
	}
	if err := dc.AddNode(ctx, Peer{Node: "n4", Address: "n4"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := dc.Members(); len(m) != 4 || m[3].Learner {
		t.Fatalf("members after promoting n4: %+v", m)
	}
}

// networks remembers each TLS replica's network, for Change.
var networks = map[*Replica]*Network{}

// tlsCluster opens n TLS replicas on loopback ports, from their dirs.
func tlsCluster(t *testing.T, dir string, ca PEM, names []string, addrs map[string]string, threshold uint64) map[string]*Replica {
	t.Helper()
	rs := map[string]*Replica{}
	for _, n := range names {
		rs[n] = openTLS(t, dir, ca, n, addrs[n], threshold)
	}
	return rs
}

func openTLS(t *testing.T, dir string, ca PEM, n, addr string, threshold uint64) *Replica {
	t.Helper()
	node, err := IssueNode(ca, n)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := TLSConfig(ca.Cert, node)
	if err != nil {
		t.Fatal(err)
	}
	var nw *Network
	for i := 0; ; i++ { // the port may linger for a moment after a restart
		if nw, err = ListenTLS(addr, "", conf, quiet); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(testConfig(Config{Node: n, Dir: filepath.Join(dir, n), Transport: nw.Transport(), Log: quiet, SnapshotThreshold: threshold, TrailingLogs: 4}))
	if err != nil {
		t.Fatal(err)
	}
	r.ServeForwards(nw)
	networks[r] = nw
	return r
}

func freeAddrs(t *testing.T, names []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out[n] = ln.Addr().String()
		ln.Close()
	}
	return out
}

// The CIB survives a restart of every node, a node that was down catches
// up, and snapshots carry state once the log is compacted.
func TestRestartAndCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a 3-node TLS cluster twice")
	}
	dir := t.TempDir()
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"n1", "n2", "n3"}
	addrs := freeAddrs(t, names)
	rs := tlsCluster(t, dir, ca, names, addrs, 8)
	var peers []Peer
	for _, n := range names {
		peers = append(peers, Peer{Node: n, Address: addrs[n]})
	}
	if err := rs["n1"].Bootstrap(peers); err != nil {
		t.Fatal(err)
	}
	dc := waitDC(t, rs)
	submit(t, dc, &cib.Change{Op: cib.OpReplaceConfiguration, XML: baseConfig})
	waitSame(t, dc, rs)
	// A follower's change is forwarded to the DC; a refused one says why.
	for _, r := range rs {
		if r == dc {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := r.Change(ctx, networks[r], &cib.Change{Op: cib.OpSetProperty, Name: "cluster-name", Value: str("lab")})
		if err != nil || v.Epoch != 2 {
			t.Fatalf("forwarded change: %v %v", v, err)
		}
		_, err = r.Change(ctx, networks[r], &cib.Change{Op: cib.OpNodeMembership, Node: "n7", Membership: &cib.Membership{}})
		cancel()
		if err == nil || !strings.Contains(err.Error(), `no node "n7"`) {
			t.Fatalf("forwarded bad change: %v", err)
		}
		break
	}
	waitSame(t, dc, rs)

	// n3 goes down; 30 changes (several snapshots and compactions) later
	// it comes back and catches up.
	down := "n3"
	if dc == rs[down] {
		down = "n2"
	}
	rs[down].Close()
	delete(rs, down)
	for i := 0; i < 30; i++ {
		submitCounter(t, rs, fmt.Sprint(i))
	}
	rs[down] = openTLS(t, dir, ca, down, addrs[down], 8)
	dc = waitDC(t, rs)
	waitSame(t, dc, rs)

	// Every node restarts: the CIB is still there.
	want := exported(t, func() *cib.CIB { c, _ := dc.Current(); return c }())
	for _, r := range rs {
		r.Close()
	}
	rs = tlsCluster(t, dir, ca, names, addrs, 8)
	defer func() {
		for _, r := range rs {
			r.Close()
		}
	}()
	dc = waitDC(t, rs)
	if err := dc.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exported(t, func() *cib.CIB { c, _ := dc.Current(); return c }()); got != want {
		t.Fatalf("after a full restart the CIB differs:\n%s\nwant:\n%s", got, want)
	}
	v := submitCounter(t, rs, "after")
	dc = waitDC(t, rs)
	waitSame(t, dc, rs)
	// The configuration made epoch 1; 30 attribute changes and this one
	// are status updates.
	if v.Epoch != 2 || v.NumUpdates != 31 {
		t.Fatalf("version after restart %v, want 0.2.31", v)
	}
}

// Only a certificate from the cluster's CA gets a connection.
func TestTLSRejectsForeignCertificates(t *testing.T) {
	ca, _ := NewCA("ours")
	other, _ := NewCA("theirs")
	mine, _ := IssueNode(ca, "n1")
	stranger, _ := IssueNode(other, "n1")
	peer, _ := IssueNode(ca, "n2")
	serverConf, err := TLSConfig(ca.Cert, mine)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Write([]byte("ok")); c.Close() }()
		}
	}()
	try := func(p PEM) error {
		conf, err := TLSConfig(ca.Cert, p)
		if err != nil {
			return err
		}
		c, err := tls.Dial("tcp", ln.Addr().String(), conf)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		return err
	}
	if err := try(peer); err != nil {
		t.Fatalf("a cluster member was refused: %v", err)
	}
	if err := try(stranger); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// And a member refuses a server with a foreign certificate.
	strangerConf, _ := TLSConfig(other.Cert, stranger)
	ln2, _ := tls.Listen("tcp", "127.0.0.1:0", strangerConf)
	defer ln2.Close()
	go func() {
		c, err := ln2.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	conf, _ := TLSConfig(ca.Cert, peer)
	if c, err := tls.Dial("tcp", ln2.Addr().String(), conf); err == nil {
		c.Close()
		t.Fatal("connected to a server outside the cluster")
	} else if !strings.Contains(err.Error(), "not from this cluster's CA") {
		t.Fatalf("refusal without the reason: %v", err)
	}
}

// A committed change this node cannot read stops the state machine: it
// must not skip it and go on with a CIB that differs from the others'.
func TestFSMStopsOnUnreadableChange(t *testing.T) {
	f := newFSM(quiet)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "upgrade tachy") {
			t.Fatalf("recovered %v", r)
		}
	}()
	f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte(`{"v":99,"change":{"op":"set-property"}}`)})
	t.Fatal("an unreadable change was applied")
}

// A pooled connection to a DC that has since closed it (it died or
// restarted) is not used: the change goes over a new connection.
func TestForwardPoolDropsClosedConnections(t *testing.T) {
	dir := t.TempDir()
	if err := InitPKI(dir, "test", []string{"n1", "n2"}); err != nil {
		t.Fatal(err)
	}
	conf1, _ := LoadTLS(dir, "n1")
	conf2, _ := LoadTLS(dir, "n2")
	// A DC that answers one change per connection and then goes away.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			br.ReadByte() // forwardMagic
			if _, err := br.ReadBytes('\n'); err == nil {
				served++
				fmt.Fprintf(c, `{"version":{"epoch":%d}}`+"\n", served)
			}
			c.Close()
		}
	}()
	client, err := ListenTLS("127.0.0.1:0", "", conf2, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := &cib.Change{Op: cib.OpSetProperty, Name: "x", Value: str("1")}
	for i := 1; i <= 3; i++ {
		time.Sleep(50 * time.Millisecond) // the close reaches the client
		v, err := client.forward(ctx, ln.Addr().String(), ch)
		if err != nil || v.Epoch != i {
			t.Fatalf("forward %d after the DC closed the pooled connection: %v %v", i, v, err)
		}
	}
}
