package nbdrepl

// The replication wire protocol between a primary (Replicated) and a
// secondary (Secondary), over one TCP connection per secondary.
//
// Handshake (all integers big endian):
//
//	P->S HELLO     "TCHYREPL" version:u16 protocol:u8 volLen:u8 volume
//	               size:u64 nonceP:[32]
//	S->P CHALLENGE "TCHYREPL" version:u16 nonceS:[32]
//	               macS:[32] = HMAC(secret, "tachy-repl secondary" | HELLO | nonceS)
//	P->S AUTH      status:u8 (0 ok, 1 the secondary's proof was wrong)
//	               macP:[32] = HMAC(secret, "tachy-repl primary" | HELLO | CHALLENGE)
//	S->P first frame: HELLO_OK, or ERROR (volume or size mismatch)
//
// Version 2 continues the handshake with authenticated frames (see
// gen.go and meta.go for what they mean):
//
//	P->S META      the primary's generations (and its node name,
//	               granularity and split-brain policy)
//	S->P META      the secondary's generations, and the dirty ranges of
//	               its bitmap for that primary
//	P->S DECISION  the outcome from the secondary's point of view; the
//	               secondary checks that it reaches the same one
//	S->P CSUMS...  for a full sync only: a digest of every chunk
//
// then the replication stream, in which the primary may also send GEN
// (a new current generation; "sync done") and VERIFY (the secondary
// answers VERIFY_RESP with its digests).
//
// Both sides then derive one key per direction,
// HMAC(secret, "tachy-repl key p2s"|"tachy-repl key s2p" | nonceP | nonceS),
// and every frame is
//
//	len:u32 body[len] mac:[16]
//
// where mac is the AES-256-GMAC tag (AES-GCM with an empty plaintext) of
// body under the direction's key, with the 96-bit nonce counter:u64 | len,
// and counter counts the frames sent in that direction from 0: a replayed,
// dropped, reordered, truncated or altered frame fails verification, and no
// nonce repeats under a key (each connection derives fresh keys from fresh
// nonces). body is type:u8 followed by the fields of that type (see
// DecodeFrame). Frames are authenticated, not encrypted. Version 2 used
// HMAC-SHA256 here; GMAC costs a quarter of its CPU (8.4 against 1.8 GB/s
// on the lab's VM), and the MAC was half of each side's CPU in a
// sequential write stream.

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// ReplVersion is the version of the replication protocol.
const ReplVersion = 3

var replMagic = [8]byte{'T', 'C', 'H', 'Y', 'R', 'E', 'P', 'L'}

// FrameType is the type of a replication frame.
type FrameType uint8

const (
	// FrameWrite carries Seq, Offset, Flags (FrameFlagFUA) and Data.
	FrameWrite FrameType = 1
	// FrameTrim and FrameZeroes carry Seq, Offset, Length and Flags
	// (FrameFlagFUA; FrameFlagMayTrim for FrameZeroes).
	FrameTrim   FrameType = 2
	FrameZeroes FrameType = 3
	// FrameFlush is a barrier with Seq, Offset and Length: the secondary
	// acknowledges it (FrameAckDone) once every earlier frame is applied
	// and its backend is flushed (Length 0) or the range synced (Backend.Sync).
	FrameFlush FrameType = 4
	// FrameAckRecv (secondary to primary): every frame up to Seq has been
	// received and verified, and is held in memory.
	FrameAckRecv FrameType = 5
	// FrameAckDone (secondary to primary): every frame up to Seq has been
	// applied to the backend (FUA writes synced, barriers flushed).
	FrameAckDone FrameType = 6
	// FrameError carries Code and a message in Data; the sender closes the
	// connection after it.
	FrameError FrameType = 7
	// FrameHelloOK (secondary to primary) ends a successful handshake.
	FrameHelloOK FrameType = 8
	// FrameMeta (handshake, both ways) carries a metaMsg in Data.
	FrameMeta FrameType = 9
	// FrameDecision (handshake, primary to secondary): Code is the
	// SyncDecision from the secondary's point of view, Flags the rule.
	FrameDecision FrameType = 10
	// FrameCsums (handshake, secondary to primary, full sync): the
	// digests (digestSize bytes each) of the chunks from number Offset.
	FrameCsums FrameType = 11
	// FrameGen (stream, primary to secondary) with Seq, Gen and Flags
	// (FrameFlagSyncDone): the primary's current generation.
	FrameGen FrameType = 12
	// FrameVerify (stream, primary to secondary) with Seq, Offset and
	// Length: answer with the digests of the range's chunks.
	FrameVerify FrameType = 13
	// FrameVerifyResp (secondary to primary) with Seq, Offset and the
	// digests in Data.
	FrameVerifyResp FrameType = 14
)

