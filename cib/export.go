package cib

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Export writes c as Pacemaker CIB XML. Import of the output gives a model
// equal to c (for a model that Import produced). Values that Import
// normalises (role names, scores, intervals, booleans) are written in
// Pacemaker's current spelling.
func Export(w io.Writer, c *CIB) error {
	if c == nil {
		return fmt.Errorf("cib: nothing to export")
	}
	x := &exporter{}
	root := x.cib(c)
	if x.err != nil {
		return x.err
	}
	bw := bufio.NewWriter(w)
	if err := writeTree(bw, root); err != nil {
		return err
	}
	return bw.Flush()
}

type exporter struct {
	err error
}

func (x *exporter) fail(format string, args ...any) {
	if x.err == nil {
		x.err = fmt.Errorf(format, args...)
	}
}

func mk(name string) *node { return &node{name: name} }

// set adds an attribute, skipping empty values.
func (x *exporter) set(n *node, name, v string) {
	if v != "" {
		x.put(n, name, v)
	}
}

func (x *exporter) put(n *node, name, v string) {
	if _, dup := n.attr(name); dup {
		x.fail("%s %q: attribute %q given twice (a field and Extra?)", n.name, attrOr(n, "id"), name)
		return
	}
	n.attrs = append(n.attrs, Attr{Name: name, Value: v})
}

func attrOr(n *node, name string) string {
	v, _ := n.attr(name)
	return v
}

func (x *exporter) extra(n *node, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.put(n, k, m[k])
	}
}

func (x *exporter) score(n *node, name string, s *Score) {
	if s != nil {
		x.put(n, name, s.String())
	}
}

func (x *exporter) boolp(n *node, name string, b *bool) {
	if b != nil {
		x.put(n, name, strconv.FormatBool(*b))
	}
}

func add(p *node, c ...*node) { p.children = append(p.children, c...) }

func (x *exporter) cib(c *CIB) *node {
	n := mk("cib")
	x.put(n, "epoch", strconv.Itoa(c.Epoch))
	x.put(n, "num_updates", strconv.Itoa(c.NumUpdates))
	x.put(n, "admin_epoch", strconv.Itoa(c.AdminEpoch))
	x.set(n, "validate-with", c.ValidateWith)
	x.set(n, "crm_feature_set", c.CRMFeatureSet)
	if c.HaveQuorum {
		x.put(n, "have-quorum", "1")
	} else {
		x.put(n, "have-quorum", "0")
	}
	x.set(n, "dc-uuid", c.DCUUID)
	if c.ExecutionDate != 0 {
		x.put(n, "execution-date", strconv.FormatInt(c.ExecutionDate, 10))
	}
	x.extra(n, c.Extra)
	add(n, x.configuration(&c.Configuration), x.status(&c.Status))
	return n
}

func (x *exporter) configuration(c *Configuration) *node {
	n := mk("configuration")
	add(n, x.setList("crm_config", "cluster_property_set", c.CRMConfig))
	if len(c.RscDefaults) > 0 {
		add(n, x.setList("rsc_defaults", "meta_attributes", c.RscDefaults))
	}
	if len(c.OpDefaults) > 0 {
		add(n, x.setList("op_defaults", "meta_attributes", c.OpDefaults))
	}
	nodes := mk("nodes")
	for _, nd := range c.Nodes {
		add(nodes, x.node(nd))
	}
	res := mk("resources")
	for _, r := range c.Resources {
		add(res, x.resource(r))
	}
	cons := mk("constraints")
	for _, k := range c.Constraints {
		add(cons, x.constraint(k))
	}
	add(n, nodes, res, cons)
	for _, o := range c.Other {
		add(n, fromRaw(o))
	}
	return n
}

func (x *exporter) setList(name, kind string, sets []*NVSet) *node {
	n := mk(name)
	for _, s := range sets {
		add(n, x.nvset(kind, s))
	}
	return n
}

func (x *exporter) sets(p *node, kind string, sets []*NVSet) {
	for _, s := range sets {
		add(p, x.nvset(kind, s))
	}
}

