// Package cib is the Cluster Information Base: the configuration and the
// recorded state of the cluster, as Pacemaker's CIB holds them. The model is
// plain data with no I/O, so that it can be replicated, snapshotted and fed
// to the policy engine (package pe) unchanged. Import and Export convert it
// from and to Pacemaker CIB XML.
//
// The model keeps what Pacemaker 2.1.5's scheduler reads, typed where the
// value has one meaning, and keeps every attribute it does not interpret in
// an Extra map (and every element it does not interpret as an XMLElement), so
// that an imported CIB exports with nothing lost.
package cib

import "time"

// CIB is one whole snapshot: what the scheduler takes as input.
type CIB struct {
	Epoch, NumUpdates, AdminEpoch int // version triple: orders updates
	ValidateWith                  string
	CRMFeatureSet                 string
	HaveQuorum                    bool   // the scheduler acts only with quorum (subject to no-quorum-policy)
	DCUUID                        string // node id of the DC
	// ExecutionDate is the "now" crm_simulate uses (seconds since the
	// epoch); 0 when absent.
	ExecutionDate int64
	Extra         map[string]string // cib-last-written, update-origin, ...

	Configuration Configuration
	Status        Status
}

// Configuration is what the administrator wrote.
type Configuration struct {
	CRMConfig   []*NVSet // cluster_property_set: cluster options
	Nodes       []*Node
	Resources   []Resource   // in document order, which breaks ties in placement
	Constraints []Constraint // in document order, which the scheduler follows
	RscDefaults []*NVSet     // meta_attributes sets, possibly with rules
	OpDefaults  []*NVSet
	// Other holds sections the scheduler does not read (alerts, acls,
	// fencing-topology, tags), verbatim.
	Other []*XMLElement
}

// NVSet is a set of name/value pairs (instance_attributes, meta_attributes,
// utilization, cluster_property_set). Sets are applied in order of
// decreasing score, and only when their rules pass, which is why both are
// kept rather than a flat map.
type NVSet struct {
	ID    string
	IDRef string // reuses the set with this id instead of defining one
	Score *Score
	Rules []*Rule // the set applies if any rule passes
	Pairs []*NVPair
	Extra map[string]string
}

// NVPair is one name/value pair.
type NVPair struct {
	ID, IDRef string
	Name      string
	// Value is meaningful only when HasValue: Pacemaker skips a pair with
	// no value, and "#default" removes an earlier one.
	Value    string
	HasValue bool
	Extra    map[string]string
}

// Node is a cluster node as configured.
type Node struct {
	ID, Uname          string
	Type               string // "member" (default), "remote", or legacy "normal"/"ping"
	Description        string
	InstanceAttributes []*NVSet // node attributes (standby, custom attributes used by rules)
	Utilization        []*NVSet
	Extra              map[string]string
}

// Resource is one of *Primitive, *Group, *Clone, *Bundle or *Template.
type Resource interface {
	ResourceID() string
}

// Primitive is a single resource run by an agent.
type Primitive struct {
	ID                 string
	Class              string // ocf, lsb, systemd, service, stonith, ...
	Provider           string // required for ocf
	Type               string
	Template           string // id of a template this primitive inherits from
	Description        string
	InstanceAttributes []*NVSet // agent parameters (their digests detect changes)
	MetaAttributes     []*NVSet
	Utilization        []*NVSet
	Operations         *Operations
	Extra              map[string]string
}

// Template is a resource template (rsc_template in newer schemas): a
// primitive that only lends its definition to others.
type Template Primitive

// Operations is a primitive's operation list; it can borrow another's by
// IDRef.
type Operations struct {
	ID, IDRef string
	Ops       []*Op
	Extra     map[string]string
}

// Op is a configured operation: its interval is part of the key under which
// the history records it, and its timeout, role and on-fail drive recovery.
type Op struct {
	ID       string
	Name     string // start, stop, monitor, promote, ...
	Interval time.Duration
	// Timeout is kept as written: Pacemaker uses the default timeout when
	// it cannot parse it. See TimeoutDuration.
	Timeout            string
	Role               Role
	OnFail             string
	Description        string
	InstanceAttributes []*NVSet
	MetaAttributes     []*NVSet
	Extra              map[string]string // start-delay, enabled, interval-origin, record-pending, requires, ...
}

