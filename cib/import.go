package cib

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// ImportError says which element (and id) of the input is wrong and why.
type ImportError struct {
	Line    int // 0 when unknown
	Element string
	ID      string
	Msg     string
}

func (e *ImportError) Error() string {
	var b strings.Builder
	b.WriteString(e.Element)
	if e.ID != "" {
		fmt.Fprintf(&b, " %q", e.ID)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Import reads a Pacemaker CIB XML document. It rejects what Pacemaker's
// schema or unpacking rejects (missing required attributes, invalid values,
// duplicate ids) and, more strictly than Pacemaker, which ignores such
// constraints with a configuration error, constraints that name a resource
// that does not exist.
func Import(r io.Reader) (*CIB, error) {
	root, err := parseTree(r)
	if err != nil {
		return nil, err
	}
	im := &importer{ids: map[string]string{}, targets: map[string]bool{}, health: DefaultHealthScores}
	return im.cib(root)
}

type importer struct {
	ids     map[string]string // configuration id -> element that defined it
	targets map[string]bool   // ids that constraints may name: resources, templates, tags
	health  HealthScores
}

// el wraps a node while it is converted, tracking which attributes the
// model interprets so that the others go to Extra.
type el struct {
	n  *node
	id string
	// used marks the attributes read, by index in n.attrs (extra returns
	// the others); beyond 64 attributes, in usedMore.
	used     uint64
	usedMore []bool
}

func (im *importer) open(n *node) *el {
	e := &el{n: n}
	if len(n.attrs) > 64 {
		e.usedMore = make([]bool, len(n.attrs))
	}
	e.id, _ = n.attr("id")
	return e
}

func (e *el) errf(format string, args ...any) error {
	return &ImportError{Line: e.n.line, Element: e.n.name, ID: e.id, Msg: fmt.Sprintf(format, args...)}
}

func (e *el) opt(name string) (string, bool) {
	v, ok := "", false
	for i, a := range e.n.attrs {
		if a.Name == name {
			e.markUsed(i)
			if !ok {
				v, ok = a.Value, true
			}
		}
	}
	return v, ok
}

func (e *el) markUsed(i int) {
	if e.usedMore != nil {
		e.usedMore[i] = true
	} else {
		e.used |= 1 << i
	}
}

func (e *el) isUsed(i int) bool {
	if e.usedMore != nil {
		return e.usedMore[i]
	}
	return e.used&(1<<i) != 0
}

func (e *el) str(name string) string {
	v, _ := e.opt(name)
	return v
}

func (e *el) req(name string) (string, error) {
	v, ok := e.opt(name)
	if !ok || v == "" {
		return "", e.errf("missing required attribute %q", name)
	}
	return v, nil
}

func (e *el) extra() map[string]string {
	var m map[string]string
	for i, a := range e.n.attrs {
		if !e.isUsed(i) {
			if m == nil {
				m = map[string]string{}
			}
			m[a.Name] = a.Value
		}
	}
	return m
}

func (e *el) score(name string, h HealthScores) (*Score, error) {
	v, ok := e.opt(name)
	if !ok {
		return nil, nil
	}
	s, err := ParseScoreHealth(v, h)
	if err != nil {
		return nil, e.errf("%s %q is not a score", name, v)
	}
	return &s, nil
}

// parseBool accepts what crm_str_to_boolean accepts.
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "on", "yes", "y", "1":
		return true, true
	case "false", "off", "no", "n", "0":
		return false, true
	}
	return false, false
}

func (e *el) boolp(name string) (*bool, error) {
	v, ok := e.opt(name)
	if !ok {
		return nil, nil
	}
	b, ok := parseBool(v)
	if !ok {
		return nil, e.errf("%s %q is not a boolean", name, v)
	}
	return &b, nil
}

// ParseRole parses a role name as Pacemaker 2.1's text2role does,
// mapping the legacy Master and Slave to Promoted and Unpromoted.
func ParseRole(v string) (Role, bool) {
	switch strings.ToLower(v) {
	case "stopped":
		return RoleStopped, true
	case "started":
		return RoleStarted, true
	case "unpromoted", "slave":
		return RoleUnpromoted, true
	case "promoted", "master":
		return RolePromoted, true
	case "unknown":
		return RoleUnknown, true
	}
	return RoleNone, false
}

