package lrmd

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

const flagMeta = `<?xml version="1.0"?>
<resource-agent name="flag" version="1.0">
<version>1.1</version>
<shortdesc lang="en">An in-memory flag</shortdesc>
<parameters>
<parameter name="name" required="1"><content type="string"/></parameter>
<parameter name="delay_ms"><content type="integer" default="0"/></parameter>
</parameters>
<actions>
<action name="start" timeout="5s"/><action name="stop" timeout="5s"/>
<action name="monitor" timeout="5s" interval="1s"/><action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>`

// flagAgent is a built-in agent whose resource is a set entry in memory.
type flagAgent struct {
	mu   sync.Mutex
	up   map[string]bool
	seen []BuiltinRequest
}

func (f *flagAgent) Metadata() []byte { return []byte(flagMeta) }

func (f *flagAgent) Run(ctx context.Context, req BuiltinRequest) BuiltinResult {
	f.mu.Lock()
	f.seen = append(f.seen, req)
	f.mu.Unlock()
	switch req.Params["delay_ms"] {
	case "ignore-ctx":
		time.Sleep(2 * time.Second)
	case "panic":
		panic("boom")
	case "honour-ctx":
		<-ctx.Done()
		return BuiltinResult{RC: ErrGeneric}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := req.Params["name"]
	switch req.Action {
	case "start":
		f.up[name] = true
		return BuiltinResult{RC: OK, Output: "started " + name}
	case "stop":
		delete(f.up, name)
		return BuiltinResult{RC: OK}
	case "monitor":
		if f.up[name] {
			return BuiltinResult{RC: OK}
		}
		return BuiltinResult{RC: NotRunning, ExitReason: name + " is down"}
	}
	return BuiltinResult{RC: ErrUnimplemented}
}

func TestBuiltinAgent(t *testing.T) {
	reg := NewRegistry()
	fa := &flagAgent{up: map[string]bool{}}
	if err := reg.Register("flag", fa); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register("flag", fa); err == nil {
		t.Error("registered twice")
	}
	if err := reg.Register("bad", BuiltinFunc{Meta: []byte("<nope/>")}); err == nil {
		t.Error("registered an agent with broken meta-data")
	}
	if got := reg.Names(); len(got) != 1 || got[0] != "flag" {
		t.Errorf("names %v", got)
	}
	c := newCollector()
	e := newTestExecutor(t, Config{Builtins: reg, OnResult: c.add, Report: ReportChanges})
	for _, a := range []Agent{{Class: "tachy", Type: "flag"}, {Class: "ocf", Provider: "tachy", Type: "flag"}} {
		op := func(action string) Op {
			return Op{Resource: "f", Agent: a, Action: action, Params: map[string]string{"name": "x"}, Meta: map[string]string{"clone-max": "3"}}
		}
		expectRC(t, run(t, e, op("monitor")), NotRunning)
		r := run(t, e, op("start"))
		expectRC(t, r, OK)
		if r.Stdout != "started x" {
			t.Errorf("output %q", r.Stdout)
		}
		expectRC(t, run(t, e, op("monitor")), OK)
		expectRC(t, run(t, e, op("stop")), OK)
		r = run(t, e, op("monitor"))
		expectRC(t, r, NotRunning)
		if r.ExitReason != "x is down" {
			t.Errorf("exit reason %q", r.ExitReason)
		}
		// Validation applies to built-in agents too.
		r = run(t, e, Op{Resource: "f", Agent: a, Action: "start"})
		if r.RC != ErrConfigured || !strings.Contains(r.ExitReason, `required parameter "name" of `+a.String()) {
			t.Errorf("missing parameter: %s/%s %q", r.RC, r.Status, r.ExitReason)
		}
	}
	fa.mu.Lock()
	req := fa.seen[0]
	fa.mu.Unlock()
	if req.Meta["CRM_meta_clone_max"] != "3" || req.Meta["CRM_meta_timeout"] != "20000" || req.Params["name"] != "x" || req.Resource != "f" {
		t.Errorf("request %+v", req)
	}
	md, err := e.Metadata(context.Background(), Agent{Class: "tachy", Type: "flag"})
	if err != nil || md.ShortDesc != "An in-memory flag" {
		t.Errorf("meta-data %+v, %v", md, err)
	}

	// A recurring built-in monitor.
	expectRC(t, run(t, e, Op{Resource: "g", Agent: Agent{Class: "tachy", Type: "flag"}, Action: "start", Params: map[string]string{"name": "y"}}), OK)
	if _, err := e.Submit(Op{Resource: "g", Agent: Agent{Class: "tachy", Type: "flag"}, Action: "monitor", Interval: 20 * time.Millisecond, Params: map[string]string{"name": "y"}}); err != nil {
		t.Fatal(err)
	}
	expectRC(t, c.next(t, "g_monitor_20", 5*time.Second), OK)
	fa.mu.Lock()
	delete(fa.up, "y")
	fa.mu.Unlock()
	expectRC(t, c.next(t, "g_monitor_20", 5*time.Second), NotRunning) // changes only: the next report is the failure
	if n := e.CancelResource("g"); n != 1 {
		t.Errorf("cancelled %d", n)
	}
}

func TestBuiltinTimeoutAndPanic(t *testing.T) {
	reg := NewRegistry()
	if err := reg.Register("flag", &flagAgent{up: map[string]bool{}}); err != nil {
		t.Fatal(err)
	}
	e := newTestExecutor(t, Config{Builtins: reg, KillGrace: 100 * time.Millisecond})
	a := Agent{Class: "tachy", Type: "flag"}
	for _, mode := range []string{"honour-ctx", "ignore-ctx"} {
		start := time.Now()
		r := run(t, e, Op{Resource: "t", Agent: a, Action: "monitor", Timeout: 200 * time.Millisecond, Params: map[string]string{"name": "z", "delay_ms": mode}})
		if r.Status != StatusTimeout || r.RC != ErrGeneric {
			t.Errorf("%s: %s/%s", mode, r.RC, r.Status)
		}
		if took := time.Since(start); took > 200*time.Millisecond+100*time.Millisecond+500*time.Millisecond {
			t.Errorf("%s: took %v", mode, took)
		}
	}
	r := run(t, e, Op{Resource: "t", Agent: a, Action: "monitor", Params: map[string]string{"name": "z", "delay_ms": "panic"}})
	if r.RC != ErrGeneric || r.Status != StatusDone || !strings.Contains(r.ExitReason, "panicked: boom") {
		t.Errorf("panic: %s/%s %q", r.RC, r.Status, r.ExitReason)
	}
}
