package controller

import (
	"context"
	"encoding/json"
	"github.com/tachy-ha/tachy/config"
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
		// A new DC first applies everything its predecessor committed
		// (Raft commits them with an entry of the new term): planning
		// from less could undo a recorded start or fencing.
		if err := d.cib.r.CaughtUpAsLeader(ctx); err != nil {
			d.log.Warn("cib: the new DC could not catch up with what was committed; not planning yet", "err", err)
			continue
		}
		d.reconcile(ctx)
	}
}

// addMembers adds configured nodes that joined after the cluster was made
// (the founding members are from the bootstrap): first as learners, which
// receive the log without voting, then as voters once they have caught up,
// so that a node still copying the log never counts towards quorum.
func (d *Daemon) addMembers(ctx context.Context) {
	members, err := d.cib.r.Members()
	if err != nil {
		return
	}
	for i := range d.cfg.Nodes {
		n := &d.cfg.Nodes[i]
		peer := replica.Peer{Node: n.Name, Address: cibAddr(n, d.cfg.CIB.Port)}
		j := slices.IndexFunc(members, func(p replica.Peer) bool { return p.Node == n.Name })
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		switch {
		case j < 0:
			if err := d.cib.r.AddLearner(actx, peer); err != nil {
				d.log.Warn("cib: cannot add a configured node to the CIB's members", "peer", n.Name, "err", err)
			} else {
				d.log.Info("cib: node added to the CIB's members; it votes once it has caught up", "peer", n.Name)
			}
		case members[j].Learner && d.caughtUp(actx, n):
			if err := d.cib.r.AddNode(actx, peer); err != nil {
				d.log.Warn("cib: cannot make a caught-up node a voter", "peer", n.Name, "err", err)
			} else {
				d.log.Info("cib: node caught up: it votes now", "peer", n.Name)
			}
		}
		cancel()
	}
}

// caughtUp asks a learner how far it has applied the log.
func (d *Daemon) caughtUp(ctx context.Context, n *config.Node) bool {
	line, _ := json.Marshal(callRequest{Op: "applied"})
	out, err := d.cib.net.Call(ctx, cibAddr(n, d.cfg.CIB.Port), line)
	if err != nil {
		return false
	}
	var rep callReply
	if json.Unmarshal(out, &rep) != nil || rep.Error != "" {
		return false
	}
	return rep.Applied+16 >= d.cib.r.LastIndex()
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
	d.noteInputs(c)
	res, err := pe.Schedule(c, time.Now())
	var summary []string
	if err == nil {
		summary = res.Summary()
		d.maybeStartTransition(ctx, c, res)
		d.storeFastPlans(ctx, c, v.String())
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
		leaving := st != nil && shuttingDown(st)
		if !up[n.ID] && leaving {
			// It asked to leave and did: left, not lost. Its request is
			// spent; it must not make it leave again when it returns.
			out = append(out, &cib.Change{Op: cib.OpSetNodeAttribute, Node: n.Name, Name: "shutdown"})
			if st.InCCM != "false" || st.Expected != "down" {
				out = append(out, &cib.Change{Op: cib.OpNodeMembership, Node: n.Name,
					Membership: &cib.Membership{InCCM: "false", Crmd: "offline", Join: "down", Expected: "down"}})
			}
			continue
		}
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
		if up[n.ID] && st != nil && st.InCCM == "false" && st.LRM != nil && len(st.LRM.Resources) > 0 {
			// A node recorded gone is back: what its history says ran
			// there is stale (its daemon restarted, or fencing cleared
			// it), and the node's own erase may come after the first
			// plan. The DC forgets it before it plans, as Pacemaker's
			// controller does for a joining node; probes then say what
			// runs there.
			out = append(out, &cib.Change{Op: cib.OpEraseHistory, Node: n.Name})
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

// shutdownWait bounds how long a stopping daemon waits for the DC to move
// its resources away (Pacemaker's shutdown-escalation is 20 minutes; an
// agent's stop timeout is usually well under a minute).
const shutdownWait = 2 * time.Minute

// leaveCleanly is a clean shutdown, as Pacemaker's: the node asks to leave
// (the "shutdown" node attribute), the DC moves its resources away, and
// once nothing runs here the daemon exits; the DC then records the node
// as having left, not lost, and does not fence it. Without a DC (no
// quorum) it leaves at once: nothing can be moved then.
func (d *Daemon) leaveCleanly() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	now := strconv.FormatInt(time.Now().Unix(), 10)
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := d.cib.r.Change(cctx, d.cib.net, &cib.Change{Op: cib.OpSetNodeAttribute, Node: d.local.Name, Name: "shutdown", Value: &now})
	ccancel()
	if err != nil {
		d.log.Warn("cannot ask the DC to move this node's resources away; leaving with them (the others may fence this node)", "err", err)
		return
	}
	d.log.Info("shutting down: waiting for the DC to move this node's resources away")
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		c, _, err := d.cib.r.Fresh(rctx, d.cib.net)
		rcancel()
		if err == nil && len(activeHere(c, d.local.Name)) == 0 {
			d.log.Info("nothing runs here any more: leaving")
			return
		}
		select {
		case <-ctx.Done():
			d.log.Warn("shutdown: resources still run here after the wait; leaving with them", "resources", activeHere(c, d.local.Name))
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// activeHere lists the resources the CIB shows active on node.
func activeHere(c *cib.CIB, node string) []string {
	if c == nil {
		return []string{"(no CIB)"}
	}
	res, err := pe.Schedule(c, time.Now())
	if err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	var out []string
	states, _ := res.States()
	for _, s := range states {
		if slices.Contains(s.Nodes, node) {
			out = append(out, s.ID)
		}
	}
	return out
}

// shuttingDown reports whether a node asked to leave (Pacemaker's
// "shutdown" transient attribute, a time).
func shuttingDown(st *cib.NodeState) bool {
	for _, set := range st.Transient {
		for _, p := range set.Pairs {
			if p.Name == "shutdown" && p.HasValue && p.Value != "" && p.Value != "0" {
				return true
			}
		}
	}
	return false
}
