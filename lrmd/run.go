package lrmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// outcome is one run of an agent, before it becomes a Result.
type outcome struct {
	rc             RC
	status         OpStatus
	reason         string
	stdout, stderr string
	start          time.Time
	exec           time.Duration
}

// procOutcome is how a process ended.
type procOutcome struct {
	status         OpStatus // StatusDone, StatusTimeout, StatusCancelled or StatusError
	exit           int      // exit status when it exited
	signal         syscall.Signal
	startErr       error
	stdout, stderr string
	start          time.Time
	exec           time.Duration
}

// runProcess runs path with args and env in its own process group, with no
// stdin and bounded stdout and stderr. At the timeout, or when ctx is
// cancelled, the whole group gets SIGTERM, then SIGKILL after the grace
// period, and once the agent is gone anything left in its group gets
// SIGKILL too. A normal exit leaves the group alone: agents start daemons
// that must outlive them.
func (e *Executor) runProcess(ctx context.Context, path string, args, env []string, timeout time.Duration, maxOut int) procOutcome {
	cmd := exec.Command(path, args...)
	cmd.Args[0] = path
	cmd.Env = env
	cmd.Dir = "/"
	stdout, stderr := newBoundedBuffer(maxOut), newBoundedBuffer(maxOut)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A daemon the agent started may keep the output pipes open; do not
	// wait for it after the agent itself exits.
	cmd.WaitDelay = e.cfg.PipeGrace

	po := procOutcome{start: time.Now()}
	if err := cmd.Start(); err != nil {
		po.startErr = err
		po.status = StatusError
		return po
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
		po.status = StatusDone
	case <-timer.C:
		po.status = StatusTimeout
	case <-ctx.Done():
		po.status = StatusCancelled
	}
	if po.status != StatusDone {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		grace := time.NewTimer(e.cfg.KillGrace)
		select {
		case err = <-done:
		case <-grace.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
		grace.Stop()
		// Whatever of the group outlived the agent goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	po.exec = time.Since(po.start)
	po.stdout, po.stderr = stdout.String(), stderr.String()
	if po.status != StatusDone {
		return po
	}
	if ps := cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			po.status = StatusError
			po.signal = ws.Signal()
			return po
		}
		po.exit = ps.ExitCode()
		return po
	}
	po.status = StatusError
	po.startErr = err
	return po
}

// startErrOutcome maps a failure to start the agent as Pacemaker's
// services_handle_exec_error does.
func startErrOutcome(a Agent, path string, err error) outcome {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return outcome{rc: ErrGeneric, status: StatusError, reason: fmt.Sprintf("%s: %v", a, err)}
	}
	switch errno {
	case syscall.ENOENT, syscall.EISDIR, syscall.ENOTDIR, syscall.EINVAL, syscall.ENOEXEC:
		return outcome{rc: ErrInstalled, status: StatusNotInstalled, reason: fmt.Sprintf("%s is not installed: %s: %v", a, path, errno)}
	case syscall.EACCES, syscall.EPERM:
		return outcome{rc: ErrPerm, status: StatusError, reason: fmt.Sprintf("%s: cannot execute %s: %v", a, path, errno)}
	}
	return outcome{rc: ErrGeneric, status: StatusError, reason: fmt.Sprintf("%s: cannot execute %s: %v", a, path, errno)}
}

// notInstalled is the result for an agent that is not there.
func notInstalled(a Agent, why string) outcome {
	return outcome{rc: ErrInstalled, status: StatusNotInstalled, reason: fmt.Sprintf("%s is not installed: %s", a, why)}
}

// agentPath finds an external agent's executable.
func (e *Executor) agentPath(a Agent) string {
	switch a.Class {
	case ClassOCF:
		return filepath.Join(e.cfg.OCFRoot, "resource.d", a.Provider, a.Type)
	case ClassLSB:
		return filepath.Join(e.cfg.InitDir, a.Type)
	}
	return ""
}

// checkInstalled looks for an external agent before running it.
func (e *Executor) checkInstalled(a Agent) (string, *outcome) {
	path := e.agentPath(a)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o := notInstalled(a, "no "+path)
		return path, &o
	case err != nil:
		o := startErrOutcome(a, path, err)
		return path, &o
	case st.IsDir():
		o := notInstalled(a, path+" is a directory")
		return path, &o
	}
	return path, nil
}

// ocfEnv is the environment Pacemaker's executor gives an OCF agent
// (add_action_env_vars), plus PATH and HA_RSCTMP, which tachy sets rather
// than inherits.
func (e *Executor) ocfEnv(rsc string, a Agent, params map[string]string) []string {
	env := []string{
		"PATH=" + e.cfg.Path,
		"OCF_ROOT=" + e.cfg.OCFRoot,
		"OCF_RA_VERSION_MAJOR=1",
		"OCF_RA_VERSION_MINOR=0",
		"OCF_EXIT_REASON_PREFIX=" + exitReasonPrefix,
		"OCF_RESOURCE_INSTANCE=" + rsc,
		"OCF_RESOURCE_TYPE=" + a.Type,
		"HA_RSCTMP=" + e.cfg.RscTmp,
	}
	if a.Provider != "" {
		env = append(env, "OCF_RESOURCE_PROVIDER="+a.Provider)
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := params[k]
		// setenv refuses such names; a NUL cannot be passed at all.
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			continue
		}
		env = append(env, "OCF_RESKEY_"+k+"="+v)
	}
	return append(env, e.cfg.Env...)
}

const exitReasonPrefix = "ocf-exit-reason:"

