package lab

// Tests of the lab itself, with `sleep` in place of the daemon. They need
// root, iproute2 and nftables, are skipped otherwise and with -short, and
// take the machine-wide lab names: run them alone (go test -p 1 ./lab/).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/config"
)

func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("namespace lab test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("namespace lab test: needs root")
	}
	for _, c := range []string{"ip", "nft", "sleep"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("namespace lab test: needs %s", c)
		}
	}
}

// upSleep starts a lab whose "daemons" are sleep commands.
func upSleep(t *testing.T, nodes int) *Lab {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lab")
	if err := DownAll(dir); err != nil {
		t.Fatalf("removing an earlier lab: %v", err)
	}
	t0 := time.Now()
	l, err := Up(context.Background(), UpOptions{Nodes: nodes, Dir: dir, Command: func(int) []string { return []string{"sleep", "1000"} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Up of %d nodes took %v", nodes, time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	return l
}

type pingCase struct {
	from string
	to   netip.Addr
	ok   bool
}

// checkPings runs the pings in parallel: one that should pass gets 2 s,
// one that should not gets 300 ms to prove it.
func checkPings(t *testing.T, l *Lab, cases []pingCase) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for _, c := range cases {
		wg.Go(func() {
			timeout := 2 * time.Second
			if !c.ok {
				timeout = 300 * time.Millisecond
			}
			err := l.Ping(c.from, c.to, timeout)
			if (err == nil) != c.ok {
				mu.Lock()
				defer mu.Unlock()
				if c.ok {
					bad = append(bad, err.Error())
				} else {
					bad = append(bad, fmt.Sprintf("%s reached %s, which it should not", c.from, c.to))
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(bad)
	for _, b := range bad {
		t.Error(b)
	}
	if len(bad) > 0 {
		t.FailNow()
	}
}

// mesh is every node pinging every other node on every link, and the
// client pinging every node's service addresses and back; reach says
// whether a pair of nodes should get through.
func mesh(l *Lab, reach func(a, b string) bool) []pingCase {
	var cases []pingCase
	for _, a := range l.Nodes() {
		for _, b := range l.Nodes() {
			if a == b {
				continue
			}
			for link := range numLinks {
				cases = append(cases, pingCase{a, l.Address(b, link), reach(a, b)})
			}
		}
		cases = append(cases,
			pingCase{ClientNode, l.Address(a, Service), true},
			pingCase{ClientNode, l.Address6(a), true},
			pingCase{a, l.Address(ClientNode, Service), true},
			pingCase{a, l.Address6(ClientNode), true})
	}
	return cases
}

func all(a, b string) bool { return true }

func nodeStatus(t *testing.T, l *Lab, node string) NodeStatus {
	t.Helper()
	s, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Nodes {
		if n.Name == node {
			return n
		}
	}
	t.Fatalf("Status has no node %s: %+v", node, s)
	return NodeStatus{}
}

func linkStates(ns NodeStatus) string {
	var s []string
	for _, l := range ns.Links {
		s = append(s, l.State)
	}
	return strings.Join(s, ",")
}

func procState(t *testing.T, pid int) byte {
	t.Helper()
	st, _, ok := procStat(pid)
	if !ok {
		return 0
	}
	return st
}

func TestLab(t *testing.T) {
	needRoot(t)
	l := upSleep(t, 3)
	dir := l.Dir()

	t.Run("files", func(t *testing.T) {
		fi, err := os.Stat(l.KeyPath())
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("cluster.key has mode %v, want 0600", fi.Mode().Perm())
		}
		key, _ := os.ReadFile(l.KeyPath())
		if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(key) {
			t.Errorf("cluster.key is %q, want 64 hex digits and a newline", key)
		}
		if _, err := config.ReadKey(l.KeyPath()); err != nil {
			t.Error(err)
		}
		for _, n := range l.Nodes() {
			b, err := os.ReadFile(l.ConfigPath(n))
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Parse(l.ConfigPath(n), b)
			if err != nil {
				t.Fatal(err)
			}
			if c.Local.Node != n || c.Local.Socket != l.Socket(n) || c.Cluster.KeyFile != l.KeyPath() || len(c.Nodes) != 3 {
				t.Errorf("%s: %+v", l.ConfigPath(n), c)
			}
			if fi, err := os.Stat(filepath.Join(dir, n, "state")); err != nil || !fi.IsDir() {
				t.Errorf("no state directory for %s: %v", n, err)
			}
			if log, _ := os.ReadFile(l.LogPath(n)); !strings.Contains(string(log), `starting ["sleep" "1000"] in namespace tachy-`+n) {
				t.Errorf("%s: %q", l.LogPath(n), log)
			}
		}
		var st state
		b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.Nodes != 3 || st.Interval != "2ms" || st.MissCount != 4 || st.Receiver != "auto" || len(st.Daemons) != 3 || st.Daemons["n2"].PID == 0 {
			t.Errorf("lab.json: %s", b)
		}
	})

	t.Run("topology", func(t *testing.T) {
		out, err := exec.Command("ip", "-n", "tachy-n2", "-o", "addr", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, want := range []string{"lo    inet 127.0.0.1/8", "ring0    inet 10.77.0.2/24", "ring1    inet 10.77.1.2/24", "svc    inet 10.77.2.2/24", "svc    inet6 fd77:0:0:2::2/64"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("tachy-n2 has no %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "tentative") {
			t.Errorf("an address is tentative (DAD):\n%s", out)
		}
		out, _ = exec.Command("ip", "-n", "tachy-n2", "-o", "link", "show", "ring1").CombinedOutput()
		if !strings.Contains(string(out), "link/ether 02:77:01:00:00:02") {
			t.Errorf("ring1 of n2: %s", out)
		}
		out, _ = exec.Command("ip", "-o", "link", "show", "tn2r1").CombinedOutput()
		if !strings.Contains(string(out), "master tachy-r1") || !strings.Contains(string(out), "02:77:01:80:00:02") {
			t.Errorf("tn2r1: %s", out)
		}
		out, _ = exec.Command("ip", "-n", "tachy-client", "-o", "addr", "show", "svc").CombinedOutput()
		if !strings.Contains(string(out), "10.77.2.254/24") || !strings.Contains(string(out), "fd77:0:0:2::fe/64") {
			t.Errorf("client svc: %s", out)
		}
		for _, br := range Bridges {
			b, _ := os.ReadFile("/sys/class/net/" + br + "/bridge/forward_delay")
			m, _ := os.ReadFile("/sys/class/net/" + br + "/bridge/multicast_snooping")
			if strings.TrimSpace(string(b)) != "0" || strings.TrimSpace(string(m)) != "0" {
				t.Errorf("%s: forward_delay %q multicast_snooping %q", br, b, m)
			}
			if up, ok := linkUp(br); !up || !ok {
				t.Errorf("%s is not up", br)
			}
		}
		var out2 strings.Builder
		if err := l.Exec(context.Background(), "n3", []string{"cat", "/proc/sys/net/ipv4/ip_forward"}, nil, &out2, &out2); err != nil || out2.String() != "0\n" {
			t.Errorf("ip_forward in n3: %q %v", out2.String(), err)
		}
	})

	t.Run("connectivity", func(t *testing.T) {
		checkPings(t, l, mesh(l, all))
	})

	t.Run("up twice", func(t *testing.T) {
		_, err := Up(context.Background(), UpOptions{Nodes: 2, Dir: dir, Command: func(int) []string { return []string{"sleep", "1"} }})
		if err == nil || !strings.Contains(err.Error(), "tachy lab down") {
			t.Fatalf("second Up in the same directory: %v", err)
		}
		_, err = Up(context.Background(), UpOptions{Nodes: 2, Dir: filepath.Join(t.TempDir(), "other"), Command: func(int) []string { return []string{"sleep", "1"} }})
		if err == nil || !strings.Contains(err.Error(), "tachy lab down") {
			t.Fatalf("second Up in another directory: %v", err)
		}
		// The failed Ups broke nothing.
		checkPings(t, l, []pingCase{{"n1", l.Address("n3", Ring0), true}})
	})

	t.Run("partition", func(t *testing.T) {
		groups, err := ParsePartition("n1,n2/n3", l.Nodes())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Partition(groups); err != nil {
			t.Fatal(err)
		}
		side := map[string]int{"n1": 0, "n2": 0, "n3": 1}
		checkPings(t, l, mesh(l, func(a, b string) bool { return side[a] == side[b] }))
		if s, _ := l.Status(); !slices.EqualFunc(s.Partition, [][]string{{"n1", "n2"}, {"n3"}}, slices.Equal) {
			t.Errorf("Status partition %v", s.Partition)
		}
		if out, err := exec.Command("nft", "list", "table", "bridge", PartitionTable).CombinedOutput(); err != nil {
			t.Errorf("no nft table: %v %s", err, out)
		}
		// A new partition replaces the old; n2 is in no group, so alone.
		if err := l.Partition([][]string{{"n1", "n3"}}); err == nil {
			t.Error("a partition of one group was accepted")
		}
		if err := l.Partition([][]string{{"n1"}, {"n3"}}); err != nil {
			t.Fatal(err)
		}
		checkPings(t, l, mesh(l, func(a, b string) bool { return false }))
		if s, _ := l.Status(); !slices.EqualFunc(s.Partition, [][]string{{"n1"}, {"n3"}, {"n2"}}, slices.Equal) {
			t.Errorf("Status partition %v", s.Partition)
		}
		// Another process sees it.
		if l2, err := Open(dir); err != nil {
			t.Fatal(err)
		} else if s, _ := l2.Status(); len(s.Partition) != 3 {
			t.Errorf("Open: partition %v", s.Partition)
		}
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
		checkPings(t, l, mesh(l, all))
		if s, _ := l.Status(); s.Partition != nil {
			t.Errorf("Status partition %v after Heal", s.Partition)
		}
		if out, err := exec.Command("nft", "list", "table", "bridge", PartitionTable).CombinedOutput(); err == nil {
			t.Errorf("nft table left after Heal: %s", out)
		}
		if err := l.Heal(); err != nil {
			t.Errorf("second Heal: %v", err)
		}
	})

	t.Run("links", func(t *testing.T) {
		if err := l.CutLinks("n2", Ring0); err != nil {
			t.Fatal(err)
		}
		if got := linkStates(nodeStatus(t, l, "n2")); got != "down,up,up" {
			t.Errorf("n2 links %s after cutting ring 0", got)
		}
		checkPings(t, l, []pingCase{
			{"n1", l.Address("n2", Ring0), false}, {"n2", l.Address("n3", Ring0), false},
			{"n1", l.Address("n2", Ring1), true}, {"n1", l.Address("n2", Service), true},
			{"n1", l.Address("n3", Ring0), true},
		})
		if err := l.CutLinks("n2"); err != nil {
			t.Fatal(err)
		}
		if got := linkStates(nodeStatus(t, l, "n2")); got != "down,down,down" {
			t.Errorf("n2 links %s after cutting all", got)
		}
		checkPings(t, l, []pingCase{
			{"n1", l.Address("n2", Ring0), false}, {"n1", l.Address("n2", Ring1), false},
			{"n1", l.Address("n2", Service), false}, {ClientNode, l.Address6("n2"), false},
		})
		if err := l.RestoreLinks("n2", Ring1); err != nil {
			t.Fatal(err)
		}
		if got := linkStates(nodeStatus(t, l, "n2")); got != "down,up,down" {
			t.Errorf("n2 links %s after restoring ring 1", got)
		}
		if err := l.RestoreLinks("n2"); err != nil {
			t.Fatal(err)
		}
		if got := linkStates(nodeStatus(t, l, "n2")); got != "up,up,up" {
			t.Errorf("n2 links %s after restoring all", got)
		}
		checkPings(t, l, mesh(l, all))
		if err := l.CutLinks("n2", 3); err == nil {
			t.Error("CutLinks accepted link 3")
		}
		if err := l.CutLinks("n9"); err == nil || !strings.Contains(err.Error(), `unknown node "n9"`) {
			t.Errorf("CutLinks of n9: %v", err)
		}
	})

	t.Run("processes", func(t *testing.T) {
		pid, err := l.DaemonPID("n3")
		if err != nil {
			t.Fatal(err)
		}
		if st := nodeStatus(t, l, "n3"); st.Daemon != DaemonRunning || st.PID != pid || !slices.Contains(st.Processes, pid) {
			t.Errorf("n3 at start: %+v", st)
		}
		if err := l.Start("n3"); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("Start of a running daemon: %v", err)
		}

		if err := l.Pause("n3"); err != nil {
			t.Fatal(err)
		}
		if s := procState(t, pid); s != 'T' {
			t.Errorf("paused daemon in state %c", s)
		}
		if st := nodeStatus(t, l, "n3"); st.Daemon != DaemonPaused {
			t.Errorf("n3 paused: %+v", st)
		}
		if err := l.Resume("n3"); err != nil {
			t.Fatal(err)
		}
		if s := procState(t, pid); s != 'S' && s != 'R' {
			t.Errorf("resumed daemon in state %c", s)
		}
		if st := nodeStatus(t, l, "n3"); st.Daemon != DaemonRunning {
			t.Errorf("n3 resumed: %+v", st)
		}

		// Kill takes everything in the namespace, paused or not, and
		// processes started with Exec too.
		execDone := make(chan error, 1)
		go func() {
			execDone <- l.Exec(context.Background(), "n3", []string{"sleep", "1000"}, nil, nil, nil)
		}()
		deadline := time.Now().Add(2 * time.Second)
		for len(nodeStatus(t, l, "n3").Processes) < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := l.Pause("n3"); err != nil {
			t.Fatal(err)
		}
		if err := l.Kill("n3"); err != nil {
			t.Fatal(err)
		}
		if s := procState(t, pid); s != 0 {
			t.Errorf("killed daemon still there, state %c", s)
		}
		select {
		case err := <-execDone:
			if err == nil {
				t.Error("Exec of sleep 1000 returned no error after Kill")
			}
		case <-time.After(2 * time.Second):
			t.Error("Exec'd process outlived Kill")
		}
		if st := nodeStatus(t, l, "n3"); st.Daemon != DaemonDead || len(st.Processes) != 0 {
			t.Errorf("n3 killed: %+v", st)
		}
		if _, err := l.DaemonPID("n3"); err == nil || !strings.Contains(err.Error(), "tachy lab start n3") {
			t.Errorf("DaemonPID of a dead daemon: %v", err)
		}
		// The others live on.
		if st := nodeStatus(t, l, "n2"); st.Daemon != DaemonRunning {
			t.Errorf("n2 after killing n3: %+v", st)
		}

		if err := l.Start("n3"); err != nil {
			t.Fatal(err)
		}
		pid2, err := l.DaemonPID("n3")
		if err != nil || pid2 == pid {
			t.Fatalf("DaemonPID after Start: %d, %v (old %d)", pid2, err, pid)
		}
		if st := nodeStatus(t, l, "n3"); st.Daemon != DaemonRunning || st.PID != pid2 || !slices.Equal(st.Processes, []int{pid2}) {
			t.Errorf("n3 restarted: %+v", st)
		}
		// Another process sees the new daemon.
		l2, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := l2.DaemonPID("n3"); p != pid2 || err != nil {
			t.Errorf("Open: DaemonPID(n3) = %d, %v; want %d", p, err, pid2)
		}
		// Kill and Start work from it too.
		if err := l2.Kill("n3"); err != nil {
			t.Fatal(err)
		}
		if err := l2.Start("n3"); err != nil {
			t.Fatal(err)
		}
		if st := nodeStatus(t, l, "n3"); st.Daemon != DaemonRunning || st.PID == pid2 {
			t.Errorf("n3 restarted through Open: %+v", st)
		}
		if err := l.Kill("client"); err != nil {
			t.Errorf("Kill of the empty client namespace: %v", err)
		}
		if err := l.Start("client"); err == nil {
			t.Error("Start of the client succeeded")
		}
	})

	t.Run("status json", func(t *testing.T) {
		s, err := l.Status()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"name":"n1","namespace":"tachy-n1","namespace_present":true`, `"daemon":"running"`, `"host_interface":"tn1r0"`, `"name":"client","namespace":"tachy-client"`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("Status JSON lacks %s: %s", want, b)
			}
		}
	})

	t.Run("down", func(t *testing.T) {
		if err := l.Down(); err != nil {
			t.Fatal(err)
		}
		checkGone(t, dir)
		if err := l.Down(); err != nil {
			t.Errorf("second Down: %v", err)
		}
		if _, err := Open(dir); err == nil || err.Error() != "no lab is running; start one with `tachy lab up --nodes 3`" {
			t.Errorf("Open after Down: %v", err)
		}
	})
}

// checkGone fails if anything of a lab is left.
func checkGone(t *testing.T, dir string) {
	t.Helper()
	if nss, _ := labNamespaces(); len(nss) > 0 {
		t.Errorf("namespaces left: %v", nss)
	}
	if links, _ := labHostLinks(); len(links) > 0 {
		t.Errorf("interfaces left: %v", links)
	}
	if out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput(); err != nil || strings.Contains(string(out), "tachy-") {
		t.Errorf("ip link show: %v\n%s", err, out)
	}
	if out, err := exec.Command("nft", "list", "table", "bridge", PartitionTable).CombinedOutput(); err == nil {
		t.Errorf("nft table left: %s", out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("state directory %s left", dir)
	}
}

// DownAll removes a lab whose state file is gone, as after a crash, with
// its processes and partition.
func TestDownAllWithoutState(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "lab")
	if err := DownAll(dir); err != nil {
		t.Fatal(err)
	}
	l, err := Up(context.Background(), UpOptions{Nodes: 2, Dir: dir, NoDaemons: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DownAll(dir) })
	if st := nodeStatus(t, l, "n1"); st.Daemon != DaemonNone || st.PID != 0 {
		t.Errorf("NoDaemons: %+v", st)
	}
	if _, err := l.DaemonPID("n1"); err == nil {
		t.Error("DaemonPID with no daemon")
	}
	if err := l.Partition([][]string{{"n1"}, {"n2"}}); err != nil {
		t.Fatal(err)
	}
	stray := exec.Command("ip", "netns", "exec", "tachy-n2", "sleep", "1000")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stray.Wait() }()
	deadline := time.Now().Add(2 * time.Second)
	for len(nodeStatus(t, l, "n2").Processes) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.Remove(filepath.Join(dir, "lab.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("Open without lab.json")
	}
	// Up refuses while the leftovers are there.
	if _, err := Up(context.Background(), UpOptions{Nodes: 1, Dir: dir, NoDaemons: true}); err == nil || !strings.Contains(err.Error(), "already exist") {
		t.Errorf("Up over leftovers: %v", err)
	}
	if err := DownAll(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Error("the stray process outlived DownAll")
	}
	checkGone(t, dir)
}

// A failing Up leaves nothing behind.
func TestUpFailureCleansUp(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "lab")
	if err := DownAll(dir); err != nil {
		t.Fatal(err)
	}
	_, err := Up(context.Background(), UpOptions{Nodes: 2, Dir: dir, Command: func(n int) []string {
		if n == 2 {
			return []string{"sh", "-c", "echo no config here; exit 3"}
		}
		return []string{"sleep", "1000"}
	}})
	if err == nil || !strings.Contains(err.Error(), "node n2's daemon") || !strings.Contains(err.Error(), "no config here") {
		t.Fatalf("Up with a daemon that exits: %v", err)
	}
	checkGone(t, dir)
	for _, o := range []UpOptions{{Nodes: 0}, {Nodes: 17}, {Nodes: 1, Receiver: "dpdk"}, {Nodes: 1, Interval: time.Microsecond}, {Nodes: 1, MissCount: 1}} {
		o.Dir = dir
		if _, err := Up(context.Background(), o); err == nil {
			t.Errorf("Up(%+v) succeeded", o)
		}
	}
	checkGone(t, dir)
}

// Without UpOptions.Command, each node runs `BINARY daemon --config
// DIR/nN/tachy.conf` in its namespace, with its output in daemon.log.
func TestDaemonCommand(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "lab")
	if err := DownAll(dir); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fake-tachy")
	script := "#!/bin/sh\necho \"args: $*\"\necho \"cwd: $(pwd)\"\nip -o -4 addr show dev ring0\nexec sleep 1000\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Up(context.Background(), UpOptions{Nodes: 2, Dir: dir, Binary: bin, Receiver: "udp", Interval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	for _, n := range l.Nodes() {
		want := []string{
			"args: daemon --config " + l.ConfigPath(n),
			"cwd: " + filepath.Join(dir, n),
			"ring0    inet " + l.Address(n, Ring0).String() + "/24",
		}
		var log []byte
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if log, _ = os.ReadFile(l.LogPath(n)); strings.Contains(string(log), want[2]) {
				break
			}
		}
		for _, w := range want {
			if !strings.Contains(string(log), w) {
				t.Errorf("%s lacks %q:\n%s", l.LogPath(n), w, log)
			}
		}
		b, _ := os.ReadFile(l.ConfigPath(n))
		if !strings.Contains(string(b), `receiver = "udp"`) || !strings.Contains(string(b), `interval = "2ms"`) {
			t.Errorf("%s:\n%s", l.ConfigPath(n), b)
		}
	}
}