// TimeoutDuration is the op's timeout, and false when it is absent or
// unparseable (Pacemaker then uses the default).
func (o *Op) TimeoutDuration() (time.Duration, bool) {
	if o.Timeout == "" {
		return 0, false
	}
	ms, err := ParseMsec(o.Timeout)
	if err != nil {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// Group is an ordered, colocated list of primitives.
type Group struct {
	ID                 string
	Description        string
	MetaAttributes     []*NVSet
	InstanceAttributes []*NVSet // inherited by the members
	Utilization        []*NVSet
	Children           []*Primitive
	Extra              map[string]string
}

// Clone runs copies of a primitive or group on several nodes.
type Clone struct {
	ID                 string
	Description        string
	MetaAttributes     []*NVSet
	InstanceAttributes []*NVSet
	Utilization        []*NVSet
	// Promotable is true for the legacy <master> element (imported with a
	// promotable=true meta attribute added, as Pacemaker's schema upgrade
	// does) and for clones whose rule-free meta attributes say
	// promotable=true.
	Promotable bool
	Child      Resource // *Primitive or *Group
	Extra      map[string]string
}

// Bundle is a containerised resource. Only its id, meta attributes and
// inner primitive are interpreted; the container, network and storage
// definitions are kept verbatim in Parts.
type Bundle struct {
	ID             string
	Description    string
	MetaAttributes []*NVSet
	Primitive      *Primitive
	Parts          []*XMLElement // docker/podman/rkt, network, storage, in order
	Extra          map[string]string
}

// ResourceID implements Resource.
func (r *Primitive) ResourceID() string { return r.ID }

// ResourceID implements Resource.
func (r *Template) ResourceID() string { return r.ID }

// ResourceID implements Resource.
func (r *Group) ResourceID() string { return r.ID }

// ResourceID implements Resource.
func (r *Clone) ResourceID() string { return r.ID }

// ResourceID implements Resource.
func (r *Bundle) ResourceID() string { return r.ID }

// Container returns the bundle's container element (docker, podman or rkt).
func (r *Bundle) Container() *XMLElement {
	for _, p := range r.Parts {
		switch p.Name {
		case "docker", "podman", "rkt":
			return p
		}
	}
	return nil
}

// Role is a resource role. The legacy names Master and Slave are imported as
// Promoted and Unpromoted, as Pacemaker 2.1 treats them.
type Role string

// Roles.
const (
	RoleNone       Role = ""
	RoleUnknown    Role = "Unknown"
	RoleStopped    Role = "Stopped"
	RoleStarted    Role = "Started"
	RoleUnpromoted Role = "Unpromoted"
	RolePromoted   Role = "Promoted"
)

// Rule is a condition on node attributes, dates, operations or resources,
// as used in location constraints and attribute sets.
type Rule struct {
	ID, IDRef      string
	Score          *Score
	ScoreAttribute string
	BooleanOp      string // "and" (default) or "or"
	Role           Role
	Conditions     []Condition // in document order
	Extra          map[string]string
}

// Condition is one of *Expression, *DateExpression, *OpExpression,
// *RscExpression or *Rule (nested).
type Condition interface {
	conditionID() string
}

// Expression compares a node attribute.
type Expression struct {
	ID, IDRef   string
	Attribute   string
	Operation   string // lt, gt, lte, gte, eq, ne, defined, not_defined
	Value       string
	HasValue    bool
	Type        string // string, integer, number, version
	ValueSource string // literal, param, meta
	Extra       map[string]string
}

// DateExpression tests the current time.
type DateExpression struct {
	ID         string
	Operation  string // in_range, gt, lt, date_spec
	Start, End string // ISO 8601, as written
	DateSpec   *XMLElement
	Duration   *XMLElement
	Extra      map[string]string
}

// OpExpression matches an operation name and interval (op defaults).
type OpExpression struct {
	ID       string
	Name     string
	Interval string
	Extra    map[string]string
}

// RscExpression matches a resource's agent (rsc defaults).
type RscExpression struct {
	ID                    string
	Class, Provider, Type string
	Extra                 map[string]string
}

func (r *Rule) conditionID() string           { return r.ID }
func (e *Expression) conditionID() string     { return e.ID }
func (e *DateExpression) conditionID() string { return e.ID }
func (e *OpExpression) conditionID() string   { return e.ID }
func (e *RscExpression) conditionID() string  { return e.ID }

// Constraint is one of *Location, *Colocation, *Order or *Ticket.
type Constraint interface {
	ConstraintID() string
}

// Location prefers or bans nodes for a resource: by node name and score, or
// by rules.
type Location struct {
	ID                string
	Rsc               string
	RscPattern        string // regular expression over resource ids
	Node              string
	Score             *Score
	Role              Role
	ResourceDiscovery string // always, never, exclusive
	Rules             []*Rule
	Sets              []*ResourceSet
	Extra             map[string]string
}

// Colocation places a resource relative to another.
type Colocation struct {
	ID            string
	Rsc, WithRsc  string
	Score         *Score
	RscRole       Role
	WithRscRole   Role
	NodeAttribute string
	Sets          []*ResourceSet
	Extra         map[string]string // influence, rsc-instance, ...
}

// Order orders actions of two resources.
type Order struct {
	ID                      string
	First, Then             string
	FirstAction, ThenAction string // start, stop, promote, demote
	Kind                    string // Mandatory, Optional, Serialize; "" when absent
	Score                   *Score // legacy form of kind
	Symmetrical             *bool
	RequireAll              *bool
	Sets                    []*ResourceSet
	Extra                   map[string]string
}

// Ticket ties resources to a multi-site ticket.
type Ticket struct {
	ID         string
	Rsc        string
	RscRole    Role
	Ticket     string
	LossPolicy string // stop, demote, fence, freeze
	Sets       []*ResourceSet
	Extra      map[string]string
}

// ResourceSet is a set of resources in a set-based constraint.
type ResourceSet struct {
	ID, IDRef  string
	Sequential *bool
	RequireAll *bool
	Ordering   string
	Action     string
	Role       Role
	Score      *Score
	Kind       string
	Resources  []string // resource_ref ids, in order
	Extra      map[string]string
}

// ConstraintID implements Constraint.
func (c *Location) ConstraintID() string { return c.ID }

// ConstraintID implements Constraint.
func (c *Colocation) ConstraintID() string { return c.ID }

// ConstraintID implements Constraint.
func (c *Order) ConstraintID() string { return c.ID }

// ConstraintID implements Constraint.
func (c *Ticket) ConstraintID() string { return c.ID }

// Status is what the cluster recorded: node membership, node attributes
// and the history of every operation, from which the scheduler derives the
// current state.
type Status struct {
	NodeStates []*NodeState
	Tickets    *XMLElement   // ticket states, verbatim
	Other      []*XMLElement // anything else under status, verbatim
}

// NodeState is one node's membership and history. The membership fields
// are kept as written because Pacemaker versions differ in what they
// store there (booleans or timestamps).
type NodeState struct {
	ID, Uname      string
	InCCM          string
	Crmd           string
	Join           string
	Expected       string
	CrmDebugOrigin string
	// Transient holds the transient_attributes sets (failcounts
	// fail-count-RSC#op_INTERVAL, last-failure-..., master scores, ...).
	TransientID string
	Transient   []*NVSet
	LRM         *LRM
	Extra       map[string]string // remote_node, shutdown, node_fenced, ...
}

// LRM is a node's operation history.
type LRM struct {
	ID          string
	ResourcesID string
	HasRscList  bool // whether <lrm_resources> was present
	Resources   []*LRMResource
	Extra       map[string]string
}

// LRMResource is the history of one resource on one node.
type LRMResource struct {
	ID, Type, Class, Provider string
	Container                 string
	Ops                       []*LRMRscOp
	Extra                     map[string]string
}

// LRMRscOp is one recorded operation result: the scheduler reads all of
// these to decide what is running where, what failed, and whether the
// definition changed since (digests).
type LRMRscOp struct {
	ID              string
	OperationKey    string
	Operation       string
	CallID          int
	RCCode          int
	OpStatus        int
	Interval        time.Duration // recorded in milliseconds
	LastRCChange    *int64
	LastRun         *int64
	ExecTime        *int64
	QueueTime       *int64
	OpDigest        string
	OpRestartDigest string
	OpForceRestart  string
	OpSecureParams  string
	OpSecureDigest  string
	TransitionKey   string
	TransitionMagic string
	OnNode          string
	ExitReason      string
	CRMFeatureSet   string
	CrmDebugOrigin  string
	MigrateSource   string
	MigrateTarget   string
	Extra           map[string]string // anything else, e.g. legacy last_rc_change
}
