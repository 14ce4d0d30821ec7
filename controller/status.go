package controller

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tachy-ha/tachy/heartbeat"
	"github.com/tachy-ha/tachy/nbdrepl"
	"github.com/tachy-ha/tachy/quorum"
)

// Status is what `tachy status` shows, and its --json form.
type Status struct {
	Cluster     string                `json:"cluster"`
	ClusterID   uint32                `json:"cluster_id"`
	Node        string                `json:"node"`
	NodeID      uint32                `json:"node_id"`
	Incarnation uint64                `json:"incarnation"`
	PID         int                   `json:"pid"`
	UptimeSec   float64               `json:"uptime_s"`
	Receiver    string                `json:"receiver"`
	IntervalNs  int64                 `json:"interval_ns"`
	MissCount   int                   `json:"miss_count"`
	Members     []Member              `json:"members"`
	Quorum      quorum.Status         `json:"quorum"`
	Frames      heartbeat.Stats       `json:"frames"`
	Sender      heartbeat.SenderStats `json:"sender"`
	CIB         *CIBStatus            `json:"cib,omitempty"`
	// Volumes are the replicated volumes this node runs.
	Volumes []nbdrepl.VolumeStatus `json:"volumes,omitempty"`
}

// Member is one cluster node as this node sees it.
type Member struct {
	ID          uint32       `json:"id"`
	Name        string       `json:"name"`
	Local       bool         `json:"local,omitempty"`
	State       string       `json:"state"` // up, down, or unseen (never heard from)
	Incarnation uint64       `json:"incarnation,omitempty"`
	Links       []LinkStatus `json:"links"`
}

// LinkStatus is one link to a member.
type LinkStatus struct {
	Link    int    `json:"link"`
	Address string `json:"address"`
	State   string `json:"state"` // up, down, unknown (never heard), local
	// LastSeenMs is the age of the last valid heartbeat, -1 if none yet.
	LastSeenMs float64 `json:"last_seen_ms"`
	Frames     uint64  `json:"frames"`
}

// Status returns a snapshot of the node.
func (d *Daemon) Status() Status {
	v := d.hb.View()
	d.mu.Lock()
	qs := d.qs
	d.mu.Unlock()
	now := heartbeat.MonotonicNow()
	st := Status{Cluster: d.cfg.Cluster.Name, ClusterID: d.cfg.Cluster.ID, Node: d.local.Name, NodeID: d.local.ID,
		Incarnation: d.inc, PID: os.Getpid(), UptimeSec: time.Since(d.started).Seconds(), Receiver: v.Receiver,
		IntervalNs: v.Interval.Nanoseconds(), MissCount: v.MissCount, Quorum: qs, Frames: v.Frames, Sender: v.Sender, CIB: d.cib.status()}
	if st.CIB != nil && st.CIB.IsDC {
		d.plan.mu.Lock()
		st.CIB.Transition, st.CIB.TransitionOf, st.CIB.TransitionError = d.plan.summary, d.plan.version, d.plan.err
		d.plan.mu.Unlock()
	}
	peers := map[uint32]heartbeat.PeerView{}
	for _, p := range v.Peers {
		peers[p.Node] = p
	}
	for _, n := range d.cfg.Nodes {
		m := Member{ID: n.ID, Name: n.Name}
		if n.ID == d.local.ID {
			m.Local, m.State, m.Incarnation = true, "up", d.inc
			for i, a := range n.Addresses {
				m.Links = append(m.Links, LinkStatus{Link: i, Address: a.String(), State: "local", LastSeenMs: -1})
			}
			st.Members = append(st.Members, m)
			continue
		}
		p := peers[n.ID]
		m.Incarnation = p.Incarnation
		switch {
		case p.Up:
			m.State = "up"
		case p.Incarnation == 0:
			m.State = "unseen"
		default:
			m.State = "down"
		}
		for i, a := range n.Addresses {
			ls := LinkStatus{Link: i, Address: a.String(), State: "unknown", LastSeenMs: -1}
			for _, l := range p.Links {
				if int(l.Link) == i {
					ls.State, ls.Frames = l.State, l.Frames
					if l.LastSeenNs != 0 {
						ls.LastSeenMs = float64(now-l.LastSeenNs) / 1e6
					}
				}
			}
			m.Links = append(m.Links, ls)
		}
		st.Members = append(st.Members, m)
	}
	st.Volumes = d.volumeStatuses()
	return st
}

