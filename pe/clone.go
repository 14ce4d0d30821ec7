package pe

import (
	"sort"
	"strconv"
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// unpackClone is clone_unpack for clones of primitives and groups: the
// clone and clone-max instances named ID:N. It returns nil for what is not
// scheduled yet (promotable clones).
func (ws *workingSet) unpackClone(c *cib.Clone, defaults map[string]string, templates map[string]*cib.Template) *Resource {
	if c.Child == nil {
		return nil
	}
	switch ch := c.Child.(type) {
	case *cib.Primitive:
		if ch.Class == "stonith" {
			ws.opts.haveStonithRsc = true
		}
	case *cib.Group:
		for _, p := range ch.Children {
			if p.Class == "stonith" {
				ws.opts.haveStonithRsc = true
			}
		}
		if len(ch.Children) == 0 {
			return nil
		}
	default:
		return nil
	}
	cl := &Resource{ID: c.ID, Clone: c}
	cl.Meta = nvsets(c.MetaAttributes, nil, ws.baseCtx())
	cl.promotable = c.Promotable || isTrue(cl.Meta["promotable"])
	ws.setMeta(cl, defaults)
	if cl.promotable {
		cl.promotedMax = 1
		for _, k := range []string{"promoted-max", "master-max"} {
			if v, ok := cl.Meta[k]; ok {
				cl.promotedMax = laxInt(v)
				break
			}
		}
		cl.promotedNodeMax = 1
		for _, k := range []string{"promoted-node-max", "master-node-max"} {
			if v, ok := cl.Meta[k]; ok {
				cl.promotedNodeMax = laxInt(v)
				break
			}
		}
		cl.promoLoc = map[*Node]int{}
		cl.promoCount = map[*Node]int{}
	}
	if _, ok := cl.Meta["resource-stickiness"]; !ok {
		// Clone instances are sticky by default.
		cl.Meta["resource-stickiness"] = "1"
		cl.Stickiness = 1
	}
	cl.cloneMax = len(ws.nodes)
	if v, ok := cl.Meta["clone-max"]; ok {
		cl.cloneMax = laxInt(v)
	}
	cl.cloneNodeMax = 1
	if v, ok := cl.Meta["clone-node-max"]; ok {
		cl.cloneNodeMax = laxInt(v)
	}
	cl.unique = isTrue(cl.Meta["globally-unique"])
	if !cl.unique && cl.cloneNodeMax > 1 {
		// Anonymous clones support only one instance per node.
		cl.cloneNodeMax = 1
	}
	cl.interleave = isTrue(cl.Meta["interleave"])
	ws.byID[cl.ID] = cl
	ws.cloneList = append(ws.cloneList, cl)
	cl.instCount = map[*Node]int{}
	// The configured child's own id names nothing schedulable.
	ws.unsupported[c.Child.ResourceID()] = true
	if g, ok := c.Child.(*cib.Group); ok {
		for _, p := range g.Children {
			ws.unsupported[p.ID] = true
		}
	}
	for i := 0; i < cl.cloneMax; i++ {
		ws.newInstance(cl, defaults, templates)
	}
	if cl.cloneMax <= 0 {
		// A :0 to match history against (unpack_find_resource).
		ws.newInstance(cl, defaults, templates)
	}
	return cl
}

// newInstance is create_child_clone: instance number cl.nextInstance.
func (ws *workingSet) newInstance(cl *Resource, defaults map[string]string, templates map[string]*cib.Template) *Resource {
	suffix := ":" + strconv.Itoa(cl.nextInstance)
	cl.nextInstance++
	var inst *Resource
	switch ch := cl.Clone.Child.(type) {
	case *cib.Primitive:
		inst = ws.newPrimitive(ch, ch.ID+suffix, cl, defaults, templates)
		inst.baseID = ch.ID
	case *cib.Group:
		inst = &Resource{ID: ch.ID + suffix, Group: ch, Parent: cl, baseID: ch.ID}
		inst.Meta = nvsets(ch.MetaAttributes, nil, ws.baseCtx())
		for k, v := range cl.Meta {
			if _, ok := inst.Meta[k]; !ok {
				inst.Meta[k] = v
			}
		}
		ws.setMeta(inst, defaults)
		ws.byID[inst.ID] = inst
		for _, p := range ch.Children {
			m := ws.newPrimitive(p, p.ID+suffix, inst, defaults, templates)
			m.baseID = p.ID
			inst.Children = append(inst.Children, m)
		}
	}
	for _, p := range inst.primitives() {
		p.requiresFencing = ws.requiresFencing(p)
	}
	cl.Children = append(cl.Children, inst)
	return inst
}

// requiresFencing is the "requires" meta attribute's effect: whether
// recovering the resource needs its node fenced first.
func (ws *workingSet) requiresFencing(p *Resource) bool {
	req := p.Meta["requires"]
	if req == "" {
		if p.Prim != nil && p.Prim.Class == "stonith" {
			return false
		}
		return ws.opts.stonithEnabled
	}
	return req == "fencing" || req == "unfencing"
}

// stripInstance is clone_strip: "rsc:3" -> "rsc".
func stripInstance(id string) string {
	if i := strings.LastIndexByte(id, ':'); i >= 0 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil {
			return id[:i]
		}
	}
	return id
}

