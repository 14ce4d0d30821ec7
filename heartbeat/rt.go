package heartbeat

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// lockRealtime pins the calling goroutine to its OS thread and, if prio > 0,
// gives that thread SCHED_FIFO priority prio. The heartbeat sender and the
// user-space receiver run this way so that a saturated CPU or a busy Go
// scheduler cannot delay a heartbeat long enough to look like a failure. It
// returns a note for the log when real-time priority was not permitted; the
// thread then keeps running at normal priority.
func lockRealtime(prio int) (note string) {
	runtime.LockOSThread()
	if prio <= 0 {
		return "real-time priority disabled by configuration"
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Sprintf("SCHED_FIFO priority %d not permitted (%v): heartbeats may be late under CPU load; run as root or grant CAP_SYS_NICE", prio, err)
	}
	return ""
}

// monoClock converts Go's monotonic clock readings to CLOCK_MONOTONIC
// nanoseconds, the clock of bpf_ktime_get_ns, without a system call per
// reading: Go's monotonic clock is CLOCK_MONOTONIC with another origin.
type monoClock struct {
	base  int64
	start time.Time
}

func newMonoClock() monoClock {
	var ts unix.Timespec
	start := time.Now()
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return monoClock{base: ts.Nano(), start: start}
}

func (c monoClock) now() int64 { return c.base + int64(time.Since(c.start)) }

// MonotonicNow reads CLOCK_MONOTONIC in nanoseconds, the clock of event times.
func MonotonicNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// afterDone runs f when ctx ends, like context.AfterFunc, and returns a
// function that cancels it or, if f already started, waits for f to finish,
// so that the caller may release what f touches.
func afterDone(ctx context.Context, f func()) func() {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { defer close(done); f() })
	return func() {
		if !stop() {
			<-done
		}
	}
}
