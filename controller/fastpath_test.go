package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
	"github.com/tachy-ha/tachy/pe"
)

const fastCIB = `<cib epoch="1" num_updates="0" admin_epoch="0" have-quorum="1">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="o1" name="stonith-enabled" value="%STONITH%"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
    <resources>
      <primitive id="fence" class="stonith" type="fence_dummy"/>
      <primitive id="ip" class="tachy" type="vip">
        <instance_attributes id="ip-i"><nvpair id="ip-i-ip" name="ip" value="10.0.0.100"/></instance_attributes>
        %META%
      </primitive>
      <primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/>
    </resources>
    <constraints>
      <rsc_location id="ip-n1" rsc="ip" node="n1" score="100"/>
      <rsc_location id="ip-n3" rsc="ip" node="n3" score="50"/>
      <rsc_location id="app-n1" rsc="app" node="n1" score="100"/>
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>
      <lrm_resource id="ip" class="tachy" type="vip">
        <lrm_rsc_op id="ip_last_0" operation_key="ip_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0"/>
      </lrm_resource>
      <lrm_resource id="app" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="app_last_0" operation_key="app_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="3" rc-code="0" op-status="0" interval="0"/>
      </lrm_resource></lrm_resources></lrm></node_state>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="2"><lrm_resources>
      <lrm_resource id="fence" class="stonith" type="fence_dummy">
        <lrm_rsc_op id="fence_last_0" operation_key="fence_start_0" operation="start" transition-key="2:1:0:x" transition-magic="0:0;2:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0"/>
      </lrm_resource></lrm_resources></lrm></node_state>
    <node_state id="3" uname="n3" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>`

