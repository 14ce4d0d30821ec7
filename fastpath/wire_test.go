package fastpath

import (
	"errors"
	"testing"
)

var testKey = DeriveKey([]byte("secret"))

func TestFrameRoundTrip(t *testing.T) {
	f := Frame{ClusterID: 7, NodeID: 3, Incarnation: 99, Seq: 5, View: SetOf(1, 3, 64)}
	b := MarshalFrame(make([]byte, FrameLen), &f, testKey)
	got, err := ParseFrame(b, testKey, 7)
	if err != nil || got != f {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ParseFrame(b, testKey, 8); !errors.Is(err, ErrFrameCluster) {
		t.Errorf("other cluster: %v", err)
	}
	if _, err := ParseFrame(b, DeriveKey([]byte("other")), 7); !errors.Is(err, ErrFrameMAC) {
		t.Errorf("other key: %v", err)
	}
	for i := range FrameLen {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		if _, err := ParseFrame(c, testKey, 7); err == nil {
			t.Errorf("a flipped bit in byte %d passed", i)
		}
	}
	if _, err := ParseFrame(b[:40], testKey, 7); !errors.Is(err, ErrFrame) {
		t.Errorf("short frame: %v", err)
	}
	g := replayGuard{}
	if !g.fresh(f) || g.fresh(f) {
		t.Error("replay guard: first frame refused or replay accepted")
	}
	f.Seq++
	if !g.fresh(f) {
		t.Error("next sequence refused")
	}
	f.Incarnation, f.Seq = 100, 0
	if !g.fresh(f) {
		t.Error("new incarnation refused")
	}
	f.Incarnation, f.Seq = 99, 1000
	if g.fresh(f) {
		t.Error("old incarnation accepted")
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(MarshalFrame(make([]byte, FrameLen), &Frame{ClusterID: 7, NodeID: 1, View: SetOf(1, 2)}, testKey))
	f.Add([]byte("TCFP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b, testKey, 7)
		if err != nil {
			return
		}
		// A frame that parses was signed with the key: it re-encodes to
		// the same bytes.
		again := MarshalFrame(make([]byte, FrameLen), &fr, testKey)
		if string(again) != string(b) {
			t.Fatalf("re-encoded differently")
		}
	})
}