func (x *exporter) nvset(kind string, s *NVSet) *node {
	n := mk(kind)
	if s == nil {
		x.fail("%s: nil set", kind)
		return n
	}
	x.set(n, "id", s.ID)
	x.set(n, "id-ref", s.IDRef)
	x.score(n, "score", s.Score)
	x.extra(n, s.Extra)
	for _, r := range s.Rules {
		add(n, x.rule(r))
	}
	for _, p := range s.Pairs {
		pn := mk("nvpair")
		x.set(pn, "id", p.ID)
		x.set(pn, "id-ref", p.IDRef)
		x.set(pn, "name", p.Name)
		if p.HasValue {
			x.put(pn, "value", p.Value)
		}
		x.extra(pn, p.Extra)
		add(n, pn)
	}
	return n
}

func (x *exporter) rule(r *Rule) *node {
	n := mk("rule")
	x.set(n, "id", r.ID)
	x.set(n, "id-ref", r.IDRef)
	x.score(n, "score", r.Score)
	x.set(n, "score-attribute", r.ScoreAttribute)
	x.set(n, "boolean-op", r.BooleanOp)
	x.set(n, "role", string(r.Role))
	x.extra(n, r.Extra)
	for _, c := range r.Conditions {
		switch c := c.(type) {
		case *Rule:
			add(n, x.rule(c))
		case *Expression:
			e := mk("expression")
			x.set(e, "id", c.ID)
			x.set(e, "id-ref", c.IDRef)
			x.set(e, "attribute", c.Attribute)
			x.set(e, "operation", c.Operation)
			if c.HasValue {
				x.put(e, "value", c.Value)
			}
			x.set(e, "type", c.Type)
			x.set(e, "value-source", c.ValueSource)
			x.extra(e, c.Extra)
			add(n, e)
		case *DateExpression:
			e := mk("date_expression")
			x.set(e, "id", c.ID)
			x.set(e, "operation", c.Operation)
			x.set(e, "start", c.Start)
			x.set(e, "end", c.End)
			x.extra(e, c.Extra)
			if c.DateSpec != nil {
				add(e, fromRaw(c.DateSpec))
			}
			if c.Duration != nil {
				add(e, fromRaw(c.Duration))
			}
			add(n, e)
		case *OpExpression:
			e := mk("op_expression")
			x.set(e, "id", c.ID)
			x.set(e, "name", c.Name)
			x.set(e, "interval", c.Interval)
			x.extra(e, c.Extra)
			add(n, e)
		case *RscExpression:
			e := mk("rsc_expression")
			x.set(e, "id", c.ID)
			x.set(e, "class", c.Class)
			x.set(e, "provider", c.Provider)
			x.set(e, "type", c.Type)
			x.extra(e, c.Extra)
			add(n, e)
		default:
			x.fail("rule %q: unknown condition %T", r.ID, c)
		}
	}
	return n
}

func (x *exporter) node(nd *Node) *node {
	n := mk("node")
	x.set(n, "id", nd.ID)
	x.set(n, "uname", nd.Uname)
	x.set(n, "type", nd.Type)
	x.set(n, "description", nd.Description)
	x.extra(n, nd.Extra)
	x.sets(n, "instance_attributes", nd.InstanceAttributes)
	x.sets(n, "utilization", nd.Utilization)
	return n
}

func (x *exporter) resource(r Resource) *node {
	switch r := r.(type) {
	case *Primitive:
		return x.primitive("primitive", r)
	case *Template:
		return x.primitive("template", (*Primitive)(r))
	case *Group:
		n := mk("group")
		x.set(n, "id", r.ID)
		x.set(n, "description", r.Description)
		x.extra(n, r.Extra)
		x.sets(n, "meta_attributes", r.MetaAttributes)
		x.sets(n, "instance_attributes", r.InstanceAttributes)
		x.sets(n, "utilization", r.Utilization)
		for _, p := range r.Children {
			add(n, x.primitive("primitive", p))
		}
		return n
	case *Clone:
		n := mk("clone")
		x.set(n, "id", r.ID)
		x.set(n, "description", r.Description)
		x.extra(n, r.Extra)
		meta := r.MetaAttributes
		if r.Promotable && !metaTrue(meta, "promotable") {
			meta = append(append([]*NVSet(nil), meta...), &NVSet{ID: r.ID + "-meta_attributes-promotable",
				Pairs: []*NVPair{{ID: r.ID + "-meta_attributes-promotable-promotable", Name: "promotable", Value: "true", HasValue: true}}})
		}
		x.sets(n, "meta_attributes", meta)
		x.sets(n, "instance_attributes", r.InstanceAttributes)
		x.sets(n, "utilization", r.Utilization)
		if r.Child != nil {
			add(n, x.resource(r.Child))
		}
		return n
	case *Bundle:
		n := mk("bundle")
		x.set(n, "id", r.ID)
		x.set(n, "description", r.Description)
		x.extra(n, r.Extra)
		for _, p := range r.Parts {
			add(n, fromRaw(p))
		}
		x.sets(n, "meta_attributes", r.MetaAttributes)
		if r.Primitive != nil {
			add(n, x.primitive("primitive", r.Primitive))
		}
		return n
	}
	x.fail("unknown resource type %T", r)
	return mk("primitive")
}

