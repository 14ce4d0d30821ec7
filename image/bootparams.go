package image

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
)

// Paths inside the initramfs that the image builder and `tachy init` agree on.
const (
	// ModuleLoadList lists the modules to load, one absolute path a line,
	// each after the modules it depends on.
	ModuleLoadList = "/lib/modules/tachy.load"
	// ConfigDir holds the configuration directory given to the builder.
	ConfigDir = "/etc/tachy"
	// ReleaseFile says what the image was built from.
	ReleaseFile = "/etc/tachy-release"
)

// Test actions (tachy.test=...), for tests that must not hang.
const (
	// TestPoweroffWhenReady powers the VM off once it is ready.
	TestPoweroffWhenReady = "poweroff-when-ready"
	// TestPoweroffWhenPeersUp powers it off once every configured peer
	// has been seen up (and a second more, for the peers to see it too).
	TestPoweroffWhenPeersUp = "poweroff-when-peers-up"
)

// BootParams are the tachy.* keys of the kernel command line.
type BootParams struct {
	Node   string      // tachy.node=NAME: the node's name (and host name)
	Addrs  []IfaceAddr // tachy.addr=IF=ADDR/LEN[,IF=ADDR/LEN...]
	Config string      // tachy.config=PATH, default /etc/tachy/tachy.conf
	Test   string      // tachy.test=ACTION
	// Data is tachy.data=PARTNAME: the GPT partition (ext4) mounted on
	// /var/lib/tachy, whose boot-params file adds to this command line
	// (the disk image's data partition, DataPartitionName).
	Data  string
	Other []string // other kernel parameters, for the log
}

// IfaceAddr is one address to put on an interface.
type IfaceAddr struct {
	Iface  string
	Prefix netip.Prefix
}

var nodeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`) })
var ifaceName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,15}$`) })

// ParseCmdline reads the tachy.* keys from a kernel command line
// (/proc/cmdline). Unknown tachy.* keys are errors, so a typo is not
// silently ignored; other parameters are the kernel's business. Quoting
// ("a b") is understood as the kernel does.
func ParseCmdline(s string) (BootParams, error) {
	p := BootParams{Config: ConfigDir + "/tachy.conf"}
	var errs []string
	for _, w := range splitCmdline(s) {
		k, v, hasValue := strings.Cut(w, "=")
		if !strings.HasPrefix(k, "tachy.") {
			if w == "--" {
				break // what follows is init's argv
			}
			p.Other = append(p.Other, w)
			continue
		}
		if !hasValue || v == "" {
			errs = append(errs, fmt.Sprintf("%s: needs a value (%s=...)", k, k))
			continue
		}
		switch k {
		case "tachy.node":
			if !nodeName().MatchString(v) {
				errs = append(errs, fmt.Sprintf("tachy.node=%s: a node name is 1-32 characters a-z 0-9 -, starting with a letter", v))
			}
			p.Node = v
		case "tachy.addr":
			for _, a := range strings.Split(v, ",") {
				ifc, pfx, ok := strings.Cut(a, "=")
				pr, err := netip.ParsePrefix(pfx)
				if !ok || !ifaceName().MatchString(ifc) || err != nil {
					errs = append(errs, fmt.Sprintf("tachy.addr: %q is not INTERFACE=ADDRESS/PREFIXLEN (e.g. eth0=10.77.0.1/24)", a))
					continue
				}
				p.Addrs = append(p.Addrs, IfaceAddr{Iface: ifc, Prefix: pr})
			}
		case "tachy.config":
			if !strings.HasPrefix(v, "/") {
				errs = append(errs, fmt.Sprintf("tachy.config=%s: must be an absolute path", v))
			}
			p.Config = v
		case "tachy.data":
			if !ifaceName().MatchString(v) {
				errs = append(errs, fmt.Sprintf("tachy.data=%s: a GPT partition name such as %s", v, DataPartitionName))
			}
			p.Data = v
		case "tachy.test":
			if v != TestPoweroffWhenReady && v != TestPoweroffWhenPeersUp {
				errs = append(errs, fmt.Sprintf("tachy.test=%s: allowed: %s, %s", v, TestPoweroffWhenReady, TestPoweroffWhenPeersUp))
			}
			p.Test = v
		default:
			errs = append(errs, fmt.Sprintf("%s: unknown key; allowed: tachy.node, tachy.addr, tachy.config, tachy.data, tachy.test", k))
		}
	}
	if len(errs) > 0 {
		return p, fmt.Errorf("kernel command line: %s", strings.Join(errs, "; "))
	}
	return p, nil
}

// splitCmdline splits on spaces outside double quotes and drops the quotes,
// as the kernel's next_arg does.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case (r == ' ' || r == '\t' || r == '\n') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
