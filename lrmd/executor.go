package lrmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

// ReportMode says which results of a recurring operation reach OnResult.
type ReportMode int

const (
	// ReportAll reports every run.
	ReportAll ReportMode = iota
	// ReportChanges reports the first run, every failure and every
	// result whose rc or op-status differs from the last one reported:
	// a healthy monitor is reported once, then only when something
	// happens. (Pacemaker's lrmd_opt_notify_changes_only reports only
	// changes; here a failure that repeats is reported each time, so
	// that the controller can count it.)
	ReportChanges
)

// Config configures an Executor. The zero value of every field means its
// default.
type Config struct {
	OCFRoot string // default /usr/lib/ocf
	InitDir string // LSB init scripts; default /etc/init.d
	// RscTmp is HA_RSCTMP, where agents keep state; default
	// /run/resource-agents (resource-agents' own default). Created on
	// first use.
	RscTmp string
	// Path is the agents' PATH; default
	// /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin.
	Path string
	// Env is added to every external agent's environment (KEY=value).
	Env []string
	// MaxConcurrent bounds the operations running at once; default twice
	// the number of CPUs (Pacemaker's node-action-limit default).
	MaxConcurrent int
	// KillGrace is how long a timed-out or cancelled agent has between
	// SIGTERM and SIGKILL; default 5 s.
	KillGrace time.Duration
	// PipeGrace is how long to keep reading output after the agent
	// exited while something it started holds its stdout or stderr;
	// default 250 ms.
	PipeGrace time.Duration
	// MaxOutput bounds the stdout and the stderr kept per run (the first
	// and the last half); default 64 KiB each.
	MaxOutput int
	// MetadataTimeout bounds a meta-data action; default 30 s.
	MetadataTimeout time.Duration
	// Builtins serves the tachy class and ocf:tachy:*.
	Builtins *Registry
	// OnResult receives the results of operations started with Submit,
	// one at a time, in the order they were produced, on a goroutine of
	// the executor's. It must not call Close.
	OnResult func(Result)
	// Report chooses which recurring results reach OnResult.
	Report ReportMode
	// Stonith serves the start, stop and monitor of stonith-class
	// resources (Pacemaker's fencer registers and checks those devices
	// itself; fencing a node is not an operation of the resource).
	Stonith Builtin
	// FirstCallID is where call ids start (the first is FirstCallID+1).
	// The scheduler orders a resource's history by call id, so a
	// restarted node must not reuse ids the CIB already holds.
	FirstCallID int
}

func (c *Config) setDefaults() {
	if c.OCFRoot == "" {
		c.OCFRoot = "/usr/lib/ocf"
	}
	if c.InitDir == "" {
		c.InitDir = "/etc/init.d"
	}
	if c.RscTmp == "" {
		c.RscTmp = "/run/resource-agents"
	}
	if c.Path == "" {
		c.Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 2 * runtime.NumCPU()
	}
	if c.KillGrace <= 0 {
		c.KillGrace = 5 * time.Second
	}
	if c.PipeGrace <= 0 {
		c.PipeGrace = 250 * time.Millisecond
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = 64 << 10
	}
	if c.MetadataTimeout <= 0 {
		c.MetadataTimeout = 30 * time.Second
	}
}

// Executor runs resource agents' operations: one at a time per resource
// (as Pacemaker's executor does), at most MaxConcurrent at once, each with
// its timeout, recurring ones until cancelled.
type Executor struct {
	cfg Config
	sem chan struct{}

	mu       sync.Mutex
	nextCall int
	closed   bool
	queues   map[string]*rscQueue // per resource
	ops      map[int]*opState     // by call id
	wg       sync.WaitGroup

	metaMu sync.Mutex
	meta   map[string]*Metadata

	rscTmpOnce sync.Once

	dmu   sync.Mutex
	dq    []Result
	dstop bool
	dwake chan struct{}
	ddone chan struct{}
}

// opState is an accepted operation: pending, running or recurring.
type opState struct {
	op     Op
	callID int
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	reply  chan Result // Exec's: the result goes here, not to OnResult
	turn   *waiter     // place in the resource's queue for the first run

	// owned by the operation's goroutine
	haveRC       bool
	lastRC       RC
	lastRCChange time.Time
	reported     bool
	lastReported [2]int
}

