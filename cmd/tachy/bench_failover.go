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

type benchFailoverCmd struct {
	JSON        bool          `help:"Print the result as JSON (the only format)." default:"true"`
	Against     string        `help:"Systems to compare with, comma-separated (keepalived), or none." default:"keepalived"`
	Nodes       int           `help:"Lab nodes." default:"3"`
	Repeats     int           `help:"Failovers per fault kind and system." default:"34"`
	Faults      string        `help:"Faults, comma-separated: kill (SIGKILL and links down), pause (SIGSTOP), partition (holder cut off from the majority)." default:"kill,pause,partition"`
	Interval    time.Duration `help:"Heartbeat interval (tachy)." default:"1ms"`
	MissCount   int           `help:"Missed heartbeats before a node is down (tachy)." default:"8"`
	GrantWindow time.Duration `help:"heartbeat.grant_window of tachy's nodes (0: the daemon's default, the detection time)." default:"0s"`
	Probe       time.Duration `help:"The client's probe interval." default:"1ms"`
	Binary      string        `help:"tachy binary the lab's daemons run (default: this one)." type:"path"`
	LogDir      string        `help:"Keep the nodes' logs of every failover slower than 100 ms here." type:"path"`
}

func (c *benchFailoverCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Nodes < 3 || c.Nodes > 16 || c.Repeats < 1 {
		return fmt.Errorf("use --nodes 3..16 and --repeats of at least 1")
	}
	var against []string
	for _, a := range strings.Split(c.Against, ",") {
		if a = strings.TrimSpace(a); a != "" && a != "none" {
			against = append(against, a)
		}
	}
	res, err := bench.Failover(ctx, bench.FailoverOptions{Nodes: c.Nodes, Repeats: c.Repeats, Faults: strings.Split(c.Faults, ","),
		Against: against, Interval: c.Interval, MissCount: c.MissCount, GrantWindow: c.GrantWindow, Probe: c.Probe, Binary: c.Binary, Dir: g.LabDir, Progress: os.Stderr, LogDir: c.LogDir})
	if res != nil {
		if perr := printJSON(res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

type benchServeCmd struct {
	Port int `help:"UDP and TCP port." default:"7007"`
}

func (c *benchServeCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return bench.Serve(ctx, c.Port)
}
