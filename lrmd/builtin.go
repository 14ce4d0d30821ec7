package lrmd

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Builtin is a resource agent implemented in Go and run in-process, so that
// tachy's own resources (floating IPs, replicated volumes) need no fork on
// the failover path. It has the actions of an OCF agent and returns OCF
// codes; the executor gives it the same timeouts, serialisation,
// concurrency limit and result records as an external agent.
type Builtin interface {
	// Metadata returns the agent's OCF meta-data XML; its parameters are
	// validated before start as an OCF agent's are.
	Metadata() []byte
	// Run performs one action. ctx is cancelled at the operation's
	// timeout or when it is cancelled; Run must return soon after (the
	// executor reports a timeout after the grace period either way, and
	// drops a late answer).
	Run(ctx context.Context, req BuiltinRequest) BuiltinResult
}

// BuiltinRequest is what an OCF agent would find in its environment.
type BuiltinRequest struct {
	Resource string // OCF_RESOURCE_INSTANCE
	Action   string
	Interval time.Duration
	Timeout  time.Duration
	// Params are the instance attributes; Meta the CRM_meta_* values
	// keyed by their full name (CRM_meta_clone_max, ...).
	Params map[string]string
	Meta   map[string]string
}

// BuiltinResult is an agent's answer.
type BuiltinResult struct {
	RC         RC
	ExitReason string
	Output     string
}

// BuiltinFunc adapts a function and a meta-data document to Builtin.
type BuiltinFunc struct {
	Meta []byte
	Func func(ctx context.Context, req BuiltinRequest) BuiltinResult
}

// Metadata implements Builtin.
func (f BuiltinFunc) Metadata() []byte { return f.Meta }

// Run implements Builtin.
func (f BuiltinFunc) Run(ctx context.Context, req BuiltinRequest) BuiltinResult {
	return f.Func(ctx, req)
}

// Registry holds the built-in agents by type name: an agent registered as
// "vip" serves both "tachy:vip" and "ocf:tachy:vip".
type Registry struct {
	mu     sync.RWMutex
	agents map[string]Builtin
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{agents: map[string]Builtin{}} }

// Register adds an agent; its meta-data must parse.
func (r *Registry) Register(name string, a Builtin) error {
	if err := (Agent{Class: ClassTachy, Type: name}).check(); err != nil {
		return err
	}
	if _, err := ParseMetadata(a.Metadata()); err != nil {
		return fmt.Errorf("built-in agent %q: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.agents[name]; dup {
		return fmt.Errorf("built-in agent %q is already registered", name)
	}
	r.agents[name] = a
	return nil
}

// Lookup finds an agent by type name.
func (r *Registry) Lookup(name string) (Builtin, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.agents[name]
	return a, ok
}

// Names lists the registered agents, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.agents))
	for n := range r.agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