// historyInstance maps a history entry's id to the clone instance (or
// instance member) it belongs to, as unpack_find_resource and
// find_anonymous_clone do. It returns nil for ids that are not clone
// members.
func (ws *workingSet) historyInstance(n *Node, id string) *Resource {
	r := ws.byID[id]
	var cl *Resource
	switch {
	case r != nil && r.isClone():
		return nil
	case r != nil:
		cl = r.cloneOf()
	default:
		base := stripInstance(id)
		if i0 := ws.byID[base+":0"]; i0 != nil {
			cl = i0.cloneOf()
		}
	}
	if cl == nil {
		return nil
	}
	if cl.bundleOf != nil && !cl.unique {
		// A bundle's anonymous inner instance is its replica's, by
		// guest node.
		return cl.bundleReplicaChild(n)
	}
	if cl.unique {
		if r != nil {
			return r
		}
		// A unique instance number beyond clone-max: an orphan.
		return nil
	}
	return ws.findAnonymous(cl, n, stripInstance(id))
}

// memberOf finds the primitive of instance inst configured as base.
func memberOf(inst *Resource, base string) *Resource {
	for _, p := range inst.primitives() {
		if p.baseID == base {
			return p
		}
	}
	return nil
}

// findAnonymous is find_anonymous_clone: the instance already active on
// the node, else the first inactive one, else a new orphan instance.
func (ws *workingSet) findAnonymous(cl *Resource, n *Node, base string) *Resource {
	var rsc, inactive *Resource
	skipInactive := false
	for _, inst := range cl.Children {
		if rsc != nil {
			break
		}
		locs := inst.primitivesRunning()
		if len(locs) > 0 {
			if locs[0] == n {
				rsc = memberOf(inst, base)
				if rsc != nil && len(rsc.RunningOn) > 0 {
					skipInactive = true
					rsc = nil
				}
			}
			continue
		}
		if !skipInactive && inactive == nil {
			inactive = memberOf(inst, base)
		}
	}
	if rsc == nil && !skipInactive && inactive != nil {
		rsc = inactive
	}
	if rsc != nil && !rsc.requiresFencing && (!n.Online || n.Unclean) && cl.cloneMax < len(ws.nodes) {
		rsc = nil
	}
	if rsc == nil {
		inst := ws.newInstance(cl, nil, nil)
		for _, p := range inst.primitives() {
			p.Orphan = true
		}
		inst.Orphan = true
		rsc = memberOf(inst, base)
	}
	return rsc
}

