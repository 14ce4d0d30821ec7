package lab

// Processes: the daemons, and every other process in a node's namespace.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Daemon states, as Status reports them.
const (
	DaemonRunning = "running" // alive and not stopped
	DaemonPaused  = "paused"  // stopped by SIGSTOP (Pause): state T in /proc/PID/stat
	DaemonDead    = "dead"    // started, and gone since (Kill, a crash)
	DaemonNone    = "none"    // never started (UpOptions.NoDaemons)
)

// procStat returns a process's state letter and start time (fields 3 and
// 22 of /proc/PID/stat); ok is false if there is no such process.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) is in parentheses and may hold anything.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], start, true
}

// alive reports whether a recorded daemon still exists (possibly stopped),
// and is the same process, not a later one that got its PID.
func alive(d daemonInfo) bool {
	if d.PID <= 0 {
		return false
	}
	st, start, ok := procStat(d.PID)
	return ok && start == d.StartTime && st != 'Z' && st != 'X' && st != 'x'
}

func stopped(pid int) bool {
	st, _, ok := procStat(pid)
	return ok && (st == 'T' || st == 't')
}

// daemonState is the state of node's daemon and its PID (0 if none was
// started).
func (l *Lab) daemonState(node string) (string, int) {
	l.mu.Lock()
	d, ok := l.st.Daemons[node]
	l.mu.Unlock()
	switch {
	case !ok || d.PID == 0:
		return DaemonNone, 0
	case !alive(d):
		return DaemonDead, d.PID
	case stopped(d.PID):
		return DaemonPaused, d.PID
	}
	return DaemonRunning, d.PID
}

// namespacePIDs lists the processes in a named network namespace: those
// whose /proc/PID/ns/net is the namespace's inode (like `ip netns pids`).
// Zombies have no namespace any more and are not listed.
func namespacePIDs(ns string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", ns), &want); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			out = append(out, pid)
		}
	}
	return out, nil
}

// killNamespace sends sig to every process in ns. For SIGKILL it waits
// until they are gone, sending it again to any process that appeared
// meanwhile (a fork).
func killNamespace(ns string, sig unix.Signal) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := namespacePIDs(ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
		if sig != unix.SIGKILL {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s: processes %v still exist 5s after SIGKILL", ns, pids)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Kill sends SIGKILL to every process in node's namespace (the daemon and
// anything started with Exec; "client" names the client's namespace) and
// waits until they are gone.
func (l *Lab) Kill(node string) error {
	i, err := l.nodeIndex(node)
	if err != nil {
		return err
	}
	l.refresh()
	if err := killNamespace(nsName(i), unix.SIGKILL); err != nil {
		return err
	}
	// The daemon this process started is reaped by its waiter goroutine;
	// wait for that too, so that a Start right after sees a dead daemon.
	l.mu.Lock()
	d := l.st.Daemons[node]
	exited := l.exits[d.PID]
	l.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("node %s's daemon (pid %d) was not reaped 5s after SIGKILL", node, d.PID)
		}
	}
	// A dying process leaves its namespace before it is a zombie: wait for
	// the end, so that Status and Start see it dead.
	for deadline := time.Now().Add(5 * time.Second); alive(d); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s's daemon (pid %d) still exists 5s after SIGKILL", node, d.PID)
		}
	}
	return nil
}

// Pause sends SIGSTOP to every process in node's namespace and waits until
// they are stopped: the node stops sending and answering but keeps its
// links, like a hung machine.
func (l *Lab) Pause(node string) error {
	return l.signalWait(node, unix.SIGSTOP, true)
}

// Resume sends SIGCONT to every process in node's namespace and waits
// until none is stopped.
func (l *Lab) Resume(node string) error {
	return l.signalWait(node, unix.SIGCONT, false)
}

func (l *Lab) signalWait(node string, sig unix.Signal, wantStopped bool) error {
	i, err := l.nodeIndex(node)
	if err != nil {
		return err
	}
	ns := nsName(i)
	pids, err := namespacePIDs(ns)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range pids {
		for {
			st, _, ok := procStat(pid)
			if !ok || st == 'Z' || (st == 'T' || st == 't') == wantStopped {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s: process %d is in state %c 2s after %s", node, pid, st, unix.SignalName(sig))
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// Start starts node's daemon (or the UpOptions.Command that replaces it)
// in its namespace, detached in a session of its own, with stdout and
// stderr appended to the node's daemon.log, and records its PID. It fails
// if the daemon is already running or paused: Kill it first.
func (l *Lab) Start(node string) error {
	if _, err := l.mustNode(node); err != nil {
		return err
	}
	return l.update(func() error {
		if err := l.startLocked(node); err != nil {
			return err
		}
		return nil
	})
}

// startLocked starts node's daemon; the caller holds the lab's locks and
// saves the state.
func (l *Lab) startLocked(node string) error {
	if d, ok := l.st.Daemons[node]; ok && alive(d) {
		return fmt.Errorf("node %s's daemon is already running (pid %d); `tachy lab kill %s` stops it", node, d.PID, node)
	}
	argv := l.st.Commands[node]
	if len(argv) == 0 {
		return fmt.Errorf("node %s has no daemon command in %s", node, filepath.Join(l.dir, "lab.json"))
	}
	i, err := parseNode(node, l.st.Nodes) // not l.mustNode: the caller holds l.mu
	if err != nil || i == 0 {
		return fmt.Errorf("cannot start a daemon on %q: not a node of the lab", node)
	}
	logPath := filepath.Join(l.dir, node, "daemon.log")
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "=== tachy lab: %s starting %q in namespace %s\n", time.Now().Format(time.RFC3339Nano), argv, nsName(i))
	// `ip netns exec` enters the namespace (and a mount namespace with the
	// namespace's /sys) and execs the command: the PID is the daemon's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", nsName(i)}, argv...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = filepath.Join(l.dir, node)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node %s's daemon: %w", node, err)
	}
	pid := cmd.Process.Pid
	_, start, _ := procStat(pid)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	l.exits[pid] = exited
	l.st.Daemons[node] = daemonInfo{PID: pid, StartTime: start, Started: time.Now().UTC()}
	// Return once the process is inside the namespace, so that a Kill or
	// Pause right after reaches it.
	var want, got unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", nsName(i)), &want); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &got) == nil && got.Dev == want.Dev && got.Ino == want.Ino {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("node %s's daemon exited at once (%v)%s", node, cmd.ProcessState, logTail(logPath))
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s's daemon (pid %d) did not enter namespace %s within 2s", node, pid, nsName(i))
		}
	}
}

// DaemonPID is the PID of node's daemon, if it is running or paused.
func (l *Lab) DaemonPID(node string) (int, error) {
	if _, err := l.mustNode(node); err != nil {
		return 0, err
	}
	l.refresh()
	switch st, pid := l.daemonState(node); st {
	case DaemonRunning, DaemonPaused:
		return pid, nil
	case DaemonDead:
		return 0, fmt.Errorf("node %s's daemon (pid %d) is not running; `tachy lab start %s` starts it again", node, pid, node)
	default:
		return 0, fmt.Errorf("node %s has no daemon; `tachy lab start %s` starts one", node, node)
	}
}

// Exec runs argv in node's network namespace ("client" for the client's)
// with `ip netns exec`, and waits for it. Cancelling ctx kills it.
func (l *Lab) Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	i, err := l.nodeIndex(node)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return errors.New("no command to run")
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nsName(i)}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s in %s: %w", argv[0], nsName(i), err)
	}
	return nil
}
