package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/fence"
	"github.com/tachy-ha/tachy/lrmd"
)

// stonithMetadata describes stonith resources to lrmd: their parameters
// belong to the device and are checked when it is used.
var stonithMetadata = []byte(`<?xml version="1.0"?>
<resource-agent name="stonith" version="1.0"><version>1.1</version>
<longdesc lang="en">A fencing device, run by tachy's fencer.</longdesc>
<shortdesc lang="en">fencing device</shortdesc><parameters/>
<actions><action name="start" timeout="20s"/><action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="60s"/><action name="meta-data" timeout="5s"/></actions>
</resource-agent>`)

// stonithResource answers a stonith resource's own operations: start and
// stop register the device on this node (the DC finds devices in the CIB
// when it fences), monitor checks a registered device can fence, and
// reports an unregistered one not running, which is what a probe asks.
func stonithResource(d *Daemon) lrmd.Builtin {
	var mu sync.Mutex
	started := map[string]bool{}
	return lrmd.BuiltinFunc{Meta: stonithMetadata, Func: func(ctx context.Context, req lrmd.BuiltinRequest) lrmd.BuiltinResult {
		mu.Lock()
		defer mu.Unlock()
		switch req.Action {
		case "start":
			started[req.Resource] = true
			return lrmd.BuiltinResult{RC: lrmd.OK}
		case "stop":
			delete(started, req.Resource)
			return lrmd.BuiltinResult{RC: lrmd.OK}
		case "monitor":
			if !started[req.Resource] {
				return lrmd.BuiltinResult{RC: lrmd.NotRunning}
			}
		default:
			return lrmd.BuiltinResult{RC: lrmd.OK}
		}
		var p *cib.Primitive
		if d.cib != nil {
			c, _ := d.cib.r.Current()
			p = c.FindPrimitive(req.Resource)
		}
		if p == nil {
			return lrmd.BuiltinResult{RC: lrmd.ErrConfigured, ExitReason: "stonith resource " + req.Resource + " is not in this node's CIB"}
		}
		dev, err := fence.New(p.Type, req.Params, "")
		if err == nil {
			err = dev.Monitor(ctx)
		}
		if err != nil {
			return lrmd.BuiltinResult{RC: lrmd.ErrGeneric, ExitReason: err.Error()}
		}
		return lrmd.BuiltinResult{RC: lrmd.OK}
	}}
}

// fenceNode fences a node with the configured devices that may fence it
// (pcmk_host_list, when set, names the nodes a device reaches), trying
// each in configuration order, and records the result in the CIB. Only a
// confirmed fencing lets the lost node's resources start elsewhere.
func (d *Daemon) fenceNode(ctx context.Context, c *cib.CIB, node, action string) error {
	if action == "" {
		action = "reboot"
	}
	var errs []error
	tried := 0
	for _, p := range stonithDevices(c) {
		params := plainPairs(p.InstanceAttributes)
		if hl := params["pcmk_host_list"]; hl != "" && !containsField(hl, node) {
			continue
		}
		tried++
		dev, err := fence.New(p.Type, params, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		err = dev.Fence(fctx, node, action)
		cancel()
		if err != nil {
			d.count("tachy_fencing_total", "result", "failed")
			errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
			continue
		}
		d.count("tachy_fencing_total", "result", "ok")
		d.log.Warn("node fenced", "peer", node, "action", action, "device", p.ID, "took", time.Since(start).Round(time.Millisecond))
		if action == "on" {
			// pe unfences a node once: it reads #node-unfenced.
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			now := strconv.FormatInt(time.Now().Unix(), 10)
			if _, err := d.submit(sctx, &cib.Change{Op: cib.OpSetNodeAttribute, Node: node, Name: "#node-unfenced", Value: &now}); err != nil {
				return fmt.Errorf("%s was unfenced, but recording it failed: %w", node, err)
			}
			return nil
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := d.submit(sctx, &cib.Change{Op: cib.OpNodeFenced, Node: node}); err != nil {
			return fmt.Errorf("%s was fenced, but recording it failed: %w", node, err)
		}
		return nil
	}
	if tried == 0 {
		return fmt.Errorf("fencing %s: no configured stonith device can fence it; configure one (e.g. stonith:fence_tachy_lab in the lab, fence_ipmilan, fence_virsh)", node)
	}
	return fmt.Errorf("fencing %s failed with every device: %w", node, errors.Join(errs...))
}

func stonithDevices(c *cib.CIB) []*cib.Primitive {
	var out []*cib.Primitive
	for _, r := range c.Configuration.Resources {
		switch r := r.(type) {
		case *cib.Primitive:
			if r.Class == "stonith" {
				out = append(out, r)
			}
		case *cib.Clone:
			if p, ok := r.Child.(*cib.Primitive); ok && p.Class == "stonith" {
				out = append(out, p)
			}
		}
	}
	return out
}

func containsField(list, s string) bool {
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
		if f == s {
			return true
		}
	}
	return false
}
