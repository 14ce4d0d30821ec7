package pe

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// Clone notifications (meta notify=true), as Pacemaker 2.1.5's
// pcmk_sched_notif.c creates them. For each of start, stop, promote and
// demote the clone gets four pseudo-actions around its own (ordered
// pre -> confirmed-pre -> the clone's action, and the clone's completion
// -> post -> confirmed-post), created with the clone's pseudo-actions so
// that orderings propagate through them (pcmk__clone_notif_pseudo_ops).
// After propagation, as clone_expand does, the instances' states and
// actions are collected into the notification variables, and each
// instance active on a node, or to be, gets a "notify" action there
// between the pre (or post) pseudo-action and its confirmation
// (pcmk__create_notifications). The variables travel in the notify
// actions' Meta, named as Pacemaker's action meta-attributes
// (notify_type, notify_start_resource, ...); the executor passes them to
// the agent as OCF_RESKEY_CRM_meta_<name>.

// notifyData is notify_data_t: one notified operation of a clone.
type notifyData struct {
	action                       string // start, stop, promote, demote
	pre, preDone, post, postDone *Action
	keys                         map[string]string

	start, stop, promote, demote []notifyEntry
	active, inactive             []notifyEntry
	promoted, unpromoted         []notifyEntry
}

// notifyEntry is notify_entry_t: an instance (a primitive) and a node.
type notifyEntry struct {
	rsc  *Resource
	node *Node
}

// notifies reports whether a clone's instances are notified: meta
// notify=true on the clone (a bundle's containers never are; its inner
// clone is, if its primitive has notify=true).
func notifies(cl *Resource) bool {
	if cl.bundle != nil {
		return false
	}
	if isTrue(cl.Meta["notify"]) {
		return true
	}
	if cl.bundleOf != nil {
		// A bundle's inner clone notifies if its primitive does.
		for _, p := range cl.primitives() {
			if isTrue(p.Meta["notify"]) {
				return true
			}
		}
	}
	return false
}

// notifyPseudoOps is pcmk__clone_notif_pseudo_ops: the pre and post
// pseudo-actions of a clone's action (start, stop, promote, demote) and
// its completion (running, stopped, promoted, demoted).
func (ws *workingSet) notifyPseudoOps(cl *Resource, task string, action, complete *Action) *notifyData {
	if !notifies(cl) {
		return nil
	}
	n := &notifyData{action: task}
	pseudo := func(base *Action, opTask, keyType, notifyType string) *Action {
		a := ws.newAction(cl, opTask, nil, base.Optional)
		a.Pseudo = true
		a.key = fmt.Sprintf("%s_%s_notify_%s_0", cl.ID, keyType, base.Task)
		a.Meta = map[string]string{
			"notify_type": notifyType, "notify_operation": task,
			"notify_key_type": keyType, "notify_key_operation": base.Task,
		}
		return a
	}
	if action != nil {
		n.pre = pseudo(action, "notify", "pre", "pre")
		n.preDone = pseudo(action, "notified", "confirmed-pre", "pre")
		ws.order(n.pre, n.preDone, OrderOptional)
		ws.order(n.preDone, action, OrderOptional)
	}
	if complete != nil {
		// Post-notifications happen even if the action itself cannot:
		// they are runnable as its completion was when created.
		n.post = pseudo(complete, "notify", "post", "post")
		n.post.Runnable = complete.Runnable
		n.post.Priority = InfinityPriority
		n.postDone = pseudo(complete, "notified", "confirmed-post", "post")
		n.postDone.Runnable = complete.Runnable
		n.postDone.Priority = InfinityPriority
		ws.order(complete, n.post, OrderImpliesThen)
		ws.order(n.post, n.postDone, OrderImpliesThen)
	}
	if action != nil && complete != nil {
		ws.order(n.preDone, n.post, OrderOptional)
	}
	return n
}

// isNotifyPseudo: one of a clone's notification pseudo-actions.
func isNotifyPseudo(a *Action) bool {
	return a.Pseudo && (a.Task == "notify" || a.Task == "notified")
}

