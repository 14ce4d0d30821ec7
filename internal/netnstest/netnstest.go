// Package netnstest gives a test a network namespace of its own, so that
// it can create interfaces and attach programs without touching the host.
package netnstest

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Enter moves the calling goroutine into a new network namespace, or skips
// the test when that cannot be done here (not root, one of tools missing).
//
// The goroutine's OS thread is locked and never unlocked: it ends, in its
// namespace, with the test's goroutine instead of returning to the pool.
// Commands started from this goroutine run in the namespace too. Subtests
// (t.Run) run on other goroutines, outside it.
func Enter(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skip("cannot create a network namespace:", err)
	}
}

// Run runs a command (in the namespace, when called after Enter from the
// same goroutine) and returns its output; a failure fails the test.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return string(out)
}