var frameTypeNames = [...]string{"?", "WRITE", "TRIM", "WRITE_ZEROES", "FLUSH", "ACK_RECV", "ACK_DONE", "ERROR", "HELLO_OK", "META", "DECISION", "CSUMS", "GEN", "VERIFY", "VERIFY_RESP"}

func (t FrameType) String() string {
	if int(t) < len(frameTypeNames) && t != 0 {
		return frameTypeNames[t]
	}
	return fmt.Sprintf("frame type %d", uint8(t))
}

// Frame flags.
const (
	FrameFlagFUA     = uint32(1 << 0) // make the range durable before acknowledging it as done
	FrameFlagMayTrim = uint32(1 << 1) // FrameZeroes may deallocate
	// FrameFlagSyncDone (FrameGen): the resync to this secondary is
	// complete; it is consistent and adopts Gen.
	FrameFlagSyncDone = uint32(1 << 2)
)

// Error codes of FrameError.
const (
	ReplErrProtocol = uint32(1) // malformed or unexpected frame
	ReplErrVolume   = uint32(2) // volume id or size mismatch
	ReplErrIO       = uint32(3) // the secondary's backend failed
	ReplErrBusy     = uint32(4) // the secondary already has a primary
	ReplErrSync     = uint32(5) // split brain, unrelated data or a different decision
)

const (
	// MaxFrameBody bounds a frame's body (type, fields and data); the
	// decoder and the reader reject anything larger before allocating.
	MaxFrameBody = 4<<20 + 64
	// maxWriteChunk is the largest payload of one FrameWrite; larger
	// writes are split into several frames.
	maxWriteChunk = 4 << 20
	// maxErrorMessage bounds FrameError's message.
	maxErrorMessage = 1024

	frameMACSize  = 16
	nonceSize     = 32
	writeHdrSize  = 1 + 8 + 8 + 4
	rangeBodySize = 1 + 8 + 8 + 8 + 4
	seqBodySize   = 1 + 8
	errorHdrSize  = 1 + 4
	maxVolumeName = 255
	genBodySize   = 1 + 8 + 8 + 4
	decisionSize  = 1 + 4 + 4
	digestHdrSize = 1 + 8 + 8
	// digestSize is the bytes of a chunk digest: SHA-256 truncated.
	digestSize = 16
	maxOffset  = 1 << 62 // offsets and ends beyond this are rejected
)

// Frame is one decoded replication frame. Which fields are meaningful
// depends on Type; the others are zero.
type Frame struct {
	Type   FrameType
	Seq    uint64
	Offset uint64
	Length uint64 // FrameTrim, FrameZeroes
	Flags  uint32
	Code   uint32 // FrameError, FrameDecision
	Gen    uint64 // FrameGen
	Data   []byte // FrameWrite payload, FrameError message, FrameMeta, digests; aliases the decoded bytes

	// pooled is the buffer Data aliases when a pooling frameReader read
	// the frame: release gives it back.
	pooled []byte
	// ref counts the holders of the pooled buffer that the primary's
	// WRITE frames' Data alias (nil: not pooled).
	ref *payloadRef
}

// payloadRef counts the holders of a pooled write payload on the primary:
// the local write, and every frame of it queued to a peer until it is
// written to the socket or dropped. The last one gives it back.
type payloadRef struct {
	n   atomic.Int32
	buf []byte
}

func (r *payloadRef) hold(n int) {
	if r != nil {
		r.n.Add(int32(n))
	}
}

func (r *payloadRef) done() {
	if r != nil && r.n.Add(-1) == 0 {
		putBuf(r.buf)
	}
}

