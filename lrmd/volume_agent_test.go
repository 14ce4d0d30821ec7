package lrmd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The agent's actions as a promotable clone runs them, two nodes in one
// process over loopback.
func TestVolumeAgent(t *testing.T) {
	if _, err := ParseMetadata(volumeMetadata); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	peers := fmt.Sprintf("n1=%s,n2=%s", freeAddr(t), freeAddr(t))
	var mu sync.Mutex
	scores := map[string]int{}
	agent := func(node string) *VolumeAgent {
		return NewVolumeAgent(VolumeAgentOptions{Node: node, SetPromotion: func(ctx context.Context, rsc string, s int) error {
			mu.Lock()
			defer mu.Unlock()
			scores[node+"/"+rsc] = s
			return nil
		}})
	}
	a1, a2 := agent("n1"), agent("n2")
	params := func(node string) map[string]string {
		return map[string]string{"volume": "data", "backing": filepath.Join(dir, node, "data.img"), "size": "1M",
			"peers": peers, "nbd": "127.0.0.1:0", "protocol": "C", "secret_file": secret}
	}
	run := func(a *VolumeAgent, node, action string) BuiltinResult {
		return a.Run(context.Background(), BuiltinRequest{Resource: "vol:0", Action: action, Params: params(node)})
	}
	score := func(node string) int {
		mu.Lock()
		defer mu.Unlock()
		s, ok := scores[node+"/vol"]
		if !ok {
			return -2
		}
		return s
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if r := a1.Run(context.Background(), BuiltinRequest{Resource: "vol:0", Action: "start", Params: map[string]string{"volume": "x", "backing": "/nonexistent", "secret_file": secret, "peers": "n9=127.0.0.1:1"}}); r.RC != ErrConfigured || !strings.Contains(r.ExitReason, "does not name this node") {
		t.Fatalf("start with peers not naming the node: %+v", r)
	}
	if r := run(a1, "n1", "monitor"); r.RC != NotRunning {
		t.Fatalf("probe before start: %v", r.RC)
	}
	for _, x := range []struct {
		a    *VolumeAgent
		node string
	}{{a1, "n1"}, {a2, "n2"}} {
		if r := run(x.a, x.node, "start"); r.RC != OK {
			t.Fatalf("start on %s: %+v", x.node, r)
		}
		if r := run(x.a, x.node, "monitor"); r.RC != OK {
			t.Fatalf("monitor on %s: %+v", x.node, r)
		}
		// Fresh volumes: either may become the first primary.
		if s := score(x.node); s != 10 {
			t.Fatalf("promotion score on %s: %d, want 10", x.node, s)
		}
	}
	defer run(a1, "n1", "stop")
	defer run(a2, "n2", "stop")
	if r := run(a1, "n1", "promote"); r.RC != OK {
		t.Fatalf("promote n1: %+v", r)
	}
	if r := run(a1, "n1", "monitor"); r.RC != RunningPromoted || score("n1") != 10000 {
		t.Fatalf("monitor of the primary: %+v, score %d", r, score("n1"))
	}
	v1 := a1.Volume("vol:0")
	wait("n2 UpToDate", func() bool { return v1.Status().Peers[0].State == "UpToDate" })
	wait("n2's score 1000", func() bool { run(a2, "n2", "monitor"); return score("n2") == 1000 })
	data := bytes.Repeat([]byte("tachy"), 1000)
	if _, err := v1.Replicated().WriteAt(data, 12345); err != nil {
		t.Fatal(err)
	}
	if r := run(a2, "n2", "promote"); r.RC != ErrGeneric || !strings.Contains(r.ExitReason, "n1 is primary and connected") {
		t.Fatalf("promoting n2 while n1 is primary: %+v", r)
	}
	if r := run(a1, "n1", "demote"); r.RC != OK {
		t.Fatalf("demote n1: %+v", r)
	}
	if r := run(a1, "n1", "monitor"); r.RC != OK {
		t.Fatalf("monitor after demote: %+v", r)
	}
	if r := run(a1, "n1", "notify"); r.RC != OK {
		t.Fatalf("notify: %+v", r)
	}
	wait("n2 to lose its primary", func() bool { return a2.Volume("vol:0").Status().Primary == "" })
	if r := run(a2, "n2", "promote"); r.RC != OK {
		t.Fatalf("promote n2: %+v", r)
	}
	got := make([]byte, len(data))
	if _, err := a2.Volume("vol:0").Replicated().ReadAt(got, 12345); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("n1's write on the new primary: %v", err)
	}
	if r := run(a2, "n2", "stop"); r.RC != OK {
		t.Fatalf("stop the primary: %+v", r)
	}
	if r := run(a2, "n2", "monitor"); r.RC != NotRunning || score("n2") != -1 {
		t.Fatalf("monitor after stop: %+v, score %d", r, score("n2"))
	}
	// Restarted, n2 finds its metadata: the data has had a primary, and
	// n2 is not in sync with one yet, so it is not promotable.
	if r := run(a2, "n2", "start"); r.RC != OK {
		t.Fatalf("restart n2: %+v", r)
	}
	if st := a2.Volume("vol:0").Status(); st.Disk != "Consistent" || score("n2") != -1 {
		t.Fatalf("restarted n2: disk %s score %d", st.Disk, score("n2"))
	}
	if r := run(a2, "n2", "promote"); r.RC != ErrGeneric || !strings.Contains(r.ExitReason, "not known to be UpToDate") {
		t.Fatalf("promoting a restarted secondary: %+v", r)
	}
}

