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
	cib *cib.CIB
	// constraints are the CIB's with template and tag references expanded
	// (expandReferences); the scheduler reads these, not the CIB's.
	constraints []cib.Constraint
	fillersOf   map[*Resource][]*Resource // container -> its fillers (fillers)
	now         time.Time
	opts        options
	props       map[string]string

	nodes      []*Node
	nodeByName map[string]*Node
	nodeByID   map[string]*Node
	states     map[*Node]*cib.NodeState
	stateIndex map[string]*cib.NodeState // by id, and "uname:" + name

	resources   []*Resource // top level: primitives and groups
	byID        map[string]*Resource
	unsupported map[string]bool
	orphans     map[string]*Resource
	orphanList  []*Resource
	stopFailed  map[stopKey]bool
	bans        []stopKey // hard failures: rsc banned from node (nil: all nodes)
	cloneList   []*Resource
	alloc       map[*Resource]weights
	exclusive   map[*Resource]map[*Node]bool // resource-discovery=exclusive nodes

	actions      []*Action
	edges        []*Edge
	remoteFenced []*Node // remote nodes in the order they were found unclean
	unfencing    bool    // some device provides unfencing (pe_flag_enable_unfencing)
	sanitized    bool    // see Options
}

// Result is a transition: actions, their ordering, and the summary.
type Result struct {
	Nodes     []*Node
	Resources []*Resource // in the order they were assigned
	Actions   []*Action
	Edges     []*Edge
	summary   []string
	ws        *workingSet // for AgentParams
}

// Options adjust a scheduler run.
type Options struct {
	// Sanitized: the CIB may have had secrets masked (as crm_simulate
	// assumes, pe_flag_sanitized), so a definition change that leaves the
	// digest of the non-secret parameters intact is not one.
	Sanitized bool
}

// Schedule computes the transition for c at time now. It does no I/O and
// returns the same result for the same input.
func Schedule(c *cib.CIB, now time.Time) (*Result, error) {
	return ScheduleWith(c, now, Options{})
}

// Simulation is how crm_simulate schedules a CIB file: at the CIB's
// execution-date (else now), treating it as sanitized. tachy simulate, the
// conformance test and the benchmark all schedule this way.
func Simulation(c *cib.CIB) (*Result, time.Time, error) {
	now := SimulationTime(c)
	res, err := ScheduleWith(c, now, Options{Sanitized: true})
	return res, now, err
}

// SimulationTime is the "now" crm_simulate uses for a CIB: its
// execution-date, else the current time.
func SimulationTime(c *cib.CIB) time.Time {
	if c.ExecutionDate == 0 {
		return time.Now().UTC()
	}
	return time.Unix(c.ExecutionDate, 0).UTC()
}

