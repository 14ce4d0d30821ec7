package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/controller"
)

type clusterCmd struct {
	Init clusterInitCmd `cmd:"" help:"Make the cluster CA, a join token and certificates for the founding nodes, in cib.pki_dir."`
	Join clusterJoinCmd `cmd:"" help:"Get this node's certificate from a member, proving the join token."`
}

type clusterInitCmd struct {
	Config  string   `help:"Configuration file." short:"c" default:"/etc/tachy/tachy.conf" type:"path" placeholder:"FILE"`
	Members []string `help:"The founding nodes (default: every node of the configuration); the others join later with tachy cluster join." placeholder:"NODE,..."`
}

func (c *clusterInitCmd) Run() error {
	cfg, err := config.Load(c.Config)
	if err != nil {
		return err
	}
	names := c.Members
	if len(names) == 0 {
		for _, n := range cfg.Nodes {
			names = append(names, n.Name)
		}
	}
	for _, n := range names {
		if _, ok := cfg.Node(n); !ok {
			return fmt.Errorf("--members: %q is not a node of %s", n, c.Config)
		}
	}
	if err := replica.InitPKI(cfg.CIB.PKIDir, cfg.Cluster.Name, names); err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(cfg.CIB.PKIDir, "join.token"))
	if err != nil {
		return err
	}
	fmt.Printf("made the CA of cluster %s and certificates for %s in %s\n"+
		"copy that directory to each of them (ca.key and join.token only to the nodes that may admit others), then start the daemons;\n"+
		"other nodes of the configuration join with:\n  tachy cluster join --config FILE --peer MEMBER:%d --token %s\n",
		cfg.Cluster.Name, strings.Join(names, ", "), cfg.CIB.PKIDir, cfg.CIB.Port, strings.TrimSpace(string(tok)))
	return nil
}

type clusterJoinCmd struct {
	Config string `help:"Configuration file (the node's, listing every node)." short:"c" default:"/etc/tachy/tachy.conf" type:"path" placeholder:"FILE"`
	Node   string `help:"This node's name, if the file's local.node does not say it."`
	Peer   string `help:"A member's CIB address, HOST:PORT." required:""`
	Token  string `help:"The cluster's join token (tachy cluster init prints it; pki/join.token on a member)." required:"" env:"TACHY_JOIN_TOKEN"`
}

func (c *clusterJoinCmd) Run() error {
	cfg, err := config.Load(c.Config)
	if err != nil {
		return err
	}
	local, err := cfg.LocalNode(c.Node)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.CIB.PKIDir, local.Name+".crt")); err == nil {
		return fmt.Errorf("%s already has a certificate in %s; remove it to join again", local.Name, cfg.CIB.PKIDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := replica.Join(ctx, c.Peer, local.Name, c.Token, cfg.CIB.PKIDir); err != nil {
		return err
	}
	fmt.Printf("%s has its certificate in %s; start its daemon: the DC adds it to the CIB's members\n", local.Name, cfg.CIB.PKIDir)
	return nil
}

type configExportCmd struct {
	Output string `help:"Write to this file instead of standard output." short:"o" type:"path" placeholder:"FILE"`
}

func (c *configExportCmd) Run(g *globals) error {
	doc, err := controller.Client{Socket: g.Socket}.CIB()
	if err != nil {
		return err
	}
	if c.Output == "" {
		_, err = os.Stdout.WriteString(doc.XML)
		return err
	}
	return os.WriteFile(c.Output, []byte(doc.XML), 0o600)
}

type configImportCmd struct {
	File string `arg:"" help:"Pacemaker CIB XML file." type:"existingfile"`
}

func (c *configImportCmd) Run(g *globals) error {
	data, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	// Checked here first, so a mistake is reported with the file's name
	// before anything reaches the cluster; the DC checks again.
	if _, err := cib.Import(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%s: %w; nothing was changed", c.File, err)
	}
	v, err := controller.Client{Socket: g.Socket}.Change(&cib.Change{Op: cib.OpReplaceConfiguration, XML: string(data)})
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was changed", c.File, err)
	}
	fmt.Printf("configuration imported: CIB version %d.%d.%d\n", v.AdminEpoch, v.Epoch, v.NumUpdates)
	return nil
}

type propertyCmd struct {
	Set   propertySetCmd   `cmd:"" help:"Set cluster properties: NAME=VALUE ..."`
	Unset propertyUnsetCmd `cmd:"" help:"Remove cluster properties (back to their defaults)."`
	List  propertyListCmd  `cmd:"" help:"List the cluster properties that are set."`
}

type propertySetCmd struct {
	Pairs []string `arg:"" help:"NAME=VALUE pairs, e.g. stonith-enabled=false." placeholder:"NAME=VALUE"`
}

func (c *propertySetCmd) Run(g *globals) error {
	var chs []*cib.Change
	for _, p := range c.Pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return fmt.Errorf("%q: write NAME=VALUE, e.g. stonith-enabled=false", p)
		}
		chs = append(chs, &cib.Change{Op: cib.OpSetProperty, Name: name, Value: &value})
	}
	return applyChanges(g, chs)
}

type propertyUnsetCmd struct {
	Names []string `arg:"" help:"Property names."`
}

func (c *propertyUnsetCmd) Run(g *globals) error {
	var chs []*cib.Change
	for _, n := range c.Names {
		chs = append(chs, &cib.Change{Op: cib.OpSetProperty, Name: n})
	}
	return applyChanges(g, chs)
}

func applyChanges(g *globals, chs []*cib.Change) error {
	cl := controller.Client{Socket: g.Socket}
	for _, ch := range chs {
		if _, err := cl.Change(ch); err != nil {
			return fmt.Errorf("%s %s: %w", ch.Op, ch.Name, err)
		}
	}
	return nil
}

type propertyListCmd struct {
	JSON bool `help:"Print JSON."`
}

func (c *propertyListCmd) Run(g *globals) error {
	doc, err := controller.Client{Socket: g.Socket}.CIB()
	if err != nil {
		return err
	}
	parsed, err := cib.Import(strings.NewReader(doc.XML))
	if err != nil {
		return err
	}
	props := map[string]string{}
	for _, set := range parsed.Configuration.CRMConfig {
		for _, p := range set.Pairs {
			if p.HasValue {
				props[p.Name] = p.Value
			}
		}
	}
	if c.JSON {
		return printJSON(props)
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("Cluster Properties:")
	for _, n := range names {
		fmt.Printf(" %s: %s\n", n, props[n])
	}
	return nil
}
