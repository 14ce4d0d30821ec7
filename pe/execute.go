package pe

import (
	"fmt"
	"strings"
)

// Execution is a simulated run of the transition graph, as crm_simulate -S
// shows it under "Executing Cluster Transition:".
type Execution struct {
	// Executed holds the graph's actions in the order they ran.
	Executed []*Action
	// Stalled holds graph actions that never became ready: their inputs
	// form a loop. Pacemaker's executor would report the transition as
	// terminated; the controller must re-plan.
	Stalled []*Action
}

// inGraph reports whether a belongs to the transition graph: Pacemaker
// graphs the required, runnable actions; optional ones exist only to
// carry orderings and unrunnable ones cannot happen.
func inGraph(a *Action) bool { return a.Runnable && !a.Optional }

// Execute runs the graph as Pacemaker's executor does when every action
// succeeds at once: passes over the synapses in graph order, each firing
// every action whose inputs are all confirmed. A simulated action is
// confirmed the moment it fires, so a later synapse whose last input fired
// earlier in the same pass fires in that pass too. Resource actions come
// before node actions in graph order, as pcmk__create_graph adds them.
func (r *Result) Execute() Execution {
	var order []*Action
	for _, a := range r.Actions {
		if inGraph(a) && a.Resource != "" {
			order = append(order, a)
		}
	}
	for _, a := range r.Actions {
		if inGraph(a) && a.Resource == "" {
			order = append(order, a)
		}
	}
	byID := make(map[int]*Action, len(order))
	for _, a := range order {
		byID[a.ID] = a
	}
	type pair struct{ first, then int }
	seen := map[pair]bool{}
	waiting := map[int]int{} // unconfirmed inputs per action
	dependents := map[int][]int{}
	for _, e := range r.Edges {
		p := pair{e.First, e.Then}
		if e.First == e.Then || seen[p] || byID[e.First] == nil || byID[e.Then] == nil {
			continue
		}
		seen[p] = true
		waiting[e.Then]++
		dependents[e.First] = append(dependents[e.First], e.Then)
	}
	var ex Execution
	done := make(map[int]bool, len(order))
	for fired := true; fired && len(ex.Executed) < len(order); {
		fired = false
		for _, a := range order {
			if done[a.ID] || waiting[a.ID] > 0 {
				continue
			}
			done[a.ID], fired = true, true
			ex.Executed = append(ex.Executed, a)
			for _, d := range dependents[a.ID] {
				waiting[d]--
			}
		}
	}
	for _, a := range order {
		if !done[a.ID] {
			ex.Stalled = append(ex.Stalled, a)
		}
	}
	return ex
}

// graphNames gives each resource action the id the transition graph
// names its resource by (add_resource_details), which is what
// crm_simulate prints: an orphaned clone instance goes by the name its
// history knows it by; an anonymous clone's instance by its configured
// id, if some instance's history knows that name (pe_find_resource finds
// renamed resources), else by its history name or instance id; anything
// else by its id.
func (ws *workingSet) graphNames() {
	known := map[string]bool{}
	var all []*Resource
	for _, r := range append(ws.topLevel(), ws.orphanList...) {
		all = append(all, r.primitives()...)
	}
	for _, p := range all {
		if p.cloneName != "" {
			known[p.cloneName] = true
		}
	}
	for _, a := range ws.actions {
		p := a.rsc
		if p == nil || p.Prim == nil || a.Pseudo {
			continue
		}
		cl := p.cloneOf()
		switch {
		case cl == nil || p.baseID == "":
		case p.Orphan && p.cloneName != "":
			a.printName = p.cloneName
		case !cl.unique:
			switch {
			case known[p.baseID]:
				a.printName = p.baseID
			case p.cloneName != "":
				a.printName = p.cloneName
			}
		}
	}
}

// ExecutionLine is how crm_simulate prints one executed action.
func ExecutionLine(a *Action) string {
	rsc := a.Resource
	if a.printName != "" {
		rsc = a.printName
	}
	switch {
	case a.Resource == "" && a.Task == "stonith":
		return fmt.Sprintf("Fencing %s (reboot)", a.Node)
	case a.Resource == "":
		return fmt.Sprintf("Cluster action:  %s on %s", a.Task, a.Node)
	case a.Pseudo:
		return "Pseudo action:   " + a.Key()
	case a.Interval > 0:
		return fmt.Sprintf("Resource action: %-15s %s=%d on %s", rsc, a.Task, a.Interval.Milliseconds(), a.Node)
	}
	return fmt.Sprintf("Resource action: %-15s %s on %s", rsc, a.Task, a.Node)
}

// String is the "Executing Cluster Transition:" section.
func (ex Execution) String() string {
	var b strings.Builder
	b.WriteString("Executing Cluster Transition:\n")
	for _, a := range ex.Executed {
		b.WriteString("  * " + ExecutionLine(a) + "\n")
	}
	if len(ex.Stalled) > 0 {
		fmt.Fprintf(&b, "  * Transition stalled: %d actions wait on an ordering loop:", len(ex.Stalled))
		for _, a := range ex.Stalled {
			b.WriteString(" " + a.Key())
			if a.Node != "" {
				b.WriteString("@" + a.Node)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
