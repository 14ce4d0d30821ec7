package lrmd

import (
	"strconv"
	"time"
)

// RC is an OCF exit code. Every agent class's result is mapped to it, as
// Pacemaker maps LSB, systemd and built-in results to OCF codes, so that
// the scheduler reads one set of codes.
type RC int

// The OCF exit codes (resource-agents' ocf-returncodes; Pacemaker's enum
// ocf_exitcode). 190 and 191 are Pacemaker's degraded extensions.
const (
	OK               RC = 0 // OCF_SUCCESS
	ErrGeneric       RC = 1 // OCF_ERR_GENERIC: soft error, recover in place
	ErrArgs          RC = 2 // OCF_ERR_ARGS: parameters wrong on this node
	ErrUnimplemented RC = 3 // OCF_ERR_UNIMPLEMENTED: action not supported
	ErrPerm          RC = 4 // OCF_ERR_PERM: insufficient privileges
	ErrInstalled     RC = 5 // OCF_ERR_INSTALLED: agent or its tools missing here
	ErrConfigured    RC = 6 // OCF_ERR_CONFIGURED: configuration wrong everywhere
	NotRunning       RC = 7 // OCF_NOT_RUNNING: cleanly stopped
	RunningPromoted  RC = 8 // OCF_RUNNING_PROMOTED (formerly OCF_RUNNING_MASTER)
	FailedPromoted   RC = 9 // OCF_FAILED_PROMOTED (formerly OCF_FAILED_MASTER)
	Degraded         RC = 190
	DegradedPromoted RC = 191
)

var rcNames = map[RC]string{
	OK: "OCF_SUCCESS", ErrGeneric: "OCF_ERR_GENERIC", ErrArgs: "OCF_ERR_ARGS",
	ErrUnimplemented: "OCF_ERR_UNIMPLEMENTED", ErrPerm: "OCF_ERR_PERM",
	ErrInstalled: "OCF_ERR_INSTALLED", ErrConfigured: "OCF_ERR_CONFIGURED",
	NotRunning: "OCF_NOT_RUNNING", RunningPromoted: "OCF_RUNNING_PROMOTED",
	FailedPromoted: "OCF_FAILED_PROMOTED", Degraded: "OCF_DEGRADED",
	DegradedPromoted: "OCF_DEGRADED_PROMOTED",
}

func (rc RC) String() string {
	if s, ok := rcNames[rc]; ok {
		return s
	}
	return "rc=" + strconv.Itoa(int(rc))
}

// Effective maps the degraded codes to the codes they stand for (190 to 0,
// 191 to 8), as Pacemaker's pcmk__effective_rc does before comparing a
// result with the expected one.
func (rc RC) Effective() RC {
	switch rc {
	case Degraded:
		return OK
	case DegradedPromoted:
		return RunningPromoted
	}
	return rc
}

// ocfRC maps an OCF agent's exit status to a standard code: 0..9, 190 and
// 191 stand, anything else is a generic error (services__ocf2ocf).
func ocfRC(status int) RC {
	switch {
	case status == int(Degraded), status == int(DegradedPromoted):
		return RC(status)
	case status < 0 || status > int(FailedPromoted):
		return ErrGeneric
	}
	return RC(status)
}

// LSB status exit codes (LSB core specification, "Init Script Actions"),
// with Pacemaker's two application-range additions.
const (
	lsbStatusOK               = 0
	lsbStatusVarPID           = 1 // dead, but the pid file exists
	lsbStatusVarLock          = 2 // dead, but the lock file exists
	lsbStatusNotRunning       = 3
	lsbStatusUnknown          = 4
	lsbStatusNotInstalled     = 150
	lsbStatusInsufficientPriv = 151
)

// LSBToOCF maps an init script's exit status to an OCF code as Pacemaker's
// services__lsb2ocf does. For actions other than status (and monitor, which
// runs status), LSB and OCF share the codes 0 to 7 and anything else is a
// generic error; status has its own codes, where 1, 2 and 3 all mean not
// running.
func LSBToOCF(action string, status int) RC {
	if action != "status" && action != "monitor" {
		if status < 0 || status > int(NotRunning) {
			return ErrGeneric
		}
		return RC(status)
	}
	switch status {
	case lsbStatusOK:
		return OK
	case lsbStatusNotInstalled:
		return ErrInstalled
	case lsbStatusInsufficientPriv:
		return ErrPerm
	case lsbStatusVarPID, lsbStatusVarLock, lsbStatusNotRunning:
		return NotRunning
	}
	return ErrGeneric
}

