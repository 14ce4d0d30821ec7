package lrmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RunInline runs a one-shot action of a built-in agent at once, in the
// calling goroutine: no queue behind the resource's other operations, no
// concurrency slot, no parameter validation. The fast failover path uses it
// for a take-over that must not wait behind anything; the result is the one
// Exec would give (a call id of its own, the op digest).
func (e *Executor) RunInline(ctx context.Context, op Op) (Result, error) {
	if err := op.check(); err != nil {
		return Result{}, err
	}
	if !op.Agent.builtin() || op.Interval != 0 {
		return Result{}, errors.New("lrmd: RunInline runs one-shot actions of built-in agents only")
	}
	b, ok := e.cfg.Builtins.Lookup(op.Agent.Type)
	if !ok {
		return Result{}, fmt.Errorf("lrmd: no built-in agent %q", op.Agent.Type)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Result{}, ErrClosed
	}
	e.nextCall++
	st := &opState{op: op, callID: e.nextCall}
	e.mu.Unlock()
	params := op.allParams()
	req := BuiltinRequest{Resource: op.Resource, Action: op.Action, Timeout: op.timeout(), Params: map[string]string{}, Meta: map[string]string{}}
	for k, v := range params {
		if strings.HasPrefix(k, "CRM_meta_") {
			req.Meta[k] = v
		} else {
			req.Params[k] = v
		}
	}
	tctx, cancel := context.WithTimeout(ctx, op.timeout())
	defer cancel()
	start := time.Now()
	r := b.Run(tctx, req)
	o := outcome{rc: r.RC, status: StatusDone, reason: r.ExitReason, stdout: r.Output, start: start, exec: time.Since(start)}
	return e.newResult(st, o, params), nil
}
