package main

// The configuration edits behind `tachy resource`, `tachy constraint` and
// `tachy node`: pure functions on a *cib.CIB freshly imported from the
// cluster's XML (they edit it in place; the caller discards it on error),
// so that they are tested without a daemon. Each names what is wrong and
// what to do about it; checkConfig then proves the result is a CIB the
// cluster accepts before anything is submitted.

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
)

// kv is one KEY=VALUE argument, in the order given.
type kv struct{ K, V string }

// opSpec is one `op NAME k=v ...` of resource create.
type opSpec struct {
	Name  string
	Attrs []kv
}

// createSpec is what `resource create` was told.
type createSpec struct {
	Name, Agent string
	Params      []kv
	Ops         []opSpec
	Meta        []kv
}

// parseCreateArgs reads NAME AGENT [k=v ...] [op NAME k=v ...]... [meta k=v ...]
// as pcs resource create does.
func parseCreateArgs(args []string) (createSpec, error) {
	var s createSpec
	if len(args) < 2 {
		return s, fmt.Errorf("write `tachy resource create NAME AGENT [KEY=VALUE ...] [op NAME KEY=VALUE ...] [meta KEY=VALUE ...]`, e.g. `tachy resource create web ocf:heartbeat:Dummy op monitor interval=10s`")
	}
	s.Name, s.Agent = args[0], args[1]
	if err := checkID(s.Name, "resource name"); err != nil {
		return s, err
	}
	section := "params"
	seen := map[string]bool{}
	add := func(list *[]kv, where, tok string) error {
		k, v, ok := strings.Cut(tok, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q: write KEY=VALUE here (after %s), or start a section with `op NAME` or `meta`", tok, where)
		}
		key := where + "\x00" + k
		if seen[key] {
			return fmt.Errorf("%s: %s is given twice: keep one", where, k)
		}
		seen[key] = true
		*list = append(*list, kv{k, v})
		return nil
	}
	for i := 2; i < len(args); i++ {
		tok := args[i]
		switch {
		case tok == "op":
			if i+1 >= len(args) || strings.Contains(args[i+1], "=") || args[i+1] == "op" || args[i+1] == "meta" {
				return s, fmt.Errorf("`op` needs an operation name next, e.g. `op monitor interval=10s timeout=20s`")
			}
			i++
			s.Ops = append(s.Ops, opSpec{Name: args[i]})
			section = "op"
		case tok == "meta":
			section = "meta"
		case section == "params":
			if err := add(&s.Params, "the agent's parameters", tok); err != nil {
				return s, err
			}
		case section == "meta":
			if err := add(&s.Meta, "meta", tok); err != nil {
				return s, err
			}
		default:
			o := &s.Ops[len(s.Ops)-1]
			if err := add(&o.Attrs, fmt.Sprintf("op %s #%d", o.Name, len(s.Ops)), tok); err != nil {
				return s, err
			}
		}
	}
	for _, o := range s.Ops {
		if !slices.ContainsFunc(o.Attrs, func(a kv) bool { return a.K == "interval" }) && o.Name == "monitor" {
			return s, fmt.Errorf("op monitor needs an interval, e.g. `op monitor interval=10s`")
		}
	}
	return s, nil
}

var idRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`) })

// checkID refuses what is not an XML id, as pcs does.
func checkID(id, what string) error {
	if !idRE().MatchString(id) {
		return fmt.Errorf("%s %q is not a valid id: start with a letter or '_', then use letters, digits, '_', '.' or '-'", what, id)
	}
	return nil
}

// configIDs maps every id of the configuration to the element that holds it.
func configIDs(c *cib.CIB) (map[string]string, error) {
	cp := *c
	cp.Status = cib.Status{}
	var b bytes.Buffer
	if err := cib.Export(&b, &cp); err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, m := range idAttrRE().FindAllStringSubmatch(b.String(), -1) {
		// references (resource_ref, a tag's obj_ref) define nothing
		if m[1] != "cib" && m[1] != "resource_ref" && m[1] != "obj_ref" && ids[m[2]] == "" {
			ids[m[2]] = m[1]
		}
	}
	return ids, nil
}

var idAttrRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<([A-Za-z_:][-\w.:]*)\b[^>]*?\sid="([^"]*)"`) })

// uniqueID returns base, or base-1, base-2, ... : the first that ids lacks;
// it is then taken.
func uniqueID(ids map[string]string, base, elem string) string {
	id := base
	for i := 1; ids[id] != ""; i++ {
		id = fmt.Sprintf("%s-%d", base, i)
	}
	ids[id] = elem
	return id
}

