package pe

import (
	"slices"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

func TestExpandReferences(t *testing.T) {
	inf := cib.Infinity
	c := &cib.CIB{}
	c.Configuration.Resources = []cib.Resource{
		&cib.Template{ID: "tpl"},
		&cib.Primitive{ID: "a", Template: "tpl"},
		&cib.Primitive{ID: "b", Template: "tpl"},
		&cib.Primitive{ID: "c"},
	}
	c.Configuration.Other = []*cib.XMLElement{{Name: "tags", Children: []*cib.XMLElement{
		{Name: "tag", Attrs: []cib.Attr{{Name: "id", Value: "web"}}, Children: []*cib.XMLElement{
			{Name: "obj_ref", Attrs: []cib.Attr{{Name: "id", Value: "c"}}},
			{Name: "obj_ref", Attrs: []cib.Attr{{Name: "id", Value: "a"}}},
		}},
	}}}
	plain := &cib.Colocation{ID: "plain", Rsc: "a", WithRsc: "c", Score: &inf}
	c.Configuration.Constraints = []cib.Constraint{
		plain,
		&cib.Colocation{ID: "col", Rsc: "tpl", WithRsc: "c", RscRole: cib.RoleStarted, Score: &inf},
		&cib.Location{ID: "loc", Rsc: "web", Node: "n1", Score: &inf, Role: cib.RolePromoted},
		&cib.Order{ID: "ord", First: "c", Then: "web", FirstAction: "promote"},
		&cib.Colocation{ID: "sets", Score: &inf, Sets: []*cib.ResourceSet{{ID: "s", Resources: []string{"c", "tpl"}}}},
	}
	got := expandReferences(c)
	if got[0] != plain {
		t.Errorf("a constraint without references was rewritten: %+v", got[0])
	}
	col := got[1].(*cib.Colocation)
	if col.Rsc != "" || len(col.Sets) != 2 || !slices.Equal(col.Sets[0].Resources, []string{"a", "b"}) ||
		col.Sets[0].Sequential == nil || *col.Sets[0].Sequential || col.Sets[0].Role != cib.RoleStarted ||
		!slices.Equal(col.Sets[1].Resources, []string{"c"}) || col.Sets[1].Sequential != nil {
		t.Errorf("template colocation: %+v sets %+v %+v", col, col.Sets[0], col.Sets[1])
	}
	loc := got[2].(*cib.Location)
	if loc.Rsc != "" || loc.Role != "" || len(loc.Sets) != 1 || loc.Sets[0].Role != cib.RolePromoted ||
		!slices.Equal(loc.Sets[0].Resources, []string{"c", "a"}) {
		t.Errorf("tag location: %+v", loc)
	}
	ord := got[3].(*cib.Order)
	if len(ord.Sets) != 2 || ord.Sets[0].Action != "promote" || !slices.Equal(ord.Sets[1].Resources, []string{"c", "a"}) {
		t.Errorf("tag order: %+v", ord)
	}
	sets := got[4].(*cib.Colocation)
	if !slices.Equal(sets.Sets[0].Resources, []string{"c", "a", "b"}) {
		t.Errorf("set member naming a template: %+v", sets.Sets[0])
	}
	// The CIB itself is untouched.
	if c.Configuration.Constraints[1].(*cib.Colocation).Rsc != "tpl" {
		t.Error("expandReferences modified the CIB")
	}
}
