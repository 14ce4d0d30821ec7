package fence

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// How a node is fenced, as Pacemaker's fencer decides it (pure: Plan does
// no I/O, so the decision is tested without devices).
//
// With a fencing topology for the target (fencing-level elements matching
// it by name, name pattern or node attribute), the levels are tried in
// index order, and a level succeeds only if each of its devices succeeds
// in turn (e.g. "cut both power feeds"). Without one, each device that can
// fence the target is tried by itself, highest "priority" first, then in
// configuration order. A device can fence a node when its pcmk_host_list
// or pcmk_host_map names it, or when it names no node at all (pcmk_host_check
// "none"; tachy does not query agents for their lists). pcmk_host_map gives
// the port (plug) the agent is told for the node. pcmk_delay_base and
// pcmk_delay_max delay a device's use: base plus a random part that keeps
// the total under max, so two nodes that fence each other at once
// (a two-node cluster split in half) do not both succeed.

// DeviceConfig is a configured stonith resource.
type DeviceConfig struct {
	ID     string
	Type   string
	Params map[string]string
}

// Level is one fencing-topology level.
type Level struct {
	ID    string
	Index int
	// The nodes it applies to: Target by name, TargetPattern a regular
	// expression over names, or TargetAttribute=TargetValue.
	Target, TargetPattern, TargetAttribute, TargetValue string
	Devices                                             []string
}

// Step is one use of a device in an attempt.
type Step struct {
	Device DeviceConfig
	Port   string        // what the agent is told to fence (plug/port)
	Delay  time.Duration // wait before using it
}

// Attempt is a way to fence the node: every step must succeed, in order.
type Attempt struct {
	Level int // the topology level's index; 0 without topology
	Steps []Step
}

// Plan lists the attempts that may fence target, in the order to try
// them; nodeAttrs are the target's node attributes (for levels that match
// by attribute). rnd draws the random part of delays (nil: math/rand).
func Plan(target string, nodeAttrs map[string]string, devices []DeviceConfig, levels []Level, rnd func() float64) ([]Attempt, error) {
	if rnd == nil {
		rnd = rand.Float64
	}
	byID := map[string]DeviceConfig{}
	for _, d := range devices {
		byID[d.ID] = d
	}
	var mine []Level
	for _, l := range levels {
		ok, err := l.matches(target, nodeAttrs)
		if err != nil {
			return nil, err
		}
		if ok {
			mine = append(mine, l)
		}
	}
	step := func(d DeviceConfig) (Step, error) {
		delay, err := deviceDelay(d, target, rnd)
		if err != nil {
			return Step{}, err
		}
		return Step{Device: d, Port: hostPort(d, target), Delay: delay}, nil
	}
	var out []Attempt
	if len(mine) > 0 {
		slices.SortStableFunc(mine, func(a, b Level) int { return a.Index - b.Index })
		for _, l := range mine {
			a := Attempt{Level: l.Index}
			for _, id := range l.Devices {
				d, ok := byID[id]
				if !ok {
					return nil, fmt.Errorf("fencing-level %s names device %q, which is not a configured stonith resource: fix the topology or create the device", l.ID, id)
				}
				s, err := step(d)
				if err != nil {
					return nil, err
				}
				a.Steps = append(a.Steps, s)
			}
			out = append(out, a)
		}
		return out, nil
	}
	capable := slices.Clone(devices)
	capable = slices.DeleteFunc(capable, func(d DeviceConfig) bool { return !CanFence(d, target) })
	slices.SortStableFunc(capable, func(a, b DeviceConfig) int { return priority(b) - priority(a) })
	for _, d := range capable {
		s, err := step(d)
		if err != nil {
			return nil, err
		}
		out = append(out, Attempt{Steps: []Step{s}})
	}
	return out, nil
}

func (l Level) matches(target string, attrs map[string]string) (bool, error) {
	switch {
	case l.Target != "":
		return l.Target == target, nil
	case l.TargetPattern != "":
		re, err := regexp.Compile(l.TargetPattern)
		if err != nil {
			return false, fmt.Errorf("fencing-level %s: target-pattern %q: %v", l.ID, l.TargetPattern, err)
		}
		return re.MatchString(target), nil
	case l.TargetAttribute != "":
		v, ok := attrs[l.TargetAttribute]
		return ok && v == l.TargetValue, nil
	}
	return false, nil
}

// CanFence reports whether device d may be asked to fence node: with
// pcmk_host_check "none", or without any host list or map, always;
// otherwise when its pcmk_host_list or pcmk_host_map names node.
func CanFence(d DeviceConfig, node string) bool {
	check := d.Params["pcmk_host_check"]
	list, hasList := d.Params["pcmk_host_list"]
	_, hasMap := d.Params["pcmk_host_map"]
	if check == "none" || (!hasList && !hasMap) {
		return true
	}
	if hasList && slices.Contains(splitList(list), node) {
		return true
	}
	_, mapped := parseHostMap(d.Params["pcmk_host_map"])[node]
	return mapped
}

// hostPort is what the agent is told to fence for node: its
// pcmk_host_map entry, else the node's name.
func hostPort(d DeviceConfig, node string) string {
	if p, ok := parseHostMap(d.Params["pcmk_host_map"])[node]; ok {
		return p
	}
	return node
}

// parseHostMap reads "node1:port1;node2:port2" (Pacemaker also accepts
// "=" for ":" and spaces or commas between entries).
func parseHostMap(s string) map[string]string {
	out := map[string]string{}
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == '\t' || r == ',' }) {
		k, v, ok := strings.Cut(e, ":")
		if !ok {
			k, v, ok = strings.Cut(e, "=")
		}
		if ok && k != "" && v != "" {
			out[k] = v
		}
	}
	return out
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\t' })
}

func priority(d DeviceConfig) int {
	p, _ := strconv.Atoi(d.Params["priority"])
	return p
}

// deviceDelay is pcmk_delay_base (a duration, or a per-node map
// "node1:1s;node2:5s") plus a random part that keeps the sum under
// pcmk_delay_max.
func deviceDelay(d DeviceConfig, node string, rnd func() float64) (time.Duration, error) {
	var base, maxDelay time.Duration
	if v := d.Params["pcmk_delay_base"]; v != "" {
		if m := parseHostMap(v); len(m) > 0 {
			v = m[node] // a map without this node: no fixed delay
		}
		if v != "" {
			b, err := parseDelay(v)
			if err != nil {
				return 0, fmt.Errorf("stonith resource %s: pcmk_delay_base %q: %v", d.ID, d.Params["pcmk_delay_base"], err)
			}
			base = b
		}
	}
	if v := d.Params["pcmk_delay_max"]; v != "" {
		m, err := parseDelay(v)
		if err != nil {
			return 0, fmt.Errorf("stonith resource %s: pcmk_delay_max %q: %v", d.ID, v, err)
		}
		maxDelay = m
	}
	if maxDelay > base {
		return base + time.Duration(rnd()*float64(maxDelay-base)), nil
	}
	return base, nil
}

// parseDelay reads a Pacemaker interval: "5", "5s", "500ms", "1min".
func parseDelay(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	v = strings.Replace(strings.Replace(v, "min", "m", 1), "sec", "s", 1)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("not a delay (use seconds, or 500ms, 5s, 1min)")
	}
	return d, nil
}
