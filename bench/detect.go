package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/heartbeat"
	"github.com/tachy-ha/tachy/lab"
)

// DetectOptions configure `tachy bench detect`.
type DetectOptions struct {
	Nodes     int
	Kills     int           // daemon SIGKILLs per receive path
	Cuts      int           // cuts of all of a node's links per receive path (and as many single-link cuts)
	Stress    time.Duration // full-CPU stress window per receive path
	CPUWindow time.Duration // idle window over which daemon CPU is measured
	Interval  time.Duration
	MissCount int
	Receivers []string // "xdp", "udp"
	Binary    string   // the tachy binary the lab runs
	Dir       string   // lab state directory
	Progress  io.Writer
}

// DetectResult is the JSON output of `tachy bench detect`.
type DetectResult struct {
	Benchmark string       `json:"benchmark"`
	Started   time.Time    `json:"started"`
	Kernel    string       `json:"kernel"`
	CPUs      int          `json:"cpus"`
	Nodes     int          `json:"nodes"`
	Interval  string       `json:"interval"`
	MissCount int          `json:"miss_count"`
	TimeoutMs float64      `json:"timeout_ms"`
	Paths     []PathResult `json:"paths"`
}

// PathResult holds the figures of one receive path.
type PathResult struct {
	Receiver string `json:"receiver"`
	// KillDetect: a node's daemon gets SIGKILL; time from the kill to each
	// survivor's node-down event (its kernel/receiver timestamp).
	KillDetect Latency `json:"kill_detect"`
	// CutDetect: all of a node's links are cut at the bridge; time to each
	// survivor's node-down event.
	CutDetect Latency `json:"cut_detect"`
	// LinkCutDetect: one link of a node is cut; time to each survivor's
	// link-down event. NodeDownOnLinkCut counts node-downs that must not happen.
	LinkCutDetect     Latency      `json:"link_cut_detect"`
	NodeDownOnLinkCut int          `json:"node_down_on_link_cut"`
	Stress            StressResult `json:"stress"`
	CPU               CPUResult    `json:"cpu"`
}

// StressResult counts false suspicions while every core is saturated.
type StressResult struct {
	Seconds         float64 `json:"seconds"`
	Command         string  `json:"command"`
	FalseNodeDown   int     `json:"false_node_down"`
	FalseLinkDown   int     `json:"false_link_down"`
	SenderLateTicks uint64  `json:"sender_late_ticks"`
	// SenderMaxWakeLateUs is the worst wake-up delay of any sender since
	// the lab started, stress included: the scheduling latency the timeout
	// has to absorb on this machine.
	SenderMaxWakeLateUs int64 `json:"sender_max_wake_late_us"`
	// FalseEvents lists the first false suspicions: observer, peer, link.
	FalseEvents []string `json:"false_events,omitempty"`
}

// CPUResult is the CPU time of each daemon at the configured rate, as a
// percentage of one core (user + system time from /proc/PID/stat; with XDP,
// the receivers' work on a frame runs in the softirq of the sending syscall
// and is charged to the sender's process).
type CPUResult struct {
	WindowSeconds float64            `json:"window_s"`
	PerDaemonPct  map[string]float64 `json:"per_daemon_pct"`
	MaxPct        float64            `json:"max_pct"`
	MachineBusy   float64            `json:"machine_busy_pct"` // all CPUs, from /proc/stat, in % of one core
}

// Detect runs the failure-detection benchmark on every receive path.
func Detect(ctx context.Context, o DetectOptions) (*DetectResult, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	res := &DetectResult{Benchmark: "detect", Started: time.Now().UTC(), Kernel: unix.ByteSliceToString(uts.Release[:]), CPUs: runtime.NumCPU(),
		Nodes: o.Nodes, Interval: o.Interval.String(), MissCount: o.MissCount, TimeoutMs: float64(o.Interval*time.Duration(o.MissCount)) / 1e6}
	for _, r := range o.Receivers {
		pr, err := detectPath(ctx, o, r)
		if err != nil {
			return res, fmt.Errorf("receiver %s: %w", r, err)
		}
		res.Paths = append(res.Paths, *pr)
	}
	return res, nil
}

