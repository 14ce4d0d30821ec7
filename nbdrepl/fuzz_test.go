package nbdrepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/iotest"
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

// FuzzNegotiate feeds arbitrary client bytes to the option negotiation, in
// each TLS mode, and checks that the server's answer is a well-formed
// sequence: the greeting, option replies, and at most one final
// NBD_OPT_EXPORT_NAME answer. NBD_OPT_STARTTLS switches to a pretend TLS
// session that goes on reading the same bytes: its handshake consumes one
// byte and fails unless that is 0x16 (a TLS handshake record). Under
// TLSRequire nothing may reach transmission, nor be answered other than
// NBD_REP_ERR_TLS_REQD (STARTTLS and ABORT aside), before TLS; TLS starts
// only right after an NBD_OPT_STARTTLS acknowledgement, and at most once.
func FuzzNegotiate(f *testing.F) {
	opt := func(id uint32, data []byte) []byte { return appendOption(nil, id, data) }
	flags := binary.BigEndian.AppendUint32(nil, flagCFixedNewstyle|flagCNoZeroes)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	goA := opt(optGo, appendInfoRequest(nil, infoRequest{Name: "a", Infos: []uint16{0, 1, 2, 3}}))
	f.Add(cat(flags, opt(optList, nil), goA))
	f.Add(cat(flags, opt(optInfo, appendInfoRequest(nil, infoRequest{Name: "zz"})), opt(optExportName, []byte("b"))))
	f.Add(cat(binary.BigEndian.AppendUint32(nil, flagCFixedNewstyle), opt(optExportName, nil)))
	f.Add(cat(flags, opt(optStructuredReply, nil), opt(optAbort, nil)))
	f.Add(cat(flags, opt(optGo, []byte{0, 0, 0, 1, 'a', 0, 1})))
	f.Add(cat(flags, opt(optList, []byte{1})))
	f.Add(cat(flags, opt(optStartTLS, nil), []byte{0x16}, opt(optList, nil), goA))
	f.Add(cat(flags, opt(optStartTLS, nil), []byte{0x16}, opt(optStartTLS, nil), opt(optExportName, []byte("a"))))
	f.Add(cat(flags, opt(optList, nil), opt(optStartTLS, []byte{1}), opt(optStartTLS, nil), []byte{0}))
	f.Add(cat(binary.BigEndian.AppendUint32(nil, flagCNoZeroes), opt(optStartTLS, nil), []byte{0x16}, goA))

	exports := []Export{
		{Name: "a", Description: "first", Backend: NewMemBackend(4096)},
		{Name: "b", Backend: NewMemBackend(8192), ReadOnly: true, MinBlock: 512},
	}
	quiet := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, mode := range []TLSMode{TLSOff, TLSAllow, TLSRequire} {
			s := &Server{Exports: exports, TLS: mode}
			// One byte at a time, as a client that waits for each
			// reply would send them: nothing is left buffered when
			// STARTTLS is acknowledged.
			r := iotest.OneByteReader(bytes.NewReader(in))
			var out bytes.Buffer
			upgradedAt := -1
			startTLS := func() (io.ReadWriter, error) {
				if upgradedAt >= 0 {
					t.Fatalf("%s: TLS started twice", mode)
				}
				upgradedAt = out.Len()
				var b [1]byte
				if _, err := io.ReadFull(r, b[:]); err != nil || b[0] != 0x16 {
					return nil, errors.New("not a TLS handshake")
				}
				return struct {
					io.Reader
					io.Writer
				}{r, &out}, nil
			}
			exp, _, err := s.negotiate(r, &out, startTLS, quiet)
			checkNegotiation(t, mode, in, out.Bytes(), upgradedAt, exp, err)
		}
	})
}

// checkNegotiation checks the server's output o in TLS mode; TLS started
// after upgradedAt bytes of it (-1: never).
func checkNegotiation(t *testing.T, mode TLSMode, in, o []byte, upgradedAt int, exp *Export, err error) {
	t.Helper()
	if (exp == nil) == (err == nil) {
		t.Fatalf("%s: export %v and error %v", mode, exp, err)
	}
	if len(o) < 18 || binary.BigEndian.Uint64(o) != magicNBD {
		t.Fatalf("%s: no greeting: %x", mode, o)
	}
	if mode == TLSOff && upgradedAt >= 0 {
		t.Fatalf("TLS started with TLS off")
	}
	if upgradedAt >= 0 {
		ack := appendOptReply(optStartTLS, repAck)
		if upgradedAt < 18+len(ack) || !bytes.Equal(o[upgradedAt-len(ack):upgradedAt], ack) {
			t.Fatalf("%s: TLS started without an NBD_OPT_STARTTLS acknowledgement just before", mode)
		}
	}
	if mode == TLSRequire && exp != nil && upgradedAt < 0 {
		t.Fatalf("transmission without TLS under TLSRequire (input %x)", in)
	}
	pos := 18
	o = o[18:]
	var last, lastType uint32
	for len(o) > 0 {
		inTLS := upgradedAt >= 0 && pos >= upgradedAt
		if len(o) >= 20 && binary.BigEndian.Uint64(o) == magicOptReply {
			n := binary.BigEndian.Uint32(o[16:])
			if uint64(len(o)) < 20+uint64(n) {
				t.Fatalf("%s: truncated option reply", mode)
			}
			last, lastType = binary.BigEndian.Uint32(o[8:]), binary.BigEndian.Uint32(o[12:])
			if lastType == repInfo && n < 2 {
				t.Fatalf("%s: empty NBD_REP_INFO", mode)
			}
			switch {
			case lastType == repErrTLSReqd && (mode != TLSRequire || inTLS):
				t.Fatalf("%s: NBD_REP_ERR_TLS_REQD (TLS running: %v)", mode, inTLS)
			case mode == TLSRequire && !inTLS && last != optStartTLS && last != optAbort && lastType != repErrTLSReqd:
				t.Fatalf("option %d answered 0x%x before TLS under TLSRequire", last, lastType)
			case last == optStartTLS && lastType == repAck && (mode == TLSOff || inTLS):
				t.Fatalf("%s: NBD_OPT_STARTTLS acknowledged (TLS running: %v)", mode, inTLS)
			case last == optStartTLS && mode == TLSOff && lastType != repErrUnsup:
				t.Fatalf("NBD_OPT_STARTTLS answered 0x%x with TLS off", lastType)
			}
			o, pos = o[20+n:], pos+20+int(n)
			continue
		}
		// Only the NBD_OPT_EXPORT_NAME answer may remain.
		if exp == nil || (len(o) != 10 && len(o) != 134) {
			t.Fatalf("%s: trailing bytes %x (export %v)", mode, o, exp)
		}
		if binary.BigEndian.Uint64(o) != uint64(exp.Backend.Size()) {
			t.Fatalf("%s: export size", mode)
		}
		return
	}
	if exp != nil && (last != optGo || lastType != repAck) {
		t.Fatalf("%s: transmission without NBD_OPT_GO ack (last %d/0x%x)", mode, last, lastType)
	}
	if errors.Is(err, errAborted) && (last != optAbort || lastType != repAck) {
		t.Fatalf("%s: abort not acknowledged", mode)
	}
}

func appendOptReply(id, typ uint32) []byte {
	var b bytes.Buffer
	writeOptReply(&b, id, typ, nil)
	return b.Bytes()
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
