package cib

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ChangeOp names what a Change does.
type ChangeOp string

const (
	// OpReplaceConfiguration replaces the configuration section with the
	// one in XML (a whole <cib> document: its status is ignored); the
	// status is kept. Bumps epoch.
	OpReplaceConfiguration ChangeOp = "replace-configuration"
	// OpSetProperty sets (or with a nil Value deletes) a cluster option in
	// the cib-bootstrap-options set. Bumps epoch.
	OpSetProperty ChangeOp = "set-property"
	// OpEnsureNode adds a cluster node (Node = its name, NodeID = its id)
	// to the configuration's nodes unless it is there; the DC does this
	// for every member, as Pacemaker's controller does when a node joins.
	// Bumps epoch only when it adds.
	OpEnsureNode ChangeOp = "ensure-node"
	// OpSetQuorum records whether the DC's partition has quorum (Value
	// "1" or "0"), the CIB's have-quorum. Bumps num_updates.
	OpSetQuorum ChangeOp = "set-quorum"
	// OpNodeMembership records a node's membership as the DC sees it
	// (in_ccm, crmd, join, expected). Bumps num_updates.
	OpNodeMembership ChangeOp = "node-membership"
	// OpNodeFenced records a successful fencing of Node: it is down and
	// expected down, its operation history and transient attributes are
	// gone (nothing runs on a fenced node), as Pacemaker's controller
	// records it. Bumps num_updates.
	OpNodeFenced ChangeOp = "node-fenced"
	// OpEraseHistory forgets what a node's history records: a daemon
	// that starts knows nothing of what runs on its node, so the DC
	// probes it (Pacemaker erases a joining node's history too). With
	// KeepFromCallID, entries of that call id and later stay: they are
	// the starting daemon's own results, which the DC may have recorded
	// before the erase arrives. Bumps num_updates.
	OpEraseHistory ChangeOp = "erase-history"
	// OpSetNodeAttribute sets (or deletes) a transient node attribute in
	// the status: fail counts, last-failure, promotion scores. Bumps
	// num_updates.
	OpSetNodeAttribute ChangeOp = "set-node-attribute"
	// OpIncrementNodeAttribute adds one to a transient node attribute
	// (a fail count) where it is applied, so that concurrent increments
	// are not lost (attrd's value++). INFINITY stays INFINITY.
	OpIncrementNodeAttribute ChangeOp = "increment-node-attribute"
	// OpRecordOperation records an operation result in the node's history,
	// replacing the entry with the same id, unless that entry has a higher
	// call id: a node's call ids grow, across its daemon's runs too
	// (state_dir/callid), so that one is the newer result, and this one
	// arrived late (a record retried while there was no DC). Then nothing
	// changes. Bumps num_updates.
	OpRecordOperation ChangeOp = "record-operation"
	// OpDeleteHistory forgets a resource's history on a node (all of it,
	// or the entries named in OpIDs): resource cleanup, cancelled
	// recurring operations. Bumps num_updates.
	OpDeleteHistory ChangeOp = "delete-history"
	// OpRecordFencing appends Fencing to the fencing history (the
	// tachy_fencing_history section of the status, the newest
	// FencingHistoryMax entries), which tachy status shows as crm_mon
	// shows the fencer's. Bumps num_updates.
	OpRecordFencing ChangeOp = "record-fencing"
	// OpSetStatusSection replaces the status section named Name with XML,
	// or removes it when XML is empty. Only the sections without a change
	// of their own may be set this way (StatusSections: the fast path's
	// contingency plans). Kept verbatim, a section survives snapshots.
	OpSetStatusSection ChangeOp = "set-status-section"
	// OpBatch applies the changes in Batch in order, as one change: all
	// of them or none, so that no reader (the DC planning) sees a state
	// between them. Batches do not nest.
	OpBatch ChangeOp = "batch"
)

