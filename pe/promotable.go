package pe

import (
	"sort"

	"github.com/tachy-ha/tachy/cib"
)

// unpromotedRoles: an active instance of a promotable clone that is not
// promoted is unpromoted.
func (ws *workingSet) unpromotedRoles() {
	for _, cl := range ws.cloneList {
		if !cl.promotable {
			continue
		}
		for _, p := range cl.primitives() {
			if p.Role == cib.RoleStarted {
				p.Role = cib.RoleUnpromoted
			}
		}
	}
}

// promotionScore is promotion_score: the master-<name> node attribute on
// the instance's node (summed over a group's members), notSet when absent.
func (ws *workingSet) promotionScore(r *Resource, n *Node, notSet int) int {
	if r.isGroup() {
		score := notSet
		for _, c := range r.Children {
			cs := ws.promotionScore(c, n, notSet)
			if score == notSet {
				score = cs
			} else {
				score = addScores(score, cs)
			}
		}
		return score
	}
	if v, ok := ws.weightsOf(r)[n]; !ok || v < 0 {
		return notSet
	}
	names := []string{r.ID}
	if r.histName != "" {
		names = []string{r.histName}
	}
	if cl := r.cloneOf(); cl != nil && !cl.unique && r.baseID != "" {
		names = append(names, r.baseID)
	}
	attrs := nodeAttributes(r, n)
	for _, name := range names {
		for _, prefix := range []string{"master-", "promoted-"} {
			if v, ok := attrs[prefix+name]; ok {
				s, err := cib.ParseScore(v)
				if err != nil {
					return 0
				}
				return int(s)
			}
		}
	}
	return notSet
}

// setInstanceRoles is pcmk__set_instance_roles: instances get a promotion
// priority (promotion score, role=Promoted locations, colocations with a
// role), the clone's node scores merged in (promotion_order), and the best
// promoted-max of them are promoted, at most promoted-node-max per node.
func (ws *workingSet) setInstanceRoles(cl *Resource) {
	for n := range cl.promoCount {
		delete(cl.promoCount, n)
	}
	for _, inst := range cl.Children {
		chosen := instanceNode(inst, false)
		if chosen == nil {
			inst.promoPriority = -inf
			inst.sortIndex = -inf
			continue
		}
		next := inst.NextRole
		if inst.isGroup() && len(inst.Children) > 0 {
			next = inst.Children[0].NextRole
		}
		switch {
		case !inst.Managed && inst.maxRole() == cib.RolePromoted:
			inst.promoPriority = inf
		case inst.TargetRole == cib.RoleUnpromoted || next == cib.RoleStopped || inst.demoteOnlyDeep():
			inst.promoPriority = -inf
		default:
			inst.promoPriority = ws.promotionScore(inst, chosen, -1)
		}
		if v, ok := cl.promoLoc[chosen]; ok {
			inst.promoPriority = addScores(v, inst.promoPriority)
		}
		for _, c := range cl.thisWith {
			if c.depRole != cib.RolePromoted && c.depRole != cib.RoleUnpromoted {
				continue
			}
			if !(cl.allColoc || c.score < 0 || c.score == cib.Infinity) {
				continue
			}
			ws.colocationPriority(inst, chosen, c)
		}
		inst.sortIndex = inst.promoPriority
	}
	order := ws.promotionOrder(cl)
	promoted := 0
	for _, inst := range order {
		chosen := instanceNode(inst, false)
		if inst.sortIndex >= 0 && (promoted < cl.promotedMax || !cl.Managed) && ws.canPromote(cl, inst) {
			cl.promoCount[chosen]++
			promoted++
			inst.setNextRole(cib.RolePromoted)
		} else if chosen != nil {
			inst.setNextRole(cib.RoleUnpromoted)
		}
	}
}

func (r *Resource) maxRole() cib.Role {
	role := r.Role
	for _, p := range r.primitives() {
		if roleLess(role, p.Role) {
			role = p.Role
		}
	}
	return role
}

func (r *Resource) setNextRole(role cib.Role) {
	r.NextRole = role
	for _, c := range r.Children {
		if c.AssignedTo != nil {
			c.NextRole = role
		}
	}
}

