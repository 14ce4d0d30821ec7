package pe

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// options are the cluster options the scheduler reads.
type options struct {
	stonithEnabled   bool
	symmetric        bool
	noQuorumPolicy   string
	haveQuorum       bool
	stopAll          bool
	maintenance      bool
	startupFencing   bool
	placement        string
	haveStonithRsc   bool
	defaultStickness Score
	keepOrphans      bool // stop-orphan-resources=false: orphans are left alone
}

// parseBool is crm_str_to_boolean: ok is false for a value that is
// neither true nor false.
func parseBool(v string) (b, ok bool) {
	switch strings.ToLower(v) {
	case "true", "on", "yes", "y", "1":
		return true, true
	case "false", "off", "no", "n", "0":
		return false, true
	}
	return false, false
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "on", "yes", "y", "1":
		return true
	}
	return false
}

// nvsets flattens attribute sets as Pacemaker's unpack_nvpair_blocks does
// without overwriting: sets in order of decreasing score (document order
// among equals), the first value of a name wins. Sets whose rules fail are
// skipped; rule evaluation here is against node attributes (nil: no node).
func nvsets(sets []*cib.NVSet, into map[string]string, ctx *ruleCtx) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	ordered := make([]*cib.NVSet, len(sets))
	copy(ordered, sets)
	sort.SliceStable(ordered, func(i, j int) bool {
		return setScore(ordered[i]) > setScore(ordered[j])
	})
	for _, s := range ordered {
		if len(s.Rules) > 0 {
			ok := false
			for _, r := range s.Rules {
				if pass, _ := ctx.evalRule(r); pass {
					ok = true
					break
				}
			}
			if !ok {
				continue
			}
		}
		for _, p := range s.Pairs {
			if !p.HasValue {
				continue
			}
			if _, seen := into[p.Name]; !seen {
				into[p.Name] = p.Value
			}
		}
	}
	return into
}

func setScore(s *cib.NVSet) int {
	if s.Score == nil {
		return 0
	}
	return int(*s.Score)
}

func (ws *workingSet) unpackOptions() {
	props := nvsets(ws.cib.Configuration.CRMConfig, nil, ws.baseCtx())
	o := &ws.opts
	o.stonithEnabled = true
	if v, ok := props["stonith-enabled"]; ok {
		o.stonithEnabled = isTrue(v)
	}
	o.symmetric = true
	if v, ok := props["symmetric-cluster"]; ok {
		o.symmetric = isTrue(v)
	}
	o.noQuorumPolicy = "stop"
	if v, ok := props["no-quorum-policy"]; ok {
		o.noQuorumPolicy = v
	}
	o.haveQuorum = ws.cib.HaveQuorum
	o.stopAll = isTrue(props["stop-all-resources"])
	o.maintenance = isTrue(props["maintenance-mode"])
	o.startupFencing = true
	if v, ok := props["startup-fencing"]; ok {
		o.startupFencing = isTrue(v)
	}
	o.keepOrphans = props["stop-orphan-resources"] != "" && !isTrue(props["stop-orphan-resources"])
	o.placement = props["placement-strategy"]
	if v, ok := props["default-resource-stickiness"]; ok {
		o.defaultStickness, _ = cib.ParseScore(v)
	}
	if o.noQuorumPolicy == "suicide" && !o.stonithEnabled {
		o.noQuorumPolicy = "stop"
	}
	ws.props = props
}

