package pe

import (
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// An agent gets the instance attributes whose rules pass on its node, as
// the op-digest counts them, the group's for names still unset and the
// start operation's over them.
func TestAgentParamsEvaluateRulesPerNode(t *testing.T) {
	const x = `<cib epoch="1" num_updates="0" admin_epoch="0" have-quorum="1"><configuration><crm_config/>
<nodes><node id="1" uname="n1"><instance_attributes id="n1-a"><nvpair id="n1-site" name="site" value="east"/></instance_attributes></node><node id="2" uname="n2"/></nodes>
<resources><group id="g"><instance_attributes id="g-ia"><nvpair id="g-x" name="from_group" value="g"/><nvpair id="g-f" name="fake" value="group"/></instance_attributes>
<primitive id="a" class="ocf" provider="heartbeat" type="Dummy">
 <instance_attributes id="a-east" score="2"><rule id="a-east-r" score="0"><expression id="a-east-e" attribute="site" operation="eq" value="east"/></rule><nvpair id="a-east-f" name="fake" value="east"/></instance_attributes>
 <instance_attributes id="a-n2" score="1"><rule id="a-n2-r" score="0"><expression id="a-n2-e" attribute="#uname" operation="eq" value="n2"/></rule><nvpair id="a-n2-f" name="fake" value="on-n2"/></instance_attributes>
 <instance_attributes id="a-base"><nvpair id="a-base-f" name="fake" value="base"/><nvpair id="a-base-s" name="state" value="/tmp/s"/></instance_attributes>
 <operations><op id="a-start" name="start" interval="0"><instance_attributes id="a-start-ia"><nvpair id="a-start-s" name="state" value="/tmp/start"/></instance_attributes></op></operations>
</primitive></group>
<clone id="c"><primitive id="b" class="ocf" provider="heartbeat" type="Dummy"><instance_attributes id="b-n1"><rule id="b-n1-r" score="0"><expression id="b-n1-e" attribute="#uname" operation="eq" value="n1"/></rule><nvpair id="b-n1-f" name="fake" value="b1"/></instance_attributes></primitive></clone>
</resources><constraints/></configuration>
<status><node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/><node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/></status></cib>`
	c, err := cib.Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Schedule(c, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rsc, node string
		want      map[string]string
	}{
		{"a", "n1", map[string]string{"fake": "east", "state": "/tmp/start", "from_group": "g"}},
		{"a", "n2", map[string]string{"fake": "on-n2", "state": "/tmp/start", "from_group": "g"}},
		{"b", "n1", map[string]string{"fake": "b1"}},
		{"b", "n2", map[string]string{}},
	} {
		got, ok := res.AgentParams(tc.rsc, tc.node)
		if !ok {
			t.Errorf("%s on %s: not known", tc.rsc, tc.node)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s on %s: %v, want %v", tc.rsc, tc.node, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s on %s: %s=%q, want %q (all: %v)", tc.rsc, tc.node, k, got[k], v, got)
			}
		}
	}
	if _, ok := res.AgentParams("nope", "n1"); ok {
		t.Error("an unknown resource has parameters")
	}
	if _, ok := res.AgentParams("a", "n9"); ok {
		t.Error("an unknown node has parameters")
	}
}