// checkConfig proves the edited CIB is one the cluster accepts: exported
// and imported again, as the DC will. It returns the XML to submit (the
// configuration; the status is not sent).
func checkConfig(c *cib.CIB) (string, error) {
	cp := *c
	cp.Status = cib.Status{}
	var b bytes.Buffer
	if err := cib.Export(&b, &cp); err != nil {
		return "", fmt.Errorf("the edited configuration cannot be written: %w; nothing was changed", err)
	}
	if _, err := cib.Import(bytes.NewReader(b.Bytes())); err != nil {
		return "", fmt.Errorf("the edited configuration would be invalid: %w; nothing was changed", err)
	}
	return b.String(), nil
}

// rscEntry is a configured resource and the resource that contains it (nil
// at the top level).
type rscEntry struct {
	r      cib.Resource
	parent cib.Resource
}

func resourceEntries(c *cib.CIB) []rscEntry {
	var out []rscEntry
	var walk func(r, parent cib.Resource)
	walk = func(r, parent cib.Resource) {
		out = append(out, rscEntry{r, parent})
		switch r := r.(type) {
		case *cib.Group:
			for _, p := range r.Children {
				walk(p, r)
			}
		case *cib.Clone:
			if r.Child != nil {
				walk(r.Child, r)
			}
		case *cib.Bundle:
			if r.Primitive != nil {
				walk(r.Primitive, r)
			}
		}
	}
	for _, r := range c.Configuration.Resources {
		walk(r, nil)
	}
	return out
}

func resourceIDs(c *cib.CIB) []string {
	var ids []string
	for _, e := range resourceEntries(c) {
		ids = append(ids, e.r.ResourceID())
	}
	return ids
}

// findResource finds a configured resource, or says which exist.
func findResource(c *cib.CIB, id string) (rscEntry, error) {
	for _, e := range resourceEntries(c) {
		if e.r.ResourceID() == id {
			return e, nil
		}
	}
	ids := resourceIDs(c)
	if len(ids) == 0 {
		return rscEntry{}, fmt.Errorf("resource %q does not exist: the cluster has no resources yet (create one with `tachy resource create`)", id)
	}
	return rscEntry{}, fmt.Errorf("resource %q does not exist: the resources are %s (see `tachy resource list`)", id, strings.Join(ids, ", "))
}

// primitivesUnder returns the primitives r is or contains.
func primitivesUnder(r cib.Resource) []*cib.Primitive {
	switch r := r.(type) {
	case *cib.Primitive:
		return []*cib.Primitive{r}
	case *cib.Group:
		return slices.Clone(r.Children)
	case *cib.Clone:
		return primitivesUnder(r.Child)
	case *cib.Bundle:
		if r.Primitive != nil {
			return []*cib.Primitive{r.Primitive}
		}
	}
	return nil
}

// findNode finds a configured node by name, or lists the nodes.
func findNode(c *cib.CIB, name string) (*cib.Node, error) {
	var names []string
	for _, n := range c.Configuration.Nodes {
		if n.Uname == name {
			return n, nil
		}
		names = append(names, n.Uname)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("unknown node %q: the configuration has no nodes yet (the DC adds each node as it joins)", name)
	}
	return nil, fmt.Errorf("unknown node %q: the cluster's nodes are %s", name, strings.Join(names, ", "))
}

// setPair sets name to value (nil: removes it) in the first rule-free set
// of sets, creating the set setBase if there is none.
func setPair(ids map[string]string, sets []*cib.NVSet, setBase, elem, name string, value *string) []*cib.NVSet {
	plain := func(s *cib.NVSet) bool { return s.IDRef == "" && len(s.Rules) == 0 }
	if value == nil {
		for _, s := range sets {
			if plain(s) {
				s.Pairs = slices.DeleteFunc(s.Pairs, func(p *cib.NVPair) bool { return p.Name == name })
			}
		}
		return sets
	}
	i := slices.IndexFunc(sets, plain)
	if i < 0 {
		sets = append(sets, &cib.NVSet{ID: uniqueID(ids, setBase, elem)})
		i = len(sets) - 1
	}
	s := sets[i]
	for _, p := range s.Pairs {
		if p.Name == name && p.IDRef == "" {
			p.Value, p.HasValue = *value, true
			return sets
		}
	}
	s.Pairs = append(s.Pairs, &cib.NVPair{ID: uniqueID(ids, s.ID+"-"+name, "nvpair"), Name: name, Value: *value, HasValue: true})
	return sets
}

