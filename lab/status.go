package lab

import (
	"os"
	"path/filepath"
)

// Status is what the lab looks like from the root namespace: no daemon is
// asked anything (`tachy status` does that).
type Status struct {
	Dir       string       `json:"dir"`
	Nodes     []NodeStatus `json:"nodes"`
	Client    NodeStatus   `json:"client"`
	Partition [][]string   `json:"partition,omitempty"` // the groups, nodes in no named group included; empty when healed
}

// NodeStatus is one node's (or the client's) namespace, processes and
// links.
type NodeStatus struct {
	Name             string       `json:"name"`
	Namespace        string       `json:"namespace"`
	NamespacePresent bool         `json:"namespace_present"`
	PID              int          `json:"pid,omitempty"` // the daemon's last PID; 0 if none was started
	Daemon           string       `json:"daemon"`        // running, paused, dead or none
	Processes        []int        `json:"processes"`     // every process in the namespace
	Links            []LinkStatus `json:"links"`
}

// LinkStatus is one of a node's links, as its host-side port shows it.
type LinkStatus struct {
	Link          int    `json:"link"`           // 0 ring0, 1 ring1, 2 svc
	Interface     string `json:"interface"`      // in the node's namespace
	HostInterface string `json:"host_interface"` // the bridge port
	Bridge        string `json:"bridge"`
	Address       string `json:"address"`
	State         string `json:"state"` // up, down (CutLinks) or missing
}

// Status reports each node's namespace, daemon and links, and the
// partition.
func (l *Lab) Status() (Status, error) {
	l.refresh()
	l.mu.Lock()
	part := l.st.Partition
	l.mu.Unlock()
	s := Status{Dir: l.dir, Partition: part}
	for _, n := range l.Nodes() {
		ns := l.nodeStatus(n)
		ns.Daemon, ns.PID = l.daemonState(n)
		s.Nodes = append(s.Nodes, ns)
	}
	s.Client = l.nodeStatus(ClientNode)
	s.Client.Daemon = DaemonNone
	return s, nil
}

func (l *Lab) nodeStatus(node string) NodeStatus {
	i, _ := l.nodeIndex(node)
	ns := NodeStatus{Name: node, Namespace: nsName(i), Processes: []int{}}
	if _, err := os.Stat(filepath.Join("/run/netns", ns.Namespace)); err == nil {
		ns.NamespacePresent = true
		if pids, err := namespacePIDs(ns.Namespace); err == nil {
			ns.Processes = pids
		}
	}
	for link := range numLinks {
		if i == 0 && link != Service {
			continue
		}
		ls := LinkStatus{Link: link, Interface: nodeIfaces[link], HostInterface: hostIface(i, link), Bridge: Bridges[link], Address: addr4(i, link).String(), State: "missing"}
		if up, ok := linkUp(ls.HostInterface); ok {
			ls.State = map[bool]string{true: "up", false: "down"}[up]
		}
		ns.Links = append(ns.Links, ls)
	}
	return ns
}