// sortInstances is sort_clone_instance: instances active where they may
// stay first (fewer active locations first), then by priority, inactive
// ones after active ones, instances on nodes that cannot run resources
// after those that can, failed ones after healthy ones, then by the weight
// of their current node and all their weights, then by id.
func (ws *workingSet) sortInstances(cl *Resource, list []*Resource) {
	cw := ws.weightsOf(cl)
	type key struct {
		nRunning int
		node     *Node // current node, nil if not usable
		can      bool
		failed   bool
		w        weights
	}
	keys := map[*Resource]key{}
	for _, r := range list {
		k := key{can: true, failed: r.failedDeep(), w: ws.weightsOf(r)}
		on := r.primitivesRunning()
		k.nRunning = len(on)
		if len(on) > 0 {
			k.node = on[0]
			if v, ok := k.w[k.node]; !ok || v < 0 {
				k.node = nil
				k.can = false
			}
		}
		keys[r] = k
	}
	cmp := func(a, b *Resource) int {
		ka, kb := keys[a], keys[b]
		if ka.nRunning > 0 && kb.nRunning > 0 && ka.nRunning != kb.nRunning {
			if ka.nRunning < kb.nRunning {
				return -1
			}
			return 1
		}
		if ka.can != kb.can {
			if ka.can {
				return -1
			}
			return 1
		}
		if a.Priority != b.Priority {
			if a.Priority > b.Priority {
				return -1
			}
			return 1
		}
		if ka.node == nil && kb.node == nil {
			// Inactive instances: the better scores first, else in
			// instance order.
			if sameWeights(ka.w, kb.w) {
				return 0
			}
			return cmpWeights(ka.w, kb.w, a, b)
		}
		if ka.node == nil {
			return 1
		}
		if kb.node == nil {
			return -1
		}
		if ca, cb := ka.node.available(), kb.node.available(); ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		_, pa := cw[ka.node]
		_, pb := cw[kb.node]
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		if !pa {
			return 0
		}
		if ka.failed != kb.failed {
			if ka.failed {
				return 1
			}
			return -1
		}
		wa, wb := ka.w[ka.node], kb.w[kb.node]
		if wa != wb {
			if wa < wb && wa >= 0 {
				return 1
			}
			return -1
		}
		return cmpWeights(ka.w, kb.w, a, b)
	}
	sort.SliceStable(list, func(i, j int) bool { return cmp(list[i], list[j]) < 0 })
}

// assignClone is pcmk__clone_allocate with distribute_children.
func (ws *workingSet) assignClone(cl *Resource) {
	cl.assigning = true
	for _, c := range cl.thisWith {
		ws.assign(c.primary)
	}
	for _, c := range cl.withThis {
		if !ws.hasInfluence(c) {
			continue
		}
		w := ws.weightsOf(cl)
		ws.addColocatedNodeScores(c.dependent, &w, c.nodeAttr, float64(c.score)/float64(inf), selectActive|selectNonnegative)
		ws.alloc[cl] = w
	}
	// Instances are assigned in sort_clone_instance order; the clone keeps
	// its instance order (the summary lists instances by number).
	order := make([]*Resource, len(cl.Children))
	copy(order, cl.Children)
	ws.sortInstances(cl, order)
	ws.distribute(cl, order)
	if cl.promotable {
		ws.setInstanceRoles(cl)
	}
	cl.assigning = false
	cl.provisional = false
	cl.NextRole = cib.RoleStarted
}