// metaValue is name's value in the rule-free meta attributes of r.
func metaValue(r cib.Resource, name string) string {
	v := ""
	for _, s := range *metaSets(r) {
		if s.IDRef == "" && len(s.Rules) == 0 {
			for _, p := range s.Pairs {
				if p.Name == name && p.HasValue {
					v = p.Value
				}
			}
		}
	}
	return v
}

func metaSets(r cib.Resource) *[]*cib.NVSet {
	switch r := r.(type) {
	case *cib.Primitive:
		return &r.MetaAttributes
	case *cib.Group:
		return &r.MetaAttributes
	case *cib.Clone:
		return &r.MetaAttributes
	case *cib.Bundle:
		return &r.MetaAttributes
	case *cib.Template:
		return &r.MetaAttributes
	}
	panic(fmt.Sprintf("unknown resource %T", r))
}

// setMeta sets (nil: removes) a meta attribute of resource id.
func setMeta(c *cib.CIB, id, name string, value *string) error {
	e, err := findResource(c, id)
	if err != nil {
		return err
	}
	ids, err := configIDs(c)
	if err != nil {
		return err
	}
	ms := metaSets(e.r)
	*ms = setPair(ids, *ms, id+"-meta_attributes", "meta_attributes", name, value)
	return nil
}

// enableResource removes target-role from the resource and from what
// contains it, as pcs resource enable does, so that it may run.
func enableResource(c *cib.CIB, id string) error {
	e, err := findResource(c, id)
	if err != nil {
		return err
	}
	for _, r := range []cib.Resource{e.r, e.parent} {
		if r != nil {
			ms := metaSets(r)
			*ms = setPair(nil, *ms, "", "", "target-role", nil)
		}
	}
	return nil
}

func disableResource(c *cib.CIB, id string) error {
	stopped := "Stopped"
	return setMeta(c, id, "target-role", &stopped)
}

// createOptions are resource create's flags.
type createOptions struct {
	Group, Before, After string
	Clone, Promotable    bool
	Disabled, Force      bool
}

// pcs accepts these for every ocf agent, listed or not.
var alwaysAllowedParams = []string{"trace_ra", "trace_file"}

// buildPrimitive makes the primitive spec describes, checked against the
// agent's meta-data: unknown parameters and missing required ones are
// errors unless force (then warnings), as in pcs.
func buildPrimitive(spec createSpec, agent lrmd.Agent, md *lrmd.Metadata, opts createOptions) (*cib.Primitive, []string, error) {
	var warnings, problems []string
	params := map[string]string{}
	for _, p := range spec.Params {
		params[p.K] = p.V
		if md.Param(p.K) == nil && !slices.Contains(alwaysAllowedParams, p.K) {
			var names []string
			for _, mp := range md.Parameters {
				names = append(names, mp.Name)
			}
			allowed := "it has none"
			if len(names) > 0 {
				allowed = "its parameters are " + strings.Join(names, ", ")
			}
			problems = append(problems, fmt.Sprintf("%s has no parameter %q (%s)", agent, p.K, allowed))
		}
	}
	if _, err := md.Validate(agent, params); err != nil {
		if ve, ok := err.(*lrmd.ValidationError); ok {
			problems = append(problems, ve.Problems...)
		} else {
			problems = append(problems, err.Error())
		}
	}
	if opts.Promotable && md.Action("promote") == nil {
		problems = append(problems, fmt.Sprintf("%s has no promote action: it cannot be promotable (use --clone)", agent))
	}
	if len(problems) > 0 {
		if !opts.Force {
			return nil, nil, fmt.Errorf("%s; fix the command, or add --force to create it anyway; nothing was changed", strings.Join(problems, "; "))
		}
		warnings = append(warnings, problems...)
	}

	name := spec.Name
	p := &cib.Primitive{ID: name, Class: agent.Class, Provider: agent.Provider, Type: agent.Type}
	if len(spec.Params) > 0 {
		set := &cib.NVSet{ID: name + "-instance_attributes"}
		for _, kv := range spec.Params {
			set.Pairs = append(set.Pairs, &cib.NVPair{ID: set.ID + "-" + kv.K, Name: kv.K, Value: kv.V, HasValue: true})
		}
		p.InstanceAttributes = []*cib.NVSet{set}
	}
	meta := slices.Clone(spec.Meta)
	if opts.Disabled && !slices.ContainsFunc(meta, func(m kv) bool { return m.K == "target-role" }) {
		meta = append(meta, kv{"target-role", "Stopped"})
	}
	if len(meta) > 0 {
		set := &cib.NVSet{ID: name + "-meta_attributes"}
		for _, kv := range meta {
			set.Pairs = append(set.Pairs, &cib.NVPair{ID: set.ID + "-" + kv.K, Name: kv.K, Value: kv.V, HasValue: true})
		}
		p.MetaAttributes = []*cib.NVSet{set}
	}
	ops, err := buildOps(name, spec.Ops, md, opts.Promotable)
	if err != nil {
		return nil, nil, err
	}
	p.Operations = &cib.Operations{Ops: ops}
	return p, warnings, nil
}

