package nbdrepl

import "testing"

func TestCompareGensTable(t *testing.T) {
	const c1, c2, c3, c4 = 0x11, 0x22, 0x33, 0x44
	v := func(cur, peerBM uint64, hist ...uint64) GenView {
		g := GenView{Current: cur, PeerBitmap: peerBM, Consistent: true}
		copy(g.History[:], hist)
		return g
	}
	prim := func(g GenView) GenView { g.Primary = true; return g }
	dirty := func(g GenView, n int64) GenView { g.Dirty = n; return g }
	cases := []struct {
		name        string
		local, peer GenView
		want        SyncDecision
		rule        int
	}{
		{"both just created", v(0, 0), v(0, 0), SyncNone, 10},
		{"new peer", prim(v(c1, 0)), v(0, 0), FullSyncSource, 30},
		{"new local", v(0, 0), prim(v(c1, 0)), FullSyncTarget, 20},
		{"same generation", prim(v(c1, 0)), v(c1, 0), SyncNone, 40},
		{"crashed primary's AL, primary now", prim(dirty(v(c1, 0), 3)), v(c1, 0), SyncSource, 41},
		{"crashed primary is now secondary", dirty(v(c1, 0), 3), prim(v(c1, 0)), SyncTarget, 41},
		{"peer stayed behind", prim(dirty(v(c2, c1, c1), 5)), v(c1, 0), SyncSource, 50},
		{"peer behind, with its own AL bits", prim(v(c2, c1, c1)), dirty(v(c1, 0), 2), SyncSource, 50},
		{"local behind", v(c1, 0), prim(v(c2, c1, c1)), SyncTarget, 60},
		{"split brain with common bitmap", prim(dirty(v(c2, c1, c1), 1)), dirty(v(c3, c1, c1), 1), SplitBrain, 70},
		{"peer much older, no bitmap", prim(v(c3, 0, c2, c1)), v(c2, 0, c1), FullSyncSource, 80},
		{"local much older, no bitmap", v(c1, 0), prim(v(c3, 0, c2, c1)), FullSyncTarget, 90},
		{"split brain, bitmap lost", prim(v(c3, 0, c2)), v(c4, c2, c2), SplitBrain, 100},
		{"unrelated", prim(v(c1, 0)), v(c2, 0), Unrelated, 110},
		{"each behind the other (damaged)", prim(v(c1, c2)), v(c2, c1), SplitBrain, 45},
	}
	for _, c := range cases {
		got := CompareGens(c.local, c.peer)
		if got.Decision != c.want || got.Rule != c.rule {
			t.Errorf("%s: got %v by rule %d, want %v by rule %d", c.name, got.Decision, got.Rule, c.want, c.rule)
		}
		// The peer reaches the mirror decision.
		if back := CompareGens(c.peer, c.local); back.Decision != got.Decision.Mirror() {
			t.Errorf("%s: peer decides %v, want %v", c.name, back.Decision, got.Decision.Mirror())
		}
	}
}

func TestSplitBrainPolicies(t *testing.T) {
	const c1, c2, c3 = 0x11, 0x22, 0x33
	// local: primary now, wrote 5 chunks since the split, primary since t=100.
	// peer: was promoted during the split at t=200 and wrote n chunks.
	local := GenView{Current: c2, PeerBitmap: c1, History: [2]uint64{c1}, Dirty: 5, PrimarySince: 100, Primary: true, Consistent: true}
	peer := func(dirty, since int64) GenView {
		return GenView{Current: c3, PeerBitmap: c1, History: [2]uint64{c1}, Dirty: dirty, PrimarySince: since, Consistent: true}
	}
	cases := []struct {
		policy SplitBrainPolicy
		peer   GenView
		want   SyncDecision // for local
	}{
		{SBDisconnect, peer(0, 200), SplitBrain},
		{SBDiscardZeroChanges, peer(0, 200), SyncSource},    // the peer made no change: overwritten
		{SBDiscardZeroChanges, peer(3, 200), SplitBrain},    // both changed
		{SBDiscardYoungerPrimary, peer(9, 200), SyncSource}, // the peer became primary later
		{SBDiscardYoungerPrimary, peer(9, 50), SplitBrain},  // the primary is younger: refuse, never overwrite the primary
		{SBDiscardYoungerPrimary, peer(9, 100), SplitBrain}, // tie
		{SBDiscardLeastChanges, peer(3, 200), SyncSource},   // 3 < 5
		{SBDiscardLeastChanges, peer(8, 200), SplitBrain},   // the primary has fewer: refuse
		{SBDiscardLeastChanges, peer(5, 200), SplitBrain},   // tie
	}
	for _, c := range cases {
		r := Resolve(local, c.peer, c.policy)
		if !r.SplitBrain || r.Decision != c.want {
			t.Errorf("%v with peer %+v: %v (split brain %v, %s), want %v", c.policy, c.peer, r.Decision, r.SplitBrain, r.Reason, c.want)
		}
		if back := Resolve(c.peer, local, c.policy); back.Decision != r.Decision.Mirror() {
			t.Errorf("%v: the peer resolves %v, want %v", c.policy, back.Decision, r.Decision.Mirror())
		}
		if r.Decision == SplitBrain && r.Reason == "" {
			t.Errorf("%v: no reason given", c.policy)
		}
	}
	// Without a common bitmap a resolved split brain is a full sync.
	r := Resolve(GenView{Current: c3, History: [2]uint64{c2}, Dirty: 5, Primary: true, Consistent: true},
		GenView{Current: 0x44, PeerBitmap: c2, History: [2]uint64{c2}, Consistent: true}, SBDiscardZeroChanges)
	if r.Rule != 100 || r.Decision != FullSyncSource {
		t.Errorf("rule %d decision %v, want full sync source by rule 100", r.Rule, r.Decision)
	}
	// Not a split brain: the policy is irrelevant.
	if r := Resolve(local, GenView{Current: c1, Consistent: true}, SBDiscardLeastChanges); r.SplitBrain || r.Decision != SyncSource {
		t.Errorf("behind peer: %+v", r)
	}
	for _, p := range []SplitBrainPolicy{SBDisconnect, SBDiscardZeroChanges, SBDiscardYoungerPrimary, SBDiscardLeastChanges} {
		if q, err := ParseSplitBrainPolicy(p.String()); err != nil || q != p {
			t.Errorf("parse %v: %v %v", p, q, err)
		}
	}
}
