package nbdrepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, r := range []Request{
		{Type: CmdRead, Handle: 1, Offset: 4096, Length: 512},
		{Type: CmdWrite, Flags: CmdFlagFUA, Handle: 2, Offset: 0, Length: 1 << 20},
		{Type: CmdWriteZeroes, Flags: CmdFlagNoHole, Offset: 1 << 40, Length: 1},
		{Type: CmdTrim, Offset: ^uint64(0), Length: ^uint32(0)},
		{Type: CmdFlush}, {Type: CmdDisc}, {Type: 99},
	} {
		f.Add(AppendRequest(nil, r), uint64(1<<30), uint8(9), false)
	}
	f.Add([]byte("short"), uint64(0), uint8(0), true)
	f.Fuzz(func(t *testing.T, b []byte, size uint64, blockShift uint8, ro bool) {
		r, err := ParseRequest(b)
		if err != nil {
			if len(b) >= requestSize && binary.BigEndian.Uint32(b) == magicRequest {
				t.Fatalf("valid magic rejected: %v", err)
			}
			return
		}
		if enc := AppendRequest(nil, r); !bytes.Equal(enc, b[:requestSize]) {
			t.Fatalf("round trip: %x != %x", enc, b[:requestSize])
		}
		l := limits{size: size, minBlock: 1 << (blockShift % 17), maxPayload: DefaultMaxPayload, readOnly: ro,
			flags: FlagHasFlags | FlagSendFlush | FlagSendFUA | FlagSendTrim | FlagSendWriteZeroes}
		verdict, errno, why := checkRequest(r, l)
		switch verdict {
		case verdictOK:
			if errno != 0 || why != "" {
				t.Fatalf("ok with errno %d %q", errno, why)
			}
			switch r.Type {
			case CmdRead, CmdWrite, CmdTrim, CmdWriteZeroes:
				end := r.Offset + uint64(r.Length)
				if end < r.Offset || end > size {
					t.Fatalf("accepted out of range %+v size %d", r, size)
				}
				if r.Offset%uint64(l.minBlock) != 0 || uint64(r.Length)%uint64(l.minBlock) != 0 {
					t.Fatalf("accepted misaligned %+v", r)
				}
				if (r.Type == CmdRead || r.Type == CmdWrite) && r.Length > l.maxPayload {
					t.Fatalf("accepted oversized %+v", r)
				}
				if ro && r.Type != CmdRead {
					t.Fatalf("accepted write to read-only %+v", r)
				}
			case CmdFlush, CmdDisc:
			default:
				t.Fatalf("accepted unknown command %d", r.Type)
			}
		case verdictError:
			if errno == 0 || why == "" {
				t.Fatalf("error verdict without errno/reason")
			}
		case verdictFatal:
			if r.Type != CmdWrite {
				t.Fatalf("fatal verdict for %+v", r)
			}
		default:
			t.Fatalf("verdict %d", verdict)
		}
	})
}

// FuzzNegotiate feeds arbitrary client bytes to the option negotiation and
// checks that the server's answer is a well-formed sequence: the greeting,
// option replies, and at most one final NBD_OPT_EXPORT_NAME answer.
func FuzzNegotiate(f *testing.F) {
	opt := func(id uint32, data []byte) []byte {
		b := binary.BigEndian.AppendUint64(nil, magicOption)
		b = binary.BigEndian.AppendUint32(b, id)
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	flags := binary.BigEndian.AppendUint32(nil, flagCFixedNewstyle|flagCNoZeroes)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(cat(flags, opt(optList, nil), opt(optGo, appendInfoRequest(nil, infoRequest{Name: "a", Infos: []uint16{0, 1, 2, 3}}))))
	f.Add(cat(flags, opt(optInfo, appendInfoRequest(nil, infoRequest{Name: "zz"})), opt(optExportName, []byte("b"))))
	f.Add(cat(binary.BigEndian.AppendUint32(nil, flagCFixedNewstyle), opt(optExportName, nil)))
	f.Add(cat(flags, opt(optStructuredReply, nil), opt(optAbort, nil)))
	f.Add(cat(flags, opt(optGo, []byte{0, 0, 0, 1, 'a', 0, 1})))
	f.Add(cat(flags, opt(optList, []byte{1})))

	s := &Server{Exports: []Export{
		{Name: "a", Description: "first", Backend: NewMemBackend(4096)},
		{Name: "b", Backend: NewMemBackend(8192), ReadOnly: true, MinBlock: 512},
	}}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		exp, err := s.negotiate(bytes.NewReader(in), &out)
		if (exp == nil) == (err == nil) {
			t.Fatalf("export %v and error %v", exp, err)
		}
		o := out.Bytes()
		if len(o) < 18 || binary.BigEndian.Uint64(o) != magicNBD {
			t.Fatalf("no greeting: %x", o)
		}
		o = o[18:]
		var last uint32
		var lastType uint32
		for len(o) > 0 {
			if len(o) >= 20 && binary.BigEndian.Uint64(o) == magicOptReply {
				n := binary.BigEndian.Uint32(o[16:])
				if uint64(len(o)) < 20+uint64(n) {
					t.Fatalf("truncated option reply")
				}
				last, lastType = binary.BigEndian.Uint32(o[8:]), binary.BigEndian.Uint32(o[12:])
				if lastType == repInfo && n < 2 {
					t.Fatalf("empty NBD_REP_INFO")
				}
				o = o[20+n:]
				continue
			}
			// Only the NBD_OPT_EXPORT_NAME answer may remain.
			if exp == nil || (len(o) != 10 && len(o) != 134) {
				t.Fatalf("trailing bytes %x (export %v)", o, exp)
			}
			if binary.BigEndian.Uint64(o) != uint64(exp.Backend.Size()) {
				t.Fatalf("export size")
			}
			return
		}
		if exp != nil && (last != optGo || lastType != repAck) {
			t.Fatalf("transmission without NBD_OPT_GO ack (last %d/0x%x)", last, lastType)
		}
		if errors.Is(err, errAborted) && (last != optAbort || lastType != repAck) {
			t.Fatalf("abort not acknowledged")
		}
	})
}

func FuzzParseInfoRequest(f *testing.F) {
	f.Add(appendInfoRequest(nil, infoRequest{Name: "disk", Infos: []uint16{3}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseInfoRequest(b)
		if err != nil {
			return
		}
		if enc := appendInfoRequest(nil, r); !bytes.Equal(enc, b) {
			t.Fatalf("round trip %x != %x", enc, b)
		}
	})
}
