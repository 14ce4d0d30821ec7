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

// command is one top-level subcommand.
type command struct {
	name, help string
	cmd        any
	hidden     bool
}

// commands lists the top-level subcommands in the order help shows them.
func commands() []command {
	return []command{
		{name: "daemon", help: "Run the cluster daemon on this node.", cmd: &daemonCmd{}},
		{name: "status", help: "Show membership, links and quorum as this node's daemon sees them.", cmd: &statusCmd{}},
		{name: "events", help: "Stream membership and quorum events from the daemon.", cmd: &eventsCmd{}},
		{name: "keygen", help: "Create the cluster key file that authenticates heartbeats.", cmd: &keygenCmd{}},
		{name: "config", help: "Check or print a configuration file; export or import the cluster's CIB.", cmd: &configCmd{}},
		{name: "cluster", help: "Set up the cluster: its CA and node certificates.", cmd: &clusterCmd{}},
		{name: "property", help: "Cluster properties (crm_config), as pcs property.", cmd: &propertyCmd{}},
		{name: "stonith", help: "Fencing devices: create (as pcs stonith create).", cmd: &stonithCmd{}},
		{name: "resource", help: "Resources: create, delete, move, ban, enable, disable, cleanup, restart, list (as pcs resource).", cmd: &resourceCmd{}},
		{name: "constraint", help: "Location, colocation and order constraints (as pcs constraint).", cmd: &constraintCmd{}},
		{name: "node", help: "Node standby and maintenance (as pcs node).", cmd: &nodeCmd{}},
		{name: "volume", help: "Replicated volumes on this node: create, status, promote, demote, verify, resync, disconnect, connect (as drbdadm).", cmd: &volumeCmd{}},
		{name: "lab", help: "The network-namespace lab: N nodes on two heartbeat rings and a service network.", cmd: &labCmd{}},
		{name: "simulate", help: "Schedule a Pacemaker CIB and print the transition, as crm_simulate -x FILE -S does.", cmd: &simulateCmd{}},
		{name: "bench", help: "Benchmarks that print JSON.", cmd: &benchCmd{}},
		{name: "version", help: "Print the version.", cmd: &versionCmd{}},
		{name: "init", help: "PID 1 of the appliance image (docs/image.md).", cmd: &initCmd{}, hidden: true},
	}
}

// selectCommands returns the subcommands kong must know to parse args. Kong
// reflects over every command's struct tree before parsing, which is most of
// a short command's run time (tachy simulate is benchmarked as a whole
// process against crm_simulate), so when the first argument names a command
// only that one is built; otherwise (no command, a flag first, a typo) all
// are, so help and "did you mean" see everything.
func selectCommands(all []command, args []string) []command {
	if len(args) > 0 {
		for _, c := range all {
			if c.name == args[0] {
				return []command{c}
			}
		}
	}
	return all
}

func newParser(g *globals, args []string, opts ...kong.Option) (*kong.Kong, error) {
	opts = append([]kong.Option{
		kong.Name("tachy"),
		kong.Description("Tachy: membership, quorum and failover for Linux clusters, in one binary."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	}, opts...)
	for _, c := range selectCommands(commands(), args) {
		var tags []string
		if c.hidden {
			tags = append(tags, `hidden:""`)
		}
		opts = append(opts, kong.DynamicCommand(c.name, c.help, "", c.cmd, tags...))
	}
	return kong.New(g, opts...)
}

func main() {
	if code, ok := shim(os.Args); ok {
		os.Exit(code)
	}
	var g globals
	args := os.Args[1:]
	// tachy simulate's usual command lines skip kong (simulate_args.go).
	if c, ok := quickSimulate(args); ok {
		g.LogLevel, g.LogFormat = "info", "text"
		setupLogging(g)
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "tachy:", err)
			os.Exit(1)
		}
		return
	}
	parser, err := newParser(&g, args)
	if err != nil {
		panic(err) // a malformed command definition: a bug, caught by the tests
	}
	ctx, err := parser.Parse(args)
	parser.FatalIfErrorf(err)
	setupLogging(g)
	if err := ctx.Run(&g); err != nil {
		fmt.Fprintln(os.Stderr, "tachy:", err)
		os.Exit(1)
	}
}

type versionCmd struct{}

func (versionCmd) Run() error { fmt.Println("tachy", version); return nil }

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
