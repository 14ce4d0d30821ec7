package controller

import (
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
)

// A notify action of a promotable clone with notify=true goes to the
// agent as "notify" with the notification variables as meta-attributes
// (the executor's OCF_RESKEY_CRM_meta_notify_*), under the instance name
// the history knows; its result is judged against rc 0 and never
// becomes a history entry.
func TestNotifyActionRequest(t *testing.T) {
	c, err := cib.Import(strings.NewReader(`<cib epoch="1" num_updates="0" admin_epoch="0" have-quorum="1"><configuration>
<crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
<nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
<resources><clone id="ms"><meta_attributes id="ms-m"><nvpair id="ms-p" name="promotable" value="true"/><nvpair id="ms-n" name="notify" value="true"/></meta_attributes>
<primitive id="st" class="ocf" provider="pacemaker" type="Stateful"><operations><op id="st-n" name="notify" interval="0" timeout="7s"/></operations></primitive>
</clone></resources><constraints/></configuration>
<status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/><node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/></status></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := pe.Schedule(c, pe.SimulationTime(c))
	if err != nil {
		t.Fatal(err)
	}
	var notify *pe.Action
	for _, a := range res.Actions {
		if a.Task == "notify" && !a.Pseudo && a.Runnable && !a.Optional && a.Meta["notify_type"] == "post" && a.Meta["notify_operation"] == "start" {
			notify = a
			break
		}
	}
	if notify == nil {
		t.Fatal("no post-start notification scheduled for the two starts")
	}
	req, err := actionRequest(c, res, notify)
	if err != nil {
		t.Fatal(err)
	}
	if req.Action != "notify" || req.Resource != "st" || req.Expected != 0 || req.TimeoutMs != 7000 {
		t.Errorf("request %+v", req)
	}
	for k, want := range map[string]string{
		"notify_type": "post", "notify_operation": "start", "notify_start_uname": "n1 n2",
		"notify_start_resource": "st:0 st:1", "notify_active_resource": " ", "notify_all_uname": "n1 n2",
		"clone": strings.TrimPrefix(notify.Resource, "st:"), "notify": "true",
	} {
		if req.Meta[k] != want {
			t.Errorf("meta %s=%q, want %q", k, req.Meta[k], want)
		}
	}
	if r := notifyResult(notify, lrmd.Result{Status: lrmd.StatusDone, RC: lrmd.OK}); !r.ok {
		t.Errorf("rc 0 is a failed notification: %v", r.err)
	}
	if r := notifyResult(notify, lrmd.Result{Status: lrmd.StatusDone, RC: lrmd.ErrGeneric}); r.ok || r.err == nil {
		t.Error("rc 1 is a successful notification")
	}
	if r := notifyResult(notify, lrmd.Result{Status: lrmd.StatusTimeout, RC: lrmd.OK}); r.ok {
		t.Error("a timed-out notification succeeded")
	}
	if !isNotify(notify) {
		t.Error("isNotify is false for an instance's notify action")
	}
	for _, a := range res.Actions {
		if a.Pseudo && a.Task == "notify" && isNotify(a) {
			t.Errorf("pseudo %s counted as a notify action to run", a.Key())
		}
	}
}