func (ws *workingSet) unpackNodes() {
	states := map[string]*cib.NodeState{}
	for _, s := range ws.cib.Status.NodeStates {
		states[s.ID] = s
		if s.Uname != "" {
			if _, dup := states["uname:"+s.Uname]; !dup {
				states["uname:"+s.Uname] = s
			}
		}
	}
	ws.stateIndex = states
	for i, cn := range ws.cib.Configuration.Nodes {
		if cn.Type == "ping" {
			continue
		}
		if cn.Type == "remote" {
			// Attributes and utilization only: its status is decided
			// with its connection's (determineRemoteOnline).
			n := ws.newRemoteNode(cn.Uname)
			n.ID = cn.ID
			ws.nodeByID[cn.ID] = n
			n.Attrs["#id"] = cn.ID
			nvsets(cn.InstanceAttributes, n.Attrs, ws.baseCtx())
			for k, v := range nvsets(cn.Utilization, nil, ws.baseCtx()) {
				n.capacity[k] = laxInt(v)
			}
			continue
		}
		n := &Node{ID: cn.ID, Name: cn.Uname, index: i, Attrs: map[string]string{}}
		n.Attrs["#uname"] = cn.Uname
		n.Attrs["#id"] = cn.ID
		n.Attrs["#kind"] = "cluster"
		if ws.cib.DCUUID == cn.ID {
			n.Attrs["#is_dc"] = "true"
		} else {
			n.Attrs["#is_dc"] = "false"
		}
		nvsets(cn.InstanceAttributes, n.Attrs, ws.baseCtx())
		n.capacity = map[string]int{}
		for k, v := range nvsets(cn.Utilization, nil, ws.baseCtx()) {
			n.capacity[k] = laxInt(v)
		}
		ws.nodes = append(ws.nodes, n)
		ws.nodeByName[cn.Uname] = n
		ws.nodeByID[cn.ID] = n

		st := states[cn.ID]
		if st == nil {
			st = states["uname:"+cn.Uname]
		}
		if st == nil {
			// Never seen: unclean when startup fencing applies.
			if ws.opts.stonithEnabled && ws.opts.startupFencing {
				n.Unclean = true
				n.fenceReason = "node is unclean"
			}
			continue
		}
		for _, s := range st.Transient {
			nvsets([]*cib.NVSet{s}, n.Attrs, ws.baseCtx())
		}
		ws.states[n] = st
	}
	for _, n := range ws.nodes {
		st := ws.states[n]
		if st == nil || n.isRemote() {
			continue
		}
		n.Standby = isTrue(n.Attrs["standby"])
		n.Maintenance = isTrue(n.Attrs["maintenance"])
		ws.determineOnline(n, st)
	}
}

// determineOnline is determine_online_status (with and without fencing).
func (ws *workingSet) determineOnline(n *Node, st *cib.NodeState) {
	expectedUp := false
	if sd := n.Attrs["shutdown"]; sd != "" && sd != "0" {
		n.Shutdown = true
	} else if strings.EqualFold(st.Expected, "member") {
		expectedUp = true
	}
	inCluster := isTrue(st.InCCM)
	crmdOnline := strings.EqualFold(st.Crmd, "online")
	join := strings.ToLower(st.Join)
	exp := strings.ToLower(st.Expected)
	if exp == "" {
		exp = "down"
	}
	online := false
	if !ws.opts.stonithEnabled {
		switch {
		case !inCluster:
		case crmdOnline:
			online = join == "member"
		case !expectedUp:
		default:
			ws.fence(n, "peer is unexpectedly down")
		}
	} else {
		term := n.Attrs["terminate"]
		doTerminate := isTrue(term) || (term != "" && term[0] != '0' && term[0] >= '0' && term[0] <= '9')
		online = inCluster
		switch {
		case n.Shutdown:
			online = crmdOnline
		case st.InCCM == "":
			ws.fence(n, "peer has not been seen by the cluster")
		case join == "banned":
			ws.fence(n, "peer failed Pacemaker membership criteria")
		case !doTerminate && exp == "down":
			if inCluster || crmdOnline {
				n.Standby = true
				n.Pending = true
			}
		case doTerminate && join == "down" && !inCluster && !crmdOnline:
			online = false
		case !inCluster:
			ws.fence(n, "peer is no longer part of the cluster")
		case !crmdOnline:
			ws.fence(n, "peer process is no longer available")
		case doTerminate:
			ws.fence(n, "termination was requested")
		case join == "member":
		case join == "pending" || join == "down":
			n.Standby = true
			n.Pending = true
		default:
			ws.fence(n, "peer was in an unknown state")
		}
	}
	n.Online = online
}

// fence is pe_fence_node for a cluster node: it becomes unclean.
func (ws *workingSet) fence(n *Node, reason string) {
	if n.isRemote() {
		ws.fenceRemote(n, reason)
		return
	}
	if !n.Unclean {
		n.fenceReason = reason
	}
	n.Unclean = true
}