// releaseFrames drops the queue's hold on the frames' payloads.
func releaseFrames(fs []Frame) {
	for i := range fs {
		fs[i].ref.done()
	}
}

// release gives the frame's buffer back to the pool, if it came from one;
// f.Data must not be used afterwards.
func (f *Frame) release() {
	if f.pooled != nil {
		putBuf(f.pooled)
		f.pooled, f.Data = nil, nil
	}
}

// ErrFrame wraps every decoding and verification error.
var ErrFrame = errors.New("replication frame rejected")

func frameErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFrame, fmt.Sprintf(format, args...))
}

// DecodeFrame decodes a frame body (without its length prefix and MAC). It
// never panics and never allocates: Data aliases b.
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) == 0 {
		return Frame{}, frameErr("empty frame")
	}
	if len(b) > MaxFrameBody {
		return Frame{}, frameErr("frame of %d bytes exceeds %d", len(b), MaxFrameBody)
	}
	f := Frame{Type: FrameType(b[0])}
	be := binary.BigEndian
	exact := func(n int) error {
		if len(b) != n {
			return frameErr("%v frame of %d bytes, want %d", f.Type, len(b), n)
		}
		return nil
	}
	switch f.Type {
	case FrameWrite:
		if len(b) < writeHdrSize+1 {
			return Frame{}, frameErr("WRITE frame of %d bytes, want at least %d", len(b), writeHdrSize+1)
		}
		f.Seq, f.Offset, f.Flags = be.Uint64(b[1:]), be.Uint64(b[9:]), be.Uint32(b[17:])
		f.Data = b[writeHdrSize:]
		if f.Flags&^FrameFlagFUA != 0 {
			return Frame{}, frameErr("WRITE with unknown flags 0x%x", f.Flags)
		}
		if f.Offset > maxOffset || f.Offset+uint64(len(f.Data)) > maxOffset {
			return Frame{}, frameErr("WRITE offset %d out of range", f.Offset)
		}
	case FrameTrim, FrameZeroes:
		if err := exact(rangeBodySize); err != nil {
			return Frame{}, err
		}
		f.Seq, f.Offset, f.Length, f.Flags = be.Uint64(b[1:]), be.Uint64(b[9:]), be.Uint64(b[17:]), be.Uint32(b[25:])
		allowed := FrameFlagFUA
		if f.Type == FrameZeroes {
			allowed |= FrameFlagMayTrim
		}
		if f.Flags&^allowed != 0 {
			return Frame{}, frameErr("%v with unknown flags 0x%x", f.Type, f.Flags)
		}
		if f.Length == 0 || f.Offset > maxOffset || f.Length > maxOffset || f.Offset+f.Length > maxOffset {
			return Frame{}, frameErr("%v range %d+%d invalid", f.Type, f.Offset, f.Length)
		}
	case FrameFlush:
		if err := exact(rangeBodySize); err != nil {
			return Frame{}, err
		}
		f.Seq, f.Offset, f.Length, f.Flags = be.Uint64(b[1:]), be.Uint64(b[9:]), be.Uint64(b[17:]), be.Uint32(b[25:])
		if f.Flags != 0 {
			return Frame{}, frameErr("FLUSH with flags 0x%x", f.Flags)
		}
		if f.Length == 0 && f.Offset != 0 || f.Offset > maxOffset || f.Length > maxOffset || f.Offset+f.Length > maxOffset {
			return Frame{}, frameErr("FLUSH range %d+%d invalid", f.Offset, f.Length)
		}
	case FrameAckRecv, FrameAckDone:
		if err := exact(seqBodySize); err != nil {
			return Frame{}, err
		}
		f.Seq = be.Uint64(b[1:])
	case FrameHelloOK:
		if err := exact(1); err != nil {
			return Frame{}, err
		}
	case FrameError:
		if len(b) < errorHdrSize || len(b) > errorHdrSize+maxErrorMessage {
			return Frame{}, frameErr("ERROR frame of %d bytes", len(b))
		}
		f.Code = be.Uint32(b[1:])
		f.Data = b[errorHdrSize:]
	case FrameMeta:
		if len(b) < 2 || len(b) > maxMetaMsg+1 {
			return Frame{}, frameErr("META frame of %d bytes", len(b))
		}
		f.Data = b[1:]
	case FrameDecision:
		if err := exact(decisionSize); err != nil {
			return Frame{}, err
		}
		f.Code, f.Flags = be.Uint32(b[1:]), be.Uint32(b[5:])
		if f.Code > uint32(Unrelated) {
			return Frame{}, frameErr("DECISION %d unknown", f.Code)
		}
	case FrameCsums:
		if len(b) < 1+8+digestSize || (len(b)-1-8)%digestSize != 0 {
			return Frame{}, frameErr("CSUMS frame of %d bytes", len(b))
		}
		f.Offset = be.Uint64(b[1:])
		f.Data = b[9:]
		if f.Offset > maxOffset || f.Offset+uint64(len(f.Data)) > maxOffset {
			return Frame{}, frameErr("CSUMS chunk %d out of range", f.Offset)
		}
	case FrameGen:
		if err := exact(genBodySize); err != nil {
			return Frame{}, err
		}
		f.Seq, f.Gen, f.Flags = be.Uint64(b[1:]), be.Uint64(b[9:]), be.Uint32(b[17:])
		if f.Flags&^FrameFlagSyncDone != 0 {
			return Frame{}, frameErr("GEN with unknown flags 0x%x", f.Flags)
		}
	case FrameVerify:
		if err := exact(rangeBodySize); err != nil {
			return Frame{}, err
		}
		f.Seq, f.Offset, f.Length, f.Flags = be.Uint64(b[1:]), be.Uint64(b[9:]), be.Uint64(b[17:]), be.Uint32(b[25:])
		if f.Flags != 0 || f.Length == 0 || f.Offset > maxOffset || f.Length > maxOffset || f.Offset+f.Length > maxOffset {
			return Frame{}, frameErr("VERIFY %d+%d flags 0x%x invalid", f.Offset, f.Length, f.Flags)
		}
	case FrameVerifyResp:
		if len(b) < digestHdrSize || (len(b)-digestHdrSize)%digestSize != 0 {
			return Frame{}, frameErr("VERIFY_RESP frame of %d bytes", len(b))
		}
		f.Seq, f.Offset = be.Uint64(b[1:]), be.Uint64(b[9:])
		f.Data = b[digestHdrSize:]
		if f.Offset > maxOffset || f.Offset+uint64(len(f.Data)) > maxOffset {
			return Frame{}, frameErr("VERIFY_RESP offset %d out of range", f.Offset)
		}
	default:
		return Frame{}, frameErr("unknown frame type %d", b[0])
	}
	return f, nil
}