// New starts an executor.
func New(cfg Config) *Executor {
	cfg.setDefaults()
	e := &Executor{
		cfg:      cfg,
		sem:      make(chan struct{}, cfg.MaxConcurrent),
		queues:   map[string]*rscQueue{},
		ops:      map[int]*opState{},
		nextCall: cfg.FirstCallID,
		meta:     map[string]*Metadata{},
		dwake:    make(chan struct{}, 1),
		ddone:    make(chan struct{}),
	}
	go e.dispatchLoop()
	return e
}

// ErrClosed is returned for operations submitted after Close.
var ErrClosed = errors.New("lrmd: executor closed")

func (o *Op) check() error {
	if o.Action == "" {
		return errors.New("lrmd: operation without an action")
	}
	if o.Resource == "" && o.Action != "meta-data" {
		return errors.New("lrmd: operation without a resource")
	}
	if o.Interval < 0 || o.Timeout < 0 {
		return errors.New("lrmd: negative interval or timeout")
	}
	return o.Agent.check()
}

// Submit accepts an operation and returns its call id; its results go to
// Config.OnResult. A recurring operation (Interval > 0) runs first at once
// and then Interval after each run ends, until cancelled. Submitting a
// recurring operation whose key is already active cancels the old one.
func (e *Executor) Submit(op Op) (int, error) {
	st, err := e.accept(op, nil)
	if err != nil {
		return 0, err
	}
	return st.callID, nil
}

// Exec runs a one-shot operation and returns its result (which does not
// go to OnResult). Cancelling ctx cancels the operation.
func (e *Executor) Exec(ctx context.Context, op Op) (Result, error) {
	if op.Interval != 0 {
		return Result{}, errors.New("lrmd: Exec runs one-shot operations; Submit recurring ones")
	}
	st, err := e.accept(op, make(chan Result, 1))
	if err != nil {
		return Result{}, err
	}
	select {
	case r := <-st.reply:
		return r, nil
	case <-ctx.Done():
		st.cancel()
		return <-st.reply, nil
	}
}

func (e *Executor) accept(op Op, reply chan Result) (*opState, error) {
	if err := op.check(); err != nil {
		return nil, err
	}
	op.Params = cloneMap(op.Params)
	op.Meta = cloneMap(op.Meta)
	ctx, cancel := context.WithCancel(context.Background())
	st := &opState{op: op, ctx: ctx, cancel: cancel, done: make(chan struct{}), reply: reply}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	e.nextCall++
	st.callID = e.nextCall
	if op.Interval > 0 {
		for _, old := range e.ops {
			if old.op.Interval > 0 && old.op.Key() == op.Key() {
				old.cancel()
			}
		}
	}
	e.ops[st.callID] = st
	st.turn = e.enqueueLocked(op.Resource)
	e.wg.Add(1)
	e.mu.Unlock()
	go e.runOp(st)
	return st, nil
}

func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Cancel cancels the active operations with this key: a pending one never
// runs, a running one is killed (SIGTERM, then SIGKILL), a recurring one
// stops. Its last result has status cancelled. Cancel returns once the
// operation has ended (its cancelled result is then queued for OnResult,
// or returned by Exec), and false if no such operation is active.
func (e *Executor) Cancel(rsc, action string, interval time.Duration) bool {
	key := OpKey(rsc, action, interval)
	return e.cancelWhere(func(st *opState) bool { return st.op.Key() == key }) > 0
}

func (e *Executor) cancelWhere(match func(*opState) bool) int {
	e.mu.Lock()
	var sts []*opState
	for _, st := range e.ops {
		if match(st) {
			sts = append(sts, st)
		}
	}
	e.mu.Unlock()
	for _, st := range sts {
		st.cancel()
	}
	for _, st := range sts {
		<-st.done
	}
	return len(sts)
}

// CancelResource cancels every active operation of a resource and returns
// how many there were.
func (e *Executor) CancelResource(rsc string) int {
	return e.cancelWhere(func(st *opState) bool { return st.op.Resource == rsc })
}

// Active lists the keys of the pending, running and recurring operations.
func (e *Executor) Active() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]string, 0, len(e.ops))
	for _, st := range e.ops {
		keys = append(keys, st.op.Key())
	}
	sort.Strings(keys)
	return keys
}

