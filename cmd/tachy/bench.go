package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tachy-ha/tachy/bench"
)

type benchCmd struct {
	Detect benchDetectCmd `cmd:"" help:"Failure detection: time from a kill or a cut to each survivor's down event, false suspicions under CPU stress, CPU per daemon; XDP and user-space receive paths."`
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