// exitReasonMax is where Pacemaker cuts exit reasons.
const exitReasonMax = 128

// exitReason extracts what follows the last "ocf-exit-reason:" on stderr,
// up to the end of its line and at most 128 bytes, as Pacemaker's
// parse_exit_reason_from_stderr does.
func exitReason(stderr string) string {
	i := strings.LastIndex(stderr, exitReasonPrefix)
	if i < 0 {
		return ""
	}
	s := stderr[i+len(exitReasonPrefix):]
	if j := strings.IndexByte(s, '\n'); j >= 0 {
		s = s[:j]
	}
	if len(s) > exitReasonMax {
		s = s[:exitReasonMax]
	}
	return s
}

// runExternal runs an OCF agent or an LSB init script.
func (e *Executor) runExternal(ctx context.Context, op *Op, params map[string]string) outcome {
	path, bad := e.checkInstalled(op.Agent)
	if bad != nil {
		bad.start = time.Now()
		return *bad
	}
	var env []string
	action := op.Action
	maxOut := e.cfg.MaxOutput
	switch op.Agent.Class {
	case ClassOCF:
		rsc := op.Resource
		if op.Action == "meta-data" {
			rsc = op.Agent.Type
			maxOut = MaxMetadataBytes + 1
		}
		env = e.ocfEnv(rsc, op.Agent, params)
		e.ensureRscTmp()
	case ClassLSB:
		if action == "monitor" {
			action = "status"
		}
		env = append([]string{"PATH=" + e.cfg.Path}, e.cfg.Env...)
	}
	po := e.runProcess(ctx, path, []string{action}, env, op.timeout(), maxOut)
	o := outcome{status: po.status, stdout: po.stdout, stderr: po.stderr, start: po.start, exec: po.exec}
	if op.Agent.Class == ClassOCF {
		o.reason = exitReason(po.stderr)
	}
	switch {
	case po.startErr != nil:
		so := startErrOutcome(op.Agent, path, po.startErr)
		o.rc, o.status, o.reason = so.rc, so.status, so.reason
	case po.status == StatusTimeout:
		o.rc = ErrGeneric
		o.reason = fmt.Sprintf("%s %s did not complete within %v", op.Agent, op.Action, op.timeout())
	case po.status == StatusCancelled:
		o.rc = OK
		o.reason = ""
	case po.status == StatusError:
		o.rc = ErrGeneric
		o.reason = fmt.Sprintf("%s %s terminated with signal %d (%v)", op.Agent, op.Action, int(po.signal), po.signal)
	case op.Agent.Class == ClassLSB:
		o.rc = LSBToOCF(op.Action, po.exit)
	default:
		o.rc = ocfRC(po.exit)
	}
	return o
}

// runBuiltin runs an in-process agent with the operation's timeout.
func (e *Executor) runBuiltin(ctx context.Context, b Builtin, op *Op, params map[string]string) outcome {
	req := BuiltinRequest{
		Resource: op.Resource, Action: op.Action, Interval: op.Interval, Timeout: op.timeout(),
		Params: map[string]string{}, Meta: map[string]string{},
	}
	for k, v := range params {
		if strings.HasPrefix(k, "CRM_meta_") {
			req.Meta[k] = v
		} else {
			req.Params[k] = v
		}
	}
	tctx, cancel := context.WithTimeout(ctx, op.timeout())
	defer cancel()
	ch := make(chan BuiltinResult, 1)
	o := outcome{start: time.Now()}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("built-in agent %s panicked: %v", op.Agent, p)}
			}
		}()
		ch <- b.Run(tctx, req)
	}()
	var r BuiltinResult
	select {
	case r = <-ch:
		o.exec = time.Since(o.start)
		if tctx.Err() == nil {
			o.rc, o.status, o.reason, o.stdout = r.RC, StatusDone, r.ExitReason, r.Output
			return o
		}
	case <-tctx.Done():
		grace := time.NewTimer(e.cfg.KillGrace)
		select {
		case <-ch:
		case <-grace.C:
		}
		grace.Stop()
		o.exec = time.Since(o.start)
	}
	if ctx.Err() != nil {
		o.rc, o.status = OK, StatusCancelled
		return o
	}
	o.rc, o.status = ErrGeneric, StatusTimeout
	o.reason = fmt.Sprintf("%s %s did not complete within %v", op.Agent, op.Action, op.timeout())
	return o
}

// boundedBuffer keeps the first and the last max/2 bytes written to it.
type boundedBuffer struct {
	max     int
	head    []byte
	tail    []byte // ring of the last max/2 bytes once head is full
	tailPos int
	dropped int64
}

func newBoundedBuffer(max int) *boundedBuffer {
	if max < 2 {
		max = 2
	}
	return &boundedBuffer{max: max}
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	half := b.max / 2
	if room := b.max - half - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		if len(b.tail) < half {
			k := min(half-len(b.tail), len(p))
			b.tail = append(b.tail, p[:k]...)
			p = p[k:]
			continue
		}
		k := min(half-b.tailPos, len(p))
		b.dropped += int64(k)
		copy(b.tail[b.tailPos:], p[:k])
		b.tailPos = (b.tailPos + k) % half
		p = p[k:]
	}
	return n, nil
}

func (b *boundedBuffer) String() string {
	if b.dropped == 0 {
		return string(b.head) + string(b.tail)
	}
	return string(b.head) + fmt.Sprintf("\n[... %d bytes dropped ...]\n", b.dropped) +
		string(b.tail[b.tailPos:]) + string(b.tail[:b.tailPos])
}