// colocationPriority applies a colocation with a role whose dependent is
// this promotable clone to an instance's promotion priority
// (pcmk__apply_coloc_to_priority, promotable_colocation_rh).
func (ws *workingSet) colocationPriority(inst *Resource, chosen *Node, c *colocation) {
	prim := c.primary
	if prim.isClone() && prim.promotable && c.depRole == cib.RolePromoted {
		var pinst *Resource
		for _, pi := range prim.Children {
			if instanceNode(pi, false) == chosen && (c.primRole == cib.RoleNone || c.primRole == cib.RoleUnknown || c.primRole == cib.RoleStarted || pi.NextRole == c.primRole) {
				pinst = pi
				break
			}
		}
		switch {
		case pinst == nil && c.score >= cib.Infinity:
			inst.promoPriority = -inf
		case pinst != nil:
			inst.promoPriority = addScores(inst.promoPriority, int(c.score))
		}
		return
	}
	if prim.isClone() {
		return
	}
	pn := prim.AssignedTo
	if prim.isGroup() && len(prim.Children) > 0 {
		pn = prim.Children[0].AssignedTo
	}
	if pn == nil {
		return
	}
	attr := c.nodeAttr
	if attr == "" {
		attr = "#id"
	}
	if chosen.Attrs[attr] != pn.Attrs[attr] {
		if c.score >= cib.Infinity && c.depRole == cib.RolePromoted {
			inst.promoPriority = -inf
		}
		return
	}
	if c.primRole != cib.RoleNone && c.primRole != cib.RoleUnknown && c.primRole != prim.NextRole {
		return
	}
	mult := 1
	if c.depRole == cib.RoleUnpromoted {
		mult = -1
	}
	inst.promoPriority = addScores(mult*int(c.score), inst.promoPriority)
}

// promotionOrder is promotion_order: instance priorities are added to the
// clone's node scores, colocations with the promoted role merged in, and
// the instances sorted by the result.
func (ws *workingSet) promotionOrder(cl *Resource) []*Resource {
	w := ws.weightsOf(cl)
	for _, inst := range cl.Children {
		chosen := instanceNode(inst, false)
		if chosen == nil || inst.sortIndex < 0 {
			continue
		}
		w[chosen] = addScores(inst.sortIndex, w[chosen])
	}
	for _, c := range cl.thisWith {
		if c.depRole != cib.RolePromoted {
			continue
		}
		flags := 0
		if c.score != cib.Infinity {
			flags = selectActive
		}
		ws.addColocatedNodeScores(c.primary, &w, c.nodeAttr, float64(c.score)/float64(inf), flags)
	}
	for _, c := range cl.withThis {
		if !ws.hasInfluence(c) || c.primRole != cib.RolePromoted {
			continue
		}
		ws.addColocatedNodeScores(c.dependent, &w, c.nodeAttr, float64(c.score)/float64(inf), selectActive|selectNonnegative)
	}
	if cl.promoTicketLost {
		for n := range w {
			w[n] = -inf
		}
	}
	ws.alloc[cl] = w
	for _, inst := range cl.Children {
		chosen := instanceNode(inst, false)
		switch {
		case !inst.Managed && inst.maxRole() == cib.RolePromoted:
			inst.sortIndex = inf
		case chosen == nil || inst.sortIndex < 0:
		default:
			inst.sortIndex = w[chosen]
		}
	}
	tmp := make([]*Resource, len(cl.Children))
	copy(tmp, cl.Children)
	ws.sortInstances(cl, tmp)
	base := map[*Resource]int{}
	for i, r := range tmp {
		base[r] = i
	}
	order := make([]*Resource, len(cl.Children))
	copy(order, cl.Children)
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.sortIndex != b.sortIndex {
			return a.sortIndex > b.sortIndex
		}
		ra, rb := roleRank[a.maxRole()], roleRank[b.maxRole()]
		if ra != rb {
			return ra > rb
		}
		return base[a] < base[b]
	})
	return order
}

