package nbdrepl

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// Negotiate is the client every server test connects with (connect); these
// cover its refusals.
func TestNegotiateRefusals(t *testing.T) {
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: NewMemBackend(1 << 20)}}})
	c := dial(t, addr)
	if _, err := Negotiate(c, "nope"); err == nil || !strings.Contains(err.Error(), `no export "nope"`) {
		t.Fatalf("unknown export: %v", err)
	}
	c = dial(t, addr)
	info, err := Negotiate(c, "disk")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 1<<20 || info.Flags&FlagSendFlush == 0 || info.Flags&FlagSendFUA == 0 || info.PrefBlock != 4096 {
		t.Fatalf("info %+v", info)
	}
	// Not an NBD server, and an oldstyle one.
	for _, tc := range []struct {
		greeting []byte
		want     string
	}{
		{[]byte("SSH-2.0-OpenSSH_9.2\r\n"), "not an NBD server"},
		{append(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, magicNBD), 0x00420281861253), 0, 0), "oldstyle"},
	} {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(tc.greeting), io.Discard}
		if _, err := Negotiate(rw, "disk"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.greeting, err, tc.want)
		}
	}
}

func TestKernelBlockSize(t *testing.T) {
	for _, tc := range []struct {
		info ExportInfo
		want uint32 // 0: refused
	}{
		{ExportInfo{Size: 1 << 20, MinBlock: 1, PrefBlock: 4096}, 512},
		{ExportInfo{Size: 1 << 20}, 512},
		{ExportInfo{Size: 1 << 20, MinBlock: 4096, PrefBlock: 65536}, 4096},
		{ExportInfo{Size: 1 << 20, MinBlock: 1024, PrefBlock: 4096}, 1024},
		{ExportInfo{Size: 1 << 20, MinBlock: 8192, PrefBlock: 8192}, 0},
		{ExportInfo{Size: 1 << 20, MinBlock: 3000, PrefBlock: 4096}, 0},
		{ExportInfo{Size: 1000, MinBlock: 1, PrefBlock: 4096}, 0},
	} {
		got, err := kernelBlockSize(tc.info)
		if got != tc.want || (tc.want == 0) != (err != nil) {
			t.Errorf("%+v: %d, %v; want %d", tc.info, got, err, tc.want)
		}
	}
}

// FuzzClientNegotiate feeds arbitrary server bytes to the client: it must
// return (an error or an export with its size) without panicking, and never
// accept an export the server did not describe.
func FuzzClientNegotiate(f *testing.F) {
	greet := binary.BigEndian.AppendUint64(nil, magicNBD)
	greet = binary.BigEndian.AppendUint64(greet, magicOption)
	greet = binary.BigEndian.AppendUint16(greet, flagFixedNewstyle|flagNoZeroes)
	reply := func(typ uint32, data []byte) []byte {
		b := binary.BigEndian.AppendUint64(nil, magicOptReply)
		b = binary.BigEndian.AppendUint32(b, optGo)
		b = binary.BigEndian.AppendUint32(b, typ)
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	export := binary.BigEndian.AppendUint16(nil, infoExport)
	export = binary.BigEndian.AppendUint64(export, 1<<20)
	export = binary.BigEndian.AppendUint16(export, FlagHasFlags|FlagSendFlush)
	bsz := binary.BigEndian.AppendUint16(nil, infoBlockSize)
	bsz = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(bsz, 1), 4096), 1<<25)
	f.Add(bytes.Join([][]byte{greet, reply(repInfo, export), reply(repInfo, bsz), reply(repAck, nil)}, nil))
	f.Add(bytes.Join([][]byte{greet, reply(repErrUnknown, []byte("no such export"))}, nil))
	f.Add(bytes.Join([][]byte{greet, reply(repAck, nil)}, nil))
	f.Add(greet[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(b), io.Discard}
		info, err := Negotiate(rw, "disk")
		if err == nil && !bytes.Contains(b, []byte{0, byte(infoExport)}) {
			t.Fatalf("accepted %+v without NBD_INFO_EXPORT", info)
		}
	})
}
