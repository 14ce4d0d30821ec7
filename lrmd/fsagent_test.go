package lrmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFilesystemParams(t *testing.T) {
	for _, tc := range []struct {
		p    map[string]string
		want string
	}{
		{map[string]string{"device": "/dev/nbd0", "fstype": "ext4"}, "required"},
		{map[string]string{"device": "/dev/nbd0", "directory": "mnt", "fstype": "ext4"}, "absolute"},
		{map[string]string{"device": "/dev/nbd0", "directory": "/", "fstype": "ext4"}, "absolute"},
		{map[string]string{"device": "/dev/nbd0", "directory": "/mnt", "fstype": "ext4", "force_unmount": "maybe"}, "not a boolean"},
	} {
		r := runFilesystem(context.Background(), BuiltinRequest{Action: "start", Params: tc.p})
		if r.RC != ErrConfigured || !strings.Contains(r.ExitReason, tc.want) {
			t.Errorf("%v: %v %q, want ErrConfigured %q", tc.p, r.RC, r.ExitReason, tc.want)
		}
	}
	fp, err := parseFilesystem(map[string]string{"device": "d", "directory": "/mnt/x/", "fstype": "ext4", "options": "noatime, ro,errors=remount-ro,data=ordered"})
	if err != nil {
		t.Fatal(err)
	}
	if fp.dir != "/mnt/x" || fp.flags != syscall.MS_NOATIME|syscall.MS_RDONLY || fp.data != "errors=remount-ro,data=ordered" || !fp.force {
		t.Fatalf("%+v", fp)
	}
	if got := unescapeMount(`/mnt/a\040b\134c`); got != `/mnt/a b\c` {
		t.Fatalf("unescape: %q", got)
	}
}

// The agent's whole life on a tmpfs: start mounts (twice is fine),
// monitor sees it, stop ends a process that works in the mount and
// unmounts, monitor then says not running.
func TestFilesystemAgent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	p := map[string]string{"device": "tachy-test", "directory": dir, "fstype": "tmpfs", "options": "size=1m,noatime"}
	run := func(action string) BuiltinResult {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return runFilesystem(ctx, BuiltinRequest{Resource: "fs", Action: action, Params: p})
	}
	if r := run("monitor"); r.RC != NotRunning {
		t.Fatalf("monitor before start: %+v", r)
	}
	for i := 0; i < 2; i++ {
		if r := run("start"); r.RC != OK {
			t.Fatalf("start %d: %+v", i, r)
		}
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if src, ok, _ := mountedAt(dir); !ok || src != "tachy-test" {
		t.Fatalf("mounted %v from %q", ok, src)
	}
	if r := run("monitor"); r.RC != OK {
		t.Fatalf("monitor: %+v", r)
	}
	// A user of the mount that ignores SIGTERM for a moment.
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	user := exec.Command("sleep", "60")
	user.Dir = dir
	if err := user.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { user.Wait(); close(done) }()
	if pids := processesUsing(dir); len(pids) != 1 || pids[0] != user.Process.Pid {
		t.Fatalf("users %v, want [%d]", pids, user.Process.Pid)
	}
	p["force_unmount"] = "false"
	if r := run("stop"); r.RC != ErrGeneric || !strings.Contains(r.ExitReason, "busy") {
		t.Fatalf("stop without force_unmount: %+v", r)
	}
	delete(p, "force_unmount")
	if r := run("stop"); r.RC != OK {
		t.Fatalf("stop: %+v", r)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the mount's user was not ended")
	}
	if _, ok, _ := mountedAt(dir); ok {
		t.Fatal("still mounted after stop")
	}
	if r := run("monitor"); r.RC != NotRunning {
		t.Fatalf("monitor after stop: %+v", r)
	}
	if r := run("stop"); r.RC != OK {
		t.Fatalf("second stop: %+v", r)
	}
}
