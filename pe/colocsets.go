package pe

import (
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// Colocations between resource sets, as Pacemaker 2.1.5's
// unpack_colocation_set and colocate_rsc_sets build them: within a set,
// members depend on the member before them (ordering=group, the default)
// or after them (ordering=listed); a negative score anti-colocates each
// member with every earlier one; sequential=false adds nothing inside
// the set. Between consecutive sets, the earlier set depends on the later.

func sequential(s *cib.ResourceSet) bool { return s.Sequential == nil || *s.Sequential }

// setMembers resolves a set's resource ids, skipping those the scheduler
// does not place on their own (unknown ids, group members, instances).
func (ws *workingSet) setMembers(s *cib.ResourceSet) []*Resource {
	var out []*Resource
	for _, id := range s.Resources {
		if r := ws.byID[id]; r != nil && r.Parent == nil {
			out = append(out, r)
		}
	}
	return out
}

func (ws *workingSet) unpackColocationSets(col *cib.Colocation) {
	if col.Score == nil {
		return
	}
	influence := col.Extra["influence"]
	var last *cib.ResourceSet
	for _, set := range col.Sets {
		ws.colocateWithinSet(col.ID, set, *col.Score, influence)
		if last != nil {
			ws.colocateSets(col.ID, last, set, *col.Score, influence)
		}
		last = set
	}
}

// colocateWithinSet is unpack_colocation_set.
func (ws *workingSet) colocateWithinSet(id string, set *cib.ResourceSet, score Score, influence string) {
	if set.Score != nil {
		score = *set.Score
	}
	if score == 0 || !sequential(set) {
		return
	}
	setID := set.ID
	if setID == "" {
		setID = id
	}
	members := ws.setMembers(set)
	role := set.Role
	switch {
	case score > 0 && (set.Ordering == "" || strings.EqualFold(set.Ordering, "group")):
		for i := 1; i < len(members); i++ {
			ws.addColocation(setID, members[i], members[i-1], score, role, role, "", influence)
		}
	case score > 0:
		for i := 1; i < len(members); i++ {
			ws.addColocation(setID, members[i-1], members[i], score, role, role, "", influence)
		}
	default:
		// Anti-colocating each member with every earlier one is the only
		// way to keep every pair apart.
		for i, r := range members {
			for _, with := range members[:i] {
				ws.addColocation(setID, r, with, score, role, role, "", influence)
			}
		}
	}
}

// colocateSets is colocate_rsc_sets: set1 (listed first) depends on set2.
// A sequential set is represented by its first member (set1) or its last
// (set2), since its members already follow one another.
func (ws *workingSet) colocateSets(id string, set1, set2 *cib.ResourceSet, score Score, influence string) {
	if score == 0 {
		return
	}
	m1, m2 := ws.setMembers(set1), ws.setMembers(set2)
	if sequential(set1) {
		if len(m1) == 0 || m1[0].ID != set1.Resources[0] {
			return // the representative is not placeable: nothing to tie
		}
		m1 = m1[:1]
	}
	if sequential(set2) {
		if len(m2) == 0 || m2[len(m2)-1].ID != set2.Resources[len(set2.Resources)-1] {
			return
		}
		m2 = m2[len(m2)-1:]
	}
	for _, r1 := range m1 {
		for _, r2 := range m2 {
			ws.addColocation(id, r1, r2, score, set1.Role, set2.Role, "", influence)
		}
	}
}
