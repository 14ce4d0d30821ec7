package pe

import (
	"fmt"
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

	inherent    bool // required when created, not by propagation
	minRunnable int  // runnable only with this many runnable OrderOneOrMore predecessors
	rsc         *Resource
	node        *Node
}

// Key is the action key Pacemaker uses, e.g. rsc1_start_0.
func (a *Action) Key() string {
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
	// OrderAsymmetrical: a Mandatory ordering with symmetrical=false:
	// if First cannot run, neither can Then, unless Then is optional and
	// already done (handle_asymmetric_ordering).
	OrderAsymmetrical
)

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
		if n.Unclean && !ws.canFence(n) {
			continue
		}
		if n.Unclean {
			a := ws.newAction(nil, "stonith", n, false)
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
		if a.rsc == nil && a.Task == "stonith" && a.node == n {
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
	multiple := len(r.RunningOn) > 1
	if cur := r.current(); isTrue(r.Meta["allow-migrate"]) && r.Managed && !r.Failed && !multiple &&
		cur != nil && next != nil && cur != next && !cur.Unclean && cur.Online &&
		r.Role == cib.RoleStarted && r.NextRole == cib.RoleStarted {
		r.Migrating = true
	}
	for _, n := range r.RunningOn {
		need := next != n || r.Failed || multiple || r.NextRole == cib.RoleStopped
		stop := ws.newAction(r, "stop", n, !need)
		if !r.Managed {
			stop.Optional = true
			stop.Runnable = false
		}
		if r.AssignedTo == nil && need {
			stop.Reason = "node availability"
		}
		if n.Unclean {
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
		start := ws.newAction(r, "start", next, running && !r.Failed && !multiple)
		if why, changed := r.defChanged[next]; running && changed {
			// pcmk__check_action_config's force_restart, or
			// pcmk__rsc_agent_changed
			start.Optional = false
			start.Reason = why
		}
		if !r.Managed {
			start.Optional = true
		}
		// schedule_reload: not for unmanaged or failed resources, nor
		// where a restart is already required.
		r.reload = running && r.reloadOn[next] && r.Managed && !r.Failed && start.Optional
		if !next.available() || (!r.Managed && r.Failed) {
			start.Runnable = false
		}
		// Cloned fencing devices start without quorum (as crm_simulate
		// shows in the corpus; a lone fencing primitive does not).
		if !ws.opts.haveQuorum && !(r.cloneOf() != nil && r.Prim != nil && r.Prim.Class == "stonith") {
			switch ws.opts.noQuorumPolicy {
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
		ws.recurring(r, next, start)
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
}

// recurring creates the recurring monitors for the role the resource will
// have on its node (pcmk__create_recurring_actions).
func (ws *workingSet) recurring(r *Resource, n *Node, start *Action) {
	if r.Prim == nil || r.Prim.Operations == nil {
		return
	}
	for _, op := range r.Prim.Operations.Ops {
		if op.Name != "monitor" || op.Interval <= 0 {
			continue
		}
		if op.Role != cib.RoleNone && op.Role != cib.RoleStarted && op.Role != cib.RoleUnknown {
			continue
		}
		if en, ok := op.Extra["enabled"]; ok && !isTrue(en) {
			continue
		}
		m := ws.newAction(r, "monitor", n, start.Optional)
		m.Interval = op.Interval
		m.Runnable = start.Runnable
		ws.order(start, m, OrderOptional|OrderRunnableLeft)
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
	}
	for _, g := range groups {
		gs, grun, gstop, gstopped := g.find("start", nil), g.find("running", nil), g.find("stop", nil), g.find("stopped", nil)
		ordered := g.Meta["ordered"] != "false"
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
	for _, c := range ws.cib.Configuration.Constraints {
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

// unpackOrderSets handles ordered resource sets that are sequential and
// require all their members: members in order within a set, and every
// member of a set before every member of the next.
func (ws *workingSet) unpackOrderSets(o *cib.Order) {
	var prev []*Resource
	var prevAction string
	for _, set := range o.Sets {
		if set.RequireAll != nil && !*set.RequireAll {
			return
		}
		if o.RequireAll != nil && !*o.RequireAll {
			return
		}
		var members []*Resource
		for _, id := range set.Resources {
			r := ws.byID[id]
			if r == nil || r.Parent != nil {
				return
			}
			members = append(members, r)
		}
		action := set.Action
		kind := set.Kind
		if kind == "" {
			kind = o.Kind
		}
		score := set.Score
		if score == nil {
			score = o.Score
		}
		sequential := set.Sequential == nil || *set.Sequential
		if sequential {
			for i := 1; i < len(members); i++ {
				ws.orderPair(o, members[i-1], members[i], action, action, kind, score)
			}
		}
		for _, p := range prev {
			for _, m := range members {
				ws.orderPair(o, p, m, prevAction, action, o.Kind, o.Score)
			}
		}
		if sequential && len(members) > 0 {
			prev = members[len(members)-1:]
		} else {
			prev = members
		}
		prevAction = action
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
			if e.Kind&OrderImpliesThen == 0 || first.Task != "start" || then.Task != "start" {
				continue
			}
			f, t := first.rsc, then.rsc
			if f == nil || t == nil || f == t || !t.Migrating || f.Migrating || f.isGroup() || t.isGroup() {
				continue
			}
			fcur := f.current()
			if fcur == nil || f.AssignedTo == nil || fcur == f.AssignedTo {
				continue
			}
			t.Migrating = false
			if st := t.find("stop", t.current()); st != nil && st.Reason == "" {
				st.Reason = reasonOf("unrunnable", f.find("stop", fcur))
			}
			changed = true
		}
	}
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
				}
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
				if then.Reason == "" && !then.inherent && first.rsc != nil && first.rsc != then.rsc && then.rsc != nil && then.rsc.Parent != first.rsc && first.rsc.Parent != then.rsc {
					then.Reason = reasonOf("required", first)
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
			if allowRunnable && kind&OrderAsymmetrical != 0 && !first.Runnable && then.Runnable && asymmetricApplies(then) {
				if then.Optional {
					then.Optional = false
					if then.Reason == "" && first.rsc != then.rsc {
						then.Reason = reasonOf("required", first)
					}
				}
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
			// An ordering whose then is a group's action updates each
			// member's action of that task too, in member order
			// (pcmk__group_update_ordered_actions); Pacemaker updates depth
			// first, so a member ordered after one just made required
			// takes that member as its reason (but one made unrunnable
			// takes the ordering's first): apply the requirements of the
			// member's own orderings after its siblings first.
			if then.Pseudo && then.rsc != nil && then.rsc.isGroup() && then.rsc.Children != nil {
				for _, m := range then.rsc.Children {
					for _, ma := range m.actions {
						if ma.Task != then.Task || ma.Interval != 0 {
							continue
						}
						for _, me := range into[ma.ID] {
							if f := ws.actions[me.First]; f.rsc != nil && f.rsc.Parent == then.rsc {
								step(f, ma, me.Kind&^OrderRunnableLeft)
							}
						}
						step(first, ma, e.Kind)
						break
					}
				}
			}
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
				task := doneTask(a.Task)
				found, anyRunnable := false, false
				for _, inst := range r.Children {
					for _, ia := range orderAction(inst, task, false) {
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
		for _, p := range prim.primitives() {
			for _, a := range p.actions {
				// An unassigned resource has no start to block on.
				if a.Task != "start" || a.Interval != 0 || a.node == nil {
					continue
				}
				if a.Runnable {
					continue outer
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
			for _, p := range append([]*Resource{c.dependent}, c.dependent.primitives()...) {
				for _, a := range p.actions {
					if a.Task == task && a.Interval == 0 && a.Runnable {
						a.Runnable = false
						a.Reason = "colocation with " + prim.ID
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
