package pe

import (
	"slices"
	"sort"
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// ClusterStatus renders the "Current cluster status:" section as
// crm_simulate 2.1.5 prints it (text output, inactive resources shown):
// the node list and the full list of resources, from the unpacked state
// (roles, locations, failures) the scheduler started from. c, the CIB r
// was scheduled from, gives the configuration order of resources and the
// agents of templated primitives; it may be nil.
func (r *Result) ClusterStatus(c *cib.CIB) string {
	return r.renderStatus(newStatusCtx(c), "Current cluster status:")
}

func newStatusCtx(c *cib.CIB) statusCtx {
	st := statusCtx{templates: map[string]*cib.Template{}, order: map[string]int{}}
	if c != nil {
		props := nvsets(c.Configuration.CRMConfig, nil, &ruleCtx{})
		st.maintenance = isTrue(props["maintenance-mode"])
		for i, x := range c.Configuration.Resources {
			st.order[x.ResourceID()] = i
			if t, ok := x.(*cib.Template); ok {
				st.templates[t.ID] = t
			}
		}
	}
	return st
}

func (r *Result) renderStatus(st statusCtx, header string) string {
	var b strings.Builder
	b.WriteString(header + "\n")
	b.WriteString("  * Node List:\n")
	r.writeNodes(&b, st)
	b.WriteString("\n  * Full List of Resources:\n")
	top := r.topLevelInDocOrder(st)
	if len(top) == 0 {
		b.WriteString("    * No resources\n")
	}
	for _, rsc := range top {
		r.writeResource(&b, st, rsc, "    ")
	}
	return b.String()
}

type statusCtx struct {
	// after, when set, overrides the state of primitives and nodes: the
	// state after the transition (RevisedStatus).
	after       *afterState
	maintenance bool // maintenance-mode: nothing is managed
	templates   map[string]*cib.Template
	order       map[string]int // top-level resource id -> configuration position
}

// cmpNodeName orders node names as pe__cmp_node_name does: case-
// insensitively, runs of digits compared by value.
func cmpNodeName(a, b string) int {
	a, b = strings.ToLower(a), strings.ToLower(b)
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := 0, 0
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				if len(na) < len(nb) {
					return -1
				}
				return 1
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func sortedNodeNames(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	sort.SliceStable(out, func(i, j int) bool { return cmpNodeName(out[i], out[j]) < 0 })
	return out
}

func (r *Result) writeNodes(b *strings.Builder, st statusCtx) {
	nodes := append([]*Node(nil), r.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return cmpNodeName(nodes[i].Name, nodes[j].Name) < 0 })
	active := map[*Node]bool{}
	for _, rsc := range r.Resources {
		for _, p := range rsc.primitives() {
			for _, n := range st.running(p) {
				active[n] = true
			}
		}
	}
	var online, offline, remoteOnline, remoteOffline, guestOnline []string
	for _, n := range nodes {
		kind := "Node"
		if n.isGuest() {
			kind = "GuestNode"
		} else if n.isRemote() {
			kind = "RemoteNode"
		}
		var mode string
		switch {
		case st.unclean(n) && st.online(n):
			mode = "UNCLEAN (online)"
		case st.unclean(n) && n.Pending:
			mode = "UNCLEAN (pending)"
		case st.unclean(n):
			mode = "UNCLEAN (offline)"
		case n.Pending:
			mode = "pending"
		case n.Standby && st.online(n) && active[n]:
			mode = "standby (with active resources)"
		case n.Standby && st.online(n):
			mode = "standby"
		case n.Standby:
			mode = "OFFLINE (standby)"
		case n.Maintenance && st.online(n):
			mode = "maintenance"
		case n.Maintenance:
			mode = "OFFLINE (maintenance)"
		case st.online(n) && n.isGuest():
			guestOnline = append(guestOnline, n.Name)
			continue
		case st.online(n) && n.isRemote():
			remoteOnline = append(remoteOnline, n.Name)
			continue
		case st.online(n):
			online = append(online, n.Name)
			continue
		case n.isGuest():
			continue // offline guests are not listed
		case n.isRemote():
			remoteOffline = append(remoteOffline, n.Name)
			continue
		default:
			offline = append(offline, n.Name)
			continue
		}
		b.WriteString("    * " + kind + " " + n.Name + ": " + mode + "\n")
	}
	for _, l := range []struct {
		label string
		names []string
	}{{"Online", online}, {"OFFLINE", offline}, {"RemoteOnline", remoteOnline}, {"RemoteOFFLINE", remoteOffline}, {"GuestOnline", guestOnline}} {
		if len(l.names) > 0 {
			b.WriteString("    * " + l.label + ": [ " + strings.Join(l.names, " ") + " ]\n")
		}
	}
}

// topLevelInDocOrder returns the top-level resources in configuration
// order (primitives are unpacked in document order), orphans last.
func (r *Result) topLevelInDocOrder(st statusCtx) []*Resource {
	first := func(rsc *Resource) int {
		if i, ok := st.order[rsc.ID]; ok {
			return i
		}
		m := -1
		for _, p := range rsc.primitives() {
			if m < 0 || p.index < m {
				m = p.index
			}
		}
		if m < 0 {
			m = rsc.index
		}
		return m
	}
	var conf, orphans []*Resource
	for _, rsc := range r.Resources {
		if rsc.internal || rsc.bundleOf != nil {
			continue // a guest's implicit connection, a bundle's member
		}
		if rsc.Orphan {
			if st.activeAny(rsc) {
				orphans = append(orphans, rsc)
			}
		} else {
			conf = append(conf, rsc)
		}
	}
	// unpack_resources sorts by priority, highest first, stably.
	sort.SliceStable(conf, func(i, j int) bool {
		if conf[i].Priority != conf[j].Priority {
			return conf[i].Priority > conf[j].Priority
		}
		return first(conf[i]) < first(conf[j])
	})
	return append(conf, orphans...)
}

func (r *Result) writeResource(b *strings.Builder, st statusCtx, rsc *Resource, indent string) {
	switch {
	case rsc.bundle != nil:
		r.writeBundle(b, st, rsc, indent)
	case rsc.isClone():
		r.writeClone(b, st, rsc, indent)
	case rsc.isGroup():
		var flags []string
		if st.unmanaged(rsc) {
			flags = append(flags, "unmanaged")
		}
		if disabled(rsc) {
			flags = append(flags, "disabled")
		}
		b.WriteString(indent + "* Resource Group: " + rsc.ID + flagText(flags) + ":\n")
		for _, c := range rsc.Children {
			r.writeResource(b, st, c, indent+"  ")
		}
	default:
		b.WriteString(indent + "* " + primitiveLine(st, rsc) + "\n")
	}
}

// unmanaged is !Managed as unpacking sets it, before scheduling clears
// it for reasons of its own (ticket freeze, missing fencing devices).
func (st statusCtx) unmanaged(r *Resource) bool {
	if v, ok := r.Meta["is-managed"]; ok && !isTrue(v) {
		return true
	}
	return isTrue(r.Meta["maintenance"]) || st.maintenance
}

// disabled reports a configured target-role of Stopped.
func disabled(r *Resource) bool {
	role, ok := cib.ParseRole(r.Meta["target-role"])
	return ok && role == cib.RoleStopped
}

func flagText(flags []string) string {
	if len(flags) == 0 {
		return ""
	}
	return " (" + strings.Join(flags, ", ") + ")"
}

// displayRole is native_displayable_role.
func (st statusCtx) displayRole(p *Resource) cib.Role {
	role := st.role(p)
	if role == cib.RoleNone {
		role = cib.RoleStopped
	}
	if role == cib.RoleStarted {
		if cl := p.cloneOf(); cl != nil && cl.promotable {
			role = cib.RoleUnpromoted
		}
	}
	return role
}

func agentOf(st statusCtx, p *Resource) string {
	if p.Prim == nil {
		return ""
	}
	class, provider, typ := p.Prim.Class, p.Prim.Provider, p.Prim.Type
	if t := st.templates[p.Prim.Template]; t != nil && class == "" && typ == "" {
		class, provider, typ = t.Class, t.Provider, t.Type
	}
	s := class
	if provider != "" {
		s += ":" + provider
	}
	return s + ":" + typ
}

// displayName is the id a primitive is shown by: an anonymous clone's
// instances show their configured id.
func displayName(p *Resource) string {
	if cl := p.cloneOf(); cl != nil && !cl.unique {
		if i := strings.LastIndexByte(p.ID, ':'); i >= 0 {
			return p.ID[:i]
		}
	}
	return p.ID
}

// primitiveLine is pcmk__native_output_string for a primitive.
func primitiveLine(st statusCtx, p *Resource) string {
	var node *Node
	if len(st.running(p)) == 1 {
		node = st.running(p)[0]
	}
	return primitiveLineAs(st, p, displayName(p), node)
}

// primitiveLineAs shows p under the given name on the given node.
func primitiveLineAs(st statusCtx, p *Resource, name string, node *Node) string {
	var words []string
	if p.Orphan {
		words = append(words, "ORPHANED")
	}
	role := st.displayRole(p)
	if st.failed(p) {
		words = append(words, "FAILED")
		if role == cib.RolePromoted {
			words = append(words, string(role))
		}
	} else {
		words = append(words, string(role))
	}
	if node != nil {
		words = append(words, node.Name)
	}
	var flags []string
	if node != nil && !st.online(node) && st.unclean(node) {
		flags = append(flags, "UNCLEAN")
	}
	if disabled(p) {
		flags = append(flags, "disabled")
	}
	blocked := false
	for _, f := range p.onFail {
		if f == "block" {
			blocked = true
		}
	}
	switch {
	case blocked:
		flags = append(flags, "blocked")
	case st.unmanaged(p) || (node != nil && node.Maintenance):
		flags = append(flags, "unmanaged")
	}
	if p.failureIgnored {
		flags = append(flags, "failure ignored")
	}
	line := name + "\t(" + agentOf(st, p) + "):\t " + strings.Join(words, " ") + flagText(flags)
	if len(st.running(p)) > 1 {
		// Active on several nodes: the node list follows the flags.
		var names []string
		for _, n := range st.running(p) {
			names = append(names, n.Name)
		}
		line += " [ " + strings.Join(names, " ") + " ]"
	}
	return line
}

// nativeActive is native_active: running on a node that is up or
// unclean (or anywhere, unmanaged).
func (st statusCtx) nativeActive(p *Resource) bool {
	for _, n := range st.running(p) {
		if st.unclean(n) || st.online(n) || st.unmanaged(p) {
			return true
		}
	}
	return false
}

// activeAll reports whether every primitive of rsc is running.
func (st statusCtx) activeAll(rsc *Resource) bool {
	ps := rsc.primitives()
	for _, p := range ps {
		if len(st.running(p)) == 0 {
			return false
		}
	}
	return len(ps) > 0
}

func (st statusCtx) activeAny(rsc *Resource) bool {
	for _, p := range rsc.primitives() {
		if len(st.running(p)) > 0 {
			return true
		}
	}
	return false
}

func anyPrim(rsc *Resource, f func(*Resource) bool) bool {
	for _, p := range rsc.primitives() {
		if f(p) {
			return true
		}
	}
	return false
}

// writeClone is pe__clone_default.
func (r *Result) writeClone(b *strings.Builder, st statusCtx, cl *Resource, indent string) {
	child := ""
	switch c := cl.Clone.Child.(type) {
	case *cib.Primitive:
		child = c.ID
	case *cib.Group:
		child = c.ID
	}
	var flags []string
	if cl.promotable {
		flags = append(flags, "promotable")
	}
	if cl.unique {
		flags = append(flags, "unique")
	}
	if st.unmanaged(cl) {
		flags = append(flags, "unmanaged")
	}
	if disabled(cl) {
		flags = append(flags, "disabled")
	}
	b.WriteString(indent + "* Clone Set: " + cl.ID + " [" + child + "]" + flagText(flags) + ":\n")
	in := indent + "  "
	var promoted, started []*Node
	running := map[*Node]bool{}
	activeInstances := 0
	for _, inst := range cl.Children {
		for _, p := range inst.primitives() {
			for _, n := range st.running(p) {
				running[n] = true
			}
		}
		full := false
		switch {
		case !anyPrim(inst, st.nativeActive):
			// Only on nodes that are down: not active, not shown.
			full = cl.unique
		case cl.unique || inst.Orphan || anyPrim(inst, func(p *Resource) bool { return p.Orphan || st.unmanaged(p) || st.failed(p) }):
			full = true
		case !st.activeAll(inst):
			full = true
		default:
			var loc *Node
			same := true
			for _, p := range inst.primitives() {
				if len(st.running(p)) != 1 || (loc != nil && st.running(p)[0] != loc) {
					same = false
				}
				if len(st.running(p)) > 0 && loc == nil {
					loc = st.running(p)[0]
				}
			}
			switch {
			case !same || loc == nil:
				full = true
			case !st.online(loc) && st.unclean(loc):
				full = true
			case anyPrim(inst, func(p *Resource) bool { return st.displayRole(p) == cib.RolePromoted }):
				promoted = append(promoted, loc)
				activeInstances++
			default:
				started = append(started, loc)
				activeInstances++
			}
		}
		if full {
			r.writeResource(b, st, inst, in)
		}
	}
	if len(promoted) > 0 {
		b.WriteString(in + "* Promoted: [ " + strings.Join(sortedNodeNames(promoted), " ") + " ]\n")
	}
	if len(started) > 0 {
		label := "Started"
		if cl.promotable {
			label = "Unpromoted"
		}
		b.WriteString(in + "* " + label + ": [ " + strings.Join(sortedNodeNames(started), " ") + " ]\n")
	}
	if !cl.unique && activeInstances < cl.cloneMax {
		var stopped []*Node
		for _, n := range r.Nodes {
			// A node created after the clone was unpacked is not among
			// its allowed nodes.
			if !running[n] && !n.late {
				stopped = append(stopped, n)
			}
		}
		if len(stopped) > 0 {
			label := "Stopped"
			if disabled(cl) {
				label = "Stopped (disabled)"
			}
			b.WriteString(in + "* " + label + ": [ " + strings.Join(sortedNodeNames(stopped), " ") + " ]\n")
		}
	}
}

type primState struct {
	role    cib.Role
	running []*Node
	failed  bool
}

type nodeState struct{ online, unclean bool }

type afterState struct {
	prims map[*Resource]*primState
	nodes map[*Node]*nodeState
}

func (st statusCtx) running(p *Resource) []*Node {
	if st.after != nil {
		if ps := st.after.prims[p]; ps != nil {
			return ps.running
		}
	}
	return p.RunningOn
}

func (st statusCtx) role(p *Resource) cib.Role {
	if st.after != nil {
		if ps := st.after.prims[p]; ps != nil {
			return ps.role
		}
	}
	return p.Role
}

func (st statusCtx) failed(p *Resource) bool {
	if st.after != nil {
		if ps := st.after.prims[p]; ps != nil {
			return ps.failed
		}
	}
	return p.Failed || p.demoteOnly
}

func (st statusCtx) online(n *Node) bool {
	if st.after != nil {
		if ns := st.after.nodes[n]; ns != nil {
			return ns.online
		}
	}
	if n.shown != nil {
		return n.shown.online
	}
	return n.Online
}

func (st statusCtx) unclean(n *Node) bool {
	if st.after != nil {
		if ns := st.after.nodes[n]; ns != nil {
			return ns.unclean
		}
	}
	if n.shown != nil {
		return n.shown.unclean
	}
	return n.Unclean
}

// RevisedStatus renders the "Revised Cluster Status:" section that
// crm_simulate -S prints after executing the transition: the state once
// every required, runnable action has succeeded.
func (r *Result) RevisedStatus(c *cib.CIB) string {
	st := newStatusCtx(c)
	after := &afterState{prims: map[*Resource]*primState{}, nodes: map[*Node]*nodeState{}}
	byID := map[string]*Resource{}
	for _, top := range r.Resources {
		for _, p := range top.primitives() {
			byID[p.ID] = p
			after.prims[p] = &primState{role: p.Role, running: append([]*Node(nil), p.RunningOn...), failed: p.Failed || p.demoteOnly}
		}
	}
	nodeByName := map[string]*Node{}
	for _, n := range r.Nodes {
		nodeByName[n.Name] = n
		after.nodes[n] = &nodeState{online: st.online(n), unclean: st.unclean(n)}
	}
	remove := func(ps *primState, n *Node) {
		var keep []*Node
		for _, m := range ps.running {
			if m != n {
				keep = append(keep, m)
			}
		}
		ps.running = keep
		ps.failed = false
		if len(keep) == 0 {
			ps.role = cib.RoleStopped
		}
	}
	done := func(a *Action) bool { return a.Runnable && !a.Optional }
	// Fencing first, then stops, starts, demotes, promotes.
	for _, a := range r.Actions {
		if !done(a) || a.Resource != "" {
			continue
		}
		n := nodeByName[a.Node]
		if n == nil || a.Task != "stonith" || a.FenceOp == "on" {
			continue
		}
		after.nodes[n].online, after.nodes[n].unclean = false, false
		for _, ps := range after.prims {
			for _, m := range ps.running {
				if m == n {
					remove(ps, n)
					break
				}
			}
		}
	}
	for _, task := range []string{"stop", "start", "migrate_from", "demote", "promote"} {
		for _, a := range r.Actions {
			p := byID[a.Resource]
			if !done(a) || a.Task != task || p == nil {
				continue
			}
			ps, n := after.prims[p], nodeByName[a.Node]
			switch task {
			case "stop":
				if n != nil {
					remove(ps, n)
				}
			case "start", "migrate_from":
				if n != nil && !a.Pseudo && !slices.Contains(ps.running, n) {
					ps.running = append(ps.running, n)
					ps.failed = false
					if ps.role == cib.RoleStopped || ps.role == cib.RoleNone {
						ps.role = cib.RoleStarted
					}
				}
			case "demote":
				ps.role = cib.RoleUnpromoted
			case "promote":
				ps.role = cib.RolePromoted
			}
		}
	}
	// A remote node is up once its connection (and a guest's container)
	// runs.
	for _, n := range r.Nodes {
		if conn := n.remoteRsc; conn != nil && after.prims[conn] != nil {
			up := len(after.prims[conn].running) > 0
			if c := conn.container; c != nil && after.prims[c] != nil && len(after.prims[c].running) == 0 {
				up = false
			}
			after.nodes[n].online = up
			if up {
				after.nodes[n].unclean = false
			}
		}
	}
	st.after = after
	return r.renderStatus(st, "Revised Cluster Status:")
}