// notifyRole is the instance's current role as the notification lists
// see it (the role LogActions settles on).
func notifyRole(p *Resource) cib.Role {
	switch {
	case len(p.RunningOn) > 0 && (p.Role == cib.RoleStopped || p.Role == cib.RoleUnknown || p.Role == cib.RoleNone):
		return cib.RoleStarted
	case p.Role == cib.RoleUnknown || p.Role == cib.RoleNone:
		return cib.RoleStopped
	}
	return p.Role
}

func nextRoleOf(p *Resource) cib.Role {
	if p.NextRole == cib.RoleUnknown || p.NextRole == cib.RoleNone {
		return cib.RoleStopped
	}
	return p.NextRole
}

// createNotifications is the notification part of clone_expand, run once
// orderings have propagated: for each notified operation of each clone,
// in the order start, stop, promote, demote.
func (ws *workingSet) createNotifications() {
	for _, cl := range ws.cloneList {
		for _, n := range cl.notifs {
			ws.collectNotifyData(cl, n)
			ws.notifyKeys(cl, n)
			ws.createNotifyActions(cl, n)
		}
	}
	ws.orderAfterNotifications()
}

// orderAfterNotifications: what is ordered after a notifying clone's
// action waits for its post-notifications to be confirmed, as Pacemaker
// remaps such an ordering's first action (action_for_ordering: running
// becomes confirmed-post_notify_running). The edges added here only
// sequence: the flags already propagated through the original ones.
func (ws *workingSet) orderAfterNotifications() {
	done := map[*Action]*Action{}
	for _, cl := range ws.cloneList {
		for _, n := range cl.notifs {
			if n.postDone == nil {
				continue
			}
			for _, a := range cl.actions {
				if !a.Pseudo || isNotifyPseudo(a) || a.node != nil {
					continue
				}
				if doneTask(a.Task) == n.action {
					done[a] = n.postDone
				}
			}
		}
	}
	if len(done) == 0 {
		return
	}
	for _, e := range append([]*Edge(nil), ws.edges...) {
		first, then := ws.actions[e.First], ws.actions[e.Then]
		pd := done[first]
		if pd == nil || then.rsc == nil || then.rsc == first.rsc || isAncestor(first.rsc, then.rsc) {
			continue
		}
		ws.order(pd, then, OrderOptional)
	}
}

// isAncestor reports whether a is r or one of r's parents.
func isAncestor(a, r *Resource) bool {
	for ; r != nil; r = r.Parent {
		if r == a {
			return true
		}
	}
	return false
}

// collectNotifyData is collect_resource_data: every instance's state
// (its current role and node) and its required actions.
func (ws *workingSet) collectNotifyData(cl *Resource, n *notifyData) {
	for _, p := range cl.primitives() {
		e := notifyEntry{rsc: p}
		if len(p.RunningOn) > 0 {
			e.node = p.RunningOn[0]
		}
		switch notifyRole(p) {
		case cib.RoleStopped:
			n.inactive = append(n.inactive, e)
		case cib.RoleStarted:
			n.active = append(n.active, e)
		case cib.RoleUnpromoted:
			n.unpromoted = append(n.unpromoted, e)
			n.active = append(n.active, e)
		case cib.RolePromoted:
			n.promoted = append(n.promoted, e)
			n.active = append(n.active, e)
		}
		for _, a := range p.actions {
			if a.Optional || a.node == nil || a.Interval != 0 {
				continue
			}
			// A stop on a node to be fenced counts even if it cannot
			// run (it is implied by the fencing).
			if !a.Runnable && !(a.Task == "stop" && a.node.Unclean) {
				continue
			}
			e := notifyEntry{rsc: p, node: a.node}
			switch a.Task {
			case "start":
				n.start = append(n.start, e)
			case "stop":
				n.stop = append(n.stop, e)
			case "promote":
				n.promote = append(n.promote, e)
			case "demote":
				n.demote = append(n.demote, e)
			}
		}
	}
}

