package nbdrepl

import (
	"encoding/binary"
	"fmt"
)

// metaMsg is the body of a FrameMeta: one side's generations relative to
// the other, exchanged in the handshake.
//
//	version:u8 flags:u8 policy:u8 nameLen:u8 name granularity:u64
//	current:u64 history0:u64 history1:u64 peerBitmap:u64 dirty:u64
//	primarySince:u64 nRanges:u32 (off:u64 len:u64)*nRanges
//
// Ranges (sent by the secondary) are the dirty byte ranges of its bitmap
// for this primary, sorted and disjoint; Overflow says there were more than
// maxMetaRanges (the primary then resyncs everything).
type metaMsg struct {
	Node        string
	Primary     bool
	Consistent  bool
	Overflow    bool
	Policy      SplitBrainPolicy
	Granularity int64
	Current     uint64
	History     [2]uint64
	PeerBitmap  uint64
	Dirty       int64
	Since       int64
	Ranges      [][2]int64 // [off, end)
}

const (
	metaMsgVersion   = 1
	metaMsgFixed     = 4 + 8*7 + 4
	maxMetaRanges    = 65536
	maxMetaMsg       = metaMsgFixed + MaxPeerName + maxMetaRanges*16
	metaMsgPrimary   = 1 << 0
	metaMsgConsist   = 1 << 1
	metaMsgOverflow  = 1 << 2
	metaMsgFlagsMask = metaMsgPrimary | metaMsgConsist | metaMsgOverflow
)

func (m metaMsg) view() GenView {
	return GenView{Current: m.Current, History: m.History, PeerBitmap: m.PeerBitmap, Dirty: m.Dirty,
		PrimarySince: m.Since, Primary: m.Primary, Consistent: m.Consistent}
}

func appendMetaMsg(b []byte, m metaMsg) []byte {
	be := binary.BigEndian
	var fl byte
	if m.Primary {
		fl |= metaMsgPrimary
	}
	if m.Consistent {
		fl |= metaMsgConsist
	}
	if m.Overflow {
		fl |= metaMsgOverflow
	}
	b = append(b, metaMsgVersion, fl, byte(m.Policy), byte(len(m.Node)))
	b = append(b, m.Node...)
	for _, v := range []uint64{uint64(m.Granularity), m.Current, m.History[0], m.History[1], m.PeerBitmap, uint64(m.Dirty), uint64(m.Since)} {
		b = be.AppendUint64(b, v)
	}
	b = be.AppendUint32(b, uint32(len(m.Ranges)))
	for _, r := range m.Ranges {
		b = be.AppendUint64(b, uint64(r[0]))
		b = be.AppendUint64(b, uint64(r[1]-r[0]))
	}
	return b
}

// decodeMetaMsg decodes and validates a FrameMeta body. It never panics.
func decodeMetaMsg(b []byte) (metaMsg, error) {
	var m metaMsg
	be := binary.BigEndian
	bad := func(format string, args ...any) (metaMsg, error) {
		return metaMsg{}, frameErr("META: "+format, args...)
	}
	if len(b) < metaMsgFixed || len(b) > maxMetaMsg {
		return bad("%d bytes", len(b))
	}
	if b[0] != metaMsgVersion {
		return bad("version %d, want %d", b[0], metaMsgVersion)
	}
	fl := b[1]
	if fl&^metaMsgFlagsMask != 0 {
		return bad("unknown flags 0x%x", fl)
	}
	m.Primary, m.Consistent, m.Overflow = fl&metaMsgPrimary != 0, fl&metaMsgConsist != 0, fl&metaMsgOverflow != 0
	m.Policy = SplitBrainPolicy(b[2])
	if m.Policy > SBDiscardLeastChanges {
		return bad("unknown split-brain policy %d", b[2])
	}
	nl := int(b[3])
	if nl > MaxPeerName || len(b) < metaMsgFixed+nl {
		return bad("node name of %d bytes", nl)
	}
	m.Node = string(b[4 : 4+nl])
	p := b[4+nl:]
	u64 := func() uint64 { v := be.Uint64(p); p = p[8:]; return v }
	m.Granularity = int64(u64())
	m.Current, m.History[0], m.History[1], m.PeerBitmap = u64(), u64(), u64(), u64()
	m.Dirty, m.Since = int64(u64()), int64(u64())
	if !pow2(m.Granularity) || m.Granularity < 512 || m.Granularity > 1<<30 {
		return bad("granularity %d", m.Granularity)
	}
	if m.Dirty < 0 || m.Dirty > maxOffset {
		return bad("dirty count %d", m.Dirty)
	}
	n := be.Uint32(p)
	p = p[4:]
	if n > maxMetaRanges || uint64(len(p)) != 16*uint64(n) {
		return bad("%d ranges in %d bytes", n, len(p))
	}
	var last int64
	for range n {
		off, l := u64(), u64()
		if l == 0 || off > maxOffset || l > maxOffset || off+l > maxOffset || int64(off) < last {
			return bad("range %d+%d invalid or out of order", off, l)
		}
		m.Ranges = append(m.Ranges, [2]int64{int64(off), int64(off + l)})
		last = int64(off + l)
	}
	return m, nil
}

// rangesMsg returns the bitmap's dirty ranges for a metaMsg, or overflow.
func rangesMsg(d *DirtyBitmap) ([][2]int64, bool) {
	r := d.Ranges()
	if len(r) > maxMetaRanges {
		return nil, true
	}
	return r, false
}

func (m metaMsg) String() string {
	return fmt.Sprintf("%s current %016X history %016X:%016X bitmap %016X dirty %d primary %v consistent %v",
		m.Node, m.Current, m.History[0], m.History[1], m.PeerBitmap, m.Dirty, m.Primary, m.Consistent)
}