// Close cancels every operation, waits for them and for OnResult to have
// received every result.
func (e *Executor) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.ddone
		return
	}
	e.closed = true
	for _, st := range e.ops {
		st.cancel()
	}
	e.mu.Unlock()
	e.wg.Wait()
	e.dmu.Lock()
	e.dstop = true
	e.dmu.Unlock()
	e.wake()
	<-e.ddone
}

// rscQueue serialises a resource's operations in the order they were
// submitted (recurring runs queue up again each time their interval ends).
type rscQueue struct {
	busy    bool
	waiters []*waiter
}

type waiter struct{ granted chan struct{} }

// enqueueLocked takes a place in rsc's queue; e.mu is held.
func (e *Executor) enqueueLocked(rsc string) *waiter {
	q := e.queues[rsc]
	if q == nil {
		q = &rscQueue{}
		e.queues[rsc] = q
	}
	w := &waiter{granted: make(chan struct{})}
	if !q.busy {
		q.busy = true
		close(w.granted)
	} else {
		q.waiters = append(q.waiters, w)
	}
	return w
}

// waitTurn waits until w is at the head of rsc's queue; on cancellation it
// gives up its place (or its turn) and returns false.
func (e *Executor) waitTurn(ctx context.Context, rsc string, w *waiter) bool {
	select {
	case <-w.granted:
		return true
	case <-ctx.Done():
	}
	e.mu.Lock()
	q := e.queues[rsc]
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			e.mu.Unlock()
			return false
		}
	}
	e.mu.Unlock()
	// Granted meanwhile: pass the turn on.
	e.releaseTurn(rsc)
	return false
}

// releaseTurn hands rsc to the next operation in its queue.
func (e *Executor) releaseTurn(rsc string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.queues[rsc]
	if len(q.waiters) > 0 {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		close(w.granted)
		return
	}
	q.busy = false
	delete(e.queues, rsc)
}

// runOp is an operation's life: its runs, and the wait between them.
func (e *Executor) runOp(st *opState) {
	defer func() {
		e.mu.Lock()
		delete(e.ops, st.callID)
		e.mu.Unlock()
		st.cancel()
		close(st.done)
		e.wg.Done()
	}()
	queued := time.Now()
	for {
		r := e.runOnce(st, queued)
		e.deliver(st, r)
		if st.op.Interval == 0 || r.Status == StatusCancelled {
			return
		}
		t := time.NewTimer(st.op.Interval)
		select {
		case <-t.C:
			queued = time.Now()
			e.mu.Lock()
			st.turn = e.enqueueLocked(st.op.Resource)
			e.mu.Unlock()
		case <-st.ctx.Done():
			t.Stop()
			e.deliver(st, e.cancelledResult(st))
			return
		}
	}
}

func (e *Executor) cancelledResult(st *opState) Result {
	now := time.Now()
	r := e.newResult(st, outcome{rc: OK, status: StatusCancelled, start: now}, st.op.allParams())
	return r
}

// runOnce waits for the resource and for a slot, then runs the agent.
func (e *Executor) runOnce(st *opState, queued time.Time) Result {
	op := &st.op
	if !e.waitTurn(st.ctx, op.Resource, st.turn) {
		return e.cancelledResult(st)
	}
	defer e.releaseTurn(op.Resource)
	select {
	case e.sem <- struct{}{}:
	case <-st.ctx.Done():
		return e.cancelledResult(st)
	}
	defer func() { <-e.sem }()
	if st.ctx.Err() != nil {
		return e.cancelledResult(st)
	}
	queue := time.Since(queued)

	params := op.allParams()
	var warnings []string
	var o outcome
	validated := false
	if op.Action == "start" && !op.SkipValidation && (op.Agent.Class == ClassOCF || op.Agent.Class == ClassTachy) {
		md, err := e.metadata(st.ctx, op.Agent, false)
		switch {
		case err == nil:
			w, verr := md.Validate(op.Agent, op.Params)
			warnings = w
			if verr != nil {
				o = outcome{rc: ErrConfigured, status: StatusErrorFatal, reason: verr.Error(), start: time.Now()}
				validated = true
			}
		case errors.Is(err, errNotInstalled):
			// The run below reports it.
		default:
			warnings = append(warnings, "parameters not validated: "+err.Error())
		}
	}
	if !validated {
		o = e.dispatch(st.ctx, op, params)
	}
	r := e.newResult(st, o, params)
	r.QueueTime = queue
	r.Warnings = warnings
	return r
}