// canPromote is node_to_be_promoted_on.
func (ws *workingSet) canPromote(cl, inst *Resource) bool {
	for _, c := range inst.Children {
		if c.AssignedTo == nil {
			return false
		}
	}
	n := instanceNode(inst, false)
	if n == nil {
		return false
	}
	if !inst.Managed {
		if inst.maxRole() != cib.RolePromoted {
			return false
		}
	} else if inst.promoPriority < 0 {
		return false
	} else if !n.available() || (n.isGuest() && n.remoteRsc.container.AssignedTo == nil) {
		// pcmk__node_available with consider_guest: a guest whose
		// container will not run cannot promote.
		return false
	}
	if _, ok := ws.weightsOf(cl)[n]; !ok {
		return false
	}
	return cl.promoCount[n] < cl.promotedNodeMax || !inst.Managed
}

// applyPromotableColocation is the first branch of
// promotable_colocation_rh: a dependent colocated with a role of a
// promotable clone goes where instances have that role.
func (ws *workingSet) applyPromotableColocation(dep *Resource, c *colocation) {
	prim := c.primary
	affected := map[*Node]bool{}
	w := ws.weightsOf(dep)
	for _, inst := range prim.Children {
		chosen := instanceNode(inst, false)
		if chosen == nil || inst.NextRole != c.primRole {
			continue
		}
		if c.score < cib.Infinity {
			if v, ok := w[chosen]; ok {
				w[chosen] = addScores(v, int(c.score))
			}
		}
		affected[chosen] = true
	}
	if c.score >= cib.Infinity && !(c.depRole == cib.RolePromoted && c.primRole == cib.RolePromoted) {
		for n := range w {
			if !affected[n] {
				w[n] = -inf
			}
		}
	}
}

// promotableActions adds an instance's promote and demote actions
// (native_create_actions for roles).
func (ws *workingSet) promotableActions(r *Resource) {
	cl := r.cloneOf()
	if cl == nil || !cl.promotable {
		return
	}
	next := r.AssignedTo
	cur := r.current()
	if r.Role == cib.RolePromoted && cur != nil {
		stop := r.find("stop", cur)
		need := r.NextRole != cib.RolePromoted || next != cur || (stop != nil && !stop.Optional)
		d := ws.newAction(r, "demote", cur, !need)
		if !r.Managed {
			d.Optional, d.Runnable = true, false
		}
		if cur.Unclean {
			d.Pseudo = true
		} else if !ws.guestActionRunnable(cur) {
			d.Runnable = false
		}
		if stop != nil {
			ws.order(d, stop, OrderOptional|OrderImpliesFirst)
		}
	}
	if r.NextRole == cib.RolePromoted && next != nil {
		start := r.find("start", next)
		already := r.Role == cib.RolePromoted && cur == next
		p := ws.newAction(r, "promote", next, already && (start == nil || start.Optional))
		if start != nil {
			p.Runnable = start.Runnable
			kind := OrderOptional | OrderRunnableLeft
			if already {
				kind |= OrderImpliesThen
			}
			ws.order(start, p, kind)
		}
		if d := r.find("demote", nil); d != nil {
			ws.order(d, p, OrderOptional)
		}
		if !r.Managed {
			p.Optional = true
		}
	}
}

