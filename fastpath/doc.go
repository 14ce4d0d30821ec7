// Package fastpath is the fast failover of DESIGN.md for floating IPs: the
// survivor that the DC's contingency plan names starts a lost node's VIPs
// the moment membership reports the loss (no Raft election, no pe run), and
// the quorum lease guarantees that the old holder has stopped answering
// for them by then, whether it died, hangs, or is cut off.
//
// # Grants
//
// Every node sends, every heartbeat interval I (and at once when its
// membership loses a peer), a small authenticated view frame to every peer
// on every ring, on the heartbeat port + 1: the set of nodes it hears. A
// frame from X with bit H set is a grant to H. The receiver stamps each
// frame with its kernel arrival time (SO_TIMESTAMPNS, converted to
// CLOCK_MONOTONIC), so the stamps do not depend on when the receiving
// process gets to run.
//
// "Hears" is decided at each round, from heartbeat stamps. Let D be the
// detection time (interval × miss count): membership declares a node down
// after D without a valid heartbeat from it. A view names only the peers
// whose latest valid heartbeat, on any link, arrived within the grant window
// G before the round (GrantView; heartbeat.grant_window: more than I, at
// most D, and D by default, which grants what membership has up). The
// arrival times are the receive path's stamps (heartbeat.Service.LastHeard:
// the XDP program's bpf_ktime_get_ns, kept in a memory-mapped map, or the
// UDP receiver's clock when it read the frame), read by the sender as it
// builds the round. So X stops granting a silent node G after its last
// heartbeat, at X's next round: with G < D, before membership declares it
// down.
//
// The daemon turns the frames off (Runner.SetActive) while its CIB has no
// floating IP: no node holds one, nothing is taken over. A node whose
// frames are off grants nothing and counts in no set A below (its latest
// frame is too old), so that costs liveness only, never safety.
//
// # The holder's lease
//
// A grant that arrives at time a is worth L (the lease length). Node H
// holds a lease at time t when its own votes plus those of the peers with a
// grant in (t-L, t] reach quorum (a strict majority of all votes; the fast
// path is off under two_node, last_man_standing and auto_tie_breaker). The
// lease only grows while it lasts: a grant arriving after the lease ended
// does not extend it, and the lease lapses (State.grant); only the revival
// rule below brings a lapsed lease back. Its end is written into the XDP
// ARP responder's map with every extension, and the kernel drops ARP
// requests and IPv4 packets for the VIPs past it, so a holder that is
// paused, or whose process is starved, stops answering on time without
// running. Once its process runs and sees the lease lapsed, it removes its
// IPv6 addresses (and IPv4 ones the responder does not serve) at once, and
// keeps the IPv4 ones, unanswered, for a grace period (RunnerConfig.Grace:
// the DC's loss settle time, max(250 ms, 25 D)) in which the lease may
// revive; if it does not, or as soon as no revival is possible any more
// (State.Revivable: the runs below are broken for a majority, which a
// lapsed lease cannot undo), it removes them too, and never takes them back
// without a new start from the DC.
//
// # The taker's guard
//
// Let δ be a bound on the one-way delay of a frame between nodes (the
// frames of a LAN arrive within microseconds; δ is a configured margin).
// The daemon starts a take-over only when its membership declares P down
// (after D of silence), and gives it up if P is up again before it acts.
// Node T then takes the VIPs of lost node P at
//
//	take = max(s_T, a_X for X in A) + δ + L
//
// where A is a set of nodes holding a quorum of votes, T included, whose
// latest frames say they do not hear P; a_X is the arrival at T of the first
// frame of X's current run of such frames, and s_T the last time T itself
// sent a frame granting P (T stops granting G after P's last heartbeat
// reached it). A run counts only as far back as T received X's frames with
// contiguous sequence numbers of one incarnation: after a gap it starts
// again at the frame after it, since the frame T missed may have granted P
// (and reached P). T acts only once every X in A has also sent a frame
// after take that still does not hear P (one arriving at or after take +
// δ): otherwise X might have heard P again just before take and granted it
// an extension that is still on its way (P resumed from a pause, say). T
// confirms the same way: its own latest frame left at or after take (it
// then does not hear P, since T's last frame hearing P left by take - δ -
// L). T itself does not take while its membership has P up.
//
// So every X in A (T included) has a confirming frame c_X, sent at or after
// take, that does not hear P, and every frame of X that granted P and was
// sent before c_X was sent before X's run began (for T: by s_T), so it
// reached P by a_X + δ and was worth until take at most (by s_T + δ + L ≤
// take for T). For T, the runner records each round's send time after the
// nodes it heard, and WaitTakeover reads them in the other order, so a
// round that heard P cannot pass for c_T.
//
// Safety. Suppose P's lease lasted past take. At any time t of its lease, P
// had grants in (t-L, t] from peers worth quorum minus its own votes; A also
// holds a quorum and P is not in A, so the two sets share a node X (two
// majorities intersect). X's grant to P was sent in a round before X's first
// frame not hearing P (one goroutine sends each round's frames, to every
// peer, in order), so it left X before that frame reached T: sent at or
// before a_X, it reached P by a_X + δ, and was worth until a_X + δ + L ≤
// take. For X = T, the grant left by s_T. So every grant that can hold P's
// lease ends by take, and P's lease, extended only by such grants, ends by
// take too: the kernel of P stops answering no later than T starts. A grant
// that arrives after the lease ended does not extend it.
//
// # Revival
//
// A lease lapses whenever a majority's grants are late by more than L (the
// one other live node of three stalls for 8 ms on a loaded machine), and
// the VIPs then came back only by the slow path, a second later. H revives
// its lapsed lease at r (State.revive, on each grant that arrives while it
// is lapsed) when its own votes and those of the peers X with both
//
//	(a) X's latest grant to H arrived in (r-L, r], and
//	(b) X's current run of frames, as H received them, is unbroken and
//	    grants H throughout, back to a frame f0 of X that arrived at H
//	    while H's lease was valid (before its end as it stood then):
//	    H received every sequence number of one incarnation of X from f0
//	    to the latest, each with H's bit set
//
// reach quorum; the revived lease lasts until the earliest of the grants
// that make quorum (latest first) is worth nothing, as a lease built from
// them would. The runs are followed as the frames come (Received): a frame
// from X not granting H, one after a gap in X's sequence numbers or from
// another incarnation, one dropped as older than the last (a reordering
// between rings: replayGuard keeps one copy of each sequence number, and
// only growing ones) ends the run, and the next frame granting H starts a
// new run, anchored only if it arrives while the lease is valid. A frame
// that arrives exactly at the lease's end is not inside it. Restart (the
// VIPs released) forgets every anchor, and a new process (a restart of H's
// daemon) starts with none, so a revival always rests on frames received
// under leases of the same run of leases that its VIPs were started under.
//
// Safety. Let T take over H's VIPs at take, with its quorum A and the
// confirming frames c_X above, and suppose H's lease is valid at some time
// at or after take. Then its end was set past take at some moment; let t*
// be the first, and X the node that A and the quorum behind that end share
// (X ≠ H, two majorities intersect). If t* < take, that end was computed
// from grants that arrived by t*, hence left X before take ≤ c_X's send:
// sent before c_X, X's grant was worth until take at most, and so was the
// end, which is the worth of the earliest grant of its quorum. An
// extension happens only while the lease is valid, before its end as it
// stands, which is at most take before t*; a lease built from scratch (no
// lease before: a new process, or Restart after every VIP was released)
// holds no VIP that T could have taken over. So t* is a revival at r = t* ≥
// take, by a quorum B ∪ {H} with X in B. X's latest grant f_n arrived in
// (r - L, r], so it was worth past r ≥ take: it was not sent before c_X,
// so it was sent after it. X's anchor f0 was received before t*, while the
// lease was valid, before its end as it stood then, which was at most
// take: f0 arrived, and left X, before take ≤ c_X's send. X's frames leave
// in order with growing sequence numbers, so seq(f0) < seq(c_X) <
// seq(f_n): c_X lies inside the run that (b) says H received unbroken and
// granting H throughout, but c_X does not hear H, and if it was lost on
// the way to H, the run has a gap. Either way (b) fails: contradiction.
// Extensions after a revival are those of any lease and are covered by the
// same argument.
//
// Each part of the rule is needed: without (b) (any grants within L), or
// without the anchor (runs that began during the lapse), or with gaps
// allowed in the run, or without T's own confirming frame (T's sender
// stalled from before take until after it acted, and its next frame grants
// H again), TestLeaseNeverOverlapsTakeover finds a revived lease that
// overlaps a take-over.
//
// Nothing in this depends on why X's view leaves P out: only on the order of
// X's own frames, and on s_T being what T's frames actually said. That is
// why the grant window is safe whatever G is (TestLeaseNeverOverlapsTakeover
// also runs windows shorter than an interval), and why all it changes is
// when the runs begin. It relies on three things. A round's view is built
// when the round is sent, from the arrival stamps as they are then, and the
// same frame goes to every peer, so each frame of X is one decision of X.
// s_T is recorded from the view that went out, after the send. And a frame
// naming P again ends X's run (P's heartbeat was only late, or P resumed):
// the next frame without P starts a new run with a later a_X, and the
// confirmation rule makes T wait for a frame after that, so a grant sent on
// a heartbeat that arrived just before take does not slip through.
//
// This holds whatever P's process does, because the lease is enforced in
// P's kernel from arrival stamps, and however the network splits:
//
//   - P dies, or its links are cut: nobody hears P; G after its last
//     heartbeat the others stop granting it, at their next round (with G =
//     D, at once when membership declares P down); take ≈ crash + G + I +
//     δ + L (the last round granting P is up to I before crash + G, the
//     first without P up to I after it, and reaches T within δ; with G = D,
//     crash + D + δ + L), and the confirming frame comes within I + δ after
//     that. With G < D, membership declares P down before take: detection
//     is no longer on the path.
//   - P is paused (SIGSTOP): the same for the others; P's kernel stops
//     answering at its lease's end; when P runs again it finds its lease
//     ended and releases before it could be granted again.
//   - Only P's heartbeat thread stalls, while its view frames go on: the
//     others grant on heartbeats only, so for P's lease this is a crash,
//     whatever P's own views say.
//   - P is partitioned from the majority: the same as dying for the
//     majority; P stops hearing them and its lease ends L after their last
//     grant arrived.
//   - Asymmetric: P still hears the majority but is not heard (its outgoing
//     frames are lost). P's view says it hears everyone, but the grants it
//     needs come from the others' views, which no longer contain P: P's
//     lease ends L after the last grant, exactly as if it were cut off. A
//     view frame therefore carries what the sender hears, not what it
//     thinks of itself; heartbeats alone cannot tell P that it is not heard.
//   - T's own frames do not reach P but P's reach T (the other asymmetry):
//     T hears P, so T is not in a set A for P and does not take.
//
// Liveness. The daemon uses L = max(5I, D), δ = I/2, and G = D unless
// heartbeat.grant_window sets it shorter. With I = 1 ms and D = 8 ms
// (miss_count 8), a crash costs about D + 2δ + L + I ≈ 18 ms before the
// taker adds the address and announces it with G = D (the round sent at
// once when membership loses a peer saves the round after D), and about G
// + I + 2δ + L + I ≈ 13 ms with G = 2I (less on average: the rounds fall
// anywhere in their interval); T's own confirming frame adds up to I (its
// next round after take), often nothing, since the peers' confirmations
// wait for a round after take as well. A holder whose grants
// all arrive more than L apart (a majority of peers stalled for L) loses
// its lease, and its VIPs go unanswered from the lease's end: L must exceed
// the senders' scheduling jitter, which is why the sender runs on a locked
// OS thread at real-time priority and keeps its P (as the heartbeat sender
// does). When the stalled peers' frames come again, in sequence and still
// granting the holder, the lease revives and its IPv4 VIPs answer again
// (the lapse costs the stall, not a slow-path restart); a frame lost on the
// way, or a peer that stopped hearing the holder meanwhile, leaves it
// lapsed, and the VIPs go when the grace runs out. A heartbeat of
// the holder that arrives more than G after the previous one (its sender
// woke late) costs only the grants of the rounds in between: the lease
// lasts while a majority's latest grants are within L, so a holder keeps it
// through a stall of its heartbeat thread of up to about G + L - I (D + L
// before the grant window), and a stall shorter than D moves nothing, since
// no take-over starts before membership declares the holder down. A longer
// stall moves the VIPs as a crash would: what makes a take-over quicker
// makes the stall it tolerates shorter by as much, and a holder that comes
// back after its lease ended but before the take-over revives its lease if
// its peers' runs of grants to it are unbroken (they kept hearing it), and
// otherwise releases its VIPs for the slow path to start again. On a loaded 2-core VM that made G = 2I
// release about four times as often as G = D with no fault at all
// (docs/vip.md), which is why G = D is the default.
//
// Assumptions: a frame that is delivered at all is delivered within δ (a
// frame stuck longer in a queue could carry a stale grant). The UDP
// receive path stamps a heartbeat when it reads it, which may be after it
// arrived: a peer then grants P a little longer after P's last heartbeat,
// which starts its run later, never earlier. The XDP program stores a
// node's latest arrival without a lock across links, so two frames of two
// links arriving at once on two CPUs may leave the earlier of the two,
// microseconds older. IPv6 VIPs are released by the process when the lease
// ends, but the kernel's neighbour solicitation answers for them are not
// gated by the lease as ARP is (the XDP responder handles ARP only); that
// is why they, unlike IPv4 ones, go at once when the lease lapses. An IPv4
// VIP kept through the grace is silent for what arrives (ARP and IPv4 to
// it dropped in XDP, on the interface it was added to), but the stack may
// still send from it on connections it had (retransmissions): that cannot
// make it answer a client, and it is what a paused holder's kernel did
// before revival too. A sender's sequence numbers grow by one with every
// round it sends, the extra round when membership loses a peer included
// (Runner.send); a round whose send to a peer fails is a gap at that peer,
// which only keeps a lease from reviving and a run from counting.
//
// Resources that require fencing never take this path: the DC stores in a
// plan only starts that its graph does not order after fencing (resources
// with requires=quorum or nothing), the others wait for fencing on the
// slow path.
//
// Clocks: all times are CLOCK_MONOTONIC of the node that measures them; the
// argument compares intervals only (rates agree to parts per million) and
// needs no synchronised clocks.
package fastpath