// distribute is distribute_children.
func (ws *workingSet) distribute(cl *Resource, order []*Resource) {
	max, perHost := cl.cloneMax, cl.cloneNodeMax
	available := 0
	for n := range ws.weightsOf(cl) {
		cl.instCount[n] = 0
		if n.available() {
			available++
		}
	}
	allColoc := max < available
	cl.allColoc = allColoc
	loopMax := 1
	if available > 0 && max/available > 1 {
		loopMax = max / available
	}
	allocated := 0
	for _, inst := range order {
		if allocated >= max {
			break
		}
		running := inst.primitivesRunning()
		if len(running) == 0 || !inst.provisionalDeep() || inst.failedDeep() {
			continue
		}
		cur := running[0]
		if !cur.available() {
			continue
		}
		if _, ok := ws.weightsOf(cl)[cur]; ok && cl.instCount[cur] >= loopMax {
			continue
		}
		if ws.allocateInstance(cl, inst, cur, allColoc, perHost) {
			allocated++
		}
	}
	for _, inst := range order {
		if !inst.provisionalDeep() {
			continue
		}
		if allocated >= max {
			for _, p := range append([]*Resource{inst}, inst.Children...) {
				for n := range ws.weightsOf(p) {
					ws.weightsOf(p)[n] = -inf
				}
			}
			ws.assignStopped(inst)
			continue
		}
		if ws.allocateInstance(cl, inst, nil, allColoc, perHost) {
			allocated++
		}
	}
}

func (r *Resource) provisionalDeep() bool {
	return r.provisional
}

func (r *Resource) failedDeep() bool {
	for _, p := range r.primitives() {
		if p.Failed {
			return true
		}
	}
	return false
}

// assignStopped leaves an instance (and its members) unassigned.
func (ws *workingSet) assignStopped(inst *Resource) {
	for _, p := range inst.primitives() {
		if p.provisional {
			ws.assignTo(p, nil, true)
		}
	}
	inst.provisional = false
	inst.AssignedTo = nil
	inst.NextRole = cib.RoleStopped
}

// allocateInstance is allocate_instance.
func (ws *workingSet) allocateInstance(cl, inst *Resource, prefer *Node, allColoc bool, limit int) bool {
	if !inst.provisional {
		return inst.AssignedTo != nil
	}
	if inst.assigning {
		return false
	}
	ws.appendParentColocations(cl, inst, allColoc)
	if prefer != nil {
		if v, ok := ws.weightsOf(inst)[prefer]; !ok || v < 0 {
			return false
		}
	}
	ws.canRunInstance(cl, inst, limit)
	backups := map[*Resource]weights{}
	for _, p := range append([]*Resource{inst}, inst.Children...) {
		backups[p] = ws.weightsOf(p).copy()
	}
	inst.prefer = prefer
	chosen := ws.assign(inst)
	inst.prefer = nil
	if chosen != nil && prefer != nil && chosen != prefer {
		for p, w := range backups {
			ws.alloc[p] = w
		}
		ws.deallocate(inst)
		chosen = nil
	}
	if chosen != nil {
		if _, ok := ws.weightsOf(cl)[chosen]; ok {
			cl.instCount[chosen]++
		}
	}
	return chosen != nil
}

// deallocate is native_deallocate (for each member).
func (ws *workingSet) deallocate(inst *Resource) {
	for _, p := range append([]*Resource{inst}, inst.Children...) {
		if p.AssignedTo != nil && !p.isGroup() {
			p.AssignedTo.numResources--
			for k, v := range p.Util {
				p.AssignedTo.capacity[k] += v
			}
		}
		p.AssignedTo = nil
		p.provisional = true
		p.NextRole = cib.RoleUnknown
		p.nextReason = ""
	}
}

// appendParentColocations is append_parent_colocation: the clone's
// colocations apply to the instance (finite positive ones only when not
// every node gets an instance).
func (ws *workingSet) appendParentColocations(cl, inst *Resource, all bool) {
	target := inst
	if inst.isGroup() && len(inst.Children) > 0 {
		target = inst.Children[0]
	}
	for _, c := range cl.thisWith {
		if all || c.score < 0 || c.score == cib.Infinity {
			target.thisWith = append([]*colocation{c}, target.thisWith...)
		}
	}
	for _, c := range cl.withThis {
		if !ws.hasInfluence(c) {
			continue
		}
		if all || c.score < 0 {
			target.withThis = append([]*colocation{c}, target.withThis...)
		}
	}
}