// ScheduleWith is Schedule with options.
func ScheduleWith(c *cib.CIB, now time.Time, o Options) (*Result, error) {
	if c == nil {
		return nil, fmt.Errorf("pe: nil CIB")
	}
	ws := &workingSet{
		cib: c, now: now, sanitized: o.Sanitized,
		nodeByName:  map[string]*Node{},
		nodeByID:    map[string]*Node{},
		states:      map[*Node]*cib.NodeState{},
		byID:        map[string]*Resource{},
		unsupported: map[string]bool{},
		orphans:     map[string]*Resource{},
		stopFailed:  map[stopKey]bool{},
		alloc:       map[*Resource]weights{},
	}
	ws.constraints = expandReferences(c)
	ws.unpackOptions()
	ws.unpackNodes()
	ws.createRemoteNodes()
	ws.unpackResources()
	ws.linkRemoteNodes()
	ws.setupContainers()
	ws.unpackStatus()
	ws.unpackPartialMigrations()
	ws.unpromotedRoles()
	ws.checkOfflineActive()
	ws.multipleActive()
	for _, n := range ws.nodes {
		n.shown = &nodeState{online: n.Online, unclean: n.Unclean}
	}
	ws.unpackColocations()
	ws.containerColocations()
	ws.bundleColocations()
	ws.applyNodeCriteria()
	ws.bundleNodeWeights()
	ws.avoidRemoteNodes()

	order := ws.topLevel()
	ws.sortResources(order)
	// Connections first: where they run decides which remote nodes are
	// up (allocate_resources).
	for _, r := range order {
		if r.remoteNode != nil && r.bundleOf == nil {
			ws.assign(r)
		}
	}
	for _, conn := range ws.remoteConnections() {
		if conn.bundleOf == nil {
			ws.connectionAssigned(conn)
		}
	}
	for _, r := range order {
		ws.assign(r)
	}
	for _, o := range ws.orphanList {
		o.provisional = false
		o.NextRole = cib.RoleStopped
	}
	all := append(order, ws.orphanList...)
	ws.scheduleUnfencing()
	ws.fenceUnreachableRemotes()
	ws.createFencing()
	for _, r := range all {
		ws.createActions(r)
	}
	ws.orderRemoteActions()
	ws.fenceRemoteNodes()
	ws.orderAfterUnfencing()
	ws.blockStartsBehindProbes()
	ws.createProbes()
	ws.internalOrderings(all)
	ws.containerOrderings()
	ws.unpackOrders()
	ws.blockMigrations()
	ws.propagate()
	ws.createMigrations(all)
	ws.createNotifications()
	ws.graphNames()

	res := &Result{Nodes: ws.nodes, Resources: all, Actions: ws.actions, Edges: ws.edges, ws: ws}
	res.summary = ws.summarise(all)
	return res, nil
}

// AgentParams are the parameters the agent of resource rsc gets for an
// action on node, as the scheduler's op-digest sees them: instance
// attribute sets whose rules pass on that node at the scheduling time
// (node attributes, dates), by score, then the group's and the clone's,
// then the start operation's. ok is false when the scheduler cannot know
// them exactly (templates, id-references) or knows no such resource or
// node; the caller then uses the rule-free attributes.
func (r *Result) AgentParams(rsc, node string) (params map[string]string, ok bool) {
	if r == nil || r.ws == nil {
		return nil, false
	}
	res, n := r.ws.byID[rsc], r.ws.nodeByName[node]
	if res == nil && !strings.Contains(rsc, ":") {
		res = r.ws.byID[rsc+":0"] // an anonymous clone's instances share their parameters
	}
	if res == nil || n == nil || res.Prim == nil {
		return nil, false
	}
	params, ok = r.ws.startParams(res, n)
	if !ok {
		return nil, false
	}
	for k := range params {
		if strings.HasPrefix(k, "CRM_meta_") {
			delete(params, k) // the digest's; agents get meta attributes apart
		}
	}
	return params, true
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
			ws.offlineActive(p, n)
		}
	}
}

// offlineActive is process_rsc_state for a managed resource active on a
// node that is down: the node is fenced (a guest by recovering its
// container, whether fencing is enabled or not).
func (ws *workingSet) offlineActive(p *Resource, n *Node) {
	if n.Online || n.Maintenance || !p.Managed {
		return
	}
	switch {
	case n.isGuest():
		// Fenced by recovering the container, fencing or not.
		p.Failed = true
		ws.fence(n, p.ID+" is thought to be active there")
	case !ws.opts.stonithEnabled:
	case n.isRemote() && n.remoteRsc != nil && !n.remoteRsc.Failed:
		// Revoked if the connection comes back elsewhere.
		n.unseen = true
		ws.fence(n, p.ID+" is active there (fencing will be revoked if remote connection can be re-established elsewhere)")
	case !n.Unclean || n.isRemote():
		ws.fence(n, p.ID+" is thought to be active there")
	}
}

func (ws *workingSet) unpackColocations() {
	for _, c := range ws.constraints {
		col, ok := c.(*cib.Colocation)
		if !ok || col.Score == nil {
			continue
		}
		if len(col.Sets) > 0 {
			ws.unpackColocationSets(col)
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
	if b, ok := parseBool(influence); ok {
		// An invalid value keeps the default.
		c.influence = b
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