// unpackResources builds the resource list (primitives and groups) with
// their meta attributes.
func (ws *workingSet) unpackResources() {
	defaults := nvsets(ws.cib.Configuration.RscDefaults, nil, ws.baseCtx())
	templates := map[string]*cib.Template{}
	for _, r := range ws.cib.Configuration.Resources {
		if t, ok := r.(*cib.Template); ok {
			templates[t.ID] = t
		}
	}
	for _, r := range ws.cib.Configuration.Resources {
		switch r := r.(type) {
		case *cib.Primitive:
			if r.Class == "stonith" {
				ws.opts.haveStonithRsc = true
			}
			rsc := ws.newPrimitive(r, r.ID, nil, defaults, templates)
			ws.resources = append(ws.resources, rsc)
		case *cib.Group:
			g := &Resource{ID: r.ID, Group: r}
			g.Meta = nvsets(r.MetaAttributes, nil, ws.baseCtx())
			ws.setMeta(g, defaults)
			ws.byID[g.ID] = g
			for _, c := range r.Children {
				if c.Class == "stonith" {
					ws.opts.haveStonithRsc = true
				}
				g.Children = append(g.Children, ws.newPrimitive(c, c.ID, g, defaults, templates))
			}
			ws.resources = append(ws.resources, g)
		case *cib.Clone:
			if cl := ws.unpackClone(r, defaults, templates); cl != nil {
				ws.resources = append(ws.resources, cl)
				continue
			}
			ws.unsupported[r.ResourceID()] = true
			ws.noteUnsupported(r)
		case *cib.Bundle:
			if rs := ws.unpackBundle(r, defaults, templates); rs != nil {
				ws.resources = append(ws.resources, rs...)
				continue
			}
			ws.unsupported[r.ResourceID()] = true
			ws.noteUnsupported(r)
		}
	}
}

func (ws *workingSet) noteUnsupported(r cib.Resource) {
	switch r := r.(type) {
	case *cib.Clone:
		ws.unsupported[r.ID] = true
		switch c := r.Child.(type) {
		case *cib.Primitive:
			ws.unsupported[c.ID] = true
			if c.Class == "stonith" {
				ws.opts.haveStonithRsc = true
			}
		case *cib.Group:
			ws.unsupported[c.ID] = true
			for _, p := range c.Children {
				ws.unsupported[p.ID] = true
				if p.Class == "stonith" {
					ws.opts.haveStonithRsc = true
				}
			}
		}
	case *cib.Bundle:
		ws.unsupported[r.ID] = true
		if r.Primitive != nil {
			ws.unsupported[r.Primitive.ID] = true
		}
	}
}

func (ws *workingSet) newPrimitive(p *cib.Primitive, id string, parent *Resource, defaults map[string]string, templates map[string]*cib.Template) *Resource {
	rsc := &Resource{ID: id, Prim: p, Parent: parent}
	rsc.Meta = nvsets(p.MetaAttributes, nil, ws.baseCtx())
	rsc.Util = map[string]int{}
	util := nvsets(p.Utilization, nil, ws.baseCtx())
	if t := templates[p.Template]; t != nil {
		nvsets(t.Utilization, util, ws.baseCtx())
	}
	if parent != nil && parent.Group != nil {
		nvsets(parent.Group.Utilization, util, ws.baseCtx())
	}
	for k, v := range util {
		rsc.Util[k] = laxInt(v)
	}
	if t := templates[p.Template]; t != nil {
		nvsets(t.MetaAttributes, rsc.Meta, ws.baseCtx())
	}
	if parent != nil {
		for k, v := range parent.Meta {
			if _, ok := rsc.Meta[k]; !ok {
				rsc.Meta[k] = v
			}
		}
	}
	ws.setMeta(rsc, defaults)
	ws.byID[rsc.ID] = rsc
	return rsc
}

