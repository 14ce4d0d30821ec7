package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tachy-ha/tachy/bench"
	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/internal/ackwriter"
	"github.com/tachy-ha/tachy/lab"
)

type labCmd struct {
	Up        labUpCmd     `cmd:"" help:"Create the lab: nodes n1..nN as namespaces tachy-nN, each running a daemon."`
	Down      labDownCmd   `cmd:"" help:"Remove the lab (daemons, namespaces, bridges, rules)."`
	Status    labStatusCmd `cmd:"" help:"Show each node's processes, links and membership."`
	Kill      labKillCmd   `cmd:"" help:"SIGKILL every process of a node."`
	Pause     labPauseCmd  `cmd:"" help:"SIGSTOP every process of a node."`
	Resume    labResumeCmd `cmd:"" help:"SIGCONT every process of a node."`
	Start     labStartCmd  `cmd:"" help:"Start a node's daemon again (after kill)."`
	Partition labPartCmd   `cmd:"" help:"Partition the nodes into groups, e.g. n1,n2/n3."`
	Heal      labHealCmd   `cmd:"" help:"Remove the partition."`
	Exec      labExecCmd   `cmd:"" help:"Run a command in a node's namespace (node 'client' is tachy-client)."`
	Writer    labWriterCmd `cmd:"" help:"Durability probe: append checksummed records to a file, fsync each, print 'writer: acked N' after each fsync (run on a volume's file system)."`
	Writes    labWritesCmd `cmd:"" help:"Check a probe file written by 'lab writer': the last record of its valid prefix."`
}

type labUpCmd struct {
	Nodes     int           `help:"Number of nodes (1-16)." default:"3"`
	Interval  time.Duration `help:"Heartbeat interval." default:"2ms"`
	MissCount int           `help:"Missed heartbeats before a link is down." default:"4"`
	Receiver  string        `help:"Receive path: auto, xdp or udp." default:"auto" enum:"auto,xdp,udp"`
	Binary    string        `help:"tachy binary the nodes run (default: this one)." type:"path"`
	Wait      time.Duration `help:"Wait up to this long until every node sees every other on every link (0: do not wait)." default:"15s"`
}

func (c *labUpCmd) Run(g *globals) error {
	l, err := lab.Up(context.Background(), lab.UpOptions{Nodes: c.Nodes, Dir: g.LabDir, Binary: c.Binary, Interval: c.Interval, MissCount: c.MissCount, Receiver: c.Receiver})
	if err != nil {
		return err
	}
	if c.Wait > 0 {
		if err := bench.WaitConverged(l, l.Nodes(), c.Receiver, c.Wait); err != nil {
			return fmt.Errorf("lab is up but did not converge: %w (see `tachy lab status` and the logs in %s)", err, g.LabDir)
		}
	}
	fmt.Printf("lab up: %s; `tachy lab status` shows it, `tachy lab down` removes it\n", strings.Join(l.Nodes(), " "))
	return nil
}

type labDownCmd struct{}

func (labDownCmd) Run(g *globals) error { return lab.DownAll(g.LabDir) }

type labStatusCmd struct {
	JSON bool `help:"Print JSON."`
}

// labStatus is the lab's own state plus what each node's daemon reports.
type labStatus struct {
	Lab     lab.Status                   `json:"lab"`
	Daemons map[string]controller.Status `json:"daemons"`
	Errors  map[string]string            `json:"errors,omitempty"`
}

