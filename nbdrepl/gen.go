package nbdrepl

// Generation identifiers and the resync decision, after DRBD's (see
// "DRBD internals: generation identifiers" and drbd_uuid_compare). Pure
// functions: no I/O, table-tested.
//
// Every node keeps, per volume:
//   - Current: the generation of its data. 0 (GenJustCreated) means the
//     metadata was just created and the data is of unknown origin.
//   - History[2]: the previous two Current values, newest first.
//   - per peer, a bitmap generation: the Current value at the moment this
//     node started writing without that peer (0 while the peer is in sync),
//     and the dirty bitmap of what changed since.
//
// A primary that writes while a peer is disconnected starts a new
// generation once: the peer's bitmap generation takes the old Current,
// History shifts, Current gets a fresh random value. Connected peers are
// told the new Current in-stream (FrameGen), so they stay "the same
// generation". A SyncTarget adopts the source's Current when its resync is
// complete; the source then clears that peer's bitmap generation.

import "fmt"

// GenJustCreated is the Current generation of fresh metadata.
const GenJustCreated = 0

// GenView is what one side knows about its generations, relative to one
// peer: this is what the handshake exchanges.
type GenView struct {
	Current uint64
	History [2]uint64
	// PeerBitmap is the bitmap generation this side keeps for the other
	// side (0: none).
	PeerBitmap uint64
	// Dirty is the number of chunks this side changed (or may have
	// changed: activity-log extents after a crash) that the other side
	// may lack: the bits of its bitmap for the other side.
	Dirty int64
	// PrimarySince is when this side last became primary (unix ns; 0
	// never), for discard-younger-primary.
	PrimarySince int64
	// Primary says this side is the primary of this connection (the one
	// whose applications write).
	Primary bool
	// Consistent is false while a resync to this side is incomplete.
	Consistent bool
}

// SyncDecision is the outcome of comparing generations on connect, from
// one side's point of view.
type SyncDecision int

const (
	// SyncNone: both hold the same data; nothing to copy.
	SyncNone SyncDecision = iota
	// SyncSource / SyncTarget: copy the chunks of the union of both
	// bitmaps from the source to the target.
	SyncSource
	SyncTarget
	// FullSyncSource / FullSyncTarget: no usable bitmap; compare every
	// chunk's checksum and copy the chunks that differ.
	FullSyncSource
	FullSyncTarget
	// SplitBrain: both sides wrote since they last shared a generation
	// and the policy did not (or could not) pick a victim: disconnect.
	SplitBrain
	// Unrelated: no common generation at all: disconnect.
	Unrelated
)

var syncDecisionNames = [...]string{"no-sync", "sync-source", "sync-target", "full-sync-source", "full-sync-target", "split-brain", "unrelated-data"}

func (d SyncDecision) String() string {
	if d >= 0 && int(d) < len(syncDecisionNames) {
		return syncDecisionNames[d]
	}
	return fmt.Sprintf("decision(%d)", int(d))
}

// Mirror is the same decision seen from the other side.
func (d SyncDecision) Mirror() SyncDecision {
	switch d {
	case SyncSource:
		return SyncTarget
	case SyncTarget:
		return SyncSource
	case FullSyncSource:
		return FullSyncTarget
	case FullSyncTarget:
		return FullSyncSource
	}
	return d
}

// IsTarget says this side's data gets overwritten.
func (d SyncDecision) IsTarget() bool { return d == SyncTarget || d == FullSyncTarget }

// IsSource says this side sends data.
func (d SyncDecision) IsSource() bool { return d == SyncSource || d == FullSyncSource }

// Full says the sync compares every chunk.
func (d SyncDecision) Full() bool { return d == FullSyncSource || d == FullSyncTarget }

// Comparison is the result of CompareGens: the decision before any
// split-brain policy, and the rule of the table that matched (for logs,
// like DRBD's "uuid_compare()=1 by rule 70").
type Comparison struct {
	Decision SyncDecision
	Rule     int
	// CommonBitmap: a split brain where both sides hold a bitmap from the
	// same generation, so a bitmap resync of the union can resolve it.
	CommonBitmap bool
}

