// Package quorum decides whether this node's partition has quorum, with the
// semantics of Corosync's votequorum (votequorum(5), exec/votequorum.c): node
// votes, expected votes, two_node, wait_for_all, last_man_standing and
// auto_tie_breaker. It is pure logic: no I/O, no goroutines, no clock (time
// is passed in). The caller feeds it the membership view (the configured
// nodes it can currently see, itself included) and reads back a Status.
//
// # Rules
//
// Every configured node has an id (non-zero) and votes (at least 1). The
// expected votes are Config.ExpectedVotes, or the sum of the configured
// votes when that is 0. Quorum is expected/2 + 1 (integer division). A
// partition is quorate when the votes present reach quorum. The expected
// votes never fall below the votes being counted, as in votequorum.
//
// two_node (exactly 2 nodes of 1 vote): quorum is 1, so a lone survivor
// stays quorate; a split is settled by fencing, not by quorum. It turns
// wait_for_all on unless Config.WaitForAll says false.
//
// wait_for_all: a node is not quorate until it has seen every configured
// node at the same time. As in votequorum's code (are_we_quorate), the wait
// starts again whenever the node loses quorum: an inquorate partition
// regains quorum only by seeing every configured node together, not by
// reaching a bare majority. A restart is a fresh State, which waits.
// State.CancelWaitForAll is votequorum's cancel_wait_for_all for operators.
//
// last_man_standing: when the partition has been quorate, with some expected
// node missing, and its membership has not changed for the window, the
// expected votes are recalculated down to the nodes present. Nodes that come
// back while the partition is quorate raise them again at once. The window
// restarts at every membership change and stops if quorum is lost. The
// recalculation happens only while quorate, so the floor follows from the
// quorum rule, as votequorum(5) describes: down to 2 nodes (the last of 2
// alone has 1 of 2 votes and is not quorate), or down to 1 with
// auto_tie_breaker when the last node is the tie-breaker. As votequorum
// requires, every node must have 1 vote; and Tachy requires wait_for_all
// with it (votequorum(5) calls that essential; Validate enforces it).
//
// auto_tie_breaker: when the counted votes are exactly half of the expected
// votes, the half holding the tie-breaker node is quorate and the other half
// is not. auto_tie_breaker_node picks the tie-breaker among the counted
// nodes (all configured nodes unless last_man_standing wrote some off):
// "lowest" (the default) or "highest" id, or a list of ids in order of
// preference, of which the first one counted is used.
//
// # Where Tachy differs from votequorum, and why
//
// Tachy's membership comes from per-node heartbeats, not from Totem's
// agreed configurations: two nodes may see different memberships for a
// while, and no quorum state is exchanged. Every rule here is therefore
// decided from the local view and the local history only, and chosen so
// that split brain needs more than an unlucky interleaving of events:
//
//   - Config.ExpectedVotes may be raised above the configured votes but not
//     lowered below them: a lower value would let two disjoint partitions
//     both be quorate. So with a valid Config the expected votes are only
//     ever raised after last_man_standing has lowered them.
//   - auto_tie_breaker applies only to an exact half (2*votes == expected).
//     votequorum also breaks "half minus one" splits of odd-sized clusters,
//     which needs wait_for_all and its view of the previous membership to
//     stay safe. The tie-breaker is a function of the counted nodes, not of
//     the previous membership, so both halves of a split pick the same one
//     even when they saw the nodes go in different orders. With a list,
//     votequorum skips a listed node that "was not in the cluster before
//     the split"; here it skips a node last_man_standing wrote off (a node
//     that is merely down still holds the tie, and neither half is quorate:
//     its absence cannot be told apart from its presence in the other half).
//   - wait_for_all waits for every configured node, not for the current
//     expected votes (which last_man_standing may have lowered).
//   - Nodes that last_man_standing wrote off are not counted by an
//     inquorate partition (Status.Uncounted): they count again only once
//     a partition of the remaining nodes is quorate and sees them. In
//     votequorum their votes count at once, so a fragment of the reduced
//     cluster padded with written-off nodes could be quorate beside the
//     rest of it.
//   - A node joining a quorate partition does not inherit its quorum (no
//     quorum state is exchanged yet); with wait_for_all it waits until it
//     sees every configured node, or until CancelWaitForAll.
//
// # Safety
//
// Without last_man_standing and two_node, quorate() depends on the current
// view only, and two disjoint views are never both quorate: both would need
// more than half of the configured votes, or both exactly half and the
// same tie-breaker node. two_node is the documented exception (each half of
// a split has quorum 1; fencing decides). last_man_standing makes the
// expected votes depend on history: it is safe when every node of a
// partition sees the same membership changes at the same times (the
// fuzz test simulates that), and it relies, like votequorum's, on the nodes
// it wrote off being really gone; with asymmetric connectivity during the
// window it can still be wrong, which is the risk last_man_standing trades
// for availability.
package quorum