// expandNotifyList is expand_list: the instances (sorted by id, each
// once) and, with nodes, the node of each. An empty list is " ".
func expandNotifyList(list []notifyEntry, withNodes bool) (rscs, nodes string, ok bool) {
	if len(list) == 0 {
		return " ", " ", true
	}
	sorted := make([]notifyEntry, len(list))
	copy(sorted, list)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.rsc.ID != b.rsc.ID {
			return a.rsc.ID < b.rsc.ID
		}
		if (a.node == nil) != (b.node == nil) {
			return b.node == nil // nodeless entries last
		}
		return a.node != nil && a.node.ID < b.node.ID
	})
	var rl, nl []string
	last := ""
	for _, e := range sorted {
		if withNodes && e.node == nil {
			continue
		}
		if e.rsc.ID == last {
			continue
		}
		last = e.rsc.ID
		rl = append(rl, e.rsc.ID)
		if withNodes {
			nl = append(nl, e.node.Name)
		}
	}
	if len(rl) == 0 {
		return "", "", false // Pacemaker adds no value for the name
	}
	return strings.Join(rl, " "), strings.Join(nl, " "), true
}

// notifyKeys is pcmk__create_notification_keys: the variables every
// notification of the operation carries, and whether it is required (an
// instance does the operation).
func (ws *workingSet) notifyKeys(cl *Resource, n *notifyData) {
	n.keys = map[string]string{}
	add := func(name string, list []notifyEntry, withNodes bool, aliases ...string) {
		rscs, nodes, ok := expandNotifyList(list, withNodes)
		if !ok {
			return
		}
		for _, nm := range append([]string{name}, aliases...) {
			n.keys["notify_"+nm+"_resource"] = rscs
			if withNodes {
				n.keys["notify_"+nm+"_uname"] = nodes
			}
		}
	}
	add("stop", n.stop, true)
	add("start", n.start, true)
	add("demote", n.demote, true)
	add("promote", n.promote, true)
	add("active", n.active, true)
	add("unpromoted", n.unpromoted, true, "slave") // the deprecated name too
	add("promoted", n.promoted, true, "master")
	add("inactive", n.inactive, false)

	var avail []*Node
	for nd := range ws.weightsOf(cl) {
		avail = append(avail, nd)
	}
	n.keys["notify_available_uname"] = nodeNameList(avail)
	n.keys["notify_all_uname"] = nodeNameList(ws.nodes)
	target := cl.Meta["container-attribute-target"]
	if prims := cl.primitives(); target == "" && cl.bundleOf != nil && len(prims) > 0 {
		target = prims[0].Meta["container-attribute-target"] // the bundle's attribute_target
	}
	if strings.EqualFold(target, "host") {
		sorted := append([]*Node(nil), ws.nodes...)
		sort.SliceStable(sorted, func(i, j int) bool { return cmpNodeName(sorted[i].Name, sorted[j].Name) < 0 })
		var hosts []string
		for _, nd := range sorted {
			h := nd
			if nd.remoteRsc != nil && nd.remoteRsc.container != nil && len(nd.remoteRsc.container.RunningOn) > 0 {
				h = nd.remoteRsc.container.RunningOn[0]
			}
			hosts = append(hosts, h.Name)
		}
		n.keys["notify_all_hosts"] = listOrSpace(hosts)
	}

	var list []notifyEntry
	switch n.action {
	case "start":
		list = n.start
	case "stop":
		list = n.stop
	case "promote":
		list = n.promote
	case "demote":
		list = n.demote
	}
	if len(list) > 0 {
		for _, a := range []*Action{n.pre, n.preDone, n.post, n.postDone} {
			if a != nil {
				a.Optional = false
			}
		}
	}
}

// nodeNameList is expand_node_list over nodes sorted by name.
func nodeNameList(nodes []*Node) string {
	sorted := append([]*Node(nil), nodes...)
	sort.SliceStable(sorted, func(i, j int) bool { return cmpNodeName(sorted[i].Name, sorted[j].Name) < 0 })
	var names []string
	for _, nd := range sorted {
		names = append(names, nd.Name)
	}
	return listOrSpace(names)
}

func listOrSpace(words []string) string {
	if len(words) == 0 {
		return " "
	}
	return strings.Join(words, " ")
}