// appendFrameHeader appends a frame's length prefix and body up to (not
// including) its payload; the payload (Data) follows it on the wire.
func appendFrameHeader(dst []byte, f Frame) []byte {
	be := binary.BigEndian
	var n int
	switch f.Type {
	case FrameWrite:
		n = writeHdrSize + len(f.Data)
	case FrameTrim, FrameZeroes, FrameFlush:
		n = rangeBodySize
	case FrameAckRecv, FrameAckDone:
		n = seqBodySize
	case FrameHelloOK:
		n = 1
	case FrameError:
		n = errorHdrSize + len(f.Data)
	case FrameMeta:
		n = 1 + len(f.Data)
	case FrameDecision:
		n = decisionSize
	case FrameCsums:
		n = 1 + 8 + len(f.Data)
	case FrameGen:
		n = genBodySize
	case FrameVerify:
		n = rangeBodySize
	case FrameVerifyResp:
		n = digestHdrSize + len(f.Data)
	}
	dst = be.AppendUint32(dst, uint32(n))
	dst = append(dst, byte(f.Type))
	switch f.Type {
	case FrameWrite:
		dst = be.AppendUint64(dst, f.Seq)
		dst = be.AppendUint64(dst, f.Offset)
		dst = be.AppendUint32(dst, f.Flags)
	case FrameTrim, FrameZeroes, FrameFlush, FrameVerify:
		dst = be.AppendUint64(dst, f.Seq)
		dst = be.AppendUint64(dst, f.Offset)
		dst = be.AppendUint64(dst, f.Length)
		dst = be.AppendUint32(dst, f.Flags)
	case FrameAckRecv, FrameAckDone:
		dst = be.AppendUint64(dst, f.Seq)
	case FrameError:
		dst = be.AppendUint32(dst, f.Code)
	case FrameDecision:
		dst = be.AppendUint32(dst, f.Code)
		dst = be.AppendUint32(dst, f.Flags)
	case FrameCsums:
		dst = be.AppendUint64(dst, f.Offset)
	case FrameGen:
		dst = be.AppendUint64(dst, f.Seq)
		dst = be.AppendUint64(dst, f.Gen)
		dst = be.AppendUint32(dst, f.Flags)
	case FrameVerifyResp:
		dst = be.AppendUint64(dst, f.Seq)
		dst = be.AppendUint64(dst, f.Offset)
	}
	return dst
}