func (ws *workingSet) setMeta(rsc *Resource, defaults map[string]string) {
	for k, v := range defaults {
		if _, ok := rsc.Meta[k]; !ok {
			rsc.Meta[k] = v
		}
	}
	m := rsc.Meta
	rsc.Priority = laxInt(m["priority"])
	if v, ok := m["resource-stickiness"]; ok {
		rsc.Stickiness, _ = cib.ParseScore(v)
	} else if v, ok := m["default-resource-stickiness"]; ok {
		rsc.Stickiness, _ = cib.ParseScore(v)
	} else {
		rsc.Stickiness = ws.opts.defaultStickness
	}
	rsc.Threshold = int(cib.Infinity)
	if v, ok := m["migration-threshold"]; ok {
		s, err := cib.ParseScore(v)
		if err == nil {
			rsc.Threshold = int(s)
			if rsc.Threshold < 0 {
				rsc.Threshold = 0
			}
		}
	}
	rsc.Managed = true
	if v, ok := m["is-managed"]; ok {
		rsc.Managed = isTrue(v)
	}
	if isTrue(m["maintenance"]) || ws.opts.maintenance {
		rsc.Managed = false
	}
	rsc.Critical = true
	if v, ok := m["critical"]; ok {
		rsc.Critical = isTrue(v)
	}
	if v, ok := m["target-role"]; ok {
		if role, ok := cib.ParseRole(v); ok && role != cib.RoleStarted && role != cib.RoleUnknown {
			rsc.TargetRole = role
		}
	}
	rsc.onFail = map[*Node]string{}
	rsc.pendingOn = map[*Node]bool{}
	rsc.provisional = true
	rsc.index = len(ws.byID)
}

// cmpOpByCallID is sort_op_by_callid: by call id, a pending operation
// (call id -1) placed by the transition that scheduled it relative to the
// other, or last when the transitions cannot be compared.
func cmpOpByCallID(a, b *cib.LRMRscOp) int {
	ac, bc := a.CallID, b.CallID
	switch {
	case ac == -1 && bc == -1:
		return 0
	case ac >= 0 && ac < bc:
		return -1
	case bc >= 0 && ac > bc:
		return 1
	case ac >= 0 && bc >= 0:
		return 0
	}
	au, aid := transitionOf(a)
	bu, bid := transitionOf(b)
	switch {
	case au != bu || aid == bid:
		if bc == -1 {
			return -1
		}
		return 1
	case (aid >= 0 && aid < bid) || bid == -1:
		return -1
	case (bid >= 0 && aid > bid) || aid == -1:
		return 1
	}
	return 0
}

// transitionOf is the transition uuid and number of the operation's
// transition magic (else key): "action:transition:target-rc:uuid".
func transitionOf(op *cib.LRMRscOp) (string, int) {
	key := op.TransitionKey
	if m := op.TransitionMagic; m != "" {
		if i := strings.IndexByte(m, ';'); i >= 0 {
			key = m[i+1:]
		}
	}
	parts := strings.Split(key, ":")
	if len(parts) < 4 {
		return "", 0
	}
	id, _ := strconv.Atoi(parts[1])
	return parts[3], id
}

// transitionTarget is the expected rc recorded in a transition key
// ("action:transition:target-rc:uuid"), 0 when absent.
func transitionTarget(key string) int {
	parts := strings.Split(key, ":")
	if len(parts) >= 3 {
		if v, err := strconv.Atoi(parts[2]); err == nil {
			return v
		}
	}
	return 0
}

// statusOfflineSkip: without fencing, offline nodes' histories are not
// unpacked (unpack_node_history).
const statusOfflineSkip = true

// unpackStatus replays each resource's operation history on each node.
// Nodes are taken in the status section's order (unpack_node_history),
// which decides anonymous clone instance numbers.
func (ws *workingSet) unpackStatus() {
	// Passes until no history is left that can be unpacked: a remote
	// node's waits for its connection's (unpack_node_history). An
	// orphaned connection found on the way adds its node.
	for progressed := true; progressed; {
		progressed = false
		for _, n := range ws.statusOrder() {
			if !n.unpacked && ws.historyReady(n, false) {
				ws.unpackNodeHistory(n)
				progressed = true
			}
		}
	}
	if ws.opts.stonithEnabled {
		for _, n := range ws.statusOrder() {
			if !n.unpacked {
				ws.unpackNodeHistory(n)
			}
		}
	}
	ws.finishRemoteStatus()
}

// statusOrder lists the nodes with a node_state, in status order.
func (ws *workingSet) statusOrder() []*Node {
	var order []*Node
	seen := map[*Node]bool{}
	for _, st := range ws.cib.Status.NodeStates {
		n := ws.nodeByID[st.ID]
		if n == nil || (n.isRemote() && ws.nodeByName[st.Uname] != nil) {
			n = ws.nodeByName[st.Uname]
		}
		if n == nil || seen[n] {
			continue
		}
		if n.isRemote() {
			if ws.states[n] == nil {
				ws.states[n] = st
				n.wasFenced = laxInt(st.Extra["node_fenced"]) != 0
			}
		} else if ws.states[n] != st {
			continue
		}
		seen[n] = true
		order = append(order, n)
	}
	return order
}

