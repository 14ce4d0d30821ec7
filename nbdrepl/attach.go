package nbdrepl

// The client side: negotiating an export (fixed newstyle, NBD_OPT_GO) and
// handing the connection to the kernel's NBD client, so that the export
// appears as /dev/nbdX. The ioctl numbers are go-nbd's (pkg/ioctl);
// go-nbd's own client.Connect is not used because it sends NBD_OPT_GO with
// an option length of 0 followed by the data, which a conforming server
// (this one, nbdkit) rejects, and because it does not pass the
// transmission flags to the kernel, which then never sends FLUSH or FUA:
// fsync on a file system on the device would not reach the disk.

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pojntfx/go-nbd/pkg/ioctl"
	"golang.org/x/sys/unix"
)

// ExportInfo is what NBD_OPT_GO tells a client about an export.
type ExportInfo struct {
	Size      uint64
	Flags     uint16 // transmission flags
	MinBlock  uint32 // 0 when the server sent no block sizes
	PrefBlock uint32
	MaxBlock  uint32
}

// maxClientReply bounds one option reply's payload the client accepts.
const maxClientReply = 64 << 10

// Negotiate runs the client side of the fixed newstyle handshake on rw and
// selects export with NBD_OPT_GO (asking for its block sizes). On success
// rw is in the transmission phase. Errors say what the server did wrong or
// refused.
func Negotiate(rw io.ReadWriter, export string) (ExportInfo, error) {
	br := bufio.NewReader(rw)
	cflags, err := readGreeting(br)
	if err != nil {
		return ExportInfo{}, err
	}
	return negotiateGo(br, rw, binary.BigEndian.AppendUint32(nil, cflags), export)
}

// NegotiateTLS is Negotiate over TLS, for clients in user space (the
// kernel's client cannot speak TLS): after the greeting it asks for TLS
// (NBD_OPT_STARTTLS), runs the TLS handshake on c as a client with cfg,
// and selects export over TLS. On success the returned connection is in
// the transmission phase.
func NegotiateTLS(c net.Conn, export string, cfg *tls.Config) (*tls.Conn, ExportInfo, error) {
	br := bufio.NewReader(c)
	cflags, err := readGreeting(br)
	if err != nil {
		return nil, ExportInfo{}, err
	}
	req := binary.BigEndian.AppendUint32(nil, cflags)
	if _, err := c.Write(appendOption(req, optStartTLS, nil)); err != nil {
		return nil, ExportInfo{}, fmt.Errorf("nbd: sending NBD_OPT_STARTTLS: %w", err)
	}
	typ, payload, err := readOptionReply(br, optStartTLS, "NBD_OPT_STARTTLS")
	if err != nil {
		return nil, ExportInfo{}, err
	}
	if typ != repAck {
		return nil, ExportInfo{}, fmt.Errorf("nbd: the server does not offer TLS: it answered NBD_OPT_STARTTLS with 0x%x (%s)", typ, replyMessage(payload))
	}
	if br.Buffered() > 0 {
		return nil, ExportInfo{}, errors.New("nbd: the server sent data after acknowledging NBD_OPT_STARTTLS")
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, ExportInfo{}, fmt.Errorf("nbd: TLS handshake: %w", err)
	}
	info, err := negotiateGo(bufio.NewReader(tc), tc, nil, export)
	if err != nil {
		return nil, info, err
	}
	return tc, info, nil
}

// readGreeting reads the server's greeting and returns the client flags to
// answer it with.
func readGreeting(br *bufio.Reader) (uint32, error) {
	var hdr [18]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, fmt.Errorf("nbd: reading the server's greeting: %w", err)
	}
	if binary.BigEndian.Uint64(hdr[0:]) != magicNBD {
		return 0, errors.New("nbd: the server did not greet with NBDMAGIC: not an NBD server")
	}
	if binary.BigEndian.Uint64(hdr[8:]) != magicOption {
		return 0, errors.New("nbd: the server speaks the oldstyle handshake; only fixed newstyle is supported")
	}
	sflags := binary.BigEndian.Uint16(hdr[16:])
	if sflags&flagFixedNewstyle == 0 {
		return 0, errors.New("nbd: the server does not offer fixed newstyle negotiation")
	}
	cflags := flagCFixedNewstyle
	if sflags&flagNoZeroes != 0 {
		cflags |= flagCNoZeroes
	}
	return cflags, nil
}

