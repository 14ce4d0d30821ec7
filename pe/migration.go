package pe

import (
	"slices"
	"sort"

	"github.com/tachy-ha/tachy/cib"
)

// Live migration as actions (pcmk_sched_migration.c): a resource moving
// by live migration (Resource.Migrating) gets a migrate_to on its current
// node and a migrate_from on its new one, both carrying the
// migrate_source and migrate_target meta-attributes; its stop on the old
// node follows the migrate_from, and its start on the new node becomes a
// pseudo-action completing the migration. Orderings between other
// resources and the migrating one are duplicated for the migration
// actions (pcmk__order_migration_equivalents).

// createMigrations turns the stop and start of each migrating resource
// into a migration (pcmk__create_migration_actions). It runs after the
// orderings have settled which actions are required and runnable, and
// only for a migration whose stop and start are both required and
// runnable (what the summary shows as "Migrate"); the new orderings are
// optional ones that sequence actions without changing their flags.
func (ws *workingSet) createMigrations(all []*Resource) {
	var migrating []*Resource
	for _, top := range all {
		for _, r := range top.primitives() {
			if ws.createMigration(r) {
				migrating = append(migrating, r)
			}
		}
	}
	if len(migrating) == 0 {
		return
	}
	ws.orderMigrationEquivalents()
	// An optional ordering whose first is the stop of a migrating
	// resource is left out of the graph (should_add_input_to_graph:
	// "optional but stop in migration").
	all0 := ws.edges
	for {
		// Recomputed after each undo: an undone migration's stop keeps
		// its orderings.
		ws.edges = nil
		for _, e := range all0 {
			first := ws.actions[e.First]
			// (OrderPerNode is how this package reaches clone
			// instances, no ordering type of Pacemaker's.)
			if e.Kind&^OrderPerNode == OrderOptional && first.Task == "stop" && first.rsc != nil && first.rsc.migrateFrom != nil &&
				first.node == first.rsc.migrationSource {
				continue
			}
			ws.edges = append(ws.edges, e)
		}
		// A migration whose orderings make a loop (a case Pacemaker's
		// ordering logic rules out and this one does not know) would
		// stall the transition: the resource moves by stop and start
		// instead.
		undone := false
		for _, a := range (&Result{Actions: ws.actions, Edges: ws.edges}).Execute().Stalled {
			if r := a.rsc; r != nil && r.migrateFrom != nil {
				ws.undoMigration(r)
				undone = true
			}
		}
		if !undone {
			return
		}
	}
}

// undoMigration takes r's migration actions out of the graph: its stop
// and start run as for a move.
func (ws *workingSet) undoMigration(r *Resource) {
	for _, a := range []*Action{r.migrateTo, r.migrateFrom} {
		if a != nil {
			a.Optional, a.Runnable = true, false
		}
	}
	if start := r.find("start", r.AssignedTo); start != nil {
		start.Pseudo = false
	}
	r.Migrating = false
	r.migrateTo, r.migrateFrom = nil, nil
}

// createMigration creates r's migration actions; it reports whether r
// migrates.
func (ws *workingSet) createMigration(r *Resource) bool {
	if !r.Migrating || r.Prim == nil {
		return false
	}
	cur, next := r.current(), r.AssignedTo
	if cur == nil || next == nil || cur == next {
		return false
	}
	start, stop := r.find("start", next), r.find("stop", cur)
	if start == nil || stop == nil || !inGraph(start) || !inGraph(stop) {
		return false
	}
	meta := func() map[string]string {
		return map[string]string{"migrate_source": cur.Name, "migrate_target": next.Name}
	}
	var to *Action
	if r.partialTarget == nil {
		to = ws.newAction(r, "migrate_to", cur, false)
		to.Meta = meta()
		if r.remoteNode == nil {
			// A pending migrate_to is recorded, in case the source
			// leaves while it runs.
			to.Meta["record-pending"] = "true"
		}
	}
	from := ws.newAction(r, "migrate_from", next, false)
	from.Meta = meta()
	start.Pseudo = true
	r.migrateTo, r.migrateFrom, r.migrationSource = to, from, cur
	// Probes -> migrate_to -> migrate_from (a partial migration's
	// migrate_to is done: probes -> migrate_from).
	for _, a := range r.actions {
		if a.Probe || (a.Task == "monitor" && a.Interval == 0) {
			if to != nil {
				ws.order(a, to, OrderOptional)
			} else {
				ws.order(a, from, OrderOptional)
			}
		}
	}
	ws.order(to, from, OrderOptional)
	// migrate_from before the stop on the source and the (pseudo) start.
	ws.order(from, stop, OrderOptional)
	ws.order(from, start, OrderOptional)
	return true
}

