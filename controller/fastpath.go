package controller

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/fastpath"
	"github.com/tachy-ha/tachy/heartbeat"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
	"github.com/tachy-ha/tachy/vip"
)

// The fast path (package fastpath): the DC stores, with the CIB, for each
// node the starts of floating IPs its loss causes (the contingency plans,
// restricted to built-in vip resources whose start the graph does not order
// after fencing); each node runs the quorum lease, and when membership
// reports a peer lost, the survivor that the plan names starts its part as
// soon as the lease logic allows, then records the result so that the
// slow path finds the VIP running there.

// fastPlansSection is the CIB status section holding the plans.
const fastPlansSection = "tachy_fast_plans"

// fastTake is one start of a plan.
type fastTake struct {
	Resource, Node string
}

// fastPathEnabled: the lease needs a plain majority of votes.
func fastPathEnabled(cfg *config.Config) (bool, string) {
	q := cfg.Quorum
	switch {
	case len(cfg.Nodes) < 3:
		return false, "fewer than 3 nodes"
	case q.TwoNode || q.LastManStanding || q.AutoTieBreaker:
		return false, "two_node, last_man_standing and auto_tie_breaker change the majority the quorum lease relies on"
	case cfg.ExpectedVotes() != sumVotes(cfg):
		return false, "expected_votes differs from the nodes' votes"
	}
	for _, n := range cfg.Nodes {
		if n.ID > fastpath.MaxNodeID {
			return false, fmt.Sprintf("node id %d above %d", n.ID, fastpath.MaxNodeID)
		}
	}
	return true, ""
}

func sumVotes(cfg *config.Config) int {
	t := 0
	for _, n := range cfg.Nodes {
		t += n.Votes
	}
	return t
}

// vipHolder adapts vip.Manager to fastpath.Holder.
type vipHolder struct{ m *vip.Manager }

func (h vipHolder) SetLease(end int64)       { h.m.SetLease(end) }
func (h vipHolder) Holding() bool            { return len(h.m.Held()) > 0 }
func (h vipHolder) ReleaseAll() []string     { return specIPs(h.m.ReleaseAll()) }
func (h vipHolder) ReleaseUngated() []string { return specIPs(h.m.ReleaseUngated()) }

func specIPs(specs []vip.Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.IP.String())
	}
	return out
}