// buildOps makes the operations: those given, and for each of start, stop
// and monitor (and promote/demote for a promotable) not given, the
// agent's advertised one, as pcs adds its default operations; a monitor
// without an advertised interval gets pcs's 60s.
func buildOps(name string, given []opSpec, md *lrmd.Metadata, promotable bool) ([]*cib.Op, error) {
	var ops []*cib.Op
	ids := map[string]bool{}
	add := func(o *cib.Op, intervalText string) {
		base := fmt.Sprintf("%s-%s-interval-%s", name, o.Name, intervalText)
		id := base
		for i := 1; ids[id]; i++ {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		ids[id] = true
		o.ID = id
		ops = append(ops, o)
	}
	wanted := []string{"start", "stop", "monitor"}
	if promotable {
		wanted = append(wanted, "promote", "demote")
	}
	for _, w := range wanted {
		if slices.ContainsFunc(given, func(o opSpec) bool { return o.Name == w }) {
			continue
		}
		found := false
		for _, a := range md.Actions {
			if a.Name != w || (a.Role != "" && !promotable) {
				continue
			}
			found = true
			iv := a.IntervalRaw
			if w == "monitor" && a.Interval == 0 {
				iv = "60s"
			}
			if iv == "" {
				iv = "0s"
			}
			d, err := cib.ParseInterval(iv)
			if err != nil {
				d, iv = 0, "0s"
				if w == "monitor" {
					d, iv = 60*time.Second, "60s"
				}
			}
			o := &cib.Op{Name: w, Interval: d, Timeout: a.TimeoutRaw}
			if a.Role != "" {
				if r, ok := cib.ParseRole(a.Role); ok {
					o.Role = r
				}
			}
			add(o, intervalID(iv))
		}
		if !found && w == "monitor" {
			add(&cib.Op{Name: "monitor", Interval: 60 * time.Second}, "60s")
		}
	}
	for _, g := range given {
		o := &cib.Op{Name: g.Name}
		iv := "0s"
		for _, a := range g.Attrs {
			switch a.K {
			case "interval":
				d, err := cib.ParseInterval(a.V)
				if err != nil {
					return nil, fmt.Errorf("op %s interval=%s: not an interval; write e.g. 10s, 1min or 500ms", g.Name, a.V)
				}
				o.Interval, iv = d, a.V
			case "timeout":
				if _, err := cib.ParseMsec(a.V); err != nil || strings.HasPrefix(a.V, "-") {
					return nil, fmt.Errorf("op %s timeout=%s: not a timeout; write e.g. 20s or 2min", g.Name, a.V)
				}
				o.Timeout = a.V
			case "role":
				r, ok := cib.ParseRole(a.V)
				if !ok {
					return nil, fmt.Errorf("op %s role=%s: use Started, Stopped, Promoted or Unpromoted", g.Name, a.V)
				}
				o.Role = r
			case "on-fail":
				if !slices.Contains([]string{"ignore", "block", "stop", "restart", "standby", "fence", "restart-container", "demote"}, a.V) {
					return nil, fmt.Errorf("op %s on-fail=%s: use ignore, block, stop, restart, standby, fence, restart-container or demote", g.Name, a.V)
				}
				o.OnFail = a.V
			case "description":
				o.Description = a.V
			case "id", "name":
				return nil, fmt.Errorf("op %s: %s is set by tachy, leave it out", g.Name, a.K)
			default:
				if !slices.Contains([]string{"start-delay", "enabled", "interval-origin", "record-pending", "requires"}, a.K) {
					return nil, fmt.Errorf("op %s: unknown option %q; use interval, timeout, role, on-fail, start-delay, enabled, interval-origin, record-pending, requires or description", g.Name, a.K)
				}
				if o.Extra == nil {
					o.Extra = map[string]string{}
				}
				o.Extra[a.K] = a.V
			}
		}
		add(o, intervalID(iv))
	}
	return ops, nil
}

// intervalID is an interval as pcs writes it in an op id: "10" -> "10s".
func intervalID(iv string) string {
	if iv != "" && strings.Trim(iv, "0123456789") == "" {
		return iv + "s"
	}
	return iv
}

// createResource adds p as spec and opts say: alone, in a group (made if
// need be), or in a clone.
func createResource(c *cib.CIB, p *cib.Primitive, opts createOptions) (string, error) {
	ids, err := configIDs(c)
	if err != nil {
		return "", err
	}
	if el := ids[p.ID]; el != "" {
		return "", fmt.Errorf("id %q is already used (by a %s): choose another name; nothing was changed", p.ID, el)
	}
	n := 0
	for _, b := range []bool{opts.Group != "", opts.Clone, opts.Promotable} {
		if b {
			n++
		}
	}
	if n > 1 {
		return "", fmt.Errorf("use only one of --group, --clone and --promotable (to clone a group, create the group, then clone it)")
	}
	if (opts.Before != "" || opts.After != "") && opts.Group == "" {
		return "", fmt.Errorf("--before and --after place the resource in a group: add --group GROUP")
	}
	if opts.Before != "" && opts.After != "" {
		return "", fmt.Errorf("use --before or --after, not both")
	}
	// p's own ids were made without looking at the configuration.
	for _, set := range slices.Concat(p.InstanceAttributes, p.MetaAttributes) {
		set.ID = uniqueID(ids, set.ID, "nvset")
		for _, pair := range set.Pairs {
			pair.ID = uniqueID(ids, pair.ID, "nvpair")
		}
	}
	for _, o := range p.Operations.Ops {
		o.ID = uniqueID(ids, o.ID, "op")
	}
	ids[p.ID] = "primitive"
	switch {
	case opts.Group != "":
		if err := checkID(opts.Group, "group name"); err != nil {
			return "", err
		}
		var g *cib.Group
		for _, e := range resourceEntries(c) {
			if e.r.ResourceID() == opts.Group {
				gg, ok := e.r.(*cib.Group)
				if !ok {
					return "", fmt.Errorf("--group %s: %s is not a group: name a group or a new id", opts.Group, opts.Group)
				}
				g = gg
			}
		}
		if g == nil {
			if el := ids[opts.Group]; el != "" {
				return "", fmt.Errorf("--group %s: id %q is already used (by a %s): choose another group name", opts.Group, opts.Group, el)
			}
			if opts.Before != "" || opts.After != "" {
				return "", fmt.Errorf("group %s does not exist yet: leave out --before/--after", opts.Group)
			}
			c.Configuration.Resources = append(c.Configuration.Resources, &cib.Group{ID: opts.Group, Children: []*cib.Primitive{p}})
			return fmt.Sprintf("created %s (%s:%s) in the new group %s", p.ID, p.Class, typeOf(p), opts.Group), nil
		}
		at := len(g.Children)
		if ref := opts.Before + opts.After; ref != "" {
			i := slices.IndexFunc(g.Children, func(m *cib.Primitive) bool { return m.ID == ref })
			if i < 0 {
				var members []string
				for _, m := range g.Children {
					members = append(members, m.ID)
				}
				return "", fmt.Errorf("%s is not a member of group %s (its members are %s)", ref, g.ID, strings.Join(members, ", "))
			}
			at = i
			if opts.After != "" {
				at = i + 1
			}
		}
		g.Children = slices.Insert(g.Children, at, p)
		return fmt.Sprintf("created %s (%s:%s) in group %s", p.ID, p.Class, typeOf(p), g.ID), nil
	case opts.Clone || opts.Promotable:
		cl := &cib.Clone{ID: uniqueID(ids, p.ID+"-clone", "clone"), Child: p}
		if opts.Promotable {
			set := &cib.NVSet{ID: uniqueID(ids, cl.ID+"-meta_attributes", "meta_attributes")}
			set.Pairs = []*cib.NVPair{{ID: uniqueID(ids, set.ID+"-promotable", "nvpair"), Name: "promotable", Value: "true", HasValue: true}}
			cl.MetaAttributes = []*cib.NVSet{set}
			cl.Promotable = true
		}
		c.Configuration.Resources = append(c.Configuration.Resources, cl)
		return fmt.Sprintf("created %s (%s:%s) in clone %s", p.ID, p.Class, typeOf(p), cl.ID), nil
	}
	c.Configuration.Resources = append(c.Configuration.Resources, p)
	return fmt.Sprintf("created %s (%s:%s)", p.ID, p.Class, typeOf(p)), nil
}

func typeOf(p *cib.Primitive) string {
	if p.Provider != "" {
		return p.Provider + ":" + p.Type
	}
	return p.Type
}

// deleteResource removes a resource (with what it contains; a group left
// empty and a clone left without its child go too) and every constraint
// that names a removed id, as pcs resource delete does. It returns the
// removed resources and constraints.
func deleteResource(c *cib.CIB, id string) (removed, constraints []string, err error) {
	e, err := findResource(c, id)
	if err != nil {
		return nil, nil, err
	}
	target := e.r
	inGroup := false
	switch par := e.parent.(type) {
	case *cib.Group:
		if len(par.Children) > 1 {
			par.Children = slices.DeleteFunc(par.Children, func(m *cib.Primitive) bool { return m.ID == id })
			inGroup = true
		} else {
			target = par // an empty group is not allowed: it goes too
		}
	case *cib.Clone:
		target = par
	case *cib.Bundle:
		return nil, nil, fmt.Errorf("%s is the primitive of bundle %s: delete the bundle", id, par.ID)
	}
	if !inGroup {
		// target is at the top level, or a group inside a clone, which
		// then goes too
		for _, en := range resourceEntries(c) {
			if en.r == target {
				if cl, ok := en.parent.(*cib.Clone); ok {
					target = cl
				}
			}
		}
		c.Configuration.Resources = slices.DeleteFunc(c.Configuration.Resources, func(r cib.Resource) bool { return r == target })
	}
	gone := map[string]bool{}
	for _, r := range []cib.Resource{target, e.r} {
		gone[r.ResourceID()] = true
		for _, p := range primitivesUnder(r) {
			gone[p.ID] = true
		}
		if cl, ok := r.(*cib.Clone); ok && cl.Child != nil {
			gone[cl.Child.ResourceID()] = true
		}
	}
	for r := range gone {
		removed = append(removed, r)
	}
	sort.Strings(removed)
	constraints = removeConstraintsNaming(c, gone)
	return removed, constraints, nil
}

// removeConstraintsNaming drops the constraints that name a gone resource
// (a resource set loses the reference; an empty set and a constraint left
// with no set go).
func removeConstraintsNaming(c *cib.CIB, gone map[string]bool) []string {
	var dropped []string
	trimSets := func(sets []*cib.ResourceSet) ([]*cib.ResourceSet, bool) {
		if len(sets) == 0 {
			return sets, false
		}
		var out []*cib.ResourceSet
		for _, s := range sets {
			s.Resources = slices.DeleteFunc(s.Resources, func(r string) bool { return gone[r] })
			if len(s.Resources) > 0 || s.IDRef != "" {
				out = append(out, s)
			}
		}
		return out, len(out) == 0
	}
	c.Configuration.Constraints = slices.DeleteFunc(c.Configuration.Constraints, func(k cib.Constraint) bool {
		var drop bool
		switch k := k.(type) {
		case *cib.Location:
			var empty bool
			k.Sets, empty = trimSets(k.Sets)
			drop = gone[k.Rsc] || empty
		case *cib.Colocation:
			var empty bool
			k.Sets, empty = trimSets(k.Sets)
			drop = gone[k.Rsc] || gone[k.WithRsc] || empty
		case *cib.Order:
			var empty bool
			k.Sets, empty = trimSets(k.Sets)
			drop = gone[k.First] || gone[k.Then] || empty
		case *cib.Ticket:
			var empty bool
			k.Sets, empty = trimSets(k.Sets)
			drop = gone[k.Rsc] || empty
		}
		if drop {
			dropped = append(dropped, k.ConstraintID())
		}
		return drop
	})
	return dropped
}

// constraintTarget checks that a constraint may name rsc: it exists and
// is not inside a clone (name the clone, as pcs asks).
func constraintTarget(c *cib.CIB, rsc string) error {
	e, err := findResource(c, rsc)
	if err != nil {
		return err
	}
	if cl, ok := e.parent.(*cib.Clone); ok {
		return fmt.Errorf("%s is inside clone %s: name the clone %s instead", rsc, cl.ID, cl.ID)
	}
	if b, ok := e.parent.(*cib.Bundle); ok {
		return fmt.Errorf("%s is inside bundle %s: name the bundle %s instead", rsc, b.ID, b.ID)
	}
	return nil
}

func parseScore(s string) (cib.Score, error) {
	switch s {
	case "+INFINITY", "INFINITY", "infinity", "+infinity", "inf":
		return cib.Infinity, nil
	case "-INFINITY", "-infinity", "-inf":
		return cib.MinusInfinity, nil
	}
	sc, err := cib.ParseScore(s)
	if err != nil {
		return 0, fmt.Errorf("score %q: use an integer, INFINITY or -INFINITY", s)
	}
	return sc, nil
}

// newConstraintID returns the id given (which must be free) or the
// default made unique.
func newConstraintID(ids map[string]string, given, def string) (string, error) {
	if given != "" {
		if err := checkID(given, "constraint id"); err != nil {
			return "", err
		}
		if el := ids[given]; el != "" {
			return "", fmt.Errorf("id %q is already used (by a %s): choose another --id", given, el)
		}
		ids[given] = "constraint"
		return given, nil
	}
	return uniqueID(ids, sanitizeID(def), "constraint"), nil
}

// sanitizeID makes an id of arbitrary text, as pcs does for the ids it
// makes from node names and scores.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, ch := range b {
		ok := ch == '_' || ch == '.' || ch == '-' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9' && i > 0)
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 0 && (b[0] == '-' || b[0] == '.') {
		b[0] = '_'
	}
	return string(b)
}

