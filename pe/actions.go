package pe

import (
	"fmt"
	"slices"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// Action is one step of the transition.
type Action struct {
	ID       int
	Resource string // "" for node actions (fencing)
	Task     string // start, stop, monitor, stonith; running/stopped for group pseudo-actions
	Node     string // "" for pseudo-actions without a node
	Interval time.Duration
	Optional bool // not needed: part of the graph for ordering only
	Runnable bool
	Pseudo   bool // implied (no agent call): group markers, stops implied by fencing
	Reason   string
	FenceOp  string // fencing: "reboot", or "on" for unfencing
	Probe    bool   // a probe (monitor, interval 0): expects "not running" and finds whatever is there
	// Meta holds meta-attributes the action carries beyond its
	// resource's, named as Pacemaker's action meta (without the
	// "CRM_meta_" prefix the executor adds): a clone's notification
	// variables (notify_type, notify_operation, notify_start_resource,
	// notify_active_uname, ...; see notify.go). Nil for most actions.
	Meta map[string]string
	// Priority is the graph synapse's priority: InfinityPriority for a
	// clone's completion pseudo-actions (running, stopped, promoted,
	// demoted) and its post-notifications, which Pacemaker's executor
	// still runs once their inputs complete after the transition is
	// aborted (abort priority INFINITY), so that instances hear of what
	// was done.
	Priority int

	key       string // the operation key when it is not RSC_TASK_INTERVAL (notifications)
	printName string // the resource's id in the graph (graphNames)

	guestOf     string // guest fencing: the container recovered
	inherent    bool   // required when created, not by propagation
	minRunnable int    // runnable only with this many runnable OrderOneOrMore predecessors
	rsc         *Resource
	node        *Node
}

// Key is the action key Pacemaker uses, e.g. rsc1_start_0.
func (a *Action) Key() string {
	if a.key != "" {
		return a.key
	}
	if a.Resource == "" {
		return a.Task + "-" + a.Node
	}
	return fmt.Sprintf("%s_%s_%d", a.Resource, a.Task, a.Interval.Milliseconds())
}

// Edge orders two actions: Then may not begin before First completes.
type Edge struct {
	First, Then int // action IDs
	Kind        EdgeKind
}

// EdgeKind is the ordering's effect beyond sequencing.
type EdgeKind int

const (
	// OrderOptional only sequences the actions if both happen.
	OrderOptional EdgeKind = 1 << iota
	// OrderImpliesThen: if First is required, so is Then.
	OrderImpliesThen
	// OrderImpliesFirst: if Then is required, so is First.
	OrderImpliesFirst
	// OrderRunnableLeft: Then can only run if First can.
	OrderRunnableLeft
	// OrderRestart: a required start of a running resource requires its stop.
	OrderRestart
	// OrderOneOrMore: First counts towards Then's minimum of runnable
	// predecessors (clone-min, require-all=false).
	OrderOneOrMore
	// OrderPerNode: First is a clone's action; for Then's node it counts
	// as required only when an instance's action there is
	// (action_flags_for_ordering).
	OrderPerNode
	// OrderAsymmetrical: a Mandatory ordering with symmetrical=false; an
	// unrunnable First makes Then required and unrunnable
	// (handle_asymmetric_ordering).
	OrderAsymmetrical
)

// InfinityPriority is Pacemaker's INFINITY as an action priority.
const InfinityPriority = 1000000

func (ws *workingSet) newAction(rsc *Resource, task string, n *Node, optional bool) *Action {
	a := &Action{ID: len(ws.actions), Task: task, Optional: optional, Runnable: true, rsc: rsc, node: n, inherent: !optional}
	if rsc != nil {
		a.Resource = rsc.ID
		rsc.actions = append(rsc.actions, a)
	}
	if n != nil {
		a.Node = n.Name
	}
	ws.actions = append(ws.actions, a)
	return a
}

func (ws *workingSet) order(first, then *Action, kind EdgeKind) {
	if first == nil || then == nil {
		return
	}
	ws.edges = append(ws.edges, &Edge{First: first.ID, Then: then.ID, Kind: kind})
}

func (r *Resource) find(task string, n *Node) *Action {
	for _, a := range r.actions {
		if a.Task == task && a.Interval == 0 && (n == nil || a.node == n) {
			return a
		}
	}
	return nil
}

// createFencing schedules fencing of unclean nodes (pcmk__schedule_fencing).
func (ws *workingSet) createFencing() {
	if !ws.opts.stonithEnabled {
		return
	}
	for _, n := range ws.nodes {
		if n.isRemote() {
			continue // fenceRemoteNodes
		}
		if n.Unclean && !ws.canFence(n) {
			continue
		}
		if n.Unclean {
			a := ws.newAction(nil, "stonith", n, false)
			a.FenceOp = "reboot"
			a.Reason = n.fenceReason
			if a.Reason == "" {
				a.Reason = "node is unclean"
			}
			if !ws.opts.haveStonithRsc {
				a.Runnable = false
			}
		} else if n.Shutdown && n.Online {
			ws.newAction(nil, "do_shutdown", n, false)
		}
	}
}

// canFence is pe_can_fence for a cluster node: without quorum only a
// member of our partition can be fenced (unless no-quorum-policy=ignore).
func (ws *workingSet) canFence(n *Node) bool {
	if ws.opts.haveQuorum || ws.opts.noQuorumPolicy == "ignore" {
		return true
	}
	return n.Online
}

func (ws *workingSet) fencingOf(n *Node) *Action {
	for _, a := range ws.actions {
		if a.rsc == nil && a.Task == "stonith" && a.node == n && a.FenceOp != "on" {
			return a
		}
	}
	return nil
}

// createActions is native_create_actions (and the group's pseudo-actions).
func (ws *workingSet) createActions(r *Resource) {
	if r.isClone() {
		ws.cloneActions(r)
		return
	}
	if r.isGroup() {
		for _, c := range r.Children {
			ws.createActions(c)
		}
		optStart, optStop := true, true
		for _, c := range r.Children {
			if s := c.find("start", nil); s != nil && !s.Optional {
				optStart = false
			}
			if s := c.find("stop", nil); s != nil && !s.Optional {
				optStop = false
			}
		}
		for _, t := range []string{"start", "running", "stop", "stopped"} {
			opt := optStart
			if t == "stop" || t == "stopped" {
				opt = optStop
			}
			a := ws.newAction(r, t, nil, opt)
			a.Pseudo = true
		}
		return
	}
	next := r.AssignedTo
	var recurringStart *Action // the start the recurring monitors follow
	multiple := len(r.RunningOn) > 1
	// A partial migration (migration.go) continues if the resource
	// still goes to the node it was migrating to; else it is stopped on
	// both nodes (neither migrating nor multiply active for Pacemaker).
	partial := r.partialTarget != nil
	if partial && next == r.partialTarget && isTrue(r.Meta["allow-migrate"]) && r.Managed && !r.Failed &&
		r.Role == cib.RoleStarted && r.NextRole == cib.RoleStarted {
		multiple = false
	} else {
		r.partialTarget = nil
	}
	if cur := r.current(); isTrue(r.Meta["allow-migrate"]) && r.Managed && !r.Failed && !multiple &&
		cur != nil && next != nil && cur != next && !cur.Unclean && cur.Online &&
		r.Role == cib.RoleStarted && r.NextRole == cib.RoleStarted {
		r.Migrating = true
	}
	for _, n := range r.RunningOn {
		if r.expectedNode(n) || (r.partialTarget != nil && n == r.partialTarget) {
			// A continuing partial migration is not stopped on its
			// target (stop_resource).
			continue
		}
		need := next != n || r.Failed || multiple || r.NextRole == cib.RoleStopped || r.forceStop[n]
		stop := ws.newAction(r, "stop", n, !need)
		if !r.Managed {
			stop.Optional = true
			stop.Runnable = false
		}
		if r.AssignedTo == nil && need {
			stop.Reason = "node availability"
		} else if r.stopUnexpected && multiple {
			stop.Reason = "being multiply active"
		}
		if n.isRemote() {
			// Implied by fencing later (fenceRemoteNodes); a remote
			// node that is down cannot act, a guest waits for its
			// container (custom_action).
			if !n.Online && (!n.isGuest() || n.requiresReset) {
				stop.Runnable = false
			} else if !ws.guestActionRunnable(n) {
				stop.Runnable = false
			}
		} else if n.Unclean {
			stop.Pseudo = true
			if f := ws.fencingOf(n); f != nil {
				ws.order(f, stop, OrderImpliesThen)
				if !f.Runnable {
					stop.Runnable = false
				}
			} else {
				stop.Runnable = false
			}
		} else if !n.Online {
			stop.Runnable = false
		}
	}
	if next != nil {
		running := false
		for _, n := range r.RunningOn {
			if n == next {
				running = true
			}
		}
		start := ws.newAction(r, "start", next, running && !r.Failed && !multiple && r.partialTarget == nil)
		start.Pseudo = r.expectedNode(next)
		if why, changed := r.defChanged[next]; running && changed {
			// pcmk__check_action_config's force_restart, or
			// pcmk__rsc_agent_changed
			start.Optional = false
			start.inherent = true
			start.Reason = why
			if ws.requiresNothing(r) && !next.isRemote() {
				// The start recreated for the node, needing
				// nothing, drops the reason; a remote node's
				// parameters are checked after that
				// (update_resource_action_runnable).
				start.Reason = ""
			}
		}
		if !r.Managed {
			start.Optional = true
		}
		// schedule_reload: not for unmanaged or failed resources, nor
		// where a restart is already required.
		r.reload = running && r.reloadOn[next] && r.Managed && !r.Failed && start.Optional
		if r.reload && r.startPending {
			// A change while a start is pending restarts instead.
			r.reload = false
			start.Optional = false
			start.inherent = true
		}
		if !ws.startNodeRunnable(next) || (!r.Managed && r.Failed) {
			start.Runnable = false
		}
		// Cloned fencing devices start without quorum (as crm_simulate
		// shows in the corpus; a lone fencing primitive does not).
		if !ws.opts.haveQuorum && !(r.cloneOf() != nil && r.Prim != nil && r.Prim.Class == "stonith") {
			switch ws.quorumPolicy(r) {
			case "stop", "suicide":
				start.Runnable = false
				start.Reason = "no quorum"
			case "freeze":
				if len(r.RunningOn) == 0 {
					start.Runnable = false
					start.Reason = "quorum freeze"
				}
			}
		}
		recurringStart = start
		for _, st := range r.actions {
			if st.Task == "stop" && st.Interval == 0 {
				ws.order(st, start, OrderOptional|OrderImpliesThen|OrderRestart)
			}
		}
	} else if r.Prim != nil && !r.Orphan {
		// Cannot run anywhere: an unrunnable start (pcmk__assign_primitive),
		// which orderings on it see.
		start := ws.newAction(r, "start", nil, true)
		start.Runnable = false
		// Stop before start holds here too: a required stop makes the
		// start required (and what is ordered after it). Not for clone
		// instances, whose clone's running would become required, which
		// the corpus (bug-lf-2453) shows it does not.
		for _, st := range r.actions {
			if st.Task == "stop" && st.Interval == 0 && r.cloneOf() == nil {
				ws.order(st, start, OrderOptional|OrderImpliesThen|OrderRestart)
			}
		}
	}
	for _, n := range r.RunningOn {
		if f := ws.fencingOf(n); f != nil && next != nil && next != n {
			ws.order(f, r.find("start", next), OrderOptional)
		}
	}
	ws.promotableActions(r)
	if recurringStart != nil {
		// After the role changes, which the monitors are ordered
		// against (as pcmk__primitive_create_actions does).
		ws.recurring(r, next, recurringStart)
	}
}

// quorumPolicy is effective_quorum_policy without quorum: with
// no-quorum-policy=demote, promotable instances stay (demoted, never
// promoted) and everything else stops.
func (ws *workingSet) quorumPolicy(r *Resource) string {
	if ws.opts.noQuorumPolicy != "demote" {
		return ws.opts.noQuorumPolicy
	}
	if r.Role == cib.RolePromoted || r.Role == cib.RoleUnpromoted {
		if r.NextRole == cib.RolePromoted {
			r.NextRole = cib.RoleUnpromoted
		}
		return "ignore"
	}
	return "stop"
}

// recurring creates the recurring monitors for the role the resource will
// have on its node, and cancels the running ones configured for another
// role (pcmk__create_recurring_actions, recurring_op_for_active): a
// monitor with role Promoted runs only on a promoted instance (expecting
// OCF_RUNNING_PROMOTED), one with role Unpromoted, or none, only on an
// instance that is not promoted.
func (ws *workingSet) recurring(r *Resource, n *Node, start *Action) {
	if r.Prim == nil || r.Prim.Operations == nil {
		return
	}
	promote, demote := r.find("promote", n), r.find("demote", nil)
	ops := r.Prim.Operations.Ops
	for _, op := range ops {
		if op.Name != "monitor" || op.Interval <= 0 || op.Role == cib.RoleStopped {
			continue
		}
		// Two ops of one name and interval (one per role, say) are a
		// configuration error, and neither runs (is_op_dup).
		if slices.ContainsFunc(ops, func(o *cib.Op) bool { return o != op && o.Name == op.Name && o.Interval == op.Interval }) {
			continue
		}
		if en, ok := op.Extra["enabled"]; ok && !isTrue(en) {
			continue
		}
		// Running already (the history shows it on the node), and not
		// to be restarted with the resource.
		active := r.activeRecurring[n][fmt.Sprintf("%s_monitor_%d", r.ID, op.Interval.Milliseconds())]
		optional := start.Optional && active
		forRole := op.Role
		if forRole == cib.RoleUnknown {
			forRole = cib.RoleNone
		}
		if (forRole != cib.RoleNone && forRole != r.NextRole) || (forRole == cib.RoleNone && r.NextRole == cib.RolePromoted) {
			// Configured for another role: cancel it where it runs,
			// before the role changes.
			if optional {
				c := ws.newAction(r, "cancel", n, false)
				c.Interval = op.Interval
				c.Meta = map[string]string{"operation": op.Name} // what it cancels
				switch {
				case r.Role == cib.RolePromoted && demote != nil:
					ws.order(c, demote, OrderRunnableLeft)
				case r.NextRole == cib.RolePromoted && promote != nil:
					ws.order(c, promote, OrderRunnableLeft)
				}
			}
			continue
		}
		m := ws.newAction(r, "monitor", n, optional)
		m.Interval = op.Interval
		m.Runnable = start.Runnable && n.Online && !n.Unclean
		ws.order(start, m, OrderOptional|OrderRunnableLeft)
		switch {
		case r.NextRole == cib.RolePromoted && promote != nil:
			ws.order(promote, m, OrderOptional|OrderRunnableLeft)
		case r.Role == cib.RolePromoted && demote != nil:
			ws.order(demote, m, OrderOptional|OrderRunnableLeft)
		}
	}
}

// internalOrderings adds group member ordering and the group pseudo-action
// edges.
func (ws *workingSet) internalOrderings(all []*Resource) {
	var groups []*Resource
	for _, r := range all {
		groups = append(groups, r.groups()...)
		if r.isClone() {
			ws.cloneOrderings(r)
		}
		if r.bundle != nil {
			ws.bundleOrderings(r)
		}
	}
	for _, g := range groups {
		gs, grun, gstop, gstopped := g.find("start", nil), g.find("running", nil), g.find("stop", nil), g.find("stopped", nil)
		ordered := g.Meta["ordered"] != "false"
		// group_internal_constraints: the group stops completely before it
		// starts again, and its markers follow their own start and stop.
		ws.order(gstopped, gs, OrderOptional)
		ws.order(gstop, gstopped, OrderRunnableLeft)
		ws.order(gs, grun, OrderRunnableLeft)
		var prev *Resource
		for _, c := range g.Children {
			for _, a := range c.actions {
				if a.Interval != 0 {
					continue
				}
				switch a.Task {
				case "start":
					ws.order(gs, a, OrderOptional|OrderRunnableLeft)
					ws.order(a, grun, OrderOptional|OrderImpliesThen|OrderRunnableLeft)
				case "stop":
					ws.order(gstop, a, OrderOptional)
					ws.order(a, gstopped, OrderOptional|OrderImpliesThen)
				}
			}
			if prev != nil && ordered {
				for _, ps := range prev.actions {
					if ps.Task == "start" && ps.Interval == 0 {
						for _, cs := range c.actions {
							if cs.Task == "start" && cs.Interval == 0 {
								ws.order(ps, cs, OrderImpliesThen|OrderRunnableLeft)
							}
						}
					}
				}
				for _, cs := range c.actions {
					if cs.Task == "stop" {
						for _, ps := range prev.actions {
							if ps.Task == "stop" {
								ws.order(cs, ps, OrderImpliesFirst)
							}
						}
					}
				}
			}
			prev = c
		}
	}
}

// orderAction picks the action a constraint names: for groups, a
// completed start or stop is the running/stopped pseudo-action.
func orderAction(r *Resource, task string, asFirst bool) []*Action {
	if r.isGroup() || r.isClone() {
		if asFirst {
			switch task {
			case "start":
				task = "running"
			case "stop":
				task = "stopped"
			case "promote":
				task = "promoted"
			case "demote":
				task = "demoted"
			}
		}
		if a := r.find(task, nil); a != nil {
			return []*Action{a}
		}
		return nil
	}
	var out []*Action
	for _, a := range r.actions {
		if a.Task == task && a.Interval == 0 {
			out = append(out, a)
		}
	}
	return out
}

var inverseTask = map[string]string{"start": "stop", "stop": "start", "promote": "demote", "demote": "promote"}

func (ws *workingSet) unpackOrders() {
	for _, c := range ws.constraints {
		o, ok := c.(*cib.Order)
		if !ok {
			continue
		}
		if len(o.Sets) > 0 {
			ws.unpackOrderSets(o)
			continue
		}
		first, then := ws.byID[o.First], ws.byID[o.Then]
		if first == nil || then == nil || first.Parent != nil || then.Parent != nil {
			continue
		}
		ws.orderPair(o, first, then, o.FirstAction, o.ThenAction, o.Kind, o.Score)
	}
}

// unpackOrderSets is unpack_order_tags for an ordering of resource sets:
// each set's own orderings (unpack_order_set), then each pair of
// consecutive sets (order_rsc_sets), and the inverse pair when the
// constraint is symmetrical.
func (ws *workingSet) unpackOrderSets(o *cib.Order) {
	members := make([][]*Resource, len(o.Sets))
	for i, set := range o.Sets {
		for _, id := range set.Resources {
			r := ws.byID[id]
			if r == nil || r.Parent != nil {
				return
			}
			members[i] = append(members[i], r)
		}
	}
	kind := orderKind(o.Kind, o.Score)
	symmetrical := kind != "Serialize"
	if o.Symmetrical != nil {
		symmetrical = *o.Symmetrical
	}
	for i, set := range o.Sets {
		ws.orderWithinSet(o, set, members[i])
		if i == 0 {
			continue
		}
		ws.orderSets(o.Sets[i-1], members[i-1], set, members[i], kind, symmetrical, false)
		if symmetrical {
			ws.orderSets(set, members[i], o.Sets[i-1], members[i-1], kind, true, true)
		}
	}
}

// orderKind is the kind of an ordering: its kind attribute, else
// Optional for a legacy score of 0, else Mandatory.
func orderKind(kind string, score *cib.Score) string {
	if kind != "" {
		return kind
	}
	if score != nil && *score == 0 {
		return "Optional"
	}
	return "Mandatory"
}

// orderWithinSet is unpack_order_set: a sequential set orders its members
// one after the other (and the reverse for the inverse action when
// symmetrical); a Serialize set orders each member before all later ones.
func (ws *workingSet) orderWithinSet(o *cib.Order, set *cib.ResourceSet, members []*Resource) {
	if len(members) < 2 {
		return
	}
	kind := set.Kind
	if kind == "" {
		kind = orderKind(o.Kind, set.Score)
		if set.Score == nil {
			kind = orderKind(o.Kind, o.Score)
		}
	}
	action := set.Action
	if action == "" {
		action = "start"
	}
	if kind == "Serialize" {
		for i := range members {
			for _, later := range members[i+1:] {
				ws.orderResources(members[i], action, later, action, OrderOptional)
			}
		}
		return
	}
	if set.Sequential != nil && !*set.Sequential {
		return
	}
	for i := 1; i < len(members); i++ {
		ws.orderPair(o, members[i-1], members[i], action, action, kind, nil)
	}
}

// orderSets is order_rsc_sets: set1's members before set2's. An explicitly
// sequential set takes part through its last member (first for the
// inverse); a set with require-all=false goes through a pseudo-action
// runnable once any member's action is (only when starting or promoting).
func (ws *workingSet) orderSets(set1 *cib.ResourceSet, m1 []*Resource, set2 *cib.ResourceSet, m2 []*Resource, kind string, symmetrical, inverse bool) {
	a1, a2 := set1.Action, set2.Action
	if a1 == "" {
		a1 = "start"
	}
	if a2 == "" {
		a2 = "start"
	}
	if inverse {
		a1, a2 = inverseTask[a1], inverseTask[a2]
		if a1 == "" || a2 == "" {
			return
		}
	}
	requireAll := set1.RequireAll == nil || *set1.RequireAll || a1 == "stop" || a1 == "demote"
	var flags EdgeKind = OrderOptional
	if kind == "Mandatory" && !symmetrical {
		flags |= OrderAsymmetrical
	} else if kind == "Mandatory" {
		if inverse {
			flags |= OrderImpliesFirst
		} else {
			flags |= OrderImpliesThen
			if a1 == "start" || a1 == "promote" {
				flags |= OrderRunnableLeft
			}
		}
	}
	if !requireAll {
		met := ws.newAction(nil, "one-or-more:"+set1.ID, nil, true)
		met.Pseudo = true
		met.minRunnable = 1
		for _, r := range m1 {
			for _, a := range orderAction(r, a1, true) {
				ws.order(a, met, OrderOneOrMore)
			}
		}
		for _, r := range m2 {
			for _, tx := range orderAction(r, a2, false) {
				ws.order(met, tx, flags|OrderRunnableLeft)
			}
			ws.orderCloneChildren(met, r, a2, flags|OrderRunnableLeft)
		}
		return
	}
	pick := func(set *cib.ResourceSet, m []*Resource, last bool) []*Resource {
		if set.Sequential == nil || !*set.Sequential || len(m) == 0 {
			return m
		}
		if last {
			return m[len(m)-1:]
		}
		return m[:1]
	}
	for _, f := range pick(set1, m1, !inverse) {
		for _, t := range pick(set2, m2, inverse) {
			ws.orderResources(f, a1, t, a2, flags)
		}
	}
}

// orderResources orders one resource's action before another's
// (pcmk__order_resource_actions), reaching clone instances.
func (ws *workingSet) orderResources(first *Resource, fa string, then *Resource, ta string, flags EdgeKind) {
	if ws.interleaved(first, fa, then, ta) {
		ws.orderInterleaved(first, fa, then, ta, flags)
		return
	}
	for _, fx := range orderAction(first, fa, true) {
		for _, tx := range orderAction(then, ta, false) {
			if (first.isClone() && tx.node != nil) || (then.isClone() && fx.node != nil) {
				ws.order(fx, tx, flags|OrderPerNode)
				continue
			}
			ws.order(fx, tx, flags)
		}
		ws.orderCloneChildren(fx, then, ta, flags)
	}
}

// orderPair adds one ordering (and its symmetrical inverse).
func (ws *workingSet) orderPair(o *cib.Order, first, then *Resource, fa, ta, kind string, score *cib.Score) {
	if kind == "" {
		kind = "Mandatory"
		if score != nil && *score == 0 {
			kind = "Optional"
		}
	}
	if fa == "" {
		fa = "start"
	}
	if ta == "" {
		ta = fa
	}
	symmetrical := kind != "Serialize"
	if o.Symmetrical != nil {
		symmetrical = *o.Symmetrical
	}
	var flags EdgeKind = OrderOptional
	if kind == "Optional" && then.Meta["restart-type"] == "restart" {
		// Deprecated restart-type=restart: recovery implies the right.
		flags |= OrderImpliesThen
	}
	if kind == "Mandatory" && symmetrical {
		flags |= OrderImpliesThen
		if fa == "start" || fa == "promote" {
			flags |= OrderRunnableLeft
		}
	} else if kind == "Mandatory" {
		flags |= OrderAsymmetrical
	}
	if kind == "Mandatory" && !symmetrical {
		flags |= OrderAsymmetrical
	}
	if min := minFirstInstances(o, first); min > 0 {
		ws.cloneMinOrdering(o.ID, first, fa, then, ta, flags, min)
	} else if ws.interleaved(first, fa, then, ta) {
		ws.orderInterleaved(first, fa, then, ta, flags)
	} else {
		for _, fx := range orderAction(first, fa, true) {
			for _, tx := range orderAction(then, ta, false) {
				if first.isClone() && orderingNode(tx) != nil {
					ws.order(fx, tx, flags|OrderPerNode)
					continue
				}
				ws.order(fx, tx, flags)
			}
			ws.orderCloneChildren(fx, then, ta, flags)
		}
	}
	if symmetrical && inverseTask[fa] != "" && inverseTask[ta] != "" {
		var iflags EdgeKind = OrderOptional
		if kind == "Mandatory" {
			iflags |= OrderImpliesFirst
		}
		if ws.interleaved(then, inverseTask[ta], first, inverseTask[fa]) {
			ws.orderInterleaved(then, inverseTask[ta], first, inverseTask[fa], iflags)
			return
		}
		for _, fx := range orderAction(then, inverseTask[ta], true) {
			for _, tx := range orderAction(first, inverseTask[fa], false) {
				if first.isClone() && fx.node != nil {
					ws.order(fx, tx, iflags|OrderPerNode)
					continue
				}
				ws.order(fx, tx, iflags)
			}
			ws.orderCloneChildren(fx, first, inverseTask[fa], iflags)
		}
	}
}

// asymmetricApplies is whether an asymmetrical ordering whose first
// cannot run blocks then (handle_asymmetric_ordering): not for a
// group's pseudo-actions (their members are updated themselves) or
// clones, and not for an optional stop of a stopped resource or an
// optional start of one already active on that node only.
func asymmetricApplies(then *Action) bool {
	r := then.rsc
	if r == nil || then.Pseudo || r.isGroup() || r.isClone() {
		return false
	}
	if then.Optional {
		if then.Task == "stop" && len(r.RunningOn) == 0 {
			return false
		}
		if then.Task == "start" && len(r.RunningOn) == 1 && r.RunningOn[0] == then.node {
			return false
		}
	}
	return true
}

// orderingNode is the node an action counts as on for orderings with a
// clone (pcmk__update_action_for_orderings): its own, or for a group's
// start the group's assigned node.
func orderingNode(a *Action) *Node {
	if a.node == nil && a.Task == "start" && a.rsc != nil && a.rsc.isGroup() {
		return a.rsc.AssignedTo
	}
	return a.node
}

func reasonOf(kind string, a *Action) string {
	if a.Resource == "" {
		return kind + " " + a.Task
	}
	return kind + " " + a.Resource + " " + a.Task
}

// blockMigrations is the effect of orderings on live migration: a
// resource cannot migrate while something it is ordered after moves by
// stop and start (pe_order_apply_first_non_migratable).
func (ws *workingSet) blockMigrations() {
	for changed := true; changed; {
		changed = false
		for _, e := range ws.edges {
			first, then := ws.actions[e.First], ws.actions[e.Then]
			if e.Kind&OrderImpliesThen == 0 || (first.Task != "start" && first.Task != "running") || then.Task != "start" {
				continue
			}
			f, t := first.rsc, then.rsc
			if f == nil || t == nil || f == t || !t.Migrating || f.Migrating || f.isGroup() || t.isGroup() {
				continue
			}
			var fcur *Node
			if f.isClone() {
				// A clone moves when one of its instances does.
				if !f.instanceMoves() {
					continue
				}
			} else if fcur = f.current(); fcur == nil || f.AssignedTo == nil || fcur == f.AssignedTo {
				continue
			}
			t.Migrating = false
			if t.container == f {
				// A guest's connection moves with its container, for
				// no reason of its own.
				changed = true
				continue
			}
			if st := t.find("stop", t.current()); st != nil && st.Reason == "" {
				st.Reason = reasonOf("unrunnable", f.find("stop", fcur))
			}
			changed = true
		}
	}
}

// instanceMoves: some primitive of clone r leaves its node for another.
func (r *Resource) instanceMoves() bool {
	for _, p := range r.primitives() {
		if cur := p.current(); cur != nil && p.AssignedTo != nil && cur != p.AssignedTo {
			return true
		}
	}
	return false
}

// propagate applies the edges' effects on optional and runnable flags until
// nothing changes (pcmk__update_action_for_orderings).
func (ws *workingSet) propagate() {
	// Requirements settle before runnability spreads, so that an action
	// both required and blocked by a predecessor gives the requirement as
	// its reason, as Pacemaker does.
	allowRunnable := !requiredFirst
	required := func() int {
		n := 0
		for _, a := range ws.actions {
			if !a.Optional {
				n++
			}
		}
		return n
	}
	// Edges into each action, for the members of a group reached through
	// an ordering with the group (see below).
	into := map[int][]*Edge{}
	for _, e := range ws.edges {
		into[e.Then] = append(into[e.Then], e)
	}
	for rounds := 0; rounds < 1000; rounds++ {
		changed := false
		before := required()
		step := func(first, then *Action, kind EdgeKind) {
			if first.rsc != nil && then.rsc != nil && first.rsc != then.rsc &&
				(first.rsc.Migrating || then.rsc.Migrating) {
				// Live migration keeps dependents running.
				kind &^= OrderImpliesThen | OrderImpliesFirst
			}
			if kind&OrderOneOrMore != 0 {
				return
			}
			if allowRunnable && kind&OrderRunnableLeft != 0 && !first.Runnable && then.Runnable {
				then.Runnable = false
				if then.Reason == "" && (first.rsc != nil || first.minRunnable > 0) && first.rsc != then.rsc && !(then.rsc != nil && first.rsc != nil && then.rsc.Parent == first.rsc) {
					then.Reason = reasonOf("unrunnable", first)
				} else if then.Reason == "" && then.rsc != nil && first.rsc != nil && then.rsc.Parent == first.rsc &&
					first.rsc.isGroup() && first.rsc.Children[0] == then.rsc {
					// An ordering on a group's start reaches its first
					// member (pcmk__group_update_ordered_actions) with its
					// reason; later members follow the previous one.
					then.Reason = first.Reason
				}
				changed = true
			}
			if allowRunnable && kind&OrderAsymmetrical != 0 && asymmetricBlocks(first, then) {
				changed = true
			}
			if kind&OrderImpliesThen != 0 && !first.Optional && kind&OrderPerNode != 0 && !ws.requiredOnNode(first, orderingNode(then)) {
				kind &^= OrderImpliesThen
			}
			if kind&OrderImpliesThen != 0 && !first.Optional && !(then.Task == "start" && then.rsc != nil && !then.rsc.Managed) {
				if then.Optional {
					then.Optional = false
					changed = true
				}
				if then.Reason == "" && !then.inherent && then.rsc != nil && (first.FenceOp == "on" ||
					first.rsc != nil && first.rsc != then.rsc && then.rsc.Parent != first.rsc && first.rsc.Parent != then.rsc) {
					then.Reason = reasonOf("required", first)
					changed = true
				}
				if ws.requireGroupMembers(first, then) {
					changed = true
				}
			}
			if kind&OrderImpliesFirst != 0 && kind&OrderPerNode != 0 && !then.Optional && !ws.requiredOnNode(then, first.node) {
				kind &^= OrderImpliesFirst
			}
			if kind&OrderImpliesFirst != 0 && !then.Optional && first.Optional && first.Task != "start" {
				first.Optional = false
				changed = true
			}
			if allowRunnable && kind&OrderImpliesFirst != 0 && !then.Optional && !first.Runnable && then.Runnable &&
				!(first.rsc != nil && !first.rsc.Managed && !first.rsc.Failed) {
				// A required action waiting for one that cannot run is
				// blocked; not by the stop of an unmanaged resource that
				// is not failed (Pacemaker blocks only for one both
				// unmanaged and blocked).
				then.Runnable = false
				if then.Reason == "" && first.rsc != nil && first.rsc != then.rsc {
					then.Reason = reasonOf("unrunnable", first)
				}
				changed = true
			}
			if allowRunnable && kind&(OrderImpliesThen|OrderImpliesFirst|OrderRestart) != 0 && then.Runnable && blockedStop(first) {
				// Nothing ordered after the stop of a blocked resource
				// can run.
				then.Runnable = false
				changed = true
			}
			if allowRunnable && kind&OrderRestart != 0 && !then.Optional && !first.Optional && !first.Runnable && then.Runnable {
				// A required restart whose stop cannot run cannot start
				// either (handle_restart_ordering).
				then.Runnable = false
				if then.Reason == "" && first.rsc != then.rsc {
					then.Reason = reasonOf("unrunnable", first)
				}
				changed = true
			}
			if kind&OrderRestart != 0 && !then.Optional && first.Optional && then.rsc != nil && then.node == first.node {
				first.Optional = false
				changed = true
			}
		}
		// Latest edges first: Pacemaker prepends each ordering to its
		// then's list, so of two orderings that require an action the
		// later one gives the reason.
		for i := len(ws.edges) - 1; i >= 0; i-- {
			e := ws.edges[i]
			first, then := ws.actions[e.First], ws.actions[e.Then]
			step(first, then, e.Kind)
		}
		// A clone's pseudo-actions are required when an instance's
		// matching action is (summary_action_flags).
		// Starts and promotions of a clone are runnable only if one of
		// its instances' is.
		for _, r := range ws.cloneList {
			for _, a := range r.actions {
				if !a.Pseudo {
					continue
				}
				// A notification pseudo-action answers for the action it
				// notifies of (clone_child_action): pre_notify_start for
				// start, post_notify_running for running.
				base := a.Task
				if isNotifyPseudo(a) {
					base = a.Meta["notify_key_operation"]
				}
				task := doneTask(base)
				found, anyRunnable := false, false
				for _, inst := range r.Children {
					// A group instance answers with its own pseudo-action
					// (get_complex_task maps only a primitive's).
					itask := task
					if inst.isGroup() {
						itask = base
					}
					for _, ia := range orderAction(inst, itask, false) {
						found = true
						if ia.Runnable {
							anyRunnable = true
						}
						if !ia.Optional && a.Optional {
							a.Optional = false
							changed = true
						}
					}
				}
				if found && !anyRunnable && a.Runnable && (task == "start" || task == "promote") {
					a.Runnable = false
					changed = true
				}
			}
		}
		if ws.blockColocationDependents() {
			changed = true
		}
		// A clone-min pseudo-action needs enough runnable instances.
		for _, a := range ws.actions {
			if a.minRunnable == 0 || !a.Runnable {
				continue
			}
			n := 0
			for _, e := range ws.edges {
				if e.Then == a.ID && e.Kind&OrderOneOrMore != 0 && ws.actions[e.First].Runnable {
					n++
				}
			}
			if n < a.minRunnable {
				a.Runnable = false
				changed = true
			}
		}
		// A running resource whose start cannot run must stop.
		for _, a := range ws.actions {
			if a.Task == "start" && a.rsc != nil && !a.Runnable && a.rsc.Managed && a.node != nil {
				for _, n := range a.rsc.RunningOn {
					if st := a.rsc.find("stop", n); st != nil && st.Optional {
						st.Optional = false
						changed = true
					}
				}
			}
		}
		reqChanged := required() != before
		if !changed && !reqChanged && allowRunnable {
			break
		}
		if requiredFirst {
			allowRunnable = !reqChanged
		}
	}
}

// requireGroupMembers: an ordering that requires a group's start requires
// its members' starts too (pcmk__group_update_ordered_actions), for the
// same reason.
func (ws *workingSet) requireGroupMembers(first, then *Action) bool {
	g := then.rsc
	if g == nil || !g.isGroup() || then.Task != "start" || first.rsc == nil || first.rsc == g || g.Parent == first.rsc {
		return false
	}
	if first.rsc.isClone() {
		// A clone's action counts only if required on the group's node
		// (action_flags_for_ordering with the group's location).
		n := g.Children[0].AssignedTo
		if n == nil {
			n = g.Children[0].current()
		}
		if n == nil || !ws.requiredOnNode(first, n) {
			return false
		}
	}
	changed := false
	for _, c := range g.Children {
		ca := c.find("start", nil)
		if ca == nil || !ca.Optional || !c.Managed {
			continue
		}
		ca.Optional = false
		if ca.Reason == "" {
			ca.Reason = reasonOf("required", first)
		}
		changed = true
	}
	return changed
}

// asymmetricBlocks is handle_asymmetric_ordering: after an unrunnable
// First, Then is required and unrunnable, unless it is optional and the
// ordering cannot matter (a stop of a stopped resource, or a start of one
// already running on that node alone). It reports whether Then changed.
func asymmetricBlocks(first, then *Action) bool {
	if then.rsc == nil || first.Runnable || !then.Runnable {
		return false
	}
	if then.rsc.isGroup() {
		// The group's members take the ordering
		// (pcmk__group_update_ordered_actions); the group's own start
		// does not block its first member.
		changed := false
		for _, c := range then.rsc.Children {
			if ca := c.find(then.Task, then.node); ca != nil && asymmetricBlocks(first, ca) {
				changed = true
			}
		}
		return changed
	}
	if then.Optional {
		r := then.rsc
		if then.Task == "stop" && len(r.RunningOn) == 0 {
			return false
		}
		if then.Task == "start" && len(r.RunningOn) == 1 && r.RunningOn[0] == then.node {
			return false
		}
		then.Optional = false
		if then.Reason == "" && first.rsc != then.rsc {
			then.Reason = reasonOf("required", first)
		}
	}
	then.Runnable = false
	if then.Reason == "" && first.rsc != then.rsc {
		then.Reason = reasonOf("unrunnable", first)
	}
	return true
}

// blockedStop: the unrunnable stop of an unmanaged resource blocked by a
// failure with on-fail=block.
func blockedStop(a *Action) bool {
	r := a.rsc
	if r == nil || a.Task != "stop" || a.Runnable || r.Managed {
		return false
	}
	for _, of := range r.onFail {
		if of == "block" {
			return true
		}
	}
	return r.blocked
}

// requiredFirst: see propagate.
const requiredFirst = true

// requiredOnNode is summary_action_flags for one node: whether an
// instance's action matching the clone's pseudo-action a is required on n.
func (ws *workingSet) requiredOnNode(a *Action, n *Node) bool {
	cl := a.rsc
	if cl == nil || !cl.isClone() {
		return !a.Optional
	}
	task := doneTask(a.Task)
	for _, p := range cl.primitives() {
		for _, x := range p.actions {
			if x.Task == task && x.Interval == 0 && x.node == n && !x.Optional {
				return true
			}
		}
	}
	return false
}

// blockColocationDependents is pcmk__block_colocation_dependents: when no
// instance of a primary can start, what is colocated with it (INFINITY)
// cannot reach its role: its starts, or its promotes for a Promoted
// dependent role, are blocked "due to colocation with" the primary.
func (ws *workingSet) blockColocationDependents() bool {
	changed := false
outer:
	for _, prim := range ws.resources {
		starts := 0
		var blocker *Resource // the resource named in the reason
		for _, p := range prim.primitives() {
			for _, a := range p.actions {
				// An unassigned resource has no start to block on,
				// unless an ordering reaches it (a bundle's
				// containers, ordered after the bundle's start).
				if a.Task != "start" || a.Interval != 0 || (a.node == nil && !ws.ordered(a)) {
					continue
				}
				if a.Runnable {
					continue outer
				}
				if blocker == nil {
					blocker = p
				}
				starts++
			}
		}
		if starts == 0 {
			continue
		}
		for _, c := range prim.withThis {
			if c.primary != prim || c.score < cib.Infinity {
				continue
			}
			task := "start"
			if c.depRole == cib.RolePromoted {
				task = "promote"
			}
			dep := c.dependent
			members := dep.primitives()
			if dep.bundle != nil {
				members = dep.bundlePrimitives()
			}
			for _, p := range append([]*Resource{dep}, members...) {
				for _, a := range p.actions {
					if a.Task == task && a.Interval == 0 && a.Runnable {
						a.Runnable = false
						a.Reason = "colocation with " + blocker.ID
						changed = true
					}
				}
			}
		}
	}
	return changed
}

// doneTask maps a clone's completion pseudo-action (running, stopped,
// promoted, demoted) to the task it completes; other tasks are unchanged.
func doneTask(task string) string {
	switch task {
	case "running":
		return "start"
	case "stopped":
		return "stop"
	case "promoted":
		return "promote"
	case "demoted":
		return "demote"
	}
	return task
}

// guestActionRunnable is update_resource_action_runnable for an action
// that requires nothing (a stop, a demote) on a guest node: it cannot
// complete while the guest's host is down and cannot be fenced.
func (ws *workingSet) guestActionRunnable(n *Node) bool {
	return !n.isGuest() || ws.canFenceGuest(n)
}

// startNodeRunnable: a start can run on an available node, or on a guest
// node the graph assumes its connection will bring up
// (update_resource_action_runnable: only a guest that is down and needs
// a reset is ruled out).
func (ws *workingSet) startNodeRunnable(n *Node) bool {
	if n.isGuest() {
		return n.Online || !n.requiresReset
	}
	return n.available()
}

// requiresNothing: the resource's starts need neither fencing nor quorum
// (unpack_requires: requires=nothing, or by default without fencing when
// no-quorum-policy=ignore).
func (ws *workingSet) requiresNothing(r *Resource) bool {
	switch req := r.Meta["requires"]; {
	case req == "nothing":
		return true
	case req != "":
		return false
	}
	return !ws.opts.stonithEnabled && ws.opts.noQuorumPolicy == "ignore" && !isFenceDevice(r)
}

// ordered: some ordering has a as its then.
func (ws *workingSet) ordered(a *Action) bool {
	for _, e := range ws.edges {
		if e.Then == a.ID {
			return true
		}
	}
	return false
}