// Change is one update to the CIB as the DC, the CLI or lrmd submit it and
// the Raft log carries it. Apply is deterministic: every node that applies
// the same changes in the same order holds the same CIB.
type Change struct {
	Op         ChangeOp       `json:"op"`
	XML        string         `json:"xml,omitempty"`
	Node       string         `json:"node,omitempty"` // node name (uname)
	NodeID     string         `json:"node_id,omitempty"`
	Name       string         `json:"name,omitempty"`
	Value      *string        `json:"value,omitempty"`
	Membership *Membership    `json:"membership,omitempty"`
	Resource   string         `json:"resource,omitempty"`
	Operation  *LRMRscOp      `json:"operation,omitempty"`
	OpIDs      []string       `json:"op_ids,omitempty"`
	Agent      *AgentSource   `json:"agent,omitempty"` // class/provider/type of a history not yet recorded
	Fencing    *FencingRecord `json:"fencing,omitempty"`
	// KeepFromCallID: see OpEraseHistory.
	KeepFromCallID int `json:"keep_from_call_id,omitempty"`
	// Batch: see OpBatch.
	Batch []*Change `json:"batch,omitempty"`
	// ExpectEpoch makes a configuration change conditional: it applies
	// only if the CIB's epoch is still this one, so that a tool that read
	// the configuration, edited it and writes it back loses no one
	// else's change (it gets ErrEpochChanged and retries).
	ExpectEpoch *int `json:"expect_epoch,omitempty"`
}

// ErrEpochChanged: the configuration changed since the change's author
// read it.
var ErrEpochChanged = errors.New("the configuration changed meanwhile")

// Membership is a node_state's membership fields.
type Membership struct {
	InCCM, Crmd, Join, Expected string
}

// AgentSource names a resource's agent, as lrm_resource records it.
type AgentSource struct {
	Class, Provider, Type string
}

// changeVersion is the encoding's version: a node that reads a newer one
// refuses it instead of misapplying it.
const changeVersion = 1

type changeEnvelope struct {
	V      int     `json:"v"`
	Change *Change `json:"change"`
}

// EncodeChange is the Raft log's encoding of a change.
func EncodeChange(ch *Change) ([]byte, error) {
	return json.Marshal(changeEnvelope{V: changeVersion, Change: ch})
}

// DecodeChange reverses EncodeChange.
func DecodeChange(data []byte) (*Change, error) {
	var env changeEnvelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("cib change: %w", err)
	}
	if env.V != changeVersion {
		return nil, fmt.Errorf("cib change: encoding version %d; this tachy reads version %d: upgrade it", env.V, changeVersion)
	}
	if env.Change == nil {
		return nil, fmt.Errorf("cib change: empty")
	}
	return env.Change, nil
}