// unpackNodeHistory replays the resource histories of one node.
func (ws *workingSet) unpackNodeHistory(n *Node) {
	n.unpacked = true
	st := ws.states[n]
	if n.isRemote() {
		ws.determineRemoteOnline(n)
		ws.remoteAttrs(n, st)
	}
	if st == nil || st.LRM == nil {
		return
	}
	for _, lr := range st.LRM.Resources {
		rsc := ws.byID[lr.ID]
		cr := ws.historyInstance(n, lr.ID)
		if cr != nil {
			rsc = cr
			cr.histName = lr.ID
			if lr.ID != cr.ID && !strings.EqualFold(lr.ID, cr.cloneName) {
				cr.cloneName = lr.ID // unpack_find_resource
			}
		}
		if rsc == nil || rsc.isGroup() || rsc.isClone() {
			if !ws.unsupported[lr.ID] && rsc == nil {
				ws.orphanHistory(n, lr)
			}
			continue
		}
		ws.unpackLRMResource(rsc, n, lr)
		if cr != nil && len(lr.Ops) > 0 && !slices.Contains(cr.RunningOn, n) && strings.Contains(cr.cloneName, ":") {
			// An instance stopped here forgets a numbered history name
			// (process_rsc_state, for old status sections).
			cr.cloneName = ""
		}
	}
	ws.mapOrphanFillers(st.LRM.Resources)
}

// orphanHistory records a resource that is in the history but no longer
// configured: if active, it must be stopped.
func (ws *workingSet) orphanHistory(n *Node, lr *cib.LRMResource) {
	rsc := ws.orphans[lr.ID]
	if rsc == nil {
		rsc = &Resource{ID: lr.ID, Orphan: true, Prim: &cib.Primitive{ID: lr.ID, Class: lr.Class, Provider: lr.Provider, Type: lr.Type}}
		ws.setMeta(rsc, nil)
		rsc.TargetRole = cib.RoleStopped
		if ws.opts.keepOrphans {
			rsc.Managed = false
		}
		ws.orphans[lr.ID] = rsc
		ws.orphanList = append(ws.orphanList, rsc)
		if isRemoteAgent(rsc.Prim) {
			ws.orphanConnection(rsc)
		}
	}
	ws.unpackLRMResource(rsc, n, lr)
}

// banTarget is the resource a hard failure bans: the whole clone for an
// anonymous clone's instance.
func banTarget(rsc *Resource) *Resource {
	if cl := rsc.cloneOf(); cl != nil && !cl.unique {
		return cl.top()
	}
	return rsc
}

// opSeverity orders on-fail values as Pacemaker's enum action_fail_response.
var opSeverity = map[string]int{
	"ignore": 0, "demote": 1, "restart": 2, "reset-remote": 3, "restart-container": 4, "block": 5,
	"stop": 6, "standby": 7, "fence": 8,
}

func (ws *workingSet) configuredOnFail(rsc *Resource, op *cib.LRMRscOp) string {
	if rsc.Prim != nil && rsc.Prim.Operations != nil {
		for _, o := range rsc.Prim.Operations.Ops {
			if o.Name == op.Operation && o.Interval == op.Interval && o.OnFail != "" &&
				(o.OnFail != "restart-container" || rsc.container != nil) {
				return o.OnFail
			}
		}
	}
	if rsc.container != nil {
		// A filler's (or a guest connection's) failure restarts its
		// container.
		return "restart-container"
	}
	if rsc.remoteNode != nil && !(op.Operation == "monitor" && op.Interval == 0) && op.Operation != "start" {
		// A remote connection's failure resets the remote node
		// (fenced only with fencing enabled).
		if !rsc.Managed {
			return "stop"
		}
		return "reset-remote"
	}
	if op.Operation == "stop" {
		if ws.opts.stonithEnabled {
			return "fence"
		}
		return "block"
	}
	return "restart"
}