// A replica with new storage is promotable (score 10) only while the
// cluster has no record that the volume had a primary; a primary records
// it.
func TestVolumeAgentNewStorageAfterPrimary(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	var mu sync.Mutex
	var score int
	had, known := false, false
	marked := 0
	a := NewVolumeAgent(VolumeAgentOptions{Node: "n1",
		SetPromotion: func(ctx context.Context, rsc string, s int) error { mu.Lock(); score = s; mu.Unlock(); return nil },
		HadPrimary: func(rsc, volume string) (bool, bool) {
			mu.Lock()
			defer mu.Unlock()
			if rsc != "vol" || volume != "data" {
				t.Errorf("HadPrimary(%q, %q)", rsc, volume)
			}
			return had, known
		},
		SetHadPrimary: func(ctx context.Context, volume string) error {
			mu.Lock()
			had, marked = true, marked+1
			mu.Unlock()
			return nil
		},
	})
	p := map[string]string{"volume": "data", "backing": filepath.Join(dir, "data.img"), "size": "1M",
		"peers": "n1=" + freeAddr(t), "nbd": "127.0.0.1:0", "secret_file": secret}
	run := func(action string) BuiltinResult {
		return a.Run(context.Background(), BuiltinRequest{Resource: "vol:0", Action: action, Params: p})
	}
	get := func() int { mu.Lock(); defer mu.Unlock(); return score }
	if r := run("start"); r.RC != OK {
		t.Fatal(r)
	}
	defer run("stop")
	if s := get(); s != -1 {
		t.Fatalf("new storage while the cluster state is not known: score %d, want none", s)
	}
	mu.Lock()
	known = true
	mu.Unlock()
	run("monitor")
	if s := get(); s != 10 {
		t.Fatalf("new storage of a volume that never had a primary: score %d, want 10", s)
	}
	if r := run("promote"); r.RC != OK {
		t.Fatal(r)
	}
	run("monitor")
	mu.Lock()
	if !had || marked != 1 {
		t.Fatalf("the primary did not record the volume's first primary (had %v, %d records)", had, marked)
	}
	mu.Unlock()
	// The storage is replaced: new metadata, the cluster remembers.
	run("demote")
	run("stop")
	os.Remove(filepath.Join(dir, "data.img"))
	os.Remove(filepath.Join(dir, "data.img.meta"))
	if r := run("start"); r.RC != OK {
		t.Fatal(r)
	}
	run("monitor")
	if s := get(); s != -1 {
		t.Fatalf("new storage of a volume that had a primary: score %d, want none", s)
	}
}
