package controller

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/pe"
)

// The DC keeps the CIB's status in step with what this node's membership
// and quorum layers see, and plans the transition that pe computes from it.
// It reconciles (compares the CIB with the live view and submits what
// differs) rather than reacting to single events, so a missed event or a
// change of DC mid-way cannot leave the CIB wrong.

// plan is the DC's latest transition.
type plan struct {
	mu      sync.Mutex
	version string
	summary []string
	err     string
	at      time.Time
}

func (p *plan) set(version string, summary []string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.version, p.summary, p.at = version, summary, time.Now()
	p.err = ""
	if err != nil {
		p.err = err.Error()
	}
}

func (p *plan) clear() { p.set("", nil, nil) }

// kickDC asks the DC loop to reconcile now (membership or quorum changed).
func (d *Daemon) kickDC() {
	select {
	case d.dcKick <- struct{}{}:
	default:
	}
}

func (d *Daemon) dcLoop(ctx context.Context) {
	watch, stop := d.cib.r.Watch()
	defer stop()
	tick := time.NewTicker(time.Second) // also retries after failures
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-watch:
		case <-d.dcKick:
		case <-tick.C:
		case leader := <-d.cib.r.LeaderChanges():
			d.count("tachy_cib_leader_changes_total")
			if leader {
				d.log.Info("this node is the DC")
			} else {
				d.log.Info("this node is no longer the DC")
			}
		}
		if !d.cib.r.IsDC() {
			d.plan.clear()
			continue
		}
		d.reconcile(ctx)
	}
}

// addMembers makes configured nodes that joined after the cluster was
// made Raft voters (the founding members are from the bootstrap).
func (d *Daemon) addMembers(ctx context.Context) {
	members, err := d.cib.r.Members()
	if err != nil {
		return
	}
	for i := range d.cfg.Nodes {
		n := &d.cfg.Nodes[i]
		if slices.ContainsFunc(members, func(p replica.Peer) bool { return p.Node == n.Name }) {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := d.cib.r.AddNode(actx, replica.Peer{Node: n.Name, Address: cibAddr(n, d.cfg.CIB.Port)})
		cancel()
		if err != nil {
			d.log.Warn("cib: cannot add a configured node to the CIB's members", "peer", n.Name, "err", err)
		} else {
			d.log.Info("cib: node added to the CIB's members", "peer", n.Name)
		}
	}
}

// reconcile submits what the CIB lacks, then plans.
func (d *Daemon) reconcile(ctx context.Context) {
	d.addMembers(ctx)
	c, _ := d.cib.r.Current()
	for _, ch := range d.statusChanges(c) {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := d.submit(sctx, ch)
		cancel()
		if err != nil {
			d.log.Warn("cib: cannot record the cluster's state", "change", ch.Op, "node", ch.Node, "err", err)
			return
		}
	}
	c, v := d.cib.r.Current()
	res, err := pe.Schedule(c, time.Now())
	var summary []string
	if err == nil {
		summary = res.Summary()
		d.maybeStartTransition(ctx, c, res)
	}
	d.plan.set(v.String(), summary, err)
}

// lossSettle is how long the DC waits, after membership reports a node
// down, before it records the node lost (which, with fencing enabled,
// fences it). The membership layer detects a silent node in milliseconds,
// and a node that stalls that long under load comes back as quickly;
// fencing it would turn a hiccup into an outage. The fast path of
// DESIGN.md does not wait: it acts under the quorum lease instead.
func (d *Daemon) lossSettle() time.Duration {
	return max(250*time.Millisecond, 25*d.cfg.Heartbeat.DetectionTime())
}

// membersNow returns the nodes membership reports up, and notes since
// when the others are down.
func (d *Daemon) membersNow(now time.Time) map[uint32]bool {
	up := map[uint32]bool{d.local.ID: true}
	for _, id := range d.hb.Up() {
		up[id] = true
	}
	if d.downSince == nil {
		d.downSince = map[uint32]time.Time{}
	}
	for _, n := range d.cfg.Nodes {
		if up[n.ID] {
			delete(d.downSince, n.ID)
		} else if _, ok := d.downSince[n.ID]; !ok {
			d.downSince[n.ID] = now
			time.AfterFunc(d.lossSettle(), d.kickDC)
		}
	}
	return up
}

// settling reports whether a node the CIB records as a member has been
// down for less than lossSettle: its loss is not recorded yet.
func (d *Daemon) settling(id uint32, now time.Time) bool {
	since, ok := d.downSince[id]
	return ok && now.Sub(since) < d.lossSettle()
}

// statusChanges compares the CIB with this node's view: configured nodes
// listed, each node's membership, and quorum.
func (d *Daemon) statusChanges(c *cib.CIB) []*cib.Change {
	var out []*cib.Change
	now := time.Now()
	up := d.membersNow(now)
	for _, n := range d.cfg.Nodes {
		id := strconv.FormatUint(uint64(n.ID), 10)
		if !slices.ContainsFunc(c.Configuration.Nodes, func(cn *cib.Node) bool { return cn.ID == id }) {
			out = append(out, &cib.Change{Op: cib.OpEnsureNode, Node: n.Name, NodeID: id})
		}
		var st *cib.NodeState
		for _, s := range c.Status.NodeStates {
			if s.ID == id {
				st = s
			}
		}
		want := cib.Membership{InCCM: "true", Crmd: "online", Join: "member", Expected: "member"}
		if !up[n.ID] && st != nil && st.InCCM == "true" && d.settling(n.ID, now) {
			continue // maybe a hiccup: decide when it has lasted
		}
		if !up[n.ID] {
			// A node that was a member and vanished is still expected:
			// lost, not left, so pe fences it. One never seen, or one
			// that left cleanly, is expected down.
			want = cib.Membership{InCCM: "false", Crmd: "offline", Join: "down", Expected: "down"}
			if st != nil && st.Expected == "member" {
				want.Expected = "member"
			}
		}
		if st == nil || st.InCCM != want.InCCM || st.Crmd != want.Crmd || st.Join != want.Join || st.Expected != want.Expected {
			m := want
			out = append(out, &cib.Change{Op: cib.OpNodeMembership, Node: n.Name, Membership: &m})
		}
	}
	d.mu.Lock()
	quorate := d.qs.Quorate
	d.mu.Unlock()
	if c.HaveQuorum != quorate {
		v := "0"
		if quorate {
			v = "1"
		}
		out = append(out, &cib.Change{Op: cib.OpSetQuorum, Value: &v})
	}
	return out
}

// leaveCleanly records, on the way out, that this node leaves on purpose
// (expected down), so the survivors do not fence it.
func (d *Daemon) leaveCleanly() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m := cib.Membership{InCCM: "false", Crmd: "offline", Join: "down", Expected: "down"}
	if _, err := d.cib.r.Change(ctx, d.cib.net, &cib.Change{Op: cib.OpNodeMembership, Node: d.local.Name, Membership: &m}); err != nil {
		d.log.Warn("cib: could not record this node's clean shutdown; the others may fence it", "err", err)
	}
}