func (ws *workingSet) unpackLRMResource(rsc *Resource, n *Node, lr *cib.LRMResource) {
	if len(lr.Ops) > 0 {
		if rsc.knownOn == nil {
			rsc.knownOn = map[*Node]bool{}
		}
		rsc.knownOn[n] = true
	}
	ops := make([]*cib.LRMRscOp, 0, len(lr.Ops))
	for _, op := range lr.Ops {
		// Notifications leave no state; kept out of the sort, where
		// their call id -1 would reorder the rest.
		if op.Operation != "notify" {
			ops = append(ops, op)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return cmpOpByCallID(ops[i], ops[j]) < 0 })
	ws.noteActiveRecurring(rsc, n, ops)
	ws.clearStaleFailures(rsc, n, ops)
	role := cib.RoleUnknown
	onFail := "ignore"
	failed := false
	for _, op := range ops {
		if op.OpStatus == -1 { // pending, whatever its call id
			switch op.Operation {
			case "start", "migrate_from":
				role = cib.RoleStarted
				rsc.startPending = op.Operation == "start" || rsc.startPending
			case "promote":
				role = cib.RolePromoted
			case "stop":
				role = cib.RoleStarted
			}
			continue
		}
		if op.Operation == "notify" || op.Operation == "meta-data" {
			continue
		}
		probe := op.Operation == "monitor" && op.Interval == 0
		target := transitionTarget(op.TransitionKey)
		// Done and error results are judged by their rc (determine_op_status).
		ok := op.OpStatus == 0 || op.OpStatus == 4
		rc := op.RCCode
		switch rc {
		case 190: // degraded: running
			rc = 0
		case 191: // degraded promoted: promoted
			rc = 8
		}
		if ok && rc != target {
			switch {
			case probe && (rc == 0 || rc == 7 || rc == 8):
				// a probe finds whatever is there
			case rc == 0 && target == 7:
				// found running where expected stopped: active
			default:
				ok = false
			}
		}
		if ok && rc == target && rc != 0 && rc != 7 && rc != 8 {
			// An error code is a failure even when the transition
			// expected it (remap_operation).
			ok = false
		}
		if op.OpStatus == 1 || op.OpStatus == 3 { // cancelled, not supported
			continue
		}
		if !ok && ws.opExpired(rsc, n, op) {
			// An expired failure is ignored (check_operation_expiry).
			continue
		}
		if probe && (rc == 5 || rc == 2 || op.OpStatus == 7) {
			// pcmk_xe_mask_probe_failure: not installed or invalid
			// parameters on a probe means inactive, and banned here.
			ws.bans = append(ws.bans, stopKey{banTarget(rsc), n})
			role = cib.RoleStopped
			continue
		}
		restartAfter := false
		if of := ws.configuredOnFail(rsc, op); !ok && (of == "ignore" || of == "restart-container" && op.Operation == "stop") {
			// "Pretending failed op succeeded": the expected result. A
			// filler's failed stop is implied by its container's restart.
			ok, rc = true, target
			rsc.failureIgnored = true
			restartAfter = of == "restart-container"
		}
		if !ok && (op.OpStatus == 0 || op.OpStatus == 4) {
			switch {
			case rc == 3 && op.Interval > 0:
				// not supported as a recurring action: a soft error
			case rc >= 2 && rc <= 5: // hard errors: not on this node again
				ws.bans = append(ws.bans, stopKey{banTarget(rsc), n})
			case rc == 6: // fatal: not anywhere
				ws.bans = append(ws.bans, stopKey{banTarget(rsc), nil})
			}
		}
		if !ok && n.Unclean && ws.opts.stonithEnabled {
			// The node will be fenced, which stops everything on it:
			// its failures need no recovery of their own.
			if roleLess(role, cib.RoleStarted) {
				role = cib.RoleStarted
			}
			continue
		}
		if !ok {
			// unpack_rsc_op_failure
			of := ws.configuredOnFail(rsc, op)
			if opSeverity[of] > opSeverity[onFail] {
				onFail = of
			}
			failed = true
			switch op.Operation {
			case "promote":
				role = cib.RolePromoted
			case "demote":
				if of == "block" {
					role = cib.RolePromoted
				} else if rc == 7 {
					role = cib.RoleStopped
				} else {
					role = cib.RoleUnpromoted
				}
			}
			if op.Operation == "stop" {
				ws.stopFailed[stopKey{rsc, n}] = true
			}
			if probe && rc == 5 {
				role = cib.RoleStopped
			} else if roleLess(role, cib.RoleStarted) {
				role = cib.RoleStarted
			}
			continue
		}
		clear := false
		switch {
		case rc == 7:
			// Not running, as expected: stopped, and past failures
			// are cleared (update_resource_state).
			role = cib.RoleStopped
			clear = true
		case rc == 8:
			role = cib.RolePromoted
		case op.Operation == "start" || op.Operation == "migrate_from":
			role = cib.RoleStarted
			clear = true
		case op.Operation == "stop":
			role = cib.RoleStopped
			clear = true
		case op.Operation == "promote":
			role = cib.RolePromoted
			clear = true
		case op.Operation == "demote":
			// A demote clears an earlier failure only with on-fail=demote.
			role = cib.RoleUnpromoted
			clear = onFail == "demote"
		case op.Operation == "migrate_to":
			role = cib.RoleStarted
		default:
			if roleLess(role, cib.RoleStarted) {
				role = cib.RoleStarted
			}
		}
		if clear {
			switch onFail {
			case "block", "ignore", "demote", "restart", "restart-container":
				onFail = "ignore"
				failed = false
			case "reset-remote":
				// With a reconnect interval, only the failure's
				// expiry allows reconnecting.
				if reconnectInterval(rsc) == 0 {
					onFail = "ignore"
					failed = false
				}
			}
		}
		if restartAfter && opSeverity[onFail] <= opSeverity["restart"] {
			onFail = "restart-container"
		}
	}
	if stoppedRole(role) && onFail == "restart-container" {
		// Stopped, but its container restarts (process_rsc_state).
		rsc.Failed = true
		ws.restartContainer(rsc, n)
		return
	}
	if role == cib.RoleStopped && failed && onFail == "reset-remote" {
		// Stopped, but the remote node still needs its reset.
		ws.resetRemote(rsc)
		return
	}
	if role == cib.RoleUnknown || role == cib.RoleStopped {
		if onFail == "ignore" || !failed {
			return
		}
	}
	if role == cib.RoleUnknown {
		return
	}
	rsc.RunningOn = append(rsc.RunningOn, n)
	ws.offlineActive(rsc, n)
	if changed, why := ws.definitionChanged(rsc, n, lr, ops); changed {
		if rsc.defChanged == nil {
			rsc.defChanged = map[*Node]string{}
		}
		rsc.defChanged[n] = why
	}
	if roleLess(rsc.Role, role) {
		rsc.Role = role
	}
	if failed && onFail != "ignore" {
		rsc.onFail[n] = onFail
		switch onFail {
		case "demote":
			if role == cib.RolePromoted {
				// Demoted in place, not recovered.
				rsc.demoteOnly = true
			} else {
				rsc.Failed = true
			}
		case "restart":
			rsc.Failed = true
		case "restart-container":
			rsc.Failed = true
			ws.restartContainer(rsc, n)
		case "block":
			rsc.Managed = false
			rsc.Failed = true
		case "stop":
			rsc.Failed = true
			rsc.TargetRole = cib.RoleStopped
		case "standby":
			rsc.Failed = true
			n.Standby = true
		case "fence":
			rsc.Failed = true
			ws.fence(n, rsc.ID+" failed there")
		case "reset-remote":
			ws.resetRemote(rsc)
		}
	}
	if rsc.Failed && rsc.remoteNode != nil && rsc.remoteNode.Unclean {
		// A failed connection's unclean node is fenced even if the
		// connection comes back (process_rsc_state).
		rsc.remoteNode.unseen = false
	}
}

