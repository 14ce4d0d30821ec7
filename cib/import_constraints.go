package cib

import "fmt"

var actions = []string{"start", "stop", "promote", "demote"}

func (im *importer) constraints(n *node, c *Configuration) error {
	e := im.open(n)
	for _, ch := range n.children {
		var (
			con Constraint
			err error
		)
		switch ch.name {
		case "rsc_location":
			con, err = im.location(ch)
		case "rsc_colocation":
			con, err = im.colocation(ch)
		case "rsc_order":
			con, err = im.order(ch)
		case "rsc_ticket":
			con, err = im.ticket(ch)
		default:
			return e.unexpected(ch)
		}
		if err != nil {
			return err
		}
		c.Constraints = append(c.Constraints, con)
	}
	return nil
}

// ref checks that attribute name, if set, names a resource, template or
// tag.
func (im *importer) ref(e *el, name string, required bool) (string, error) {
	v, ok := e.opt(name)
	if !ok || v == "" {
		if required {
			return "", e.errf("missing required attribute %q", name)
		}
		return "", nil
	}
	if !im.targets[v] {
		return "", e.errf("%s %q is not a resource", name, v)
	}
	return v, nil
}

// constraintHead reads the id and the resource sets of a constraint, and
// returns the element's remaining non-set children.
func (im *importer) constraintHead(n *node) (*el, []*ResourceSet, []*node, error) {
	e := im.open(n)
	if _, err := e.req("id"); err != nil {
		return nil, nil, nil, err
	}
	if err := im.define(e); err != nil {
		return nil, nil, nil, err
	}
	var sets []*ResourceSet
	var rest []*node
	for _, ch := range n.children {
		if ch.name != "resource_set" {
			rest = append(rest, ch)
			continue
		}
		s, err := im.resourceSet(ch)
		if err != nil {
			return nil, nil, nil, err
		}
		sets = append(sets, s)
	}
	return e, sets, rest, nil
}

func (im *importer) resourceSet(n *node) (*ResourceSet, error) {
	e := im.open(n)
	s := &ResourceSet{ID: e.str("id"), IDRef: e.str("id-ref")}
	if s.ID == "" && s.IDRef == "" {
		return nil, e.errf("needs an id or an id-ref")
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	var err error
	if s.Sequential, err = e.boolp("sequential"); err != nil {
		return nil, err
	}
	if s.RequireAll, err = e.boolp("require-all"); err != nil {
		return nil, err
	}
	if s.Ordering, err = e.enum("ordering", "group", "listed"); err != nil {
		return nil, err
	}
	if s.Action, err = e.enum("action", actions...); err != nil {
		return nil, err
	}
	if s.Role, err = e.role("role"); err != nil {
		return nil, err
	}
	if s.Score, err = e.score("score", im.health); err != nil {
		return nil, err
	}
	if s.Kind, err = e.enum("kind", "Mandatory", "Optional", "Serialize"); err != nil {
		return nil, err
	}
	for _, ch := range n.children {
		if ch.name != "resource_ref" {
			return nil, e.unexpected(ch)
		}
		re := im.open(ch)
		id, err := re.req("id")
		if err != nil {
			return nil, err
		}
		if !im.targets[id] {
			return nil, e.errf("resource_ref %q is not a resource", id)
		}
		if x := re.extra(); x != nil {
			return nil, re.errf("unexpected attributes")
		}
		s.Resources = append(s.Resources, id)
	}
	s.Extra = e.extra()
	return s, nil
}

func (im *importer) location(n *node) (*Location, error) {
	e, sets, rest, err := im.constraintHead(n)
	if err != nil {
		return nil, err
	}
	l := &Location{ID: e.id, Sets: sets, RscPattern: e.str("rsc-pattern"), Node: e.str("node")}
	if l.Rsc, err = im.ref(e, "rsc", false); err != nil {
		return nil, err
	}
	switch {
	case l.Rsc != "" && l.RscPattern != "":
		return nil, e.errf("has both rsc and rsc-pattern")
	case l.Rsc == "" && l.RscPattern == "" && len(sets) == 0:
		return nil, e.errf("needs rsc, rsc-pattern or a resource_set")
	case (l.Rsc != "" || l.RscPattern != "") && len(sets) > 0:
		return nil, e.errf("has both a resource and resource sets")
	}
	if l.Score, err = e.score("score", im.health); err != nil {
		return nil, err
	}
	if l.Role, err = e.role("role"); err != nil {
		return nil, err
	}
	if l.ResourceDiscovery, err = e.enum("resource-discovery", "always", "never", "exclusive"); err != nil {
		return nil, err
	}
	for _, ch := range rest {
		if ch.name != "rule" {
			return nil, e.unexpected(ch)
		}
		r, err := im.rule(ch)
		if err != nil {
			return nil, err
		}
		l.Rules = append(l.Rules, r)
	}
	switch {
	case l.Node != "" && l.Score == nil:
		return nil, e.errf("node %q needs a score", l.Node)
	case l.Node != "" && len(l.Rules) > 0:
		return nil, e.errf("has both a node and rules")
	case l.Node == "" && len(l.Rules) == 0:
		return nil, e.errf("needs a node and score, or rules")
	}
	l.Extra = e.extra()
	return l, nil
}

func (im *importer) colocation(n *node) (*Colocation, error) {
	e, sets, rest, err := im.constraintHead(n)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, e.unexpected(rest[0])
	}
	c := &Colocation{ID: e.id, Sets: sets, NodeAttribute: e.str("node-attribute")}
	if len(sets) == 0 {
		if c.Rsc, err = im.ref(e, "rsc", true); err != nil {
			return nil, err
		}
		if c.WithRsc, err = im.ref(e, "with-rsc", true); err != nil {
			return nil, err
		}
	} else if _, ok := n.attr("rsc"); ok {
		return nil, e.errf("has both rsc and resource sets")
	}
	if c.Score, err = e.score("score", im.health); err != nil {
		return nil, err
	}
	if c.RscRole, err = e.role("rsc-role"); err != nil {
		return nil, err
	}
	if c.WithRscRole, err = e.role("with-rsc-role"); err != nil {
		return nil, err
	}
	c.Extra = e.extra()
	return c, nil
}