func appendOption(b []byte, id uint32, data []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, magicOption)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// readOptionReply reads one option reply, which must be for option id
// (named name in errors).
func readOptionReply(br *bufio.Reader, id uint32, name string) (typ uint32, payload []byte, err error) {
	var rh [20]byte
	if _, err := io.ReadFull(br, rh[:]); err != nil {
		return 0, nil, fmt.Errorf("nbd: reading the reply to %s: %w", name, err)
	}
	if binary.BigEndian.Uint64(rh[0:]) != magicOptReply {
		return 0, nil, errors.New("nbd: bad option reply magic")
	}
	if opt := binary.BigEndian.Uint32(rh[8:]); opt != id {
		return 0, nil, fmt.Errorf("nbd: the server answered option %d, not %s", opt, name)
	}
	typ, n := binary.BigEndian.Uint32(rh[12:]), binary.BigEndian.Uint32(rh[16:])
	if n > maxClientReply {
		return 0, nil, fmt.Errorf("nbd: option reply of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, fmt.Errorf("nbd: reading an option reply: %w", err)
	}
	return typ, payload, nil
}

func replyMessage(payload []byte) string {
	if msg := strings.TrimSpace(string(payload)); msg != "" {
		return msg
	}
	return "no message"
}

// negotiateGo sends prefix (the client flags, if not sent yet) and
// NBD_OPT_GO for export on w and reads the replies from br.
func negotiateGo(br *bufio.Reader, w io.Writer, prefix []byte, export string) (ExportInfo, error) {
	var info ExportInfo
	data := appendInfoRequest(nil, infoRequest{Name: export, Infos: []uint16{infoBlockSize}})
	if _, err := w.Write(appendOption(prefix, optGo, data)); err != nil {
		return info, fmt.Errorf("nbd: sending NBD_OPT_GO: %w", err)
	}
	gotExport := false
	for {
		typ, payload, err := readOptionReply(br, optGo, "NBD_OPT_GO")
		if err != nil {
			return info, err
		}
		switch {
		case typ == repAck:
			if !gotExport {
				return info, errors.New("nbd: the server acknowledged NBD_OPT_GO without describing the export")
			}
			if br.Buffered() > 0 {
				return info, errors.New("nbd: the server sent data after acknowledging NBD_OPT_GO")
			}
			return info, nil
		case typ == repInfo:
			if len(payload) < 2 {
				return info, errors.New("nbd: empty NBD_REP_INFO")
			}
			switch binary.BigEndian.Uint16(payload) {
			case infoExport:
				if len(payload) != 12 {
					return info, fmt.Errorf("nbd: NBD_INFO_EXPORT of %d bytes", len(payload))
				}
				info.Size = binary.BigEndian.Uint64(payload[2:])
				info.Flags = binary.BigEndian.Uint16(payload[10:])
				gotExport = true
			case infoBlockSize:
				if len(payload) != 14 {
					return info, fmt.Errorf("nbd: NBD_INFO_BLOCK_SIZE of %d bytes", len(payload))
				}
				info.MinBlock = binary.BigEndian.Uint32(payload[2:])
				info.PrefBlock = binary.BigEndian.Uint32(payload[6:])
				info.MaxBlock = binary.BigEndian.Uint32(payload[10:])
			}
			// Other information (name, description) is not needed.
		case typ == repErrUnknown:
			return info, fmt.Errorf("nbd: the server has no export %q (%s)", export, replyMessage(payload))
		case typ == repErrTLSReqd:
			return info, fmt.Errorf("nbd: the server requires TLS for export %q: connect with TLS (%s)", export, replyMessage(payload))
		case typ&(1<<31) != 0:
			return info, fmt.Errorf("nbd: the server refused export %q: error 0x%x (%s)", export, typ, replyMessage(payload))
		default:
			return info, fmt.Errorf("nbd: unexpected option reply type 0x%x", typ)
		}
	}
}

// kernelBlockSize picks the block size for the kernel client, which becomes
// the device's logical block size: the smallest the server allows and the
// kernel accepts (512..4096, a power of two), as nbd-client's default is,
// so that any file system fits (ext4 with 1 KiB blocks cannot be mounted on
// a device with 4 KiB sectors).
func kernelBlockSize(info ExportInfo) (uint32, error) {
	bs := max(info.MinBlock, 512)
	if bs > 4096 || bs&(bs-1) != 0 {
		return 0, fmt.Errorf("nbd: the export's minimum block size %d suits no kernel block size (512..4096, a power of two)", info.MinBlock)
	}
	if info.Size%uint64(bs) != 0 {
		return 0, fmt.Errorf("nbd: the export's size (%d bytes) is not a multiple of the block size %d", info.Size, bs)
	}
	return bs, nil
}

// Ioctls of linux/nbd.h that go-nbd's ioctl package does not name.
const (
	nbdSetFlags   = 0xab0a
	nbdClearSock  = 0xab04
	nbdDisconnect = 0xab08
)

// KernelDevice is a /dev/nbdX attached to an export by AttachKernel.
type KernelDevice struct {
	Path string
	Info ExportInfo

	dev   *os.File
	sock  *os.File
	once  sync.Once
	done  chan struct{}
	doErr error
}

// AttachKernel negotiates export on conn (a TCP or Unix stream socket) and
// gives the connection to the kernel's NBD client on device (/dev/nbdX):
// the export's size, block size and flags (so FLUSH and FUA reach the
// server), no request timeout (I/O suspended for quorum waits). It returns
// once the device has its size.
func AttachKernel(device string, conn net.Conn, export string) (*KernelDevice, error) {
	sc, ok := conn.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("nbd: %T cannot be handed to the kernel (use a TCP or Unix socket)", conn)
	}
	dev, err := os.OpenFile(device, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("nbd: %s does not exist: load the nbd kernel module (modprobe nbd)", device)
		}
		return nil, fmt.Errorf("nbd: %w", err)
	}
	info, err := Negotiate(conn, export)
	if err != nil {
		dev.Close()
		return nil, err
	}
	bs, err := kernelBlockSize(info)
	if err != nil {
		dev.Close()
		return nil, err
	}
	sock, err := sc.File()
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("nbd: %w", err)
	}
	fd := int(dev.Fd())
	steps := []struct {
		name string
		req  uint
		arg  uintptr
	}{
		{"NBD_SET_SOCK", ioctl.NEGOTIATION_IOCTL_SET_SOCK, sock.Fd()},
		{"NBD_SET_BLKSIZE", ioctl.NEGOTIATION_IOCTL_SET_BLOCKSIZE, uintptr(bs)},
		{"NBD_SET_SIZE_BLOCKS", ioctl.NEGOTIATION_IOCTL_SET_SIZE_BLOCKS, uintptr(info.Size / uint64(bs))},
		{"NBD_SET_FLAGS", nbdSetFlags, uintptr(info.Flags)},
		{"NBD_SET_TIMEOUT", ioctl.NEGOTIATION_IOCTL_SET_TIMEOUT, 0},
	}
	for _, s := range steps {
		if err := ioctlArg(fd, s.req, s.arg); err != nil {
			if s.name == "NBD_SET_SOCK" && errors.Is(err, unix.EBUSY) {
				err = fmt.Errorf("%w: %s is already connected to a server (detach it first)", err, device)
			}
			if s.name != "NBD_SET_SOCK" {
				ioctlArg(fd, nbdClearSock, 0)
			}
			sock.Close()
			dev.Close()
			return nil, fmt.Errorf("nbd: %s on %s: %w", s.name, device, err)
		}
	}
	k := &KernelDevice{Path: device, Info: info, dev: dev, sock: sock, done: make(chan struct{})}
	go func() {
		// NBD_DO_IT runs the kernel client until it is disconnected or
		// its socket fails; it holds this thread all that time. A signal
		// delivered to the thread (Go's threads take any process signal,
		// SIGCHLD included) makes the kernel shut the connection down:
		// every signal is blocked on it. The thread is never unlocked,
		// so it ends with this goroutine, mask and all.
		runtime.LockOSThread()
		var all unix.Sigset_t
		for i := range all.Val {
			all.Val[i] = ^uint64(0)
		}
		unix.PthreadSigmask(unix.SIG_BLOCK, &all, nil)
		k.doErr = ioctlArg(fd, ioctl.NEGOTIATION_IOCTL_DO_IT, 0)
		ioctlArg(fd, nbdClearSock, 0)
		close(k.done)
	}()
	sizeFile := filepath.Join("/sys/block", filepath.Base(device), "size")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(sizeFile)
		if err == nil {
			if n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); n > 0 {
				return k, nil
			}
		}
		select {
		case <-k.done:
			k.close()
			return nil, fmt.Errorf("nbd: %s stopped at once: %v", device, k.doErr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.Detach()
			return nil, fmt.Errorf("nbd: %s did not come up within 10 s (%s stays 0)", device, sizeFile)
		}
	}
}