func (x *exporter) primitive(kind string, p *Primitive) *node {
	n := mk(kind)
	if p == nil {
		x.fail("%s: nil", kind)
		return n
	}
	x.set(n, "id", p.ID)
	x.set(n, "class", p.Class)
	x.set(n, "provider", p.Provider)
	x.set(n, "type", p.Type)
	x.set(n, "template", p.Template)
	x.set(n, "description", p.Description)
	x.extra(n, p.Extra)
	x.sets(n, "meta_attributes", p.MetaAttributes)
	x.sets(n, "instance_attributes", p.InstanceAttributes)
	x.sets(n, "utilization", p.Utilization)
	if o := p.Operations; o != nil {
		on := mk("operations")
		x.set(on, "id", o.ID)
		x.set(on, "id-ref", o.IDRef)
		x.extra(on, o.Extra)
		for _, op := range o.Ops {
			e := mk("op")
			x.set(e, "id", op.ID)
			x.set(e, "name", op.Name)
			x.put(e, "interval", formatInterval(op.Interval))
			x.set(e, "timeout", op.Timeout)
			x.set(e, "role", string(op.Role))
			x.set(e, "on-fail", op.OnFail)
			x.set(e, "description", op.Description)
			x.extra(e, op.Extra)
			x.sets(e, "meta_attributes", op.MetaAttributes)
			x.sets(e, "instance_attributes", op.InstanceAttributes)
			add(on, e)
		}
		add(n, on)
	}
	return n
}

func (x *exporter) resourceSets(n *node, sets []*ResourceSet) {
	for _, s := range sets {
		e := mk("resource_set")
		x.set(e, "id", s.ID)
		x.set(e, "id-ref", s.IDRef)
		x.boolp(e, "sequential", s.Sequential)
		x.boolp(e, "require-all", s.RequireAll)
		x.set(e, "ordering", s.Ordering)
		x.set(e, "action", s.Action)
		x.set(e, "role", string(s.Role))
		x.score(e, "score", s.Score)
		x.set(e, "kind", s.Kind)
		x.extra(e, s.Extra)
		for _, id := range s.Resources {
			r := mk("resource_ref")
			x.put(r, "id", id)
			add(e, r)
		}
		add(n, e)
	}
}

func (x *exporter) constraint(c Constraint) *node {
	switch c := c.(type) {
	case *Location:
		n := mk("rsc_location")
		x.set(n, "id", c.ID)
		x.set(n, "rsc", c.Rsc)
		x.set(n, "rsc-pattern", c.RscPattern)
		x.set(n, "node", c.Node)
		x.score(n, "score", c.Score)
		x.set(n, "role", string(c.Role))
		x.set(n, "resource-discovery", c.ResourceDiscovery)
		x.extra(n, c.Extra)
		x.resourceSets(n, c.Sets)
		for _, r := range c.Rules {
			add(n, x.rule(r))
		}
		return n
	case *Colocation:
		n := mk("rsc_colocation")
		x.set(n, "id", c.ID)
		x.set(n, "rsc", c.Rsc)
		x.set(n, "with-rsc", c.WithRsc)
		x.score(n, "score", c.Score)
		x.set(n, "rsc-role", string(c.RscRole))
		x.set(n, "with-rsc-role", string(c.WithRscRole))
		x.set(n, "node-attribute", c.NodeAttribute)
		x.extra(n, c.Extra)
		x.resourceSets(n, c.Sets)
		return n
	case *Order:
		n := mk("rsc_order")
		x.set(n, "id", c.ID)
		x.set(n, "first", c.First)
		x.set(n, "first-action", c.FirstAction)
		x.set(n, "then", c.Then)
		x.set(n, "then-action", c.ThenAction)
		x.set(n, "kind", c.Kind)
		x.score(n, "score", c.Score)
		x.boolp(n, "symmetrical", c.Symmetrical)
		x.boolp(n, "require-all", c.RequireAll)
		x.extra(n, c.Extra)
		x.resourceSets(n, c.Sets)
		return n
	case *Ticket:
		n := mk("rsc_ticket")
		x.set(n, "id", c.ID)
		x.set(n, "ticket", c.Ticket)
		x.set(n, "rsc", c.Rsc)
		x.set(n, "rsc-role", string(c.RscRole))
		x.set(n, "loss-policy", c.LossPolicy)
		x.extra(n, c.Extra)
		x.resourceSets(n, c.Sets)
		return n
	}
	x.fail("unknown constraint type %T", c)
	return mk("rsc_location")
}

