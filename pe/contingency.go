package pe

import (
	"fmt"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// Contingency plans are the fast path of DESIGN.md: for each node that is
// up, the transition its loss would cause, computed ahead of time so that
// the survivors can act the moment membership reports the loss instead of
// waiting for a DC election and a fresh pe run. A plan is an ordinary
// transition: where fencing is enabled, the lost node's resources are
// recovered only after its fencing action (the graph orders them so), so
// executing a plan early is exactly as safe as executing it late. The slow
// path reconciles afterwards with a transition from the recorded state.

// Plan is what the loss of one node causes.
type Plan struct {
	Lost   string // the node's name
	Result *Result
}

// Executed returns the plan's graph actions in execution order.
func (p Plan) Executed() []*Action { return p.Result.Execute().Executed }

// On returns the plan's graph actions that node runs, in execution order:
// a survivor's part of the plan.
func (p Plan) On(node string) []*Action {
	var out []*Action
	for _, a := range p.Executed() {
		if a.Node == node && !a.Pseudo {
			out = append(out, a)
		}
	}
	return out
}

// WithoutNode returns a copy of c in which the named cluster node has left
// the membership unexpectedly, as the DC records it when a node is lost
// (in_ccm false, controller offline, still expected to be a member), and
// quorum is as given. c is not modified; unchanged parts are shared.
func WithoutNode(c *cib.CIB, name string, quorate bool) (*cib.CIB, error) {
	var id string
	var names []string
	for _, n := range c.Configuration.Nodes {
		if n.Type == "remote" {
			continue
		}
		names = append(names, n.Uname)
		if n.Uname == name {
			id = n.ID
		}
	}
	if id == "" {
		return nil, fmt.Errorf("pe: no cluster node %q in the configuration; its cluster nodes are: %s", name, strings.Join(names, " "))
	}
	cp := *c
	cp.HaveQuorum = quorate
	cp.Status.NodeStates = make([]*cib.NodeState, 0, len(c.Status.NodeStates))
	for _, st := range c.Status.NodeStates {
		if st.ID == id || (st.ID == "" && st.Uname == name) {
			lost := *st
			lost.InCCM, lost.Crmd, lost.Join, lost.Expected = "false", "offline", "down", "member"
			st = &lost
		}
		cp.Status.NodeStates = append(cp.Status.NodeStates, st)
	}
	return &cp, nil
}

// ContingencyPlans computes a plan for every cluster node that is online
// now. quorate reports whether the remaining nodes keep quorum without the
// lost one; the pe does not count votes (the quorum package does).
func ContingencyPlans(c *cib.CIB, now time.Time, o Options, quorate func(lost string) bool) ([]Plan, error) {
	current, err := ScheduleWith(c, now, o)
	if err != nil {
		return nil, err
	}
	var plans []Plan
	for _, n := range current.Nodes {
		if !n.Online || n.Unclean || n.Attrs["#kind"] != "cluster" {
			continue
		}
		without, err := WithoutNode(c, n.Name, quorate(n.Name))
		if err != nil {
			return nil, err
		}
		res, err := ScheduleWith(without, now, o)
		if err != nil {
			return nil, fmt.Errorf("pe: plan for losing %s: %w", n.Name, err)
		}
		plans = append(plans, Plan{Lost: n.Name, Result: res})
	}
	return plans, nil
}
