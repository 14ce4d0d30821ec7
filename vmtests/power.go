package vmtests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// PowerSwitch is the lab's hypervisor as the cluster sees it: a QMP server
// per VM, on the host's address on the lab network, that the nodes'
// stonith:fence_tachy_qmp device talks to. It outlives its VM as a real
// hypervisor (or a PDU) does: "quit" powers the VM off and it then reports
// "shutdown"; system_reset of a VM that is off powers it on. It answers
// only the commands the fence device uses.
type PowerSwitch struct {
	ln net.Listener
	vm *VM
	// Log records every command, for the test to check who fenced whom.
	Log chan string
}

// ServePower serves vm's power switch on addr (host:port).
func ServePower(addr string, vm *VM) (*PowerSwitch, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("power switch of %s: %w", vm.Name, err)
	}
	p := &PowerSwitch{ln: ln, vm: vm, Log: make(chan string, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p, nil
}

// Close stops the switch.
func (p *PowerSwitch) Close() error { return p.ln.Close() }

func (p *PowerSwitch) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	enc := json.NewEncoder(c)
	enc.Encode(map[string]any{"QMP": map[string]any{"version": map[string]any{}, "capabilities": []string{}}})
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req struct {
			Execute string `json:"execute"`
		}
		if json.Unmarshal(line, &req) != nil {
			enc.Encode(map[string]any{"error": map[string]string{"class": "GenericError", "desc": "malformed command"}})
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		rep, err := p.do(ctx, req.Execute)
		cancel()
		if err != nil {
			enc.Encode(map[string]any{"error": map[string]string{"class": "GenericError", "desc": err.Error()}})
			continue
		}
		enc.Encode(map[string]any{"return": rep})
	}
}

func (p *PowerSwitch) do(ctx context.Context, cmd string) (any, error) {
	switch cmd {
	case "qmp_capabilities":
		return map[string]any{}, nil
	case "query-status":
		st := p.vm.Status(ctx)
		return map[string]any{"status": st, "running": st == "running"}, nil
	case "system_reset":
		p.record("reset")
		// A reset of a paused VM leaves it paused in QEMU; a real
		// machine's reset button starts it again.
		paused := p.vm.Status(ctx) == "paused"
		if err := p.vm.Reset(ctx); err != nil {
			return nil, err
		}
		if paused {
			return map[string]any{}, p.vm.Resume(ctx)
		}
		return map[string]any{}, nil
	case "quit":
		p.record("off")
		return map[string]any{}, p.vm.Kill()
	}
	return nil, fmt.Errorf("the lab's power switch does not do %q", cmd)
}

func (p *PowerSwitch) record(what string) {
	select {
	case p.Log <- what:
	default:
	}
}
