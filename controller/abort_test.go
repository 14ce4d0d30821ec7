package controller

import (
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

const abortBase = `<cib epoch="3" num_updates="7" admin_epoch="0" have-quorum="1"><configuration><crm_config/>
<nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
<resources><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/></resources><constraints/></configuration>
<status>
<node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
 <transient_attributes id="1"><instance_attributes id="status-1"><nvpair id="s1" name="master-a" value="5"/></instance_attributes></transient_attributes>
 <lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy">
  <lrm_rsc_op id="a_last_0" operation_key="a_start_0" operation="start" crm-debug-origin="x" crm_feature_set="3.0" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="3" rc-code="0" op-status="0" interval="0" exec-time="1" queue-time="0" op-digest="d"/>
 </lrm_resource></lrm_resources></lrm></node_state>
<node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
</status></cib>`

func abortCIB(t *testing.T, edit func(string) string) *cib.CIB {
	t.Helper()
	c, err := cib.Import(strings.NewReader(edit(abortBase)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What a running transition's plan depends on: the configuration,
// membership, quorum and node attributes abort it when they change; the
// operation history (which the transition writes itself) does not.
func TestPlanningInputs(t *testing.T) {
	same := func(s string) string { return s }
	base := planningInputs(abortCIB(t, same))
	if base != planningInputs(abortCIB(t, same)) {
		t.Fatal("the fingerprint of one CIB differs between two imports")
	}
	for _, tc := range []struct {
		name   string
		edit   func(string) string
		aborts bool
	}{
		{"configuration edited (epoch)", func(s string) string { return strings.Replace(s, `epoch="3"`, `epoch="4"`, 1) }, true},
		{"node lost", func(s string) string {
			return strings.Replace(s, `uname="n2" in_ccm="true" crmd="online"`, `uname="n2" in_ccm="false" crmd="offline"`, 1)
		}, true},
		{"quorum lost", func(s string) string { return strings.Replace(s, `have-quorum="1"`, `have-quorum="0"`, 1) }, true},
		{"promotion score changed", func(s string) string { return strings.Replace(s, `value="5"`, `value="10"`, 1) }, true},
		{"fail count added", func(s string) string {
			return strings.Replace(s, `</instance_attributes>`, `<nvpair id="s2" name="fail-count-a#monitor_10000" value="1"/></instance_attributes>`, 1)
		}, true},
		{"operation recorded", func(s string) string {
			return strings.Replace(s, `</lrm_resource>`, `<lrm_rsc_op id="a_monitor_10000" operation_key="a_monitor_10000" operation="monitor" crm-debug-origin="x" crm_feature_set="3.0" transition-key="2:1:0:x" transition-magic="0:0;2:1:0:x" call-id="4" rc-code="0" op-status="0" interval="10000" exec-time="1" queue-time="0" op-digest="d"/></lrm_resource>`, 1)
		}, false},
		{"status update count", func(s string) string { return strings.Replace(s, `num_updates="7"`, `num_updates="8"`, 1) }, false},
	} {
		got := planningInputs(abortCIB(t, tc.edit))
		if (got != base) != tc.aborts {
			t.Errorf("%s: aborts=%v, want %v (first difference %q)", tc.name, got != base, tc.aborts, firstDifference(base, got))
		}
	}
}