// canRunInstance is can_run_instance for every node of the instance's
// table: nodes the clone may not use, unavailable nodes and full nodes
// are banned.
func (ws *workingSet) canRunInstance(cl, inst *Resource, limit int) {
	pw := ws.weightsOf(cl)
	for n := range ws.weightsOf(inst) {
		ban := 0
		pv, ok := pw[n]
		switch {
		case !n.available() || inst.Orphan:
			ban = -inf
		case !ok:
			ban = -inf
		case pv < 0:
			ban = pv
		case cl.instCount[n] < limit:
			continue
		default:
			ban = -inf
		}
		ws.updateScore(inst, n, ban)
	}
}

// updateScore is common_update_score: add to an existing entry of rsc and
// its members.
func (ws *workingSet) updateScore(rsc *Resource, n *Node, score int) {
	w := ws.weightsOf(rsc)
	if v, ok := w[n]; ok {
		w[n] = addScores(v, score)
	}
	for _, c := range rsc.Children {
		ws.updateScore(c, n, score)
	}
}

// applyCloneColocation is the primary side of a colocation with a clone
// (clone_rsc_colocation_rh) for a dependent primitive.
func (ws *workingSet) applyCloneColocation(dep *Resource, c *colocation) {
	prim := c.primary
	if prim.provisional {
		return
	}
	if c.depRole == cib.RolePromoted || c.depRole == cib.RoleUnpromoted {
		// A role of the dependent: its promotion, not its location.
		return
	}
	if c.primRole == cib.RolePromoted || c.primRole == cib.RoleUnpromoted {
		if prim.promotable {
			ws.applyPromotableColocation(dep, c)
		}
		return
	}
	if ws.interleavedColocation(dep, c) {
		return
	}
	if c.score >= cib.Infinity {
		allowed := map[*Node]bool{}
		for _, inst := range prim.Children {
			if inst.AssignedTo != nil && inst.Managed {
				allowed[inst.AssignedTo] = true
			}
		}
		w := ws.weightsOf(dep)
		for n := range w {
			if !allowed[n] {
				w[n] = -inf
			}
		}
		return
	}
	for _, inst := range prim.Children {
		ic := *c
		ic.primary = inst
		ws.applyColocation(dep, &ic)
	}
}

// interleavedColocation is the interleaved case of clone_rsc_colocation_rh:
// an instance of the dependent clone follows the primary's instance on
// its best node.
func (ws *workingSet) interleavedColocation(dep *Resource, c *colocation) bool {
	dc, prim := c.dependent, c.primary
	if !dc.isClone() || !prim.isClone() || !dc.interleave || dep.cloneOf() != dc || dc.cloneNodeMax != prim.cloneNodeMax {
		return false
	}
	inst := ws.compatibleInstance(dep, prim, false)
	if inst != nil {
		ic := *c
		ic.primary = inst
		ws.applyColocation(dep, &ic)
		return true
	}
	if c.score >= cib.Infinity {
		w := ws.weightsOf(dep)
		for n := range w {
			w[n] = -inf
		}
	}
	return true
}

// cloneActions creates the instances' actions and the clone's
// pseudo-actions (clone_create_actions).
func (ws *workingSet) cloneActions(cl *Resource) {
	anyStarting, anyStopping, anyActive := false, false, false
	for _, inst := range cl.Children {
		ws.createActions(inst)
		if len(inst.primitivesRunning()) > 0 {
			anyActive = true
		}
		for _, p := range inst.primitives() {
			for _, a := range p.actions {
				if a.Interval != 0 {
					continue
				}
				if a.Task == "start" && !a.Optional && a.Runnable {
					anyStarting = true
				}
				if a.Task == "stop" && !a.Optional {
					anyStopping = true
				}
			}
		}
	}
	start := ws.newAction(cl, "start", nil, !anyStarting)
	start.Pseudo = true
	running := ws.newAction(cl, "running", nil, !anyStarting)
	running.Pseudo = true
	running.Runnable = anyActive || anyStarting
	running.Priority = InfinityPriority
	startNotify := ws.notifyPseudoOps(cl, "start", start, running)
	stop := ws.newAction(cl, "stop", nil, !anyStopping)
	stop.Pseudo = true
	stopped := ws.newAction(cl, "stopped", nil, !anyStopping)
	stopped.Pseudo = true
	stopped.Priority = InfinityPriority
	if stopNotify := ws.notifyPseudoOps(cl, "stop", stop, stopped); stopNotify != nil {
		ws.order(stopNotify.postDone, startNotify.pre, OrderOptional)
		cl.notifs = append(cl.notifs, startNotify, stopNotify)
	}
	if cl.promotable {
		ws.promotablePseudo(cl)
	}
}