// addLocation adds rsc_location RSC NODE SCORE.
func addLocation(c *cib.CIB, rsc, node, score, id string) (string, error) {
	if err := constraintTarget(c, rsc); err != nil {
		return "", err
	}
	if _, err := findNode(c, node); err != nil {
		return "", err
	}
	sc, err := parseScore(score)
	if err != nil {
		return "", err
	}
	ids, err := configIDs(c)
	if err != nil {
		return "", err
	}
	id, err = newConstraintID(ids, id, fmt.Sprintf("location-%s-%s-%s", rsc, node, sc))
	if err != nil {
		return "", err
	}
	c.Configuration.Constraints = append(c.Configuration.Constraints, &cib.Location{ID: id, Rsc: rsc, Node: node, Score: &sc})
	return id, nil
}

// addColocation adds rsc_colocation RSC with WITH SCORE.
func addColocation(c *cib.CIB, rsc, with, score, id string) (string, error) {
	for _, r := range []string{rsc, with} {
		if err := constraintTarget(c, r); err != nil {
			return "", err
		}
	}
	if rsc == with {
		return "", fmt.Errorf("%s cannot be colocated with itself: name two resources", rsc)
	}
	if score == "" {
		score = "INFINITY"
	}
	sc, err := parseScore(score)
	if err != nil {
		return "", err
	}
	ids, err := configIDs(c)
	if err != nil {
		return "", err
	}
	id, err = newConstraintID(ids, id, fmt.Sprintf("colocation-%s-%s-%s", rsc, with, sc))
	if err != nil {
		return "", err
	}
	c.Configuration.Constraints = append(c.Configuration.Constraints, &cib.Colocation{ID: id, Rsc: rsc, WithRsc: with, Score: &sc})
	return id, nil
}

