package controller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
)

// migCIB: mig (allow-migrate) runs on n1 and a location puts it on n2.
const migCIB = `<cib epoch="1" num_updates="0" admin_epoch="0" have-quorum="1"><configuration>
<crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
<nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
<resources><primitive id="mig" class="ocf" provider="heartbeat" type="Dummy">
<meta_attributes id="mig-m"><nvpair id="mig-am" name="allow-migrate" value="true"/></meta_attributes>
<operations><op id="mig-mt" name="migrate_to" interval="0" timeout="9s"/></operations></primitive></resources>
<constraints><rsc_location id="loc" rsc="mig" node="n2" score="INFINITY"/></constraints></configuration>
<status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>
<lrm_resource id="mig" class="ocf" provider="heartbeat" type="Dummy">
<lrm_rsc_op id="mig_last_0" operation_key="mig_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="DIGEST"/>
</lrm_resource></lrm_resources></lrm></node_state>
<node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="2"><lrm_resources>
<lrm_resource id="mig" class="ocf" provider="heartbeat" type="Dummy">
<lrm_rsc_op id="mig_last_0" operation_key="mig_monitor_0" operation="monitor" transition-key="2:1:7:x" transition-magic="0:7;2:1:7:x" call-id="1" rc-code="7" op-status="0" interval="0" op-digest="DIGEST"/>
</lrm_resource></lrm_resources></lrm></node_state></status></cib>`

func migGraphAction(t *testing.T, res *pe.Result, task string) *pe.Action {
	t.Helper()
	for _, a := range res.Actions {
		if a.Resource == "mig" && a.Task == task && a.Runnable && !a.Optional {
			return a
		}
	}
	return nil
}