func (e *el) role(name string) (Role, error) {
	v, ok := e.opt(name)
	if !ok {
		return RoleNone, nil
	}
	r, ok := ParseRole(v)
	if !ok {
		return RoleNone, e.errf("%s %q is not a role", name, v)
	}
	return r, nil
}

// enum checks an optional attribute against the allowed values (compared
// case-insensitively, returned as listed).
func (e *el) enum(name string, allowed ...string) (string, error) {
	v, ok := e.opt(name)
	if !ok {
		return "", nil
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", e.errf("%s %q is not one of %s", name, v, strings.Join(allowed, ", "))
}

func (e *el) integer(name string, required bool) (int, error) {
	v, ok := e.opt(name)
	if !ok {
		if required {
			return 0, e.errf("missing required attribute %q", name)
		}
		return 0, nil
	}
	i, err := strconv.Atoi(v)
	if err != nil || i != int(int32(i)) {
		return 0, e.errf("%s %q is not an integer", name, v)
	}
	return i, nil
}

func (e *el) int64p(name string) (*int64, error) {
	v, ok := e.opt(name)
	if !ok {
		return nil, nil
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, e.errf("%s %q is not an integer", name, v)
	}
	return &i, nil
}

func (e *el) unexpected(c *node) error {
	return e.errf("unexpected child <%s> (line %d)", c.name, c.line)
}

// define registers a configuration id, rejecting duplicates.
func (im *importer) define(e *el) error {
	if e.id == "" || im.ids == nil {
		return nil
	}
	if prev, ok := im.ids[e.id]; ok {
		return e.errf("duplicate id (already used by %s)", prev)
	}
	im.ids[e.id] = e.n.name
	return nil
}

func (im *importer) cib(n *node) (*CIB, error) {
	if n.name != "cib" {
		return nil, &ImportError{Line: n.line, Element: n.name, Msg: "root element must be <cib>"}
	}
	e := im.open(n)
	c := &CIB{}
	var err error
	if c.Epoch, err = e.integer("epoch", false); err != nil {
		return nil, err
	}
	if c.NumUpdates, err = e.integer("num_updates", false); err != nil {
		return nil, err
	}
	if c.AdminEpoch, err = e.integer("admin_epoch", false); err != nil {
		return nil, err
	}
	c.ValidateWith = e.str("validate-with")
	c.CRMFeatureSet = e.str("crm_feature_set")
	c.DCUUID = e.str("dc-uuid")
	if v, ok := e.opt("have-quorum"); ok {
		b, ok := parseBool(v)
		if !ok {
			return nil, e.errf("have-quorum %q is not a boolean", v)
		}
		c.HaveQuorum = b
	}
	if p, err := e.int64p("execution-date"); err != nil {
		return nil, err
	} else if p != nil {
		c.ExecutionDate = *p
	}
	c.Extra = e.extra()
	var conf, status *node
	for _, ch := range n.children {
		switch {
		case ch.name == "configuration" && conf == nil:
			conf = ch
		case ch.name == "status" && status == nil:
			status = ch
		default:
			return nil, e.unexpected(ch)
		}
	}
	if conf != nil {
		if err := im.configuration(conf, &c.Configuration); err != nil {
			return nil, err
		}
	}
	if status != nil {
		if err := im.status(status, &c.Status); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (im *importer) configuration(n *node, c *Configuration) error {
	e := im.open(n)
	seen := map[string]bool{}
	var constraints *node
	// crm_config first: its node-health-* options give red/yellow/green
	// their values.
	for _, ch := range n.children {
		if ch.name == "crm_config" && !seen["crm_config"] {
			seen["crm_config"] = true
			sets, err := im.sets(ch, "cluster_property_set")
			if err != nil {
				return err
			}
			c.CRMConfig = sets
			im.health = healthFrom(sets)
		}
	}
	for _, ch := range n.children {
		if seen[ch.name] && ch.name != "crm_config" {
			return e.errf("more than one <%s> (line %d)", ch.name, ch.line)
		}
		var err error
		switch ch.name {
		case "crm_config":
			continue
		case "nodes":
			err = im.nodes(ch, c)
		case "resources":
			err = im.resources(ch, c)
		case "constraints":
			constraints = ch
		case "rsc_defaults":
			c.RscDefaults, err = im.sets(ch, "meta_attributes")
		case "op_defaults":
			c.OpDefaults, err = im.sets(ch, "meta_attributes")
		default:
			if ch.name == "tags" {
				for _, t := range ch.children {
					if id, ok := t.attr("id"); ok && t.name == "tag" {
						if err := im.define(im.open(t)); err != nil {
							return err
						}
						im.targets[id] = true
					}
				}
			}
			c.Other = append(c.Other, ch.raw())
		}
		if err != nil {
			return err
		}
		seen[ch.name] = true
	}
	if constraints != nil {
		return im.constraints(constraints, c)
	}
	return nil
}

// healthFrom reads node-health-red/yellow/green from the rule-free cluster
// property sets.
func healthFrom(sets []*NVSet) HealthScores {
	h := DefaultHealthScores
	done := map[string]bool{}
	for _, s := range sets {
		if len(s.Rules) > 0 {
			continue
		}
		for _, p := range s.Pairs {
			if !p.HasValue || done[p.Name] {
				continue
			}
			var dst *Score
			switch p.Name {
			case "node-health-red":
				dst = &h.Red
			case "node-health-yellow":
				dst = &h.Yellow
			case "node-health-green":
				dst = &h.Green
			default:
				continue
			}
			done[p.Name] = true
			if v, err := ParseScore(p.Value); err == nil {
				*dst = v
			}
		}
	}
	return h
}

// sets reads the children of n, which must all be attribute sets of the
// given kind.
func (im *importer) sets(n *node, kind string) ([]*NVSet, error) {
	e := im.open(n)
	var out []*NVSet
	for _, ch := range n.children {
		if ch.name != kind {
			return nil, e.unexpected(ch)
		}
		s, err := im.nvset(ch)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (im *importer) nvset(n *node) (*NVSet, error) {
	e := im.open(n)
	s := &NVSet{ID: e.str("id"), IDRef: e.str("id-ref")}
	if s.ID == "" && s.IDRef == "" {
		return nil, e.errf("needs an id or an id-ref")
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	var err error
	if s.Score, err = e.score("score", im.health); err != nil {
		return nil, err
	}
	for _, ch := range n.children {
		switch ch.name {
		case "nvpair":
			pe := im.open(ch)
			p := &NVPair{ID: pe.str("id"), IDRef: pe.str("id-ref"), Name: pe.str("name")}
			p.Value, p.HasValue = pe.opt("value")
			if p.Name == "" && p.IDRef == "" {
				return nil, pe.errf("missing required attribute %q", "name")
			}
			if err := im.define(pe); err != nil {
				return nil, err
			}
			p.Extra = pe.extra()
			s.Pairs = append(s.Pairs, p)
		case "rule":
			r, err := im.rule(ch)
			if err != nil {
				return nil, err
			}
			s.Rules = append(s.Rules, r)
		default:
			return nil, e.unexpected(ch)
		}
	}
	s.Extra = e.extra()
	return s, nil
}

func (im *importer) rule(n *node) (*Rule, error) {
	e := im.open(n)
	r := &Rule{ID: e.str("id"), IDRef: e.str("id-ref"), ScoreAttribute: e.str("score-attribute")}
	if r.ID == "" && r.IDRef == "" {
		return nil, e.errf("needs an id or an id-ref")
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	var err error
	if r.Score, err = e.score("score", im.health); err != nil {
		return nil, err
	}
	if r.Score != nil && r.ScoreAttribute != "" {
		return nil, e.errf("has both score and score-attribute")
	}
	if r.BooleanOp, err = e.enum("boolean-op", "and", "or"); err != nil {
		return nil, err
	}
	if r.Role, err = e.role("role"); err != nil {
		return nil, err
	}
	for _, ch := range n.children {
		c, err := im.condition(ch)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, e.unexpected(ch)
		}
		r.Conditions = append(r.Conditions, c)
	}
	r.Extra = e.extra()
	return r, nil
}

func (im *importer) condition(n *node) (Condition, error) {
	e := im.open(n)
	switch n.name {
	case "rule":
		return im.rule(n)
	case "expression":
		x := &Expression{ID: e.str("id"), IDRef: e.str("id-ref"), Attribute: e.str("attribute"), ValueSource: e.str("value-source")}
		if x.IDRef == "" {
			if x.ID == "" {
				return nil, e.errf("missing required attribute %q", "id")
			}
			if x.Attribute == "" {
				return nil, e.errf("missing required attribute %q", "attribute")
			}
			if _, ok := n.attr("operation"); !ok {
				return nil, e.errf("missing required attribute %q", "operation")
			}
		}
		if err := im.define(e); err != nil {
			return nil, err
		}
		var err error
		if x.Operation, err = e.enum("operation", "lt", "gt", "lte", "gte", "eq", "ne", "defined", "not_defined"); err != nil {
			return nil, err
		}
		if x.Type, err = e.enum("type", "string", "integer", "number", "version"); err != nil {
			return nil, err
		}
		if x.ValueSource, err = e.enum("value-source", "literal", "param", "meta"); err != nil {
			return nil, err
		}
		x.Value, x.HasValue = e.opt("value")
		if len(n.children) > 0 {
			return nil, e.unexpected(n.children[0])
		}
		x.Extra = e.extra()
		return x, nil
	case "date_expression":
		x := &DateExpression{ID: e.str("id"), Start: e.str("start"), End: e.str("end")}
		if x.ID == "" {
			return nil, e.errf("missing required attribute %q", "id")
		}
		if err := im.define(e); err != nil {
			return nil, err
		}
		var err error
		if x.Operation, err = e.enum("operation", "in_range", "gt", "lt", "date_spec"); err != nil {
			return nil, err
		}
		for _, ch := range n.children {
			switch {
			case ch.name == "date_spec" && x.DateSpec == nil:
				x.DateSpec = ch.raw()
			case ch.name == "duration" && x.Duration == nil:
				x.Duration = ch.raw()
			default:
				return nil, e.unexpected(ch)
			}
		}
		x.Extra = e.extra()
		return x, nil
	case "op_expression":
		x := &OpExpression{ID: e.str("id"), Name: e.str("name"), Interval: e.str("interval")}
		if err := im.define(e); err != nil {
			return nil, err
		}
		if x.Interval != "" {
			if _, err := ParseInterval(x.Interval); err != nil {
				return nil, e.errf("interval %q is not a valid interval", x.Interval)
			}
		}
		if len(n.children) > 0 {
			return nil, e.unexpected(n.children[0])
		}
		x.Extra = e.extra()
		return x, nil
	case "rsc_expression":
		x := &RscExpression{ID: e.str("id"), Class: e.str("class"), Provider: e.str("provider"), Type: e.str("type")}
		if err := im.define(e); err != nil {
			return nil, err
		}
		if len(n.children) > 0 {
			return nil, e.unexpected(n.children[0])
		}
		x.Extra = e.extra()
		return x, nil
	}
	return nil, nil
}

func (im *importer) nodes(n *node, c *Configuration) error {
	e := im.open(n)
	nodeIDs := map[string]bool{}
	for _, ch := range n.children {
		if ch.name != "node" {
			return e.unexpected(ch)
		}
		ne := im.open(ch)
		nd := &Node{Description: ne.str("description")}
		var err error
		if nd.ID, err = ne.req("id"); err != nil {
			return err
		}
		if nd.Uname, err = ne.req("uname"); err != nil {
			return err
		}
		// Node ids have their own space: a remote node shares its id with
		// its connection resource.
		if nodeIDs[nd.ID] {
			return ne.errf("duplicate node id")
		}
		nodeIDs[nd.ID] = true
		if nd.Type, err = ne.enum("type", "member", "remote", "normal", "ping"); err != nil {
			return err
		}
		for _, gc := range ch.children {
			switch gc.name {
			case "instance_attributes":
				s, err := im.nvset(gc)
				if err != nil {
					return err
				}
				nd.InstanceAttributes = append(nd.InstanceAttributes, s)
			case "utilization":
				s, err := im.nvset(gc)
				if err != nil {
					return err
				}
				nd.Utilization = append(nd.Utilization, s)
			default:
				return ne.unexpected(gc)
			}
		}
		nd.Extra = ne.extra()
		c.Nodes = append(c.Nodes, nd)
	}
	return nil
}

func (im *importer) resources(n *node, c *Configuration) error {
	e := im.open(n)
	for _, ch := range n.children {
		r, err := im.resource(ch, true)
		if err != nil {
			return err
		}
		if r == nil {
			return e.unexpected(ch)
		}
		c.Resources = append(c.Resources, r)
	}
	return nil
}

// resource converts a resource element; nil, nil when n is not one.
func (im *importer) resource(n *node, top bool) (Resource, error) {
	switch n.name {
	case "primitive":
		return im.primitive(n)
	case "template":
		if !top {
			return nil, nil
		}
		p, err := im.primitive(n)
		if err != nil {
			return nil, err
		}
		return (*Template)(p), nil
	case "group":
		return im.group(n)
	case "clone", "master":
		if !top {
			return nil, nil
		}
		return im.clone(n)
	case "bundle":
		if !top {
			return nil, nil
		}
		return im.bundle(n)
	}
	return nil, nil
}

// commonSets reads the attribute-set children shared by resources.
func (im *importer) commonSet(ch *node, meta, inst, util *[]*NVSet) (bool, error) {
	var dst *[]*NVSet
	switch ch.name {
	case "meta_attributes":
		dst = meta
	case "instance_attributes":
		dst = inst
	case "utilization":
		dst = util
	}
	if dst == nil {
		return false, nil
	}
	s, err := im.nvset(ch)
	if err != nil {
		return false, err
	}
	*dst = append(*dst, s)
	return true, nil
}

func (im *importer) primitive(n *node) (*Primitive, error) {
	e := im.open(n)
	p := &Primitive{ID: e.id, Template: e.str("template"), Description: e.str("description")}
	if _, err := e.req("id"); err != nil {
		return nil, err
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	if n.name == "primitive" {
		im.targets[p.ID] = true
	} else {
		im.targets[p.ID] = true // constraints may name a template
	}
	p.Class, p.Provider, p.Type = e.str("class"), e.str("provider"), e.str("type")
	if p.Template == "" || n.name == "template" {
		if p.Class == "" {
			return nil, e.errf("missing required attribute %q", "class")
		}
		if p.Type == "" {
			return nil, e.errf("missing required attribute %q", "type")
		}
	}
	if p.Class == "ocf" && p.Provider == "" {
		return nil, e.errf("class %q needs a provider", p.Class)
	}
	if p.Class != "" && p.Class != "ocf" && p.Provider != "" {
		return nil, e.errf("class %q takes no provider (got %q)", p.Class, p.Provider)
	}
	for _, ch := range n.children {
		ok, err := im.commonSet(ch, &p.MetaAttributes, &p.InstanceAttributes, &p.Utilization)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		if ch.name != "operations" || p.Operations != nil {
			return nil, e.unexpected(ch)
		}
		if p.Operations, err = im.operations(ch); err != nil {
			return nil, err
		}
	}
	p.Extra = e.extra()
	return p, nil
}

func (im *importer) operations(n *node) (*Operations, error) {
	e := im.open(n)
	o := &Operations{ID: e.str("id"), IDRef: e.str("id-ref")}
	if err := im.define(e); err != nil {
		return nil, err
	}
	for _, ch := range n.children {
		if ch.name != "op" {
			return nil, e.unexpected(ch)
		}
		op, err := im.op(ch)
		if err != nil {
			return nil, err
		}
		o.Ops = append(o.Ops, op)
	}
	o.Extra = e.extra()
	return o, nil
}

func (im *importer) op(n *node) (*Op, error) {
	e := im.open(n)
	o := &Op{ID: e.id, Description: e.str("description")}
	var err error
	if _, err = e.req("id"); err != nil {
		return nil, err
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	if o.Name, err = e.req("name"); err != nil {
		return nil, err
	}
	iv, err := e.req("interval")
	if err != nil {
		return nil, err
	}
	if o.Interval, err = ParseInterval(iv); err != nil {
		return nil, e.errf("interval %q is not a valid interval", iv)
	}
	if v, ok := e.opt("timeout"); ok {
		if strings.HasPrefix(strings.TrimSpace(v), "-") {
			return nil, e.errf("timeout %q is negative", v)
		}
		o.Timeout = v
	}
	if o.Role, err = e.role("role"); err != nil {
		return nil, err
	}
	if o.OnFail, err = e.enum("on-fail", "ignore", "block", "stop", "restart", "standby", "fence", "restart-container", "demote"); err != nil {
		return nil, err
	}
	for _, ch := range n.children {
		var util []*NVSet
		ok, err := im.commonSet(ch, &o.MetaAttributes, &o.InstanceAttributes, &util)
		if err != nil {
			return nil, err
		}
		if !ok || util != nil {
			return nil, e.unexpected(ch)
		}
	}
	o.Extra = e.extra()
	return o, nil
}

func (im *importer) group(n *node) (*Group, error) {
	e := im.open(n)
	g := &Group{ID: e.id, Description: e.str("description")}
	if _, err := e.req("id"); err != nil {
		return nil, err
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	im.targets[g.ID] = true
	for _, ch := range n.children {
		ok, err := im.commonSet(ch, &g.MetaAttributes, &g.InstanceAttributes, &g.Utilization)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		if ch.name != "primitive" {
			return nil, e.unexpected(ch)
		}
		p, err := im.primitive(ch)
		if err != nil {
			return nil, err
		}
		g.Children = append(g.Children, p)
	}
	if len(g.Children) == 0 {
		return nil, e.errf("has no primitives")
	}
	g.Extra = e.extra()
	return g, nil
}

func (im *importer) clone(n *node) (*Clone, error) {
	e := im.open(n)
	c := &Clone{ID: e.id, Description: e.str("description")}
	if _, err := e.req("id"); err != nil {
		return nil, err
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	im.targets[c.ID] = true
	for _, ch := range n.children {
		ok, err := im.commonSet(ch, &c.MetaAttributes, &c.InstanceAttributes, &c.Utilization)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		if (ch.name != "primitive" && ch.name != "group") || c.Child != nil {
			return nil, e.unexpected(ch)
		}
		if c.Child, err = im.resource(ch, false); err != nil {
			return nil, err
		}
	}
	if c.Child == nil {
		return nil, e.errf("has no primitive or group to clone")
	}
	if n.name == "master" {
		id := c.ID + "-meta_attributes-promotable"
		for i := 1; im.ids[id] != ""; i++ {
			id = fmt.Sprintf("%s-meta_attributes-promotable-%d", c.ID, i)
		}
		im.ids[id] = "meta_attributes"
		pid := id + "-promotable"
		for i := 1; im.ids[pid] != ""; i++ {
			pid = fmt.Sprintf("%s-promotable-%d", id, i)
		}
		im.ids[pid] = "nvpair"
		// First and with the highest score, so that it wins over any
		// promotable=false the element carries, as <master> always meant
		// promotable.
		inf := Infinity
		c.MetaAttributes = append([]*NVSet{{ID: id, Score: &inf, Pairs: []*NVPair{{ID: pid, Name: "promotable", Value: "true", HasValue: true}}}}, c.MetaAttributes...)
	}
	c.Promotable = metaTrue(c.MetaAttributes, "promotable")
	c.Extra = e.extra()
	return c, nil
}

// metaTrue reports whether the rule-free value of name that Pacemaker
// would use (sets by decreasing score, then document order) is true.
func metaTrue(sets []*NVSet, name string) bool {
	sorted := append([]*NVSet(nil), sets...)
	sort.SliceStable(sorted, func(i, j int) bool { return setScore(sorted[i]) > setScore(sorted[j]) })
	for _, s := range sorted {
		if len(s.Rules) > 0 {
			continue
		}
		for _, p := range s.Pairs {
			if p.Name == name && p.HasValue {
				b, _ := parseBool(p.Value)
				return b
			}
		}
	}
	return false
}

func setScore(s *NVSet) Score {
	if s.Score == nil {
		return 0
	}
	return *s.Score
}

func (im *importer) bundle(n *node) (*Bundle, error) {
	e := im.open(n)
	b := &Bundle{ID: e.id, Description: e.str("description")}
	if _, err := e.req("id"); err != nil {
		return nil, err
	}
	if err := im.define(e); err != nil {
		return nil, err
	}
	im.targets[b.ID] = true
	runtimes := 0
	for _, ch := range n.children {
		switch ch.name {
		case "meta_attributes":
			s, err := im.nvset(ch)
			if err != nil {
				return nil, err
			}
			b.MetaAttributes = append(b.MetaAttributes, s)
		case "primitive":
			if b.Primitive != nil {
				return nil, e.unexpected(ch)
			}
			p, err := im.primitive(ch)
			if err != nil {
				return nil, err
			}
			b.Primitive = p
		case "docker", "podman", "rkt", "network", "storage":
			if ch.name != "network" && ch.name != "storage" {
				runtimes++
			}
			b.Parts = append(b.Parts, ch.raw())
		default:
			return nil, e.unexpected(ch)
		}
	}
	if runtimes != 1 {
		return nil, e.errf("needs exactly one of docker, podman or rkt (has %d)", runtimes)
	}
	b.Extra = e.extra()
	return b, nil
}
