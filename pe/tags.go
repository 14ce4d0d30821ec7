package pe

import (
	"github.com/tachy-ha/tachy/cib"
)

// A constraint may name a resource template (meaning every primitive built
// from it) or a tag (every resource it lists) wherever it names a resource.
// Pacemaker rewrites such constraints into set-based ones before unpacking
// them (unpack_location_tags, unpack_colocation_tags, unpack_order_tags,
// unpack_rsc_ticket_tags, expand_tags_in_sets); expandReferences does the
// same on copies, so the rest of the scheduler only ever sees resources.

// references maps each template and tag id to the resource ids it stands
// for, in configuration order.
func references(c *cib.CIB) map[string][]string {
	refs := map[string][]string{}
	var walkPrim func(p *cib.Primitive)
	walkPrim = func(p *cib.Primitive) {
		if p != nil && p.Template != "" {
			refs[p.Template] = append(refs[p.Template], p.ID)
		}
	}
	for _, r := range c.Configuration.Resources {
		switch r := r.(type) {
		case *cib.Template:
			if _, ok := refs[r.ID]; !ok {
				refs[r.ID] = nil
			}
		case *cib.Primitive:
			walkPrim(r)
		case *cib.Group:
			for _, p := range r.Children {
				walkPrim(p)
			}
		case *cib.Clone:
			switch ch := r.Child.(type) {
			case *cib.Primitive:
				walkPrim(ch)
			case *cib.Group:
				for _, p := range ch.Children {
					walkPrim(p)
				}
			}
		case *cib.Bundle:
			walkPrim(r.Primitive)
		}
	}
	for _, sec := range c.Configuration.Other {
		if sec.Name != "tags" {
			continue
		}
		for _, t := range sec.Children {
			id, ok := t.Attr("id")
			if t.Name != "tag" || !ok {
				continue
			}
			var ids []string
			for _, o := range t.Children {
				if ref, ok := o.Attr("id"); ok && o.Name == "obj_ref" {
					ids = append(ids, ref)
				}
			}
			refs[id] = ids
		}
	}
	return refs
}

// expandReferences returns the constraints with template and tag
// references rewritten into resource sets; constraints without any are
// returned as they are.
func expandReferences(c *cib.CIB) []cib.Constraint {
	refs := references(c)
	if len(refs) == 0 {
		return c.Configuration.Constraints
	}
	isRef := func(id string) bool { _, ok := refs[id]; return ok }
	// toSet is pcmk__tag_to_set: a reference becomes an unordered set of
	// what it stands for; with convert, a plain resource becomes a set of
	// one, so that both sides of a two-sided constraint are sets.
	toSet := func(id string, convert bool) *cib.ResourceSet {
		if isRef(id) {
			f := false
			return &cib.ResourceSet{ID: id, Sequential: &f, Resources: append([]string(nil), refs[id]...)}
		}
		if convert && id != "" {
			return &cib.ResourceSet{ID: id, Resources: []string{id}}
		}
		return nil
	}
	out := make([]cib.Constraint, 0, len(c.Configuration.Constraints))
	for _, con := range c.Configuration.Constraints {
		out = append(out, expandConstraint(con, refs, isRef, toSet))
	}
	return out
}

// expandConstraint rewrites one constraint's template and tag references
// (the caller's toSet turns a reference into a set), or returns it as is.
func expandConstraint(con cib.Constraint, refs map[string][]string, isRef func(string) bool, toSet func(string, bool) *cib.ResourceSet) cib.Constraint {
	switch k := con.(type) {
	case *cib.Location:
		cp := *k
		switch {
		case len(k.Sets) > 0:
			cp.Sets = expandSets(k.Sets, refs)
		case isRef(k.Rsc):
			set := toSet(k.Rsc, false)
			set.Role, cp.Role = k.Role, ""
			cp.Rsc, cp.Sets = "", []*cib.ResourceSet{set}
		default:
			return k
		}
		return &cp
	case *cib.Colocation:
		cp := *k
		switch {
		case len(k.Sets) > 0:
			cp.Sets = expandSets(k.Sets, refs)
		case isRef(k.Rsc) || isRef(k.WithRsc):
			dep, prim := toSet(k.Rsc, true), toSet(k.WithRsc, true)
			dep.Role, prim.Role = k.RscRole, k.WithRscRole
			cp.Rsc, cp.WithRsc, cp.RscRole, cp.WithRscRole = "", "", "", ""
			cp.Sets = []*cib.ResourceSet{dep, prim}
		default:
			return k
		}
		return &cp
	case *cib.Order:
		cp := *k
		switch {
		case len(k.Sets) > 0:
			cp.Sets = expandSets(k.Sets, refs)
		case isRef(k.First) || isRef(k.Then):
			first, then := toSet(k.First, true), toSet(k.Then, true)
			first.Action, then.Action = k.FirstAction, k.ThenAction
			cp.First, cp.Then, cp.FirstAction, cp.ThenAction = "", "", "", ""
			cp.Sets = []*cib.ResourceSet{first, then}
		default:
			return k
		}
		return &cp
	case *cib.Ticket:
		cp := *k
		switch {
		case len(k.Sets) > 0:
			cp.Sets = expandSets(k.Sets, refs)
		case isRef(k.Rsc):
			set := toSet(k.Rsc, false)
			set.Role, cp.RscRole = k.RscRole, ""
			cp.Rsc, cp.Sets = "", []*cib.ResourceSet{set}
		default:
			return k
		}
		return &cp
	}
	return con
}

// expandSets is expand_tags_in_sets: a set member naming a template or a
// tag is replaced, in place, by what it stands for.
func expandSets(sets []*cib.ResourceSet, refs map[string][]string) []*cib.ResourceSet {
	out := make([]*cib.ResourceSet, len(sets))
	for i, s := range sets {
		out[i] = s
		for _, id := range s.Resources {
			if _, ok := refs[id]; ok {
				cp := *s
				cp.Resources = nil
				for _, m := range s.Resources {
					if ids, ok := refs[m]; ok {
						cp.Resources = append(cp.Resources, ids...)
					} else {
						cp.Resources = append(cp.Resources, m)
					}
				}
				out[i] = &cp
				break
			}
		}
	}
	return out
}