var roleRank = map[cib.Role]int{
	cib.RoleUnknown: 0, cib.RoleNone: 0, cib.RoleStopped: 1, cib.RoleStarted: 2,
	cib.RoleUnpromoted: 3, cib.RolePromoted: 4,
}

func roleLess(a, b cib.Role) bool { return roleRank[a] < roleRank[b] }

// failureTimeout is the resource's failure-timeout, 0 when unset.
func failureTimeout(rsc *Resource) time.Duration {
	if ft, ok := rsc.Meta["failure-timeout"]; ok {
		if d, err := cib.ParseInterval(ft); err == nil && d > 0 {
			return d
		}
	}
	return 0
}

// opExpired is check_operation_expiry for a failed operation: older than
// the failure-timeout, unless a fail count that has not expired remains.
func (ws *workingSet) opExpired(rsc *Resource, n *Node, op *cib.LRMRscOp) bool {
	ft := failureTimeout(rsc)
	if ft <= 0 || op.LastRCChange == nil || ws.now.Unix() < *op.LastRCChange+int64(ft/time.Second) {
		return false
	}
	return ws.rawFailcount(rsc, n) == 0 || ws.failcount(rsc, n) == 0
}

// failcount is pe_get_failcount: the sum of the resource's fail counts on
// the node, 0 once the last failure is older than the failure-timeout.
func (ws *workingSet) failcount(rsc *Resource, n *Node) int {
	if rsc.failCleared[n] {
		return 0
	}
	total := ws.rawFailcount(rsc, n)
	if total > 0 {
		if d := failureTimeout(rsc); d > 0 {
			id := rsc.ID
			if rsc.baseID != "" {
				id = rsc.baseID
			}
			last := int64(0)
			lprefix := "last-failure-" + id
			for k, v := range n.Attrs {
				if failAttrMatch(k, lprefix, rsc.baseID != "") {
					if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > last {
						last = t
					}
				}
			}
			if last > 0 && ws.now.Unix() > last+int64(d/time.Second) {
				return 0
			}
		}
	}
	return total
}