func ioctlArg(fd int, req uint, arg uintptr) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg); e != 0 {
		return e
	}
	return nil
}

// Done is closed when the kernel client has stopped (detached, or the
// connection to the server failed).
func (k *KernelDevice) Done() <-chan struct{} { return k.done }

// Err is why the kernel client stopped (nil while it runs or after a clean
// detach).
func (k *KernelDevice) Err() error {
	select {
	case <-k.done:
		if k.doErr != nil && !errors.Is(k.doErr, unix.EINTR) {
			return k.doErr
		}
	default:
	}
	return nil
}

// Busy says whether something holds the device open exclusively (a
// mounted file system does).
func (k *KernelDevice) Busy() bool { return DeviceBusy(k.Path) }

// DeviceBusy says whether a block device is held exclusively (mounted, or
// opened with O_EXCL): opening it with O_EXCL then fails with EBUSY.
func DeviceBusy(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return errors.Is(err, unix.EBUSY)
	}
	unix.Close(fd)
	return false
}

// Detach disconnects the kernel client (it sends NBD_CMD_DISC after the
// requests in flight) and waits until it has stopped. Whoever still has
// the device open gets I/O errors afterwards: check Busy first.
func (k *KernelDevice) Detach() error {
	select {
	case <-k.done:
	default:
		fd := int(k.dev.Fd())
		if err := ioctlArg(fd, nbdDisconnect, 0); err != nil {
			return fmt.Errorf("nbd: NBD_DISCONNECT on %s: %w", k.Path, err)
		}
		select {
		case <-k.done:
		case <-time.After(30 * time.Second):
			ioctlArg(fd, nbdClearSock, 0)
			<-k.done
		}
	}
	k.close()
	return nil
}

func (k *KernelDevice) close() {
	k.once.Do(func() {
		k.sock.Close()
		k.dev.Close()
	})
}