// OpStatus is the execution status of an operation, recorded as op-status
// in the CIB. The values are Pacemaker's enum pcmk_exec_status.
type OpStatus int

// Execution statuses.
const (
	StatusPending      OpStatus = -1 // in flight (recorded when record-pending is set)
	StatusDone         OpStatus = 0  // the agent ran; RC says what it found
	StatusCancelled    OpStatus = 1  // cancelled before or while running
	StatusTimeout      OpStatus = 2  // killed after its timeout
	StatusNotSupported OpStatus = 3  // the agent class cannot do this action
	StatusError        OpStatus = 4  // could not be run, or killed by a signal
	StatusErrorHard    OpStatus = 5
	StatusErrorFatal   OpStatus = 6
	StatusNotInstalled OpStatus = 7 // no such agent
	StatusNotConnected OpStatus = 8
	StatusInvalid      OpStatus = 9 // refused before running (e.g. parameters failed validation)
)

var statusNames = map[OpStatus]string{
	StatusPending: "pending", StatusDone: "done", StatusCancelled: "cancelled",
	StatusTimeout: "timeout", StatusNotSupported: "not supported", StatusError: "error",
	StatusErrorHard: "hard error", StatusErrorFatal: "fatal error",
	StatusNotInstalled: "not installed", StatusNotConnected: "not connected",
	StatusInvalid: "invalid",
}

func (s OpStatus) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status=" + strconv.Itoa(int(s))
}

// Severity is how the scheduler treats a result.
type Severity int

const (
	// Expected: the result the scheduler asked for (or, for a probe, any
	// answer that tells it the resource's state).
	Expected Severity = iota
	// Soft: recover in place (restart here) subject to on-fail and
	// migration-threshold.
	Soft
	// Hard: the resource may not run on this node again until cleaned up.
	Hard
	// Fatal: the resource may not run on any node (the configuration
	// itself is wrong).
	Fatal
)

func (s Severity) String() string {
	switch s {
	case Expected:
		return "expected"
	case Soft:
		return "soft"
	case Hard:
		return "hard"
	case Fatal:
		return "fatal"
	}
	return "severity=" + strconv.Itoa(int(s))
}

// Classify says how Pacemaker 2.1's scheduler treats a result, following
// determine_op_status and unpack_rsc_op in lib/pengine/unpack.c. expected
// is the target rc the operation was scheduled with (0 for start, stop,
// promote and demote; 0, 7 or 8 for a monitor, depending on the role it
// checks). A probe is a monitor with interval 0: any of 0, 7 and 8 just
// tells the scheduler the resource's state.
//
// Status decides first: a timeout or an error running the agent is soft,
// "not installed" and an unsupported recurring action are hard. Then, for
// a completed run: 6 is fatal; 2, 4 and 5 (and 3 for a one-shot action)
// are hard; 3 for a recurring action is hard too (not supported);
// everything else that is not the expected code is soft. The degraded
// codes count as the codes they stand for.
//
// What a failure leads to also depends on the action (a failed stop
// escalates to fencing) and on on-fail; that is the scheduler's business.
func Classify(action string, interval time.Duration, rc RC, status OpStatus, expected RC) Severity {
	switch status {
	case StatusDone:
	case StatusCancelled, StatusPending:
		return Expected
	case StatusNotInstalled, StatusErrorHard, StatusNotSupported:
		return Hard
	case StatusErrorFatal:
		return Fatal
	case StatusInvalid:
		// Refused before running: the code says why.
		return classifyRC(action, interval, rc, expected)
	default: // timeout, error, not connected
		return Soft
	}
	return classifyRC(action, interval, rc, expected)
}

func classifyRC(action string, interval time.Duration, rc RC, expected RC) Severity {
	probe := action == "monitor" && interval == 0
	rc = rc.Effective()
	switch rc {
	case OK, NotRunning, RunningPromoted:
		if probe || rc == expected.Effective() {
			return Expected
		}
		return Soft
	case ErrConfigured:
		return Fatal
	case ErrArgs, ErrPerm, ErrInstalled, ErrUnimplemented:
		return Hard
	}
	return Soft // 1, 9 and anything unknown
}
