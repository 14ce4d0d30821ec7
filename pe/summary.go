package pe

import (
	"fmt"

	"github.com/tachy-ha/tachy/cib"
)

// summaryWriter formats rsc-action-item lines. Pacemaker keeps the column
// widths in static variables that only grow, so a line's padding depends
// on the lines printed before it.
type summaryWriter struct {
	lines       []string
	rscWidth    int
	detailWidth int
}

func (w *summaryWriter) item(change string, r *Resource, origin, dest *Node, action, source *Action) {
	if source == nil {
		source = action
	}
	if l := len(r.ID); l > w.rscWidth {
		w.rscWidth = l + 2
	}
	role, next := r.Role, r.NextRole
	needRole := roleRank[role] > roleRank[cib.RoleStarted] || roleRank[next] > roleRank[cib.RoleUnpromoted]
	sameHost := origin != nil && dest != nil && origin == dest
	sameRole := role == next
	var details string
	switch {
	case needRole && origin == nil:
		details = fmt.Sprintf("%s -> %s %s", role, next, dest.Name)
	case origin == nil:
		details = dest.Name
	case needRole && dest == nil:
		details = fmt.Sprintf("%s %s", role, origin.Name)
	case dest == nil:
		details = origin.Name
	case needRole && sameRole && sameHost:
		details = fmt.Sprintf("%s %s", role, origin.Name)
	case sameRole && sameHost:
		details = origin.Name
	case needRole && sameRole:
		details = fmt.Sprintf("%s -> %s %s", origin.Name, dest.Name, role)
	case sameRole:
		details = fmt.Sprintf("%s -> %s", origin.Name, dest.Name)
	case sameHost:
		details = fmt.Sprintf("%s -> %s %s", role, next, origin.Name)
	default:
		details = fmt.Sprintf("%s %s -> %s %s", role, origin.Name, next, dest.Name)
	}
	if l := len(details); l > w.detailWidth {
		w.detailWidth = l
	}
	runnable := action == nil || action.Runnable
	reason := ""
	switch {
	case source != nil && source.Reason != "" && !runnable:
		reason = "due to " + source.Reason + " (blocked)"
	case source != nil && source.Reason != "":
		reason = "due to " + source.Reason
	case !runnable:
		reason = "blocked"
	}
	sep := ""
	if reason != "" {
		sep = "  "
	}
	w.lines = append(w.lines, fmt.Sprintf("  * %-8s   %-*s   ( %*s )%s%s", change, w.rscWidth, r.ID, w.detailWidth, details, sep, reason))
}

// summarise is pcmk__output_actions: node actions, then each resource's
// LogActions in assignment order.
func (ws *workingSet) summarise(all []*Resource) []string {
	w := &summaryWriter{rscWidth: 5, detailWidth: 5}
	// Fencing is listed newest first: Pacemaker prepends each fencing
	// action as it schedules them in node order.
	for i := len(ws.actions) - 1; i >= 0; i-- {
		a := ws.actions[i]
		if a.rsc != nil || a.Optional || a.Task != "stonith" {
			continue
		}
		op := a.FenceOp
		if op == "" {
			op = "reboot"
		}
		node := a.Node
		if a.guestOf != "" {
			node += " (resource: " + a.guestOf + ")"
		}
		w.lines = append(w.lines, fmt.Sprintf("  * Fence (%s) %s '%s'", op, node, a.Reason))
	}
	for _, r := range all {
		prims := r.primitives()
		switch {
		case r.bundle != nil:
			prims = r.bundlePrimitives()
		case r.bundleOf != nil:
			continue // summarised with its bundle
		}
		for _, p := range prims {
			ws.logActions(w, p)
		}
	}
	return w.lines
}

// logActions is LogActions for a primitive.
func (ws *workingSet) logActions(w *summaryWriter, r *Resource) {
	next := r.AssignedTo
	var current *Node
	if len(r.RunningOn) > 0 {
		current = r.current()
		if r.Role == cib.RoleStopped || r.Role == cib.RoleUnknown {
			r.Role = cib.RoleStarted
		}
	} else if r.Role == cib.RoleUnknown || r.Role == cib.RoleNone {
		r.Role = cib.RoleStopped
	}
	if r.NextRole == cib.RoleUnknown || r.NextRole == cib.RoleNone {
		r.NextRole = cib.RoleStopped
	}
	if current == nil && r.Orphan {
		return
	}
	if !r.Managed || (current == nil && next == nil) {
		return
	}
	moving := current != nil && next != nil && current != next
	var start *Action
	if next != nil {
		start = r.find("start", next)
	}
	startNode := current
	if start == nil || !start.Runnable {
		startNode = nil
	}
	var stop *Action
	if startNode != nil {
		stop = r.find("stop", startNode)
	}
	if stop == nil {
		// No stop where it stays (multiple-active=stop_unexpected):
		// any stop.
		stop = r.find("stop", nil)
	}
	if r.Role == r.NextRole {
		switch {
		case r.Migrating && current != nil && start != nil && start.Runnable && (stop == nil || stop.Runnable):
			w.item("Migrate", r, current, next, start, nil)
		case start == nil || start.Optional:
			demote, promote := r.find("demote", nil), r.find("promote", nil)
			if demote != nil && promote != nil && !demote.Optional && !promote.Optional {
				w.item("Re-promote", r, current, next, promote, demote)
			} else if r.reload && start != nil && start.Optional && current == next {
				w.item("Reload", r, current, next, start, nil)
			}
		case !start.Runnable:
			src := start
			if stop != nil && stop.Reason != "" {
				src = stop
			}
			w.item("Stop", r, current, nil, stop, src)
		case moving && current != nil:
			change := "Move"
			if r.Failed {
				change = "Recover"
			}
			w.item(change, r, current, next, stop, nil)
		case r.Failed:
			w.item("Recover", r, current, nil, stop, nil)
		default:
			w.item("Restart", r, current, next, start, nil)
		}
		return
	}
	if stop != nil && (r.NextRole == cib.RoleStopped || (start != nil && !start.Runnable)) {
		for _, n := range r.RunningOn {
			so := r.find("stop", n)
			src := start
			if so != nil && so.Reason != "" {
				src = so
			}
			w.item("Stop", r, n, nil, so, src)
		}
		return
	}
	switch {
	case stop != nil && r.Failed && !stop.Optional:
		w.item("Recover", r, current, next, stop, start)
	case moving:
		w.item("Move", r, current, next, stop, nil)
	case stop != nil && !stop.Optional:
		w.item("Restart", r, current, next, start, nil)
	case r.Role == cib.RolePromoted:
		w.item("Demote", r, current, next, r.find("demote", nil), nil)
	case r.NextRole == cib.RolePromoted:
		w.item("Promote", r, current, next, r.find("promote", nil), nil)
	case r.Role == cib.RoleStopped && r.NextRole != cib.RoleStopped:
		w.item("Start", r, nil, next, start, nil)
	}
}
