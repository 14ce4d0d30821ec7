package lrmd

// The built-in filesystem agent (ocf:tachy:filesystem), what
// ocf:heartbeat:Filesystem is to Pacemaker, without a shell: the appliance
// has none. It mounts a device (typically a replicated volume's /dev/nbdX
// on its primary) and, on stop, ends the processes that use the mount
// before unmounting it.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FilesystemAgentName is the filesystem agent's type name.
const FilesystemAgentName = "filesystem"

const filesystemMetadata = `<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="filesystem" version="1.0"><version>1.1</version>
<longdesc lang="en">Mounts a file system (built into tachy, like ocf:heartbeat:Filesystem). Start
drops the device's cached blocks (another node or an NBD client may have written it) and
mounts it; stop sends SIGTERM, then SIGKILL, to the processes that use the mount point,
then unmounts it; monitor checks that the mount is there and answers.</longdesc>
<shortdesc lang="en">file system mount</shortdesc>
<parameters>
<parameter name="device" required="1"><longdesc lang="en">The block device (for example a replicated volume's /dev/nbd0), or the source of a virtual file system.</longdesc><shortdesc lang="en">device</shortdesc><content type="string"/></parameter>
<parameter name="directory" required="1" unique="1"><longdesc lang="en">Mount point; created if missing.</longdesc><shortdesc lang="en">mount point</shortdesc><content type="string"/></parameter>
<parameter name="fstype" required="1"><longdesc lang="en">File system type: ext4, xfs, tmpfs...</longdesc><shortdesc lang="en">type</shortdesc><content type="string"/></parameter>
<parameter name="options"><longdesc lang="en">Comma-separated mount options: ro, noatime, nodiratime, nosuid, nodev, noexec, sync, dirsync; the others are passed to the file system (errors=remount-ro, ...).</longdesc><shortdesc lang="en">mount options</shortdesc><content type="string"/></parameter>
<parameter name="force_unmount"><longdesc lang="en">true: on stop, end the processes that use the mount point (SIGTERM, then SIGKILL after 5 s). false: a busy mount fails the stop.</longdesc><shortdesc lang="en">end users on stop</shortdesc><content type="boolean" default="true"/></parameter>
</parameters>
<actions>
<action name="start" timeout="60s"/>
<action name="stop" timeout="60s"/>
<action name="monitor" timeout="40s" interval="20s" depth="0"/>
<action name="validate-all" timeout="5s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
`

// FilesystemAgent returns the built-in filesystem agent.
func FilesystemAgent() Builtin {
	return BuiltinFunc{Meta: []byte(filesystemMetadata), Func: runFilesystem}
}

type fsParams struct {
	device, dir, fstype string
	flags               uintptr
	data                string
	force               bool
}

// mountFlags are the options that are mount(2) flags, not file system
// data.
var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "rw": 0, "noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME,
	"relatime": unix.MS_RELATIME, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
	"noexec": unix.MS_NOEXEC, "sync": unix.MS_SYNCHRONOUS, "dirsync": unix.MS_DIRSYNC, "defaults": 0,
}

func parseFilesystem(p map[string]string) (*fsParams, error) {
	fp := &fsParams{device: p["device"], dir: p["directory"], fstype: p["fstype"], force: true}
	if fp.device == "" || fp.dir == "" || fp.fstype == "" {
		return nil, errors.New("device, directory and fstype are required")
	}
	if !filepath.IsAbs(fp.dir) || filepath.Clean(fp.dir) == "/" {
		return nil, fmt.Errorf("directory %q: use an absolute path other than /", fp.dir)
	}
	fp.dir = filepath.Clean(fp.dir)
	var data []string
	for _, o := range strings.Split(p["options"], ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			fp.flags |= f
			continue
		}
		data = append(data, o)
	}
	fp.data = strings.Join(data, ",")
	if v := p["force_unmount"]; v != "" {
		b, err := parseOCFBool(v)
		if err != nil {
			return nil, fmt.Errorf("force_unmount: %v", err)
		}
		fp.force = b
	}
	return fp, nil
}

// parseOCFBool reads an OCF boolean as ocf_is_true does.
func parseOCFBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on", "y":
		return true, nil
	case "0", "false", "no", "off", "n":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true or false)", v)
}

func runFilesystem(ctx context.Context, req BuiltinRequest) BuiltinResult {
	if req.Action == "meta-data" {
		return BuiltinResult{RC: OK, Output: filesystemMetadata}
	}
	fp, err := parseFilesystem(req.Params)
	if err != nil {
		return BuiltinResult{RC: ErrConfigured, ExitReason: err.Error()}
	}
	switch req.Action {
	case "validate-all":
		return BuiltinResult{RC: OK}
	case "start":
		return fsStart(fp)
	case "stop":
		return fsStop(ctx, fp)
	case "monitor":
		return fsMonitor(fp)
	}
	return BuiltinResult{RC: ErrUnimplemented, ExitReason: "action " + req.Action + " is not implemented"}
}

