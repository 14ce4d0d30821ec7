package vmtests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/fence"
)

// VM is one appliance VM: a QEMU process (TCG) booting the tachy kernel
// and initramfs, its NICs on the lab's switches, its serial console read
// and written by the harness, and a QMP socket the harness controls it
// through. Power is the harness's: Kill is a power cut, PowerOn boots it
// again.
type VM struct {
	Name  string
	Index int // 1-based: addresses 10.77.L.Index

	args []string
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	console []string
	waiters []*waiter
	exited  chan struct{}
	off     bool
	boots   int
}

type waiter struct {
	match func(string) bool
	ch    chan string
}

// qmpPath is the harness's own QMP socket of the VM.
func (v *VM) qmpPath() string { return filepath.Join(v.dir, v.Name+".qmp") }

// PowerOn starts the VM (again).
func (v *VM) PowerOn() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd != nil && !v.off {
		return nil
	}
	args := append(append([]string{}, v.args...), "-qmp", "unix:"+v.qmpPath()+",server=on,wait=off")
	cmd := exec.Command("qemu-system-x86_64", args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: qemu: %w", v.Name, err)
	}
	v.cmd, v.stdin, v.off, v.exited = cmd, stdin, false, make(chan struct{})
	v.boots++
	boot := v.boots
	exited := v.exited
	v.console = append(v.console, fmt.Sprintf("=== harness: power on (boot %d) at %s", boot, time.Now().Format(time.TimeOnly+".000")))
	go func() {
		cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sc.Split(consoleLines)
		for sc.Scan() {
			v.line(strings.TrimRight(sc.Text(), "\r"))
		}
		v.mu.Lock()
		if v.cmd == cmd {
			v.off = true
		}
		v.mu.Unlock()
	}()
	return nil
}

// consolePrompt is what the appliance's console prints, without a
// newline, when it waits for a command.
const consolePrompt = "tachy> "

// consoleLines splits the console into lines, and also ends one at a
// prompt that waits for input (no newline follows it until the next
// output).
func consoleLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	if bytes.HasSuffix(data, []byte(consolePrompt)) {
		return len(data), data, nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func (v *VM) line(l string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.console = append(v.console, l)
	keep := v.waiters[:0]
	for _, w := range v.waiters {
		if w.match(l) {
			w.ch <- l
			continue
		}
		keep = append(keep, w)
	}
	v.waiters = keep
}

// WaitFor waits for a console line containing s, printed from now on. A
// fatal error of tachy's init, or a kernel panic, ends the wait.
func (v *VM) WaitFor(ctx context.Context, s string) (string, error) {
	return v.Expect(s)(ctx)
}

// Expect starts watching the console for a line containing s and returns
// the wait for it: lines printed between Expect and the wait are not
// missed.
func (v *VM) Expect(s string) func(ctx context.Context) (string, error) {
	w := &waiter{match: func(l string) bool {
		return strings.Contains(l, s) || strings.Contains(l, "tachy: fatal:") || strings.Contains(l, "Kernel panic")
	}, ch: make(chan string, 1)}
	v.mu.Lock()
	v.waiters = append(v.waiters, w)
	v.mu.Unlock()
	return func(ctx context.Context) (string, error) { return v.wait(ctx, w, s) }
}

func (v *VM) wait(ctx context.Context, w *waiter, s string) (string, error) {
	select {
	case l, ok := <-w.ch:
		if !ok {
			return "", fmt.Errorf("%s: the lab stopped", v.Name)
		}
		if !strings.Contains(l, s) {
			return "", fmt.Errorf("%s: %s (waiting for %q)", v.Name, l, s)
		}
		return l, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%s: no %q on the console: %w", v.Name, s, ctx.Err())
	}
}

// ConsoleLine is a console line and when the harness read it.
type ConsoleLine struct {
	At   time.Time
	Text string
}

// Tap records, from now on and across boots, every console line that
// contains s, with the time it was read; lines returns them so far.
func (v *VM) Tap(s string) (lines func() []ConsoleLine) {
	var mu sync.Mutex
	var got []ConsoleLine
	w := &waiter{match: func(l string) bool {
		if strings.Contains(l, s) {
			mu.Lock()
			got = append(got, ConsoleLine{time.Now(), l})
			mu.Unlock()
		}
		return false // never done: it stays
	}, ch: make(chan string)}
	v.mu.Lock()
	v.waiters = append(v.waiters, w)
	v.mu.Unlock()
	return func() []ConsoleLine {
		mu.Lock()
		defer mu.Unlock()
		return append([]ConsoleLine(nil), got...)
	}
}

// Seen reports whether a console line so far contains s.
func (v *VM) Seen(s string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, l := range v.console {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// Console returns everything the VM printed, across boots.
func (v *VM) Console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.console, "\n")
}

// tail is the last n console lines.
func (v *VM) tail(n int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.console[max(0, len(v.console)-n):], "\n")
}