// cloneOrderings is clone_internal_constraints.
func (ws *workingSet) cloneOrderings(cl *Resource) {
	if cl.promotable {
		ws.promotableOrderings(cl)
	}
	cs, crun, cstop, cstopped := cl.find("start", nil), cl.find("running", nil), cl.find("stop", nil), cl.find("stopped", nil)
	ws.order(cstopped, cs, OrderOptional) // every stop completes before any start
	ws.order(cs, crun, OrderRunnableLeft)
	ws.order(cstop, cstopped, OrderRunnableLeft)
	for _, inst := range cl.Children {
		for _, a := range orderAction(inst, "start", false) {
			ws.order(cs, a, OrderOptional|OrderRunnableLeft)
		}
		for _, a := range orderAction(inst, "start", true) {
			ws.order(a, crun, OrderOptional)
		}
		for _, a := range orderAction(inst, "stop", false) {
			ws.order(cstop, a, OrderOptional)
		}
		for _, a := range orderAction(inst, "stop", true) {
			ws.order(a, cstopped, OrderOptional)
		}
	}
}

// orderCloneChildren applies an ordering whose "then" is a clone's action
// to the same action of each instance (and of a group instance's members),
// as pcmk__multi_update_actions does for orderings that do not interleave.
func (ws *workingSet) orderCloneChildren(fx *Action, then *Resource, task string, flags EdgeKind) {
	if !then.isClone() {
		return
	}
	for _, inst := range then.Children {
		for _, tx := range thenActions(inst, task) {
			// An action on a node reaches the instances' actions on
			// that node only, except that one required before the
			// clone's requires every instance's (clone_update_actions
			// updates the children wherever they are).
			if fx.node != nil && tx.node != nil && tx.node != fx.node && flags&OrderImpliesThen == 0 {
				continue
			}
			if fx.node != nil && tx.node == nil && !tx.Pseudo {
				continue
			}
			ws.order(fx, tx, flags)
		}
	}
}

// minFirstInstances is get_minimum_first_instances: how many instances of
// a first clone must be runnable (require-all=false: one; clone-min), or 0
// for an ordinary ordering.
func minFirstInstances(o *cib.Order, first *Resource) int {
	if !first.isClone() {
		return 0
	}
	if o.RequireAll != nil && !*o.RequireAll {
		return 1
	}
	return laxInt(first.Meta["clone-min"])
}

// cloneMinOrdering is clone_min_ordering: a pseudo-action runnable once
// min instances' first actions are, ordered before then.
func (ws *workingSet) cloneMinOrdering(id string, first *Resource, fa string, then *Resource, ta string, flags EdgeKind, min int) {
	met := ws.newAction(nil, "clone-one-or-more:"+id, nil, true)
	met.Pseudo = true
	met.minRunnable = min
	for _, inst := range first.Children {
		for _, a := range orderAction(inst, fa, false) {
			ws.order(a, met, OrderOneOrMore)
		}
	}
	for _, tx := range orderAction(then, ta, false) {
		ws.order(met, tx, flags|OrderRunnableLeft)
	}
	ws.orderCloneChildren(met, then, ta, flags|OrderRunnableLeft)
}

