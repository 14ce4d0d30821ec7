package nbdrepl

import (
	"bytes"
	"os"
	"syscall"
	"testing"
)

func TestFileBackend(t *testing.T) {
	for _, mode := range []string{"fallocate", "fallback"} {
		t.Run(mode, func(t *testing.T) {
			fb, path := fileExport(t, "f", 1<<20)
			if fb.Size() != 1<<20 {
				t.Fatalf("size %d", fb.Size())
			}
			if mode == "fallback" {
				fb.noPunch, fb.noZeroRng = true, true
			}
			ones := bytes.Repeat([]byte{1}, 1<<20)
			if _, err := fb.WriteAt(ones, 0); err != nil {
				t.Fatal(err)
			}
			if err := fb.Sync(0, 1<<20); err != nil {
				t.Fatal(err)
			}
			if err := fb.Trim(0, 4096); err != nil {
				t.Fatal(err)
			}
			if err := fb.WriteZeroes(8192, 4096, true); err != nil {
				t.Fatal(err)
			}
			if err := fb.WriteZeroes(16384, 100, false); err != nil {
				t.Fatal(err)
			}
			if err := fb.Flush(); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			want := bytes.Clone(ones)
			clear(want[8192 : 8192+4096])
			clear(want[16384 : 16384+100])
			if mode == "fallocate" {
				// Trim is advisory; on file systems that punch holes it zeroes.
				if got[0] == 0 {
					clear(want[:4096])
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatal("contents differ")
			}
			if len(got) != 1<<20 {
				t.Fatalf("file size changed to %d", len(got))
			}
		})
	}
	ro, err := OpenFile(os.DevNull, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if !ro.Caps().ReadOnly {
		t.Fatal("read-only file backend not read-only")
	}
}

func TestErrnoOf(t *testing.T) {
	for err, want := range map[error]uint32{
		syscall.ENOSPC: ErrNoSpc, syscall.EDQUOT: ErrNoSpc, syscall.EROFS: ErrPerm,
		syscall.EINVAL: ErrInval, syscall.EIO: ErrIO, os.ErrClosed: ErrIO,
		&os.PathError{Op: "write", Err: syscall.ENOSPC}: ErrNoSpc,
	} {
		if got := errnoOf(err); got != want {
			t.Errorf("errnoOf(%v) = %d, want %d", err, got, want)
		}
	}
}
