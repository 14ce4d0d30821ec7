package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
)

// A transition is the DC running pe's graph: every required, runnable
// action once all the actions ordered before it have succeeded, as many at
// once as the ordering allows. A failed action stops the launch of new
// ones; those running finish, their results are recorded, and the DC plans
// again from the CIB, which now holds the failure (Pacemaker's transition
// abort). Only one transition runs at a time.

// transitionResult is how one action ended.
type transitionResult struct {
	action *pe.Action
	ok     bool
	err    error
}

// maybeStartTransition starts a transition for res unless one runs.
func (d *Daemon) maybeStartTransition(ctx context.Context, c *cib.CIB, res *pe.Result) {
	// Only actions that do something make a transition: do_shutdown
	// asks nothing of tachy (the node leaves by itself), and a graph of
	// it and pseudo-actions alone would be planned again at once.
	work := 0
	for _, a := range res.Actions {
		if a.Runnable && !a.Optional && !a.Pseudo && a.Task != "do_shutdown" {
			work++
		}
	}
	if work == 0 {
		return
	}
	d.mu.Lock()
	if d.transitionRunning {
		d.mu.Unlock()
		return
	}
	d.transitionRunning = true
	d.transitionSeq++
	d.transitionInputs, d.transitionAbort = planningInputs(c), false
	id := d.transitionSeq
	d.mu.Unlock()
	go func() {
		outcome := d.runTransition(ctx, id, c, res)
		if outcome == transitionFailed {
			// Most failures are recorded and change the next plan; one
			// that is not (a node unreachable, an agent missing) would
			// give the same plan again at once: pause before it.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		d.mu.Lock()
		d.transitionRunning = false
		d.mu.Unlock()
		d.kickDC()
	}()
}

// How a transition ended.
const (
	transitionComplete = "complete"
	transitionFailed   = "failed"  // an action failed or the DC lost its role
	transitionAborted  = "aborted" // the CIB changed under it (abort.go)
)

func (d *Daemon) runTransition(ctx context.Context, id int, c *cib.CIB, res *pe.Result) string {
	start := time.Now()
	in := map[int]*pe.Action{}
	for _, a := range res.Actions {
		if a.Runnable && !a.Optional {
			in[a.ID] = a
		}
	}
	waiting := map[int]int{}
	next := map[int][]int{}
	seen := map[[2]int]bool{}
	for _, e := range res.Edges {
		k := [2]int{e.First, e.Then}
		if in[e.First] == nil || in[e.Then] == nil || e.First == e.Then || seen[k] {
			continue
		}
		seen[k] = true
		waiting[e.Then]++
		next[e.First] = append(next[e.First], e.Then)
	}
	d.log.Info("transition started", "transition", id, "actions", len(in), "summary", strings.Join(normalisedSummary(res.Summary()), "; "))
	results := make(chan transitionResult)
	launched := map[int]bool{}
	running, done, failed := 0, 0, 0
	aborted := false
	for {
		// A DC that lost its role stops launching: the new DC plans
		// from the CIB, which holds every result recorded so far.
		if failed == 0 && !d.cib.r.IsDC() {
			d.log.Warn("no longer the DC: transition stopped", "transition", id)
			failed++
		}
		if failed == 0 && !aborted && d.abortRequested() {
			aborted = true
		}
		if failed == 0 {
			for _, a := range res.Actions { // graph order
				if in[a.ID] == nil || launched[a.ID] || waiting[a.ID] > 0 || aborted && !survivesAbort(a) {
					continue
				}
				launched[a.ID] = true
				running++
				if !a.Pseudo {
					// As Pacemaker's controller logs "Initiating ...".
					d.log.Info("initiating action", "transition", id, "action", a.Key(), "node", a.Node)
				}
				go func(a *pe.Action) { results <- d.runGraphAction(ctx, id, c, res, a) }(a)
			}
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		done++
		if !r.ok {
			failed++
			d.log.Warn("transition action failed; re-planning after the running ones finish", "transition", id,
				"action", r.action.Key(), "node", r.action.Node, "err", r.err)
			continue
		}
		for _, t := range next[r.action.ID] {
			waiting[t]--
		}
	}
	outcome := transitionComplete
	switch {
	case failed > 0:
		outcome = transitionFailed
	case aborted:
		outcome = transitionAborted
	}
	d.count("tachy_transitions_total", "outcome", outcome)
	if d.metrics != nil {
		d.metrics.add("tachy_transition_actions_total", float64(done-failed), "outcome", "ok")
		d.metrics.add("tachy_transition_actions_total", float64(failed), "outcome", "failed")
		d.metrics.add("tachy_transition_actions_total", float64(len(in)-done), "outcome", "not_run")
	}
	d.log.Info("transition ended", "transition", id, "outcome", outcome, "done", done, "failed", failed,
		"not_run", len(in)-done, "duration", time.Since(start).Round(time.Millisecond))
	return outcome
}

func normalisedSummary(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "* ")), " "))
	}
	return out
}

