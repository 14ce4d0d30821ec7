package cib

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// mini builds a small CIB around the given resources, constraints and
// status.
func mini(resources, constraints, status string) string {
	return `<cib epoch="1" num_updates="0" admin_epoch="0" validate-with="pacemaker-3.7" have-quorum="1">
  <configuration>
    <crm_config><cluster_property_set id="opts"><nvpair id="opts-stonith" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2" type="member"/></nodes>
    <resources>
      <primitive id="a" class="ocf" provider="heartbeat" type="Dummy">
        <operations><op id="a-mon" name="monitor" interval="10s" timeout="20s"/></operations>
      </primitive>
      <primitive id="b" class="lsb" type="foo"/>
` + resources + `
    </resources>
    <constraints>` + constraints + `</constraints>
  </configuration>
  <status>` + status + `</status>
</cib>`
}

func TestImportErrors(t *testing.T) {
	cases := []struct {
		name, xml, want string
	}{
		{"colocation with missing resource", mini("", `<rsc_colocation id="c1" rsc="a" with-rsc="missing" score="INFINITY"/>`, ""),
			`rsc_colocation "c1": with-rsc "missing" is not a resource`},
		{"order with missing resource", mini("", `<rsc_order id="o1" first="nope" then="a"/>`, ""),
			`rsc_order "o1": first "nope" is not a resource`},
		{"set with missing resource", mini("", `<rsc_order id="o1"><resource_set id="s1"><resource_ref id="a"/><resource_ref id="zz"/></resource_set></rsc_order>`, ""),
			`resource_set "s1": resource_ref "zz" is not a resource`},
		{"ocf without provider", mini(`<primitive id="p1" class="ocf" type="Dummy"/>`, "", ""),
			`primitive "p1": class "ocf" needs a provider`},
		{"primitive without type", mini(`<primitive id="p1" class="lsb"/>`, "", ""),
			`primitive "p1": missing required attribute "type"`},
		{"bad rc-code", mini("", "", `<node_state id="1" uname="n1"><lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy">
			<lrm_rsc_op id="x_monitor_0" operation="monitor" call-id="1" rc-code="abc" op-status="0" interval="0"/></lrm_resource></lrm_resources></lrm></node_state>`),
			`lrm_rsc_op "x_monitor_0": rc-code "abc" is not an integer`},
		{"missing call-id", mini("", "", `<node_state id="1" uname="n1"><lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy">
			<lrm_rsc_op id="x_start_0" operation="start" rc-code="0" op-status="0" interval="0"/></lrm_resource></lrm_resources></lrm></node_state>`),
			`lrm_rsc_op "x_start_0": missing required attribute "call-id"`},
		{"bad score", mini("", `<rsc_location id="l1" rsc="a" node="n1" score="lots"/>`, ""),
			`rsc_location "l1": score "lots" is not a score`},
		{"bad score in rule", mini("", `<rsc_location id="l1" rsc="a"><rule id="r1" score="1x"><expression id="e1" attribute="#uname" operation="eq" value="n1"/></rule></rsc_location>`, ""),
			`rule "r1": score "1x" is not a score`},
		{"bad interval", mini(`<primitive id="p1" class="lsb" type="x"><operations><op id="p1-mon" name="monitor" interval="10x"/></operations></primitive>`, "", ""),
			`op "p1-mon": interval "10x" is not a valid interval`},
		{"negative timeout", mini(`<primitive id="p1" class="lsb" type="x"><operations><op id="p1-mon" name="monitor" interval="10" timeout="-5s"/></operations></primitive>`, "", ""),
			`op "p1-mon": timeout "-5s" is negative`},
		{"duplicate resource id", mini(`<primitive id="a" class="lsb" type="x"/>`, "", ""),
			`primitive "a": duplicate id (already used by primitive)`},
		{"duplicate constraint id", mini("", `<rsc_location id="a-mon" rsc="a" node="n1" score="1"/>`, ""),
			`rsc_location "a-mon": duplicate id (already used by op)`},
		{"duplicate node id", strings.Replace(mini("", "", ""), `<node id="2"`, `<node id="1"`, 1),
			`node "1": duplicate node id`},
		{"bad role", mini("", `<rsc_colocation id="c1" rsc="a" with-rsc="b" score="1" rsc-role="Boss"/>`, ""),
			`rsc_colocation "c1": rsc-role "Boss" is not a role`},
		{"bad kind", mini("", `<rsc_order id="o1" first="a" then="b" kind="Sometimes"/>`, ""),
			`rsc_order "o1": kind "Sometimes" is not one of Mandatory, Optional, Serialize`},
		{"bad symmetrical", mini("", `<rsc_order id="o1" first="a" then="b" symmetrical="maybe"/>`, ""),
			`rsc_order "o1": symmetrical "maybe" is not a boolean`},
		{"location node without score", mini("", `<rsc_location id="l1" rsc="a" node="n1"/>`, ""),
			`rsc_location "l1": node "n1" needs a score`},
		{"bad expression operation", mini("", `<rsc_location id="l1" rsc="a"><rule id="r1" score="1"><expression id="e1" attribute="x" operation="like" value="y"/></rule></rsc_location>`, ""),
			`expression "e1": operation "like" is not one of`},
		{"bad on-fail", mini(`<primitive id="p1" class="lsb" type="x"><operations><op id="p1-mon" name="monitor" interval="10" on-fail="panic"/></operations></primitive>`, "", ""),
			`op "p1-mon": on-fail "panic" is not one of`},
		{"group without primitives", mini(`<group id="g1"/>`, "", ""),
			`group "g1": has no primitives`},
		{"unknown element in resources", mini(`<widget id="w"/>`, "", ""),
			`resources: unexpected child <widget>`},
		{"bad epoch", strings.Replace(mini("", "", ""), `epoch="1"`, `epoch="one"`, 1),
			`cib: epoch "one" is not an integer`},
		{"not a cib", `<configuration/>`, `configuration: root element must be <cib>`},
		{"malformed", "<cib>\n<configuration>\n</cib>", `malformed XML at line 3`},
		{"unclosed", "<cib>\n<configuration>", `malformed XML`},
		{"empty", "", `no root element`},
		{"two roots", "<cib/><cib/>", `more than one root element`},
		{"duplicate attribute", `<cib epoch="1" epoch="2"/>`, `duplicate attribute "epoch"`},
		{"doctype", `<!DOCTYPE cib [<!ENTITY x "y">]><cib/>`, `directives`},
		{"too deep", strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1), `nested deeper than`},
		{"namespace", `<cib xmlns:x="urn:x" x:epoch="1"/>`, `namespaced attribute`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(strings.NewReader(tc.xml))
			if err == nil {
				t.Fatalf("imported; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestImportMini(t *testing.T) {
	x := mini(`<master id="ms"><meta_attributes id="ms-meta"><nvpair id="ms-mm" name="master-max" value="1"/></meta_attributes>
		<primitive id="st" class="ocf" provider="pacemaker" type="Stateful"/></master>
		<group id="g"><primitive id="g1" class="lsb" type="x"/><primitive id="g2" class="service" type="y"/></group>`,
		`<rsc_colocation id="c1" rsc="a" with-rsc="ms" with-rsc-role="Master" score="+INFINITY"/>
		 <rsc_order id="o1" first="ms" first-action="promote" then="a" then-action="start" kind="mandatory"/>
		 <rsc_location id="l1" rsc="g"><rule id="r1" score="-INFINITY" boolean-op="or"><expression id="e1" attribute="#uname" operation="eq" value="n2"/><date_expression id="d1" operation="gt" start="2020-01-01"/></rule></rsc_location>
		 <rsc_ticket id="t1" rsc="a" ticket="T" loss-policy="fence"/>`,
		`<node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
		   <transient_attributes id="1"><instance_attributes id="status-1"><nvpair id="status-1-fc" name="fail-count-a#monitor_10000" value="3"/></instance_attributes></transient_attributes>
		   <lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy">
		     <lrm_rsc_op id="a_last_0" operation_key="a_start_0" operation="start" call-id="4" rc-code="0" op-status="0" interval="0" last-rc-change="1600000000" exec-time="12" op-digest="abc" future-attr="kept"/>
		     <lrm_rsc_op id="a_monitor_10000" operation_key="a_monitor_10000" operation="monitor" call-id="5" rc-code="7" op-status="0" interval="10000"/>
		   </lrm_resource></lrm_resources></lrm></node_state>`)
	c, err := Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, "mini", c)
	if !c.HaveQuorum || c.Epoch != 1 {
		t.Errorf("cib attributes: %+v", c)
	}
	res := c.Configuration.Resources
	if len(res) != 4 {
		t.Fatalf("%d resources", len(res))
	}
	op := res[0].(*Primitive).Operations.Ops[0]
	if d, ok := op.TimeoutDuration(); op.Interval != 10*time.Second || !ok || d != 20*time.Second {
		t.Errorf("op %+v", op)
	}
	ms := res[2].(*Clone)
	if !ms.Promotable || ms.Child.(*Primitive).ID != "st" || !metaTrue(ms.MetaAttributes, "promotable") {
		t.Errorf("master not imported as promotable clone: %+v", ms)
	}
	cons := c.Configuration.Constraints
	if col := cons[0].(*Colocation); col.WithRscRole != RolePromoted || *col.Score != Infinity {
		t.Errorf("colocation %+v", col)
	}
	if o := cons[1].(*Order); o.Kind != "Mandatory" || o.FirstAction != "promote" {
		t.Errorf("order %+v", o)
	}
	l := cons[2].(*Location)
	if len(l.Rules) != 1 || *l.Rules[0].Score != MinusInfinity || len(l.Rules[0].Conditions) != 2 {
		t.Errorf("location %+v", l)
	}
	if _, ok := l.Rules[0].Conditions[1].(*DateExpression); !ok {
		t.Errorf("second condition is %T", l.Rules[0].Conditions[1])
	}
	ns := c.Status.NodeStates[0]
	if ns.Transient[0].Pairs[0].Name != "fail-count-a#monitor_10000" {
		t.Errorf("transient %+v", ns.Transient[0].Pairs[0])
	}
	rop := ns.LRM.Resources[0].Ops[0]
	if rop.CallID != 4 || *rop.LastRCChange != 1600000000 || rop.Extra["future-attr"] != "kept" || rop.OpDigest != "abc" {
		t.Errorf("lrm_rsc_op %+v", rop)
	}
	if mon := ns.LRM.Resources[0].Ops[1]; mon.Interval != 10*time.Second || mon.RCCode != 7 {
		t.Errorf("monitor %+v", mon)
	}
	var out bytes.Buffer
	if err := Export(&out, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "<master") || !strings.Contains(out.String(), `name="promotable" value="true"`) {
		t.Errorf("export of the master:\n%s", out.String())
	}
}

func TestExportRejectsClashingExtra(t *testing.T) {
	c := &CIB{Configuration: Configuration{Nodes: []*Node{{ID: "1", Uname: "n1", Extra: map[string]string{"uname": "x"}}}}}
	if err := Export(&bytes.Buffer{}, c); err == nil || !strings.Contains(err.Error(), `attribute "uname" given twice`) {
		t.Fatalf("got %v", err)
	}
}

func TestParseScore(t *testing.T) {
	cases := []struct {
		in   string
		want Score
		ok   bool
	}{
		{"INFINITY", Infinity, true}, {"+INFINITY", Infinity, true}, {"-INFINITY", MinusInfinity, true},
		{"infinity", 0, false}, {"100", 100, true}, {"-5", -5, true}, {"+7", 7, true},
		{"2000000", Infinity, true}, {"-2000000", MinusInfinity, true},
		{"99999999999999999999999", Infinity, true}, {"-99999999999999999999999", MinusInfinity, true},
		{"red", MinusInfinity, true}, {"Yellow", 0, true}, {"GREEN", 0, true},
		{"", 0, false}, {"abc", 0, false}, {"10abc", 0, false}, {"-", 0, false}, {" 5", 5, true},
	}
	for _, tc := range cases {
		got, err := ParseScore(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseScore(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if s, _ := ParseScoreHealth("red", HealthScores{Red: -50}); s != -50 {
		t.Errorf("red with node-health-red=-50 gave %v", s)
	}
}

func TestScoreAdd(t *testing.T) {
	cases := []struct{ a, b, want Score }{
		{Infinity, MinusInfinity, MinusInfinity}, {MinusInfinity, Infinity, MinusInfinity},
		{Infinity, 5, Infinity}, {-5, MinusInfinity, MinusInfinity}, {Infinity, Infinity, Infinity},
		{999999, 1, Infinity}, {-999999, -1, MinusInfinity}, {3, 4, 7}, {500000, 499999, 999999},
	}
	for _, tc := range cases {
		if got := tc.a.Add(tc.b); got != tc.want {
			t.Errorf("%v + %v = %v; want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if Infinity.String() != "INFINITY" || MinusInfinity.String() != "-INFINITY" || Score(12).String() != "12" {
		t.Error("Score.String")
	}
}

func TestParseInterval(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true}, {"10", 10 * time.Second, true}, {"1min", time.Minute, true},
		{"1m", time.Minute, true}, {"1h", time.Hour, true}, {"2hr", 2 * time.Hour, true},
		{"500ms", 500 * time.Millisecond, true}, {"500msec", 500 * time.Millisecond, true},
		{"1500us", time.Millisecond, true}, {"10 s", 10 * time.Second, true}, {" 3S", 3 * time.Second, true},
		{"0", 0, true}, {"PT10S", 10 * time.Second, true}, {"P10S", 10 * time.Second, true},
		{"PT1M30S", 90 * time.Second, true}, {"P1D", 24 * time.Hour, true}, {"P1W", 7 * 24 * time.Hour, true},
		{"PT1H", time.Hour, true},
		{"10x", 0, false}, {"", 0, false}, {"s", 0, false}, {"-5s", 0, false}, {"P", 0, false}, {"PT", 0, true},
		{"P1", 0, false}, {"P1X", 0, false}, {"Px", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseInterval(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, d := range []time.Duration{0, time.Second, 1500 * time.Millisecond, time.Hour} {
		if got, err := ParseInterval(formatInterval(d)); err != nil || got != d {
			t.Errorf("formatInterval(%v) = %q reads back as %v, %v", d, formatInterval(d), got, err)
		}
	}
}

func TestMasterStaysPromotable(t *testing.T) {
	x := mini(`<master id="ms"><meta_attributes id="ms-meta"><nvpair id="ms-p" name="promotable" value="false"/></meta_attributes>
		<primitive id="st" class="ocf" provider="pacemaker" type="Stateful"/></master>`, "", "")
	c, err := Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	if ms := c.Configuration.Resources[2].(*Clone); !ms.Promotable {
		t.Fatalf("<master> with promotable=false imported as not promotable")
	}
	roundTrip(t, "master", c)
}
