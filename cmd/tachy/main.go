// Command tachy is the Tachy high-availability daemon and its command line.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type globals struct {
	Socket    string `help:"Control socket of the daemon to talk to." env:"TACHY_SOCKET" default:"/run/tachy/tachy.sock" placeholder:"PATH"`
	LabDir    string `help:"State directory of the namespace lab." env:"TACHY_LAB_DIR" default:"/run/tachy-lab" placeholder:"DIR"`
	LogLevel  string `help:"Log level: debug, info, warn, error." default:"info" enum:"debug,info,warn,error"`
	LogFormat string `help:"Log format: text or json." default:"text" enum:"text,json"`
}

type cli struct {
	globals
	Daemon   daemonCmd   `cmd:"" help:"Run the cluster daemon on this node."`
	Status   statusCmd   `cmd:"" help:"Show membership, links and quorum as this node's daemon sees them."`
	Events   eventsCmd   `cmd:"" help:"Stream membership and quorum events from the daemon."`
	Keygen   keygenCmd   `cmd:"" help:"Create the cluster key file that authenticates heartbeats."`
	Config   configCmd   `cmd:"" help:"Check or print a configuration file."`
	Lab      labCmd      `cmd:"" help:"The network-namespace lab: N nodes on two heartbeat rings and a service network."`
	Simulate simulateCmd `cmd:"" help:"Schedule a Pacemaker CIB and print the transition, as crm_simulate -x FILE -S does."`
	Bench    benchCmd    `cmd:"" help:"Benchmarks that print JSON."`
	Version  versionCmd  `cmd:"" help:"Print the version."`
	Init     initCmd     `cmd:"" hidden:"" help:"PID 1 of the appliance image (docs/image.md)."`
}

type versionCmd struct{}

func (versionCmd) Run() error { fmt.Println("tachy", version); return nil }

func main() {
	var c cli
	ctx := kong.Parse(&c,
		kong.Name("tachy"),
		kong.Description("Tachy: membership, quorum and failover for Linux clusters, in one binary."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	setupLogging(c.globals)
	if err := ctx.Run(&c.globals); err != nil {
		fmt.Fprintln(os.Stderr, "tachy:", err)
		os.Exit(1)
	}
}

func setupLogging(g globals) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(g.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if g.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	slog.SetDefault(slog.New(h))
}
