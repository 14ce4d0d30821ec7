package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tachy-ha/tachy/bench"
)

type benchCmd struct {
	Detect benchDetectCmd `cmd:"" help:"Failure detection: time from a kill or a cut to each survivor's down event, false suspicions under CPU stress, CPU per daemon; XDP and user-space receive paths."`
	PE     benchPECmd     `cmd:"" name:"pe" help:"The policy engine against crm_simulate on the same inputs: whole process, scheduling alone, generated clusters."`
	CIB    benchCIBCmd    `cmd:"" name:"cib" help:"The replicated CIB in the namespace lab: Raft commit latency (on the DC and forwarded) and updates per second."`
	Volume benchVolumeCmd `cmd:"" help:"A replicated volume (protocols A, B, C, secondary in another namespace) against nbdkit's file plugin, through fio's nbd engine: write throughput and QD1 latency."`
	// VolumeNode is one process of bench volume, run inside a namespace.
	VolumeNode benchVolumeNodeCmd `cmd:"" name:"volume-node" hidden:"" help:"Internal: one server process of bench volume."`
	Failover   benchFailoverCmd   `cmd:"" help:"Floating IP failover in the namespace lab, against keepalived in the same run: client-observed outage per fault (holder killed, paused, partitioned), and dual ownership seen by an ARP prober."`
	Serve      benchServeCmd      `cmd:"" hidden:"" help:"UDP echo and TCP accept on a port (the failover benchmark's service)."`
}

type benchVolumeCmd struct {
	JSON      bool          `help:"Print the result as JSON (the only format)." default:"true"`
	Dir       string        `help:"Directory for the backing files (its file system is measured)." default:"/var/tmp" type:"path"`
	Size      int64         `help:"Bytes per backing file." default:"268435456"`
	Runtime   time.Duration `help:"Length of each test, per target and round." default:"5s"`
	Rounds    int           `help:"Rounds over all targets (medians are kept)." default:"3"`
	Protocols string        `help:"Replication protocols to measure, comma-separated." default:"A,B,C"`
	Profile   string        `help:"Write a CPU profile of every tachy process into this directory." type:"path"`
	Tests     string        `help:"Tests to run, comma-separated: seq, rand4k, qd1 (the must-show checks need all)." default:"seq,rand4k,qd1"`
	Binary    string        `help:"tachy binary run as primary and secondary (default: this one)." type:"path"`
}

func (c *benchVolumeCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin, err := benchBinary(c.Binary)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bench volume creates network namespaces: run it as root (inside scripts/isolated.sh on a shared machine)")
	}
	var protos []string
	for _, p := range strings.Split(c.Protocols, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p != "A" && p != "B" && p != "C" {
			return fmt.Errorf("--protocols %q: use A, B and/or C", c.Protocols)
		}
		protos = append(protos, p)
	}
	if c.Size < 16<<20 || c.Rounds < 1 || c.Runtime < time.Second {
		return fmt.Errorf("use --size of at least 16 MiB, --rounds of at least 1 and --runtime of at least 1s")
	}
	if c.Profile != "" {
		if err := os.MkdirAll(c.Profile, 0o755); err != nil {
			return err
		}
	}
	res, err := bench.Volume(ctx, bench.VolumeOptions{Binary: bin, Dir: c.Dir, Size: c.Size, Runtime: c.Runtime, Rounds: c.Rounds,
		Protocols: protos, Profile: c.Profile, Tests: strings.Split(c.Tests, ","), Progress: os.Stderr})
	if res != nil {
		if perr := printJSON(res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

type benchVolumeNodeCmd struct {
	Role       string `required:"" enum:"plain,primary,secondary"`
	Backing    string `required:""`
	NBD        string `name:"nbd"`
	Listen     string
	Peer       string
	Echo       string
	Protocol   string
	CPUProfile string `name:"cpuprofile"`
}

func (c *benchVolumeNodeCmd) Run() error {
	secret, err := hex.DecodeString(os.Getenv("TACHY_BENCH_SECRET"))
	if err != nil {
		return fmt.Errorf("TACHY_BENCH_SECRET: %w", err)
	}
	return bench.VolumeNode(bench.VolumeNodeOptions{Role: c.Role, Backing: c.Backing, NBD: c.NBD, Listen: c.Listen, Peer: c.Peer, Echo: c.Echo,
		Protocol: c.Protocol, Secret: secret, CPUProfile: c.CPUProfile, Ready: os.Stdout})
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
	bin, err := benchBinary(c.Binary)
	if err != nil {
		return err
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
	bin, err := benchBinary(c.Binary)
	if err != nil {
		return err
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

// benchBinary is the tachy binary a benchmark runs: the one given, else
// this one.
func benchBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	return os.Executable()
}