func inHistory(h [2]uint64, g uint64) bool { return g != 0 && (h[0] == g || h[1] == g) }

// CompareGens decides, from local's point of view, what connecting to peer
// requires. The table (first match wins):
//
//	10 both Current just created                    no sync
//	20 local just created, peer not                 full sync target
//	30 peer just created, local not                 full sync source
//	40 same Current, no dirty bits on either side   no sync
//	41 same Current, dirty bits (a crashed primary's activity log):
//	   the side that is primary now is the source   sync source/target
//	   (42: neither or both primary: split brain)
//	45 both 50 and 60 hold (damaged metadata)       split brain
//	50 peer.Current == local.PeerBitmap             sync source (bitmap)
//	60 local.Current == peer.PeerBitmap             sync target (bitmap)
//	70 both PeerBitmap equal and non-zero           split brain, common bitmap
//	80 peer.Current in local.History                full sync source
//	90 local.Current in peer.History                full sync target
//	100 histories or bitmaps intersect              split brain, no common bitmap
//	110 nothing in common                           unrelated data
func CompareGens(local, peer GenView) Comparison {
	switch {
	case local.Current == GenJustCreated && peer.Current == GenJustCreated:
		return Comparison{Decision: SyncNone, Rule: 10}
	case local.Current == GenJustCreated:
		return Comparison{Decision: FullSyncTarget, Rule: 20}
	case peer.Current == GenJustCreated:
		return Comparison{Decision: FullSyncSource, Rule: 30}
	case local.Current == peer.Current:
		if local.Dirty == 0 && peer.Dirty == 0 && local.Consistent == peer.Consistent {
			return Comparison{Decision: SyncNone, Rule: 40}
		}
		// Same generation, but a crashed primary's activity log (or an
		// interrupted sync) left chunks that may differ. The primary
		// of this connection is the source; if neither or both are,
		// the consistent one, then neither: disconnect.
		switch {
		case local.Primary && !peer.Primary, !peer.Consistent && local.Consistent && local.Primary == peer.Primary:
			return Comparison{Decision: SyncSource, Rule: 41}
		case peer.Primary && !local.Primary, !local.Consistent && peer.Consistent && local.Primary == peer.Primary:
			return Comparison{Decision: SyncTarget, Rule: 41}
		}
		return Comparison{Decision: SplitBrain, Rule: 42, CommonBitmap: true}
	case local.PeerBitmap != 0 && peer.Current == local.PeerBitmap && peer.PeerBitmap != 0 && local.Current == peer.PeerBitmap:
		// Each claims the other stayed behind: impossible unless the
		// metadata is damaged. Found by FuzzDecodeMetaMsg.
		return Comparison{Decision: SplitBrain, Rule: 45}
	case local.PeerBitmap != 0 && peer.Current == local.PeerBitmap:
		return Comparison{Decision: SyncSource, Rule: 50}
	case peer.PeerBitmap != 0 && local.Current == peer.PeerBitmap:
		return Comparison{Decision: SyncTarget, Rule: 60}
	case local.PeerBitmap != 0 && local.PeerBitmap == peer.PeerBitmap:
		return Comparison{Decision: SplitBrain, Rule: 70, CommonBitmap: true}
	case inHistory(local.History, peer.Current):
		return Comparison{Decision: FullSyncSource, Rule: 80}
	case inHistory(peer.History, local.Current):
		return Comparison{Decision: FullSyncTarget, Rule: 90}
	case inHistory(peer.History, local.PeerBitmap), inHistory(local.History, peer.PeerBitmap),
		inHistory(local.History, peer.History[0]), inHistory(local.History, peer.History[1]):
		return Comparison{Decision: SplitBrain, Rule: 100}
	}
	return Comparison{Decision: Unrelated, Rule: 110}
}

// SplitBrainPolicy says how a detected split brain is resolved.
type SplitBrainPolicy int