// addOrder adds rsc_order start FIRST then start THEN.
func addOrder(c *cib.CIB, first, then, kind, id string) (string, error) {
	for _, r := range []string{first, then} {
		if err := constraintTarget(c, r); err != nil {
			return "", err
		}
	}
	if first == then {
		return "", fmt.Errorf("%s cannot be ordered after itself: name two resources", first)
	}
	suffix := "mandatory"
	switch strings.ToLower(kind) {
	case "":
	case "mandatory":
		kind = "Mandatory"
	case "optional":
		kind, suffix = "Optional", "optional"
	case "serialize":
		kind, suffix = "Serialize", "serialize"
	default:
		return "", fmt.Errorf("--kind %s: use Mandatory, Optional or Serialize", kind)
	}
	ids, err := configIDs(c)
	if err != nil {
		return "", err
	}
	id, err = newConstraintID(ids, id, fmt.Sprintf("order-%s-%s-%s", first, then, suffix))
	if err != nil {
		return "", err
	}
	c.Configuration.Constraints = append(c.Configuration.Constraints, &cib.Order{ID: id, First: first, Then: then, FirstAction: "start", ThenAction: "start", Kind: kind})
	return id, nil
}

// removeConstraint removes the constraint with that id.
func removeConstraint(c *cib.CIB, id string) error {
	var ids []string
	for i, k := range c.Configuration.Constraints {
		if k.ConstraintID() == id {
			c.Configuration.Constraints = slices.Delete(c.Configuration.Constraints, i, i+1)
			return nil
		}
		ids = append(ids, k.ConstraintID())
	}
	if len(ids) == 0 {
		return fmt.Errorf("no constraint %q: the cluster has no constraints", id)
	}
	return fmt.Errorf("no constraint %q: the constraints are %s (see `tachy constraint list`)", id, strings.Join(ids, ", "))
}