func fastPlansFor(t *testing.T, stonith, meta string) map[string][]fastTake {
	t.Helper()
	x := strings.NewReplacer("%STONITH%", stonith, "%META%", meta).Replace(fastCIB)
	c, err := cib.Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	plans, err := fastPlans(c, time.Unix(1700000000, 0), func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	// The section round-trips through the CIB.
	c2, err := c.Apply(&cib.Change{Op: cib.OpSetStatusSection, Name: fastPlansSection, XML: fastPlansXML(plans)})
	if err != nil {
		t.Fatal(err)
	}
	if back := readFastPlans(c2); !reflectPlans(back, plans) {
		t.Fatalf("read back %v, stored %v", back, plans)
	}
	return plans
}

func TestFastPlans(t *testing.T) {
	// Without fencing: losing n1 moves ip to n3 (its next preference);
	// only the vip is in the plan (app is not a built-in vip).
	plans := fastPlansFor(t, "false", "")
	if got := plans["n1"]; len(got) != 1 || got[0] != (fastTake{"ip", "n3"}) {
		t.Fatalf("plan for n1: %v", got)
	}
	if len(plans["n2"])+len(plans["n3"]) != 0 {
		t.Fatalf("plans for nodes holding no vip: %v", plans)
	}
	// With fencing, the start waits for n1's fencing: not a fast take.
	if plans := fastPlansFor(t, "true", ""); len(plans["n1"]) != 0 {
		t.Fatalf("with fencing, plan for n1: %v", plans["n1"])
	}
}

func TestActiveFromHistory(t *testing.T) {
	x := strings.NewReplacer("%STONITH%", "false", "%META%", "").Replace(fastCIB)
	c, err := cib.Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	if on := activeFromHistory(c, "ip"); len(on) != 1 || on[0] != "n1" {
		t.Fatalf("ip active on %v, want [n1]", on)
	}
	// Recorded started on n3 as well (a take-over): active on both.
	op := &cib.LRMRscOp{ID: "ip_last_0", OperationKey: "ip_start_0", Operation: "start", CallID: 9}
	c, err = c.Apply(&cib.Change{Op: cib.OpRecordOperation, Node: "n3", Resource: "ip", Operation: op, Agent: &cib.AgentSource{Class: "tachy", Type: "vip"}})
	if err != nil {
		t.Fatal(err)
	}
	if on := activeFromHistory(c, "ip"); len(on) != 2 {
		t.Fatalf("ip active on %v, want n1 and n3", on)
	}
	// Stopped on n1.
	stop := &cib.LRMRscOp{ID: "ip_last_0", OperationKey: "ip_stop_0", Operation: "stop", CallID: 10}
	c, err = c.Apply(&cib.Change{Op: cib.OpRecordOperation, Node: "n1", Resource: "ip", Operation: stop})
	if err != nil {
		t.Fatal(err)
	}
	if on := activeFromHistory(c, "ip"); len(on) != 1 || on[0] != "n3" {
		t.Fatalf("ip active on %v, want [n3]", on)
	}
	if on := activeFromHistory(c, "app"); len(on) != 1 || on[0] != "n1" {
		t.Fatalf("app active on %v", on)
	}
}

// The take-over's record of the release on the lost node makes the
// scheduler see the resource on the taker only: no "multiple active"
// recovery that would stop it everywhere.
func TestReleasedChange(t *testing.T) {
	x := strings.NewReplacer("%STONITH%", "false", "%META%", "").Replace(fastCIB)
	c, err := cib.Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	r := lrmd.Result{Resource: "ip", Agent: lrmd.Agent{Class: "tachy", Type: "vip"}, Action: "start", RC: lrmd.OK,
		Status: lrmd.StatusDone, Expected: lrmd.OK, CallID: 5, Key: "ip_start_0", LastRun: time.Now(), LastRCChange: time.Now()}
	// The digest lrmd computes for the start, as the daemon records it.
	req, err := actionRequest(c, nil, &pe.Action{Resource: "ip", Task: "start", Node: "n3"})
	if err != nil {
		t.Fatal(err)
	}
	op := lrmd.Op{Resource: "ip", Agent: r.Agent, Action: "start", Params: req.Params, Meta: req.Meta}
	r.Digest = op.Digest()
	for _, ch := range append([]*cib.Change{releasedChange(c, "n1", r, "n3")}, resultChanges("n3", r, "")...) {
		if c, err = c.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	if on := activeFromHistory(c, "ip"); len(on) != 1 || on[0] != "n3" {
		t.Fatalf("ip active on %v, want [n3]", on)
	}
	// n1 not yet recorded lost: at most a move from n3 (n1 is preferred),
	// never a recovery of a resource active twice.
	res, err := pe.Schedule(c, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range res.Summary() {
		if strings.Contains(line, " ip ") && !strings.Contains(line, "( n3 -> n1 )") {
			t.Errorf("with n1 online: %q", line)
		}
	}
	// n1 recorded lost: nothing to do for ip.
	lost, err := pe.WithoutNode(c, "n1", true)
	if err != nil {
		t.Fatal(err)
	}
	if res, err = pe.Schedule(lost, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	for _, line := range res.Summary() {
		if strings.Contains(line, " ip ") {
			t.Errorf("with n1 lost: %q", line)
		}
	}
}

// The view frames run while a vip resource is configured, or still active
// after its definition was deleted; not in a cluster without one.
func TestFastPathNeeded(t *testing.T) {
	x := strings.NewReplacer("%STONITH%", "false", "%META%", "").Replace(fastCIB)
	c, err := cib.Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	if !fastPathNeeded(c) {
		t.Fatal("a vip is configured: needed")
	}
	// The definition deleted, the VIP still running on n1.
	orphan := strings.Replace(x, `<primitive id="ip" class="tachy" type="vip">
        <instance_attributes id="ip-i"><nvpair id="ip-i-ip" name="ip" value="10.0.0.100"/></instance_attributes>
        
      </primitive>`, "", 1)
	orphan = strings.NewReplacer(`<rsc_location id="ip-n1" rsc="ip" node="n1" score="100"/>`, "",
		`<rsc_location id="ip-n3" rsc="ip" node="n3" score="50"/>`, "").Replace(orphan)
	if strings.Contains(orphan, `type="vip">
        <instance`) {
		t.Fatal("the fixture changed: the vip primitive was not removed")
	}
	if c, err = cib.Import(strings.NewReader(orphan)); err != nil {
		t.Fatal(err)
	}
	if !fastPathNeeded(c) {
		t.Fatal("an orphaned vip still runs on n1: needed")
	}
	stop := &cib.LRMRscOp{ID: "ip_last_0", OperationKey: "ip_stop_0", Operation: "stop", CallID: 10}
	if c, err = c.Apply(&cib.Change{Op: cib.OpRecordOperation, Node: "n1", Resource: "ip", Operation: stop}); err != nil {
		t.Fatal(err)
	}
	if fastPathNeeded(c) {
		t.Fatal("no vip configured or active: not needed")
	}
	if fastPathNeeded(nil) {
		t.Fatal("no CIB yet: not needed")
	}
}
