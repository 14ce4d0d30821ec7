package nbdrepl

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawFrame encodes a frame body with a valid MAC from fw's key and counter.
// fakePrimary runs the primary's handshake and generation exchange on nc
// and returns the authenticated streams.
func fakePrimary(t testing.TB, r *Replicated, nc net.Conn) (*frameReader, *frameWriter) {
	t.Helper()
	fr, fw, err := r.handshake(nc)
	if err != nil {
		t.Fatal(err)
	}
	stub, err := r.ensureStub("fake")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.negotiate(nc, fr, fw, stub); err != nil {
		t.Fatal(err)
	}
	if err := fw.write(Frame{Type: FrameGen, Gen: r.meta.Current(), Flags: FrameFlagSyncDone}); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	return fr, fw
}

func rawFrame(fw *frameWriter, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	b = append(b, body...)
	return append(b, fw.mac.sum(body)...)
}

// TestReplMalformedFrames: after a valid frame, a fake (but authenticated)
// primary sends one bad frame; the secondary rejects it with an error,
// tells the primary, closes the connection, and applies nothing of it.
func TestReplMalformedFrames(t *testing.T) {
	const size = 1 << 20
	good := func(fw *frameWriter) []byte {
		return rawFrame(fw, AppendFrame(nil, Frame{Type: FrameWrite, Seq: 1, Offset: 0, Data: bytes.Repeat([]byte{1}, 4096)}))
	}
	bad := AppendFrame(nil, Frame{Type: FrameWrite, Seq: 2, Offset: 4096, Data: bytes.Repeat([]byte{2}, 4096)})
	cases := []struct {
		name  string
		frame func(fw *frameWriter, first []byte) []byte
		want  string // in the secondary's error
	}{
		{"altered payload", func(fw *frameWriter, _ []byte) []byte {
			b := rawFrame(fw, bad)
			b[100] ^= 1
			return b
		}, "bad MAC"},
		{"altered MAC", func(fw *frameWriter, _ []byte) []byte {
			b := rawFrame(fw, bad)
			b[len(b)-1] ^= 0x80
			return b
		}, "bad MAC"},
		{"replayed frame", func(fw *frameWriter, first []byte) []byte { return first }, "bad MAC"},
		{"oversized length", func(fw *frameWriter, _ []byte) []byte {
			return binary.BigEndian.AppendUint32(nil, 0xffffffff)
		}, "frame length 4294967295 out of range"},
		{"zero length", func(fw *frameWriter, _ []byte) []byte { return make([]byte, 4+frameMACSize) }, "frame length 0"},
		{"sequence gap", func(fw *frameWriter, _ []byte) []byte {
			return rawFrame(fw, AppendFrame(nil, Frame{Type: FrameWrite, Seq: 3, Offset: 4096, Data: []byte{2}}))
		}, "seq 3, expected 2"},
		{"beyond the volume", func(fw *frameWriter, _ []byte) []byte {
			return rawFrame(fw, AppendFrame(nil, Frame{Type: FrameWrite, Seq: 2, Offset: size - 1, Data: []byte{2, 2}}))
		}, "beyond the volume"},
		{"trim beyond the volume", func(fw *frameWriter, _ []byte) []byte {
			return rawFrame(fw, AppendFrame(nil, Frame{Type: FrameTrim, Seq: 2, Offset: 4096, Length: size}))
		}, "beyond the volume"},
		{"unknown type", func(fw *frameWriter, _ []byte) []byte { return rawFrame(fw, []byte{99, 0, 0}) }, "unknown frame type 99"},
		{"unknown flags", func(fw *frameWriter, _ []byte) []byte {
			b := append([]byte(nil), bad...)
			b[20] = 0x80
			return rawFrame(fw, b)
		}, "unknown flags"},
		{"ack from the primary", func(fw *frameWriter, _ []byte) []byte {
			return rawFrame(fw, AppendFrame(nil, Frame{Type: FrameAckDone, Seq: 2}))
		}, "unexpected ACK_DONE"},
		{"truncated frame", func(fw *frameWriter, _ []byte) []byte {
			b := rawFrame(fw, bad)
			return b[:len(b)/2]
		}, "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sm := NewMemBackend(size)
			ts := startSecondary(t, sm, "vol0", testSecret)
			r := newPrimary(t, NewMemBackend(size), ProtocolC)
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			fr, fw := fakePrimary(t, r, nc)
			first := good(fw)
			if _, err := nc.Write(first); err != nil {
				t.Fatal(err)
			}
			for ts.sec.Applied() != 1 {
				time.Sleep(time.Millisecond)
			}
			if _, err := nc.Write(tc.frame(fw, first)); err != nil {
				t.Fatal(err)
			}
			truncated := tc.name == "truncated frame"
			if truncated {
				nc.(*net.TCPConn).CloseWrite()
			}
			serr := ts.result(t)
			if serr == nil || !strings.Contains(serr.Error(), tc.want) {
				t.Fatalf("secondary: %v, want %q", serr, tc.want)
			}
			if !truncated && !errors.Is(serr, ErrFrame) {
				t.Errorf("error %v is not ErrFrame", serr)
			}
			t.Logf("secondary: %v", serr)
			// The primary is told why (after the acknowledgements), then
			// the connection is closed.
			var gotErr bool
			var lastErr error
			for {
				f, err := fr.read()
				lastErr = err
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
						t.Errorf("after the error frame: %v, want EOF", err)
					}
					break
				}
				if f.Type == FrameError {
					gotErr = true
					if f.Code != ReplErrProtocol || !strings.Contains(string(f.Data), tc.want) {
						t.Errorf("ERROR frame %d %q", f.Code, f.Data)
					}
				}
			}
			if !truncated && !gotErr {
				t.Errorf("no ERROR frame before the close (%v)", lastErr)
			}
			if ts.sec.Applied() != 1 || ts.sec.Received() != 1 {
				t.Errorf("received %d applied %d, want 1 and 1", ts.sec.Received(), ts.sec.Applied())
			}
			got := sm.Bytes()
			if !bytes.Equal(got[:4096], bytes.Repeat([]byte{1}, 4096)) || !bytes.Equal(got[4096:], make([]byte, size-4096)) {
				t.Error("store holds something other than the first frame")
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range seedFrames() {
		b := AppendFrame(nil, f)
		g, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("%v: %v", f.Type, err)
		}
		if g.Type != f.Type || g.Seq != f.Seq || g.Offset != f.Offset || g.Length != f.Length || g.Flags != f.Flags || g.Code != f.Code || g.Gen != f.Gen || !bytes.Equal(g.Data, f.Data) {
			t.Errorf("round trip %+v -> %+v", f, g)
		}
		// Every truncation and every extension is rejected, except
		// WRITE and ERROR, whose payload is the rest of the frame.
		for n := range len(b) {
			if _, err := DecodeFrame(b[:n]); err == nil && !hasData(f.Type) {
				t.Errorf("%v truncated to %d bytes accepted", f.Type, n)
			}
		}
		if _, err := DecodeFrame(append(b, 0)); err == nil && !hasData(f.Type) {
			t.Errorf("%v with a trailing byte accepted", f.Type)
		}
	}
	if _, err := DecodeFrame(make([]byte, MaxFrameBody+1)); err == nil {
		t.Error("oversized frame accepted")
	}
}

