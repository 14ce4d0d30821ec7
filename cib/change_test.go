package cib

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const changeBase = `<cib epoch="3" num_updates="5" admin_epoch="0">
  <configuration>
    <crm_config><cluster_property_set id="cib-bootstrap-options">
      <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
    <resources><primitive id="web" class="ocf" provider="heartbeat" type="Dummy"/></resources>
    <constraints/>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>`

func mustApply(t *testing.T, c *CIB, ch *Change) *CIB {
	t.Helper()
	// Every change goes through the log encoding, as in the cluster.
	data, err := EncodeChange(ch)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeChange(data)
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.Apply(dec)
	if err != nil {
		t.Fatalf("%s: %v", ch.Op, err)
	}
	// The result exports and imports back to the same model.
	var out bytes.Buffer
	if err := Export(&out, next); err != nil {
		t.Fatalf("%s: export: %v", ch.Op, err)
	}
	again, err := Import(&out)
	if err != nil {
		t.Fatalf("%s: re-import: %v\n%s", ch.Op, err, out.String())
	}
	if !reflect.DeepEqual(again, next) {
		t.Fatalf("%s: round trip changed the CIB", ch.Op)
	}
	return next
}

func str(s string) *string { return &s }

func TestApplyChanges(t *testing.T) {
	base, err := Import(strings.NewReader(changeBase))
	if err != nil {
		t.Fatal(err)
	}
	var before bytes.Buffer
	Export(&before, base)

	c := mustApply(t, base, &Change{Op: OpSetProperty, Name: "no-quorum-policy", Value: str("stop")})
	if c.Epoch != 4 || c.NumUpdates != 0 || len(c.Configuration.CRMConfig[0].Pairs) != 2 {
		t.Fatalf("set-property: epoch %d/%d pairs %d", c.Epoch, c.NumUpdates, len(c.Configuration.CRMConfig[0].Pairs))
	}
	c = mustApply(t, c, &Change{Op: OpSetProperty, Name: "stonith-enabled"})
	if len(c.Configuration.CRMConfig[0].Pairs) != 1 || c.Configuration.CRMConfig[0].Pairs[0].Name != "no-quorum-policy" {
		t.Fatalf("delete property: %+v", c.Configuration.CRMConfig[0].Pairs)
	}

	c = mustApply(t, c, &Change{Op: OpSetQuorum, Value: str("1")})
	if !c.HaveQuorum || c.NumUpdates != 1 {
		t.Fatalf("set-quorum: %v %d", c.HaveQuorum, c.NumUpdates)
	}
	c = mustApply(t, c, &Change{Op: OpEnsureNode, Node: "n3", NodeID: "3"})
	if same := mustApply(t, c, &Change{Op: OpEnsureNode, Node: "n3", NodeID: "3"}); same != c || len(c.Configuration.Nodes) != 3 || c.Epoch != 6 {
		t.Fatalf("ensure-node: %d nodes, epoch %d", len(c.Configuration.Nodes), c.Epoch)
	}
	c = mustApply(t, c, &Change{Op: OpNodeMembership, Node: "n2", Membership: &Membership{InCCM: "true", Crmd: "online", Join: "member", Expected: "member"}})
	if len(c.Status.NodeStates) != 2 || c.Status.NodeStates[1].ID != "2" || c.NumUpdates != 1 {
		t.Fatalf("membership: %+v", c.Status.NodeStates)
	}
	start := &LRMRscOp{ID: "web_last_0", OperationKey: "web_start_0", Operation: "start", CallID: 3, RCCode: 0, OpDigest: "f2317cad3d54cec5d7d7aa7d0bf35cf8"}
	c = mustApply(t, c, &Change{Op: OpRecordOperation, Node: "n2", Resource: "web", Operation: start})
	mon := &LRMRscOp{ID: "web_monitor_10000", OperationKey: "web_monitor_10000", Operation: "monitor", CallID: 4, Interval: 10e9}
	c = mustApply(t, c, &Change{Op: OpRecordOperation, Node: "n2", Resource: "web", Operation: mon})
	stop := *start
	stop.OperationKey, stop.Operation, stop.CallID = "web_stop_0", "stop", 5
	c = mustApply(t, c, &Change{Op: OpRecordOperation, Node: "n2", Resource: "web", Operation: &stop})
	lr := c.Status.NodeStates[1].LRM.Resources[0]
	if lr.Class != "ocf" || lr.Type != "Dummy" || len(lr.Ops) != 2 || lr.Ops[0].Operation != "stop" {
		t.Fatalf("history: %+v ops %+v", lr, lr.Ops)
	}
	c = mustApply(t, c, &Change{Op: OpDeleteHistory, Node: "n2", Resource: "web", OpIDs: []string{"web_monitor_10000"}})
	if ops := c.Status.NodeStates[1].LRM.Resources[0].Ops; len(ops) != 1 {
		t.Fatalf("after deleting the monitor: %+v", ops)
	}
	c = mustApply(t, c, &Change{Op: OpSetNodeAttribute, Node: "n1", Name: "fail-count-web#start_0", Value: str("INFINITY")})
	if tr := c.Status.NodeStates[0].Transient; len(tr) != 1 || tr[0].Pairs[0].Value != "INFINITY" {
		t.Fatalf("transient: %+v", tr)
	}
	fenced := mustApply(t, c, &Change{Op: OpNodeFenced, Node: "n1"})
	if st := fenced.Status.NodeStates[0]; st.Expected != "down" || st.InCCM != "false" || len(st.Transient) != 0 {
		t.Fatalf("fenced: %+v", st)
	}
	inc := mustApply(t, c, &Change{Op: OpIncrementNodeAttribute, Node: "n1", Name: "fail-count-web#monitor_10000"})
	inc = mustApply(t, inc, &Change{Op: OpIncrementNodeAttribute, Node: "n1", Name: "fail-count-web#monitor_10000"})
	inc = mustApply(t, inc, &Change{Op: OpIncrementNodeAttribute, Node: "n1", Name: "fail-count-web#start_0"})
	got := map[string]string{}
	for _, p := range inc.Status.NodeStates[0].Transient[0].Pairs {
		got[p.Name] = p.Value
	}
	if got["fail-count-web#monitor_10000"] != "2" || got["fail-count-web#start_0"] != "INFINITY" {
		t.Fatalf("increments: %v", got)
	}
	c = mustApply(t, c, &Change{Op: OpDeleteHistory, Node: "n2", Resource: "web"})
	if len(c.Status.NodeStates[1].LRM.Resources) != 0 {
		t.Fatal("cleanup left history")
	}
	if c.NumUpdates != 7 || c.Epoch != 6 || !c.HaveQuorum {
		t.Fatalf("version %d.%d", c.Epoch, c.NumUpdates)
	}

	// The original is untouched by all of that.
	var after bytes.Buffer
	Export(&after, base)
	if before.String() != after.String() {
		t.Fatal("Apply modified the CIB it was given")
	}
}