func (c *labStatusCmd) Run(g *globals) error {
	l, err := lab.Open(g.LabDir)
	if err != nil {
		return err
	}
	ls, err := l.Status()
	if err != nil {
		return err
	}
	out := labStatus{Lab: ls, Daemons: map[string]controller.Status{}, Errors: map[string]string{}}
	daemon := map[string]string{}
	for _, ns := range ls.Nodes {
		daemon[ns.Name] = ns.Daemon
	}
	for _, n := range l.Nodes() {
		if daemon[n] != lab.DaemonRunning {
			// A paused daemon cannot answer; asking would only wait for the timeout.
			out.Errors[n] = "daemon " + daemon[n]
			continue
		}
		st, err := controller.Client{Socket: l.Socket(n)}.Status()
		if err != nil {
			out.Errors[n] = err.Error()
			continue
		}
		out.Daemons[n] = st
	}
	if c.JSON {
		return printJSON(out)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPROCESS\tRECEIVER\tQUORUM\tSEES")
	for _, n := range l.Nodes() {
		proc := "-"
		for _, ns := range ls.Nodes {
			if ns.Name == n {
				proc = fmt.Sprintf("%s (pid %d)", ns.Daemon, ns.PID)
			}
		}
		st, ok := out.Daemons[n]
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\n", n, proc, out.Errors[n])
			continue
		}
		var sees []string
		for _, m := range st.Members {
			if m.Local {
				continue
			}
			links := ""
			for _, lk := range m.Links {
				links += map[string]string{"up": "+", "down": "-"}[lk.State]
				if lk.State != "up" && lk.State != "down" {
					links += "?"
				}
			}
			sees = append(sees, fmt.Sprintf("%s:%s[%s]", m.Name, m.State, links))
		}
		q := "no"
		if st.Quorum.Quorate {
			q = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %d/%d\t%s\n", n, proc, st.Receiver, q, st.Quorum.TotalVotes, st.Quorum.ExpectedVotes, strings.Join(sees, " "))
	}
	tw.Flush()
	if len(ls.Partition) > 0 {
		fmt.Println("partition:", ls.Partition)
	}
	return nil
}

type labNode struct {
	Node string `arg:"" help:"Node name, e.g. n1."`
}

func (c labNode) do(g *globals, verb func(*lab.Lab, string) error) error {
	l, err := lab.Open(g.LabDir)
	if err != nil {
		return err
	}
	return verb(l, c.Node)
}

type labKillCmd struct {
	labNode
	Measure bool          `help:"Report how long each survivor took to see the node down (kernel timestamps)."`
	Timeout time.Duration `help:"With --measure: how long to wait for the survivors." default:"5s"`
}
type labPauseCmd struct{ labNode }
type labResumeCmd struct{ labNode }
type labStartCmd struct{ labNode }

func (c *labKillCmd) Run(g *globals) error {
	if !c.Measure {
		return c.do(g, (*lab.Lab).Kill)
	}
	l, err := lab.Open(g.LabDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := bench.NewCollector(ctx, l)
	got, err := bench.KillAndMeasure(l, col, c.Node, c.Timeout)
	if err != nil {
		return err
	}
	for _, n := range l.Nodes() {
		if _, running := l.DaemonPID(n); n == c.Node || running != nil {
			continue
		}
		if d, ok := got[n]; ok {
			fmt.Printf("%s saw %s down %.2f ms after the kill\n", n, c.Node, float64(d)/1e6)
		} else {
			fmt.Printf("%s did not report %s down within %s\n", n, c.Node, c.Timeout)
		}
	}
	// Reap the daemon and clear its PID, as a plain kill does.
	return l.Kill(c.Node)
}
func (c *labPauseCmd) Run(g *globals) error  { return c.do(g, (*lab.Lab).Pause) }
func (c *labResumeCmd) Run(g *globals) error { return c.do(g, (*lab.Lab).Resume) }
func (c *labStartCmd) Run(g *globals) error  { return c.do(g, (*lab.Lab).Start) }

type labPartCmd struct {
	Groups string `arg:"" help:"Groups of nodes separated by /, nodes by commas: n1,n2/n3."`
}

func (c *labPartCmd) Run(g *globals) error {
	l, err := lab.Open(g.LabDir)
	if err != nil {
		return err
	}
	groups, err := lab.ParsePartition(c.Groups, l.Nodes())
	if err != nil {
		return err
	}
	return l.Partition(groups)
}

type labHealCmd struct{}

func (labHealCmd) Run(g *globals) error {
	l, err := lab.Open(g.LabDir)
	if err != nil {
		return err
	}
	return l.Heal()
}

type labWriterCmd struct {
	File     string        `arg:"" help:"The log file (created if missing; a torn tail is cut off first)."`
	Interval time.Duration `help:"Time between records." default:"20ms"`
}

func (c *labWriterCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Interval <= 0 {
		return fmt.Errorf("--interval %v: use a positive duration such as 20ms", c.Interval)
	}
	return ackwriter.Run(ctx, c.File, c.Interval, os.Stdout)
}

type labWritesCmd struct {
	File string `arg:"" help:"The log file."`
	JSON bool   `help:"Print JSON."`
}

func (c *labWritesCmd) Run(g *globals) error {
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := ackwriter.Scan(f)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(res)
	}
	fmt.Printf("writes: last %d, valid %d bytes, torn tail %d bytes\n", res.Last, res.Valid, res.TailBytes)
	return nil
}

type labExecCmd struct {
	Node string   `arg:"" help:"Node name, or 'client'."`
	Argv []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
}

func (c *labExecCmd) Run(g *globals) error {
	l, err := lab.Open(g.LabDir)
	if err != nil {
		return err
	}
	argv := c.Argv
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return fmt.Errorf("no command given: tachy lab exec %s -- COMMAND [ARGS...]", c.Node)
	}
	if c.Node != "client" {
		// So that `tachy lab exec n1 -- tachy status` talks to n1's daemon.
		os.Setenv("TACHY_SOCKET", l.Socket(c.Node))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return l.Exec(ctx, c.Node, argv, os.Stdin, os.Stdout, os.Stderr)
}
