package image

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readNewc parses a newc archive strictly, as the kernel does: it checks the
// magic, the padding and the trailer, and returns the entries in order.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("entry at %d is not 4-aligned", off)
		}
		if len(b)-off < 110 {
			t.Fatalf("short header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		f := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		size, namesize := f(6), f(11)
		if f(2) != 0 || f(3) != 0 || f(5) != 0 || f(12) != 0 {
			t.Fatalf("uid, gid, mtime or check not 0 at %d: %q", off, h)
		}
		nameEnd := off + 110 + int(namesize)
		if b[nameEnd-1] != 0 {
			t.Fatalf("name not NUL-terminated at %d", off)
		}
		e := entry{name: string(b[off+110 : nameEnd-1]), mode: f(1), nlink: f(4), rmajor: f(9), rminor: f(10)}
		dataStart := (nameEnd + 3) &^ 3
		for _, z := range b[nameEnd:dataStart] {
			if z != 0 {
				t.Fatalf("non-zero name padding in %s", e.name)
			}
		}
		e.data = b[dataStart : dataStart+int(size)]
		off = (dataStart + int(size) + 3) &^ 3
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func sampleArchive(t *testing.T, withDev bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Dir("bin", 0o755))
	must(w.Dir("/etc/", 0o755))
	must(w.Dir("etc/tachy", 0o700))
	must(w.Dir("tmp", 0o777|fs.ModeSticky))
	// Sizes around every padding case: 0..5 bytes, and a large file.
	for n := 0; n <= 5; n++ {
		must(w.File(fmt.Sprintf("etc/f%d", n), 0o644, bytes.Repeat([]byte{'a' + byte(n)}, n)))
	}
	big := make([]byte, 1<<20+3)
	for i := range big {
		big[i] = byte(i * 7)
	}
	must(w.File("/bin/tachy", 0o755, big))
	must(w.File("etc/tachy/cluster.key", 0o600, []byte("00ff\n")))
	must(w.Symlink("init", "bin/tachy"))
	if withDev {
		must(w.Dir("dev", 0o755))
		must(w.CharDev("dev/console", 0o600, 5, 1))
	}
	must(w.Close())
	must(w.Close()) // idempotent
	return buf.Bytes()
}

func TestCPIORoundTrip(t *testing.T) {
	b := sampleArchive(t, true)
	es := readNewc(t, b)
	want := []struct {
		name string
		mode uint32
		size int
	}{
		{"bin", 0o40755, 0}, {"etc", 0o40755, 0}, {"etc/tachy", 0o40700, 0}, {"tmp", 0o41777, 0},
		{"etc/f0", 0o100644, 0}, {"etc/f1", 0o100644, 1}, {"etc/f2", 0o100644, 2},
		{"etc/f3", 0o100644, 3}, {"etc/f4", 0o100644, 4}, {"etc/f5", 0o100644, 5},
		{"bin/tachy", 0o100755, 1<<20 + 3}, {"etc/tachy/cluster.key", 0o100600, 5},
		{"init", 0o120777, len("bin/tachy")}, {"dev", 0o40755, 0}, {"dev/console", 0o20600, 0},
	}
	if len(es) != len(want) {
		t.Fatalf("%d entries, want %d", len(es), len(want))
	}
	for i, w := range want {
		e := es[i]
		if e.name != w.name || e.mode != w.mode || len(e.data) != w.size {
			t.Errorf("entry %d: %s %o %d bytes, want %s %o %d", i, e.name, e.mode, len(e.data), w.name, w.mode, w.size)
		}
	}
	if string(es[12].data) != "bin/tachy" {
		t.Errorf("symlink target %q", es[12].data)
	}
	if es[14].rmajor != 5 || es[14].rminor != 1 {
		t.Errorf("console is %d:%d", es[14].rmajor, es[14].rminor)
	}
	for i := 1; i <= 5; i++ {
		if got := string(es[4+i].data); got != strings.Repeat(string(rune('a'+i)), i) {
			t.Errorf("etc/f%d holds %q", i, got)
		}
	}
	if !bytes.Equal(es[10].data, func() []byte {
		big := make([]byte, 1<<20+3)
		for i := range big {
			big[i] = byte(i * 7)
		}
		return big
	}()) {
		t.Error("bin/tachy corrupted")
	}
	// Deterministic: the same input gives the same bytes.
	if !bytes.Equal(b, sampleArchive(t, true)) {
		t.Error("two archives of the same input differ")
	}
}

func TestCPIORefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(w *CPIOWriter) error
	}{
		{"duplicate", func(w *CPIOWriter) error { w.Dir("a", 0o755); return w.File("/a/", 0o644, nil) }},
		{"dotdot", func(w *CPIOWriter) error { return w.File("a/../../etc/passwd", 0o644, nil) }},
		{"empty", func(w *CPIOWriter) error { return w.File("/", 0o644, nil) }},
		{"nul", func(w *CPIOWriter) error { return w.File("a\x00b", 0o644, nil) }},
		{"trailer", func(w *CPIOWriter) error { return w.File("TRAILER!!!", 0o644, nil) }},
		{"empty link", func(w *CPIOWriter) error { return w.Symlink("l", "") }},
		{"after close", func(w *CPIOWriter) error { w.Close(); return w.Dir("x", 0o755) }},
	} {
		w := NewCPIOWriter(&bytes.Buffer{})
		if err := tc.add(w); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, fmt.Errorf("disk full")
	}
	f.n--
	return len(p), nil
}

func TestCPIOWriteErrorSticks(t *testing.T) {
	w := NewCPIOWriter(&failWriter{n: 1})
	if err := w.File("a", 0o644, []byte("x")); err == nil {
		t.Fatal("no error from a failing writer")
	}
	if err := w.Dir("b", 0o755); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("later write: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}

// TestCPIOWithTool reads the archive back with GNU cpio, when installed:
// the listing must show every entry with its type and mode, and an
// extraction must give the same contents and link target.
func TestCPIOWithTool(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed")
	}
	b := sampleArchive(t, true)
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{
		"drwxr-xr-x", " bin\n", "drwx------", " etc/tachy\n", "-rwxr-xr-x", "1048579", " bin/tachy\n",
		"-rw-------", " etc/tachy/cluster.key\n", "lrwxrwxrwx", " init -> bin/tachy\n", "crw-------", "5,", "drwxrwxrwt", " tmp\n", " dev/console\n",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("cpio -itv output lacks %q:\n%s", want, listing)
		}
	}
	if n := strings.Count(strings.TrimSpace(listing), "\n") + 1; n != 15 {
		t.Errorf("cpio lists %d entries, want 15:\n%s", n, listing)
	}

	dir := t.TempDir()
	cmd = exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(sampleArchive(t, false)) // no device node: may run unprivileged
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "etc/f3")); err != nil || string(got) != "ddd" {
		t.Errorf("etc/f3: %q, %v", got, err)
	}
	if got, err := os.Readlink(filepath.Join(dir, "init")); err != nil || got != "bin/tachy" {
		t.Errorf("init link: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/tachy")); err != nil || fi.Size() != 1<<20+3 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/tachy: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "etc/tachy/cluster.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cluster.key: %v, %v", fi, err)
	}
}
