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

// fenceNode fences a node as Pacemaker's fencer does (fence.Plan: the
// fencing topology's levels for the node, else each device that may fence
// it, with pcmk_host_map ports and pcmk_delay_base/max delays), records
// the outcome in the CIB's fencing history, and records a confirmed
// fencing. Only a confirmed fencing lets the lost node's resources start
// elsewhere; a failed one leaves them where they were.
func (d *Daemon) fenceNode(ctx context.Context, c *cib.CIB, node, action string) error {
	if action == "" {
		action = "reboot"
	}
	levels, err := fencingLevels(c)
	if err != nil {
		return err
	}
	var devices []fence.DeviceConfig
	for _, p := range stonithDevices(c) {
		devices = append(devices, fence.DeviceConfig{ID: p.ID, Type: p.Type, Params: plainPairs(p.InstanceAttributes)})
	}
	var attrs map[string]string
	for _, n := range c.Configuration.Nodes {
		if n.Uname == node {
			attrs = plainPairs(n.InstanceAttributes)
		}
	}
	attempts, err := fence.Plan(node, attrs, devices, levels, nil)
	if err != nil {
		return fmt.Errorf("fencing %s: %w", node, err)
	}
	if len(attempts) == 0 {
		return fmt.Errorf("fencing %s: no configured stonith device can fence it; configure one (e.g. stonith:fence_tachy_lab in the lab, fence_ipmilan, fence_virsh) or list %s in a device's pcmk_host_list", node, node)
	}
	var errs []error
	var lastDevice string
	for _, a := range attempts {
		used, err := d.runAttempt(ctx, node, action, a)
		lastDevice = used
		if err != nil {
			d.count("tachy_fencing_total", "result", "failed")
			d.log.Warn("fencing attempt failed; trying the next", "peer", node, "level", a.Level, "err", err)
			errs = append(errs, err)
			continue
		}
		d.count("tachy_fencing_total", "result", "ok")
		d.recordFencing(ctx, &cib.FencingRecord{Target: node, Action: action, OK: true, Device: used})
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
	err = fmt.Errorf("fencing %s failed with every device: %w", node, errors.Join(errs...))
	d.recordFencing(ctx, &cib.FencingRecord{Target: node, Action: action, Device: lastDevice, Error: err.Error()})
	return err
}

// runAttempt runs one attempt's devices in turn, each after its delay;
// it returns the devices used ("a+b").
func (d *Daemon) runAttempt(ctx context.Context, node, action string, a fence.Attempt) (string, error) {
	var used []string
	for _, st := range a.Steps {
		used = append(used, st.Device.ID)
		if st.Delay > 0 {
			d.log.Info("fencing delay (pcmk_delay_base/max)", "peer", node, "device", st.Device.ID, "delay", st.Delay.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return strings.Join(used, "+"), ctx.Err()
			case <-time.After(st.Delay):
			}
		}
		dev, err := fence.New(st.Device.Type, st.Device.Params, "")
		if err != nil {
			return strings.Join(used, "+"), fmt.Errorf("%s: %w", st.Device.ID, err)
		}
		fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		err = dev.Fence(fctx, node, action)
		cancel()
		if err != nil {
			return strings.Join(used, "+"), fmt.Errorf("%s: %w", st.Device.ID, err)
		}
		d.log.Warn("node fenced", "peer", node, "action", action, "device", st.Device.ID, "level", a.Level, "took", time.Since(start).Round(time.Millisecond))
	}
	return strings.Join(used, "+"), nil
}

// recordFencing adds to the CIB's fencing history; a failure to record
// is logged, not returned (the fencing itself is what counts).
func (d *Daemon) recordFencing(ctx context.Context, f *cib.FencingRecord) {
	f.Delegate, f.Origin, f.Completed = d.local.Name, d.local.Name, time.Now().Unix()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.submit(sctx, &cib.Change{Op: cib.OpRecordFencing, Fencing: f}); err != nil {
		d.log.Warn("cannot record a fencing in the CIB's history", "peer", f.Target, "err", err)
	}
}

// fencingLevels reads the configuration's fencing-topology.
func fencingLevels(c *cib.CIB) ([]fence.Level, error) {
	var out []fence.Level
	for _, sec := range c.Configuration.Other {
		if sec.Name != "fencing-topology" {
			continue
		}
		for _, e := range sec.Children {
			if e.Name != "fencing-level" {
				continue
			}
			get := func(k string) string { v, _ := e.Attr(k); return v }
			l := fence.Level{ID: get("id"), Target: get("target"), TargetPattern: get("target-pattern"),
				TargetAttribute: get("target-attribute"), TargetValue: get("target-value")}
			idx, err := strconv.Atoi(get("index"))
			if err != nil || idx < 1 {
				return nil, fmt.Errorf("fencing-level %s: index %q is not a positive number: fix the fencing topology", l.ID, get("index"))
			}
			l.Index = idx
			for _, dev := range strings.Split(get("devices"), ",") {
				if dev = strings.TrimSpace(dev); dev != "" {
					l.Devices = append(l.Devices, dev)
				}
			}
			if len(l.Devices) == 0 {
				return nil, fmt.Errorf("fencing-level %s names no devices: fix the fencing topology", l.ID)
			}
			out = append(out, l)
		}
	}
	return out, nil
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