// AppendFrame appends f's body (what DecodeFrame takes) to dst.
func AppendFrame(dst []byte, f Frame) []byte {
	start := len(dst)
	dst = appendFrameHeader(dst, f)
	dst = append(dst[:start], dst[start+4:]...) // drop the length prefix
	if hasData(f.Type) {
		dst = append(dst, f.Data...)
	}
	return dst
}

// hasData says the frame type's Data follows its fixed fields on the wire.
func hasData(t FrameType) bool {
	switch t {
	case FrameWrite, FrameError, FrameMeta, FrameCsums, FrameVerifyResp:
		return true
	}
	return false
}

// frameMAC computes and checks the MACs of one direction's frames.
type frameMAC struct {
	gcm   cipher.AEAD
	ctr   uint64
	nonce [12]byte
	tag   [frameMACSize]byte
}

func newFrameMAC(key []byte) *frameMAC {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("nbdrepl: frame key of %d bytes: %v", len(key), err)) // keys are SHA-256 sized
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &frameMAC{gcm: gcm}
}

// next returns the nonce of the next frame, of bodyLen bytes, and advances
// the counter.
func (m *frameMAC) next(bodyLen int) []byte {
	binary.BigEndian.PutUint64(m.nonce[:8], m.ctr)
	binary.BigEndian.PutUint32(m.nonce[8:], uint32(bodyLen))
	m.ctr++
	return m.nonce[:]
}

// sum returns the tag of the next frame's body.
func (m *frameMAC) sum(body []byte) []byte {
	return m.gcm.Seal(m.tag[:0], m.next(len(body)), nil, body)
}

// verify checks the next frame's body against its tag.
func (m *frameMAC) verify(body, tag []byte) bool {
	_, err := m.gcm.Open(m.tag[:0], m.next(len(body)), tag, body)
	return err == nil
}

// frameWriter writes authenticated frames.
type frameWriter struct {
	w   *bufio.Writer
	mac *frameMAC
	// frame is len | body | mac, assembled in one buffer because GMAC
	// takes the body in one piece (a copy costs a few percent of the MAC).
	frame []byte
}

func newFrameWriter(w io.Writer, key []byte) *frameWriter {
	return &frameWriter{w: bufio.NewWriterSize(w, 256<<10), mac: newFrameMAC(key)}
}

// write buffers one frame; Flush sends.
func (fw *frameWriter) write(f Frame) error {
	if f.Type == FrameWrite && len(f.Data) > maxWriteChunk {
		return fmt.Errorf("WRITE payload of %d bytes exceeds %d", len(f.Data), maxWriteChunk)
	}
	b := fw.frame[:0]
	big := false
	if n := 4 + writeHdrSize + len(f.Data) + frameMACSize; n > cap(b) && n > 256<<10 {
		b, big = getBuf(n)[:0], true // a big one goes back to the pool after
	}
	b = appendFrameHeader(b, f)
	if hasData(f.Type) {
		b = append(b, f.Data...)
	}
	b = append(b, fw.mac.sum(b[4:])...)
	_, err := fw.w.Write(b) // copies b or writes it out: never keeps it
	if big {
		putBuf(b)
	} else {
		fw.frame = b
	}
	return err
}

func (fw *frameWriter) Flush() error { return fw.w.Flush() }

