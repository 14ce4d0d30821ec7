package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// CPIOWriter writes a cpio archive in the "newc" (SVR4 without CRC) format,
// the one the Linux kernel unpacks as an initramfs. Every header is 110
// ASCII bytes (magic 070701 and thirteen 8-digit hexadecimal fields), then
// the NUL-terminated name, padded to a multiple of 4, then the data, padded
// likewise. Entries carry uid 0, gid 0 and mtime 0, so the same inputs give
// the same archive byte for byte.
type CPIOWriter struct {
	w      io.Writer
	ino    uint32
	seen   map[string]bool
	closed bool
	err    error
}

// NewCPIOWriter returns a writer that writes the archive to w. Close writes
// the trailer; the caller closes w.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 1, seen: map[string]bool{}}
}

// File types for the mode field (the S_IF* values of stat(2)).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// entry is one archive member.
type entry struct {
	name   string
	mode   uint32 // type and permission bits
	nlink  uint32
	rmajor uint32
	rminor uint32
	data   []byte
}

// Dir adds a directory. Parents are not added implicitly: add them first.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	return c.add(entry{name: name, mode: modeDir | unixPerm(perm), nlink: 2})
}

// File adds a regular file with the given contents.
func (c *CPIOWriter) File(name string, perm fs.FileMode, data []byte) error {
	return c.add(entry{name: name, mode: modeRegular | unixPerm(perm), nlink: 1, data: data})
}

// Symlink adds a symbolic link name pointing at target.
func (c *CPIOWriter) Symlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %s: empty target", name)
	}
	return c.add(entry{name: name, mode: modeSymlink | 0o777, nlink: 1, data: []byte(target)})
}

// CharDev adds a character device node (such as /dev/console, 5:1).
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	return c.add(entry{name: name, mode: modeCharDev | unixPerm(perm), nlink: 1, rmajor: major, rminor: minor})
}

// unixPerm is the permission bits of m as stat(2) has them: Go keeps the
// set-user-ID, set-group-ID and sticky bits outside Perm().
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// cleanName turns a path into the archive's form: relative, no "." or ".."
// elements, no trailing slash ("/bin/tachy" and "bin/tachy" are the same).
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("NUL in name")
	}
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	if n == "" {
		return "", errors.New("empty name")
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", errors.New(`".." in name`)
		}
	}
	return n, nil
}

func (c *CPIOWriter) add(e entry) error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return errors.New("cpio: write after Close")
	}
	name, err := cleanName(e.name)
	if err != nil {
		return fmt.Errorf("cpio: %q: %w", e.name, err)
	}
	if name == "TRAILER!!!" {
		return errors.New("cpio: the name TRAILER!!! is reserved")
	}
	if c.seen[name] {
		return fmt.Errorf("cpio: %s added twice", name)
	}
	c.seen[name] = true
	if uint64(len(e.data)) > 0xffffffff {
		return fmt.Errorf("cpio: %s: %d bytes is more than newc can hold", name, len(e.data))
	}
	e.name = name
	c.err = c.write(e, c.ino)
	c.ino++
	return c.err
}

func (c *CPIOWriter) write(e entry, ino uint32) error {
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, e.nlink, 0, len(e.data), 0, 0, e.rmajor, e.rminor, len(e.name)+1, 0)
	b := make([]byte, 0, len(hdr)+len(e.name)+4)
	b = append(b, hdr...)
	b = append(b, e.name...)
	b = append(b, 0)
	b = pad4(b)
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	if len(e.data) == 0 {
		return nil
	}
	if _, err := c.w.Write(e.data); err != nil {
		return err
	}
	if p := (4 - len(e.data)%4) % 4; p > 0 {
		_, err := c.w.Write(make([]byte, p))
		return err
	}
	return nil
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Close writes the trailer entry. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return nil
	}
	c.closed = true
	// The kernel and cpio(1) read the archive until this entry.
	c.err = c.write(entry{name: "TRAILER!!!", nlink: 1}, 0)
	return c.err
}
