package heartbeat

import (
	"encoding/binary"
	"errors"
	"testing"
)

// The reference vectors of the SipHash paper: key 00..0f, message 00..(n-1).
func TestSipHashReferenceVectors(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	k0 := binary.LittleEndian.Uint64(key[:8])
	k1 := binary.LittleEndian.Uint64(key[8:])
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	want := map[int]uint64{
		0:  0x726fdb47dd0e0e31,
		1:  0x74f839c593dc67fd,
		8:  0x93f5f5799a932462,
		15: 0xa129ca6149be45e5,
	}
	for n, w := range want {
		if got := sipHash24(k0, k1, msg[:n]); got != w {
			t.Errorf("siphash(len %d) = %#x, want %#x", n, got, w)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	k := DeriveKey([]byte("secret"))
	in := Frame{Link: 1, ClusterID: 7, NodeID: 3, Incarnation: 99, Seq: 12345, SentNs: 1700000000123456789}
	var buf [FrameLen]byte
	b := MarshalFrame(buf[:], &in, k)
	out, err := ParseFrame(b, k, 7)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

func TestFrameRejects(t *testing.T) {
	k := DeriveKey([]byte("secret"))
	good := MarshalFrame(make([]byte, FrameLen), &Frame{Link: 0, ClusterID: 7, NodeID: 1, Incarnation: 1, Seq: 1}, k)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := []struct {
		name string
		b    []byte
		key  Key
		want error
	}{
		{"short", good[:FrameLen-1], k, ErrShortFrame},
		{"magic", mutate(func(b []byte) { b[0] = 'X' }), k, ErrNotTachy},
		{"version", mutate(func(b []byte) { b[4] = 2 }), k, ErrBadVersion},
		{"type", mutate(func(b []byte) { b[5] = 9 }), k, ErrBadType},
		{"flags", mutate(func(b []byte) { b[7] = 1 }), k, ErrBadFlags},
		{"flipped seq bit", mutate(func(b []byte) { b[31] ^= 1 }), k, ErrBadMAC},
		{"flipped mac bit", mutate(func(b []byte) { b[47] ^= 0x80 }), k, ErrBadMAC},
		{"wrong key", good, DeriveKey([]byte("other")), ErrBadMAC},
	}
	for _, c := range cases {
		if _, err := ParseFrame(c.b, c.key, 7); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParseFrame(good, k, 8); !errors.Is(err, ErrWrongCluster) {
		t.Errorf("other cluster: err = %v", err)
	}
}

func FuzzParseFrame(f *testing.F) {
	k := DeriveKey([]byte("fuzz"))
	f.Add(MarshalFrame(make([]byte, FrameLen), &Frame{ClusterID: 1, NodeID: 2, Incarnation: 3, Seq: 4}, k))
	f.Add([]byte("TCHY"))
	f.Add(make([]byte, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b, k, 1)
		if err != nil {
			return
		}
		// Anything accepted must re-encode to the same authenticated bytes.
		again := MarshalFrame(make([]byte, FrameLen), &fr, k)
		if string(again) != string(b[:FrameLen]) {
			t.Fatalf("accepted frame does not re-encode identically:\n%x\n%x", b[:FrameLen], again)
		}
	})
}
