package fence

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// QMPType is the QEMU device, stonith:fence_tachy_qmp: it fences a VM by
// asking the QEMU that runs it, over QMP (the QEMU Machine Protocol), to
// reset it (reboot) or to quit (off). The VM's memory and CPU state are
// gone at once: no shutdown runs in the guest, as with a power switch.
const QMPType = "fence_tachy_qmp"

// QMP fences VMs through QEMU's QMP sockets. Address is the QMP address of
// the VM to fence, "unix:PATH" or "tcp:HOST:PORT", where "%s" stands for
// the node's port (its pcmk_host_map entry, else its name), e.g.
// "unix:/run/vmtests/%s.qmp".
type QMP struct {
	Address string
	// Map is the device's pcmk_host_map (node to port).
	Map map[string]string
	// QuitWait bounds how long "off" waits for QEMU to be gone after
	// quit (default 10 s).
	QuitWait time.Duration
}

func newQMP(params map[string]string) (*QMP, error) {
	addr := params["qmp"]
	if addr == "" {
		return nil, errors.New("stonith:fence_tachy_qmp needs qmp=unix:PATH or qmp=tcp:HOST:PORT (with %s for the node's port)")
	}
	if !strings.HasPrefix(addr, "unix:") && !strings.HasPrefix(addr, "tcp:") {
		return nil, fmt.Errorf("stonith:fence_tachy_qmp: qmp=%q: use unix:PATH or tcp:HOST:PORT", addr)
	}
	return &QMP{Address: addr, Map: parseHostMap(params["pcmk_host_map"])}, nil
}

// Fence resets (reboot) or stops (off) the VM of target; "on" checks it
// runs. It returns once QEMU has acknowledged the command.
func (q *QMP) Fence(ctx context.Context, target, action string) error {
	port := target
	if p, ok := q.Map[target]; ok {
		port = p
	}
	var cmd string
	switch action {
	case "reboot":
		cmd = "system_reset"
	case "off":
		cmd = "quit"
	case "on":
		cmd = "query-status"
	default:
		return fmt.Errorf("fence_tachy_qmp: unknown action %q (reboot, off, on)", action)
	}
	addr := q.address(port)
	_, err := q.execute(ctx, addr, cmd)
	if cmd == "quit" {
		// QEMU may close the connection before its answer arrives;
		// what confirms "off" is that nothing answers there any more.
		return q.confirmGone(ctx, addr, err)
	}
	if err != nil {
		return fmt.Errorf("fence_tachy_qmp %s %s: %w", action, target, err)
	}
	return nil
}

// confirmGone waits until the VM at addr is off: its QEMU no longer
// accepts connections, or (a hypervisor that outlives its VMs, such as the
// QEMU lab's power switch) it reports the VM shut down.
func (q *QMP) confirmGone(ctx context.Context, addr string, quitErr error) error {
	network, where, _ := strings.Cut(addr, ":")
	wait := q.QuitWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, network, where)
		cancel()
		if err != nil {
			return nil
		}
		c.Close()
		if st, err := q.execute(ctx, addr, "query-status"); err == nil {
			var s struct {
				Status string `json:"status"`
			}
			if json.Unmarshal(st, &s) == nil && s.Status == "shutdown" {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("fence_tachy_qmp off: QEMU at %s still answers after quit (%v)", addr, quitErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Monitor checks the device's QMP address is well formed; with no "%s" in
// it (one VM), that QEMU answers.
func (q *QMP) Monitor(ctx context.Context) error {
	if strings.Contains(q.Address, "%s") {
		return nil
	}
	_, err := q.execute(ctx, q.Address, "query-status")
	if err != nil {
		return fmt.Errorf("fence_tachy_qmp: %w", err)
	}
	return nil
}

func (q *QMP) address(port string) string { return strings.ReplaceAll(q.Address, "%s", port) }

// Execute runs one QMP command (query-status, stop, cont, ...) on the VM
// of port, and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, port, command string) (json.RawMessage, error) {
	return q.execute(ctx, q.address(port), command)
}

// qmpMessage is any line QEMU sends: the greeting, a return, an error or
// an asynchronous event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// execute runs one QMP command: connect, read the greeting, leave
// capabilities negotiation mode, send the command, wait for its return.
func (q *QMP) execute(ctx context.Context, addr, cmd string) (json.RawMessage, error) {
	network, where, _ := strings.Cut(addr, ":")
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, where)
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	r := bufio.NewReaderSize(conn, 64<<10)
	read := func() (*qmpMessage, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			var m qmpMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, fmt.Errorf("QMP %s sent %q: %v", addr, strings.TrimSpace(string(line)), err)
			}
			if m.Event != "" {
				continue // SHUTDOWN, RESET, ...: not an answer
			}
			return &m, nil
		}
	}
	greeting, err := read()
	if err != nil {
		return nil, fmt.Errorf("QMP %s: no greeting: %w", addr, err)
	}
	if greeting.QMP == nil {
		return nil, fmt.Errorf("QMP %s: this is not a QMP server", addr)
	}
	for _, c := range []string{"qmp_capabilities", cmd} {
		if _, err := fmt.Fprintf(conn, "{\"execute\":%q}\n", c); err != nil {
			return nil, fmt.Errorf("QMP %s: %w", addr, err)
		}
		m, err := read()
		if err != nil {
			return nil, fmt.Errorf("QMP %s: %s: %w", addr, c, err)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s: %s", addr, c, m.Error.Class, m.Error.Desc)
		}
		if c == cmd {
			return m.Return, nil
		}
	}
	return nil, nil
}
