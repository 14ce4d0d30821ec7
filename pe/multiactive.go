package pe

import "github.com/tachy-ha/tachy/cib"

// multipleActive applies each multiply active primitive's
// multiple-active policy (native_add_running, native_create_actions):
//   - stop_start (default): stop everywhere, start on the chosen node;
//   - stop_only: stop everywhere, start nowhere;
//   - block: leave it alone, unmanaged and blocked (with its whole group
//     when the group's policy is block too);
//   - stop_unexpected: stop it only where it should not be.
func (ws *workingSet) multipleActive() {
	for _, p := range ws.allPrimitives() {
		if len(p.RunningOn) < 2 || p.partialTarget != nil {
			continue
		}
		switch p.Meta["multiple-active"] {
		case "stop_only":
			ws.bans = append(ws.bans, stopKey{p, nil})
		case "block":
			block := []*Resource{p}
			if g := p.Parent; g != nil && g.isGroup() && g.Meta["multiple-active"] == "block" {
				block = g.Children
			}
			for _, r := range block {
				r.Managed = false
				r.blocked = true
			}
		case "stop_unexpected":
			p.stopUnexpected = true
		}
	}
}

// expectedNode is is_expected_node: with multiple-active=stop_unexpected,
// the node a restarting multiply active resource stays on, where it is
// neither stopped nor really started.
func (r *Resource) expectedNode(n *Node) bool {
	return r.stopUnexpected && len(r.RunningOn) > 1 && r.AssignedTo != nil && r.AssignedTo == n &&
		roleLess(cib.RoleStopped, r.NextRole)
}
