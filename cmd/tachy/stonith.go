package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/fence"
)

type stonithCmd struct {
	Create stonithCreateCmd `cmd:"" help:"Create a fencing device, as pcs stonith create: NAME AGENT [KEY=VALUE ...]."`
}

type stonithCreateCmd struct {
	Args []string `arg:"" help:"NAME AGENT [KEY=VALUE ...] [meta KEY=VALUE ...]; AGENT is a fence agent (fence_ipmilan, fence_virsh, ...) or fence_tachy_lab in the namespace lab." placeholder:"NAME AGENT ..."`
}

func (c *stonithCreateCmd) Run(g *globals) error {
	if len(c.Args) < 2 {
		return fmt.Errorf("give NAME AGENT [KEY=VALUE ...], e.g. tachy stonith create ipmi-n1 fence_ipmilan ip=10.0.0.11 username=admin password=... pcmk_host_list=n1")
	}
	typ := strings.TrimPrefix(c.Args[1], "stonith:")
	args := append([]string{c.Args[0], "stonith:" + typ}, c.Args[2:]...)
	spec, err := parseCreateArgs(args)
	if err != nil {
		return err
	}
	if len(spec.Ops) > 0 {
		return fmt.Errorf("fence devices take no op definitions here: tachy monitors each every 60 s")
	}
	params := map[string]string{}
	for _, kv := range spec.Params {
		params[kv.K] = kv.V
	}
	// The device must exist on this node (its agent installed).
	if _, err := fence.New(typ, params, ""); err != nil {
		return err
	}
	build := func() *cib.Primitive {
		p := &cib.Primitive{ID: spec.Name, Class: "stonith", Type: typ,
			Operations: &cib.Operations{Ops: []*cib.Op{{ID: spec.Name + "-monitor-interval-60s", Name: "monitor", Interval: 60 * time.Second}}}}
		if len(spec.Params) > 0 {
			set := &cib.NVSet{ID: spec.Name + "-instance_attributes"}
			for _, kv := range spec.Params {
				set.Pairs = append(set.Pairs, &cib.NVPair{ID: spec.Name + "-instance_attributes-" + kv.K, Name: kv.K, Value: kv.V, HasValue: true})
			}
			p.InstanceAttributes = []*cib.NVSet{set}
		}
		if len(spec.Meta) > 0 {
			set := &cib.NVSet{ID: spec.Name + "-meta_attributes"}
			for _, kv := range spec.Meta {
				set.Pairs = append(set.Pairs, &cib.NVPair{ID: spec.Name + "-meta_attributes-" + kv.K, Name: kv.K, Value: kv.V, HasValue: true})
			}
			p.MetaAttributes = []*cib.NVSet{set}
		}
		return p
	}
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		if _, err := createResource(cb, build(), createOptions{}); err != nil {
			return "", err
		}
		return fmt.Sprintf("created fence device %s (stonith:%s)", spec.Name, typ), nil
	})
}