// rawFailcount sums the resource's fail counts on n, expired or not.
func (ws *workingSet) rawFailcount(rsc *Resource, n *Node) int {
	total := Score(0)
	id := rsc.ID
	if rsc.baseID != "" {
		id = rsc.baseID
	}
	prefix := "fail-count-" + id
	for k, v := range n.Attrs {
		if failAttrMatch(k, prefix, rsc.baseID != "") {
			s, err := cib.ParseScore(v)
			if err == nil {
				total = total.Add(s)
			}
		}
	}
	return int(total)
}

// failAttrMatch is generate_fail_regex: prefix, for an anonymous clone
// instance optionally followed by any instance number, then optionally
// #operation_interval.
func failAttrMatch(k, prefix string, anyInstance bool) bool {
	if !strings.HasPrefix(k, prefix) {
		return false
	}
	rest := k[len(prefix):]
	if anyInstance && strings.HasPrefix(rest, ":") {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	return rest == "" || strings.HasPrefix(rest, "#")
}

// laxInt is crm_parse_int: leading white space, optional sign, digits; the
// rest is ignored ("2.0" is 2). Junk is 0.
func laxInt(s string) int {
	s = strings.TrimLeft(s, " \t\n")
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(s[:j], 10, 64)
	if err != nil {
		if j > i && j-i > 10 {
			if s[0] == '-' {
				return -int(cib.Infinity)
			}
			return int(cib.Infinity)
		}
		return 0
	}
	return int(v)
}

// noteActiveRecurring records the recurring operations running on n, as
// calculate_active_ops and process_recurring find them: those after the
// last start (or, failing one, the last promote/demote or successful
// monitor), unless a later stop ended them. A configured monitor that is
// not among them must be scheduled even when the resource stays put.
func (ws *workingSet) noteActiveRecurring(rsc *Resource, n *Node, ops []*cib.LRMRscOp) {
	if !n.Online {
		return
	}
	start, stop, impliedMonitor, impliedClone := -1, -1, -1, -1
	for i, op := range ops {
		switch {
		case op.Operation == "stop" && op.OpStatus == 0:
			stop = i
		case op.Operation == "start" || op.Operation == "migrate_from":
			start = i
		case impliedMonitor <= stop && op.Operation == "monitor" && (op.RCCode == 0 || op.RCCode == 8):
			impliedMonitor = i
		case op.Operation == "promote" || op.Operation == "demote":
			impliedClone = i
		}
	}
	if start == -1 {
		if impliedClone != -1 {
			start = impliedClone
		} else {
			start = impliedMonitor
		}
	}
	for i, op := range ops {
		if (start < stop && i <= stop) || i < start || op.Interval == 0 || op.OpStatus == -1 {
			continue
		}
		if rsc.activeRecurring == nil {
			rsc.activeRecurring = map[*Node]map[string]bool{}
		}
		if rsc.activeRecurring[n] == nil {
			rsc.activeRecurring[n] = map[string]bool{}
		}
		rsc.activeRecurring[n][fmt.Sprintf("%s_%s_%d", rsc.ID, op.Operation, op.Interval.Milliseconds())] = true
	}
}
