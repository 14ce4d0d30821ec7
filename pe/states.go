package pe

// ResourceState is one primitive (or clone instance) as the scheduler
// found it: for status displays and their JSON.
type ResourceState struct {
	ID      string   `json:"id"`
	Agent   string   `json:"agent"`
	Role    string   `json:"role"`
	Nodes   []string `json:"nodes,omitempty"`
	Parent  string   `json:"parent,omitempty"` // group or clone
	Failed  bool     `json:"failed,omitempty"`
	Managed bool     `json:"managed"`
}

// NodeState is a node as the scheduler found it.
type NodeState struct {
	Name        string `json:"name"`
	Online      bool   `json:"online"`
	Unclean     bool   `json:"unclean,omitempty"`
	Standby     bool   `json:"standby,omitempty"`
	Maintenance bool   `json:"maintenance,omitempty"`
}

// States lists the primitives' current state, top-level resources in
// assignment order.
func (r *Result) States() ([]ResourceState, []NodeState) {
	var rs []ResourceState
	for _, top := range r.Resources {
		for _, p := range top.primitives() {
			s := ResourceState{ID: p.ID, Role: string(p.Role), Failed: p.Failed, Managed: p.Managed}
			if p.Prim != nil {
				s.Agent = p.Prim.Class + ":"
				if p.Prim.Provider != "" {
					s.Agent += p.Prim.Provider + ":"
				}
				s.Agent += p.Prim.Type
			}
			if p.Parent != nil {
				s.Parent = p.Parent.ID
			}
			for _, n := range p.RunningOn {
				s.Nodes = append(s.Nodes, n.Name)
			}
			if len(s.Nodes) == 0 {
				s.Role = "Stopped"
			}
			rs = append(rs, s)
		}
	}
	var ns []NodeState
	for _, n := range r.Nodes {
		ns = append(ns, NodeState{Name: n.Name, Online: n.Online, Unclean: n.Unclean, Standby: n.Standby, Maintenance: n.Maintenance})
	}
	return rs, ns
}
