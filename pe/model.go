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

	// Assignment.
	provisional bool
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

	actions []*Action
	index   int
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
	if len(r.RunningOn) == 0 {
		return nil
	}
	return r.RunningOn[0]
}

func (r *Resource) isGroup() bool { return r.Group != nil }

// primitives lists r (a primitive) or its members.
func (r *Resource) primitives() []*Resource {
	if r.isGroup() {
		return r.Children
	}
	return []*Resource{r}
}
