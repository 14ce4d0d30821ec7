package fastpath

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tachy-ha/tachy/heartbeat"
)

// Wire format of a view frame, the UDP payload (big-endian):
//
//	offset size field
//	 0      4   magic "TCFP" (0x54434650)
//	 4      1   version (1)
//	 5      1   type (1 = view)
//	 6      2   reserved (0)
//	 8      4   cluster id
//	12      4   sender's node id
//	16      8   sender's incarnation
//	24      8   sequence, growing with every round of one incarnation
//	32      8   view: bit id-1 set for every node the sender hears (itself included)
//	40      8   SipHash-2-4 of bytes 0..39 under the view key, little-endian
const (
	frameMagic   = 0x54434650
	frameVersion = 1
	frameTypeVW  = 1
	FrameLen     = 48
)

// Frame is one decoded view frame.
type Frame struct {
	ClusterID   uint32
	NodeID      uint32
	Incarnation uint64
	Seq         uint64
	View        Set
}

// DeriveKey derives the view frames' key from the cluster's secret (apart
// from the heartbeat key: one does not give the other).
func DeriveKey(secret []byte) heartbeat.Key {
	h := sha256.New()
	h.Write([]byte("tachy fastpath view key v1\x00"))
	h.Write(secret)
	sum := h.Sum(nil)
	return heartbeat.Key{K0: binary.LittleEndian.Uint64(sum[0:8]), K1: binary.LittleEndian.Uint64(sum[8:16])}
}

// MarshalFrame writes f, signed with k, into buf (at least FrameLen bytes).
func MarshalFrame(buf []byte, f *Frame, k heartbeat.Key) []byte {
	b := buf[:FrameLen]
	binary.BigEndian.PutUint32(b[0:], frameMagic)
	b[4], b[5], b[6], b[7] = frameVersion, frameTypeVW, 0, 0
	binary.BigEndian.PutUint32(b[8:], f.ClusterID)
	binary.BigEndian.PutUint32(b[12:], f.NodeID)
	binary.BigEndian.PutUint64(b[16:], f.Incarnation)
	binary.BigEndian.PutUint64(b[24:], f.Seq)
	binary.BigEndian.PutUint64(b[32:], uint64(f.View))
	binary.LittleEndian.PutUint64(b[40:], heartbeat.MAC(k, b[:40]))
	return b
}

// Errors of ParseFrame.
var (
	ErrFrame        = errors.New("not a view frame")
	ErrFrameMAC     = errors.New("view frame fails authentication (wrong cluster key?)")
	ErrFrameCluster = errors.New("view frame from another cluster")
)

// ParseFrame checks and decodes a view frame; the MAC is checked before any
// field is trusted.
func ParseFrame(b []byte, k heartbeat.Key, clusterID uint32) (Frame, error) {
	if len(b) != FrameLen {
		return Frame{}, fmt.Errorf("%w: %d bytes, want %d", ErrFrame, len(b), FrameLen)
	}
	if binary.BigEndian.Uint32(b[0:]) != frameMagic || b[4] != frameVersion || b[5] != frameTypeVW || b[6] != 0 || b[7] != 0 {
		return Frame{}, ErrFrame
	}
	if binary.LittleEndian.Uint64(b[40:]) != heartbeat.MAC(k, b[:40]) {
		return Frame{}, ErrFrameMAC
	}
	f := Frame{
		ClusterID:   binary.BigEndian.Uint32(b[8:]),
		NodeID:      binary.BigEndian.Uint32(b[12:]),
		Incarnation: binary.BigEndian.Uint64(b[16:]),
		Seq:         binary.BigEndian.Uint64(b[24:]),
		View:        Set(binary.BigEndian.Uint64(b[32:])),
	}
	if f.ClusterID != clusterID {
		return Frame{}, fmt.Errorf("%w: %d, this node is in %d", ErrFrameCluster, f.ClusterID, clusterID)
	}
	if f.NodeID == 0 || f.NodeID > MaxNodeID {
		return Frame{}, fmt.Errorf("%w: sender id %d out of range", ErrFrame, f.NodeID)
	}
	return f, nil
}

// replayGuard accepts each sender's frames only with a growing
// (incarnation, sequence).
type replayGuard map[uint32][2]uint64

func (g replayGuard) fresh(f Frame) bool {
	last, ok := g[f.NodeID]
	if ok && (f.Incarnation < last[0] || f.Incarnation == last[0] && f.Seq <= last[1]) {
		return false
	}
	g[f.NodeID] = [2]uint64{f.Incarnation, f.Seq}
	return true
}
