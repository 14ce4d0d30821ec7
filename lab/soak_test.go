package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/bench"
	"github.com/tachy-ha/tachy/lab"
)

// TestVIPSteadyState is a measurement (its one check: someone still
// answers for the VIP at the end): 3 nodes at 1 ms x 8 hold
// one VIP with no fault injected, for TACHY_SOAK (a duration; unset: the
// test skips), with heartbeat.grant_window = TACHY_SOAK_GRANT_WINDOW
// ("base": the config file without the key, for a binary that predates
// it). It logs how often the holder released the VIP (its lease ended),
// how often its lease lapsed and revived within the grace (0 for a binary
// that predates revival),
// took it over from a peer, and membership declared a node down, and the
// seconds in which the client went unanswered for more than 30 ms
// (docs/vip.md, the grant window). TACHY_SOAK_LOGS=DIR keeps the nodes'
// logs there.
//
//	TACHY_SOAK=2m TACHY_SOAK_GRANT_WINDOW=2ms TACHY_BIN=$PWD/bin/tachy \
//	  scripts/isolated.sh go test -count=1 -p 1 -run TestVIPSteadyState -v ./lab/
func TestVIPSteadyState(t *testing.T) {
	needLab(t)
	dur, err := time.ParseDuration(os.Getenv("TACHY_SOAK"))
	if err != nil {
		t.Skip("TACHY_SOAK unset: a measurement, run on demand")
	}
	g := os.Getenv("TACHY_SOAK_GRANT_WINDOW")
	dir := filepath.Join(t.TempDir(), "lab")
	_ = lab.DownAll(dir)
	l, err := lab.Up(context.Background(), lab.UpOptions{Nodes: 3, Dir: dir, Binary: tachyBinary(t), Interval: time.Millisecond, MissCount: 8, Receiver: "xdp", NoDaemons: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Down()
	for _, n := range l.Nodes() {
		b, err := os.ReadFile(l.ConfigPath(n))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if g != "" && g != "base" {
			s = strings.Replace(s, "[quorum]", "grant_window = \""+g+"\"\n\n[quorum]", 1)
		}
		if err := os.WriteFile(l.ConfigPath(n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := l.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := bench.WaitConverged(l, l.Nodes(), "xdp", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	waitDC(t, l, l.Nodes(), 30*time.Second)
	eventually(t, 30*time.Second, func() error {
		if out, err := tachyCLI(t, l, "n1", "property", "set", "stonith-enabled=false", "no-quorum-policy=stop"); err != nil {
			return fmt.Errorf("property set: %v: %s", err, out)
		}
		return nil
	})
	const ip = "10.77.2.100"
	createResource(t, l, "vip1", "vip", "ip="+ip, "cidr_netmask=24", "meta", "resource-stickiness=100")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &bench.Prober{VIP: mustAddr(t, ip), Interval: time.Millisecond}
	if err := bench.StartProber(ctx, l, p); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitHolder(t, l, p, l.Nodes(), ip, 30*time.Second)
	time.Sleep(3 * time.Second)
	count := func(sub string) int {
		c := 0
		for _, n := range l.Nodes() {
			b, _ := os.ReadFile(l.LogPath(n))
			c += strings.Count(string(b), sub)
		}
		return c
	}
	const released, tookOver, down = "quorum lease ended: floating IPs released", "fast path: took over", `msg="node down"`
	// Since lease revival: a lapse keeps the IPv4 VIP for a grace, and
	// the lease revives within it or the VIP is released as before.
	const lapsed, revived = "quorum lease lapsed: floating IPs unanswered", "quorum lease revived"
	r0, t0, d0, l0, v0 := count(released), count(tookOver), count(down), count(lapsed), count(revived)
	start := time.Now()
	time.Sleep(dur)
	var gaps []time.Duration
	for s := start; s.Add(time.Second).Before(time.Now()); s = s.Add(time.Second) {
		if o := p.Outage("icmp", s, s.Add(time.Second)); o > 30*time.Millisecond || o < 0 {
			gaps = append(gaps, o)
		}
	}
	t.Logf("grant window %q over %v: VIP released (lease ended) %d times, lease lapsed %d and revived %d times, taken over %d, node down %d; seconds with a client gap over 30 ms: %d %v",
		g, dur, count(released)-r0, count(lapsed)-l0, count(revived)-v0, count(tookOver)-t0, count(down)-d0, len(gaps), gaps)
	waitHolder(t, l, p, l.Nodes(), ip, 30*time.Second)
	if keep := os.Getenv("TACHY_SOAK_LOGS"); keep != "" {
		// The nodes' logs, to see what made each gap.
		for _, n := range l.Nodes() {
			if b, err := os.ReadFile(l.LogPath(n)); err == nil {
				os.MkdirAll(keep, 0o755)
				os.WriteFile(filepath.Join(keep, n+".log"), b, 0o644)
			}
		}
	}
}