// Type writes a line to the VM's console (a tachy command: the console
// runs tachy subcommands).
func (v *VM) Type(line string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.off || v.stdin == nil {
		return fmt.Errorf("%s is off", v.Name)
	}
	_, err := io.WriteString(v.stdin, line+"\n")
	return err
}

// Kill cuts the VM's power: QEMU is killed, nothing in the guest runs
// another instruction.
func (v *VM) Kill() error {
	v.mu.Lock()
	cmd, exited := v.cmd, v.exited
	v.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Kill()
	<-exited
	v.mu.Lock()
	v.off = true
	v.console = append(v.console, "=== harness: power cut at "+time.Now().Format(time.TimeOnly+".000"))
	v.mu.Unlock()
	return nil
}

// Off reports whether the VM is powered off.
func (v *VM) Off() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.off || v.cmd == nil
}

// Exited is closed when the current QEMU process ends.
func (v *VM) Exited() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.exited
}

// QMP runs a QMP command on the running VM (stop, cont, system_reset,
// query-status).
func (v *VM) QMP(ctx context.Context, command string) (string, error) {
	if v.Off() {
		return "", fmt.Errorf("%s is off", v.Name)
	}
	out, err := (&fence.QMP{Address: "unix:" + v.qmpPath()}).Execute(ctx, "", command)
	return string(out), err
}

// Pause freezes the VM's CPUs (QMP stop): it is dead to its peers but
// comes back as it was on Resume.
func (v *VM) Pause(ctx context.Context) error {
	_, err := v.QMP(ctx, "stop")
	v.note("pause")
	return err
}

// Resume lets a paused VM run again.
func (v *VM) Resume(ctx context.Context) error {
	_, err := v.QMP(ctx, "cont")
	v.note("resume")
	return err
}

func (v *VM) note(what string) {
	v.mu.Lock()
	v.console = append(v.console, "=== harness: "+what+" at "+time.Now().Format(time.TimeOnly+".000"))
	v.mu.Unlock()
}

// Status is what the power switch reports: running, paused or shutdown.
func (v *VM) Status(ctx context.Context) string {
	if v.Off() {
		return "shutdown"
	}
	out, err := v.QMP(ctx, "query-status")
	if err != nil {
		return "shutdown"
	}
	var st struct {
		Running bool   `json:"running"`
		Status  string `json:"status"`
	}
	if json.Unmarshal([]byte(out), &st) != nil {
		return "running"
	}
	switch {
	case st.Running:
		return "running"
	case st.Status == "paused" || st.Status == "prelaunch":
		return "paused"
	}
	return "running"
}

// Reset is the hardware reset button: the guest reboots at once.
func (v *VM) Reset(ctx context.Context) error {
	if v.Off() {
		return v.PowerOn()
	}
	_, err := v.QMP(ctx, "system_reset")
	v.note("reset")
	return err
}

// stop ends the VM for good (end of the test).
func (v *VM) stop() {
	v.Kill()
	v.mu.Lock()
	for _, w := range v.waiters {
		close(w.ch)
	}
	v.waiters = nil
	v.mu.Unlock()
}

var errNoQEMU = errors.New("qemu-system-x86_64 is not installed (scripts/deps.sh installs it)")

func haveQEMU() error {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return errNoQEMU
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return errors.New("/dev/net/tun is missing")
	}
	return nil
}
