// Package lrmd runs resource agents the way Pacemaker's executor
// (pacemaker-execd) does, so that the real agents from Debian's
// resource-agents and pacemaker-resource-agents packages behave under tachy
// as they do under Pacemaker.
//
// OCF agents run as $OCF_ROOT/resource.d/PROVIDER/TYPE ACTION with the
// environment Pacemaker gives them (OCF_ROOT, OCF_RA_VERSION_MAJOR/MINOR,
// OCF_RESOURCE_INSTANCE/TYPE/PROVIDER, OCF_EXIT_REASON_PREFIX,
// OCF_RESKEY_<param> and OCF_RESKEY_CRM_meta_<meta>), plus PATH and
// HA_RSCTMP, no stdin, in a process group of their own, with stdout and
// stderr kept (bounded) and the exit reason taken from the last
// "ocf-exit-reason:" line. LSB init scripts run as INITDIR/NAME ACTION
// (monitor runs status) with their exit codes mapped to OCF codes as
// Pacemaker maps them. Built-in Go agents (Registry) serve the tachy class
// and ocf:tachy:*, in-process.
//
// An Executor runs operations one at a time per resource, in submission
// order, and at most Config.MaxConcurrent at once; each run has a timeout
// (SIGTERM to the process group, SIGKILL after Config.KillGrace); recurring
// operations run until cancelled. Every result carries what the CIB's
// lrm_rsc_op records: operation key, call id, rc, op-status, exit reason,
// last-run, last-rc-change, exec-time, queue-time and op-digest (computed as
// Pacemaker computes it, see OpDigest). Before a start, the parameters are
// checked against the agent's meta-data (parsed and cached per agent).
//
// Classify says how the scheduler treats a result (expected, soft, hard or
// fatal), following Pacemaker 2.1's unpack.c.
package lrmd
