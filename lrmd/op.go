package lrmd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Agent names a resource agent: class "ocf" with a provider, "lsb" or
// "tachy" (built-in agents) without one.
type Agent struct {
	Class    string
	Provider string
	Type     string
}

// Agent classes this package runs.
const (
	ClassOCF     = "ocf"
	ClassLSB     = "lsb"
	ClassTachy   = "tachy"   // built-in Go agents; also reachable as ocf:tachy:TYPE
	ClassStonith = "stonith" // fencing devices (Config.Stonith)
)

// ParseAgent parses "class:provider:type" or "class:type", the form
// Pacemaker's tools accept.
func ParseAgent(spec string) (Agent, error) {
	parts := strings.Split(spec, ":")
	var a Agent
	switch len(parts) {
	case 2:
		a = Agent{Class: parts[0], Type: parts[1]}
	case 3:
		a = Agent{Class: parts[0], Provider: parts[1], Type: parts[2]}
	default:
		return Agent{}, fmt.Errorf("agent %q: want class:provider:type or class:type", spec)
	}
	if err := a.check(); err != nil {
		return Agent{}, err
	}
	return a, nil
}

func (a Agent) String() string {
	if a.Provider != "" {
		return a.Class + ":" + a.Provider + ":" + a.Type
	}
	return a.Class + ":" + a.Type
}

// check refuses names that could escape the agent directories.
func (a Agent) check() error {
	bad := func(s string) bool {
		return s == "." || s == ".." || strings.ContainsAny(s, "/\x00")
	}
	switch {
	case a.Class == "" || a.Type == "":
		return fmt.Errorf("agent %q: class and type are required", a.String())
	case a.Class == ClassOCF && a.Provider == "":
		return fmt.Errorf("agent %q: ocf agents need a provider", a.String())
	case a.Class != ClassOCF && a.Provider != "":
		return fmt.Errorf("agent %q: only ocf agents have a provider", a.String())
	case bad(a.Provider) || bad(a.Type):
		return fmt.Errorf("agent %q: provider and type may not contain '/' or be '.' or '..'", a.String())
	}
	return nil
}

// builtin says whether a is served in-process.
func (a Agent) builtin() bool {
	return a.Class == ClassTachy || (a.Class == ClassOCF && a.Provider == "tachy")
}

// Op is one operation to run: what the controller takes from a transition
// graph action.
type Op struct {
	// Resource is the resource (instance) id, OCF_RESOURCE_INSTANCE:
	// "db" or, for an anonymous clone instance, "db:0".
	Resource string
	Agent    Agent
	// Action is the agent action: start, stop, monitor, promote, demote,
	// notify, reload, reload-agent, migrate_to, migrate_from,
	// validate-all, meta-data.
	Action string
	// Interval > 0 makes a recurring operation (only monitor in
	// practice): it runs until cancelled.
	Interval time.Duration
	// Timeout bounds each run; 0 means DefaultTimeout.
	Timeout time.Duration
	// Params are the instance attributes: OCF_RESKEY_<name>.
	Params map[string]string
	// Meta are meta attributes as configured (clone-max, notify,
	// on-node, notify_type, ...): each is passed as
	// OCF_RESKEY_CRM_meta_<name with '-' replaced by '_'>. The executor
	// sets interval, timeout and name itself.
	Meta map[string]string
	// Expected is the rc the scheduler expects (target rc), used only to
	// classify the result and, for recurring operations in
	// ReportChanges mode, to tell a failure from a success.
	Expected RC
	// SkipValidation skips the check of Params against the agent's
	// meta-data before start (done by default).
	SkipValidation bool
}

// DefaultTimeout is Pacemaker's default operation timeout.
const DefaultTimeout = 20 * time.Second

// Key is the operation key the CIB records: resource_action_intervalms,
// e.g. "db_monitor_10000" (Pacemaker's pcmk__op_key).
func (o *Op) Key() string {
	return OpKey(o.Resource, o.Action, o.Interval)
}

// OpKey builds an operation key.
func OpKey(rsc, action string, interval time.Duration) string {
	return rsc + "_" + action + "_" + strconv.FormatInt(interval.Milliseconds(), 10)
}

func (o *Op) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// MetaName is the parameter name Pacemaker gives a meta attribute:
// "CRM_meta_" followed by the name with '-' replaced by '_'
// (crm_meta_name).
func MetaName(name string) string {
	return "CRM_meta_" + strings.ReplaceAll(name, "-", "_")
}

// allParams is what Pacemaker's executor receives for the operation: the
// instance attributes and the CRM_meta_* meta attributes, including
// interval, timeout and name in milliseconds and as set here.
func (o *Op) allParams() map[string]string {
	p := make(map[string]string, len(o.Params)+len(o.Meta)+3)
	for k, v := range o.Params {
		p[k] = v
	}
	for k, v := range o.Meta {
		p[MetaName(k)] = v
	}
	p[MetaName("interval")] = strconv.FormatInt(o.Interval.Milliseconds(), 10)
	p[MetaName("timeout")] = strconv.FormatInt(o.timeout().Milliseconds(), 10)
	p[MetaName("name")] = o.Action
	return p
}

// Result is the outcome of one run of an operation, with what the CIB's
// lrm_rsc_op records.
type Result struct {
	Resource string
	Agent    Agent
	Action   string
	Interval time.Duration
	Key      string // operation key, e.g. "db_monitor_10000"
	// CallID increases with every operation the executor accepts; every
	// run of a recurring operation carries the call id it was given.
	CallID int
	RC     RC
	Status OpStatus
	// ExitReason is the text after the last "ocf-exit-reason:" on the
	// agent's stderr (at most 128 bytes), or the executor's own reason
	// for a result it made up (timeout, not installed, invalid).
	ExitReason string
	// Stdout and Stderr are the agent's output, each cut to
	// Config.MaxOutput bytes.
	Stdout, Stderr string
	// LastRun is when this run started, LastRCChange when this
	// operation's rc last changed (for one-shot operations, LastRun).
	LastRun, LastRCChange time.Time
	// ExecTime is how long the agent ran; QueueTime how long the
	// operation waited (behind other operations of the resource and
	// for the concurrency limit) before it ran.
	ExecTime, QueueTime time.Duration
	// Digest is Pacemaker's op-digest of the parameters (see OpDigest).
	Digest string
	// Warnings are meta-data validation findings that did not stop the
	// operation (unknown parameters).
	Warnings []string
	// Expected is Op.Expected, kept to classify the result.
	Expected RC
}

// Severity classifies the result as the scheduler would.
func (r *Result) Severity() Severity {
	return Classify(r.Action, r.Interval, r.RC, r.Status, r.Expected)
}

// Failed reports whether the result is anything but what was expected.
func (r *Result) Failed() bool { return r.Severity() != Expected }

func (r *Result) String() string {
	s := fmt.Sprintf("%s (call %d): %s, %s", r.Key, r.CallID, r.RC, r.Status)
	if r.ExitReason != "" {
		s += ": " + r.ExitReason
	}
	return s
}
