package pe

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

type stopKey struct {
	rsc  *Resource
	node *Node
}

// workingSet is one scheduler run (pe_working_set_t).
type workingSet struct {
	cib   *cib.CIB
	now   time.Time
	opts  options
	props map[string]string

	nodes      []*Node
	nodeByName map[string]*Node
	nodeByID   map[string]*Node
	states     map[*Node]*cib.NodeState

	resources   []*Resource // top level: primitives and groups
	byID        map[string]*Resource
	unsupported map[string]bool
	orphans     map[string]*Resource
	orphanList  []*Resource
	stopFailed  map[stopKey]bool
	bans        []stopKey // hard failures: rsc banned from node (nil: all nodes)
	cloneList   []*Resource
	alloc       map[*Resource]weights

	actions []*Action
	edges   []*Edge
}

// Result is a transition: actions, their ordering, and the summary.
type Result struct {
	Nodes     []*Node
	Resources []*Resource // in the order they were assigned
	Actions   []*Action
	Edges     []*Edge
	summary   []string
}

// Schedule computes the transition for c at time now. It does no I/O and
// returns the same result for the same input.
func Schedule(c *cib.CIB, now time.Time) (*Result, error) {
	if c == nil {
		return nil, fmt.Errorf("pe: nil CIB")
	}
	ws := &workingSet{
		cib: c, now: now,
		nodeByName:  map[string]*Node{},
		nodeByID:    map[string]*Node{},
		states:      map[*Node]*cib.NodeState{},
		byID:        map[string]*Resource{},
		unsupported: map[string]bool{},
		orphans:     map[string]*Resource{},
		stopFailed:  map[stopKey]bool{},
		alloc:       map[*Resource]weights{},
	}
	ws.unpackOptions()
	ws.unpackNodes()
	ws.unpackResources()
	ws.unpackStatus()
	ws.unpromotedRoles()
	ws.checkOfflineActive()
	ws.unpackColocations()
	ws.applyNodeCriteria()

	order := ws.topLevel()
	ws.sortResources(order)
	for _, r := range order {
		ws.assign(r)
	}
	for _, o := range ws.orphanList {
		o.provisional = false
		o.NextRole = cib.RoleStopped
	}
	all := append(order, ws.orphanList...)
	ws.createFencing()
	for _, r := range all {
		ws.createActions(r)
	}
	ws.internalOrderings(all)
	ws.unpackOrders()
	ws.blockMigrations()
	ws.propagate()

	res := &Result{Nodes: ws.nodes, Resources: all, Actions: ws.actions, Edges: ws.edges}
	res.summary = ws.summarise(all)
	return res, nil
}

func (ws *workingSet) topLevel() []*Resource {
	out := make([]*Resource, len(ws.resources))
	copy(out, ws.resources)
	return out
}

func (ws *workingSet) allPrimitives() []*Resource {
	var out []*Resource
	for _, r := range ws.resources {
		out = append(out, r.primitives()...)
	}
	return out
}

// checkOfflineActive fences offline nodes that history says run a managed
// resource (process_rsc_state), when fencing is enabled.
func (ws *workingSet) checkOfflineActive() {
	for _, p := range append(ws.allPrimitives(), ws.orphanList...) {
		for _, n := range p.RunningOn {
			if !n.Online && !n.Unclean && !n.Maintenance && p.Managed && ws.opts.stonithEnabled {
				ws.fence(n, p.ID+" is thought to be active there")
			}
		}
	}
}

func (ws *workingSet) unpackColocations() {
	for _, c := range ws.cib.Configuration.Constraints {
		col, ok := c.(*cib.Colocation)
		if !ok || len(col.Sets) > 0 || col.Score == nil {
			continue
		}
		dep, prim := ws.byID[col.Rsc], ws.byID[col.WithRsc]
		if dep == nil || prim == nil || dep.Parent != nil || prim.Parent != nil {
			continue
		}
		ws.addColocation(col.ID, dep, prim, *col.Score, col.RscRole, col.WithRscRole, col.NodeAttribute, col.Extra["influence"])
	}
	// Group members are colocated with the previous member.
	var groups []*Resource
	for _, r := range ws.resources {
		groups = append(groups, r.groups()...)
	}
	for _, g := range groups {
		if g.Meta["collocated"] == "false" {
			continue
		}
		for i := 1; i < len(g.Children); i++ {
			ws.addColocation(g.ID+"-internal", g.Children[i], g.Children[i-1], cib.Infinity, "", "", "", "")
		}
	}
}

func (ws *workingSet) addColocation(id string, dep, prim *Resource, score Score, depRole, primRole cib.Role, attr, influence string) {
	if score == 0 {
		return
	}
	c := &colocation{id: id, dependent: dep, primary: prim, score: score, depRole: depRole, primRole: primRole, nodeAttr: attr}
	c.influence = dep.Critical
	if influence != "" {
		c.influence = isTrue(influence)
	}
	d := dep
	if d.isGroup() && len(d.Children) > 0 {
		d = d.Children[0]
	}
	p := prim
	if p.isGroup() && len(p.Children) > 0 {
		p = p.Children[len(p.Children)-1]
	}
	// Keep lists sorted as Pacemaker does (cmp_primary_priority,
	// cmp_dependent_priority): by the other resource's priority, then
	// clones before groups before primitives, promotable clones first,
	// then by id.
	d.thisWith = append(d.thisWith, c)
	p.withThis = append(p.withThis, c)
	if dep.isGroup() {
		dep.thisWith = append(dep.thisWith, c)
	}
	if prim.isGroup() {
		prim.withThis = append(prim.withThis, c)
	}
	sort.SliceStable(d.thisWith, func(i, j int) bool { return colocationBefore(d.thisWith[i].primary, d.thisWith[j].primary) })
	sort.SliceStable(p.withThis, func(i, j int) bool { return colocationBefore(p.withThis[i].dependent, p.withThis[j].dependent) })
}

// colocationBefore orders two colocations by their other resources a and
// b: higher priority first, then clones, groups, primitives, promotable
// clones before others, then by id.
func colocationBefore(a, b *Resource) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	variant := func(r *Resource) int {
		switch {
		case r.isClone():
			return 2
		case r.isGroup():
			return 1
		}
		return 0
	}
	if va, vb := variant(a), variant(b); va != vb {
		return va > vb
	}
	if a.isClone() && a.promotable != b.promotable {
		return a.promotable
	}
	return a.ID < b.ID
}

// Summary returns the Transition Summary lines as crm_simulate prints them.
func (r *Result) Summary() []string {
	out := make([]string, len(r.summary))
	copy(out, r.summary)
	return out
}

// String formats the summary under its heading.
func (r *Result) String() string {
	var b strings.Builder
	b.WriteString("Transition Summary:\n")
	for _, l := range r.summary {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