func TestApplyRejects(t *testing.T) {
	base, err := Import(strings.NewReader(changeBase))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ch   *Change
		want string
	}{
		{&Change{Op: "rename-cluster"}, `unknown change "rename-cluster"`},
		{&Change{Op: OpReplaceConfiguration, XML: "<cib><configuration><resources><primitive id='x'/></resources></configuration></cib>"}, "primitive"},
		{&Change{Op: OpNodeMembership, Node: "n9", Membership: &Membership{}}, `no node "n9"`},
		{&Change{Op: OpRecordOperation, Node: "n1", Resource: "db", Operation: &LRMRscOp{ID: "db_last_0", Operation: "start"}}, `"db" is not configured`},
		{&Change{Op: OpRecordOperation, Node: "n1", Resource: "web"}, "needs a resource and an operation"},
		{&Change{Op: OpSetProperty}, "needs a property name"},
		{&Change{Op: OpEnsureNode, Node: "n1", NodeID: "9"}, "conflicts with the configured node n1"},
		{&Change{Op: OpSetQuorum, Value: str("yes")}, `"1" or "0"`},
		{&Change{Op: OpSetProperty, Name: "a", Value: str("b"), ExpectEpoch: func() *int { e := 2; return &e }()}, "changed meanwhile (epoch 3, expected 2)"},
	} {
		if _, err := base.Apply(tc.ch); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.ch.Op, err, tc.want)
		}
	}
	if _, err := DecodeChange([]byte(`{"v":2,"change":{"op":"set-property"}}`)); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("future encoding: %v", err)
	}
	if _, err := DecodeChange([]byte(`{"v":1,"change":{"op":"set-property","colour":"red"}}`)); err == nil {
		t.Error("unknown field accepted")
	}
	// Replacing the configuration keeps the status and bumps the epoch.
	next, err := base.Apply(&Change{Op: OpReplaceConfiguration, XML: strings.Replace(changeBase, `type="Dummy"`, `type="Stateful"`, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if next.Epoch != 4 || len(next.Status.NodeStates) != 1 || next.Configuration.Resources[0].(*Primitive).Type != "Stateful" {
		t.Fatalf("replace: epoch %d states %d", next.Epoch, len(next.Status.NodeStates))
	}
	// A file without the member n1 keeps it; n2, not a member, goes.
	next, err = base.Apply(&Change{Op: OpReplaceConfiguration, XML: strings.Replace(changeBase, `<nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>`, "<nodes/>", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Configuration.Nodes) != 1 || next.Configuration.Nodes[0].Uname != "n1" {
		t.Fatalf("nodes after an import without them: %+v", next.Configuration.Nodes)
	}
}

func FuzzDecodeChange(f *testing.F) {
	base, err := Import(strings.NewReader(changeBase))
	if err != nil {
		f.Fatal(err)
	}
	for _, ch := range []*Change{
		{Op: OpSetProperty, Name: "a", Value: str("b")},
		{Op: OpRecordOperation, Node: "n1", Resource: "web", Operation: &LRMRscOp{ID: "web_last_0", Operation: "start"}},
		{Op: OpDeleteHistory, Node: "n1", Resource: "web", OpIDs: []string{"x"}},
		{Op: OpSetNodeAttribute, Node: "n1", Name: "standby", Value: str("on")},
	} {
		data, _ := EncodeChange(ch)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := DecodeChange(data)
		if err != nil {
			return
		}
		next, err := base.Apply(ch)
		if err != nil {
			return
		}
		// Whatever a change does, the CIB stays exportable.
		var out bytes.Buffer
		if err := Export(&out, next); err != nil {
			t.Fatalf("export after %s: %v", ch.Op, err)
		}
	})
}

func TestSetStatusSection(t *testing.T) {
	base, err := Import(strings.NewReader(changeBase))
	if err != nil {
		t.Fatal(err)
	}
	plans := `<tachy_fast_plans of="3"><plan lost="n1"><start resource="ip" node="n2"/></plan></tachy_fast_plans>`
	c := mustApply(t, base, &Change{Op: OpSetStatusSection, Name: "tachy_fast_plans", XML: plans})
	sec := c.StatusSection("tachy_fast_plans")
	if sec == nil || len(sec.Children) != 1 || len(sec.Children[0].Children) != 1 {
		t.Fatalf("section %+v", sec)
	}
	if v, _ := sec.Children[0].Children[0].Attr("node"); v != "n2" {
		t.Fatalf("node %q", v)
	}
	if base.StatusSection("tachy_fast_plans") != nil || c.NumUpdates != base.NumUpdates+1 || c.Epoch != base.Epoch {
		t.Fatal("the base CIB changed, or the version moved wrongly")
	}
	c2 := mustApply(t, c, &Change{Op: OpSetStatusSection, Name: "tachy_fast_plans", XML: `<tachy_fast_plans of="4"/>`})
	if n := len(c2.Status.Other); n != 1 {
		t.Fatalf("%d sections after a replacement", n)
	}
	if v, _ := c2.StatusSection("tachy_fast_plans").Attr("of"); v != "4" {
		t.Fatalf("replaced section says of=%q", v)
	}
	if c3 := mustApply(t, c2, &Change{Op: OpSetStatusSection, Name: "tachy_fast_plans"}); c3.StatusSection("tachy_fast_plans") != nil {
		t.Fatal("section not removed")
	}
	for _, ch := range []*Change{
		{Op: OpSetStatusSection, Name: "node_state", XML: `<node_state id="9"/>`},
		{Op: OpSetStatusSection, Name: "tachy_x", XML: `<tachy_y/>`},
		{Op: OpSetStatusSection, Name: "tachy_x", XML: `<tachy_x>`},
	} {
		if _, err := c.Apply(ch); err == nil {
			t.Errorf("%s %s %q applied", ch.Op, ch.Name, ch.XML)
		}
	}
	// Sections with a change of their own are not set this way.
	if _, err := c.Apply(&Change{Op: OpSetStatusSection, Name: "tachy_fencing_history", XML: `<tachy_fencing_history/>`}); err == nil {
		t.Error("set-status-section replaced the fencing history")
	}
}

// The fencing history is kept in the status, newest last, bounded, and
// survives an export and import (snapshots are CIB XML).
func TestRecordFencing(t *testing.T) {
	c, err := Import(strings.NewReader(`<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(&Change{Op: OpRecordFencing, Fencing: &FencingRecord{Target: "n2"}}); err == nil {
		t.Fatal("a fencing record without an action was accepted")
	}
	for i := range FencingHistoryMax + 3 {
		next, err := c.Apply(&Change{Op: OpRecordFencing, Fencing: &FencingRecord{Target: "n" + strconv.Itoa(i), Action: "reboot", OK: i%2 == 0,
			Device: "fencer", Delegate: "n1", Origin: "n1", Error: map[bool]string{false: "timed out"}[i%2 == 0], Completed: int64(1000 + i)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.FencingHistory()) != min(i, FencingHistoryMax) {
			t.Fatalf("applying changed the CIB it was applied to")
		}
		c = next
	}
	h := c.FencingHistory()
	if len(h) != FencingHistoryMax || h[0].Target != "n3" || h[len(h)-1].Target != "n52" || !h[len(h)-1].OK || h[len(h)-2].Error != "timed out" {
		t.Fatalf("history: %d entries, first %+v, last %+v", len(h), h[0], h[len(h)-1])
	}
	var b strings.Builder
	if err := Export(&b, c); err != nil {
		t.Fatal(err)
	}
	back, err := Import(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.FencingHistory(); len(got) != FencingHistoryMax || got[len(got)-1] != h[len(h)-1] {
		t.Fatalf("after export and import: %+v", got[len(got)-1])
	}
}

// A starting daemon's erase keeps the results of its own run (call ids
// from its first), which the DC may have recorded before the erase arrived.
func TestEraseHistoryKeepsThisRun(t *testing.T) {
	c, err := Import(strings.NewReader(`<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes><node id="1" uname="n1"/></nodes><resources/><constraints/></configuration>
<status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>
<lrm_resource id="old" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="old_last_0" operation_key="old_start_0" operation="start" call-id="5" rc-code="0" op-status="0" interval="0"/></lrm_resource>
<lrm_resource id="mig" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="mig_last_0" operation_key="mig_stop_0" operation="stop" call-id="6" rc-code="0" op-status="0" interval="0"/><lrm_rsc_op id="mig_monitor_2000" operation_key="mig_monitor_2000" operation="monitor" call-id="2000001" rc-code="0" op-status="0" interval="2000"/></lrm_resource>
</lrm_resources></lrm></node_state></status></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.Apply(&Change{Op: OpEraseHistory, Node: "n1", KeepFromCallID: 2000000})
	if err != nil {
		t.Fatal(err)
	}
	lrm := next.Status.NodeStates[0].LRM
	if len(lrm.Resources) != 1 || lrm.Resources[0].ID != "mig" || len(lrm.Resources[0].Ops) != 1 || lrm.Resources[0].Ops[0].CallID != 2000001 {
		t.Fatalf("after the erase: %+v", lrm.Resources)
	}
	if len(c.Status.NodeStates[0].LRM.Resources) != 2 || len(c.Status.NodeStates[0].LRM.Resources[1].Ops) != 2 {
		t.Fatal("the erase changed the CIB it was applied to")
	}
	all, _ := c.Apply(&Change{Op: OpEraseHistory, Node: "n1"})
	if len(all.Status.NodeStates[0].LRM.Resources) != 0 {
		t.Fatal("an erase without KeepFromCallID kept something")
	}
}

// A result that arrives late (retried while there was no DC) does not
// replace a newer one: the higher call id stands.
func TestRecordOperationKeepsTheNewerResult(t *testing.T) {
	c, err := Import(strings.NewReader(changeBase))
	if err != nil {
		t.Fatal(err)
	}
	rec := func(c *CIB, task string, call int) *CIB {
		return mustApply(t, c, &Change{Op: OpRecordOperation, Node: "n1", Resource: "web",
			Agent:     &AgentSource{Class: "ocf", Provider: "heartbeat", Type: "Dummy"},
			Operation: &LRMRscOp{ID: "web_last_0", OperationKey: "web_" + task + "_0", Operation: task, CallID: call}})
	}
	last := func(c *CIB) *LRMRscOp { return c.Status.NodeStates[0].LRM.Resources[0].Ops[0] }
	c = rec(c, "start", 1000003)
	c = rec(c, "stop", 1000007)
	late, err := c.Apply(&Change{Op: OpRecordOperation, Node: "n1", Resource: "web",
		Operation: &LRMRscOp{ID: "web_last_0", OperationKey: "web_start_0", Operation: "start", CallID: 1000003}})
	if err != nil {
		t.Fatal(err)
	}
	if late != c || last(late).Operation != "stop" {
		t.Fatalf("a late start (call 1000003) replaced the stop (call 1000007): %+v", last(late))
	}
	// The next run's results (a higher block of call ids) replace it.
	c = rec(c, "monitor", 2000001)
	if last(c).Operation != "monitor" {
		t.Fatalf("the next run's probe did not replace the stop: %+v", last(c))
	}
}

// A batch applies all of its changes, or none.
func TestBatch(t *testing.T) {
	c, err := Import(strings.NewReader(changeBase))
	if err != nil {
		t.Fatal(err)
	}
	agent := &AgentSource{Class: "ocf", Provider: "heartbeat", Type: "Dummy"}
	stop := &Change{Op: OpRecordOperation, Node: "n1", Resource: "web", Agent: agent,
		Operation: &LRMRscOp{ID: "web_last_0", OperationKey: "web_stop_0", Operation: "stop", CallID: 8}}
	start := &Change{Op: OpRecordOperation, Node: "n2", Resource: "web", Agent: agent,
		Operation: &LRMRscOp{ID: "web_last_0", OperationKey: "web_start_0", Operation: "start", CallID: 4}}
	next := mustApply(t, c, &Change{Op: OpBatch, Batch: []*Change{stop, start}})
	if len(next.Status.NodeStates) != 2 || next.NumUpdates != c.NumUpdates+2 {
		t.Fatalf("after the batch: %d node states, num_updates %d", len(next.Status.NodeStates), next.NumUpdates)
	}
	for _, bad := range []*Change{
		{Op: OpBatch},
		{Op: OpBatch, Batch: []*Change{stop, {Op: OpRecordOperation, Node: "n2"}}},
		{Op: OpBatch, Batch: []*Change{{Op: OpBatch, Batch: []*Change{stop}}}},
	} {
		if _, err := c.Apply(bad); err == nil {
			t.Errorf("batch %+v applied", bad)
		}
	}
	if len(c.Status.NodeStates) != 1 {
		t.Fatal("a failed batch changed the CIB")
	}
}
