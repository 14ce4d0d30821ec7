package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
)

// Running operations: the DC sends each resource action of a transition to
// the node it names; that node's executor (lrmd) runs the agent and answers
// with the result, which the DC records in the CIB. Recurring monitors keep
// running on their node, which reports a failure to the CIB itself (through
// the DC) so that the DC re-plans.

// ActionRequest is what the DC asks a node to run.
type ActionRequest struct {
	Resource   string            `json:"resource"`
	Agent      lrmd.Agent        `json:"agent"`
	Action     string            `json:"action"`
	IntervalMs int64             `json:"interval_ms,omitempty"`
	TimeoutMs  int64             `json:"timeout_ms,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
	Expected   int               `json:"expected"`
}

type callRequest struct {
	Op     string         `json:"op"` // "exec"
	Action *ActionRequest `json:"action,omitempty"`
}

type callReply struct {
	Error   string       `json:"error,omitempty"`
	Result  *lrmd.Result `json:"result,omitempty"`
	Applied uint64       `json:"applied,omitempty"` // "applied": how far this node applied the CIB's log
}

// callIDBlock is how many call ids one daemon run may use: each start
// takes the next block (state_dir/callid), so a restarted node never
// reuses an id its history in the CIB already holds.
const callIDBlock = 1_000_000

func firstCallID(stateDir string) (int, error) {
	path := filepath.Join(stateDir, "callid")
	n := 0
	if b, err := os.ReadFile(path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	n++
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(n)+"\n"), 0o600); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	return n * callIDBlock, nil
}

func newExecutor(d *Daemon) (*lrmd.Executor, error) {
	first, err := firstCallID(d.cfg.Local.StateDir)
	d.firstCallID = first
	if err != nil {
		return nil, fmt.Errorf("lrmd: %w", err)
	}
	sbin, err := pacemakerShims(d.cfg.Local.StateDir)
	if err != nil {
		return nil, fmt.Errorf("lrmd: %w", err)
	}
	run := filepath.Join(d.cfg.Local.StateDir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, fmt.Errorf("lrmd: %w", err)
	}
	// The built-in agents: vip, filesystem, process (lrmd.TachyBuiltins)
	// and volume.
	d.volumes = newVolumeAgent(d)
	builtins := lrmd.TachyBuiltins(d.vips, run)
	if err := builtins.Register("volume", d.volumes); err != nil {
		return nil, fmt.Errorf("lrmd: %w", err)
	}
	return lrmd.New(lrmd.Config{
		Builtins: builtins,
		// Pacemaker's tools that agents call are this binary's shims
		// (cmd/tachy/shim.go); agents' run-time files stay per node.
		Path: sbin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		Env: []string{"HA_SBIN_DIR=" + sbin, "HA_VARRUN=" + run + "/", "TACHY_SOCKET=" + d.cfg.Local.Socket,
			"TACHY_NODE=" + d.local.Name},
		// Each node keeps agents' state apart: in the namespace lab the
		// nodes share one file system.
		RscTmp:      filepath.Join(d.cfg.Local.StateDir, "rsctmp"),
		FirstCallID: first,
		Report:      lrmd.ReportChanges,
		Stonith:     stonithResource(d),
		OnResult:    d.onRecurringResult,
	}), nil
}

// pacemakerShims links crm_attribute and crm_node to this binary in
// state_dir/sbin.
func pacemakerShims(stateDir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(stateDir, "sbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, tool := range []string{"crm_attribute", "crm_node"} {
		link := filepath.Join(dir, tool)
		if cur, err := os.Readlink(link); err == nil && cur == exe {
			continue
		}
		os.Remove(link)
		if err := os.Symlink(exe, link); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// handleCall answers the DC's requests.
func (d *Daemon) handleCall(ctx context.Context, from string, line []byte) []byte {
	var req callRequest
	var rep callReply
	dc, _ := d.cib.r.DC()
	if err := json.Unmarshal(line, &req); err != nil {
		rep.Error = "malformed request: " + err.Error()
	} else if from == "" || from != dc {
		// Only the DC this node knows runs operations here: a deposed
		// DC's late request must not start what the new one placed
		// elsewhere.
		rep.Error = fmt.Sprintf("%q may not run operations here: only the DC (%q as this node sees it) does", from, dc)
	} else if req.Op == "applied" {
		rep.Applied = d.cib.r.AppliedIndex()
	} else if req.Op != "exec" || req.Action == nil {
		rep.Error = fmt.Sprintf("unknown request %q", req.Op)
	} else if r, err := d.runAction(ctx, *req.Action); err != nil {
		rep.Error = err.Error()
	} else {
		rep.Result = &r
	}
	out, _ := json.Marshal(rep)
	return out
}

// runAction runs one action here. A recurring monitor runs once at once
// (its result is the action's) and then keeps running; a stop or a
// migrate_to (which takes the resource away from this node) first cancels
// the resource's recurring operations, as Pacemaker's controller does
// before any action that changes the resource's state.
func (d *Daemon) runAction(ctx context.Context, a ActionRequest) (lrmd.Result, error) {
	op := lrmd.Op{Resource: a.Resource, Agent: a.Agent, Action: a.Action, Interval: time.Duration(a.IntervalMs) * time.Millisecond,
		Timeout: time.Duration(a.TimeoutMs) * time.Millisecond, Params: a.Params, Meta: a.Meta, Expected: lrmd.RC(a.Expected),
		SkipValidation: a.Action != "start"}
	if a.Action == "stop" || a.Action == "migrate_to" {
		d.exec.CancelResource(a.Resource)
	}
	if a.Action == "cancel" {
		// A recurring operation configured for another role than the
		// resource is about to have (its promotion or demotion follows).
		name := cancelledOperation(a.Meta)
		found := d.exec.Cancel(a.Resource, name, op.Interval)
		d.log.Info("recurring operation cancelled", "resource", a.Resource, "operation", name, "interval", op.Interval, "was_active", found)
		return lrmd.Result{Resource: a.Resource, Action: a.Action, Interval: op.Interval, Status: lrmd.StatusDone, RC: lrmd.OK}, nil
	}
	if op.Interval == 0 {
		r, err := d.exec.Exec(ctx, op)
		d.countOperation(r, err)
		return r, err
	}
	once := op
	once.Interval = 0
	r, err := d.exec.Exec(ctx, once)
	if err != nil {
		return r, err
	}
	d.countOperation(r, err)
	r.Interval, r.Key = op.Interval, op.Key()
	if r.RC == op.Expected && r.Status == lrmd.StatusDone {
		if _, err := d.exec.Submit(op); err != nil {
			return r, err
		}
	}
	return r, nil
}

// cancelledOperation is the operation a cancel action stops (the
// scheduler cancels monitors only).
func cancelledOperation(meta map[string]string) string {
	if op := meta["operation"]; op != "" {
		return op
	}
	return "monitor"
}

func (d *Daemon) countOperation(r lrmd.Result, err error) {
	result := "ok"
	if err != nil || lrmd.Classify(r.Action, r.Interval, r.RC, r.Status, r.Expected) != lrmd.Expected {
		result = "failed"
	}
	d.count("tachy_operations_total", "action", r.Action, "result", result)
	if err == nil {
		d.timing("tachy_operation_seconds", r.ExecTime, "action", r.Action)
	}
}

// onRecurringResult sees the results of recurring monitors (changes only).
// A failure goes to the CIB with the fail count, for the DC to recover.
func (d *Daemon) onRecurringResult(r lrmd.Result) {
	// Successes and cancellations (a stop cancels its monitors) are not
	// news for the DC.
	if lrmd.Classify(r.Action, r.Interval, r.RC, r.Status, r.Expected) == lrmd.Expected {
		return
	}
	d.log.Warn("monitor failed", "resource", r.Resource, "rc", int(r.RC), "reason", r.ExitReason)
	d.count("tachy_monitor_failures_total", "resource", r.Resource)
	// lrmd reports a failure that persists only once: keep trying until
	// the CIB has it (there may be no DC for a while), or the daemon stops.
	go func() {
		chs := resultChanges(d.local.Name, r, "")
		for i := 0; i < len(chs); {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := d.cib.r.Change(ctx, d.cib.net, chs[i])
			cancel()
			if err == nil {
				i++
				continue
			}
			d.log.Error("cannot record a monitor failure in the CIB yet; retrying (the resource is recovered once it is recorded)", "resource", r.Resource, "err", err)
			select {
			case <-d.stopping:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
}

// opRecord is the lrm_rsc_op for a result, as Pacemaker's controller
// writes it: id RSC_last_0 for one-shot operations, RSC_ACTION_INTERVAL for
// recurring ones; the transition key carries the expected rc, which is
// how the scheduler tells a failure from a success.
func opRecord(r lrmd.Result, id, transitionKey string) *cib.LRMRscOp {
	run, change := r.LastRun.Unix(), r.LastRCChange.Unix()
	exec, queue := r.ExecTime.Milliseconds(), r.QueueTime.Milliseconds()
	return &cib.LRMRscOp{
		ID: id, OperationKey: r.Key, Operation: r.Action, CallID: r.CallID, RCCode: int(r.RC), OpStatus: int(r.Status),
		Interval: r.Interval, LastRun: &run, LastRCChange: &change, ExecTime: &exec, QueueTime: &queue,
		OpDigest: r.Digest, TransitionKey: transitionKey,
		TransitionMagic: fmt.Sprintf("%d:%d;%s", int(r.Status), int(r.RC), transitionKey),
		ExitReason:      r.ExitReason,
	}
}

// resultChanges records a result: its history entry, and for a failure
// the last-failure entry and the node's fail count for the operation.
func resultChanges(node string, r lrmd.Result, transitionKey string) []*cib.Change {
	if transitionKey == "" {
		transitionKey = fmt.Sprintf("0:0:%d:tachy", int(r.Expected))
	}
	id := r.Resource + "_last_0"
	if r.Interval > 0 {
		id = r.Key
	}
	chs := []*cib.Change{{Op: cib.OpRecordOperation, Node: node, Resource: r.Resource, Operation: opRecord(r, id, transitionKey), Agent: agentSource(r.Agent)}}
	if r.RC == r.Expected && r.Status == lrmd.StatusDone {
		return chs
	}
	// A probe that finds the resource running (or promoted) found a
	// fact, not a failure.
	if isProbe(r) && r.Status == lrmd.StatusDone && (r.RC == lrmd.OK || r.RC == lrmd.RunningPromoted) {
		return chs
	}
	chs = append(chs, &cib.Change{Op: cib.OpRecordOperation, Node: node, Resource: r.Resource,
		Operation: opRecord(r, r.Resource+"_last_failure_0", transitionKey), Agent: agentSource(r.Agent)})
	attr := fmt.Sprintf("%s#%s_%d", r.Resource, r.Action, r.Interval.Milliseconds())
	now := strconv.FormatInt(time.Now().Unix(), 10)
	// Incremented where the change is applied: two failures recorded at
	// once both count.
	chs = append(chs,
		&cib.Change{Op: cib.OpIncrementNodeAttribute, Node: node, Name: "fail-count-" + attr},
		&cib.Change{Op: cib.OpSetNodeAttribute, Node: node, Name: "last-failure-" + attr, Value: &now})
	return chs
}

func agentSource(a lrmd.Agent) *cib.AgentSource {
	return &cib.AgentSource{Class: a.Class, Provider: a.Provider, Type: a.Type}
}

// actionRequest builds what a node needs to run a graph action of res,
// from the resource's definition in the CIB.
func actionRequest(c *cib.CIB, res *pe.Result, a *pe.Action) (ActionRequest, error) {
	p := c.FindPrimitive(a.Resource)
	if p == nil {
		// An orphan (deleted while active) is stopped with the agent
		// its history names, and no parameters (as Pacemaker does).
		if src := historyAgent(c, a.Node, a.Resource); src != nil && a.Task == "stop" {
			return ActionRequest{Resource: a.Resource, Agent: lrmd.Agent{Class: src.Class, Provider: src.Provider, Type: src.Type},
				Action: a.Task, Params: map[string]string{}, Meta: map[string]string{}}, nil
		}
		return ActionRequest{}, fmt.Errorf("resource %s is not configured", a.Resource)
	}
	req := ActionRequest{Resource: a.Resource, Agent: lrmd.Agent{Class: p.Class, Provider: p.Provider, Type: p.Type},
		Action: a.Task, IntervalMs: a.Interval.Milliseconds(), Params: agentParams(c, p), Meta: plainPairs(p.MetaAttributes)}
	// The scheduler evaluates the sets with rules (node attributes,
	// dates) for the node: the agent gets what the op-digest counts.
	if params, ok := res.AgentParams(a.Resource, a.Node); ok {
		req.Params = params
	}
	if a.Probe {
		req.Expected = int(lrmd.NotRunning) // a probe expects nothing, and finds whatever runs
	}
	if cl := cloneOf(c, p.ID); cl != nil {
		cloneMeta(c, cl, a.Resource, req.Meta)
		// An anonymous clone's instances are interchangeable: the agent
		// and the history know them by the clone's primitive id, as
		// Pacemaker runs and records them.
		if req.Meta["globally-unique"] != "true" {
			req.Resource = p.ID
		}
	}
	addActionMeta(a, req.Meta)

	if p.Operations != nil {
		for _, op := range p.Operations.Ops {
			if op.Name != a.Task || op.Interval != a.Interval {
				continue
			}
			if t, ok := op.TimeoutDuration(); ok {
				req.TimeoutMs = t.Milliseconds()
			}
			// A monitor of the promoted role expects "running promoted".
			if op.Name == "monitor" && (op.Role == cib.RolePromoted || op.Role == "Master") {
				req.Expected = int(lrmd.RunningPromoted)
			}
		}
	}
	return req, nil
}

// plainPairs merges name/value sets that have no rules (rules would need
// the scheduler's evaluation; resources using them are run with their
// rule-free values).
func plainPairs(sets []*cib.NVSet) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		if len(s.Rules) > 0 {
			continue
		}
		for _, p := range s.Pairs {
			if p.HasValue {
				out[p.Name] = p.Value
			}
		}
	}
	return out
}

// cloneOf finds the clone a primitive belongs to (directly or through a
// group), or nil.
func cloneOf(c *cib.CIB, id string) *cib.Clone {
	for _, r := range c.Configuration.Resources {
		cl, ok := r.(*cib.Clone)
		if !ok {
			continue
		}
		switch ch := cl.Child.(type) {
		case *cib.Primitive:
			if ch.ID == id {
				return cl
			}
		case *cib.Group:
			for _, m := range ch.Children {
				if m.ID == id {
					return cl
				}
			}
		}
	}
	return nil
}

// cloneMeta gives a clone instance's agent the clone's settings as
// Pacemaker does (OCF_RESKEY_CRM_meta_clone, clone_max, promotable, ...):
// promotable agents check them.
func cloneMeta(c *cib.CIB, cl *cib.Clone, instance string, meta map[string]string) {
	for k, v := range plainPairs(cl.MetaAttributes) {
		if _, set := meta[k]; !set {
			meta[k] = v
		}
	}
	if _, n, ok := strings.Cut(instance, ":"); ok {
		meta["clone"] = n
	}
	defaults := map[string]string{"clone-max": strconv.Itoa(len(c.Configuration.Nodes)), "clone-node-max": "1", "globally-unique": "false"}
	if cl.Promotable {
		meta["promotable"] = "true"
		defaults["promoted-max"], defaults["promoted-node-max"] = "1", "1"
	}
	for k, v := range defaults {
		if _, set := meta[k]; !set {
			meta[k] = v
		}
	}
	// Agents of Pacemaker 1.1 read the old names.
	if v, ok := meta["promoted-max"]; ok {
		meta["master-max"] = v
	}
	if v, ok := meta["promoted-node-max"]; ok {
		meta["master-node-max"] = v
	}
}

// historyAgent is the agent a node's history records for a resource (or,
// for an anonymous clone instance "rsc:N", for "rsc").
func historyAgent(c *cib.CIB, node, rsc string) *cib.AgentSource {
	base, _, _ := strings.Cut(rsc, ":")
	for _, st := range c.Status.NodeStates {
		if st.Uname != node || st.LRM == nil {
			continue
		}
		for _, lr := range st.LRM.Resources {
			if lr.ID == rsc || lr.ID == base {
				return &cib.AgentSource{Class: lr.Class, Provider: lr.Provider, Type: lr.Type}
			}
		}
	}
	return nil
}

// agentParams are the parameters an agent gets, computed as the
// scheduler computes them for the op-digest (pe's startParams, after
// Pacemaker's get_rsc_attributes): the primitive's instance attributes
// (sets by score, the first to name a parameter wins), then its group's
// and clone's for the names still unset, then the start operation's
// instance attributes over them; "#default" unsets. Sets with rules are
// left out: this is the fallback for what pe.Result.AgentParams cannot
// know (templates, id-references).
func agentParams(c *cib.CIB, p *cib.Primitive) map[string]string {
	params := map[string]string{}
	firstWins(p.InstanceAttributes, params)
	for _, parent := range parentsOf(c, p.ID) {
		switch r := parent.(type) {
		case *cib.Group:
			firstWins(r.InstanceAttributes, params)
		case *cib.Clone:
			firstWins(r.InstanceAttributes, params)
		}
	}
	if p.Operations != nil {
		for _, op := range p.Operations.Ops {
			if op.Name == "start" && op.Interval == 0 {
				for k, v := range firstWins(op.InstanceAttributes, nil) {
					params[k] = v
				}
				break
			}
		}
	}
	for k, v := range params {
		if strings.EqualFold(v, "#default") {
			delete(params, k)
		}
	}
	return params
}

func firstWins(sets []*cib.NVSet, into map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	ordered := slices.Clone(sets)
	score := func(s *cib.NVSet) cib.Score {
		if s.Score == nil {
			return 0
		}
		return *s.Score
	}
	sort.SliceStable(ordered, func(i, j int) bool { return score(ordered[i]) > score(ordered[j]) })
	for _, s := range ordered {
		if len(s.Rules) > 0 {
			continue
		}
		for _, pair := range s.Pairs {
			if _, set := into[pair.Name]; pair.HasValue && !set {
				into[pair.Name] = pair.Value
			}
		}
	}
	return into
}

// parentsOf lists the group and the clone a primitive belongs to, inner
// first.
func parentsOf(c *cib.CIB, id string) []cib.Resource {
	var out []cib.Resource
	for _, r := range c.Configuration.Resources {
		switch r := r.(type) {
		case *cib.Group:
			if slices.ContainsFunc(r.Children, func(m *cib.Primitive) bool { return m.ID == id }) {
				out = append(out, r)
			}
		case *cib.Clone:
			switch ch := r.Child.(type) {
			case *cib.Primitive:
				if ch.ID == id {
					out = append(out, r)
				}
			case *cib.Group:
				if slices.ContainsFunc(ch.Children, func(m *cib.Primitive) bool { return m.ID == id }) {
					out = append(out, ch, r)
				}
			}
		}
	}
	return out
}

func isProbe(r lrmd.Result) bool { return r.Action == "monitor" && r.Interval == 0 }

// forgetOwnHistory: a daemon that starts knows nothing of what runs on its
// node (its executor, and every recurring monitor, started afresh), so it
// erases the node's history from the CIB and the DC probes the node
// before it plans anything there. Retried until it lands: at a cluster's
// first start the DC has to list the node first.
func (d *Daemon) forgetOwnHistory() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// Only what earlier runs of the daemon recorded: results of
		// this run may already be in the CIB (the DC may have run
		// actions here before this erase got through).
		_, err := d.cib.r.Change(ctx, d.cib.net, &cib.Change{Op: cib.OpEraseHistory, Node: d.local.Name, KeepFromCallID: d.firstCallID})
		cancel()
		if err == nil {
			d.log.Info("this node's history is forgotten: the DC probes what runs here")
			return
		}
		select {
		case <-d.stopping:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