// promotablePseudo adds the clone's promote/promoted/demote/demoted
// pseudo-actions and orders them (promotable_create_actions,
// promotable_constraints).
func (ws *workingSet) promotablePseudo(cl *Resource) {
	anyPromoting, anyDemoting := false, false
	for _, p := range cl.primitives() {
		for _, a := range p.actions {
			if a.Task == "promote" && !a.Optional && a.Runnable {
				anyPromoting = true
			}
			if a.Task == "demote" && !a.Optional {
				anyDemoting = true
			}
		}
	}
	var acts []*Action
	for _, t := range []string{"promote", "promoted"} {
		a := ws.newAction(cl, t, nil, !anyPromoting)
		a.Pseudo = true
		if t == "promoted" {
			a.Priority = InfinityPriority
		}
		acts = append(acts, a)
	}
	promoteNotify := ws.notifyPseudoOps(cl, "promote", acts[0], acts[1])
	for _, t := range []string{"demote", "demoted"} {
		a := ws.newAction(cl, t, nil, !anyDemoting)
		a.Pseudo = true
		if t == "demoted" {
			a.Priority = InfinityPriority
		}
		acts = append(acts, a)
	}
	demoteNotify := ws.notifyPseudoOps(cl, "demote", acts[2], acts[3])
	if promoteNotify != nil && len(cl.notifs) == 2 {
		// pcmk__create_promotable_actions
		startNotify, stopNotify := cl.notifs[0], cl.notifs[1]
		ws.order(stopNotify.postDone, promoteNotify.pre, OrderOptional)
		ws.order(startNotify.postDone, promoteNotify.pre, OrderOptional)
		ws.order(demoteNotify.postDone, promoteNotify.pre, OrderOptional)
		ws.order(demoteNotify.postDone, startNotify.pre, OrderOptional)
		ws.order(demoteNotify.postDone, stopNotify.pre, OrderOptional)
		cl.notifs = append(cl.notifs, promoteNotify, demoteNotify)
	}
}

func (ws *workingSet) promotableOrderings(cl *Resource) {
	f := func(t string) *Action { return cl.find(t, nil) }
	ws.order(f("stopped"), f("promote"), OrderOptional)
	ws.order(f("demoted"), f("start"), OrderOptional)
	ws.order(f("running"), f("promote"), OrderOptional|OrderRunnableLeft)
	ws.order(f("demoted"), f("stop"), OrderOptional)
	ws.order(f("demote"), f("demoted"), OrderOptional)
	ws.order(f("promote"), f("promoted"), OrderOptional)
	ws.order(f("demoted"), f("promote"), OrderOptional)
	for _, inst := range cl.Children {
		for _, a := range thenActions(inst, "promote") {
			ws.order(f("promote"), a, OrderOptional|OrderRunnableLeft)
			ws.order(a, f("promoted"), OrderOptional)
		}
		for _, a := range thenActions(inst, "demote") {
			ws.order(f("demote"), a, OrderOptional)
			ws.order(a, f("demoted"), OrderOptional)
		}
	}
}

func (r *Resource) demoteOnlyDeep() bool {
	for _, p := range r.primitives() {
		if p.demoteOnly && !guestReset(p) {
			return true
		}
	}
	return false
}

// guestReset: p runs on a guest node whose container is recovered, which
// restarts p whatever its failure asked for.
func guestReset(p *Resource) bool {
	for _, n := range p.RunningOn {
		if n.isGuest() && n.requiresReset {
			return true
		}
	}
	return false
}

// addPromotionScores is pcmk__add_promotion_scores: positive promotion
// scores count as location preferences of the instances, on available
// nodes (only for the instance active there, if any, and only where an
// instance with history has been seen).
func (ws *workingSet) addPromotionScores() {
	for _, cl := range ws.cloneList {
		if !cl.promotable {
			continue
		}
		for _, inst := range cl.Children {
			w := ws.weightsOf(inst)
			for _, n := range ws.nodes {
				if _, ok := w[n]; !ok || !n.available() {
					continue
				}
				if !ws.promotionCandidate(cl, inst, n) {
					continue
				}
				if score := ws.promotionScore(inst, n, 0); score > 0 {
					ws.resourceNodeScore(inst, n, score)
				}
			}
		}
	}
}

// promotionCandidate is filter_anonymous_instance and the known_on test
// of promotion_score.
func (ws *workingSet) promotionCandidate(cl, inst *Resource, n *Node) bool {
	if !cl.unique {
		for _, other := range cl.Children {
			if on := other.primitivesRunning(); len(on) > 0 && on[0] == n {
				return other == inst
			}
		}
	}
	known := false
	for _, p := range inst.primitives() {
		if len(p.RunningOn) > 0 || len(p.knownOn) > 0 {
			known = true
		}
	}
	if !known {
		return true
	}
	for _, p := range inst.primitives() {
		if p.knownOn[n] {
			return true
		}
		for _, r := range p.RunningOn {
			if r == n {
				return true
			}
		}
	}
	return false
}
