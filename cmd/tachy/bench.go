package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tachy-ha/tachy/bench"
)

type benchCmd struct {
	Detect   benchDetectCmd   `cmd:"" help:"Failure detection: time from a kill or a cut to each survivor's down event, false suspicions under CPU stress, CPU per daemon; XDP and user-space receive paths."`
	PE       benchPECmd       `cmd:"" name:"pe" help:"The policy engine against crm_simulate on the same inputs: whole process, scheduling alone, generated clusters."`
	CIB      benchCIBCmd      `cmd:"" name:"cib" help:"The replicated CIB in the namespace lab: Raft commit latency (on the DC and forwarded) and updates per second."`
	Failover benchFailoverCmd `cmd:"" help:"Floating IP failover in the namespace lab, against keepalived in the same run: client-observed outage per fault (holder killed, paused, partitioned), and dual ownership seen by an ARP prober."`
	Serve    benchServeCmd    `cmd:"" hidden:"" help:"UDP echo and TCP accept on a port (the failover benchmark's service)."`
}

type benchCIBCmd struct {
	JSON     bool          `help:"Print the result as JSON (the only format)." default:"true"`
	Nodes    int           `help:"Lab nodes." default:"3"`
	Updates  int           `help:"Sequential updates timed on the DC and from a follower." default:"500"`
	Clients  int           `help:"Concurrent clients of the throughput run." default:"16"`
	Duration time.Duration `help:"Length of the throughput run." default:"10s"`
	Binary   string        `help:"tachy binary the lab's daemons run (default: this one)." type:"path"`
}

func (c *benchCIBCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := c.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		bin = exe
	}
	if c.Nodes < 1 || c.Nodes > 16 || c.Updates < 1 || c.Clients < 1 {
		return fmt.Errorf("use --nodes 1..16, --updates and --clients of at least 1")
	}
	res, err := bench.CIB(ctx, bench.CIBOptions{Nodes: c.Nodes, Dir: g.LabDir, Binary: bin, Updates: c.Updates,
		Clients: c.Clients, Duration: c.Duration, Progress: os.Stderr})
	if err != nil {
		return err
	}
	return printJSON(res)
}

type benchPECmd struct {
	JSON    bool   `help:"Print the result as JSON (the only format)." default:"true"`
	Corpus  string `help:"Directory of CIB XML inputs." default:"../shared/conformance/pacemaker-2.1.5/xml" type:"path"`
	Repeats int    `help:"Whole-process runs per input and tool (the fastest counts)." default:"3"`
	Profile int    `help:"crm_simulate -P -N repeats, and in-process repeats of the scheduler." default:"50"`
	Limit   int    `help:"At most this many corpus inputs (0: all)."`
	Sizes   string `help:"Generated clusters, RESOURCESxNODES, comma-separated." default:"1000x32,10000x32"`
	Binary  string `help:"tachy binary timed as a whole process (default: this one)." type:"path"`
}

func (c *benchPECmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := c.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		bin = exe
	}
	var sizes [][2]int
	for _, s := range strings.Split(c.Sizes, ",") {
		var r, n int
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%dx%d", &r, &n); err != nil || r < 1 || n < 1 {
			return fmt.Errorf("--sizes %q: use RESOURCESxNODES, e.g. 1000x32", s)
		}
		sizes = append(sizes, [2]int{r, n})
	}
	res, err := bench.PE(ctx, bench.PEOptions{Corpus: c.Corpus, Binary: bin, Repeats: c.Repeats, Profile: max(c.Profile, 1),
		Limit: c.Limit, Sizes: sizes, Progress: os.Stderr})
	if err != nil {
		return err
	}
	return printJSON(res)
}

type benchDetectCmd struct {
	JSON      bool          `help:"Print the result as JSON (the only format; the flag is accepted for symmetry)." default:"true"`
	Nodes     int           `help:"Lab nodes." default:"3"`
	Kills     int           `help:"Daemon SIGKILLs per receive path." default:"50"`
	Cuts      int           `help:"Cuts of all of a node's links, and of one link, per receive path." default:"50"`
	Stress    time.Duration `help:"Full-CPU stress window per receive path." default:"60s"`
	CPUWindow time.Duration `help:"Window over which daemon CPU is measured." default:"10s"`
	Interval  time.Duration `help:"Heartbeat interval." default:"2ms"`
	MissCount int           `help:"Missed heartbeats before a link is down." default:"4"`
	Receivers string        `help:"Receive paths to measure, comma-separated." default:"xdp,udp"`
	Binary    string        `help:"tachy binary the lab nodes run (default: this one)." type:"path"`
}

func (c *benchDetectCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Detect(ctx, bench.DetectOptions{Nodes: c.Nodes, Kills: c.Kills, Cuts: c.Cuts, Stress: c.Stress, CPUWindow: c.CPUWindow,
		Interval: c.Interval, MissCount: c.MissCount, Receivers: strings.Split(c.Receivers, ","), Binary: c.Binary, Dir: g.LabDir, Progress: os.Stderr})
	if res != nil {
		if perr := printJSON(res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}
