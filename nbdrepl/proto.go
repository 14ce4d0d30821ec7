package nbdrepl

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pojntfx/go-nbd/pkg/protocol"
)

// Wire constants of the NBD protocol
// (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
// Those go-nbd's protocol package defines are reused; the rest are added here.
const (
	magicNBD      = protocol.NEGOTIATION_MAGIC_OLDSTYLE // "NBDMAGIC"
	magicOption   = protocol.NEGOTIATION_MAGIC_OPTION   // "IHAVEOPT"
	magicOptReply = protocol.NEGOTIATION_MAGIC_REPLY
	magicRequest  = protocol.TRANSMISSION_MAGIC_REQUEST
	magicReply    = protocol.TRANSMISSION_MAGIC_REPLY

	// Handshake flags (server) and client flags.
	flagFixedNewstyle  = protocol.NEGOTIATION_HANDSHAKE_FLAG_FIXED_NEWSTYLE
	flagNoZeroes       = uint16(1 << 1)
	flagCFixedNewstyle = uint32(1 << 0)
	flagCNoZeroes      = uint32(1 << 1)

	// Options.
	optExportName      = uint32(1)
	optAbort           = protocol.NEGOTIATION_ID_OPTION_ABORT
	optList            = protocol.NEGOTIATION_ID_OPTION_LIST
	optStartTLS        = uint32(5)
	optInfo            = protocol.NEGOTIATION_ID_OPTION_INFO
	optGo              = protocol.NEGOTIATION_ID_OPTION_GO
	optStructuredReply = uint32(8)

	// Option replies.
	repAck         = protocol.NEGOTIATION_TYPE_REPLY_ACK
	repServer      = protocol.NEGOTIATION_TYPE_REPLY_SERVER
	repInfo        = protocol.NEGOTIATION_TYPE_REPLY_INFO
	repErrUnsup    = protocol.NEGOTIATION_TYPE_REPLY_ERR_UNSUPPORTED
	repErrPolicy   = uint32(2 | 1<<31)
	repErrInvalid  = uint32(3 | 1<<31)
	repErrUnknown  = protocol.NEGOTIATION_TYPE_REPLY_ERR_UNKNOWN
	repErrTLSReqd  = uint32(5 | 1<<31)
	repErrShutdown = uint32(7 | 1<<31)

	// Information types for NBD_OPT_INFO / NBD_OPT_GO.
	infoExport      = protocol.NEGOTIATION_TYPE_INFO_EXPORT
	infoName        = protocol.NEGOTIATION_TYPE_INFO_NAME
	infoDescription = protocol.NEGOTIATION_TYPE_INFO_DESCRIPTION
	infoBlockSize   = protocol.NEGOTIATION_TYPE_INFO_BLOCKSIZE

	// Transmission flags.
	FlagHasFlags        = protocol.NEGOTIATION_REPLY_FLAGS_HAS_FLAGS
	FlagReadOnly        = uint16(1 << 1)
	FlagSendFlush       = uint16(1 << 2)
	FlagSendFUA         = uint16(1 << 3)
	FlagSendTrim        = uint16(1 << 5)
	FlagSendWriteZeroes = uint16(1 << 6)
	FlagCanMultiConn    = protocol.NEGOTIATION_REPLY_FLAGS_CAN_MULTI_CONN

	// Commands.
	CmdRead        = protocol.TRANSMISSION_TYPE_REQUEST_READ
	CmdWrite       = protocol.TRANSMISSION_TYPE_REQUEST_WRITE
	CmdDisc        = protocol.TRANSMISSION_TYPE_REQUEST_DISC
	CmdFlush       = uint16(3)
	CmdTrim        = uint16(4)
	CmdWriteZeroes = uint16(6)

	// Command flags.
	CmdFlagFUA    = uint16(1 << 0)
	CmdFlagNoHole = uint16(1 << 1)

	// Errors of simple replies (errno values as the protocol defines them).
	ErrPerm      = protocol.TRANSMISSION_ERROR_EPERM
	ErrIO        = uint32(5)
	ErrNoMem     = uint32(12)
	ErrInval     = protocol.TRANSMISSION_ERROR_EINVAL
	ErrNoSpc     = uint32(28)
	ErrOverflow  = uint32(75)
	ErrNotSup    = uint32(95)
	ErrShutdown  = uint32(108)
	requestSize  = 28
	replySize    = 16
	optHdrSize   = 16
	maxOptionLen = 64 << 10 // longer option payloads end the session

	// DefaultMaxPayload is the largest READ/WRITE the server accepts and
	// advertises as maximum block size: 32 MiB, the protocol's portable limit.
	DefaultMaxPayload = 32 << 20
)

// Request is one decoded transmission request header.
type Request struct {
	Flags  uint16
	Type   uint16
	Handle uint64 // the "cookie" the reply must carry
	Offset uint64
	Length uint32
}

// ErrBadMagic is returned by ParseRequest for a header that does not start
// with NBD_REQUEST_MAGIC; the stream cannot be resynchronised after it.
var ErrBadMagic = errors.New("nbd: bad request magic")

