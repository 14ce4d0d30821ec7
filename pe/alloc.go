package pe

import (
	"regexp"
	"sort"
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

const (
	inf     = int(cib.Infinity)
	infHack = inf * -100 // INFINITY_HACK: a node marked unusable while merging
)

// addScores is pcmk__add_scores on plain ints.
func addScores(a, b int) int { return int(Score(clampInt(a)).Add(Score(clampInt(b)))) }

func clampInt(v int) int {
	if v > inf {
		return inf
	}
	if v < -inf {
		return -inf
	}
	return v
}

// weights is a node table: node -> weight. Absent means not allowed.
type weights map[*Node]int

func (w weights) copy() weights {
	c := make(weights, len(w))
	for k, v := range w {
		c[k] = v
	}
	return c
}

// anyAvailable is pcmk__any_node_available: some node can run resources
// and has a non-negative weight.
func (w weights) anyAvailable() bool {
	for n, v := range w {
		if v >= 0 && n.available() {
			return true
		}
	}
	return false
}

// resourceNodeScore is resource_node_score: add score on node for rsc and
// (recursively) its members.
func (ws *workingSet) resourceNodeScore(rsc *Resource, n *Node, score int) {
	for _, c := range rsc.Children {
		ws.resourceNodeScore(c, n, score)
	}
	w := ws.weightsOf(rsc)
	if _, ok := w[n]; !ok {
		w[n] = 0
	}
	w[n] = addScores(w[n], score)
}

// weightsOf returns the resource's allowed-node table (kept as ints while
// scheduling).
func (ws *workingSet) weightsOf(rsc *Resource) weights {
	w, ok := ws.alloc[rsc]
	if !ok {
		w = weights{}
		ws.alloc[rsc] = w
	}
	return w
}

// applyLocations is pcmk__apply_locations for the constraints that name
// primitives or groups.
func (ws *workingSet) applyLocations() {
	for _, c := range ws.constraints {
		loc, ok := c.(*cib.Location)
		if !ok {
			continue
		}
		var targets []*Resource
		switch {
		case loc.Rsc != "":
			// A member of a top-level group takes its own locations.
			if r := ws.byID[loc.Rsc]; r != nil && (r.Parent == nil || r.Parent.isGroup() && r.Parent.Parent == nil) {
				targets = append(targets, r)
			}
		case loc.RscPattern != "":
			// A leading "!" inverts the pattern.
			pattern, invert := strings.CutPrefix(loc.RscPattern, "!")
			re, err := regexp.Compile(pattern)
			if err != nil {
				continue
			}
			for _, r := range ws.resources {
				if r.bundleOf == nil && re.MatchString(r.ID) != invert {
					targets = append(targets, r)
				}
			}
		default:
			for _, s := range loc.Sets {
				for _, id := range s.Resources {
					if r := ws.byID[id]; r != nil && r.Parent == nil {
						targets = append(targets, r)
					}
				}
			}
		}
		if loc.Role == cib.RoleUnpromoted {
			continue
		}
		for _, r := range targets {
			pr := promotionTarget(r)
			if loc.Role == cib.RolePromoted && !pr.promotable {
				continue
			}
			if loc.Node != "" {
				n := ws.nodeByName[loc.Node]
				if n == nil || loc.Score == nil {
					continue
				}
				if loc.Role == cib.RolePromoted {
					pr.promoLoc[n] = addScores(pr.promoLoc[n], int(*loc.Score))
					continue
				}
				ws.locationNode(r, n, int(*loc.Score))
				ws.noteDiscovery(loc, r, n)
				continue
			}
			for _, rule := range loc.Rules {
				if rule.Role == cib.RoleUnpromoted {
					continue
				}
				if loc.Role == cib.RolePromoted || rule.Role == cib.RolePromoted {
					if !pr.promotable {
						continue
					}
					for _, n := range ws.nodes {
						if pass, score := ws.nodeCtx(n).evalRule(rule); pass {
							pr.promoLoc[n] = addScores(pr.promoLoc[n], int(score))
						}
					}
					continue
				}
				for _, n := range ws.nodes {
					pass, score := ws.nodeCtx(n).evalRule(rule)
					if pass {
						ws.locationNode(r, n, int(score))
						ws.noteDiscovery(loc, r, n)
					}
				}
			}
		}
	}
}

// locationNode is pcmk__apply_location for one node: members of a group
// get the score too.
func (ws *workingSet) locationNode(r *Resource, n *Node, score int) {
	if r.isClone() {
		ws.resourceNodeScore(r, n, score)
		return
	}
	for _, p := range r.primitives() {
		w := ws.weightsOf(p)
		if _, ok := w[n]; !ok {
			w[n] = score
		} else {
			w[n] = addScores(w[n], score)
		}
	}
	if r.isGroup() {
		w := ws.weightsOf(r)
		if _, ok := w[n]; !ok {
			w[n] = score
		} else {
			w[n] = addScores(w[n], score)
		}
	}
}

// applyNodeCriteria is apply_node_criteria: symmetric defaults, locations,
// stickiness and migration thresholds.
func (ws *workingSet) applyNodeCriteria() {
	for _, r := range ws.topLevel() {
		ws.weightsOf(r)
		for _, p := range r.primitives() {
			ws.weightsOf(p)
		}
		// A guest's connection may go wherever its container can, even
		// in an asymmetric cluster (remote_connection_default).
		if ws.opts.symmetric || (r.container != nil && r.remoteNode != nil) {
			for _, n := range ws.nodes {
				ws.resourceNodeScore(r, n, 0)
			}
		}
	}
	ws.applyNodeHealth()
	ws.applyLocations()
	ws.applyTickets()
	ws.applyExclusiveDiscovery()
	// An unmanaged resource prefers where it runs absolutely
	// (native_add_running's not_managed_default).
	for _, p := range ws.allPrimitives() {
		if !p.Managed {
			for _, n := range p.RunningOn {
				ws.resourceNodeScore(p, n, inf)
			}
		}
	}
	for _, p := range ws.allPrimitives() {
		if !p.Managed || p.Stickiness < 1 || len(p.RunningOn) != 1 {
			continue
		}
		n := p.RunningOn[0]
		if !ws.opts.symmetric {
			if _, ok := ws.weightsOf(p)[n]; !ok {
				continue
			}
		}
		ws.resourceNodeScore(p, n, int(p.Stickiness))
	}
	for _, n := range ws.nodes {
		for _, p := range ws.allPrimitives() {
			// Ignored failures ignore the threshold too
			// (pcmk__threshold_reached).
			if p.Threshold == 0 || p.failureIgnored {
				continue
			}
			fc := ws.failcount(p, n)
			for _, f := range ws.fillers(p) {
				// A container counts its guest connection's failures
				// (pe_fc_fillers).
				fc = addScores(fc, ws.failcount(f, n))
			}
			if fc > 0 && p.Threshold-fc <= 0 {
				if cl := p.cloneOf(); cl != nil && !cl.unique {
					ws.resourceNodeScore(cl, n, -inf)
					continue
				}
				ws.resourceNodeScore(p, n, -inf)
			}
		}
	}
	for _, b := range ws.bans {
		if b.node != nil {
			ws.resourceNodeScore(b.rsc, b.node, -inf)
			continue
		}
		for _, n := range ws.nodes {
			ws.resourceNodeScore(b.rsc, n, -inf)
		}
	}
	ws.addPromotionScores()
	for k := range ws.stopFailed {
		ws.resourceNodeScore(k.rsc, k.node, -inf)
	}
}

// nodeWeight is the effective weight used when comparing nodes.
func nodeWeight(n *Node, w int) int {
	if !n.available() {
		return -inf
	}
	return w
}

// sortNodes is pcmk__sort_nodes: by weight (unavailable nodes count as
// -INFINITY), then fewer assigned resources, then the preferred node, then
// name.
func sortNodes(w weights, preferred *Node) []*Node {
	return sortNodesStrategy(w, preferred, "")
}

func sortNodesStrategy(w weights, preferred *Node, strategy string) []*Node {
	nodes := make([]*Node, 0, len(w))
	for n := range w {
		nodes = append(nodes, n)
	}
	sort.SliceStable(nodes, func(i, j int) bool {
		return compareNodes(nodes[i], w[nodes[i]], nodes[j], w[nodes[j]], preferred, strategy) < 0
	})
	return nodes
}

func compareNodes(a *Node, aw int, b *Node, bw int, preferred *Node, strategy string) int {
	aw, bw = nodeWeight(a, aw), nodeWeight(b, bw)
	switch {
	case aw > bw:
		return -1
	case aw < bw:
		return 1
	}
	if strategy == "minimal" {
		return strings.Compare(a.Name, b.Name)
	}
	if strategy == "balanced" {
		if c := compareCapacities(a, b); c != 0 {
			return c
		}
	}
	switch {
	case a.numResources < b.numResources:
		return -1
	case a.numResources > b.numResources:
		return 1
	}
	if preferred != nil {
		if a == preferred {
			return -1
		}
		if b == preferred {
			return 1
		}
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// colocation merging flags.
const (
	selectThisWith = 1 << iota
	selectNonnegative
	selectActive
)

// bestScoreMatchingAttr is best_node_score_matching_attr.
func (ws *workingSet) bestScoreMatchingAttr(rsc *Resource, attr, value string, valueOK bool) int {
	best := -inf
	for n, wt := range ws.weightsOf(rsc) {
		v, ok := n.Attrs[attr]
		if wt > best && n.available() && ok == valueOK && v == value {
			best = wt
		}
	}
	return best
}

// addNodeScoresMatchingAttr is add_node_scores_matching_attr.
func (ws *workingSet) addNodeScoresMatchingAttr(w weights, rsc *Resource, attr string, factor float64, onlyPositive bool) {
	if attr == "" {
		attr = "#uname"
	}
	for n, cur := range w {
		v, ok := n.Attrs[attr]
		score := ws.bestScoreMatchingAttr(rsc, attr, v, ok)
		if factor < 0 && score < 0 {
			continue
		}
		if cur == infHack {
			continue
		}
		f := factor * float64(score)
		weight := 0
		if f < 0 {
			weight = int(f - 0.5)
		} else {
			weight = int(f + 0.5)
		}
		if weight == 0 && score != 0 {
			if factor > 0 {
				weight = 1
			} else if factor < 0 {
				weight = -1
			}
		}
		ns := addScores(weight, cur)
		if onlyPositive && ns < 0 && cur > 0 {
			w[n] = infHack
			continue
		}
		if onlyPositive && ns < 0 && cur == 0 {
			continue
		}
		w[n] = ns
	}
}

// addColocatedNodeScores is pcmk__add_colocated_node_scores (and the group
// variant, which merges through the first member).
func (ws *workingSet) addColocatedNodeScores(rsc *Resource, nodes *weights, attr string, factor float64, flags int) {
	if rsc.isGroup() {
		if len(rsc.Children) == 0 || rsc.merging {
			return
		}
		rsc.merging = true
		ws.addColocatedNodeScores(rsc.Children[0], nodes, attr, factor, flags)
		rsc.merging = false
		return
	}
	if rsc.merging {
		return
	}
	rsc.merging = true
	defer func() { rsc.merging = false }()
	var work weights
	if *nodes == nil {
		work = ws.weightsOf(rsc).copy()
	} else {
		work = (*nodes).copy()
		ws.addNodeScoresMatchingAttr(work, rsc, attr, factor, flags&selectNonnegative != 0)
	}
	if work.anyAvailable() {
		var list []*colocation
		if flags&selectThisWith != 0 {
			list = rsc.thisWith
		} else {
			list = rsc.withThis
		}
		for _, c := range list {
			var other *Resource
			if flags&selectThisWith != 0 {
				other = c.primary
			} else if !ws.hasInfluence(c) {
				continue
			} else {
				other = c.dependent
			}
			of := factor * float64(c.score) / float64(inf)
			// 2.1.5 passes the caller's flags on with roll-back
			// (flags|pe_weights_rollback), not only-positive.
			ws.addColocatedNodeScores(other, &work, c.nodeAttr, of, flags|selectActive)
		}
	} else if flags&selectActive != 0 {
		return
	}
	if flags&selectNonnegative != 0 {
		for n, v := range work {
			if v == infHack {
				work[n] = 1
			}
		}
	}
	*nodes = work
}

// hasInfluence is pcmk__colocation_has_influence.
func (ws *workingSet) hasInfluence(c *colocation) bool {
	if d := c.dependent; d.bundleOf != nil && d.remoteNode != nil && !c.influence {
		// A bundle's connection does not move a container active on
		// a node that is up.
		for _, n := range c.primary.RunningOn {
			if n.Online && !n.Unclean {
				return false
			}
		}
		return true
	}
	return c.influence || len(c.primary.RunningOn) == 0 && len(c.primary.primitivesRunning()) == 0
}

func (r *Resource) primitivesRunning() []*Node {
	var out []*Node
	for _, p := range r.primitives() {
		out = append(out, p.RunningOn...)
	}
	return out
}

// priorityOnly: Pacemaker 2.1.5 assigns resources in the order
// unpack_resources leaves them, sorted by priority alone (pe__cmp_rsc_priority);
// the fuller comparison below is what later versions use.
const priorityOnly = true

// sortResources is pcmk__sort_resources (cmp_resources).
func (ws *workingSet) sortResources(list []*Resource) {
	type key struct {
		w    weights
		node *Node
	}
	keys := map[*Resource]key{}
	for _, r := range list {
		var w weights
		ws.addColocatedNodeScores(r, &w, "", 1, selectThisWith)
		var cur *Node
		if r.isGroup() {
			if rn := r.primitivesRunning(); len(rn) > 0 {
				cur = rn[0]
			}
		} else {
			cur = r.current()
		}
		keys[r] = key{w, cur}
	}
	nodes := make([]*Node, len(ws.nodes))
	copy(nodes, ws.nodes)
	zero := weights{}
	for _, n := range nodes {
		zero[n] = 0
	}
	nodes = sortNodes(zero, nil)
	get := func(n *Node, w weights) int {
		if n == nil {
			return -inf
		}
		if v, ok := w[n]; ok {
			return v
		}
		return -inf
	}
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if priorityOnly {
			return false
		}
		ka, kb := keys[a], keys[b]
		wa, wb := get(ka.node, ka.w), get(kb.node, kb.w)
		if wa != wb {
			return wa > wb
		}
		for _, n := range nodes {
			wa, wb = get(n, ka.w), get(n, kb.w)
			if wa != wb {
				return wa > wb
			}
		}
		return false
	})
}

// assign is pcmk__native_allocate / pcmk__group_allocate.
func (ws *workingSet) assign(rsc *Resource) *Node {
	if rsc.bundle != nil {
		if rsc.provisional && !rsc.assigning {
			ws.assignBundle(rsc)
		}
		return nil
	}
	if b := rsc.bundleOf; b != nil && b.provisional && !b.assigning {
		ws.assignBundle(b)
	}
	if rsc.isClone() {
		if rsc.provisional && !rsc.assigning {
			ws.assignClone(rsc)
		}
		return nil
	}
	if rsc.Parent != nil && !rsc.Parent.assigning {
		ws.assign(rsc.Parent)
	}
	if !rsc.provisional {
		return rsc.AssignedTo
	}
	if rsc.assigning {
		return nil
	}
	if rsc.isGroup() {
		rsc.assigning = true
		var first *Node
		for i, c := range rsc.Children {
			n := ws.assign(c)
			if i == 0 {
				first = n
			}
		}
		if len(rsc.Children) > 0 {
			rsc.NextRole = rsc.Children[0].NextRole
		}
		rsc.AssignedTo = first
		rsc.assigning = false
		rsc.provisional = false
		return first
	}
	rsc.assigning = true
	defer func() { rsc.assigning = false }()
	for _, c := range rsc.thisWith {
		var archive weights
		if c.depRole == cib.RolePromoted || (c.score < 0 && c.score > -cib.Infinity) {
			archive = ws.weightsOf(rsc).copy()
		}
		ws.assign(c.primary)
		ws.applyColocation(rsc, c)
		if archive != nil && !ws.weightsOf(rsc).anyAvailable() {
			ws.alloc[rsc] = archive
		}
	}
	for _, c := range rsc.withThis {
		if !ws.hasInfluence(c) {
			continue
		}
		w := ws.weightsOf(rsc)
		ws.addColocatedNodeScores(c.dependent, &w, c.nodeAttr, float64(c.score)/float64(inf), selectActive)
		ws.alloc[rsc] = w
	}
	if rsc.TargetRole == cib.RoleStopped {
		for n := range ws.weightsOf(rsc) {
			ws.weightsOf(rsc)[n] = -inf
		}
		for _, n := range ws.nodes {
			ws.weightsOf(rsc)[n] = -inf
		}
		rsc.NextRole = cib.RoleStopped
	}
	managed := rsc.Managed
	if ws.opts.stonithEnabled && !ws.opts.haveStonithRsc {
		managed = false
		rsc.Managed = false
	}
	switch {
	case !managed:
		rsc.NextRole = rsc.Role
		ws.assignTo(rsc, rsc.current(), true)
	case ws.opts.stopAll:
		ws.assignTo(rsc, nil, true)
	default:
		ws.assignBest(rsc)
	}
	return rsc.AssignedTo
}

// applyColocation is the dependent side of a colocation
// (pcmk__apply_coloc_to_weights), once the primary is assigned.
func (ws *workingSet) applyColocation(dep *Resource, c *colocation) {
	prim := c.primary
	if prim.isClone() {
		ws.applyCloneColocation(dep, c)
		return
	}
	if prim.isGroup() {
		if len(prim.Children) == 0 {
			return
		}
		if c.score >= cib.Infinity {
			prim = prim.Children[len(prim.Children)-1]
		} else {
			prim = prim.Children[0]
		}
	}
	if prim.provisional {
		return
	}
	if c.depRole != cib.RoleUnknown && c.depRole != cib.RoleNone && c.depRole != cib.RoleStarted {
		return
	}
	if c.primRole != cib.RoleUnknown && c.primRole != cib.RoleNone && c.primRole != cib.RoleStarted {
		return
	}
	attr := c.nodeAttr
	if attr == "" {
		attr = "#id"
	}
	score := int(c.score)
	var value string
	var valueOK bool
	if prim.AssignedTo != nil {
		value, valueOK = prim.AssignedTo.Attrs[attr]
	} else if score < 0 {
		return
	}
	work := ws.weightsOf(dep).copy()
	for n, wt := range work {
		if prim.AssignedTo == nil {
			work[n] = addScores(-score, wt)
			continue
		}
		v, ok := n.Attrs[attr]
		if ok == valueOK && v == value {
			if score < inf {
				work[n] = addScores(score, wt)
			}
		} else if score >= inf {
			work[n] = -inf
		}
	}
	if score <= -inf || score >= inf || work.anyAvailable() {
		ws.alloc[dep] = work
	}
}

// assignBest is assign_best_node.
func (ws *workingSet) assignBest(rsc *Resource) {
	w := ws.weightsOf(rsc)
	cur := rsc.current()
	strategy := ws.opts.placement
	if strategy == "default" {
		strategy = ""
	}
	if strategy != "" {
		// pcmk__ban_insufficient_capacity
		for n := range w {
			if !enoughCapacity(n, rsc.Util) {
				w[n] = -inf
			}
		}
	}
	nodes := sortNodesStrategy(w, cur, strategy)
	if len(nodes) == 0 {
		ws.assignTo(rsc, nil, false)
		return
	}
	prefer := rsc.prefer
	if prefer == nil && rsc.Parent != nil && rsc.Parent.isGroup() {
		prefer = rsc.Parent.prefer
	}
	if prefer != nil {
		if v, ok := w[prefer]; ok && nodeWeight(prefer, v) >= nodeWeight(nodes[0], w[nodes[0]]) && prefer.available() {
			ws.assignTo(rsc, prefer, false)
			return
		}
	}
	chosen := nodes[0]
	if cl := rsc.cloneOf(); cl != nil && cl.unique {
		ws.assignTo(rsc, chosen, false)
		return
	}
	if w[chosen] > 0 && chosen.available() && cur != nil && cur.available() && w[cur] >= 0 {
		for _, n := range nodes[1:] {
			if w[n] != w[chosen] {
				break
			}
			if n == cur {
				chosen = n
			}
		}
	}
	ws.assignTo(rsc, chosen, false)
}

// assignTo is pcmk__assign_primitive.
func (ws *workingSet) assignTo(rsc *Resource, n *Node, force bool) {
	if !force && n != nil {
		// The graph may assume that a guest node's connection will
		// come up.
		if ws.weightsOf(rsc)[n] < 0 || (!n.available() && !n.isGuest()) {
			rsc.nextReason = "node availability"
			n = nil
		}
	}
	rsc.provisional = false
	if n == nil {
		rsc.NextRole = cib.RoleStopped
		rsc.AssignedTo = nil
		return
	}
	rsc.AssignedTo = n
	n.numResources++
	for k, v := range rsc.Util {
		n.capacity[k] -= v
	}
	if rsc.NextRole == cib.RoleUnknown || rsc.NextRole == cib.RoleNone {
		rsc.NextRole = cib.RoleStarted
	}
}

// applyNodeHealth is pcmk__apply_node_health: a node's summed #health-*
// attributes become a location score for every resource.
func (ws *workingSet) applyNodeHealth() {
	strategy := ws.props["node-health-strategy"]
	var h cib.HealthScores
	base := 0
	switch strategy {
	case "migrate-on-red":
		h = cib.HealthScores{Red: cib.MinusInfinity}
	case "only-green":
		h = cib.HealthScores{Red: cib.MinusInfinity, Yellow: cib.MinusInfinity}
	case "progressive", "custom":
		h = cib.HealthScores{}
		for name, dst := range map[string]*cib.Score{"node-health-red": &h.Red, "node-health-yellow": &h.Yellow, "node-health-green": &h.Green} {
			if v, ok := ws.props[name]; ok {
				*dst, _ = cib.ParseScore(v)
			} else if name == "node-health-red" {
				*dst = cib.MinusInfinity
			}
		}
		if strategy == "progressive" {
			if v, ok := ws.props["node-health-base"]; ok {
				s, _ := cib.ParseScore(v)
				base = int(s)
			}
		}
	default:
		return
	}
	for _, n := range ws.nodes {
		health := base
		keys := make([]string, 0)
		for k := range n.Attrs {
			if len(k) > 8 && k[:8] == "#health-" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, err := cib.ParseScoreHealth(n.Attrs[k], h)
			if err == nil {
				health = addScores(health, int(s))
			}
		}
		if health == 0 {
			continue
		}
		for _, r := range ws.resources {
			if health < 0 && isTrue(r.Meta["allow-unhealthy-nodes"]) {
				continue
			}
			ws.locationNode(r, n, health)
		}
	}
}

// enoughCapacity is have_enough_capacity: every utilization the resource
// needs fits in what the node has left.
func enoughCapacity(n *Node, need map[string]int) bool {
	for k, v := range need {
		if v > n.capacity[k] {
			return false
		}
	}
	return true
}

// compareCapacities is pcmk__compare_node_capacities: negative when a has
// more free capacity in more dimensions.
func compareCapacities(a, b *Node) int {
	result := 0
	cmp := func(x, y int) {
		if x > y {
			result--
		} else if x < y {
			result++
		}
	}
	for k, v := range a.capacity {
		cmp(v, b.capacity[k])
	}
	for k, v := range b.capacity {
		if _, ok := a.capacity[k]; !ok {
			cmp(0, v)
		}
	}
	return result
}

// ticketState reports whether the status grants the ticket and whether it
// is in standby.
func (ws *workingSet) ticketState(id string) (granted, standby bool) {
	t := ws.cib.Status.Tickets
	if t == nil {
		return false, false
	}
	for _, st := range t.Children {
		if v, _ := st.Attr("id"); v != id {
			continue
		}
		g, _ := st.Attr("granted")
		sb, _ := st.Attr("standby")
		return isTrue(g), isTrue(sb)
	}
	return false, false
}

// applyTickets is rsc_ticket_constraint for tickets that are revoked or in
// standby, applied to each primitive of the resource: the loss policy
// (stop, demote, fence, freeze) while it runs, a ban otherwise (except
// for a Promoted-role dependency without loss-policy=stop, handled at
// promotion).
func (ws *workingSet) applyTickets() {
	for _, c := range ws.constraints {
		tk, ok := c.(*cib.Ticket)
		if !ok {
			continue
		}
		granted, standby := ws.ticketState(tk.Ticket)
		if granted && !standby {
			continue
		}
		type dep struct {
			r    *Resource
			role cib.Role
		}
		var deps []dep
		if r := ws.byID[tk.Rsc]; r != nil && r.Parent == nil {
			deps = append(deps, dep{r, tk.RscRole})
		}
		for _, set := range tk.Sets {
			role := set.Role
			if role == cib.RoleNone {
				role = tk.RscRole
			}
			for _, id := range set.Resources {
				if r := ws.byID[id]; r != nil && r.Parent == nil {
					deps = append(deps, dep{r, role})
				}
			}
		}
		for _, d := range deps {
			ws.ticketDependency(tk, d.r, d.role, granted)
		}
	}
}

// ticketDependency is rsc_ticket_constraint for one resource and role.
func (ws *workingSet) ticketDependency(tk *cib.Ticket, r *Resource, role cib.Role, granted bool) {
	if role == cib.RoleNone {
		role = cib.RoleUnknown
	}
	promotedRole := role == cib.RolePromoted
	ban := func(p *Resource) {
		for _, n := range ws.nodes {
			ws.resourceNodeScore(p, n, -inf)
		}
	}
	filtered := func(p *Resource) bool {
		return role != cib.RoleUnknown && role != p.Role
	}
	if promotedRole && r.promotable {
		r.promoTicketLost = true
	}
	for _, p := range r.primitives() {
		switch {
		case !granted && len(p.RunningOn) > 0:
			switch tk.LossPolicy {
			case "demote":
				if !promotedRole {
					ban(p)
				}
			case "fence":
				if filtered(p) {
					continue
				}
				ban(p)
				for _, n := range p.RunningOn {
					if ws.opts.stonithEnabled {
						ws.fence(n, "deadman ticket was lost")
					}
				}
			case "freeze":
				if filtered(p) {
					continue
				}
				p.Managed = false
			default:
				ban(p)
			}
		case !promotedRole || tk.LossPolicy == "stop" || tk.LossPolicy == "":
			ban(p)
		}
	}
}

// noteDiscovery records the nodes a location constraint with
// resource-discovery=exclusive names for a resource (pcmk__apply_location's
// rsc_discover_mode).
func (ws *workingSet) noteDiscovery(loc *cib.Location, r *Resource, n *Node) {
	if loc.ResourceDiscovery != "exclusive" {
		return
	}
	if ws.exclusive == nil {
		ws.exclusive = map[*Resource]map[*Node]bool{}
	}
	if ws.exclusive[r] == nil {
		ws.exclusive[r] = map[*Node]bool{}
	}
	ws.exclusive[r][n] = true
}

// applyExclusiveDiscovery is apply_exclusive_discovery: a resource with
// exclusive discovery (and everything in it) may run only on the nodes
// its exclusive constraints name.
func (ws *workingSet) applyExclusiveDiscovery() {
	for r, allowed := range ws.exclusive {
		subs := []*Resource{r}
		for i := 0; i < len(subs); i++ {
			subs = append(subs, subs[i].Children...)
		}
		for _, sub := range subs {
			w := ws.weightsOf(sub)
			for n := range w {
				if !allowed[n] {
					w[n] = -inf
				}
			}
		}
	}
}