// orderMigrationEquivalents is pcmk__order_migration_equivalents applied
// to the orderings between actions of unrelated resources at least one of
// which migrates: "A start then B start" also orders A's migrate_from
// before B's migrate_to when both migrate, and A's start before B's
// migrate_to when only B does; "A stop then B stop" orders A's stop
// before B's migrate_to (and migrate_from, for a partial migration) when
// only B migrates; "A promote then B start" and "A demote then B stop"
// order A's action before B's migrate_to (and migrate_from after a
// demote, for a partial migration). The orderings Pacemaker leaves out of
// the graph (pe_order_apply_first_non_migratable when A migrates) are not
// made.
func (ws *workingSet) orderMigrationEquivalents() {
	type pair struct{ first, then int }
	seen := map[pair]bool{}
	add := func(first, then *Action) {
		if first == nil || then == nil {
			return
		}
		p := pair{first.ID, then.ID}
		if seen[p] {
			return
		}
		seen[p] = true
		ws.order(first, then, OrderOptional)
	}
	n := len(ws.edges)
	for i := 0; i < n; i++ {
		e := ws.edges[i]
		first, then := ws.actions[e.First], ws.actions[e.Then]
		a, b := first.rsc, then.rsc
		if a == nil || b == nil || a == b || related(a, b) {
			continue
		}
		if a.migrateFrom == nil && b.migrateFrom == nil {
			continue
		}
		ft, tt := doneTask(first.Task), then.Task
		switch {
		case ft == "start" && tt == "start":
			if a.migrateFrom != nil && b.migrateFrom != nil {
				add(a.migrateFrom, b.migrateTo)
			} else if b.migrateFrom != nil {
				add(first, b.migrateTo)
			}
		case ft == "stop" && tt == "stop":
			if b.migrateFrom != nil && a.migrateFrom == nil {
				add(first, b.migrateTo)
				if b.partialTarget != nil {
					add(first, b.migrateFrom)
				}
			}
		case ft == "promote" && tt == "start":
			if b.migrateFrom != nil {
				add(first, b.migrateTo)
			}
		case ft == "demote" && tt == "stop":
			if b.migrateFrom != nil {
				add(first, b.migrateTo)
				if b.partialTarget != nil {
					add(first, b.migrateFrom)
				}
			}
		}
	}
}

// related: one resource is an ancestor of the other (is_parent).
func related(a, b *Resource) bool {
	for p := a.Parent; p != nil; p = p.Parent {
		if p == b {
			return true
		}
	}
	for p := b.Parent; p != nil; p = p.Parent {
		if p == a {
			return true
		}
	}
	return false
}

// unpackPartialMigrations finds migrations interrupted after their
// migrate_to (unpack_migrate_to_success): a primitive whose last action on
// its one node S is a successful migrate_to towards an online node T,
// where T shows nothing since (no migrate_from, no start, no newer
// result), is active on both S and T, as Pacemaker counts it: the
// migration continues (migrate_from on T, stop on S) if the resource is
// still to go to T, else it is stopped on both and started where it goes.
func (ws *workingSet) unpackPartialMigrations() {
	for _, p := range ws.allPrimitives() {
		if p.Prim == nil || p.cloneOf() != nil || len(p.RunningOn) != 1 {
			continue
		}
		src := p.RunningOn[0]
		mt := lastAction(ws.history(p, src))
		if mt == nil || mt.Operation != "migrate_to" || mt.RCCode != 0 || mt.OpStatus != 0 {
			continue
		}
		tgt := ws.nodeByName[mt.MigrateTarget]
		if tgt == nil || tgt == src || !tgt.Online || tgt.Unclean {
			continue
		}
		// A migrate_from there (even failed, in the last failure's
		// entry) since the migrate_to ends it one way or the other.
		th := ws.history(p, tgt)
		if slices.ContainsFunc(th, func(o *cib.LRMRscOp) bool { return o.Operation == "migrate_from" && !newerThan(mt, o) }) {
			continue
		}
		if last := lastAction(th); last != nil {
			probedStopped := last.Operation == "monitor" && last.Interval == 0 && last.RCCode == 7
			stopped := last.Operation == "stop" && last.RCCode == 0 && last.OpStatus == 0
			if !(probedStopped || stopped) || newerThan(last, mt) {
				continue
			}
		}
		// Pacemaker adds the target while replaying the source's
		// history, before the source itself.
		p.RunningOn = []*Node{tgt, src}
		p.partialTarget, p.partialSource = tgt, src
	}
}

// history is the recorded operations of p on n, in call-id order.
func (ws *workingSet) history(p *Resource, n *Node) []*cib.LRMRscOp {
	st := ws.states[n]
	if st == nil || st.LRM == nil {
		return nil
	}
	for _, lr := range st.LRM.Resources {
		if lr.ID == p.ID {
			ops := slices.Clone(lr.Ops)
			sort.SliceStable(ops, func(i, j int) bool { return cmpOpByCallID(ops[i], ops[j]) < 0 })
			return ops
		}
	}
	return nil
}

// lastAction is the latest completed operation that is not a recurring
// monitor or a notification.
func lastAction(ops []*cib.LRMRscOp) *cib.LRMRscOp {
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if op.Interval > 0 || op.Operation == "notify" || op.OpStatus == -1 {
			continue
		}
		return op
	}
	return nil
}

// newerThan: a's result is known to be more recent than b's.
func newerThan(a, b *cib.LRMRscOp) bool {
	return a.LastRCChange != nil && b.LastRCChange != nil && *a.LastRCChange > *b.LastRCChange
}