// moveResource prefers node for rsc with INFINITY (cli-prefer-RSC), as
// pcs resource move / crm_resource --move do; an earlier move is replaced.
func moveResource(c *cib.CIB, rsc, node string) (string, error) {
	return cliConstraint(c, rsc, node, "cli-prefer-"+rsc, cib.Infinity)
}

// banResource keeps rsc off node (cli-ban-RSC-on-NODE, -INFINITY).
func banResource(c *cib.CIB, rsc, node string) (string, error) {
	return cliConstraint(c, rsc, node, sanitizeID("cli-ban-"+rsc+"-on-"+node), cib.MinusInfinity)
}

func cliConstraint(c *cib.CIB, rsc, node, id string, sc cib.Score) (string, error) {
	if err := constraintTarget(c, rsc); err != nil {
		return "", err
	}
	if _, err := findNode(c, node); err != nil {
		return "", err
	}
	c.Configuration.Constraints = slices.DeleteFunc(c.Configuration.Constraints, func(k cib.Constraint) bool { return k.ConstraintID() == id })
	ids, err := configIDs(c)
	if err != nil {
		return "", err
	}
	if el := ids[id]; el != "" {
		return "", fmt.Errorf("id %q is already used (by a %s): rename that element first", id, el)
	}
	c.Configuration.Constraints = append(c.Configuration.Constraints, &cib.Location{ID: id, Rsc: rsc, Node: node, Score: &sc})
	return id, nil
}

