package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/controller"
)

type clusterCmd struct {
	Init clusterInitCmd `cmd:"" help:"Make the cluster CA and a certificate for every node of the configuration, in cib.pki_dir."`
}

type clusterInitCmd struct {
	Config string `help:"Configuration file." short:"c" default:"/etc/tachy/tachy.conf" type:"path" placeholder:"FILE"`
}

func (c *clusterInitCmd) Run() error {
	cfg, err := config.Load(c.Config)
	if err != nil {
		return err
	}
	var names []string
	for _, n := range cfg.Nodes {
		names = append(names, n.Name)
	}
	if err := replica.InitPKI(cfg.CIB.PKIDir, cfg.Cluster.Name, names); err != nil {
		return err
	}
	fmt.Printf("made the CA of cluster %s and certificates for %s in %s\ncopy that directory to every node (ca.key may stay here), then start the daemons\n",
		cfg.Cluster.Name, strings.Join(names, ", "), cfg.CIB.PKIDir)
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
