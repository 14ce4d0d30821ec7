package pe

// Probes ask a node what runs there before anything is started on it:
// a monitor with interval 0 for each resource its history does not know,
// ordered before the resource's start (pcmk__schedule_probes). Where they
// would run also matters for unfencing, and a probe that cannot run holds
// back the start of a resource active nowhere.

// probedOn lists the primitives of r that would be probed on n
// (pcmk__probe_rsc_on_node): those with no history there. An anonymous
// clone probes one instance: the one active or to be started there, else
// its first.
func (ws *workingSet) probedOn(r *Resource, n *Node) []*Resource {
	if r.isClone() {
		if len(r.Children) == 0 {
			return nil
		}
		if r.unique {
			var out []*Resource
			for _, c := range r.Children {
				out = append(out, ws.probedOn(c, n)...)
			}
			return out
		}
		pick := r.Children[0]
		for _, c := range r.Children {
			if instanceOn(c, n) {
				pick = c
				break
			}
		}
		return ws.probedOn(pick, n)
	}
	if r.isGroup() {
		var out []*Resource
		for _, c := range r.Children {
			out = append(out, ws.probedOn(c, n)...)
		}
		return out
	}
	if r.Orphan || knownOn(r, n) || !ws.probeAllowed(r, n) {
		return nil
	}
	return []*Resource{r}
}

// instanceOn: a clone instance is active or assigned on n.
func instanceOn(inst *Resource, n *Node) bool {
	for _, p := range inst.primitives() {
		if p.AssignedTo == n {
			return true
		}
		for _, m := range p.RunningOn {
			if m == n {
				return true
			}
		}
	}
	return false
}

// knownOn is rsc_is_known_on: history on n of the primitive, or of any
// instance of its anonymous clone (primitives directly in the clone only).
func knownOn(p *Resource, n *Node) bool {
	if p.knownOn[n] {
		return true
	}
	if cl := p.Parent; cl != nil && cl.isClone() && !cl.unique {
		for _, inst := range cl.Children {
			if inst.knownOn[n] {
				return true
			}
		}
	}
	return false
}

// blockStartsBehindProbes: a probe on a pending node cannot run, and a
// resource active nowhere cannot start before it has been probed
// everywhere (the probe's ordering before the start is runnable-left when
// the probe is unrunnable and the resource is not running).
func (ws *workingSet) blockStartsBehindProbes() {
	for _, n := range ws.nodes {
		if !n.Online || n.Unclean || !n.Pending {
			continue
		}
		for _, r := range ws.resources {
			for _, p := range ws.probedOn(r, n) {
				if len(p.RunningOn) > 0 {
					continue
				}
				top := p.top()
				var starts []*Action
				if top.isGroup() || top.isClone() {
					starts = append(starts, top.find("start", nil))
				} else {
					starts = orderAction(top, "start", false)
				}
				for _, st := range starts {
					if st != nil {
						st.Runnable = false
					}
				}
			}
		}
	}
}

// probeAllowed is pcmk__probe_rsc_on_node's view of remote nodes: they
// run no fencing devices, connections, or (guests) the containers of
// guest nodes; a bundle's guest node runs only its replica's instance
// (its discovery mode is never, the instance's exclusive).
func (ws *workingSet) probeAllowed(p *Resource, n *Node) bool {
	if !n.isRemote() {
		return true
	}
	if isFenceDevice(p) || p.remoteNode != nil {
		return false
	}
	if n.isGuest() && len(ws.fillers(p)) > 0 {
		for _, f := range ws.fillers(p) {
			if f.remoteNode != nil {
				return false
			}
		}
	}
	if conn := n.remoteRsc; conn != nil && conn.bundleOf != nil {
		return p.bundleNode == n
	}
	return true
}

// createProbes schedules the probes on every node that can run them
// (online, clean, not joining, not leaving).
func (ws *workingSet) createProbes() {
	for _, n := range ws.nodes {
		if !n.Online || n.Unclean || n.Pending || n.Shutdown {
			continue
		}
		for _, r := range ws.resources {
			for _, p := range ws.probedOn(r, n) {
				probe := ws.newAction(p, "monitor", n, false)
				probe.Probe = true
				for _, st := range orderAction(p, "start", false) {
					ws.order(probe, st, OrderOptional)
				}
			}
		}
	}
}