// mountedAt returns the source of the mount on dir ("" if none), from
// /proc/self/mountinfo.
func mountedAt(dir string) (string, bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	src, found := "", false
	for _, line := range strings.Split(string(b), "\n") {
		// id parent maj:min root mountpoint options [optional...] - fstype source superopts
		f := strings.Fields(line)
		if len(f) < 10 || unescapeMount(f[4]) != dir {
			continue
		}
		for i := 6; i < len(f)-2; i++ {
			if f[i] == "-" {
				src, found = unescapeMount(f[i+2]), true // the last mount on dir wins
				break
			}
		}
	}
	return src, found, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func fsStart(fp *fsParams) BuiltinResult {
	if _, ok, err := mountedAt(fp.dir); err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
	} else if ok {
		return BuiltinResult{RC: OK} // already mounted: start is idempotent
	}
	if err := os.MkdirAll(fp.dir, 0o755); err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
	}
	if strings.HasPrefix(fp.device, "/dev/") {
		if _, err := os.Stat(fp.device); err != nil {
			return BuiltinResult{RC: ErrInstalled, ExitReason: fmt.Sprintf("device %s: %v", fp.device, err)}
		}
		flushBlockDevice(fp.device)
	}
	if err := unix.Mount(fp.device, fp.dir, fp.fstype, fp.flags, fp.data); err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("mount %s on %s (%s): %v", fp.device, fp.dir, fp.fstype, err)}
	}
	return BuiltinResult{RC: OK}
}

// flushBlockDevice drops a block device's cached blocks (blockdev
// --flushbufs): what this node read before (a partition scan when the
// device appeared) may have been rewritten since by another client.
func flushBlockDevice(dev string) {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKFLSBUF, 0)
}

func fsMonitor(fp *fsParams) BuiltinResult {
	_, ok, err := mountedAt(fp.dir)
	if err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
	}
	if !ok {
		return BuiltinResult{RC: NotRunning}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(fp.dir, &st); err != nil {
		return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("%s is mounted but does not answer: %v", fp.dir, err)}
	}
	return BuiltinResult{RC: OK}
}

func fsStop(ctx context.Context, fp *fsParams) BuiltinResult {
	for attempt := 0; ; attempt++ {
		_, ok, err := mountedAt(fp.dir)
		if err != nil {
			return BuiltinResult{RC: ErrGeneric, ExitReason: err.Error()}
		}
		if !ok {
			return BuiltinResult{RC: OK}
		}
		err = unix.Unmount(fp.dir, 0)
		if err == nil {
			continue // there may be mounts stacked on it
		}
		if !errors.Is(err, unix.EBUSY) {
			return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("umount %s: %v", fp.dir, err)}
		}
		if !fp.force {
			return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("umount %s: busy (processes %v use it; force_unmount=false)", fp.dir, processesUsing(fp.dir))}
		}
		sig := syscall.SIGTERM
		if attempt >= 50 { // 5 s of SIGTERM
			sig = syscall.SIGKILL
		}
		for _, pid := range processesUsing(fp.dir) {
			syscall.Kill(pid, sig)
		}
		select {
		case <-ctx.Done():
			return BuiltinResult{RC: ErrGeneric, ExitReason: fmt.Sprintf("umount %s: still busy at the timeout (processes %v)", fp.dir, processesUsing(fp.dir))}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// processesUsing lists the processes (other than this one) whose working
// directory, root, executable, open files or mapped files are under dir.
func processesUsing(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	under := func(p string) bool {
		p = strings.TrimSuffix(p, " (deleted)")
		return p == dir || strings.HasPrefix(p, dir+"/")
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		base := filepath.Join("/proc", e.Name())
		uses := false
		for _, l := range []string{"cwd", "root", "exe"} {
			if t, err := os.Readlink(filepath.Join(base, l)); err == nil && under(t) {
				uses = true
			}
		}
		if !uses {
			fds, _ := os.ReadDir(filepath.Join(base, "fd"))
			for _, fd := range fds {
				if t, err := os.Readlink(filepath.Join(base, "fd", fd.Name())); err == nil && under(t) {
					uses = true
					break
				}
			}
		}
		if !uses {
			if maps, err := os.ReadFile(filepath.Join(base, "maps")); err == nil {
				for _, line := range strings.Split(string(maps), "\n") {
					if i := strings.Index(line, "/"); i >= 0 && under(line[i:]) {
						uses = true
						break
					}
				}
			}
		}
		if uses {
			pids = append(pids, pid)
		}
	}
	return pids
}