// startFastPath runs the quorum lease (nil when the fast path is off).
func (d *Daemon) startFastPath(ctx context.Context, secret []byte) (*fastpath.Runner, error) {
	if ok, why := fastPathEnabled(d.cfg); !ok {
		d.log.Info("fast failover path off: floating IPs move on the slow path only", "why", why)
		return nil, nil
	}
	votes := map[uint32]uint32{}
	peers := map[uint32][]netip.Addr{}
	for _, n := range d.cfg.Nodes {
		votes[n.ID] = uint32(n.Votes)
		if n.ID != d.local.ID {
			peers[n.ID] = n.Addresses
		}
	}
	// Views go out every heartbeat interval, each grant worth 5 intervals
	// or the failure detection time, whichever is longer: a lease
	// survives every peer's sender being late by 4 intervals at once, and
	// no stall the failure detector tolerates ends it (with the QEMU
	// lab's 20 ms x 10, a 100 ms stall of the one other live node under
	// TCG ended a holder's lease and moved its VIP). δ is half an
	// interval: frames between the nodes of a LAN take microseconds.
	iv := d.cfg.Heartbeat.Interval
	lease := max(5*iv, iv*time.Duration(d.cfg.Heartbeat.MissCount))
	// A view grants the peers heard within the grant window G: by
	// default the detection time D, what membership has up. A shorter G
	// (heartbeat.grant_window) has the others stop granting a silent
	// node G after its last heartbeat, so its lease, and the take-over
	// guard, end D - G sooner; but a live holder whose heartbeats stall
	// for about G + L loses its lease too (docs/vip.md). Membership still
	// decides that a take-over starts at all (onPeerLost), so a hiccup
	// shorter than D moves nothing.
	window := d.cfg.Heartbeat.GrantWindowOrDefault()
	// When the lease lapses (a majority's grants late by more than L: a
	// peer stalled on a loaded machine), the IPv6 VIPs go at once, and the
	// IPv4 ones, which the XDP responder keeps silent past the lease end,
	// stay configured for the grace: the lease revives if the late frames
	// come and show that no take-over can have happened (fastpath's
	// revival rule), usually a few milliseconds later, and the VIPs answer
	// again with no CIB change, rather than coming back by the slow path
	// a second later. The grace is the DC's loss settle time (max(250 ms,
	// 25 D)): a lapse that lasts longer is a node the DC records lost, a
	// take-over by then has happened or will by the slow path, and the
	// addresses go and their stops are recorded as before.
	grace := d.lossSettle()
	// The view frames start off: prepareTakeovers turns them on while the
	// CIB has a floating IP (fastPathNeeded).
	r, err := fastpath.Start(ctx, fastpath.RunnerConfig{
		Lease:      fastpath.Config{Self: d.local.ID, Votes: votes, Lease: lease, Delta: iv / 2},
		RTPriority: d.cfg.Heartbeat.RealtimePriority,
		ClusterID:  d.cfg.Cluster.ID, Incarnation: d.inc, Key: fastpath.DeriveKey(secret),
		Port: d.cfg.Heartbeat.Port + 1, Interval: iv, Peers: peers, Up: d.hb.Up, Holder: vipHolder{d.vips},
		GrantWindow: window, Heard: d.hb.LastHeard, Grace: grace,
		OnLeaseEnded: d.onLeaseEnded, OnRevived: d.onLeaseRevived, Log: d.log, Off: true,
	})
	if err != nil {
		return nil, err
	}
	d.log.Info("fast failover path on", "lease", lease, "grant_window", window, "delta", iv/2, "revival_grace", grace)
	go d.prepareTakeovers(ctx, r)
	return r, nil
}

// fastPathNeeded reports whether the quorum lease must run: a floating IP
// (the vip agent's) is configured, or still active on some node (one
// deleted from the configuration and not yet stopped). Leases and take-over
// guards need the view frames; a cluster without floating IPs does not. A
// VIP's first start waits for its node's lease (vip.Manager.WaitLease)
// while the frames begin, which they do when the configuration that
// creates it reaches each node, before any plan for it exists.
func fastPathNeeded(c *cib.CIB) bool {
	if c == nil {
		return false
	}
	if len(vipPrimitives(c)) > 0 {
		return true
	}
	for _, st := range c.Status.NodeStates {
		if st.LRM == nil {
			continue
		}
		for _, lr := range st.LRM.Resources {
			if lr.Type == lrmd.VIPAgentName && (lr.Class == lrmd.ClassTachy || lr.Class == "ocf" && lr.Provider == "tachy") &&
				len(activeFromHistory(c, lr.ID)) > 0 {
				return true
			}
		}
	}
	return false
}