func (x *exporter) status(s *Status) *node {
	n := mk("status")
	for _, ns := range s.NodeStates {
		e := mk("node_state")
		x.set(e, "id", ns.ID)
		x.set(e, "uname", ns.Uname)
		x.set(e, "in_ccm", ns.InCCM)
		x.set(e, "crmd", ns.Crmd)
		x.set(e, "crm-debug-origin", ns.CrmDebugOrigin)
		x.set(e, "join", ns.Join)
		x.set(e, "expected", ns.Expected)
		x.extra(e, ns.Extra)
		if ns.TransientID != "" || ns.Transient != nil {
			t := mk("transient_attributes")
			x.set(t, "id", ns.TransientID)
			x.sets(t, "instance_attributes", ns.Transient)
			add(e, t)
		}
		if l := ns.LRM; l != nil {
			ln := mk("lrm")
			x.set(ln, "id", l.ID)
			x.extra(ln, l.Extra)
			if l.HasRscList || l.Resources != nil {
				rl := mk("lrm_resources")
				x.set(rl, "id", l.ResourcesID)
				for _, r := range l.Resources {
					add(rl, x.lrmResource(r))
				}
				add(ln, rl)
			}
			add(e, ln)
		}
		add(n, e)
	}
	if s.Tickets != nil {
		add(n, fromRaw(s.Tickets))
	}
	for _, o := range s.Other {
		add(n, fromRaw(o))
	}
	return n
}

func (x *exporter) lrmResource(r *LRMResource) *node {
	n := mk("lrm_resource")
	x.set(n, "id", r.ID)
	x.set(n, "type", r.Type)
	x.set(n, "class", r.Class)
	x.set(n, "provider", r.Provider)
	x.set(n, "container", r.Container)
	x.extra(n, r.Extra)
	for _, o := range r.Ops {
		e := mk("lrm_rsc_op")
		x.set(e, "id", o.ID)
		x.set(e, "operation_key", o.OperationKey)
		x.set(e, "operation", o.Operation)
		x.set(e, "crm-debug-origin", o.CrmDebugOrigin)
		x.set(e, "crm_feature_set", o.CRMFeatureSet)
		x.set(e, "transition-key", o.TransitionKey)
		x.set(e, "transition-magic", o.TransitionMagic)
		x.set(e, "exit-reason", o.ExitReason)
		x.set(e, "on_node", o.OnNode)
		x.put(e, "call-id", strconv.Itoa(o.CallID))
		x.put(e, "rc-code", strconv.Itoa(o.RCCode))
		x.put(e, "op-status", strconv.Itoa(o.OpStatus))
		x.put(e, "interval", strconv.FormatInt(o.Interval.Milliseconds(), 10))
		for _, f := range []struct {
			name string
			v    *int64
		}{{"last-rc-change", o.LastRCChange}, {"last-run", o.LastRun}, {"exec-time", o.ExecTime}, {"queue-time", o.QueueTime}} {
			if f.v != nil {
				x.put(e, f.name, strconv.FormatInt(*f.v, 10))
			}
		}
		x.set(e, "op-digest", o.OpDigest)
		x.set(e, "op-force-restart", o.OpForceRestart)
		x.set(e, "op-restart-digest", o.OpRestartDigest)
		x.set(e, "op-secure-params", o.OpSecureParams)
		x.set(e, "op-secure-digest", o.OpSecureDigest)
		x.set(e, "migrate_source", o.MigrateSource)
		x.set(e, "migrate_target", o.MigrateTarget)
		x.extra(e, o.Extra)
		add(n, e)
	}
	return n
}