// Apply returns the CIB with ch applied, leaving c untouched (the parts ch
// does not change are shared, so a reader holding c is never disturbed).
// An invalid change returns an error and no CIB: nothing partial.
func (c *CIB) Apply(ch *Change) (*CIB, error) {
	if ch == nil {
		return nil, fmt.Errorf("cib: nil change")
	}
	if ch.ExpectEpoch != nil && *ch.ExpectEpoch != c.Epoch {
		return nil, fmt.Errorf("cib: %w (epoch %d, expected %d): read it again and retry", ErrEpochChanged, c.Epoch, *ch.ExpectEpoch)
	}
	next := *c
	switch ch.Op {
	case OpReplaceConfiguration:
		doc, err := Import(strings.NewReader(ch.XML))
		if err != nil {
			return nil, err
		}
		next.Configuration = doc.Configuration
		next.Configuration.Nodes = keepMemberNodes(c, doc.Configuration.Nodes)
		next.Epoch, next.NumUpdates = c.Epoch+1, 0
	case OpSetProperty:
		if ch.Name == "" {
			return nil, fmt.Errorf("cib: set-property needs a property name")
		}
		next.Configuration.CRMConfig = setPair(c.Configuration.CRMConfig, "cib-bootstrap-options", ch.Name, ch.Value)
		next.Epoch, next.NumUpdates = c.Epoch+1, 0
	case OpEnsureNode:
		if ch.Node == "" || ch.NodeID == "" {
			return nil, fmt.Errorf("cib: ensure-node needs a node name and id")
		}
		for _, n := range c.Configuration.Nodes {
			switch {
			case n.Uname == ch.Node && n.ID == ch.NodeID:
				return c, nil // already there: no new version
			case n.Uname == ch.Node || n.ID == ch.NodeID:
				return nil, fmt.Errorf("cib: node %s (id %s) conflicts with the configured node %s (id %s): fix the nodes section", ch.Node, ch.NodeID, n.Uname, n.ID)
			}
		}
		next.Configuration.Nodes = append(slices.Clip(c.Configuration.Nodes), &Node{ID: ch.NodeID, Uname: ch.Node})
		next.Epoch, next.NumUpdates = c.Epoch+1, 0
	case OpSetQuorum:
		if ch.Value == nil || (*ch.Value != "1" && *ch.Value != "0") {
			return nil, fmt.Errorf(`cib: set-quorum needs the value "1" or "0"`)
		}
		next.HaveQuorum = *ch.Value == "1"
		next.NumUpdates = c.NumUpdates + 1
	case OpNodeMembership:
		if ch.Membership == nil {
			return nil, fmt.Errorf("cib: node-membership for %q needs the membership fields", ch.Node)
		}
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		m := ch.Membership
		st.InCCM, st.Crmd, st.Join, st.Expected = m.InCCM, m.Crmd, m.Join, m.Expected
		next.NumUpdates = c.NumUpdates + 1
	case OpNodeFenced:
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		st.InCCM, st.Crmd, st.Join, st.Expected = "false", "offline", "down", "down"
		st.Transient, st.TransientID = nil, ""
		if st.LRM != nil {
			lrm := *st.LRM
			lrm.Resources = nil
			st.LRM = &lrm
		}
		next.NumUpdates = c.NumUpdates + 1
	case OpEraseHistory:
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		if st.LRM != nil {
			lrm := *st.LRM
			lrm.Resources = nil
			if ch.KeepFromCallID > 0 {
				for _, lr := range st.LRM.Resources {
					var keep []*LRMRscOp
					for _, op := range lr.Ops {
						if op.CallID >= ch.KeepFromCallID {
							keep = append(keep, op)
						}
					}
					if len(keep) > 0 {
						r := *lr
						r.Ops = keep
						lrm.Resources = append(lrm.Resources, &r)
					}
				}
			}
			st.LRM = &lrm
		}
		next.NumUpdates = c.NumUpdates + 1
	case OpSetNodeAttribute:
		if ch.Name == "" {
			return nil, fmt.Errorf("cib: set-node-attribute on %q needs an attribute name", ch.Node)
		}
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		if st.TransientID == "" {
			st.TransientID = st.ID
		}
		st.Transient = setPair(st.Transient, "status-"+st.ID, ch.Name, ch.Value)
		next.NumUpdates = c.NumUpdates + 1
	case OpIncrementNodeAttribute:
		if ch.Name == "" {
			return nil, fmt.Errorf("cib: increment-node-attribute on %q needs an attribute name", ch.Node)
		}
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		v := "1"
		for _, set := range st.Transient {
			for _, p := range set.Pairs {
				if p.Name == ch.Name && p.HasValue {
					cur, err := ParseScore(p.Value)
					if err != nil {
						cur = 0
					}
					v = cur.Add(1).String()
				}
			}
		}
		if st.TransientID == "" {
			st.TransientID = st.ID
		}
		st.Transient = setPair(st.Transient, "status-"+st.ID, ch.Name, &v)
		next.NumUpdates = c.NumUpdates + 1
	case OpRecordOperation:
		if ch.Resource == "" || ch.Operation == nil || ch.Operation.ID == "" || ch.Operation.Operation == "" {
			return nil, fmt.Errorf("cib: record-operation needs a resource and an operation with an id and a name")
		}
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		lr, err := next.editHistory(st, ch.Resource, ch.Agent)
		if err != nil {
			return nil, err
		}
		op := *ch.Operation
		if i := slices.IndexFunc(lr.Ops, func(o *LRMRscOp) bool { return o.ID == op.ID }); i >= 0 {
			if old := lr.Ops[i]; old.CallID > 0 && op.CallID > 0 && old.CallID > op.CallID {
				return c, nil // a late result: the entry holds a newer one
			}
			lr.Ops[i] = &op
		} else {
			lr.Ops = append(lr.Ops, &op)
		}
		next.NumUpdates = c.NumUpdates + 1
	case OpRecordFencing:
		f := ch.Fencing
		if f == nil || f.Target == "" || f.Action == "" || !validName(f.Action) {
			return nil, fmt.Errorf("cib: record-fencing needs a target and an action")
		}
		next.Status.Other = withFencing(c.Status.Other, f)
		next.NumUpdates = c.NumUpdates + 1
	case OpSetStatusSection:
		if !StatusSections[ch.Name] {
			return nil, fmt.Errorf("cib: set-status-section: %q is not a section it may set (%v)", ch.Name, slices.Sorted(maps.Keys(StatusSections)))
		}
		var sec *XMLElement
		if ch.XML != "" {
			n, err := parseTree(strings.NewReader(ch.XML))
			if err != nil {
				return nil, fmt.Errorf("cib: set-status-section %s: %w", ch.Name, err)
			}
			if sec = n.raw(); sec.Name != ch.Name {
				return nil, fmt.Errorf("cib: set-status-section %s: the XML is a <%s>", ch.Name, sec.Name)
			}
		}
		other := slices.DeleteFunc(slices.Clone(c.Status.Other), func(e *XMLElement) bool { return e.Name == ch.Name })
		if sec != nil {
			other = append(other, sec)
		}
		if len(other) == 0 {
			other = nil // as an import of the exported CIB has it
		}
		next.Status.Other = slices.Clip(other)
		next.NumUpdates = c.NumUpdates + 1
	case OpDeleteHistory:
		st, err := next.editNodeState(ch.Node)
		if err != nil {
			return nil, err
		}
		if st.LRM == nil {
			break
		}
		lrm := *st.LRM
		st.LRM = &lrm
		i := slices.IndexFunc(lrm.Resources, func(r *LRMResource) bool { return r.ID == ch.Resource })
		if i < 0 {
			break
		}
		lrm.Resources = slices.Clone(lrm.Resources)
		if len(ch.OpIDs) == 0 {
			lrm.Resources = slices.Clip(slices.Delete(lrm.Resources, i, i+1))
		} else {
			lr := *lrm.Resources[i]
			lr.Ops = slices.DeleteFunc(slices.Clone(lr.Ops), func(o *LRMRscOp) bool { return slices.Contains(ch.OpIDs, o.ID) })
			if len(lr.Ops) == 0 {
				lr.Ops = nil // as an import of the exported history has it
			}
			lrm.Resources[i] = &lr
		}
		if len(lrm.Resources) == 0 {
			lrm.Resources = nil
		}
		next.NumUpdates = c.NumUpdates + 1
	case OpBatch:
		if len(ch.Batch) == 0 {
			return nil, fmt.Errorf("cib: an empty batch")
		}
		cur := c
		for _, b := range ch.Batch {
			if b == nil || b.Op == OpBatch {
				return nil, fmt.Errorf("cib: a batch holds changes, not batches")
			}
			n, err := cur.Apply(b)
			if err != nil {
				return nil, err
			}
			cur = n
		}
		return cur, nil
	default:
		return nil, fmt.Errorf("cib: unknown change %q", ch.Op)
	}
	return &next, nil
}