func (im *importer) order(n *node) (*Order, error) {
	e, sets, rest, err := im.constraintHead(n)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, e.unexpected(rest[0])
	}
	o := &Order{ID: e.id, Sets: sets}
	if len(sets) == 0 {
		if o.First, err = im.ref(e, "first", true); err != nil {
			return nil, err
		}
		if o.Then, err = im.ref(e, "then", true); err != nil {
			return nil, err
		}
	} else if _, ok := n.attr("first"); ok {
		return nil, e.errf("has both first and resource sets")
	}
	if o.FirstAction, err = e.enum("first-action", actions...); err != nil {
		return nil, err
	}
	if o.ThenAction, err = e.enum("then-action", actions...); err != nil {
		return nil, err
	}
	if o.Kind, err = e.enum("kind", "Mandatory", "Optional", "Serialize"); err != nil {
		return nil, err
	}
	if o.Score, err = e.score("score", im.health); err != nil {
		return nil, err
	}
	if o.Symmetrical, err = e.boolp("symmetrical"); err != nil {
		return nil, err
	}
	if o.RequireAll, err = e.boolp("require-all"); err != nil {
		return nil, err
	}
	o.Extra = e.extra()
	return o, nil
}

func (im *importer) ticket(n *node) (*Ticket, error) {
	e, sets, rest, err := im.constraintHead(n)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, e.unexpected(rest[0])
	}
	t := &Ticket{ID: e.id, Sets: sets}
	if t.Ticket, err = e.req("ticket"); err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		if t.Rsc, err = im.ref(e, "rsc", true); err != nil {
			return nil, err
		}
	} else if _, ok := n.attr("rsc"); ok {
		return nil, e.errf("has both rsc and resource sets")
	}
	if t.RscRole, err = e.role("rsc-role"); err != nil {
		return nil, err
	}
	if t.LossPolicy, err = e.enum("loss-policy", "stop", "demote", "fence", "freeze"); err != nil {
		return nil, err
	}
	t.Extra = e.extra()
	return t, nil
}

func (im *importer) status(n *node, s *Status) error {
	e := im.open(n)
	for _, ch := range n.children {
		switch {
		case ch.name == "node_state":
			ns, err := im.nodeState(ch)
			if err != nil {
				return err
			}
			s.NodeStates = append(s.NodeStates, ns)
		case ch.name == "tickets" && s.Tickets == nil:
			s.Tickets = ch.raw()
		case ch.name == "tickets":
			return e.unexpected(ch)
		default:
			s.Other = append(s.Other, ch.raw())
		}
	}
	return nil
}