// dispatch runs the operation with the agent's class.
func (e *Executor) dispatch(ctx context.Context, op *Op, params map[string]string) outcome {
	switch {
	case op.Agent.builtin():
		b, ok := e.cfg.Builtins.Lookup(op.Agent.Type)
		if !ok {
			o := notInstalled(op.Agent, "no built-in agent of that name")
			o.start = time.Now()
			return o
		}
		if op.Action == "meta-data" {
			return outcome{rc: OK, status: StatusDone, stdout: string(b.Metadata()), start: time.Now()}
		}
		return e.runBuiltin(ctx, b, op, params)
	case op.Agent.Class == ClassStonith && e.cfg.Stonith != nil:
		if op.Action == "meta-data" {
			return outcome{rc: OK, status: StatusDone, stdout: string(e.cfg.Stonith.Metadata()), start: time.Now()}
		}
		return e.runBuiltin(ctx, e.cfg.Stonith, op, params)
	case op.Agent.Class == ClassOCF || op.Agent.Class == ClassLSB:
		if op.Agent.Class == ClassLSB && op.Action == "meta-data" {
			path, bad := e.checkInstalled(op.Agent)
			if bad != nil {
				bad.start = time.Now()
				return *bad
			}
			xml, err := lsbMetadata(op.Agent.Type, path)
			if err != nil {
				return outcome{rc: ErrGeneric, status: StatusError, reason: err.Error(), start: time.Now()}
			}
			return outcome{rc: OK, status: StatusDone, stdout: xml, start: time.Now()}
		}
		return e.runExternal(ctx, op, params)
	}
	return outcome{rc: ErrUnimplemented, status: StatusNotSupported, start: time.Now(),
		reason: fmt.Sprintf("agent class %q is not supported", op.Agent.Class)}
}

func (e *Executor) newResult(st *opState, o outcome, params map[string]string) Result {
	op := &st.op
	r := Result{
		Resource: op.Resource, Agent: op.Agent, Action: op.Action, Interval: op.Interval,
		Key: op.Key(), CallID: st.callID, RC: o.rc, Status: o.status, ExitReason: o.reason,
		Stdout: o.stdout, Stderr: o.stderr, LastRun: o.start, ExecTime: o.exec,
		Digest: OpDigest(params), Expected: op.Expected,
	}
	if o.status != StatusCancelled {
		if !st.haveRC || st.lastRC != o.rc {
			st.haveRC, st.lastRC, st.lastRCChange = true, o.rc, o.start
		}
	}
	r.LastRCChange = st.lastRCChange
	if r.LastRCChange.IsZero() {
		r.LastRCChange = o.start
	}
	return r
}

// deliver hands a result to Exec's caller or to OnResult, filtering
// recurring results in ReportChanges mode.
func (e *Executor) deliver(st *opState, r Result) {
	if st.reply != nil {
		st.reply <- r
		return
	}
	if st.op.Interval > 0 && e.cfg.Report == ReportChanges && r.Status != StatusCancelled {
		sig := [2]int{int(r.RC), int(r.Status)}
		if st.reported && !r.Failed() && sig == st.lastReported {
			return
		}
		st.reported, st.lastReported = true, sig
	}
	e.dmu.Lock()
	e.dq = append(e.dq, r)
	e.dmu.Unlock()
	e.wake()
}

func (e *Executor) wake() {
	select {
	case e.dwake <- struct{}{}:
	default:
	}
}

func (e *Executor) dispatchLoop() {
	defer close(e.ddone)
	for {
		e.dmu.Lock()
		q, stop := e.dq, e.dstop
		e.dq = nil
		e.dmu.Unlock()
		for _, r := range q {
			if e.cfg.OnResult != nil {
				e.cfg.OnResult(r)
			}
		}
		if len(q) == 0 {
			if stop {
				return
			}
			<-e.dwake
		}
	}
}

func (e *Executor) ensureRscTmp() {
	e.rscTmpOnce.Do(func() { _ = os.MkdirAll(e.cfg.RscTmp, 0o755) })
}