// runGraphAction runs one action and records its result.
func (d *Daemon) runGraphAction(ctx context.Context, id int, c *cib.CIB, res *pe.Result, a *pe.Action) transitionResult {
	switch {
	case a.Pseudo:
		return transitionResult{action: a, ok: true}
	case a.Resource == "" && a.Task == "stonith":
		if !d.cib.r.IsDC() {
			return transitionResult{action: a, err: errors.New("no longer the DC")}
		}
		if err := d.fenceNode(ctx, c, a.Node, a.FenceOp); err != nil {
			return transitionResult{action: a, err: err}
		}
		return transitionResult{action: a, ok: true}
	case a.Resource == "":
		return transitionResult{action: a, ok: true} // do_shutdown: the node leaves on its own
	}
	if !d.cib.r.IsDC() {
		return transitionResult{action: a, err: errors.New("no longer the DC")}
	}
	req, err := actionRequest(c, res, a)
	if err != nil {
		return transitionResult{action: a, err: err}
	}
	actx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMs, lrmd.DefaultTimeout.Milliseconds())+30_000)*time.Millisecond)
	defer cancel()
	r, err := d.execOn(actx, a.Node, req)
	if err != nil {
		return transitionResult{action: a, err: err}
	}
	if isNotify(a) {
		return notifyResult(a, r) // never recorded in the history
	}
	if a.Task == "cancel" {
		// A cancelled recurring operation leaves the history (as
		// Pacemaker's controller deletes its lrm_rsc_op), so that the
		// scheduler no longer counts it as running.
		key := lrmd.OpKey(req.Resource, cancelledOperation(req.Meta), time.Duration(req.IntervalMs)*time.Millisecond)
		ch := &cib.Change{Op: cib.OpDeleteHistory, Node: a.Node, Resource: req.Resource, OpIDs: []string{key}}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := d.cib.r.Change(sctx, d.cib.net, ch)
		cancel()
		if err != nil {
			return transitionResult{action: a, err: fmt.Errorf("removing the cancelled %s from the history: %w", key, err)}
		}
		return transitionResult{action: a, ok: true}
	}
	key := fmt.Sprintf("%d:%d:%d:%s", a.ID, id, req.Expected, d.local.Name)
	// The result is recorded through whichever node is DC by now: if
	// this one lost the role while the action ran, the new DC must still
	// learn what happened (or it would plan as if it had not).
	chs := resultChanges(a.Node, r, key)
	addMigrationAttrs(a, chs)
	for _, ch := range chs {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := d.cib.r.Change(sctx, d.cib.net, ch)
		cancel()
		if err != nil {
			d.log.Error("cannot record an operation's result in the CIB; the next DC may not know it ran", "action", a.Key(), "node", a.Node, "err", err)
			return transitionResult{action: a, err: fmt.Errorf("recording the result: %w", err)}
		}
	}
	if a.Probe && r.Status == lrmd.StatusDone && r.RC != lrmd.NotRunning {
		// Not a failure, but the plan assumed it stopped: stop
		// launching and plan again from what the probe found.
		return transitionResult{action: a, err: fmt.Errorf("the probe found %s active (rc %d): planning again", a.Resource, int(r.RC))}
	}
	if r.RC != lrmd.RC(req.Expected) || r.Status != lrmd.StatusDone {
		return transitionResult{action: a, err: fmt.Errorf("rc %d (%s), expected %d", int(r.RC), r.ExitReason, req.Expected)}
	}
	return transitionResult{action: a, ok: true}
}

// addMigrationAttrs records a migration's source and target on the
// history entries of its migrate_to and migrate_from, as Pacemaker's
// lrm_rsc_op carries them (migrate_source, migrate_target): the scheduler
// reads a migrate_to without its migrate_from as a partial migration to
// that target.
func addMigrationAttrs(a *pe.Action, chs []*cib.Change) {
	src, tgt := a.Meta["migrate_source"], a.Meta["migrate_target"]
	if (a.Task != "migrate_to" && a.Task != "migrate_from") || src == "" || tgt == "" {
		return
	}
	for _, ch := range chs {
		if ch.Op == cib.OpRecordOperation && ch.Operation != nil {
			ch.Operation.MigrateSource, ch.Operation.MigrateTarget = src, tgt
		}
	}
}

// execOn runs an action on a node: here directly, elsewhere through that
// node's daemon.
func (d *Daemon) execOn(ctx context.Context, node string, req ActionRequest) (lrmd.Result, error) {
	if node == d.local.Name {
		return d.runAction(ctx, req)
	}
	n, ok := d.cfg.Node(node)
	if !ok {
		return lrmd.Result{}, fmt.Errorf("node %s is not in this node's configuration", node)
	}
	line, err := json.Marshal(callRequest{Op: "exec", Action: &req})
	if err != nil {
		return lrmd.Result{}, err
	}
	out, err := d.cib.net.Call(ctx, cibAddr(n, d.cfg.CIB.Port), line)
	if err != nil {
		return lrmd.Result{}, fmt.Errorf("running %s %s on %s: %w", req.Resource, req.Action, node, err)
	}
	var rep callReply
	if err := json.Unmarshal(out, &rep); err != nil {
		return lrmd.Result{}, fmt.Errorf("%s answered: %w", node, err)
	}
	if rep.Error != "" || rep.Result == nil {
		return lrmd.Result{}, errors.New(node + ": " + rep.Error)
	}
	return *rep.Result, nil
}
