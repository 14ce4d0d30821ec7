package heartbeat

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format of a heartbeat frame, the UDP payload (all integers big-endian):
//
//	offset size field
//	 0      4   magic "TCHY" (0x54434859)
//	 4      1   version (1)
//	 5      1   type (1 = heartbeat)
//	 6      1   link: the sender's link index, which must match the link it arrives on
//	 7      1   flags (0)
//	 8      4   cluster id
//	12      4   node id of the sender
//	16      8   incarnation: grows every time the sender's daemon starts
//	24      8   sequence: grows with every frame of one incarnation
//	32      8   sent: the sender's CLOCK_REALTIME in ns, for the freshness check
//	40      8   mac: SipHash-2-4 of bytes 0..39 under the cluster's heartbeat key,
//	            stored little-endian as SipHash defines its output
//
// bpf/heartbeat.c parses exactly this layout; change both together.
const (
	FrameMagic   = 0x54434859
	FrameVersion = 1
	FrameTypeHB  = 1
	FrameLen     = 48
	macOffset    = 40
)

// Frame is one decoded heartbeat.
type Frame struct {
	Link        uint8
	ClusterID   uint32
	NodeID      uint32
	Incarnation uint64
	Seq         uint64
	SentNs      int64
}

// Key is the 128-bit SipHash key that authenticates heartbeats.
type Key struct{ K0, K1 uint64 }

// DeriveKey turns the cluster's shared secret into the heartbeat key. Using a
// derived key (not the secret itself) keeps the secret usable for other
// purposes without giving anyone who learns the SipHash key the rest.
func DeriveKey(secret []byte) Key {
	h := sha256.New()
	h.Write([]byte("tachy heartbeat key v1\x00"))
	h.Write(secret)
	sum := h.Sum(nil)
	return Key{K0: binary.LittleEndian.Uint64(sum[0:8]), K1: binary.LittleEndian.Uint64(sum[8:16])}
}

// MarshalFrame writes f, signed with k, into buf (at least FrameLen bytes)
// and returns the frame's bytes. It does not allocate, so the sender can call
// it on its hot path.
func MarshalFrame(buf []byte, f *Frame, k Key) []byte {
	b := buf[:FrameLen]
	binary.BigEndian.PutUint32(b[0:], FrameMagic)
	b[4] = FrameVersion
	b[5] = FrameTypeHB
	b[6] = f.Link
	b[7] = 0
	binary.BigEndian.PutUint32(b[8:], f.ClusterID)
	binary.BigEndian.PutUint32(b[12:], f.NodeID)
	binary.BigEndian.PutUint64(b[16:], f.Incarnation)
	binary.BigEndian.PutUint64(b[24:], f.Seq)
	binary.BigEndian.PutUint64(b[32:], uint64(f.SentNs))
	binary.LittleEndian.PutUint64(b[macOffset:], sipHash24(k.K0, k.K1, b[:macOffset]))
	return b
}

// Errors from ParseFrame. Receivers count them per kind.
var (
	ErrShortFrame   = errors.New("heartbeat frame too short")
	ErrNotTachy     = errors.New("not a tachy frame (bad magic)")
	ErrBadVersion   = errors.New("unsupported heartbeat frame version")
	ErrBadType      = errors.New("unknown heartbeat frame type")
	ErrBadFlags     = errors.New("heartbeat frame has reserved flags set")
	ErrBadMAC       = errors.New("heartbeat frame fails authentication (wrong cluster key?)")
	ErrWrongCluster = errors.New("heartbeat frame from another cluster")
)

// ParseFrame checks and decodes a heartbeat. The MAC is verified before any
// field is trusted; clusterID must match the frame's.
func ParseFrame(b []byte, k Key, clusterID uint32) (Frame, error) {
	if len(b) < FrameLen {
		return Frame{}, fmt.Errorf("%w: %d bytes, want %d", ErrShortFrame, len(b), FrameLen)
	}
	if binary.BigEndian.Uint32(b[0:]) != FrameMagic {
		return Frame{}, ErrNotTachy
	}
	if b[4] != FrameVersion {
		return Frame{}, fmt.Errorf("%w %d (this build speaks %d)", ErrBadVersion, b[4], FrameVersion)
	}
	if b[5] != FrameTypeHB {
		return Frame{}, fmt.Errorf("%w %d", ErrBadType, b[5])
	}
	if b[7] != 0 {
		return Frame{}, ErrBadFlags
	}
	if binary.LittleEndian.Uint64(b[macOffset:]) != sipHash24(k.K0, k.K1, b[:macOffset]) {
		return Frame{}, ErrBadMAC
	}
	f := Frame{
		Link:        b[6],
		ClusterID:   binary.BigEndian.Uint32(b[8:]),
		NodeID:      binary.BigEndian.Uint32(b[12:]),
		Incarnation: binary.BigEndian.Uint64(b[16:]),
		Seq:         binary.BigEndian.Uint64(b[24:]),
		SentNs:      int64(binary.BigEndian.Uint64(b[32:])),
	}
	if f.ClusterID != clusterID {
		return Frame{}, fmt.Errorf("%w: cluster id %d, this node is in %d", ErrWrongCluster, f.ClusterID, clusterID)
	}
	return f, nil
}

// MAC is SipHash-2-4 of b under k: the authenticator of heartbeat frames,
// for other frames of tachy's that need the same (under a key of their own).
func MAC(k Key, b []byte) uint64 { return sipHash24(k.K0, k.K1, b) }
