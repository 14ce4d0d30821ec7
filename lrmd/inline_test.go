package lrmd

import (
	"context"
	"testing"
)

// RunInline gives the result Exec gives (digest, key, fresh call id), runs
// the agent with the same request, and refuses what it is not for.
func TestRunInline(t *testing.T) {
	reg := NewRegistry()
	fa := &flagAgent{up: map[string]bool{}}
	if err := reg.Register("flag", fa); err != nil {
		t.Fatal(err)
	}
	e := newTestExecutor(t, Config{Builtins: reg})
	a := Agent{Class: "tachy", Type: "flag"}
	op := Op{Resource: "f", Agent: a, Action: "start", Params: map[string]string{"name": "x"}, Meta: map[string]string{"clone-max": "3"}}
	viaExec := run(t, e, op)
	inline, err := e.RunInline(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	if inline.RC != OK || inline.Status != StatusDone || inline.Stdout != "started x" {
		t.Fatalf("inline start: %+v", inline)
	}
	if inline.Digest != viaExec.Digest || inline.Key != viaExec.Key || inline.CallID <= viaExec.CallID {
		t.Fatalf("inline %q %q call %d; via Exec %q %q call %d", inline.Digest, inline.Key, inline.CallID, viaExec.Digest, viaExec.Key, viaExec.CallID)
	}
	fa.mu.Lock()
	first, last := fa.seen[0], fa.seen[len(fa.seen)-1]
	fa.mu.Unlock()
	if last.Meta["CRM_meta_clone_max"] != first.Meta["CRM_meta_clone_max"] || last.Meta["CRM_meta_timeout"] != first.Meta["CRM_meta_timeout"] || last.Params["name"] != "x" {
		t.Errorf("inline request %+v, via Exec %+v", last, first)
	}
	if next := run(t, e, Op{Resource: "f", Agent: a, Action: "monitor", Params: map[string]string{"name": "x"}}); next.CallID <= inline.CallID {
		t.Errorf("call id %d after the inline %d", next.CallID, inline.CallID)
	}
	recurring := op
	recurring.Interval = 1e9
	if _, err := e.RunInline(context.Background(), recurring); err == nil {
		t.Error("RunInline ran a recurring operation")
	}
	if _, err := e.RunInline(context.Background(), Op{Resource: "f", Agent: Agent{Class: "ocf", Provider: "heartbeat", Type: "Dummy"}, Action: "start"}); err == nil {
		t.Error("RunInline ran an external agent")
	}
}
