// Package fence runs fencing (STONITH) devices: the fence-agents stdin
// protocol, so that Debian's fence_virsh, fence_ipmilan and friends run
// unchanged, and the namespace lab's own device. The DC fences a node
// before it recovers that node's resources elsewhere; a fencing that fails
// leaves them where they are (DESIGN.md: a resource is never active on two
// nodes).
package fence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Device fences nodes.
type Device interface {
	// Fence makes the target node stop running anything: action is
	// "reboot", "off" or "on" (unfencing).
	Fence(ctx context.Context, target, action string) error
	// Monitor checks the device can fence (Pacemaker monitors stonith
	// resources the same way).
	Monitor(ctx context.Context) error
}

// LabType is the namespace lab's device, stonith:fence_tachy_lab.
const LabType = "fence_tachy_lab"

// New returns the device for a configured stonith resource of the given
// type with its parameters: the lab device, or a fence agent from
// fence-agents found in agentDir (default /usr/sbin).
func New(typ string, params map[string]string, agentDir string) (Device, error) {
	switch typ {
	case LabType:
		return &Lab{Dir: params["lab_dir"], Prefix: params["namespace_prefix"]}, nil
	case QMPType:
		return newQMP(params)
	}
	if agentDir == "" {
		agentDir = "/usr/sbin"
	}
	if strings.ContainsAny(typ, "/\x00") || !strings.HasPrefix(typ, "fence_") {
		return nil, fmt.Errorf("stonith:%s: fence agents are named fence_*", typ)
	}
	path := filepath.Join(agentDir, typ)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("stonith:%s is not installed on this node (%s): install fence-agents or pick another device", typ, path)
	}
	return &Agent{Path: path, Params: params}, nil
}

// Agent runs a fence agent with the fence-agents stdin protocol: one
// name=value per line, action and the target (plug/port) added.
type Agent struct {
	Path   string
	Params map[string]string
}

// pacemakerOnly are parameters Pacemaker's fencer reads itself and does
// not pass to the agent.
var pacemakerOnly = map[string]bool{"pcmk_host_list": true, "pcmk_host_map": true, "pcmk_host_check": true,
	"pcmk_delay_max": true, "pcmk_delay_base": true, "priority": true}

func (a *Agent) run(ctx context.Context, action, target string) error {
	var in bytes.Buffer
	keys := make([]string, 0, len(a.Params))
	for k := range a.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !pacemakerOnly[k] && !strings.HasPrefix(k, "pcmk_") {
			fmt.Fprintf(&in, "%s=%s\n", k, a.Params[k])
		}
	}
	fmt.Fprintf(&in, "action=%s\n", action)
	if target != "" {
		// The port is the node's pcmk_host_map entry, else its name;
		// pcmk_host_argument renames the parameter ("none": not sent).
		port := hostPort(DeviceConfig{Params: a.Params}, target)
		switch arg := a.Params["pcmk_host_argument"]; arg {
		case "", "port", "plug":
			fmt.Fprintf(&in, "plug=%s\nport=%s\n", port, port)
		case "none":
		default:
			fmt.Fprintf(&in, "%s=%s\n", arg, port)
		}
		fmt.Fprintf(&in, "nodename=%s\n", target)
	}
	cmd := exec.CommandContext(ctx, a.Path)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s %s: %v: %s", filepath.Base(a.Path), action, target, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Fence runs the agent's action on the target.
func (a *Agent) Fence(ctx context.Context, target, action string) error {
	return a.run(ctx, action, target)
}

// Monitor runs the agent's monitor action.
func (a *Agent) Monitor(ctx context.Context) error { return a.run(ctx, "monitor", "") }

// Lab fences a namespace-lab node: it kills every process in the node's
// network namespace (its daemon and every agent it ran) and wipes the
// node's volatile state (its agents' state directory), as a reboot would.
type Lab struct {
	Dir    string // the lab's state directory; default /run/tachy-lab
	Prefix string // namespace name prefix; default "tachy-"
}

func (l *Lab) dir() string {
	if l.Dir == "" {
		return "/run/tachy-lab"
	}
	return l.Dir
}

func (l *Lab) namespace(node string) string {
	p := l.Prefix
	if p == "" {
		p = "tachy-"
	}
	return p + node
}

// Fence kills the node's processes ("reboot" and "off" alike: the lab
// restarts nothing by itself) and confirms none is left.
func (l *Lab) Fence(ctx context.Context, target, action string) error {
	if action == "on" {
		return nil
	}
	if strings.ContainsAny(target, "/\x00 ") || target == "" {
		return fmt.Errorf("fence_tachy_lab: bad node name %q", target)
	}
	ns := l.namespace(target)
	for attempt := 0; ; attempt++ {
		pids, err := namespacePIDs(ctx, ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if attempt == 50 {
			return fmt.Errorf("fence_tachy_lab: processes %v of %s survive SIGKILL", pids, target)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	// What a reboot clears: the node's agents' state (HA_RSCTMP and
	// HA_VARRUN, which live in /run on a real node), and the addresses
	// its agents added (a VIP must not keep answering from it).
	for _, d := range []string{"rsctmp", "run"} {
		os.RemoveAll(filepath.Join(l.dir(), target, "state", d))
	}
	return l.resetAddresses(ctx, target, ns)
}

// resetAddresses removes every global address of the node's namespace
// that the lab did not give it (its boot-addresses file).
func (l *Lab) resetAddresses(ctx context.Context, target, ns string) error {
	boot, err := os.ReadFile(filepath.Join(l.dir(), target, "boot-addresses"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a lab from before the file: nothing known to keep
	}
	if err != nil {
		return fmt.Errorf("fence_tachy_lab: %w", err)
	}
	keep := map[string]bool{}
	for _, line := range strings.Split(string(boot), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			keep[f[0]+" "+f[1]] = true
		}
	}
	out, err := exec.CommandContext(ctx, "ip", "-n", ns, "-j", "addr", "show").Output()
	if err != nil {
		return fmt.Errorf("fence_tachy_lab: listing the addresses of %s: %w", target, err)
	}
	var links []struct {
		Name  string `json:"ifname"`
		Addrs []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("fence_tachy_lab: ip -j addr show: %w", err)
	}
	var errs []error
	for _, ln := range links {
		for _, a := range ln.Addrs {
			pfx := a.Local + "/" + strconv.Itoa(a.PrefixLen)
			if a.Scope != "global" || keep[ln.Name+" "+pfx] {
				continue
			}
			if b, err := exec.CommandContext(ctx, "ip", "-n", ns, "addr", "del", pfx, "dev", ln.Name).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("fence_tachy_lab: removing %s from %s of %s: %s", pfx, ln.Name, target, strings.TrimSpace(string(b))))
			}
		}
	}
	return errors.Join(errs...)
}

// Monitor checks the lab exists.
func (l *Lab) Monitor(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(l.dir(), "lab.json")); err != nil {
		return fmt.Errorf("fence_tachy_lab: no lab at %s: %w", l.dir(), err)
	}
	return nil
}

func namespacePIDs(ctx context.Context, ns string) ([]int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("fence_tachy_lab: ip netns pids %s: %s", ns, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("fence_tachy_lab: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
