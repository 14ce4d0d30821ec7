package lrmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tachy-ha/tachy/vip"
)

// VIPAgentName is the built-in floating IP agent's type: tachy:vip (also
// ocf:tachy:vip).
const VIPAgentName = "vip"

const vipMetadata = `<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="vip" version="1.0">
<version>1.1</version>
<longdesc lang="en">
A floating IP address (IPv4 or IPv6), built into tachy: added through rtnetlink
(IPv6 without duplicate address detection), announced with gratuitous ARP or an
unsolicited neighbour advertisement, and answered for by the XDP ARP responder
while this node's quorum lease lasts. It takes the parameters of IPaddr2 that
matter for that (ip, cidr_netmask, nic). With the meta attribute
requires=quorum, the fast failover path moves it without waiting for fencing.
</longdesc>
<shortdesc lang="en">Floating IP address (built in)</shortdesc>
<parameters>
<parameter name="ip" unique="1" required="1">
<longdesc lang="en">The address, IPv4 (10.0.0.10) or IPv6 (fd00::10).</longdesc>
<shortdesc lang="en">IP address</shortdesc>
<content type="string"/>
</parameter>
<parameter name="cidr_netmask">
<longdesc lang="en">Prefix length (24, 64) or IPv4 netmask. Default: that of the interface's subnet holding ip.</longdesc>
<shortdesc lang="en">Prefix length</shortdesc>
<content type="string"/>
</parameter>
<parameter name="nic">
<longdesc lang="en">Interface to put the address on. Default: the one whose subnet holds ip.</longdesc>
<shortdesc lang="en">Interface</shortdesc>
<content type="string"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
`

// vipProbe is how long a start (on the slow path) asks whether another
// host answers for an IPv4 address before it takes it.
const vipProbe = 6 * time.Millisecond

// vipLeaseWait bounds how long a start waits for this node's quorum lease
// (vip.Manager.WaitLease): between two leases, a node holds one again
// within milliseconds; a node that gets none for this long lacks a quorum
// of peers that hear it, and the start fails.
const vipLeaseWait = 2 * time.Second

// VIPAgent is the built-in vip agent over m. With a nil m it only gives
// its meta-data (for tools that check parameters).
func VIPAgent(m *vip.Manager) Builtin {
	return BuiltinFunc{Meta: []byte(vipMetadata), Func: func(ctx context.Context, req BuiltinRequest) BuiltinResult {
		return runVIP(ctx, m, req)
	}}
}

func runVIP(ctx context.Context, m *vip.Manager, req BuiltinRequest) BuiltinResult {
	if req.Action == "meta-data" {
		return BuiltinResult{RC: OK, Output: vipMetadata}
	}
	s, err := vip.ParseSpec(req.Params)
	if err != nil {
		return BuiltinResult{RC: ErrConfigured, ExitReason: err.Error()}
	}
	if m == nil {
		return BuiltinResult{RC: ErrInstalled, ExitReason: "the vip agent runs inside the tachy daemon only"}
	}
	switch req.Action {
	case "validate-all":
		return BuiltinResult{RC: OK}
	case "start":
		// Nobody else may answer for the address (the fast path's
		// take-over skips this: Manager.SkipProbe).
		s.Probe = vipProbe
		wctx, cancel := context.WithTimeout(ctx, vipLeaseWait)
		err := startUnderLease(wctx, m.WaitLease, func() error { return m.Start(s) })
		cancel()
		if err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		}
		return BuiltinResult{RC: OK}
	case "stop":
		if err := m.Stop(s); err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		}
		return BuiltinResult{RC: OK}
	case "monitor", "status":
		up, err := m.Running(s)
		switch {
		case err != nil:
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		case up:
			return BuiltinResult{RC: OK}
		}
		return BuiltinResult{RC: NotRunning, ExitReason: fmt.Sprintf("%s is not on this node", s.IP)}
	}
	return BuiltinResult{RC: ErrUnimplemented, ExitReason: "the vip agent has no action " + req.Action}
}

// startUnderLease waits for this node's quorum lease, then starts. The
// lease can end during the start's ARP probe (a peer's frames late for a
// moment, on a busy machine): Start then refuses (vip.ErrNoLease), and the
// start waits for the next lease and tries again, probe included, until
// ctx ends. Failing at once would leave the VIP stopped until the DC's
// next transition, a second or more later.
func startUnderLease(ctx context.Context, wait func(context.Context) error, start func() error) error {
	for {
		err := wait(ctx)
		if err == nil {
			err = start()
		}
		if !errors.Is(err, vip.ErrNoLease) || ctx.Err() != nil {
			return err
		}
	}
}

// TachyBuiltins is the registry of tachy's own agents that need no cluster
// state: vip over m, filesystem, and process with its pid files in runDir
// (nil and "": meta-data only). The daemon adds volume.
func TachyBuiltins(m *vip.Manager, runDir string) *Registry {
	r := NewRegistry()
	for name, a := range map[string]Builtin{VIPAgentName: VIPAgent(m), FilesystemAgentName: FilesystemAgent(), ProcessAgentName: ProcessAgent(runDir)} {
		if err := r.Register(name, a); err != nil {
			panic(err) // the meta-data are constants
		}
	}
	return r
}