// addMeta sets the names not set yet (add_hash_param).
func (a *Action) addMeta(m map[string]string) {
	if a.Meta == nil {
		a.Meta = map[string]string{}
	}
	for k, v := range m {
		if _, set := a.Meta[k]; !set {
			a.Meta[k] = v
		}
	}
}

// createNotifyActions is pcmk__create_notifications: the variables go on
// the instances' required actions, and each instance gets its notify
// actions.
func (ws *workingSet) createNotifyActions(cl *Resource, n *notifyData) {
	prims := cl.primitives()
	for _, p := range prims {
		for _, a := range p.actions {
			if a.Optional || a.node == nil || a.Interval != 0 {
				continue
			}
			switch a.Task {
			case "start", "stop", "promote", "demote":
				a.addMeta(n.keys)
			}
		}
	}
	switch {
	case n.action == "start" && len(n.start) == 0,
		n.action == "promote" && len(n.promote) == 0,
		n.action == "demote" && len(n.demote) == 0:
		return // nothing to notify of (a stop may be implied by fencing)
	}
	for _, p := range prims {
		ws.instanceNotifications(p, n)
	}
}

// instanceNotifications is create_notify_actions for one instance: stops
// and demotions are announced where it is active, starts and promotions
// where it is to run.
func (ws *workingSet) instanceNotifications(p *Resource, n *notifyData) {
	stop, start := p.find("stop", nil), p.find("start", nil)
	if notifyRole(p) != cib.RoleStopped && (n.action == "stop" || n.action == "demote") {
		for _, cur := range p.RunningOn {
			// A stop implied by fencing the node needs no notification
			// there.
			if stop != nil && stop.Pseudo && (cur.Unclean || cur.requiresReset) {
				continue
			}
			ws.notifyAction(p, cur, n.pre, n.preDone, n)
			if n.action == "demote" || stop == nil || stop.Optional {
				ws.postNotify(p, cur, n)
			}
		}
	}
	if nextRoleOf(p) == cib.RoleStopped || p.AssignedTo == nil || (n.action != "start" && n.action != "promote") {
		return
	}
	if start != nil && start.node != nil && start.node.remoteRsc != nil {
		// Behind a Pacemaker Remote connection that cannot start, the
		// instance's start and promotion do not happen: no
		// notifications.
		if cs := start.node.remoteRsc.find("start", nil); cs != nil && !cs.Runnable {
			return
		}
	}
	if n.action != "start" || start == nil || start.Optional {
		ws.notifyAction(p, p.AssignedTo, n.pre, n.preDone, n)
	}
	ws.postNotify(p, p.AssignedTo, n)
}

// notifyAction is new_notify_action: instance p's notify action on node,
// between the clone's pseudo-action op and its confirmation.
func (ws *workingSet) notifyAction(p *Resource, node *Node, op, confirm *Action, n *notifyData) *Action {
	if op == nil || confirm == nil || !node.Online || !op.Runnable {
		return nil
	}
	a := ws.newAction(p, "notify", node, op.Optional)
	a.key = fmt.Sprintf("%s_%s_notify_%s_0", p.ID, op.Meta["notify_type"], op.Meta["notify_operation"])
	// custom_action: an action that needs nothing runs on a clean node
	// that is up, for a managed resource.
	a.Runnable = !node.Unclean && p.Managed && ws.guestActionRunnable(node)
	a.addMeta(op.Meta)
	a.addMeta(n.keys)
	ws.order(op, a, OrderOptional)
	ws.order(a, confirm, OrderOptional)
	return a
}

// postNotify is new_post_notify_action: the post notification, and the
// instance's recurring monitors after the confirmation.
func (ws *workingSet) postNotify(p *Resource, node *Node, n *notifyData) {
	if n.post == nil {
		return
	}
	if a := ws.notifyAction(p, node, n.post, n.postDone, n); a != nil {
		a.Priority = InfinityPriority
	}
	if n.postDone == nil {
		return
	}
	for _, m := range p.actions {
		if m.Interval > 0 && m.Task != "cancel" {
			ws.order(n.postDone, m, OrderOptional)
		}
	}
}