func seedFrames() []Frame {
	return []Frame{
		{Type: FrameWrite, Seq: 1, Offset: 4096, Data: []byte("hello")},
		{Type: FrameWrite, Seq: 2, Offset: 0, Flags: FrameFlagFUA, Data: make([]byte, 512)},
		{Type: FrameTrim, Seq: 3, Offset: 8192, Length: 4096},
		{Type: FrameZeroes, Seq: 4, Offset: 0, Length: 1 << 20, Flags: FrameFlagMayTrim | FrameFlagFUA},
		{Type: FrameFlush, Seq: 5},
		{Type: FrameFlush, Seq: 6, Offset: 512, Length: 512},
		{Type: FrameAckRecv, Seq: 7},
		{Type: FrameAckDone, Seq: 8},
		{Type: FrameError, Code: ReplErrIO, Data: []byte("disk on fire")},
		{Type: FrameHelloOK},
		{Type: FrameMeta, Data: appendMetaMsg(nil, metaMsg{Node: "n1", Primary: true, Granularity: 4096, Current: 5, Ranges: [][2]int64{{0, 4096}}})},
		{Type: FrameDecision, Code: uint32(FullSyncTarget), Flags: 30},
		{Type: FrameCsums, Offset: 3, Data: make([]byte, 2*digestSize)},
		{Type: FrameGen, Seq: 9, Gen: 0xabcdef, Flags: FrameFlagSyncDone},
		{Type: FrameVerify, Seq: 10, Offset: 4096, Length: 1 << 20},
		{Type: FrameVerifyResp, Seq: 10, Offset: 4096, Data: make([]byte, digestSize)},
	}
}

// FuzzDecodeFrame: arbitrary bytes as a frame body, and as a stream of
// authenticated frames. Decoding never panics, accepted frames re-encode
// to the same bytes, the stream reader accepts exactly what DecodeFrame
// accepts once the MAC is right and never allocates beyond MaxFrameBody.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(AppendFrame(nil, fr), false)
	}
	f.Add([]byte{}, true)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, true)
	key := make([]byte, 32)
	rand.Read(key)
	f.Fuzz(func(t *testing.T, b []byte, asStream bool) {
		fr, err := DecodeFrame(b)
		if err == nil {
			if enc := AppendFrame(nil, fr); !bytes.Equal(enc, b) {
				t.Fatalf("re-encoding %+v: %x != %x", fr, enc, b)
			}
			if len(b) > MaxFrameBody || fr.Offset > maxOffset || fr.Offset+fr.Length > maxOffset || fr.Offset+uint64(len(fr.Data)) > maxOffset {
				t.Fatalf("accepted out-of-bounds frame %+v", fr)
			}
			_ = checkFrame(fr, fr.Seq, 1<<30)
		} else if !errors.Is(err, ErrFrame) {
			t.Fatalf("error %v does not wrap ErrFrame", err)
		}
		if asStream {
			// Raw bytes as a stream: nothing authenticates.
			r := newFrameReader(bytes.NewReader(b), key)
			if _, serr := r.read(); serr == nil {
				t.Fatal("unauthenticated stream accepted")
			}
			return
		}
		// b as the body of a correctly authenticated frame.
		w := &frameWriter{mac: newFrameMAC(key)}
		stream := rawFrame(w, b)
		r := newFrameReader(bytes.NewReader(stream), key)
		got, serr := r.read()
		if len(b) == 0 || len(b) > MaxFrameBody {
			if serr == nil {
				t.Fatal("stream reader accepted a frame of bad length")
			}
			return
		}
		if (serr == nil) != (err == nil) {
			t.Fatalf("stream reader: %v, DecodeFrame: %v", serr, err)
		}
		if serr == nil && (got.Type != fr.Type || got.Seq != fr.Seq || !bytes.Equal(got.Data, fr.Data)) {
			t.Fatalf("stream reader decoded %+v, DecodeFrame %+v", got, fr)
		}
		// The same frame again is a replay: its counter is wrong.
		r2 := newFrameReader(bytes.NewReader(append(stream, stream...)), key)
		r2.read()
		if _, err := r2.read(); err == nil {
			t.Fatal("replayed frame accepted")
		}
	})
}