const (
	// SBDisconnect (the default): refuse the connection and keep both
	// sides' data until an operator decides.
	SBDisconnect SplitBrainPolicy = iota
	// SBDiscardZeroChanges: if one side made no changes since the split,
	// it becomes the target; if both did, disconnect.
	SBDiscardZeroChanges
	// SBDiscardYoungerPrimary: the side that became primary later is
	// discarded (the one that was primary before the split wins).
	SBDiscardYoungerPrimary
	// SBDiscardLeastChanges: the side with fewer changed chunks is
	// discarded; a tie disconnects.
	SBDiscardLeastChanges
)

var sbPolicyNames = [...]string{"disconnect", "discard-zero-changes", "discard-younger-primary", "discard-least-changes"}

func (p SplitBrainPolicy) String() string {
	if p >= 0 && int(p) < len(sbPolicyNames) {
		return sbPolicyNames[p]
	}
	return fmt.Sprintf("policy(%d)", int(p))
}

// ParseSplitBrainPolicy parses a policy name as String prints it.
func ParseSplitBrainPolicy(s string) (SplitBrainPolicy, error) {
	for i, n := range sbPolicyNames {
		if n == s {
			return SplitBrainPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown split-brain policy %q (want one of %v)", s, sbPolicyNames)
}

// Resolution is the final decision on connect.
type Resolution struct {
	Comparison
	Decision SyncDecision // after the policy
	// SplitBrain says a split brain was detected (whatever the outcome).
	SplitBrain bool
	// Reason explains a split-brain outcome in words for the log.
	Reason string
}

// Resolve compares the generations and applies the split-brain policy.
// A resolved split brain becomes a sync (bitmap when both bitmaps share a
// generation, else full) whose target is the victim; when the victim is
// the side that is primary, the connection is refused instead (its
// applications are writing: demote it first).
func Resolve(local, peer GenView, policy SplitBrainPolicy) Resolution {
	c := CompareGens(local, peer)
	res := Resolution{Comparison: c, Decision: c.Decision}
	if c.Decision != SplitBrain {
		return res
	}
	res.SplitBrain = true
	victimLocal, victimPeer := false, false
	switch policy {
	case SBDiscardZeroChanges:
		switch {
		case local.Dirty == 0 && peer.Dirty == 0:
			// Neither changed anything although generations split:
			// the primary's data is as good as the other's.
			victimLocal, victimPeer = !local.Primary, local.Primary
		case local.Dirty == 0:
			victimLocal = true
		case peer.Dirty == 0:
			victimPeer = true
		default:
			res.Reason = fmt.Sprintf("both sides changed data since the split (%d and %d chunks)", local.Dirty, peer.Dirty)
		}
	case SBDiscardYoungerPrimary:
		switch {
		case local.PrimarySince == peer.PrimarySince:
			res.Reason = "both sides became primary at the same time"
		case local.PrimarySince > peer.PrimarySince:
			victimLocal = true
		default:
			victimPeer = true
		}
	case SBDiscardLeastChanges:
		switch {
		case local.Dirty == peer.Dirty:
			res.Reason = fmt.Sprintf("both sides changed %d chunks", local.Dirty)
		case local.Dirty < peer.Dirty:
			victimLocal = true
		default:
			victimPeer = true
		}
	default:
		res.Reason = "policy is disconnect"
	}
	switch {
	case victimLocal && local.Primary, victimPeer && peer.Primary:
		res.Reason = fmt.Sprintf("policy %v discards the primary's data; demote it (make it the secondary) to let it be overwritten, or discard the other side", policy)
		res.Decision = SplitBrain
	case victimLocal:
		res.Decision = SyncTarget
		res.Reason = fmt.Sprintf("policy %v discards this side's changes", policy)
	case victimPeer:
		res.Decision = SyncSource
		res.Reason = fmt.Sprintf("policy %v discards the peer's changes", policy)
	default:
		res.Decision = SplitBrain
	}
	if res.Decision != SplitBrain && !c.CommonBitmap {
		res.Decision = map[SyncDecision]SyncDecision{SyncTarget: FullSyncTarget, SyncSource: FullSyncSource}[res.Decision]
	}
	return res
}
