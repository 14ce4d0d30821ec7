package controller

import (
	"fmt"

	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
)

// Clone notifications: a notify action of a transition runs the agent's
// "notify" on its node with the notification variables pe computed
// (pe.Action.Meta: notify_type, notify_operation, notify_start_resource,
// ...), which the executor passes as OCF_RESKEY_CRM_meta_notify_*. As in
// Pacemaker, a notification changes no state: its result is not recorded
// in the CIB's operation history (the controller keeps notify results
// out of the history cache), and no fail count counts it. The clone's
// notification pseudo-actions complete at once, as every pseudo-action.

// isNotify reports whether a is an instance's notify action.
func isNotify(a *pe.Action) bool { return a.Task == "notify" && !a.Pseudo && a.Resource != "" }

// notifyResult judges a notify action's result without recording it: a
// notification expects rc 0 (OCF_SUCCESS).
func notifyResult(a *pe.Action, r lrmd.Result) transitionResult {
	if r.Status != lrmd.StatusDone || r.RC != lrmd.OK {
		return transitionResult{action: a, err: fmt.Errorf("notify (%s %s) on %s: rc %d (%s), expected 0",
			a.Meta["notify_type"], a.Meta["notify_operation"], a.Node, int(r.RC), r.ExitReason)}
	}
	return transitionResult{action: a, ok: true}
}

// addActionMeta gives the agent the meta-attributes the scheduler put on
// the action (the notification variables), over the resource's own.
func addActionMeta(a *pe.Action, meta map[string]string) {
	for k, v := range a.Meta {
		meta[k] = v
	}
}

// survivesAbort: an aborted transition still runs the actions Pacemaker
// gives priority INFINITY (a clone's completion pseudo-actions and its
// post-notifications) once their inputs complete, so that the instances
// hear of the starts, stops, promotions and demotions that were done.
func survivesAbort(a *pe.Action) bool { return a.Priority >= pe.InfinityPriority }