// prepareTakeovers turns the view frames on or off (fastPathNeeded) and
// keeps ready, ahead of any loss, the take-overs the CIB's plans give this
// node (vip.Manager.Prepare): a take-over is then an address, a map update
// and a frame.
func (d *Daemon) prepareTakeovers(ctx context.Context, r *fastpath.Runner) {
	watch, stop := d.cib.r.Watch()
	defer stop()
	last := ""
	lastNeeded := false
	for {
		c, _ := d.cib.r.Current()
		if needed := fastPathNeeded(c); needed != lastNeeded {
			r.SetActive(needed)
			if needed {
				d.log.Info("fast path: view frames on (a floating IP is configured)")
			} else {
				d.log.Info("fast path: view frames off (no floating IP)")
			}
			lastNeeded = needed
		}
		var specs []vip.Spec
		var key strings.Builder
		if c != nil {
			for _, takes := range readFastPlans(c) {
				for _, t := range takes {
					p := c.FindPrimitive(t.Resource)
					if t.Node != d.local.Name || p == nil {
						continue
					}
					if s, err := vip.ParseSpec(agentParams(c, p)); err == nil {
						specs = append(specs, s)
					}
				}
			}
		}
		sort.Slice(specs, func(i, j int) bool { return specs[i].IP.Less(specs[j].IP) })
		for _, s := range specs {
			fmt.Fprintf(&key, "%s/%d/%s;", s.IP, s.Bits, s.Nic)
		}
		// Every time: a take-over made ready is used up by a start, and
		// Prepare does nothing for what is ready already.
		d.vips.Prepare(specs)
		if key.String() != last {
			d.log.Debug("fast path: take-overs prepared", "vips", key.String())
			last = key.String()
		}
		select {
		case <-ctx.Done():
			return
		case <-watch:
		}
	}
}

// onLeaseEnded: the VIPs were released for want of quorum. Their monitors
// would find them gone and count failures; the stops are recorded instead
// once the CIB can be written again.
func (d *Daemon) onLeaseEnded(released []string) {
	if len(released) == 0 {
		return
	}
	began := time.Now()
	d.metricAdd("tachy_fast_lease_releases_total", float64(len(released)))
	c, _ := d.cib.r.Current()
	for _, p := range vipPrimitives(c) {
		s, err := vip.ParseSpec(agentParams(c, p))
		if err != nil || !slices.Contains(released, s.IP.String()) {
			continue
		}
		// The stop finds the address gone and says so (rc 0, through the
		// executor for a call id that orders it after the start).
		req, err := actionRequest(c, nil, &pe.Action{Resource: p.ID, Task: "stop", Node: d.local.Name})
		if err != nil {
			continue
		}
		r, err := d.runAction(context.Background(), req)
		if err != nil {
			d.log.Warn("fast path: cannot record the release", "resource", p.ID, "err", err)
			continue
		}
		d.log.Info("fast path: release recorded as a stop", "resource", p.ID, "call", r.CallID, "rc", r.RC, "took", time.Since(began))
		d.recordFast(r, nil)
	}
}

// onLeaseRevived: the lease lapsed and revived within the grace; the VIPs
// stayed, and nothing is recorded.
func (d *Daemon) onLeaseRevived(lapse time.Duration) {
	d.count("tachy_fast_lease_revivals_total")
}

// vipPrimitives lists the primitives of the built-in vip agent.
func vipPrimitives(c *cib.CIB) []*cib.Primitive {
	var out []*cib.Primitive
	if c == nil {
		return nil
	}
	var walk func(r cib.Resource)
	walk = func(r cib.Resource) {
		switch r := r.(type) {
		case *cib.Primitive:
			a := lrmd.Agent{Class: r.Class, Provider: r.Provider, Type: r.Type}
			if r.Type == lrmd.VIPAgentName && (a.Class == lrmd.ClassTachy || a.Class == "ocf" && a.Provider == "tachy") {
				out = append(out, r)
			}
		case *cib.Group:
			for _, m := range r.Children {
				walk(m)
			}
		}
	}
	for _, r := range c.Configuration.Resources {
		walk(r)
	}
	return out
}

