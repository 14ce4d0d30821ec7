package lrmd

// The built-in process agent (ocf:tachy:process), what ocf:heartbeat:anything
// is to Pacemaker: it runs a long-lived command as a resource. The
// appliance has no shell and no service manager, so its services (and the
// QEMU lab's writer) run this way.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcessAgentName is the process agent's type name.
const ProcessAgentName = "process"

const processMetadata = `<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="process" version="1.0"><version>1.1</version>
<longdesc lang="en">Runs a long-lived command as a resource (built into tachy, like
ocf:heartbeat:anything, without a shell). Start runs it in its own session and fails if it
exits within startup_wait; monitor checks that the same process (pid and start time, kept in
a pid file, so a restarted daemon still knows it) is alive; stop sends SIGTERM to its process
group, then SIGKILL when stop_wait has passed.</longdesc>
<shortdesc lang="en">long-lived command</shortdesc>
<parameters>
<parameter name="command" required="1"><longdesc lang="en">The command and its arguments, split on spaces; double quotes group words.</longdesc><shortdesc lang="en">command</shortdesc><content type="string"/></parameter>
<parameter name="workdir"><longdesc lang="en">Working directory.</longdesc><shortdesc lang="en">working directory</shortdesc><content type="string" default="/"/></parameter>
<parameter name="output"><longdesc lang="en">File that receives the command's output (appended). Empty: the daemon's own output (the console on the appliance).</longdesc><shortdesc lang="en">output file</shortdesc><content type="string"/></parameter>
<parameter name="startup_wait"><longdesc lang="en">How long the command must stay up for start to succeed.</longdesc><shortdesc lang="en">startup wait</shortdesc><content type="string" default="200ms"/></parameter>
<parameter name="stop_wait"><longdesc lang="en">How long stop waits after SIGTERM before SIGKILL.</longdesc><shortdesc lang="en">stop wait</shortdesc><content type="string" default="5s"/></parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="validate-all" timeout="5s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
`

// ProcessAgent returns the built-in process agent, keeping its pid files in
// runDir ("" only serves meta-data and validation).
func ProcessAgent(runDir string) Builtin {
	return BuiltinFunc{Meta: []byte(processMetadata), Func: func(ctx context.Context, req BuiltinRequest) BuiltinResult {
		return runProcess(ctx, runDir, req)
	}}
}

type processParams struct {
	argv                []string
	workdir, output     string
	startWait, stopWait time.Duration
}

// SplitCommand splits a command line on spaces; double quotes group words
// (with \" and \\ inside them).
func SplitCommand(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated double quote")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

func parseProcess(p map[string]string) (*processParams, error) {
	argv, err := SplitCommand(p["command"])
	if err != nil {
		return nil, fmt.Errorf("command: %v", err)
	}
	if len(argv) == 0 {
		return nil, errors.New("command is required")
	}
	pp := &processParams{argv: argv, workdir: p["workdir"], output: p["output"], startWait: 200 * time.Millisecond, stopWait: 5 * time.Second}
	if pp.workdir == "" {
		pp.workdir = "/"
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"startup_wait", &pp.startWait}, {"stop_wait", &pp.stopWait}} {
		if v := p[d.name]; v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t < 0 {
				return nil, fmt.Errorf("%s %q: use a duration such as 500ms or 5s", d.name, v)
			}
			*d.to = t
		}
	}
	return pp, nil
}

func runProcess(ctx context.Context, runDir string, req BuiltinRequest) BuiltinResult {
	if req.Action == "meta-data" {
		return BuiltinResult{RC: OK, Output: processMetadata}
	}
	pp, err := parseProcess(req.Params)
	if err != nil {
		return BuiltinResult{RC: ErrConfigured, ExitReason: err.Error()}
	}
	if req.Action == "validate-all" {
		if _, err := exec.LookPath(pp.argv[0]); err != nil {
			return BuiltinResult{RC: ErrInstalled, ExitReason: err.Error()}
		}
		return BuiltinResult{RC: OK}
	}
	if runDir == "" {
		return BuiltinResult{RC: ErrGeneric, ExitReason: "the process agent has no run directory"}
	}
	pidFile := filepath.Join(runDir, "process-"+strings.ReplaceAll(req.Resource, "/", "_")+".pid")
	switch req.Action {
	case "start":
		return processStart(ctx, pp, pidFile)
	case "stop":
		return processStop(ctx, pp, pidFile)
	case "monitor":
		if _, ok := runningProcess(pidFile); ok {
			return BuiltinResult{RC: OK}
		}
		return BuiltinResult{RC: NotRunning}
	}
	return BuiltinResult{RC: ErrUnimplemented, ExitReason: "action " + req.Action + " is not implemented"}
}

// procStart returns a process's start time (clock ticks since boot) and
// whether it is alive (exists and is not a zombie).
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ... : comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, err == nil
}

// runningProcess reads the pid file and says whether that process (the
// same pid and start time) is alive.
func runningProcess(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, false
	}
	if st, ok := procStart(pid); ok && st == start {
		return pid, true
	}
	return 0, false
}

func processStart(ctx context.Context, pp *processParams, pidFile string) BuiltinResult {
	if _, ok := runningProcess(pidFile); ok {
		return BuiltinResult{RC: OK}
	}
	if err := os.MkdirAll(filepath.Dir(pidFile), 0o755); err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
	}
	cmd := exec.Command(pp.argv[0], pp.argv[1:]...)
	cmd.Dir = pp.workdir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if pp.output != "" {
		f, err := os.OpenFile(pp.output, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: "output: " + err.Error()}
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		rc := ErrGeneric
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			rc = ErrInstalled
		}
		return BuiltinResult{RC: rc, ExitReason: err.Error()}
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it whenever it ends
	start, ok := procStart(pid)
	if ok {
		tmp := pidFile + ".tmp"
		err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o644)
		if err == nil {
			err = os.Rename(tmp, pidFile)
		}
		if err != nil {
			syscall.Kill(-pid, syscall.SIGKILL)
			return BuiltinResult{RC: ErrGeneric, ExitReason: "pid file: " + err.Error()}
		}
	}
	select {
	case err := <-exited:
		os.Remove(pidFile)
		return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("%s exited at once: %v", pp.argv[0], err)}
	case <-time.After(pp.startWait):
	case <-ctx.Done():
	}
	if _, ok := runningProcess(pidFile); !ok {
		return BuiltinResult{RC: ErrGeneric, ExitReason: pp.argv[0] + " exited at once"}
	}
	return BuiltinResult{RC: OK}
}

func processStop(ctx context.Context, pp *processParams, pidFile string) BuiltinResult {
	pid, ok := runningProcess(pidFile)
	if !ok {
		os.Remove(pidFile)
		return BuiltinResult{RC: OK}
	}
	syscall.Kill(-pid, syscall.SIGTERM) // its session's process group
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(pp.stopWait)
	for {
		if _, ok := runningProcess(pidFile); !ok {
			os.Remove(pidFile)
			return BuiltinResult{RC: OK}
		}
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("process %d still runs at the stop's timeout", pid)}
		case <-time.After(20 * time.Millisecond):
		}
	}
}