// WriteStatus prints a status for people, in the spirit of corosync-quorumtool
// and crm_mon: the cluster, quorum, then one line per member and link.
func WriteStatus(w io.Writer, s Status) {
	q := "NOT quorate"
	if s.Quorum.Quorate {
		q = "quorate"
	}
	fmt.Fprintf(w, "Cluster %s (id %d), node %s (id %d), pid %d, up %s\n", s.Cluster, s.ClusterID, s.Node, s.NodeID, s.PID,
		(time.Duration(s.UptimeSec * 1e9)).Round(time.Second))
	fmt.Fprintf(w, "Heartbeat: %s receiver, interval %s, down after %d misses (%s)\n", s.Receiver,
		time.Duration(s.IntervalNs), s.MissCount, time.Duration(s.IntervalNs*int64(s.MissCount)))
	fmt.Fprintf(w, "Quorum: %s: %s\n", q, s.Quorum.Reason)
	if c := s.CIB; c != nil {
		dc := c.DC
		if dc == "" {
			dc = "none elected"
		}
		fmt.Fprintf(w, "CIB: version %d.%d.%d, DC %s, this node %s (term %d, %d members)\n",
			c.Version.AdminEpoch, c.Version.Epoch, c.Version.NumUpdates, dc, strings.ToLower(c.RaftState), c.Term, len(c.Members))
		switch {
		case c.TransitionError != "":
			fmt.Fprintf(w, "Transition: pe failed: %s\n", c.TransitionError)
		case c.IsDC && len(c.Transition) == 0:
			fmt.Fprintln(w, "Transition: nothing to do")
		case c.IsDC:
			fmt.Fprintln(w, "Transition Summary:")
			for _, l := range c.Transition {
				fmt.Fprintln(w, l)
			}
		}
	}
	if len(s.Quorum.Flags) > 0 {
		fmt.Fprintf(w, "Quorum flags: %s\n", strings.Join(s.Quorum.Flags, " "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tSTATE\tLINK\tADDRESS\tLINK STATE\tLAST SEEN")
	for _, m := range s.Members {
		name := m.Name
		if m.Local {
			name += " (local)"
		}
		for i, l := range m.Links {
			seen := "-"
			if l.LastSeenMs >= 0 {
				seen = fmt.Sprintf("%.1f ms ago", l.LastSeenMs)
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", name, m.ID, m.State, l.Link, l.Address, l.State, seen)
			} else {
				fmt.Fprintf(tw, "\t\t\t%d\t%s\t%s\t%s\n", l.Link, l.Address, l.State, seen)
			}
		}
	}
	tw.Flush()
	f := s.Frames
	fmt.Fprintf(w, "\nFrames: %d accepted; rejected: %d bad key, %d replayed, %d stale, %d unknown peer, %d other cluster, %d malformed, %d wrong link\n",
		f.Accepted, f.BadMAC, f.Replay, f.Stale, f.UnknownPeer, f.WrongCluster, f.Malformed, f.WrongLink)
	fmt.Fprintf(w, "Sender: %d sent, %d late ticks (worst wake-up %.1f ms late), %d send errors\n", s.Sender.Sent, s.Sender.LateTicks, float64(s.Sender.MaxWakeLateUs)/1000, s.Sender.SendErrors)
	if s.Sender.Note != "" {
		fmt.Fprintf(w, "Sender note: %s\n", s.Sender.Note)
	}
	for _, v := range s.Volumes {
		fmt.Fprintf(w, "Volume %s: %s, disk %s, protocol %s, quorum %s", v.Name, v.Role, v.Disk, v.Protocol, v.Quorum)
		for _, p := range v.Peers {
			fmt.Fprintf(w, "; %s %s", p.Name, p.State)
			if p.OutOfSync > 0 {
				fmt.Fprintf(w, " (%d bytes out of sync)", p.OutOfSync)
			}
		}
		fmt.Fprintln(w)
	}
}