func (im *importer) nodeState(n *node) (*NodeState, error) {
	e := im.open(n)
	ns := &NodeState{ID: e.str("id"), Uname: e.str("uname"), InCCM: e.str("in_ccm"), Crmd: e.str("crmd"),
		Join: e.str("join"), Expected: e.str("expected"), CrmDebugOrigin: e.str("crm-debug-origin")}
	for _, ch := range n.children {
		switch {
		case ch.name == "transient_attributes" && ns.TransientID == "" && ns.Transient == nil:
			te := im.open(ch)
			ns.TransientID = te.str("id")
			if ns.TransientID == "" {
				return nil, te.errf("missing required attribute %q", "id")
			}
			if x := te.extra(); x != nil {
				return nil, te.errf("unexpected attributes")
			}
			for _, gc := range ch.children {
				if gc.name != "instance_attributes" {
					return nil, te.unexpected(gc)
				}
				set, err := im.statusSet(gc)
				if err != nil {
					return nil, err
				}
				ns.Transient = append(ns.Transient, set)
			}
		case ch.name == "lrm" && ns.LRM == nil:
			l, err := im.lrm(ch)
			if err != nil {
				return nil, err
			}
			ns.LRM = l
		default:
			return nil, e.unexpected(ch)
		}
	}
	ns.Extra = e.extra()
	return ns, nil
}

// statusSet reads an attribute set in the status section, where ids are
// not checked for uniqueness (the attribute manager repeats them).
func (im *importer) statusSet(n *node) (*NVSet, error) {
	saved := im.ids
	im.ids = nil
	defer func() { im.ids = saved }()
	return im.nvset(n)
}

func (im *importer) lrm(n *node) (*LRM, error) {
	e := im.open(n)
	l := &LRM{ID: e.str("id")}
	for _, ch := range n.children {
		if ch.name != "lrm_resources" || l.HasRscList {
			return nil, e.unexpected(ch)
		}
		l.HasRscList = true
		le := im.open(ch)
		l.ResourcesID = le.str("id")
		if x := le.extra(); x != nil {
			return nil, le.errf("unexpected attributes")
		}
		for _, gc := range ch.children {
			if gc.name != "lrm_resource" {
				return nil, le.unexpected(gc)
			}
			r, err := im.lrmResource(gc)
			if err != nil {
				return nil, err
			}
			l.Resources = append(l.Resources, r)
		}
	}
	l.Extra = e.extra()
	return l, nil
}

func (im *importer) lrmResource(n *node) (*LRMResource, error) {
	e := im.open(n)
	r := &LRMResource{ID: e.id, Type: e.str("type"), Class: e.str("class"), Provider: e.str("provider"), Container: e.str("container")}
	if _, err := e.req("id"); err != nil {
		return nil, err
	}
	for _, ch := range n.children {
		if ch.name != "lrm_rsc_op" {
			return nil, e.unexpected(ch)
		}
		op, err := im.lrmRscOp(ch)
		if err != nil {
			return nil, err
		}
		r.Ops = append(r.Ops, op)
	}
	r.Extra = e.extra()
	return r, nil
}

func (im *importer) lrmRscOp(n *node) (*LRMRscOp, error) {
	e := im.open(n)
	o := &LRMRscOp{ID: e.id, OperationKey: e.str("operation_key"),
		OpDigest: e.str("op-digest"), OpRestartDigest: e.str("op-restart-digest"),
		OpForceRestart: e.str("op-force-restart"), OpSecureParams: e.str("op-secure-params"),
		OpSecureDigest: e.str("op-secure-digest"), TransitionKey: e.str("transition-key"),
		TransitionMagic: e.str("transition-magic"), OnNode: e.str("on_node"),
		ExitReason: e.str("exit-reason"), CRMFeatureSet: e.str("crm_feature_set"),
		CrmDebugOrigin: e.str("crm-debug-origin"), MigrateSource: e.str("migrate_source"),
		MigrateTarget: e.str("migrate_target")}
	var err error
	if _, err = e.req("id"); err != nil {
		return nil, err
	}
	if o.Operation, err = e.req("operation"); err != nil {
		return nil, err
	}
	if o.CallID, err = e.integer("call-id", true); err != nil {
		return nil, err
	}
	if o.RCCode, err = e.integer("rc-code", true); err != nil {
		return nil, err
	}
	if o.OpStatus, err = e.integer("op-status", true); err != nil {
		return nil, err
	}
	ms, err := e.integer("interval", true)
	if err != nil {
		return nil, err
	}
	if ms < 0 {
		return nil, e.errf("interval %q is negative", fmt.Sprint(ms))
	}
	o.Interval = msDuration(int64(ms))
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"last-rc-change", &o.LastRCChange}, {"last-run", &o.LastRun}, {"exec-time", &o.ExecTime}, {"queue-time", &o.QueueTime}} {
		if *f.dst, err = e.int64p(f.name); err != nil {
			return nil, err
		}
	}
	if len(n.children) > 0 {
		return nil, e.unexpected(n.children[0])
	}
	o.Extra = e.extra()
	return o, nil
}
