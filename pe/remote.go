package pe

import (
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// Pacemaker Remote nodes and guest nodes. A remote node is named after
// its connection resource (ocf:pacemaker:remote); a guest node is named by
// the remote-node meta-attribute of a primitive (its container), whose
// implicit connection resource the scheduler adds. Both are nodes like
// any other once their connection is up.

// isRemoteAgent is xml_contains_remote_node: an ocf:pacemaker:remote
// primitive.
func isRemoteAgent(p *cib.Primitive) bool {
	return p != nil && p.Class == "ocf" && p.Provider == "pacemaker" && p.Type == "remote"
}

// isRemote: a remote or guest node (pe__is_guest_or_remote_node).
func (n *Node) isRemote() bool { return n.remoteKind }

// isGuest: a guest node, whose connection has a container.
func (n *Node) isGuest() bool { return n.remoteRsc != nil && n.remoteRsc.container != nil }

// newRemoteNode is pe_create_node for a node of type remote.
func (ws *workingSet) newRemoteNode(id string) *Node {
	n := &Node{ID: id, Name: id, index: len(ws.nodes), remoteKind: true, Attrs: map[string]string{}, capacity: map[string]int{}}
	n.Attrs["#uname"] = id
	n.Attrs["#id"] = id
	n.Attrs["#kind"] = "remote"
	n.Attrs["#is_dc"] = "false"
	ws.nodes = append(ws.nodes, n)
	ws.nodeByName[id] = n
	ws.nodeByID[id] = n
	return n
}

// createRemoteNodes is unpack_remote_nodes: before resources are
// unpacked (clone-max counts these nodes), a node for each remote
// connection and each guest named by a top-level primitive or a group
// member.
func (ws *workingSet) createRemoteNodes() {
	add := func(name string) {
		if name != "" && ws.nodeByName[name] == nil {
			ws.newRemoteNode(name)
		}
	}
	guestName := func(p *cib.Primitive) string {
		if isRemoteAgent(p) {
			return ""
		}
		return nvsets(p.MetaAttributes, nil, ws.baseCtx())["remote-node"]
	}
	for _, r := range ws.cib.Configuration.Resources {
		switch r := r.(type) {
		case *cib.Primitive:
			if isRemoteAgent(r) {
				add(r.ID)
			} else {
				add(guestName(r))
			}
		case *cib.Group:
			for _, c := range r.Children {
				add(guestName(c))
			}
		}
	}
}

// linkRemoteNodes is link_rsc2remotenode, once resources are unpacked:
// each guest gets its connection resource (expand_remote_rsc_meta),
// appended to the resources, and each connection its node.
func (ws *workingSet) linkRemoteNodes() {
	var conns []*Resource
	var guests []*Resource
	for _, r := range ws.cib.Configuration.Resources {
		switch r := r.(type) {
		case *cib.Primitive:
			if rsc := ws.byID[r.ID]; rsc != nil && isRemoteAgent(r) {
				conns = append(conns, rsc)
			} else if rsc != nil && rsc.Meta["remote-node"] != "" {
				guests = append(guests, rsc)
			}
		case *cib.Group:
			for _, c := range r.Children {
				if rsc := ws.byID[c.ID]; rsc != nil && rsc.Meta["remote-node"] != "" && !isRemoteAgent(c) {
					guests = append(guests, rsc)
				}
			}
		}
	}
	for _, c := range guests {
		if conn := ws.guestConnection(c); conn != nil {
			conns = append(conns, conn)
		}
	}
	for _, conn := range conns {
		n := ws.nodeByName[conn.ID]
		if n == nil {
			n = ws.newRemoteNode(conn.ID)
		}
		n.remoteKind = true
		n.remoteRsc = conn
		conn.remoteNode = n
		if _, ok := conn.Meta["allow-migrate"]; !ok {
			// Connections float without stopping what runs behind them.
			conn.Meta["allow-migrate"] = "true"
		}
		if conn.container == nil {
			// Startup fencing, as for cluster nodes.
			n.unseen = true
			if ws.opts.stonithEnabled && ws.opts.startupFencing {
				n.Unclean = true
			}
		} else {
			n.Attrs["#kind"] = "container"
		}
	}
}

// guestConnection is expand_remote_rsc_meta: the implicit connection of a
// guest node, an internal ocf:pacemaker:remote primitive named after the
// guest, monitored every 30s.
func (ws *workingSet) guestConnection(container *Resource) *Resource {
	name := container.Meta["remote-node"]
	if ws.byID[name] != nil || name == container.ID {
		return nil
	}
	meta := &cib.NVSet{ID: name + "-meta_attributes"}
	add := func(k, v string) {
		meta.Pairs = append(meta.Pairs, &cib.NVPair{Name: k, Value: v, HasValue: true})
	}
	add("internal", "true")
	add("container", container.ID)
	if v, ok := container.Meta["remote-allow-migrate"]; ok {
		add("allow-migrate", v)
	}
	if v, ok := container.Meta["is-managed"]; ok {
		add("is-managed", v)
	}
	ops := &cib.Operations{Ops: []*cib.Op{{ID: name + "-monitor-interval-30s", Name: "monitor", Interval: 30 * time.Second, Timeout: "30s"}}}
	p := &cib.Primitive{ID: name, Class: "ocf", Provider: "pacemaker", Type: "remote", MetaAttributes: []*cib.NVSet{meta}, Operations: ops}
	defaults := nvsets(ws.cib.Configuration.RscDefaults, nil, ws.baseCtx())
	conn := ws.newPrimitive(p, name, nil, defaults, nil)
	conn.container = container
	conn.internal = true
	ws.resources = append(ws.resources, conn)
	return conn
}

// historyReady is unpack_node_history's test of whether a node's history
// can be unpacked in this pass: a guest's once its connection and
// container are known to be up, a remote node's once its connection is,
// an offline cluster node's only with fencing (else in the last pass).
func (ws *workingSet) historyReady(n *Node, fence bool) bool {
	switch {
	case fence:
		return true
	case n.isGuest():
		conn := n.remoteRsc
		return conn.Role == cib.RoleStarted && conn.container.Role == cib.RoleStarted
	case n.isRemote():
		return n.remoteRsc != nil && n.remoteRsc.Role == cib.RoleStarted
	case statusOfflineSkip && !ws.opts.stonithEnabled && !n.Online:
		return false
	}
	return true
}

func stoppedRole(r cib.Role) bool {
	return r == cib.RoleStopped || r == cib.RoleUnknown || r == cib.RoleNone
}

// determineRemoteOnline is determine_remote_online_status.
func (ws *workingSet) determineRemoteOnline(n *Node) {
	conn := n.remoteRsc
	if conn == nil {
		n.Online = false
		return
	}
	c := conn.container
	var host *Node
	if c != nil && len(conn.RunningOn) == 1 {
		host = conn.RunningOn[0]
	}
	if conn.Role == cib.RoleStarted {
		n.Online = true
		if conn.TargetRole == cib.RoleStopped {
			n.Shutdown = true
		}
	}
	switch {
	case c != nil && c.Failed:
		n.Online = false
		n.requiresReset = true
	case conn.Failed:
		n.Online = false
	case stoppedRole(conn.Role) || (c != nil && stoppedRole(c.Role)):
		n.Online = false
		n.requiresReset = false
	case host != nil && !host.Online && host.Unclean:
		n.Online = false
		n.requiresReset = true
	}
}

// remoteAttrs is unpack_handle_remote_attrs: a remote node whose history
// is unpacked has been seen; its transient attributes apply.
func (ws *workingSet) remoteAttrs(n *Node, st *cib.NodeState) {
	if !n.requiresReset {
		n.Unclean = false
		n.unseen = false
	}
	if st == nil {
		return
	}
	for _, s := range st.Transient {
		nvsets([]*cib.NVSet{s}, n.Attrs, ws.baseCtx())
	}
	if sd := n.Attrs["shutdown"]; sd != "" && sd != "0" {
		n.Shutdown = true
	}
	if isTrue(n.Attrs["standby"]) {
		n.Standby = true
	}
	if isTrue(n.Attrs["maintenance"]) || (n.remoteRsc != nil && !n.remoteRsc.Managed) {
		n.Maintenance = true
	}
}

// finishRemoteStatus is the end of unpack_status: a remote node shutting
// down stops its connection; nodes without history get their status.
func (ws *workingSet) finishRemoteStatus() {
	for _, n := range ws.nodes {
		if !n.isRemote() {
			continue
		}
		if n.Shutdown && n.remoteRsc != nil {
			n.remoteRsc.TargetRole = cib.RoleStopped
		}
		if !n.unpacked {
			ws.determineRemoteOnline(n)
		}
	}
}

// fenceRemote is pe_fence_node for a remote or guest node. A guest is
// "fenced" by recovering its container; a remote node by fencing.
func (ws *workingSet) fenceRemote(n *Node, reason string) {
	conn := n.remoteRsc
	if n.isGuest() {
		c := conn.container
		if !c.Failed && c.Managed {
			n.requiresReset = true
			c.Failed = true
		}
		return
	}
	if conn == nil || conn.Managed {
		n.requiresReset = true
	}
	if n.fenceReason == "" {
		n.fenceReason = reason
		// pe_fence_op creates the fencing now: the summary lists it
		// by creation.
		ws.remoteFenced = append(ws.remoteFenced, n)
	}
	n.Unclean = true
}

// avoidRemoteNodes is rsc_avoids_remote_nodes for connections, fencing
// devices and guests' containers: they never run on remote nodes.
func (ws *workingSet) avoidRemoteNodes() {
	ws.pinFillers()
	for _, p := range ws.allPrimitives() {
		avoid := p.remoteNode != nil || (p.Prim != nil && p.Prim.Class == "stonith")
		if p.container != nil && p.remoteNode != nil && p.bundleOf == nil {
			// Bundles may run on remote nodes (pe_rsc_allow_remote_remotes).
			ws.avoidRemote(p.container)
		}
		if avoid {
			ws.avoidRemote(p)
		}
	}
}

func (ws *workingSet) avoidRemote(p *Resource) {
	w := ws.weightsOf(p)
	for n := range w {
		if n.remoteRsc != nil {
			w[n] = -inf
		}
	}
}

// setupContainers is setup_container: a primitive whose container
// meta-attribute names another resource is that container's filler.
func (ws *workingSet) setupContainers() {
	for _, p := range ws.allPrimitives() {
		id := p.Meta["container"]
		if p.container != nil || id == "" || id == p.ID {
			continue
		}
		p.container = ws.byID[id]
	}
}

// containerColocations: a filler (or a guest's connection) runs with its
// container ("resource-with-container"); a filler whose container is a
// remote connection or a guest's container runs on that node instead.
func (ws *workingSet) containerColocations() {
	for _, r := range ws.allPrimitives() {
		if r.container != nil && ws.fillerNode(r) == nil {
			score, influence := cib.Infinity, ""
			if r.bundleOf != nil {
				// Highly preferred but not essential
				// (pe_rsc_allow_remote_remotes); the connection
				// does not move an active container.
				score, influence = 10000, "false"
			}
			ws.addColocation("resource-with-container", r, r.container, score, "", "", "", influence)
		}
	}
}

// fillerNode is the connection of the remote node a filler must run on
// (native_internal_constraints): its container's own node when the
// container is a connection, or the guest node it contains.
func (ws *workingSet) fillerNode(r *Resource) *Resource {
	c := r.container
	if c == nil || r.remoteNode != nil {
		return nil
	}
	if c.remoteNode != nil {
		return c
	}
	for _, conn := range ws.remoteConnections() {
		if conn.container == c {
			return conn
		}
	}
	return nil
}

// pinFillers keeps fillers of remote containers on their remote node.
func (ws *workingSet) pinFillers() {
	for _, r := range ws.allPrimitives() {
		conn := ws.fillerNode(r)
		if conn == nil {
			continue
		}
		w := ws.weightsOf(r)
		for n := range w {
			if n.remoteRsc != conn {
				w[n] = -inf
			}
		}
	}
}

// restartContainer is on-fail=restart-container: the container stops
// where the failure happened (and starts again if it stays).
func (ws *workingSet) restartContainer(rsc *Resource, n *Node) {
	c := rsc.container
	if c == nil {
		return
	}
	if c.forceStop == nil {
		c.forceStop = map[*Node]bool{}
	}
	c.forceStop[n] = true
}

// remoteConnections lists the connection resources (is_remote_node).
func (ws *workingSet) remoteConnections() []*Resource {
	var out []*Resource
	for _, p := range ws.allPrimitives() {
		if p.remoteNode != nil {
			out = append(out, p)
		}
	}
	return out
}

// connectionAssigned is the end of pcmk__native_allocate for a
// connection: its node is online if the connection will run (and no
// longer unclean when unseen), else shutting down.
func (ws *workingSet) connectionAssigned(conn *Resource) {
	n := conn.remoteNode
	if conn.AssignedTo != nil && conn.NextRole != cib.RoleStopped {
		n.Online = true
		if n.unseen {
			n.Unclean = false
		}
		return
	}
	n.Shutdown = true
}

// remoteState is get_remote_node_state.
type remoteState int

const (
	remoteUnknown remoteState = iota
	remoteAlive
	remoteResting
	remoteFailed
	remoteStopped
)

func (ws *workingSet) remoteState(n *Node) remoteState {
	conn := n.remoteRsc
	cur := conn.current()
	if conn.NextRole == cib.RoleStopped || conn.AssignedTo == nil {
		if cur != nil && cur.Unclean {
			return remoteFailed
		}
		if !conn.Failed {
			return remoteStopped
		}
		if conn.NextRole == cib.RoleStopped && reconnectInterval(conn) > 0 && n.wasFenced && !(n.Attrs["shutdown"] != "" && n.Attrs["shutdown"] != "0") {
			return remoteUnknown
		}
		return remoteFailed
	}
	switch {
	case cur == nil:
		return remoteUnknown
	case cur.Unclean || !cur.Online:
		return remoteResting
	case len(conn.RunningOn) > 1:
		return remoteResting
	}
	return remoteAlive
}

// orderRemoteActions is pcmk__order_remote_connection_actions: actions on
// a remote or guest node happen while its connection is up.
func (ws *workingSet) orderRemoteActions() {
	// Newest first, as Pacemaker's action list is kept.
	actions := append([]*Action(nil), ws.actions...)
	for i := len(actions) - 1; i >= 0; i-- {
		a := actions[i]
		if a.rsc == nil || a.node == nil || !a.node.isRemote() || a.Pseudo || a.node.remoteRsc == nil {
			continue
		}
		conn := a.node.remoteRsc
		if a.Task == "start" {
			// A resource moving to a remote node leaves its old node
			// only once the connection is up.
			for _, x := range a.rsc.actions {
				if x.Task == "stop" && x.Interval == 0 && x.node != a.node {
					ws.order(conn.find("start", nil), x, OrderOptional)
				}
			}
		}
		if conn.container != nil {
			ws.orderGuestAction(a, conn)
		} else {
			ws.orderRemoteAction(a, conn)
		}
	}
	// Probes were created before any other action: visited last.
	ws.fenceUnprobeable()
}

// startThen is order_start_then_action; thenStop order_action_then_stop.
func (ws *workingSet) startThen(conn *Resource, a *Action, extra EdgeKind) {
	ws.order(conn.startAction(), a, OrderOptional|OrderRunnableLeft|extra)
}

func (ws *workingSet) thenStop(a *Action, conn *Resource, extra EdgeKind) {
	for _, st := range conn.actions {
		if st.Task == "stop" && st.Interval == 0 {
			ws.order(a, st, OrderOptional|extra)
		}
	}
}

// startAction is the resource's start, wherever it is.
func (r *Resource) startAction() *Action {
	for _, a := range r.actions {
		if a.Task == "start" && a.Interval == 0 {
			return a
		}
	}
	return nil
}

func remoteTask(a *Action) string {
	switch a.Task {
	case "migrate_to", "migrate_from":
		return "stop"
	}
	return a.Task
}

// orderRemoteAction is apply_remote_ordering.
func (ws *workingSet) orderRemoteAction(a *Action, conn *Resource) {
	state := ws.remoteState(a.node)
	switch remoteTask(a) {
	case "start", "promote":
		var extra EdgeKind
		if state == remoteFailed {
			extra = OrderImpliesThen
		}
		ws.startThen(conn, a, extra)
	case "stop":
		switch {
		case state == remoteAlive:
			ws.thenStop(a, conn, OrderImpliesFirst)
		case state == remoteFailed:
			ws.fenceRemote(a.node, "resources are active but connection is unrecoverable")
		case conn.NextRole == cib.RoleStopped:
			// Not coming back in this transition: stop first.
			ws.thenStop(a, conn, OrderImpliesFirst)
		default:
			ws.startThen(conn, a, 0)
		}
	case "demote":
		if state == remoteResting || state == remoteUnknown {
			ws.startThen(conn, a, 0)
		}
	default:
		if a.Interval > 0 {
			ws.startThen(conn, a, OrderImpliesThen)
			return
		}
		if a.Task == "monitor" && state == remoteFailed {
			ws.fenceRemote(a.node, "resources are in unknown state and connection is unrecoverable")
		}
		if conn.current() != nil && state == remoteStopped {
			ws.thenStop(a, conn, OrderRunnableLeft)
		} else {
			ws.startThen(conn, a, 0)
		}
	}
}

// orderGuestAction is apply_container_ordering.
func (ws *workingSet) orderGuestAction(a *Action, conn *Resource) {
	c := conn.container
	if c.Failed {
		ws.fenceRemote(a.node, "container failed")
	}
	switch remoteTask(a) {
	case "start", "promote":
		// Pacemaker meets the later ordering first (actions_before is
		// prepended): an unrunnable connection is the reason given.
		ws.startThen(conn, a, 0)
		ws.startThen(c, a, OrderImpliesThen)
	case "stop", "demote":
		if !c.Failed {
			ws.thenStop(a, conn, 0)
		}
	default:
		if a.Interval > 0 {
			ws.startThen(conn, a, OrderImpliesThen)
		} else {
			ws.startThen(conn, a, 0)
		}
	}
}

// containerOrderings: a filler (or a guest's connection) starts after its
// container and stops before it (native_internal_constraints).
func (ws *workingSet) containerOrderings() {
	for _, r := range ws.allPrimitives() {
		if r.container == nil || ws.fillerNode(r) != nil {
			continue
		}
		for _, cs := range orderAction(r.container, "start", false) {
			for _, s := range orderAction(r, "start", false) {
				ws.order(cs, s, OrderImpliesThen|OrderRunnableLeft)
			}
		}
		for _, st := range orderAction(r, "stop", false) {
			for _, cs := range orderAction(r.container, "stop", false) {
				ws.order(st, cs, OrderImpliesFirst)
			}
		}
	}
}

// fenceRemoteNodes schedules the fencing of remote nodes found unclean
// (schedule_fencing_and_shutdowns, after the remote orderings) and of
// guests whose container is recovered (pcmk__fence_guest); the stops on
// them are implied by it.
func (ws *workingSet) fenceRemoteNodes() {
	haveManaged := false
	for _, p := range ws.allPrimitives() {
		if p.Managed {
			haveManaged = true
		}
	}
	nodes := append(append([]*Node(nil), ws.remoteFenced...), ws.nodes...)
	for _, n := range nodes {
		if !n.isRemote() || ws.fencingOf(n) != nil || !haveManaged {
			continue
		}
		if n.isGuest() {
			if n.requiresReset && ws.canFenceGuest(n) {
				ws.fenceGuest(n)
			}
			continue
		}
		if !n.Unclean || !ws.opts.stonithEnabled || !ws.opts.haveStonithRsc || !ws.canFence(n) {
			continue
		}
		f := ws.newAction(nil, "stonith", n, false)
		f.FenceOp = "reboot"
		f.Reason = n.fenceReason
		if f.Reason == "" {
			f.Reason = "node is unclean"
		}
		ws.implyStops(n, f)
	}
}

// canFenceGuest is pe_can_fence for a guest: its container's hosts are
// online or can be fenced.
func (ws *workingSet) canFenceGuest(n *Node) bool {
	for _, h := range n.remoteRsc.container.RunningOn {
		if !h.Online && !ws.canFence(h) {
			return false
		}
	}
	return true
}

// fenceGuest is pcmk__fence_guest: a pseudo fencing action standing for
// the container's recovery, after the container's stop.
func (ws *workingSet) fenceGuest(n *Node) {
	c := n.remoteRsc.container
	f := ws.newAction(nil, "stonith", n, false)
	f.Pseudo = true
	f.FenceOp = "off"
	if c.startAction() != nil && c.AssignedTo != nil {
		f.FenceOp = "reboot"
	}
	f.Reason = "guest is unclean"
	f.guestOf = c.ID
	var stop *Action
	for _, a := range c.actions {
		if a.Task == "stop" && a.Interval == 0 {
			stop = a
			break
		}
	}
	switch {
	case stop != nil && stop.Pseudo:
		ws.order(ws.fencingOf(stop.node), f, OrderRunnableLeft|OrderImpliesThen)
	case stop != nil:
		ws.order(stop, f, OrderRunnableLeft|OrderImpliesThen)
	default:
		ws.order(n.remoteRsc.find("stop", nil), f, OrderOptional)
	}
	ws.implyStops(n, f)
}

// implyStops makes the stops on a fenced node pseudo-actions after the
// fencing (native_stop_constraints), and orders starts elsewhere after it.
func (ws *workingSet) implyStops(n *Node, f *Action) {
	for _, a := range append([]*Action(nil), ws.actions...) {
		if a.rsc == nil || a.node != n || a.Interval != 0 {
			continue
		}
		if a.Task != "stop" && a.Task != "demote" {
			continue
		}
		a.Pseudo = true
		a.Runnable = true
		ws.order(f, a, OrderImpliesThen)
		r := a.rsc
		if next := r.AssignedTo; a.Task == "stop" && next != nil && next != n {
			ws.order(f, r.find("start", next), OrderOptional)
		}
	}
}

// reconnectInterval is a connection's reconnect_interval parameter
// (remote_reconnect_ms), 0 when unset.
func reconnectInterval(r *Resource) time.Duration {
	if r.remoteNode == nil || r.Prim == nil {
		return 0
	}
	v := nvsets(r.Prim.InstanceAttributes, nil, &ruleCtx{})["reconnect_interval"]
	d, err := cib.ParseInterval(v)
	if err != nil {
		return 0
	}
	return d
}

// resetRemote is process_rsc_state's on-fail=reset-remote: the failed
// connection is recovered after fencing its remote node (unless it was
// fenced already); with a reconnect interval it stays stopped.
func (ws *workingSet) resetRemote(conn *Resource) {
	conn.Failed = true
	if n := conn.remoteNode; ws.opts.stonithEnabled && n != nil && !n.wasFenced {
		ws.fence(n, "remote connection is unrecoverable")
	}
	if reconnectInterval(conn) > 0 {
		conn.TargetRole = cib.RoleStopped
	}
}

// fillers are the resources whose container is c: a guest's connection.
func (ws *workingSet) fillers(c *Resource) []*Resource {
	// Indexed once: called for every primitive, a scan of all of them
	// each time made scheduling quadratic (1 s for 1,000 resources).
	if ws.fillersOf == nil {
		ws.fillersOf = map[*Resource][]*Resource{}
		for _, r := range ws.allPrimitives() {
			if r.container != nil {
				ws.fillersOf[r.container] = append(ws.fillersOf[r.container], r)
			}
		}
	}
	return ws.fillersOf[c]
}

// orphanConnection is create_fake_resource for a remote connection no
// longer configured: its node exists, shutting down.
func (ws *workingSet) orphanConnection(conn *Resource) {
	n := ws.nodeByName[conn.ID]
	if n == nil {
		n = ws.newRemoteNode(conn.ID)
		n.late = true
	}
	n.remoteKind = true
	n.remoteRsc = conn
	conn.remoteNode = n
	n.unseen = true
	if ws.opts.stonithEnabled && ws.opts.startupFencing {
		n.Unclean = true
	}
	n.Shutdown = true
}

// mapOrphanFillers is handle_orphaned_container_fillers: an orphan whose
// history names a container belongs to it (an orphaned guest's
// connection makes its node a guest).
func (ws *workingSet) mapOrphanFillers(lrs []*cib.LRMResource) {
	for _, lr := range lrs {
		rsc := ws.orphans[lr.ID]
		if lr.Container == "" || rsc == nil || rsc.container != nil {
			continue
		}
		c := ws.byID[lr.Container]
		if c == nil {
			c = ws.orphans[lr.Container]
		}
		rsc.container = c
	}
}

// fenceUnreachableRemotes is pcmk__schedule_probes' view of remote nodes,
// before resource actions exist: a remote node that is down with a failed
// connection is fenced.
func (ws *workingSet) fenceUnreachableRemotes() {
	for _, n := range ws.nodes {
		if n.isRemote() && !n.isGuest() && n.remoteRsc != nil && !n.Online && ws.remoteState(n) == remoteFailed {
			ws.fenceRemote(n, "the connection is unrecoverable")
		}
	}
}

// fenceUnprobeable: a probe on a remote node whose connection has failed
// cannot learn what runs there, so the node is fenced
// (apply_remote_ordering for probes).
func (ws *workingSet) fenceUnprobeable() {
	for _, n := range ws.nodes {
		if !n.isRemote() || n.isGuest() || n.remoteRsc == nil || !n.Online || n.Unclean {
			continue
		}
		if ws.remoteState(n) == remoteFailed && ws.wouldProbe(n) {
			ws.fenceRemote(n, "resources are in unknown state and connection is unrecoverable")
		}
	}
}

// wouldProbe: some resource would be probed on remote node n
// (pcmk__probe_rsc_on_node: not fencing devices nor connections).
func (ws *workingSet) wouldProbe(n *Node) bool {
	for _, r := range ws.resources {
		for _, p := range ws.probedOn(r, n) {
			if p.remoteNode == nil && !(p.Prim != nil && p.Prim.Class == "stonith") {
				return true
			}
		}
	}
	return false
}