// clearResource removes the constraints move and ban made for rsc (only
// those naming node, if node is not empty), and returns their ids.
func clearResource(c *cib.CIB, rsc, node string) ([]string, error) {
	if _, err := findResource(c, rsc); err != nil {
		return nil, err
	}
	var gone []string
	c.Configuration.Constraints = slices.DeleteFunc(c.Configuration.Constraints, func(k cib.Constraint) bool {
		l, ok := k.(*cib.Location)
		if !ok || l.Rsc != rsc || (node != "" && l.Node != node) {
			return false
		}
		if l.ID == "cli-prefer-"+rsc || strings.HasPrefix(l.ID, "cli-ban-"+rsc+"-on-") {
			gone = append(gone, l.ID)
			return true
		}
		return false
	})
	return gone, nil
}

// setNodeAttribute sets (nil: removes) a permanent node attribute, in the
// node's instance_attributes as crm_attribute and pcs node standby write
// them.
func setNodeAttribute(c *cib.CIB, node, name string, value *string) error {
	n, err := findNode(c, node)
	if err != nil {
		return err
	}
	ids, err := configIDs(c)
	if err != nil {
		return err
	}
	n.InstanceAttributes = setPair(ids, n.InstanceAttributes, "nodes-"+n.ID, "instance_attributes", name, value)
	return nil
}

// nodeAttribute is a permanent node attribute's value ("" when unset).
func nodeAttribute(n *cib.Node, name string) string {
	v := ""
	for _, s := range n.InstanceAttributes {
		if s.IDRef == "" && len(s.Rules) == 0 {
			for _, p := range s.Pairs {
				if p.Name == name && p.HasValue {
					v = p.Value
				}
			}
		}
	}
	return v
}

// activeNodes returns where the history shows rsc (or a primitive it
// contains, or an instance of one) active: the last operation, by call
// id, of each node's history is not a successful stop or a "not running"
// monitor.
func activeNodes(c *cib.CIB, rsc string) []string {
	prims := map[string]bool{rsc: true}
	for _, e := range resourceEntries(c) {
		if e.r.ResourceID() == rsc {
			for _, p := range primitivesUnder(e.r) {
				prims[p.ID] = true
			}
		}
	}
	var out []string
	for _, st := range c.Status.NodeStates {
		if st.LRM == nil {
			continue
		}
		for _, lr := range st.LRM.Resources {
			base, _, _ := strings.Cut(lr.ID, ":")
			if prims[base] && lrmActive(lr) {
				out = append(out, st.Uname)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func lrmActive(lr *cib.LRMResource) bool {
	var last *cib.LRMRscOp
	for _, op := range lr.Ops {
		if op.CallID < 0 || strings.HasSuffix(op.ID, "_last_failure_0") {
			continue
		}
		if last == nil || op.CallID > last.CallID {
			last = op
		}
	}
	if last == nil {
		return false
	}
	switch last.Operation {
	case "stop":
		return last.RCCode != 0 || last.OpStatus != 0
	case "monitor":
		return last.RCCode != 7
	}
	return true
}