// fastPlans extracts, from the contingency plans of c, the starts of vip
// resources on survivors that the graph does not order after fencing.
func fastPlans(c *cib.CIB, now time.Time, quorate func(lost string) bool) (map[string][]fastTake, error) {
	vips := map[string]bool{}
	for _, p := range vipPrimitives(c) {
		vips[p.ID] = true
	}
	if len(vips) == 0 {
		return nil, nil
	}
	plans, err := pe.ContingencyPlans(c, now, pe.Options{}, quorate)
	if err != nil {
		return nil, err
	}
	// Only take-overs: starts of VIPs active on the lost node now.
	cur, err := pe.Schedule(c, now)
	if err != nil {
		return nil, err
	}
	activeOn := map[string][]string{}
	states, _ := cur.States()
	for _, st := range states {
		activeOn[st.ID] = st.Nodes
	}
	out := map[string][]fastTake{}
	for _, p := range plans {
		before := map[int][]int{}
		byID := map[int]*pe.Action{}
		for _, a := range p.Result.Actions {
			byID[a.ID] = a
		}
		for _, e := range p.Result.Edges {
			before[e.Then] = append(before[e.Then], e.First)
		}
		afterFencing := func(id int) bool {
			seen := map[int]bool{}
			stack := []int{id}
			for len(stack) > 0 {
				x := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				for _, f := range before[x] {
					if seen[f] {
						continue
					}
					seen[f] = true
					if a := byID[f]; a != nil && a.Task == "stonith" && a.Runnable && !a.Optional {
						return true
					}
					stack = append(stack, f)
				}
			}
			return false
		}
		for _, a := range p.Executed() {
			if a.Task == "start" && !a.Pseudo && vips[a.Resource] && a.Node != p.Lost && slices.Contains(activeOn[a.Resource], p.Lost) && !afterFencing(a.ID) {
				out[p.Lost] = append(out[p.Lost], fastTake{Resource: a.Resource, Node: a.Node})
			}
		}
	}
	return out, nil
}