// interleaved is can_interleave_actions: both sides are clones and the
// relevant one (first's for stop and demote, then's otherwise) has
// interleave=true.
func (ws *workingSet) interleaved(first *Resource, fa string, then *Resource, ta string) bool {
	if first == then || !first.isClone() || !then.isClone() {
		return false
	}
	if ta == "stop" || ta == "demote" {
		return first.interleave
	}
	return then.interleave
}

// instanceNode is where an instance is (current) or will be.
func instanceNode(inst *Resource, current bool) *Node {
	if current {
		if on := inst.primitivesRunning(); len(on) > 0 {
			return on[0]
		}
		return nil
	}
	if inst.isGroup() {
		if len(inst.Children) > 0 {
			return inst.Children[0].AssignedTo
		}
		return nil
	}
	return inst.AssignedTo
}

// compatibleInstance is find_compatible_child: the instance of cl on
// local's node, or on the best node local may use.
func (ws *workingSet) compatibleInstance(local, cl *Resource, current bool) *Resource {
	byNode := func(n *Node) *Resource {
		for _, inst := range cl.Children {
			if instanceNode(inst, current) == n {
				return inst
			}
		}
		return nil
	}
	if n := instanceNode(local, current); n != nil {
		return byNode(n)
	}
	for _, n := range sortNodes(ws.weightsOf(local), nil) {
		if inst := byNode(n); inst != nil {
			return inst
		}
	}
	return nil
}

// thenActions are the actions an ordering reaches in an instance: its
// own, and a group instance's members'.
func thenActions(inst *Resource, task string) []*Action {
	out := orderAction(inst, task, false)
	if inst.isGroup() {
		for _, m := range inst.Children {
			out = append(out, orderAction(m, task, false)...)
		}
	}
	return out
}

// orderInterleaved is interleave_actions: each instance of then is ordered
// after the instance of first on the same node; one with no such partner
// may not start when the ordering is mandatory.
func (ws *workingSet) orderInterleaved(first *Resource, fa string, then *Resource, ta string, flags EdgeKind) {
	for _, fx := range orderAction(first, fa, true) {
		for _, tx := range orderAction(then, ta, false) {
			ws.order(fx, tx, flags)
		}
	}
	current := fa == "stop" || fa == "demote"
	for _, tinst := range then.Children {
		finst := ws.compatibleInstance(tinst, first, current)
		if finst == nil {
			if !current && flags&(OrderRunnableLeft|OrderImpliesThen) != 0 {
				// Inhibited: the instance is left unassigned.
				for _, p := range tinst.primitives() {
					for _, a := range p.actions {
						switch {
						case a.Task == "start" || (a.Task == "monitor" && a.node == p.AssignedTo):
							a.Runnable = false
						case a.Task == "stop":
							a.Optional = false
						}
					}
					p.AssignedTo = nil
					p.NextRole = cib.RoleStopped
				}
			}
			continue
		}
		for _, fx := range orderAction(finst, fa, true) {
			for _, tx := range thenActions(tinst, ta) {
				ws.order(fx, tx, flags&^OrderImpliesFirst)
			}
		}
	}
}

// cmpWeights compares two instances by all their node scores, best
// first, then by id (the end of sort_clone_instance).
func cmpWeights(wa, wb weights, a, b *Resource) int {
	la, lb := sortNodes(wa, a.current()), sortNodes(wb, b.current())
	for i := 0; i < len(la) || i < len(lb); i++ {
		if i >= len(la) {
			return 1
		}
		if i >= len(lb) {
			return -1
		}
		x, y := wa[la[i]], wb[lb[i]]
		if x != y {
			if x < y {
				return 1
			}
			return -1
		}
	}
	return strings.Compare(a.ID, b.ID)
}

// sameWeights reports whether two tables rank the same scores.
func sameWeights(wa, wb weights) bool {
	la, lb := sortNodes(wa, nil), sortNodes(wb, nil)
	if len(la) != len(lb) {
		return false
	}
	for i := range la {
		if wa[la[i]] != wb[lb[i]] {
			return false
		}
	}
	return true
}
