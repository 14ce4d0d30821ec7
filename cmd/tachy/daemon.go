package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	JSON bool `help:"Print JSON."`
}

func (c *statusCmd) Run(g *globals) error {
	st, err := controller.Client{Socket: g.Socket}.Status()
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(st)
	}
	controller.WriteStatus(os.Stdout, st)
	return nil
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