// fastPlansXML renders plans as the CIB status section.
func fastPlansXML(plans map[string][]fastTake) string {
	var b bytes.Buffer
	b.WriteString("<" + fastPlansSection + ">")
	lost := make([]string, 0, len(plans))
	for l := range plans {
		lost = append(lost, l)
	}
	sort.Strings(lost)
	for _, l := range lost {
		fmt.Fprintf(&b, `<plan lost="%s">`, xmlEscape(l))
		for _, t := range plans[l] {
			fmt.Fprintf(&b, `<start resource="%s" node="%s"/>`, xmlEscape(t.Resource), xmlEscape(t.Node))
		}
		b.WriteString("</plan>")
	}
	b.WriteString("</" + fastPlansSection + ">")
	return b.String()
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// readFastPlans reads the section back: for lost node name, the takes.
func readFastPlans(c *cib.CIB) map[string][]fastTake {
	out := map[string][]fastTake{}
	if c == nil {
		return out
	}
	sec := c.StatusSection(fastPlansSection)
	if sec == nil {
		return out
	}
	for _, p := range sec.Children {
		lost, _ := p.Attr("lost")
		for _, s := range p.Children {
			r, _ := s.Attr("resource")
			n, _ := s.Attr("node")
			out[lost] = append(out[lost], fastTake{Resource: r, Node: n})
		}
	}
	return out
}

// storeFastPlans (on the DC, after each pe run) keeps the CIB's plans in
// step with the CIB: recomputed when the CIB changed, written when they
// differ.
func (d *Daemon) storeFastPlans(ctx context.Context, c *cib.CIB, version string) {
	if d.fast == nil || version == d.fastPlansOf {
		return
	}
	total := sumVotes(d.cfg)
	quorate := func(lost string) bool {
		n, ok := d.cfg.Node(lost)
		return ok && 2*(total-n.Votes) > total
	}
	plans, err := fastPlans(c, time.Now(), quorate)
	if err != nil {
		d.log.Warn("fast path: cannot compute the contingency plans", "err", err)
		return
	}
	want := ""
	if len(plans) > 0 {
		want = fastPlansXML(plans)
	}
	if reflectPlans(readFastPlans(c), plans) {
		d.fastPlansOf = version
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.submit(sctx, &cib.Change{Op: cib.OpSetStatusSection, Name: fastPlansSection, XML: want}); err != nil {
		d.log.Warn("fast path: cannot store the contingency plans", "err", err)
		return
	}
	d.log.Info("fast path: contingency plans stored", "plans", strings.TrimPrefix(want, "<"+fastPlansSection+">"))
}

func reflectPlans(a, b map[string][]fastTake) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// onPeerLost runs this node's part of the plan for the lost peer;
// evidence is the CLOCK_MONOTONIC time membership declared it down.
func (d *Daemon) onPeerLost(id uint32, evidence int64) {
	if d.fast == nil {
		return
	}
	late := time.Duration(heartbeat.MonotonicNow() - evidence)
	d.fast.SetUp(d.hb.Up())
	d.fast.Kick() // the others learn at once that this node no longer hears the lost one
	lost := d.names[id]
	c, _ := d.cib.r.Current()
	var mine []fastTake
	for _, t := range readFastPlans(c)[lost] {
		if t.Node != d.local.Name {
			continue
		}
		// A plan is only as fresh as the CIB it came from: take over only
		// what this node's copy of the CIB shows active on the lost node
		// and nowhere else.
		if on := activeFromHistory(c, t.Resource); len(on) != 1 || on[0] != lost {
			d.log.Info("fast path: plan out of date, not taking over", "resource", t.Resource, "lost", lost, "active_on", on)
			continue
		}
		mine = append(mine, t)
	}
	if len(mine) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		waited, err := d.fast.WaitTakeover(ctx, id)
		if err != nil {
			d.log.Warn("fast path: not taking over; the slow path will", "lost", lost, "err", err)
			return
		}
		// The CIB again, as it is now: while the guard ran, the lost node
		// may have recorded the VIP stopped (its lease ended, and it runs)
		// and the DC started it elsewhere.
		if now, _ := d.cib.r.Current(); now != nil {
			c = now
		}
		for _, t := range mine {
			if on := activeFromHistory(c, t.Resource); len(on) != 1 || on[0] != lost {
				d.log.Info("fast path: the CIB changed during the guard, not taking over", "resource", t.Resource, "lost", lost, "active_on", on)
				continue
			}
			p := c.FindPrimitive(t.Resource)
			if p == nil {
				continue
			}
			a := &pe.Action{Resource: t.Resource, Task: "start", Node: d.local.Name}
			// No pe run on the fast path: parameters in sets with rules
			// are not evaluated (a vip's normally have none).
			req, err := actionRequest(c, nil, a)
			if err != nil {
				d.log.Warn("fast path: cannot start", "resource", t.Resource, "err", err)
				continue
			}
			if s, err := vip.ParseSpec(req.Params); err == nil {
				d.vips.SkipProbe(s.IP)
			}
			// In this goroutine, now: not behind the resource's other
			// operations or a free slot of the executor.
			began := time.Now()
			r, err := d.exec.RunInline(context.Background(), lrmd.Op{Resource: req.Resource, Agent: req.Agent, Action: "start",
				Timeout: time.Duration(req.TimeoutMs) * time.Millisecond, Params: req.Params, Meta: req.Meta, Expected: lrmd.OK})
			if err != nil {
				d.log.Warn("fast path: start failed", "resource", t.Resource, "err", err)
				continue
			}
			d.countOperation(r, nil)
			d.log.Info("fast path: took over", "resource", t.Resource, "call", r.CallID, "lost", lost, "event_late", late, "guard_waited", waited,
				"start_took", time.Since(began), "since_evidence", time.Duration(heartbeat.MonotonicNow()-evidence), "rc", int(r.RC))
			d.count("tachy_fast_takeovers_total", "resource", t.Resource)
			if r.RC == lrmd.OK {
				// The release is judged on the CIB the take-over was
				// decided on: its call id follows the start found there,
				// so it does not replace anything newer.
				d.recordFast(r, releasedChange(c, lost, r, d.local.Name))
			} else {
				d.recordFast(r, nil)
			}
		}
	}()
}

// recordFast records a result in the CIB, retrying until it lands (the DC
// may be the node that was lost: a new one is being elected). For a
// take-over (release not nil), the same change (a batch) records the
// resource stopped on the node it was taken from: the lease logic has
// established that that node no longer answers for it. Recorded apart, a
// DC planning between the two would see it stopped everywhere and start it
// again (on the lost node, if it does not know it lost yet), or, the other
// way round, active on two nodes, and stop it everywhere. A record that
// lands late (after a newer result of the same operation, say the stop when
// the lease ended) does not replace it: the CIB keeps the higher call id.
func (d *Daemon) recordFast(r lrmd.Result, release *cib.Change) {
	go func() {
		chs := resultChanges(d.local.Name, r, "")
		if release != nil {
			chs[0] = &cib.Change{Op: cib.OpBatch, Batch: []*cib.Change{release, chs[0]}}
		}
		began, tries := time.Now(), 0
		for i := 0; i < len(chs); {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			tries++
			_, err := d.cib.r.Change(ctx, d.cib.net, chs[i])
			cancel()
			if err == nil {
				i++
				continue
			}
			select {
			case <-d.stopping:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		if tries > len(chs) {
			d.log.Info("fast path: result recorded after retries", "resource", r.Resource, "action", r.Action, "call", r.CallID, "took", time.Since(began))
		}
	}()
}

// releaseStaleVIPs: a starting daemon holds no lease, so no floating IP
// its node may still carry from before (a crash, a killed daemon) may stay:
// the addresses the last process recorded as held come off this node's
// interfaces before anything else happens. The DC probes the node (its
// history is erased at start) and starts them where they belong.
func (d *Daemon) releaseStaleVIPs() {
	released, err := d.vips.ReleaseStale()
	if err != nil {
		d.log.Error("cannot remove floating IPs left from before the start", "err", err)
	}
	for _, s := range released {
		d.log.Warn("floating IP left from before the start removed", "ip", s.IP)
	}
}

// activeFromHistory lists the nodes whose last one-shot operation on rsc
// (the RSC_last_0 record) left it running: a successful start, promote or
// migrate_from, or a probe that found it running.
func activeFromHistory(c *cib.CIB, rsc string) []string {
	var out []string
	for _, st := range c.Status.NodeStates {
		if st.LRM == nil {
			continue
		}
		for _, lr := range st.LRM.Resources {
			if lr.ID != rsc {
				continue
			}
			for _, op := range lr.Ops {
				if op.ID != rsc+"_last_0" || op.OpStatus != 0 {
					continue
				}
				switch {
				case (op.Operation == "start" || op.Operation == "promote" || op.Operation == "migrate_from") && op.RCCode == 0,
					op.Operation == "monitor" && (op.RCCode == 0 || op.RCCode == 8):
					out = append(out, st.Uname)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// releasedChange records rsc stopped on node (the lease logic's finding),
// ordered after everything node's history holds for it.
func releasedChange(c *cib.CIB, node string, r lrmd.Result, taker string) *cib.Change {
	callID := 0
	if c != nil {
		for _, st := range c.Status.NodeStates {
			if st.Uname != node || st.LRM == nil {
				continue
			}
			for _, lr := range st.LRM.Resources {
				if lr.ID != r.Resource {
					continue
				}
				for _, op := range lr.Ops {
					callID = max(callID, op.CallID)
				}
			}
		}
	}
	now := time.Now().Unix()
	zero := int64(0)
	key := "0:0:0:tachy-fast"
	return &cib.Change{Op: cib.OpRecordOperation, Node: node, Resource: r.Resource, Agent: agentSource(r.Agent),
		Operation: &cib.LRMRscOp{ID: r.Resource + "_last_0", OperationKey: r.Resource + "_stop_0", Operation: "stop", CallID: callID + 1,
			LastRun: &now, LastRCChange: &now, ExecTime: &zero, QueueTime: &zero, TransitionKey: key, TransitionMagic: "0:0;" + key,
			ExitReason: "released under the quorum lease: taken over by " + taker}}
}