// frameReader reads and verifies authenticated frames, through a buffer
// (small frames that arrive together cost one read).
type frameReader struct {
	r   *bufio.Reader
	mac *frameMAC
	max int // largest body accepted
	// pool: frames are read into pooled buffers, which the caller gives
	// back with Frame.release once done with the frame.
	pool bool
}

func newFrameReader(r io.Reader, key []byte) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 256<<10), mac: newFrameMAC(key), max: MaxFrameBody}
}

// frameWaiting says whether a whole frame has already been read from the
// connection into the buffer (so the next read will not block).
func (fr *frameReader) frameWaiting() bool {
	n := fr.r.Buffered()
	if n < 4 {
		return false
	}
	hdr, err := fr.r.Peek(4)
	if err != nil {
		return false
	}
	return n >= 4+int(binary.BigEndian.Uint32(hdr))+frameMACSize
}

// read reads one frame into a fresh buffer (so Data may be kept) and
// verifies its MAC before decoding it. A frame is either returned whole
// and verified or not at all.
func (fr *frameReader) read() (Frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > uint32(fr.max) {
		return Frame{}, frameErr("frame length %d out of range (1..%d)", n, fr.max)
	}
	var buf []byte
	if fr.pool {
		buf = getBuf(int(n) + frameMACSize)
	} else {
		buf = make([]byte, int(n)+frameMACSize)
	}
	if _, err := io.ReadFull(fr.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("reading %d-byte frame: %w", n, err)
	}
	body, mac := buf[:n], buf[n:]
	if !fr.mac.verify(body, mac) {
		return Frame{}, frameErr("bad MAC on frame %d (altered, replayed or reordered, or keyed with another secret)", fr.mac.ctr-1)
	}
	f, err := DecodeFrame(body)
	if err == nil && fr.pool {
		f.pooled = buf
	}
	return f, err
}

// Handshake messages.

type hello struct {
	Version  uint16
	Protocol Protocol
	Volume   string
	Size     uint64
	Nonce    [nonceSize]byte
}

func appendHello(b []byte, h hello) []byte {
	b = append(b, replMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = append(b, byte(h.Protocol), byte(len(h.Volume)))
	b = append(b, h.Volume...)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	return append(b, h.Nonce[:]...)
}

// readHello reads a HELLO; it reads at most 8+2+2+255+8+32 bytes.
func readHello(r io.Reader) (hello, []byte, error) {
	var h hello
	fixed := make([]byte, 12)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return h, nil, fmt.Errorf("reading HELLO: %w", err)
	}
	if !bytes.Equal(fixed[:8], replMagic[:]) {
		return h, nil, fmt.Errorf("not a tachy replication peer (magic %q)", fixed[:8])
	}
	h.Version = binary.BigEndian.Uint16(fixed[8:])
	if h.Version != ReplVersion {
		return h, nil, fmt.Errorf("replication protocol version %d, this node speaks %d", h.Version, ReplVersion)
	}
	h.Protocol = Protocol(fixed[10])
	rest := make([]byte, int(fixed[11])+8+nonceSize)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, nil, fmt.Errorf("reading HELLO: %w", err)
	}
	if !h.Protocol.valid() {
		return h, nil, fmt.Errorf("HELLO: unknown protocol %d", fixed[10])
	}
	nv := int(fixed[11])
	h.Volume = string(rest[:nv])
	h.Size = binary.BigEndian.Uint64(rest[nv:])
	copy(h.Nonce[:], rest[nv+8:])
	return h, append(fixed, rest...), nil
}

func replMAC(secret []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// ErrAuth is returned (wrapped) when the peer does not prove knowledge of
// the shared secret, or rejects ours.
var ErrAuth = errors.New("replication authentication failed")

const (
	labelSecondary = "tachy-repl secondary"
	labelPrimary   = "tachy-repl primary"
	labelKeyP2S    = "tachy-repl key p2s"
	labelKeyS2P    = "tachy-repl key s2p"

	challengeSize = 8 + 2 + nonceSize + sha256.Size
	authSize      = 1 + sha256.Size
)

func sessionKeys(secret []byte, nonceP, nonceS []byte) (p2s, s2p []byte) {
	return replMAC(secret, []byte(labelKeyP2S), nonceP, nonceS), replMAC(secret, []byte(labelKeyS2P), nonceP, nonceS)
}
