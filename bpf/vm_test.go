//go:build linux

package bpf_test

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the init of a throwaway VM, so that
// vmtest.sh can run these tests on the appliance's kernel (6.1): as PID 1 it
// mounts what the tests need, runs them, prints the exit code and powers off.
func TestMain(m *testing.M) {
	if os.Getpid() != 1 {
		os.Exit(m.Run())
	}
	for _, fs := range [][2]string{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}, {"tmpfs", "/tmp"}} {
		_ = os.MkdirAll(fs[1], 0o755)
		if err := unix.Mount(fs[0], fs[1], fs[0], 0, ""); err != nil {
			fmt.Printf("mount %s: %v\n", fs[1], err)
		}
	}
	if ko, err := os.ReadFile("/veth.ko"); err == nil {
		if err := unix.InitModule(ko, ""); err != nil {
			fmt.Printf("load veth module: %v\n", err)
		}
	}
	os.Setenv("PATH", "/bin")
	var u unix.Utsname
	_ = unix.Uname(&u)
	fmt.Printf("VMTEST KERNEL %s\n", unix.ByteSliceToString(u.Release[:]))
	code := m.Run()
	fmt.Printf("VMTEST EXIT %d\n", code)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(code)
}