// The migrate_to runs on the source and the migrate_from on the target,
// both with the migrate_source/migrate_target meta-attributes the agent
// reads (OCF_RESKEY_CRM_meta_migrate_*); their results are recorded as
// mig_last_0 with operation_key mig_migrate_to_0 / mig_migrate_from_0 and
// the migration's source and target. With the migrate_to recorded alone,
// the next plan finishes the migration with the migrate_from only.
func TestMigrationActionRequests(t *testing.T) {
	c, err := cib.Import(strings.NewReader(strings.ReplaceAll(migCIB, "DIGEST", cib.OpDigest(map[string]string{}))))
	if err != nil {
		t.Fatal(err)
	}
	res, err := pe.Schedule(c, pe.SimulationTime(c))
	if err != nil {
		t.Fatal(err)
	}
	to, from := migGraphAction(t, res, "migrate_to"), migGraphAction(t, res, "migrate_from")
	if to == nil || from == nil || to.Node != "n1" || from.Node != "n2" {
		t.Fatalf("migrate_to %+v, migrate_from %+v", to, from)
	}
	if start := migGraphAction(t, res, "start"); start == nil || !start.Pseudo {
		t.Fatalf("start %+v: want a pseudo-action", start)
	}
	for _, a := range []*pe.Action{to, from} {
		req, err := actionRequest(c, res, a)
		if err != nil {
			t.Fatal(err)
		}
		if req.Action != a.Task || req.Resource != "mig" || req.Meta["migrate_source"] != "n1" || req.Meta["migrate_target"] != "n2" ||
			req.Meta["allow-migrate"] != "true" {
			t.Errorf("%s request %+v", a.Key(), req)
		}
		if a.Task == "migrate_to" && req.TimeoutMs != 9000 {
			t.Errorf("migrate_to timeout %d ms, want the op's 9000", req.TimeoutMs)
		}
	}
	// The migrate_to's result, as n1's executor returns it.
	now := time.Now()
	r := lrmd.Result{Resource: "mig", Agent: lrmd.Agent{Class: "ocf", Provider: "heartbeat", Type: "Dummy"}, Action: "migrate_to",
		Key: "mig_migrate_to_0", CallID: 3, RC: lrmd.OK, Status: lrmd.StatusDone, LastRun: now, LastRCChange: now,
		Digest: cib.OpDigest(map[string]string{})}
	chs := resultChanges("n1", r, "5:2:0:dc")
	addMigrationAttrs(to, chs)
	for _, ch := range chs {
		if c, err = c.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	var op *cib.LRMRscOp
	for _, st := range c.Status.NodeStates {
		if st.Uname == "n1" {
			for _, lr := range st.LRM.Resources {
				for _, o := range lr.Ops {
					if o.ID == "mig_last_0" {
						op = o
					}
				}
			}
		}
	}
	if op == nil || op.OperationKey != "mig_migrate_to_0" || op.MigrateSource != "n1" || op.MigrateTarget != "n2" {
		t.Fatalf("recorded %+v", op)
	}
	res, err = pe.Schedule(c, pe.SimulationTime(c))
	if err != nil {
		t.Fatal(err)
	}
	if migGraphAction(t, res, "migrate_to") != nil || migGraphAction(t, res, "migrate_from") == nil {
		t.Errorf("after the migrate_to: summary %q, executed\n%s", res.Summary(), res.Execute())
	}
	// A stop's result carries no migration attributes.
	stop := migGraphAction(t, res, "stop")
	if stop == nil || stop.Node != "n1" {
		t.Fatalf("stop %+v: want the stop on the source", stop)
	}
	chs = resultChanges("n1", lrmd.Result{Resource: "mig", Action: "stop", Key: "mig_stop_0", RC: lrmd.OK, Status: lrmd.StatusDone}, "")
	addMigrationAttrs(stop, chs)
	if chs[0].Operation.MigrateSource != "" {
		t.Errorf("stop recorded with migrate_source %q", chs[0].Operation.MigrateSource)
	}
}

// migAgent is an OCF agent that migrates like ocf:heartbeat:Dummy: its
// migrate_to stops it here, its migrate_from starts it there.
const migAgent = `#!/bin/sh
state="$OCF_RESKEY_state"
case "$1" in
start|migrate_from) touch "$state"; exit 0;;
stop|migrate_to) rm -f "$state"; exit 0;;
monitor) [ -f "$state" ] && exit 0; exit 7;;
meta-data) echo '<resource-agent name="Mig"><parameters><parameter name="state"><content type="string"/></parameter></parameters><actions/></resource-agent>'; exit 0;;
esac
exit 3
`

// A migrate_to cancels the resource's recurring monitors on the source
// first: once the agent has moved the resource away, a monitor still
// running there would report a failure.
func TestMigrateToCancelsMonitors(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "resource.d", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Mig"), []byte(migAgent), 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failures []lrmd.Result
	exec := lrmd.New(lrmd.Config{OCFRoot: root, OnResult: func(r lrmd.Result) {
		if lrmd.Classify(r.Action, r.Interval, r.RC, r.Status, r.Expected) != lrmd.Expected {
			mu.Lock()
			failures = append(failures, r)
			mu.Unlock()
		}
	}})
	defer exec.Close()
	d := &Daemon{exec: exec}
	req := func(action string, interval int64) ActionRequest {
		return ActionRequest{Resource: "mig", Agent: lrmd.Agent{Class: "ocf", Provider: "test", Type: "Mig"}, Action: action,
			IntervalMs: interval, TimeoutMs: 5000, Params: map[string]string{"state": filepath.Join(root, "mig.state")},
			Meta: map[string]string{"migrate_source": "n1", "migrate_target": "n2"}}
	}
	for _, r := range []ActionRequest{req("start", 0), req("monitor", 50)} {
		if res, err := d.runAction(context.Background(), r); err != nil || res.RC != lrmd.OK {
			t.Fatalf("%s: %+v, %v", r.Action, res, err)
		}
	}
	// A finished operation's entry may linger a moment after its result.
	for deadline := time.Now().Add(5 * time.Second); len(exec.Active()) != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("active operations %v, want the monitor", exec.Active())
		}
	}
	if res, err := d.runAction(context.Background(), req("migrate_to", 0)); err != nil || res.RC != lrmd.OK {
		t.Fatalf("migrate_to: %+v, %v", res, err)
	}
	// The monitor is cancelled before the migrate_to runs; the
	// migrate_to's own entry may linger a moment after its result.
	for _, a := range exec.Active() {
		if strings.Contains(a, "monitor") {
			t.Fatalf("a monitor is still active after the migrate_to: %v", exec.Active())
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(exec.Active()) != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("operations still active after the migrate_to: %v", exec.Active())
		}
	}
	time.Sleep(300 * time.Millisecond) // six monitor intervals
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("failures after the migrate_to: %+v", failures)
	}
}