func (o DetectOptions) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench detect: "+format+"\n", args...)
	}
}

// Observed is an event and the node that reported it.
type Observed struct {
	Observer string
	Event    controller.Event
}

// Collector subscribes to every lab node's event stream, and subscribes again
// after a node's daemon restarts.
type Collector struct {
	ch chan Observed
}

// NewCollector starts collecting until ctx ends. It returns once every
// running daemon's stream is open (or after 5 s), so that no event of a
// fault injected right after is missed.
func NewCollector(ctx context.Context, l *lab.Lab) *Collector {
	c := &Collector{ch: make(chan Observed, 65536)}
	var opened sync.WaitGroup
	for _, n := range l.Nodes() {
		var once sync.Once
		if _, err := l.DaemonPID(n); err == nil {
			opened.Add(1)
		} else {
			once.Do(func() {}) // not running: nothing to wait for
		}
		go func() {
			for ctx.Err() == nil {
				_ = controller.Client{Socket: l.Socket(n)}.Events(ctx, func(controller.Status) { once.Do(opened.Done) }, func(e controller.Event) bool {
					c.ch <- Observed{n, e}
					return true
				})
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { opened.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return c
}

// Drain forgets the events collected so far.
func (c *Collector) Drain() {
	for {
		select {
		case <-c.ch:
		default:
			return
		}
	}
}

// Await collects events matching want, one per observer in from, until all
// came or the timeout passed. It returns them by observer.
func (c *Collector) Await(from []string, want func(Observed) bool, timeout time.Duration) map[string]controller.Event {
	got := map[string]controller.Event{}
	deadline := time.After(timeout)
	for len(got) < len(from) {
		select {
		case o := <-c.ch:
			if _, dup := got[o.Observer]; !dup && contains(from, o.Observer) && want(o) {
				got[o.Observer] = o.Event
			}
		case <-deadline:
			return got
		}
	}
	return got
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func others(all []string, not string) []string {
	var out []string
	for _, n := range all {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

func detectPath(ctx context.Context, o DetectOptions, receiver string) (*PathResult, error) {
	o.logf("%s: starting a %d-node lab (interval %s, miss count %d)", receiver, o.Nodes, o.Interval, o.MissCount)
	_ = lab.DownAll(o.Dir)
	l, err := lab.Up(ctx, lab.UpOptions{Nodes: o.Nodes, Dir: o.Dir, Binary: o.Binary, Interval: o.Interval, MissCount: o.MissCount, Receiver: receiver})
	if err != nil {
		return nil, err
	}
	defer l.Down()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nodes := l.Nodes()
	if err := WaitConverged(l, nodes, receiver, 15*time.Second); err != nil {
		return nil, err
	}
	col := NewCollector(cctx, l)
	pr := &PathResult{Receiver: receiver}

	o.logf("%s: CPU per daemon over %s", receiver, o.CPUWindow)
	if pr.CPU, err = measureCPU(l, nodes, o.CPUWindow); err != nil {
		return nil, err
	}

	o.logf("%s: %s of full CPU stress", receiver, o.Stress)
	if pr.Stress, err = stress(ctx, l, col, nodes, o.Stress); err != nil {
		return nil, err
	}

	o.logf("%s: %d daemon kills", receiver, o.Kills)
	var samples []time.Duration
	missed := 0
	for i := 0; i < o.Kills; i++ {
		victim := nodes[i%len(nodes)]
		got, err := KillAndMeasure(l, col, victim, 5*time.Second)
		if err != nil {
			return nil, err
		}
		for _, d := range got {
			samples = append(samples, d)
		}
		missed += len(nodes) - 1 - len(got)
		if err := restart(l, victim); err != nil {
			return nil, err
		}
		if err := WaitConverged(l, nodes, receiver, 15*time.Second); err != nil {
			return nil, err
		}
	}
	pr.KillDetect = Summarize(samples, missed, true)

	o.logf("%s: %d cuts of all links and %d cuts of one link", receiver, o.Cuts, o.Cuts)
	samples, missed = nil, 0
	var linkSamples []time.Duration
	linkMissed := 0
	for i := 0; i < o.Cuts; i++ {
		victim := nodes[i%len(nodes)]
		surv := others(nodes, victim)
		// Every link at once: the node is gone for its peers.
		col.Drain()
		t0 := heartbeat.MonotonicNow()
		if err := l.CutLinks(victim, 0, 1); err != nil {
			return nil, err
		}
		got := col.Await(surv, func(ob Observed) bool { return ob.Event.Type == "node-down" && ob.Event.NodeName == victim }, 5*time.Second)
		for _, e := range got {
			samples = append(samples, time.Duration(e.TimeNs-t0))
		}
		missed += len(surv) - len(got)
		if err := l.RestoreLinks(victim, 0, 1); err != nil {
			return nil, err
		}
		if err := WaitConverged(l, nodes, receiver, 15*time.Second); err != nil {
			return nil, err
		}
		// One link: a link-down, and the node must stay up.
		ring := i % 2
		col.Drain()
		t0 = heartbeat.MonotonicNow()
		if err := l.CutLinks(victim, ring); err != nil {
			return nil, err
		}
		got = col.Await(surv, func(ob Observed) bool {
			if ob.Event.Type == "node-down" {
				pr.NodeDownOnLinkCut++
			}
			return ob.Event.Type == "link-down" && ob.Event.NodeName == victim && ob.Event.Link != nil && *ob.Event.Link == ring
		}, 5*time.Second)
		for _, e := range got {
			linkSamples = append(linkSamples, time.Duration(e.TimeNs-t0))
		}
		linkMissed += len(surv) - len(got)
		// Give a wrong node-down time to show before healing.
		time.Sleep(3 * o.Interval * time.Duration(o.MissCount))
		for {
			select {
			case ob := <-col.ch:
				if ob.Event.Type == "node-down" {
					pr.NodeDownOnLinkCut++
				}
				continue
			default:
			}
			break
		}
		if err := l.RestoreLinks(victim, ring); err != nil {
			return nil, err
		}
		if err := WaitConverged(l, nodes, receiver, 15*time.Second); err != nil {
			return nil, err
		}
	}
	pr.CutDetect = Summarize(samples, missed, true)
	pr.LinkCutDetect = Summarize(linkSamples, linkMissed, true)
	return pr, nil
}

// KillAndMeasure SIGKILLs a node's daemon and returns, for each survivor
// (a node whose daemon runs) that reported it within timeout, the time from the kill to the evidence
// of its node-down event.
func KillAndMeasure(l *lab.Lab, col *Collector, victim string, timeout time.Duration) (map[string]time.Duration, error) {
	pid, err := l.DaemonPID(victim)
	if err != nil {
		return nil, err
	}
	col.Drain()
	t0 := heartbeat.MonotonicNow()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		return nil, fmt.Errorf("kill %s: %w", victim, err)
	}
	var survivors []string
	for _, n := range others(l.Nodes(), victim) {
		if _, err := l.DaemonPID(n); err == nil {
			survivors = append(survivors, n)
		}
	}
	got := col.Await(survivors, func(ob Observed) bool {
		return ob.Event.Type == "node-down" && ob.Event.NodeName == victim
	}, timeout)
	out := map[string]time.Duration{}
	for n, e := range got {
		out[n] = time.Duration(e.TimeNs - t0)
	}
	return out, nil
}

func restart(l *lab.Lab, node string) error {
	// Reap what is left of the killed daemon, then start a new one.
	if err := l.Kill(node); err != nil {
		return err
	}
	return l.Start(node)
}

// WaitConverged waits until every node's daemon answers, runs the expected
// receiver, and sees every peer with every link up.
func WaitConverged(l *lab.Lab, nodes []string, receiver string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range nodes {
			st, err := controller.Client{Socket: l.Socket(n)}.Status()
			if err != nil {
				ok, last = false, err.Error()
				break
			}
			if receiver != "" && receiver != "auto" && st.Receiver != receiver {
				return fmt.Errorf("node %s runs the %s receiver, the benchmark asked for %s (see %s)", n, st.Receiver, receiver, l.LogPath(n))
			}
			for _, m := range st.Members {
				if m.Local {
					continue
				}
				for _, lk := range m.Links {
					if m.State != "up" || lk.State != "up" {
						ok, last = false, fmt.Sprintf("%s sees %s %s, link %d %s", n, m.Name, m.State, lk.Link, lk.State)
					}
				}
			}
		}
		if ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster did not converge in %s: %s", timeout, last)
}

func stress(ctx context.Context, l *lab.Lab, col *Collector, nodes []string, d time.Duration) (StressResult, error) {
	res := StressResult{Seconds: d.Seconds()}
	if d <= 0 {
		return res, nil
	}
	late0, err := lateTicks(l, nodes)
	if err != nil {
		return res, err
	}
	args := []string{"--cpu", strconv.Itoa(runtime.NumCPU()), "--timeout", fmt.Sprintf("%ds", int(d.Seconds())), "--quiet"}
	res.Command = "stress-ng " + strings.Join(args, " ")
	col.Drain()
	cmd := exec.CommandContext(ctx, "stress-ng", args...)
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("stress-ng: %w (apt-get install stress-ng)", err)
	}
	var mu sync.Mutex
	start := time.Now()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case ob := <-col.ch:
				mu.Lock()
				switch ob.Event.Type {
				case "node-down":
					res.FalseNodeDown++
				case "link-down":
					res.FalseLinkDown++
				default:
					mu.Unlock()
					continue
				}
				if len(res.FalseEvents) < 50 {
					what := ob.Event.Type
					if ob.Event.Link != nil {
						what = fmt.Sprintf("%s %d", what, *ob.Event.Link)
					}
					res.FalseEvents = append(res.FalseEvents, fmt.Sprintf("+%.3fs %s saw %s %s",
						time.Since(start).Seconds(), ob.Observer, ob.Event.NodeName, what))
				}
				mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	werr := cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	close(done)
	if werr != nil {
		return res, fmt.Errorf("stress-ng: %w", werr)
	}
	late1, err := lateTicks(l, nodes)
	if err != nil {
		return res, err
	}
	mu.Lock()
	defer mu.Unlock()
	res.SenderLateTicks = late1 - late0
	for _, n := range nodes {
		if st, err := (controller.Client{Socket: l.Socket(n)}).Status(); err == nil {
			res.SenderMaxWakeLateUs = max(res.SenderMaxWakeLateUs, st.Sender.MaxWakeLateUs)
		}
	}
	return res, nil
}

func lateTicks(l *lab.Lab, nodes []string) (uint64, error) {
	var sum uint64
	for _, n := range nodes {
		st, err := controller.Client{Socket: l.Socket(n)}.Status()
		if err != nil {
			return 0, err
		}
		sum += st.Sender.LateTicks
	}
	return sum, nil
}

func measureCPU(l *lab.Lab, nodes []string, window time.Duration) (CPUResult, error) {
	res := CPUResult{WindowSeconds: window.Seconds(), PerDaemonPct: map[string]float64{}}
	pids := map[string]int{}
	before := map[string]uint64{}
	for _, n := range nodes {
		pid, err := l.DaemonPID(n)
		if err != nil {
			return res, err
		}
		pids[n] = pid
		if before[n], err = procTicks(pid); err != nil {
			return res, err
		}
	}
	busy0, total0 := machineTicks()
	t0 := time.Now()
	time.Sleep(window)
	elapsed := time.Since(t0).Seconds()
	busy1, total1 := machineTicks()
	for _, n := range nodes {
		after, err := procTicks(pids[n])
		if err != nil {
			return res, err
		}
		pct := round3(float64(after-before[n]) / 100 / elapsed * 100) // USER_HZ is 100
		res.PerDaemonPct[n] = pct
		res.MaxPct = max(res.MaxPct, pct)
	}
	if total1 > total0 {
		res.MachineBusy = round3(float64(busy1-busy0) / float64(total1-total0) * 100 * float64(runtime.NumCPU()))
	}
	return res, nil
}

// procTicks is utime+stime of a process, in clock ticks.
func procTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, nil
}

func machineTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line := strings.SplitN(string(b), "\n", 2)[0]
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}
