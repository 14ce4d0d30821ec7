package nbdrepl

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Backend is the storage behind an export. All methods may be called
// concurrently. Offsets and lengths passed by the server are already checked
// against Size.
type Backend interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes every write that has completed (on any connection, if
	// Caps().MultiConn) durable.
	Flush() error
	// Sync makes the given range durable after a write to it (FUA). It may
	// sync more than the range.
	Sync(off, length int64) error
	// Trim discards the range; later reads return unspecified data (both
	// backends here return zeroes).
	Trim(off, length int64) error
	// WriteZeroes makes the range read as zeroes; mayTrim allows it to
	// deallocate the range (NBD_CMD_FLAG_NO_HOLE not set).
	WriteZeroes(off, length int64, mayTrim bool) error
	Size() int64
	Caps() Caps
}

// Caps says what a backend supports; the server advertises transmission
// flags from it.
type Caps struct {
	Flush       bool // Flush does something useful (SEND_FLUSH)
	FUA         bool // Sync is supported (SEND_FUA)
	Trim        bool // SEND_TRIM
	WriteZeroes bool // SEND_WRITE_ZEROES
	// MultiConn: Flush and Sync make the completed writes of all
	// connections durable (CAN_MULTI_CONN).
	MultiConn bool
	ReadOnly  bool
}

// FileBackend serves a regular file or a block device with pread/pwrite.
type FileBackend struct {
	f        *os.File
	size     int64
	readOnly bool

	mu        sync.Mutex
	noPunch   bool // fallocate PUNCH_HOLE unsupported here
	noZeroRng bool // fallocate ZERO_RANGE unsupported here
}

// OpenFile opens path as a backend. A regular file keeps its size; a block
// device's size is found by seeking to its end.
func OpenFile(path string, readOnly bool) (*FileBackend, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of %s: %w", path, err)
	}
	return &FileBackend{f: f, size: size, readOnly: readOnly}, nil
}

// Close closes the file.
func (b *FileBackend) Close() error { return b.f.Close() }

func (b *FileBackend) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

func (b *FileBackend) WriteAt(p []byte, off int64) (int, error) { return b.f.WriteAt(p, off) }

// Flush calls fdatasync: the page cache is shared by every connection, so all
// completed writes become durable.
func (b *FileBackend) Flush() error { return fdatasync(b.f) }

// Sync syncs the whole file (fdatasync); sync_file_range would not flush the
// device's cache nor the metadata needed to find the data.
func (b *FileBackend) Sync(off, length int64) error { return fdatasync(b.f) }

func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

func (b *FileBackend) Size() int64 { return b.size }

func (b *FileBackend) Caps() Caps {
	return Caps{Flush: true, FUA: true, Trim: true, WriteZeroes: true, MultiConn: true, ReadOnly: b.readOnly}
}

// Trim punches a hole. Trim is advisory, so a file system without hole
// punching makes it a no-op rather than an error.
func (b *FileBackend) Trim(off, length int64) error {
	if length == 0 {
		return nil
	}
	err := b.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length, &b.noPunch)
	if isUnsupported(err) {
		return nil
	}
	return err
}

// WriteZeroes punches a hole when allowed, else uses ZERO_RANGE, and falls
// back to writing zeroes when the file system supports neither.
func (b *FileBackend) WriteZeroes(off, length int64, mayTrim bool) error {
	if length == 0 {
		return nil
	}
	if mayTrim {
		err := b.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length, &b.noPunch)
		if !isUnsupported(err) {
			return err
		}
	}
	err := b.fallocate(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, length, &b.noZeroRng)
	if !isUnsupported(err) {
		return err
	}
	return writeZeroes(b.f, off, length)
}

// errUnsupported marks a fallocate mode remembered as unsupported.
var errUnsupported = errors.New("fallocate mode unsupported")

func isUnsupported(err error) bool {
	return errors.Is(err, errUnsupported) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}

func (b *FileBackend) fallocate(mode uint32, off, length int64, unsupported *bool) error {
	b.mu.Lock()
	skip := *unsupported
	b.mu.Unlock()
	if skip {
		return errUnsupported
	}
	var err error
	for {
		err = unix.Fallocate(int(b.f.Fd()), mode, off, length)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		b.mu.Lock()
		*unsupported = true
		b.mu.Unlock()
	}
	return err
}

// zeroBuf is made on first use: every tachy command links this package,
// and a megabyte at start-up is a cost for all of them.
var zeroBuf = sync.OnceValue(func() []byte { return make([]byte, 1<<20) })

func writeZeroes(w interface {
	WriteAt([]byte, int64) (int, error)
}, off, length int64) error {
	for length > 0 {
		zero := zeroBuf()
		n := min(length, int64(len(zero)))
		if _, err := w.WriteAt(zero[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// errnoOf maps a backend error to an NBD error code.
func errnoOf(err error) uint32 {
	var e syscall.Errno
	if errors.As(err, &e) {
		switch e {
		case syscall.EPERM, syscall.EACCES, syscall.EROFS:
			return ErrPerm
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG:
			return ErrNoSpc
		case syscall.EINVAL:
			return ErrInval
		case syscall.ENOMEM:
			return ErrNoMem
		case syscall.EOVERFLOW:
			return ErrOverflow
		case syscall.EOPNOTSUPP:
			return ErrNotSup
		}
	}
	return ErrIO
}