// ParseRequest decodes a 28-byte request header. It only fails when the bytes
// cannot be a request at all (short buffer, bad magic): such errors end the
// connection. Whether the request is acceptable for an export is decided by
// checkRequest.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < requestSize {
		return Request{}, fmt.Errorf("nbd: short request header (%d bytes)", len(b))
	}
	if m := binary.BigEndian.Uint32(b[0:4]); m != magicRequest {
		return Request{}, fmt.Errorf("%w 0x%08x", ErrBadMagic, m)
	}
	return Request{
		Flags:  binary.BigEndian.Uint16(b[4:6]),
		Type:   binary.BigEndian.Uint16(b[6:8]),
		Handle: binary.BigEndian.Uint64(b[8:16]),
		Offset: binary.BigEndian.Uint64(b[16:24]),
		Length: binary.BigEndian.Uint32(b[24:28]),
	}, nil
}

// AppendRequest encodes r (the client side; used by tests).
func AppendRequest(b []byte, r Request) []byte {
	b = binary.BigEndian.AppendUint32(b, magicRequest)
	b = binary.BigEndian.AppendUint16(b, r.Flags)
	b = binary.BigEndian.AppendUint16(b, r.Type)
	b = binary.BigEndian.AppendUint64(b, r.Handle)
	b = binary.BigEndian.AppendUint64(b, r.Offset)
	return binary.BigEndian.AppendUint32(b, r.Length)
}

// limits are what checkRequest validates a request against.
type limits struct {
	size       uint64 // export size
	minBlock   uint32 // power of two; 1 = no alignment
	maxPayload uint32
	readOnly   bool
	flags      uint16 // transmission flags sent to the client
}

// Verdicts of checkRequest besides an errno.
const (
	verdictOK = iota
	verdictError
	verdictFatal // disconnect: the payload cannot be consumed sensibly
)

// checkRequest decides what to do with a parsed request: run it, answer it
// with an errno (after consuming its payload, if any), or disconnect.
func checkRequest(r Request, l limits) (verdict int, errno uint32, reason string) {
	switch r.Type {
	case CmdDisc:
		return verdictOK, 0, ""
	case CmdWrite:
		if r.Length > l.maxPayload {
			return verdictFatal, 0, fmt.Sprintf("write payload %d bytes exceeds %d", r.Length, l.maxPayload)
		}
	case CmdRead:
		if r.Length > l.maxPayload {
			return verdictError, ErrInval, "read length exceeds maximum"
		}
	case CmdFlush:
		if l.flags&FlagSendFlush == 0 {
			return verdictError, ErrInval, "flush not negotiated"
		}
		return verdictOK, 0, "" // offset and length are ignored
	case CmdTrim:
		if l.flags&FlagSendTrim == 0 {
			return verdictError, ErrInval, "trim not negotiated"
		}
	case CmdWriteZeroes:
		if l.flags&FlagSendWriteZeroes == 0 {
			return verdictError, ErrInval, "write zeroes not negotiated"
		}
	default:
		return verdictError, ErrInval, fmt.Sprintf("unknown command %d", r.Type)
	}
	if l.readOnly && r.Type != CmdRead {
		return verdictError, ErrPerm, "write to read-only export"
	}
	if r.Offset > l.size || uint64(r.Length) > l.size-r.Offset {
		return verdictError, ErrInval, "beyond end of export"
	}
	if m := uint64(l.minBlock); m > 1 && (r.Offset%m != 0 || uint64(r.Length)%m != 0) {
		return verdictError, ErrInval, "not aligned to minimum block size"
	}
	return verdictOK, 0, ""
}

// parseOptionHeader decodes the 16-byte option header.
func parseOptionHeader(b []byte) (id, length uint32, err error) {
	if len(b) < optHdrSize {
		return 0, 0, errors.New("nbd: short option header")
	}
	if m := binary.BigEndian.Uint64(b[0:8]); m != magicOption {
		return 0, 0, fmt.Errorf("nbd: bad option magic 0x%016x", m)
	}
	id = binary.BigEndian.Uint32(b[8:12])
	length = binary.BigEndian.Uint32(b[12:16])
	if length > maxOptionLen {
		return id, length, fmt.Errorf("nbd: option %d payload %d bytes exceeds %d", id, length, maxOptionLen)
	}
	return id, length, nil
}

// infoRequest is the payload of NBD_OPT_INFO and NBD_OPT_GO.
type infoRequest struct {
	Name  string
	Infos []uint16
}

// parseInfoRequest decodes NBD_OPT_INFO/NBD_OPT_GO data: a 32-bit name
// length, the name, a 16-bit count and that many 16-bit information types.
func parseInfoRequest(d []byte) (infoRequest, error) {
	if len(d) < 4 {
		return infoRequest{}, errors.New("short name length")
	}
	n := binary.BigEndian.Uint32(d)
	d = d[4:]
	if uint64(n) > uint64(len(d)) {
		return infoRequest{}, errors.New("name longer than option")
	}
	r := infoRequest{Name: string(d[:n])}
	d = d[n:]
	if len(d) < 2 {
		return infoRequest{}, errors.New("short information count")
	}
	c := int(binary.BigEndian.Uint16(d))
	d = d[2:]
	if len(d) != 2*c {
		return infoRequest{}, fmt.Errorf("%d information requests in %d bytes", c, len(d))
	}
	for i := 0; i < c; i++ {
		r.Infos = append(r.Infos, binary.BigEndian.Uint16(d[2*i:]))
	}
	return r, nil
}

func appendInfoRequest(b []byte, r infoRequest) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Name)))
	b = append(b, r.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Infos)))
	for _, i := range r.Infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}
