package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/pe"

	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/controller"
)

type daemonCmd struct {
	Config string `help:"Configuration file." short:"c" default:"/etc/tachy/tachy.conf" type:"path" placeholder:"FILE"`
	Node   string `help:"This node's name, if the file's local.node does not say it."`
}

func (c *daemonCmd) Run(g *globals) error {
	cfg, err := config.Load(c.Config)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return controller.Run(ctx, controller.Options{Config: cfg, Node: c.Node})
}

type statusCmd struct {
	JSON  bool          `help:"Print JSON."`
	Watch bool          `help:"Redraw every --interval until interrupted, as crm_mon does." short:"w"`
	Every time.Duration `name:"interval" help:"Redraw interval of --watch." default:"1s"`
}

func (c *statusCmd) Run(g *globals) error {
	if !c.Watch {
		return c.once(g, os.Stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		var b bytes.Buffer
		err := c.once(g, &b)
		fmt.Print("\033[H\033[2J") // home, clear
		os.Stdout.Write(b.Bytes())
		if err != nil {
			fmt.Println("tachy:", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Every):
		}
	}
}

// statusJSON is tachy status --json: the node's view (membership, quorum,
// CIB) and the cluster's resources and nodes as the CIB records them.
type statusJSON struct {
	controller.Status
	Resources []pe.ResourceState `json:"resources"`
	Nodes     []pe.NodeState     `json:"nodes"`
	// Fencing is the CIB's fencing history, newest first.
	Fencing  []cib.FencingRecord `json:"fencing_history"`
	CIBStale bool                `json:"cib_stale,omitempty"`
	CIBError string              `json:"cib_error,omitempty"`
}

func (c *statusCmd) once(g *globals, w io.Writer) error {
	cl := controller.Client{Socket: g.Socket}
	st, err := cl.Status()
	if err != nil {
		return err
	}
	var res *pe.Result
	var doc *cib.CIB
	d, cerr := cl.CIBForDisplay()
	if cerr == nil {
		if doc, cerr = cib.Import(strings.NewReader(d.XML)); cerr == nil {
			res, _, cerr = pe.Simulation(doc)
		}
	}
	if c.JSON {
		out := statusJSON{Status: st, Resources: []pe.ResourceState{}, Nodes: []pe.NodeState{}, Fencing: []cib.FencingRecord{}}
		if res != nil {
			out.Resources, out.Nodes = res.States()
			out.Fencing = newestFirst(doc.FencingHistory())
			out.CIBStale = d.Stale
		}
		if cerr != nil {
			out.CIBError = cerr.Error()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if res != nil {
		if d.Stale {
			fmt.Fprintln(w, "(No DC: this is the local copy of the CIB; it may miss the latest changes.)")
		}
		writeClusterSummary(w, st, doc, res)
	} else {
		fmt.Fprintf(w, "Cluster resources: unavailable: %v\n\n", cerr)
	}
	fmt.Fprintln(w, "Membership:")
	controller.WriteStatus(w, st)
	return nil
}

// writeClusterSummary prints the cluster in crm_mon's layout: a summary,
// the node list and the full list of resources.
func writeClusterSummary(w io.Writer, st controller.Status, doc *cib.CIB, res *pe.Result) {
	fmt.Fprintln(w, "Cluster Summary:")
	fmt.Fprintln(w, "  * Stack: tachy")
	if st.CIB != nil {
		q := "partition with quorum"
		if !st.Quorum.Quorate {
			q = "partition WITHOUT quorum"
		}
		dc := st.CIB.DC
		if dc == "" {
			dc = "NONE"
		}
		fmt.Fprintf(w, "  * Current DC: %s - %s\n", dc, q)
		fmt.Fprintf(w, "  * CIB version: %d.%d.%d\n", st.CIB.Version.AdminEpoch, st.CIB.Version.Epoch, st.CIB.Version.NumUpdates)
	}
	fmt.Fprintf(w, "  * Last updated: %s on %s\n", time.Now().Format(time.ANSIC), st.Node)
	rs, ns := res.States()
	fmt.Fprintf(w, "  * %d nodes configured\n  * %d resource instances configured\n\n", len(ns), len(rs))
	// The rest is crm_simulate's rendering of the same state, one level
	// less indented, as crm_mon prints it.
	lines := strings.Split(strings.TrimRight(res.ClusterStatus(doc), "\n"), "\n")
	for _, l := range lines[1:] {
		if h, ok := strings.CutPrefix(l, "  * "); ok && strings.HasSuffix(h, ":") {
			l = h // section header: "Node List:"
		} else {
			l = strings.TrimPrefix(l, "  ")
		}
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	if h := doc.FencingHistory(); len(h) > 0 {
		fmt.Fprintln(w, "Fencing History:")
		for _, f := range newestFirst(h) {
			fmt.Fprintln(w, "  * "+fencingLine(f))
		}
		fmt.Fprintln(w)
	}
}

// fencingLine is a fencing as crm_mon's Fencing History shows it.
func fencingLine(f cib.FencingRecord) string {
	when := time.Unix(f.Completed, 0).UTC().Format("2006-01-02 15:04:05Z")
	if f.OK {
		return fmt.Sprintf("%s of %s successful: delegate=%s, client=tachy, origin=%s, completed='%s'", f.Action, f.Target, f.Delegate, f.Origin, when)
	}
	return fmt.Sprintf("%s of %s failed: delegate=%s, client=tachy, origin=%s, last-failed='%s'", f.Action, f.Target, f.Delegate, f.Origin, when)
}

func newestFirst(h []cib.FencingRecord) []cib.FencingRecord {
	out := slices.Clone(h)
	slices.Reverse(out)
	return out
}

type eventsCmd struct {
	JSON bool `help:"Print one JSON object per line."`
}

func (c *eventsCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(os.Stdout)
	return controller.Client{Socket: g.Socket}.Events(ctx, nil, func(e controller.Event) bool {
		if c.JSON {
			return enc.Encode(e) == nil
		}
		fmt.Println(formatEvent(e))
		return true
	})
}

func formatEvent(e controller.Event) string {
	s := fmt.Sprintf("%s %-13s", e.Wall.Format(time.TimeOnly+".000000"), e.Type)
	if e.NodeName != "" {
		s += " node=" + e.NodeName
	}
	if e.Link != nil {
		s += fmt.Sprintf(" link=%d", *e.Link)
	}
	if e.Quorum != nil {
		s += " " + e.Quorum.Reason
	}
	return s
}

type keygenCmd struct {
	Output string `arg:"" help:"Key file to create (refuses to overwrite)." default:"/etc/tachy/cluster.key" type:"path"`
}

func (c *keygenCmd) Run(g *globals) error {
	key, err := config.GenerateKey()
	if err != nil {
		return err
	}
	if err := config.WriteKey(c.Output, key); err != nil {
		return err
	}
	fmt.Printf("wrote %s (mode 0600); copy it to every node of the cluster over a secure channel\n", c.Output)
	return nil
}

type configCmd struct {
	Check   configCheckCmd   `cmd:"" help:"Check a configuration file and print its problems."`
	Example configExampleCmd `cmd:"" help:"Print a commented example configuration."`
	Export  configExportCmd  `cmd:"" help:"Print the cluster's CIB as Pacemaker CIB XML."`
	Import  configImportCmd  `cmd:"" help:"Replace the cluster's configuration with a Pacemaker CIB XML file (its status section is ignored)."`
}

type configCheckCmd struct {
	File string `arg:"" help:"Configuration file." type:"path"`
}

func (c *configCheckCmd) Run(g *globals) error {
	cfg, err := config.Load(c.File)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Println("warning:", w)
	}
	fmt.Printf("%s: ok (%d nodes, %d links)\n", c.File, len(cfg.Nodes), cfg.Links())
	return nil
}

type configExampleCmd struct{}

func (configExampleCmd) Run(g *globals) error { fmt.Print(config.Example()); return nil }

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