// keepMemberNodes returns the new configuration's nodes plus the current
// ones it lacks that the status shows as cluster members: membership, not
// an imported file, decides which nodes exist (Pacemaker's controller adds
// nodes as they join), so importing a file written elsewhere keeps them.
func keepMemberNodes(c *CIB, nodes []*Node) []*Node {
	have := map[string]bool{}
	for _, n := range nodes {
		have[n.ID] = true
	}
	member := map[string]bool{}
	for _, st := range c.Status.NodeStates {
		if st.InCCM == "true" {
			member[st.ID] = true
		}
	}
	out := slices.Clip(nodes)
	for _, n := range c.Configuration.Nodes {
		if !have[n.ID] && member[n.ID] {
			out = append(out, n)
		}
	}
	return out
}

// editNodeState makes c's status private (copied slice) and returns a copy
// of the named node's state, created if the node has none yet.
func (c *CIB) editNodeState(name string) (*NodeState, error) {
	var cfg *Node
	for _, n := range c.Configuration.Nodes {
		if n.Uname == name {
			cfg = n
		}
	}
	states := slices.Clone(c.Status.NodeStates)
	c.Status.NodeStates = states
	for i, st := range states {
		if st.Uname == name || (cfg != nil && st.ID == cfg.ID) {
			cp := *st
			states[i] = &cp
			return &cp, nil
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("cib: no node %q in the configuration: add it before recording its state", name)
	}
	st := &NodeState{ID: cfg.ID, Uname: cfg.Uname}
	c.Status.NodeStates = append(states, st)
	return st, nil
}

// editHistory returns a private copy of the resource's history on st,
// creating it (with the agent from the configuration or from agent).
func (c *CIB) editHistory(st *NodeState, rsc string, agent *AgentSource) (*LRMResource, error) {
	lrm := &LRM{ID: st.ID, HasRscList: true}
	if st.LRM != nil {
		cp := *st.LRM
		lrm = &cp
	}
	st.LRM = lrm
	lrm.Resources = slices.Clone(lrm.Resources)
	for i, r := range lrm.Resources {
		if r.ID == rsc {
			cp := *r
			cp.Ops = slices.Clone(r.Ops)
			lrm.Resources[i] = &cp
			return &cp, nil
		}
	}
	src := agent
	if p := c.FindPrimitive(rsc); p != nil {
		src = &AgentSource{Class: p.Class, Provider: p.Provider, Type: p.Type}
	}
	if src == nil {
		return nil, fmt.Errorf("cib: resource %q is not configured and the change names no agent: cannot record its history", rsc)
	}
	lr := &LRMResource{ID: rsc, Class: src.Class, Provider: src.Provider, Type: src.Type}
	lrm.Resources = append(lrm.Resources, lr)
	return lr, nil
}

// FindPrimitive finds a configured primitive by id, including group
// members and clone children; an anonymous clone instance "rsc:N" is its
// primitive "rsc".
func (c *CIB) FindPrimitive(id string) *Primitive {
	base, _, _ := strings.Cut(id, ":")
	var found *Primitive
	var walk func(r Resource)
	walk = func(r Resource) {
		switch r := r.(type) {
		case *Primitive:
			if r.ID == id || r.ID == base {
				found = r
			}
		case *Group:
			for _, p := range r.Children {
				walk(p)
			}
		case *Clone:
			walk(r.Child)
		case *Bundle:
			if r.Primitive != nil {
				walk(r.Primitive)
			}
		}
	}
	for _, r := range c.Configuration.Resources {
		walk(r)
	}
	return found
}

// setPair returns sets with name set to value (or removed for nil) in the
// set with id setID, which is created if needed. Only that set is copied.
func setPair(sets []*NVSet, setID, name string, value *string) []*NVSet {
	sets = slices.Clone(sets)
	i := slices.IndexFunc(sets, func(s *NVSet) bool { return s.ID == setID })
	var set NVSet
	if i >= 0 {
		set = *sets[i]
	} else {
		set = NVSet{ID: setID}
	}
	set.Pairs = slices.Clone(set.Pairs)
	j := slices.IndexFunc(set.Pairs, func(p *NVPair) bool { return p.Name == name })
	switch {
	case value == nil && j >= 0:
		set.Pairs = slices.Delete(set.Pairs, j, j+1)
	case value == nil:
	case j >= 0:
		p := *set.Pairs[j]
		p.Value, p.HasValue = *value, true
		set.Pairs[j] = &p
	default:
		set.Pairs = append(set.Pairs, &NVPair{ID: setID + "-" + name, Name: name, Value: *value, HasValue: true})
	}
	if i >= 0 {
		sets[i] = &set
	} else {
		sets = append(sets, &set)
	}
	return sets
}

// StatusSections are the status sections set-status-section may set.
var StatusSections = map[string]bool{"tachy_fast_plans": true}

// StatusSection returns the status section with the given element name
// (see OpSetStatusSection), or nil.
func (c *CIB) StatusSection(name string) *XMLElement {
	for _, e := range c.Status.Other {
		if e.Name == name {
			return e
		}
	}
	return nil
}
