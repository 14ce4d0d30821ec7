package pe

// Unfencing (pe_flag_enable_unfencing): when a fencing device provides
// unfencing, a node must be unfenced ("Fence (on)") before it probes or
// starts resources that require unfencing, or probes or starts such a
// device. A node already unfenced (#node-unfenced set and not "0") is
// only unfenced again when an unfencing device's definition changed there.

// enableUnfencing reports whether some fencing device has
// provides=unfencing (and fencing is enabled at all).
func (ws *workingSet) enableUnfencing() bool {
	if !ws.opts.stonithEnabled {
		return false
	}
	for _, p := range ws.allPrimitives() {
		if isFenceDevice(p) && p.Meta["provides"] == "unfencing" {
			return true
		}
	}
	return false
}

func isFenceDevice(p *Resource) bool { return p.Prim != nil && p.Prim.Class == "stonith" }

// needsUnfencing is pe_rsc_needs_unfencing, or a fencing device while
// unfencing is enabled (pcmk__order_vs_unfence): requires=unfencing, the
// default for other resources once a device provides unfencing.
func (ws *workingSet) needsUnfencing(p *Resource) bool {
	if isFenceDevice(p) {
		return true
	}
	req := p.Meta["requires"]
	return req == "unfencing" || req == ""
}

// nodeUnfenced is pcmk__node_unfenced.
func nodeUnfenced(n *Node) bool {
	v, ok := n.Attrs["#node-unfenced"]
	return ok && v != "0"
}

// unfenceOp is pe_fence_op(node, "on"): the node's unfencing action,
// created optional on first use.
func (ws *workingSet) unfenceOp(n *Node) *Action {
	for _, a := range ws.actions {
		if a.rsc == nil && a.Task == "stonith" && a.node == n && a.FenceOp == "on" {
			return a
		}
	}
	a := ws.newAction(nil, "stonith", n, true)
	a.FenceOp = "on"
	return a
}

// triggerUnfencing is trigger_unfencing for a node: its unfencing becomes
// required, for the first reason given, if the node can take it.
func (ws *workingSet) triggerUnfencing(n *Node, reason string) {
	if !n.Online || n.Unclean || n.Shutdown || !ws.canFence(n) {
		return
	}
	a := ws.unfenceOp(n)
	if a.Optional {
		a.Optional = false
		a.inherent = true
	}
	if a.Reason == "" {
		a.Reason = reason
	}
}

// scheduleUnfencing creates the unfencing actions in the order Pacemaker
// meets them, before node fencing: device definition changes
// (pcmk__rsc_agent_changed), then probes on each node
// (pcmk__schedule_probes), then starts (pcmk__order_vs_unfence).
func (ws *workingSet) scheduleUnfencing() {
	if !ws.enableUnfencing() {
		return
	}
	ws.unfencing = true
	ws.unfenceChangedDevices()
	for _, n := range ws.nodes {
		if !n.Online || n.Unclean || n.Pending {
			continue
		}
		for _, r := range ws.resources {
			for _, p := range ws.probedOn(r, n) {
				if ws.needsUnfencing(p) && !nodeUnfenced(n) {
					ws.triggerUnfencing(n, "required by "+p.ID+" monitor")
				}
			}
		}
	}
	for _, p := range ws.allPrimitives() {
		n := p.AssignedTo
		if n == nil || !ws.needsUnfencing(p) {
			continue
		}
		ws.unfenceOp(n)
		if !nodeUnfenced(n) {
			ws.triggerUnfencing(n, "required by "+p.ID+" start")
		}
	}
}

// unfenceChangedDevices unfences the nodes whose history shows a fencing
// device of another agent than configured ("Device definition changed").
func (ws *workingSet) unfenceChangedDevices() {
	for _, n := range ws.nodes {
		st := ws.states[n]
		if st == nil || st.LRM == nil {
			continue
		}
		for _, lr := range st.LRM.Resources {
			p := ws.byID[lr.ID]
			if p == nil || p.Prim == nil || !isFenceDevice(p) || p.Prim.Template != "" {
				continue
			}
			if p.Prim.Class != lr.Class || p.Prim.Provider != lr.Provider || p.Prim.Type != lr.Type {
				ws.triggerUnfencing(n, "Device definition changed")
			}
		}
	}
}

// orderAfterUnfencing orders each start of a resource needing unfencing
// after its node's unfencing, which, when required, requires the start
// (a running resource restarts).
func (ws *workingSet) orderAfterUnfencing() {
	if !ws.unfencing {
		return
	}
	for _, p := range ws.allPrimitives() {
		if !ws.needsUnfencing(p) || p.AssignedTo == nil {
			continue
		}
		if st := p.find("start", p.AssignedTo); st != nil {
			ws.order(ws.unfenceOp(p.AssignedTo), st, OrderImpliesThen)
		}
	}
}
