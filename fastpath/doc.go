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
// does not revive it (Lease.Grant). Its end is written into the XDP ARP
// responder's map with every extension, and the kernel drops ARP requests
// for the VIPs past it, so a holder that is paused, or whose process is
// starved, stops answering on time without running; once its process runs
// and sees the lease ended, it removes the addresses and never takes them
// back without a new start from the DC.
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
// reached it). T acts only once every X in A has also sent a frame after
// take that still does not hear P (one arriving at or after take + δ):
// otherwise X might have heard P again just before take and granted it an
// extension that is still on its way (P resumed from a pause, say). T
// itself does not take while its membership has P up.
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
// that arrives after the lease ended does not revive it.
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
// anywhere in their interval). A holder
// whose grants all arrive more than L apart (a majority of peers stalled for
// L) loses its lease and releases: L must exceed the senders' scheduling
// jitter, which is why the sender runs on a locked OS thread at real-time
// priority and keeps its P (as the heartbeat sender does). A heartbeat of
// the holder that arrives more than G after the previous one (its sender
// woke late) costs only the grants of the rounds in between: the lease
// lasts while a majority's latest grants are within L, so a holder keeps it
// through a stall of its heartbeat thread of up to about G + L - I (D + L
// before the grant window), and a stall shorter than D moves nothing, since
// no take-over starts before membership declares the holder down. A longer
// stall moves the VIPs as a crash would: what makes a take-over quicker
// makes the stall it tolerates shorter by as much, and a holder that comes
// back after its lease ended but before the take-over releases its VIPs for
// the slow path to start again. On a loaded 2-core VM that made G = 2I
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
// gated by the lease as ARP is (the XDP responder handles ARP only).
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
