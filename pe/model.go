package pe

import (
	"github.com/tachy-ha/tachy/cib"
)

// Score is cib.Score: INFINITY arithmetic lives there.
type Score = cib.Score

// Node is a cluster node as the scheduler sees it after unpacking status.
type Node struct {
	ID, Name    string
	Online      bool
	Unclean     bool // must be fenced before its resources can be recovered
	Pending     bool // joining: cannot run resources yet
	Standby     bool
	Maintenance bool
	Shutdown    bool
	Attrs       map[string]string // node attributes (#uname, #id, configured, transient)

	capacity     map[string]int // remaining utilization capacity
	index        int            // document order
	numResources int            // resources assigned so far (tie-break)
	fenceReason  string

	// Pacemaker Remote (pe/remote.go).
	remoteKind    bool      // a remote or guest node
	remoteRsc     *Resource // its connection resource
	requiresReset bool      // remote_requires_reset
	unseen        bool      // no status seen yet (startup fencing)
	unpacked      bool      // history unpacked
	wasFenced     bool      // node_fenced in its node_state
	late          bool      // created for an orphaned connection, after resources
	shown         *nodeState
}

// available is pcmk__node_available(node, false, false).
func (n *Node) available() bool {
	return n != nil && n.Online && !n.Shutdown && !n.Unclean && !n.Standby && !n.Maintenance
}

// Resource is a primitive or group under scheduling.
type Resource struct {
	ID       string
	Parent   *Resource
	Children []*Resource // group members
	Prim     *cib.Primitive
	Group    *cib.Group
	Clone    *cib.Clone // a clone: Children are its instances

	// Clone settings (on the clone) and instance bookkeeping.
	cloneMax, cloneNodeMax int
	unique                 bool
	interleave             bool
	nextInstance           int           // next instance number
	instCount              map[*Node]int // instances assigned per node (distribute_children)
	baseID                 string        // an anonymous instance's configured id (fail counts)
	requiresFencing        bool
	promotable             bool
	promotedMax            int
	promotedNodeMax        int
	allColoc               bool          // fewer instances than nodes (append_parent_colocation)
	promoLoc               map[*Node]int // role=Promoted location scores
	promoCount             map[*Node]int // promoted instances per node
	histName               string        // the id the history knows an instance by
	// cloneName is Pacemaker's clone_name: the id the history renamed
	// an instance from, kept while the instance is active (or the name
	// has no instance number); it names the instance in the graph.
	cloneName       string
	promoPriority   int // promotion priority (rsc->priority)
	sortIndex       int
	promoTicketLost bool           // a Promoted-role ticket is revoked or in standby
	demoteOnly      bool           // failed with on-fail=demote while promoted
	knownOn         map[*Node]bool // nodes with history of the resource
	// activeRecurring: recurring operations the history shows running
	// (process_recurring), by node and operation key.
	activeRecurring map[*Node]map[string]bool
	blocked         bool // multiply active with multiple-active=block
	failureIgnored  bool // a failure was ignored (on-fail=ignore)
	startPending    bool // the history has a pending start (pe_rsc_start_pending)
	stopUnexpected  bool // multiply active with multiple-active=stop_unexpected

	Meta       map[string]string
	Util       map[string]int
	Priority   int
	Stickiness Score
	Threshold  int // migration-threshold, 0 = never
	Managed    bool
	TargetRole cib.Role
	Critical   bool

	// Current state, from the history.
	Role      cib.Role
	RunningOn []*Node
	Failed    bool
	Orphan    bool
	onFail    map[*Node]string
	pendingOn map[*Node]bool
	// defChanged: nodes where the history shows the definition changed
	// since the resource started there, and the reason to give for the
	// restart (see definitionChanged).
	defChanged map[*Node]string
	// reloadOn: nodes where the agent reloads the changed parameters
	// (schedule_reload); reload: the summary shows the reload.
	reloadOn map[*Node]bool
	reload   bool

	// Assignment.
	provisional bool
	prefer      *Node // a clone instance's current node while pre-assigning
	assigning   bool
	merging     bool
	AssignedTo  *Node
	NextRole    cib.Role
	nextReason  string
	thisWith    []*colocation // rsc is the dependent
	withThis    []*colocation // rsc is the primary

	// Migrating: moving by live migration (migrate_to/migrate_from)
	// rather than stop and start.
	Migrating bool
	// The migration's actions (migration.go): migrateTo is nil for a
	// partial migration continuing (partialTarget: migrate_to already
	// done towards that node); migrationSource is the node left.
	migrateTo, migrateFrom         *Action
	migrationSource, partialTarget *Node
	// partialSource: the node a partial migration started from, which
	// counts as the resource's current node (pe__find_active_on).
	partialSource *Node

	actions []*Action
	index   int
	// notifs: a clone's notified operations (meta notify=true), in the
	// order start, stop, promote, demote (notify.go).
	notifs []*notifyData

	// Pacemaker Remote: the node a connection resource creates, a guest
	// connection's container, and whether it is implicit (not shown).
	remoteNode *Node
	container  *Resource
	internal   bool
	// Bundles (pe/bundle.go): the bundle's replicas, the bundle a
	// replica's IP, connection or inner clone belongs to, and the guest
	// node a replica's inner instance runs on.
	bundle     *bundleData
	bundleOf   *Resource
	bundleNode *Node
	// failCleared: nodes where the fail count is cleared because the
	// last failure was recorded with other parameters.
	failCleared map[*Node]bool
	// forceStop: nodes where the resource must stop (a container whose
	// filler failed), without having failed itself.
	forceStop map[*Node]bool
}

type colocation struct {
	id                 string
	dependent, primary *Resource
	score              Score
	depRole, primRole  cib.Role
	nodeAttr           string
	influence          bool
}

func (r *Resource) current() *Node {
	if r.partialSource != nil {
		return r.partialSource
	}
	if len(r.RunningOn) == 0 {
		return nil
	}
	return r.RunningOn[0]
}

func (r *Resource) isGroup() bool { return r.Group != nil }

func (r *Resource) isClone() bool { return r.Clone != nil }

// top is uber_parent: the top-level resource r belongs to.
func (r *Resource) top() *Resource {
	for r.Parent != nil {
		r = r.Parent
	}
	return r
}

// cloneOf is the clone r is an instance (or an instance's member) of.
func (r *Resource) cloneOf() *Resource {
	for p := r.Parent; p != nil; p = p.Parent {
		if p.isClone() {
			return p
		}
	}
	return nil
}

// primitives lists r (a primitive) or its members (for a clone, its
// instances' primitives).
func (r *Resource) primitives() []*Resource {
	if r.isClone() {
		var out []*Resource
		for _, c := range r.Children {
			out = append(out, c.primitives()...)
		}
		return out
	}
	if r.isGroup() {
		return r.Children
	}
	return []*Resource{r}
}

// groups lists the groups in r: r itself or a clone's group instances.
func (r *Resource) groups() []*Resource {
	if r.isClone() {
		var out []*Resource
		for _, c := range r.Children {
			out = append(out, c.groups()...)
		}
		return out
	}
	if r.isGroup() {
		return []*Resource{r}
	}
	return nil
}
